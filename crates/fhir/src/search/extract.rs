//! Extracting a resource's search index entries and compartment memberships.

use serde_json::Value;

use super::params::{params_for, ParamKind, SearchParam};
use crate::datetime::{parse_date_time, Range};
use crate::reference::Reference;

/// What the hub indexes for one resource version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntries {
    /// (parameter, system — empty when none, code).
    pub tokens: Vec<(&'static str, String, String)>,
    /// (parameter, normalised value — see [`normalize_string`] —, value as written).
    pub strings: Vec<(&'static str, String, String)>,
    /// (parameter, range start, range end — half-open, microseconds).
    pub dates: Vec<(&'static str, i64, i64)>,
    /// (parameter, `Type/id`).
    pub references: Vec<(&'static str, String)>,
    /// Ids of the patients whose compartment this resource belongs to.
    pub patients: Vec<String>,
}

/// An indexed element holds a value the hub cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ExtractError {
    pub location: String,
    pub message: String,
}

/// How strings are compared in search: lower case, surrounding space trimmed.
pub fn normalize_string(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Walks `path` from `root`, returning every value found with its location.
fn values_at<'a>(root: &'a Value, resource_type: &str, path: &str) -> Vec<(&'a Value, String)> {
    let mut current: Vec<(&'a Value, String)> = vec![(root, resource_type.to_string())];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for (v, loc) in current {
            let Some(obj) = v.as_object() else { continue };
            let mut push = |child: &'a Value, name: &str| match child {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        next.push((item, format!("{loc}.{name}[{i}]")));
                    }
                }
                other => next.push((other, format!("{loc}.{name}"))),
            };
            if let Some(prefix) = seg.strip_suffix("[x]") {
                for (k, child) in obj {
                    if k.len() > prefix.len()
                        && k.starts_with(prefix)
                        && k.as_bytes()[prefix.len()].is_ascii_uppercase()
                    {
                        push(child, k);
                    }
                }
            } else if let Some(child) = obj.get(seg) {
                push(child, seg);
            }
        }
        current = next;
    }
    current
}

fn tokens_of(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((String::new(), s.clone())),
        Value::Bool(b) => out.push((String::new(), b.to_string())),
        Value::Object(o) => {
            if let Some(Value::Array(codings)) = o.get("coding") {
                for c in codings {
                    tokens_of(c, out);
                }
            } else if o.contains_key("reference") {
                // A Reference in a choice element (e.g. medicationReference): not a token.
            } else {
                let system = o.get("system").and_then(Value::as_str).unwrap_or_default();
                let code = o
                    .get("code")
                    .and_then(Value::as_str)
                    .or_else(|| o.get("value").and_then(Value::as_str));
                if let Some(code) = code {
                    out.push((system.to_string(), code.to_string()));
                }
            }
        }
        _ => {}
    }
}

fn strings_of(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((normalize_string(s), s.clone())),
        Value::Array(items) => items.iter().for_each(|i| strings_of(i, out)),
        Value::Object(o) => {
            // HumanName and Address: every part is searchable.
            for key in [
                "text",
                "family",
                "given",
                "prefix",
                "suffix",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ] {
                if let Some(part) = o.get(key) {
                    strings_of(part, out);
                }
            }
        }
        _ => {}
    }
}

fn date_of(v: &Value, loc: &str) -> Result<Option<Range>, ExtractError> {
    let parse = |s: &str, l: String| {
        parse_date_time(s).map_err(|e| ExtractError {
            location: l,
            message: e.to_string(),
        })
    };
    match v {
        Value::String(s) => parse(s, loc.to_string()).map(Some),
        Value::Object(o) if o.contains_key("start") || o.contains_key("end") => {
            let lo = match o.get("start").and_then(Value::as_str) {
                Some(s) => parse(s, format!("{loc}.start"))?.lo,
                None => i64::MIN,
            };
            let hi = match o.get("end").and_then(Value::as_str) {
                Some(s) => parse(s, format!("{loc}.end"))?.hi,
                None => i64::MAX,
            };
            if lo > hi {
                return Err(ExtractError {
                    location: loc.to_string(),
                    message: "Period.start is after Period.end".into(),
                });
            }
            Ok(Some(Range { lo, hi }))
        }
        _ => Ok(None),
    }
}

fn reference_of(v: &Value, target: Option<&str>) -> Option<String> {
    let s = v.get("reference")?.as_str()?;
    let key = Reference::parse(s).ok()?.local_key()?;
    match target {
        Some(t) if !key.starts_with(&format!("{t}/")) => None,
        _ => Some(key),
    }
}

