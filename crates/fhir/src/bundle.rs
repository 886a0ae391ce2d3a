//! Reading Bundles: their type, entries and the requests of transaction and batch entries.

use serde_json::Value;

use crate::outcome::{Issue, IssueType};
use crate::types::{is_resource_type, is_valid_id};

/// `Bundle.type`, for the kinds the hub acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleType {
    Transaction,
    Batch,
    Collection,
    Searchset,
    History,
    Document,
    Message,
    Other(String),
}

impl BundleType {
    fn parse(s: &str) -> BundleType {
        match s {
            "transaction" => BundleType::Transaction,
            "batch" => BundleType::Batch,
            "collection" => BundleType::Collection,
            "searchset" => BundleType::Searchset,
            "history" => BundleType::History,
            "document" => BundleType::Document,
            "message" => BundleType::Message,
            other => BundleType::Other(other.to_string()),
        }
    }
}

/// An HTTP verb of a transaction or batch entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
}

/// What a request URL addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `Type` (create, or search with a query).
    Type(String),
    /// `Type?query`: a search, or a conditional update or delete.
    Conditional {
        resource_type: String,
        query: String,
    },
    /// `Type/id`.
    Instance { resource_type: String, id: String },
    /// `Type/id/_history/v`.
    Version {
        resource_type: String,
        id: String,
        version: String,
    },
}

impl Target {
    /// Parses a relative request URL such as `Patient/123` or `Patient?identifier=x|1`.
    pub fn parse(url: &str) -> Option<Target> {
        let url = url.trim_start_matches('/');
        if let Some((ty, query)) = url.split_once('?') {
            if !is_resource_type(ty) {
                return None;
            }
            return Some(if query.is_empty() {
                Target::Type(ty.to_string())
            } else {
                Target::Conditional {
                    resource_type: ty.to_string(),
                    query: query.to_string(),
                }
            });
        }
        let parts: Vec<&str> = url.split('/').collect();
        match parts.as_slice() {
            [ty] if is_resource_type(ty) => Some(Target::Type(ty.to_string())),
            [ty, id] if is_resource_type(ty) && is_valid_id(id) => Some(Target::Instance {
                resource_type: ty.to_string(),
                id: id.to_string(),
            }),
            [ty, id, "_history", v] if is_resource_type(ty) && is_valid_id(id) => {
                Some(Target::Version {
                    resource_type: ty.to_string(),
                    id: id.to_string(),
                    version: v.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// `Bundle.entry.request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub target: Target,
    pub if_none_exist: Option<String>,
    pub if_match: Option<String>,
}

/// One Bundle entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub index: usize,
    pub full_url: Option<String>,
    pub resource: Option<Value>,
    pub request: Option<Request>,
}

/// A Bundle taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub bundle_type: BundleType,
    pub entries: Vec<Entry>,
}

fn entry_issue(i: usize, code: IssueType, msg: impl Into<String>) -> Issue {
    Issue::error(code, msg).at(format!("Bundle.entry[{i}]"))
}

/// Takes a Bundle apart. For transaction and batch Bundles every entry must carry a
/// request with a method and a URL the hub understands.
pub fn parse_bundle(bundle: Value) -> Result<Bundle, Vec<Issue>> {
    let Value::Object(mut obj) = bundle else {
        return Err(vec![Issue::error(
            IssueType::Structure,
            "a Bundle must be a JSON object",
        )]);
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(vec![
            Issue::error(IssueType::Structure, "not a Bundle").at("resourceType")
        ]);
    }
    let bundle_type = match obj.get("type").and_then(Value::as_str) {
        Some(t) => BundleType::parse(t),
        None => {
            return Err(vec![Issue::error(
                IssueType::Required,
                "Bundle.type is required",
            )
            .at("Bundle.type")])
        }
    };
    let needs_request = matches!(bundle_type, BundleType::Transaction | BundleType::Batch);
    let raw_entries = match obj.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(vec![Issue::error(
                IssueType::Structure,
                "Bundle.entry must be an array",
            )
            .at("Bundle.entry")])
        }
    };
    let mut issues = Vec::new();
    let mut entries = Vec::with_capacity(raw_entries.len());
    for (index, e) in raw_entries.into_iter().enumerate() {
        let Value::Object(mut e) = e else {
            issues.push(entry_issue(
                index,
                IssueType::Structure,
                "an entry must be an object",
            ));
            continue;
        };
        let full_url = e.get("fullUrl").and_then(Value::as_str).map(str::to_string);
        let resource = e.remove("resource");
        if resource.as_ref().is_some_and(|r| !r.is_object()) {
            issues.push(entry_issue(
                index,
                IssueType::Structure,
                "entry.resource must be an object",
            ));
            continue;
        }
        let request = match e.get("request") {
            None if needs_request => {
                issues.push(entry_issue(
                    index,
                    IssueType::Required,
                    "entry.request is required in a transaction or batch",
                ));
                continue;
            }
            None => None,
            Some(r) => {
                let method = match r.get("method").and_then(Value::as_str) {
                    Some("GET") => Method::Get,
                    Some("POST") => Method::Post,
                    Some("PUT") => Method::Put,
                    Some("DELETE") => Method::Delete,
                    Some("PATCH") => Method::Patch,
                    Some("HEAD") => Method::Head,
                    other => {
                        issues.push(entry_issue(
                            index,
                            IssueType::Value,
                            format!(
                                "entry.request.method {other:?} is not an HTTP verb FHIR allows"
                            ),
                        ));
                        continue;
                    }
                };
                let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
                let Some(target) = Target::parse(url) else {
                    issues.push(entry_issue(
                        index,
                        IssueType::Value,
                        format!("entry.request.url '{url}' is not Type, Type/id or Type?query"),
                    ));
                    continue;
                };
                Some(Request {
                    method,
                    url: url.to_string(),
                    target,
                    if_none_exist: r
                        .get("ifNoneExist")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    if_match: r.get("ifMatch").and_then(Value::as_str).map(str::to_string),
                })
            }
        };
        entries.push(Entry {
            index,
            full_url,
            resource,
            request,
        });
    }
    if issues.is_empty() {
        Ok(Bundle {
            bundle_type,
            entries,
        })
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transaction_entries_parse() {
        let b = parse_bundle(json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=x|1"}},
            {"request": {"method": "DELETE", "url": "Patient?identifier=x|2"}},
            {"resource": {"resourceType": "Patient", "id": "p"}, "request": {"method": "PUT", "url": "Patient/p"}}
        ]})).unwrap();
        assert_eq!(b.bundle_type, BundleType::Transaction);
        assert_eq!(b.entries.len(), 3);
        assert_eq!(
            b.entries[0]
                .request
                .as_ref()
                .unwrap()
                .if_none_exist
                .as_deref(),
            Some("identifier=x|1")
        );
        assert!(matches!(
            b.entries[1].request.as_ref().unwrap().target,
            Target::Conditional { .. }
        ));
        assert!(matches!(
            b.entries[2].request.as_ref().unwrap().target,
            Target::Instance { .. }
        ));
    }

    #[test]
    fn bad_bundles_are_refused_with_the_entry_named() {
        assert!(parse_bundle(json!({"resourceType": "Bundle"})).is_err());
        let e = parse_bundle(json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient"}}
        ]})).unwrap_err();
        assert_eq!(e[0].expression.as_deref(), Some("Bundle.entry[1]"));
    }
}
