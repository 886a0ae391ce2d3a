//! Comparing resource content the way a person would: the server's bookkeeping aside.

use serde_json::Value;

/// Removes the elements the hub sets on every write (`meta.versionId`, `meta.lastUpdated`),
/// dropping `meta` if nothing else is left in it.
pub fn strip_server_meta(resource: &mut Value) {
    if let Some(obj) = resource.as_object_mut() {
        let empty = match obj.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.remove("versionId");
                meta.remove("lastUpdated");
                meta.is_empty()
            }
            None => false,
        };
        if empty {
            obj.remove("meta");
        }
    }
}

/// Whether two versions of a resource say the same thing (JSON-equal apart from the
/// server-maintained `meta.versionId` and `meta.lastUpdated`).
pub fn same_content(a: &Value, b: &Value) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    strip_server_meta(&mut a);
    strip_server_meta(&mut b);
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_meta_is_ignored_and_everything_else_counts() {
        let a = json!({"resourceType": "Patient", "id": "1", "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"}, "active": true});
        let b = json!({"resourceType": "Patient", "id": "1", "active": true});
        let c = json!({"resourceType": "Patient", "id": "1", "meta": {"versionId": "4", "security": [{"code": "R"}]}, "active": true});
        assert!(same_content(&a, &b));
        assert!(!same_content(&a, &c));
        assert!(!same_content(
            &b,
            &json!({"resourceType": "Patient", "id": "1", "active": false})
        ));
    }

    #[test]
    fn decimal_precision_is_content() {
        let a: Value =
            serde_json::from_str(r#"{"resourceType":"Observation","valueQuantity":{"value":1.0}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(
            r#"{"resourceType":"Observation","valueQuantity":{"value":1.00}}"#,
        )
        .unwrap();
        assert!(!same_content(&a, &b));
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"resourceType":"Observation","valueQuantity":{"value":1.00}}"#
        );
    }
}
