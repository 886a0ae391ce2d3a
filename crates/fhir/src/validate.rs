//! Structural validation at the boundary: what the hub checks before it writes anything.
//!
//! The hub does not carry a full FHIR model. It checks what it must to store, index and
//! reason about a resource correctly: well-formed JSON object, known `resourceType`, legal
//! `id`, `meta` shape, no `null` members or empty strings (FHIR JSON forbids both), every
//! `reference` well formed, the required elements of the types the product reasons about,
//! readable dates in indexed elements, and a nesting limit. Everything else — including
//! elements and extensions it does not know — is kept exactly as sent.

use serde_json::Value;

use crate::datetime::parse_instant;
use crate::outcome::{Issue, IssueType};
use crate::reference::Reference;
use crate::search::{extract, IndexEntries};
use crate::types::{is_resource_type, is_valid_id};

/// Deepest nesting accepted in a resource (objects and arrays).
pub const MAX_DEPTH: usize = 64;

/// How bad a refused resource is: the hub answers 400 for [`Severity::Structure`] and 422
/// for [`Severity::Content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Not a resource the hub can parse as FHIR at all (wrong shape, unknown type, bad id).
    Structure,
    /// A FHIR resource that breaks a rule (missing required element, bad reference, bad date).
    Content,
}

/// Why a resource was refused, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub severity: Severity,
    pub issues: Vec<Issue>,
}

impl Invalid {
    fn structure(issue: Issue) -> Invalid {
        Invalid {
            severity: Severity::Structure,
            issues: vec![issue],
        }
    }
}

/// Where references may point: a Bundle entry may still hold `Type?search` references that
/// the transaction resolves; a resource stored on its own may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceRules {
    Stored,
    InBundle,
}

/// Required elements (FHIR R4 cardinality 1..) of the types the product reasons about.
fn required(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Observation" => &["status", "code"],
        "Condition" => &["subject"],
        "AllergyIntolerance" => &["patient"],
        "MedicationStatement" => &["status", "medication[x]", "subject"],
        "MedicationRequest" => &["status", "intent", "medication[x]", "subject"],
        "CarePlan" => &["status", "intent", "subject"],
        "Task" => &["status", "intent"],
        "Appointment" => &["status", "participant"],
        "DocumentReference" => &["status", "content"],
        "Flag" => &["status", "code", "subject"],
        "Consent" => &["status", "scope", "category"],
        "EpisodeOfCare" => &["status", "patient"],
        "Encounter" => &["status", "class"],
        "AuditEvent" => &["type", "recorded", "agent", "source"],
        "Provenance" => &["target", "recorded", "agent"],
        "Bundle" => &["type"],
        _ => &[],
    }
}

fn has_element(obj: &serde_json::Map<String, Value>, name: &str) -> bool {
    let present = |v: &Value| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Null => false,
        _ => true,
    };
    match name.strip_suffix("[x]") {
        Some(prefix) => obj.iter().any(|(k, v)| {
            k.len() > prefix.len()
                && k.starts_with(prefix)
                && k.as_bytes()[prefix.len()].is_ascii_uppercase()
                && present(v)
        }),
        None => obj.get(name).is_some_and(present),
    }
}