/// Extracts the index entries of `resource` for the parameters of its type.
///
/// Fails when an indexed date cannot be read, so that such a resource is refused at the
/// boundary rather than stored unsearchable.
pub fn extract(resource: &Value) -> Result<IndexEntries, ExtractError> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = IndexEntries::default();
    for param in params_for(resource_type) {
        extract_param(resource, resource_type, param, &mut out)?;
    }
    if resource_type == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            out.patients.push(id.to_string());
        }
    }
    for (p, key) in &out.references {
        if *p == "patient" {
            if let Some(id) = key.strip_prefix("Patient/") {
                out.patients.push(id.to_string());
            }
        }
    }
    out.patients.sort();
    out.patients.dedup();
    dedup(&mut out.tokens);
    dedup(&mut out.strings);
    dedup(&mut out.dates);
    dedup(&mut out.references);
    Ok(out)
}

fn dedup<T: Ord>(v: &mut Vec<T>) {
    v.sort();
    v.dedup();
}

fn extract_param(
    resource: &Value,
    resource_type: &str,
    param: &'static SearchParam,
    out: &mut IndexEntries,
) -> Result<(), ExtractError> {
    for path in param.paths {
        for (v, loc) in values_at(resource, resource_type, path) {
            match param.kind {
                ParamKind::Token => {
                    let mut t = Vec::new();
                    tokens_of(v, &mut t);
                    out.tokens
                        .extend(t.into_iter().map(|(s, c)| (param.name, s, c)));
                }
                ParamKind::String => {
                    let mut s = Vec::new();
                    strings_of(v, &mut s);
                    out.strings.extend(
                        s.into_iter()
                            .filter(|(n, _)| !n.is_empty())
                            .map(|(n, e)| (param.name, n, e)),
                    );
                }
                ParamKind::Date => {
                    if let Some(r) = date_of(v, &loc)? {
                        out.dates.push((param.name, r.lo, r.hi));
                    }
                }
                ParamKind::Reference => {
                    if let Some(key) = reference_of(v, param.target) {
                        out.references.push((param.name, key));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The ids of the patients whose compartment `resource` belongs to.
pub fn patient_compartment(resource: &Value) -> Vec<String> {
    extract(resource).map(|e| e.patients).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn observation_entries() {
        let obs = json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-05T10:00:00Z",
            "valueQuantity": {"value": 72}
        });
        let e = extract(&obs).unwrap();
        assert!(e
            .tokens
            .contains(&("code", "http://loinc.org".into(), "8867-4".into())));
        assert!(e.tokens.contains(&("status", "".into(), "final".into())));
        assert!(e.references.contains(&("patient", "Patient/p1".into())));
        assert!(e.references.contains(&("subject", "Patient/p1".into())));
        assert_eq!(e.dates.len(), 1);
        assert_eq!(e.patients, vec!["p1".to_string()]);
    }

    #[test]
    fn patient_names_and_identifiers() {
        let p = json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
            "name": [{"family": "Khan", "given": ["Amy", "Rose"]}],
            "birthDate": "1950-02-03",
            "address": [{"line": ["1 Mill Lane"], "postalCode": "LS6 2AB"}]
        });
        let e = extract(&p).unwrap();
        assert!(e.tokens.contains(&(
            "identifier",
            "https://fhir.nhs.uk/Id/nhs-number".into(),
            "9434765919".into()
        )));
        assert!(e
            .strings
            .contains(&("family", "khan".into(), "Khan".into())));
        assert!(e.strings.contains(&("given", "rose".into(), "Rose".into())));
        assert!(e.strings.contains(&("name", "amy".into(), "Amy".into())));
        assert!(e
            .strings
            .contains(&("address-postalcode", "ls6 2ab".into(), "LS6 2AB".into())));
        assert_eq!(e.patients, vec!["p1".to_string()]);
    }

    #[test]
    fn an_unreadable_indexed_date_is_an_error_with_its_location() {
        let p = json!({"resourceType": "Patient", "birthDate": "1950-02-30"});
        let err = extract(&p).unwrap_err();
        assert_eq!(err.location, "Patient.birthDate");
    }

    #[test]
    fn reference_params_with_a_target_only_take_that_type() {
        let t = json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "for": {"reference": "Group/g1"}});
        let e = extract(&t).unwrap();
        assert!(e.patients.is_empty());
        assert!(e.references.contains(&("subject", "Group/g1".into())));
    }
}