/// Walks the tree checking depth, nulls, empty strings and references.
fn walk(
    v: &Value,
    path: &str,
    depth: usize,
    rules: ReferenceRules,
    issues: &mut Vec<Issue>,
) -> bool {
    if depth > MAX_DEPTH {
        issues.push(
            Issue::error(
                IssueType::TooLong,
                format!("resource is nested deeper than {MAX_DEPTH} levels"),
            )
            .at(path),
        );
        return false;
    }
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let child_path = format!("{path}.{k}");
                if k.is_empty() {
                    issues.push(Issue::error(IssueType::Structure, "empty property name").at(path));
                }
                match child {
                    Value::Null => issues.push(
                        Issue::error(
                            IssueType::Structure,
                            "null is not allowed as a property value in FHIR JSON; leave the property out",
                        )
                        .at(&child_path),
                    ),
                    Value::String(s) if k == "reference" => {
                        match Reference::parse(s) {
                            Ok(Reference::Conditional { .. }) if rules == ReferenceRules::Stored => {
                                issues.push(
                                    Issue::error(
                                        IssueType::Value,
                                        format!("conditional reference '{s}' is only resolved inside a transaction or batch Bundle"),
                                    )
                                    .at(&child_path),
                                )
                            }
                            Ok(_) => {}
                            Err(e) => {
                                issues.push(Issue::error(IssueType::Value, e.to_string()).at(&child_path))
                            }
                        }
                    }
                    _ => {
                        if !walk(child, &child_path, depth + 1, rules, issues) {
                            return false;
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                issues.push(
                    Issue::error(
                        IssueType::Structure,
                        "empty arrays are not allowed in FHIR JSON",
                    )
                    .at(path),
                );
            }
            for (i, item) in items.iter().enumerate() {
                // Nulls inside arrays are legal: they align primitive arrays with their `_x` twins.
                if !item.is_null() && !walk(item, &format!("{path}[{i}]"), depth + 1, rules, issues)
                {
                    return false;
                }
            }
        }
        Value::String(s) if s.is_empty() => issues.push(
            Issue::error(
                IssueType::Value,
                "empty strings are not allowed in FHIR JSON",
            )
            .at(path),
        ),
        _ => {}
    }
    true
}

/// Validates `resource` and returns its search index entries.
pub fn validate(resource: &Value, rules: ReferenceRules) -> Result<IndexEntries, Invalid> {
    let Some(obj) = resource.as_object() else {
        return Err(Invalid::structure(Issue::error(
            IssueType::Structure,
            "a resource must be a JSON object",
        )));
    };
    let resource_type = match obj.get("resourceType") {
        Some(Value::String(t)) if is_resource_type(t) => t.as_str(),
        Some(Value::String(t)) => {
            return Err(Invalid::structure(
                Issue::error(
                    IssueType::NotSupported,
                    format!("'{t}' is not a FHIR R4 resource type"),
                )
                .at("resourceType"),
            ))
        }
        _ => {
            return Err(Invalid::structure(Issue::error(
                IssueType::Required,
                "resourceType is required (a string naming a FHIR R4 resource type)",
            )))
        }
    };
    match obj.get("id") {
        None => {}
        Some(Value::String(id)) if is_valid_id(id) => {}
        Some(other) => {
            return Err(Invalid::structure(
                Issue::error(
                    IssueType::Value,
                    format!("id {other} is not a legal FHIR id (1-64 of A-Z a-z 0-9 - .)"),
                )
                .at(format!("{resource_type}.id")),
            ))
        }
    }
    let mut issues = Vec::new();
    if !walk(resource, resource_type, 0, rules, &mut issues) {
        return Err(Invalid {
            severity: Severity::Structure,
            issues,
        });
    }
    if let Some(meta) = obj.get("meta") {
        match meta {
            Value::Object(m) => {
                if let Some(v) = m.get("versionId") {
                    if !v.is_string() {
                        issues.push(
                            Issue::error(IssueType::Value, "meta.versionId must be a string")
                                .at(format!("{resource_type}.meta.versionId")),
                        );
                    }
                }
                if let Some(v) = m.get("lastUpdated") {
                    if v.as_str().map(parse_instant).is_none_or(|r| r.is_err()) {
                        issues.push(
                            Issue::error(
                                IssueType::Value,
                                "meta.lastUpdated must be a FHIR instant",
                            )
                            .at(format!("{resource_type}.meta.lastUpdated")),
                        );
                    }
                }
                for key in ["security", "tag", "profile"] {
                    if m.get(key).is_some_and(|v| !v.is_array()) {
                        issues.push(
                            Issue::error(
                                IssueType::Structure,
                                format!("meta.{key} must be an array"),
                            )
                            .at(format!("{resource_type}.meta.{key}")),
                        );
                    }
                }
            }
            _ => issues.push(
                Issue::error(IssueType::Structure, "meta must be an object")
                    .at(format!("{resource_type}.meta")),
            ),
        }
    }
    for element in required(resource_type) {
        if !has_element(obj, element) {
            issues.push(
                Issue::error(
                    IssueType::Required,
                    format!("{resource_type}.{element} is required"),
                )
                .at(format!("{resource_type}.{element}")),
            );
        }
    }
    if resource_type == "Organization"
        && !has_element(obj, "name")
        && !has_element(obj, "identifier")
    {
        issues.push(Issue::error(
            IssueType::Invariant,
            "org-1: an Organization needs at least a name or an identifier",
        ));
    }
    let entries = match extract(resource) {
        Ok(e) => Some(e),
        Err(e) => {
            issues.push(Issue::error(IssueType::Value, e.message).at(e.location));
            None
        }
    };
    match entries {
        Some(e) if issues.is_empty() => Ok(e),
        _ => Err(Invalid {
            severity: Severity::Content,
            issues,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(v: Value) -> Invalid {
        validate(&v, ReferenceRules::Stored).expect_err("should be refused")
    }

    #[test]
    fn a_plain_valid_resource_passes_with_unknown_elements_kept() {
        let v = json!({"resourceType": "Patient", "id": "p1", "someFutureElement": {"x": 1},
            "extension": [{"url": "http://example.org/x", "valueString": "y"}]});
        assert!(validate(&v, ReferenceRules::Stored).is_ok());
    }

    #[test]
    fn structure_problems_are_structural() {
        assert_eq!(refused(json!([1])).severity, Severity::Structure);
        assert_eq!(refused(json!({"id": "x"})).severity, Severity::Structure);
        let e = refused(json!({"resourceType": "Patinet"}));
        assert!(e.issues[0].diagnostics.contains("'Patinet'"));
        assert_eq!(
            refused(json!({"resourceType": "Patient", "id": "a b"})).severity,
            Severity::Structure
        );
    }

    #[test]
    fn content_problems_name_the_element() {
        let e = refused(json!({"resourceType": "Observation", "code": {"text": "x"}}));
        assert_eq!(e.severity, Severity::Content);
        assert_eq!(
            e.issues[0].expression.as_deref(),
            Some("Observation.status")
        );

        let e = refused(
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/has space"}}),
        );
        assert_eq!(
            e.issues[0].expression.as_deref(),
            Some("Observation.subject.reference")
        );

        let e = refused(json!({"resourceType": "Patient", "gender": null}));
        assert_eq!(e.issues[0].expression.as_deref(), Some("Patient.gender"));

        let e = refused(json!({"resourceType": "Patient", "name": [{"family": ""}]}));
        assert_eq!(
            e.issues[0].expression.as_deref(),
            Some("Patient.name[0].family")
        );

        let e = refused(json!({"resourceType": "Patient", "birthDate": "1950-02-30"}));
        assert_eq!(e.issues[0].expression.as_deref(), Some("Patient.birthDate"));

        let e = refused(json!({"resourceType": "Organization", "active": true}));
        assert!(e.issues[0].diagnostics.starts_with("org-1"));
    }

    #[test]
    fn conditional_references_only_inside_bundles() {
        let v = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
            "subject": {"reference": "Patient?identifier=x|1"}});
        assert!(validate(&v, ReferenceRules::Stored).is_err());
        assert!(validate(&v, ReferenceRules::InBundle).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let mut v = json!("leaf");
        for _ in 0..200 {
            v = json!({ "a": v });
        }
        v["resourceType"] = json!("Basic");
        v["code"] = json!({"text": "x"});
        let e = refused(v);
        assert_eq!(e.severity, Severity::Structure);
        assert_eq!(e.issues[0].code, IssueType::TooLong);
    }
}
