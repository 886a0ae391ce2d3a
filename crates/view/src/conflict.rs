//! Conflicts side by side, and a person's combined resolution.
//!
//! A conflict holds three versions of one resource (the common ancestor, the
//! device's edit, the hub's current version) and, as the hub described them,
//! the elements that could not merge (`careshare_merge::Conflict`: a readable
//! `path`, a JSON `pointer`, and the element's value in each version, absent
//! when missing). This module shows each element as short text and builds
//! the resource a "combined" decision means.

use std::collections::HashMap;

use careshare_merge::{merge, resolve, Choice};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::{AppError, ConflictElement, ConflictItem, ElementPick};
use crate::summary::{concept_text, quantity_text};

/// A conflict as the device holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictRecord {
    /// Local id.
    pub id: i64,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// The patient.
    pub patient_id: String,
    /// The common ancestor, when known.
    pub base: Option<Value>,
    /// The device's version (`null`: a delete).
    pub ours: Value,
    /// The hub's version (`null`: deleted on the hub).
    pub theirs: Value,
    /// The elements that could not merge, as the hub described them.
    pub elements: Value,
    /// When it was detected.
    pub detected_at: DateTime<Utc>,
}

/// One element as described by the hub.
#[derive(Debug, Clone, PartialEq)]
struct Element {
    path: String,
    pointer: String,
    base: Option<Value>,
    ours: Option<Value>,
    theirs: Option<Value>,
}

fn elements(c: &ConflictRecord) -> Vec<Element> {
    let described: Vec<Element> = c
        .elements
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Element {
                path: e.get("path")?.as_str()?.to_owned(),
                pointer: e
                    .get("pointer")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                base: e.get("base").cloned(),
                ours: e.get("ours").cloned(),
                theirs: e.get("theirs").cloned(),
            })
        })
        .collect();
    if !described.is_empty() {
        return described;
    }
    // Not described: merge here, or show the whole record.
    if let (Some(base), true, true) = (&c.base, c.ours.is_object(), c.theirs.is_object()) {
        if let Ok(outcome) = merge(base, &c.ours, &c.theirs) {
            if outcome.is_conflicted() {
                return outcome
                    .conflicts()
                    .iter()
                    .map(|k| Element {
                        path: k.path.clone(),
                        pointer: k.pointer.clone(),
                        base: k.base.clone(),
                        ours: k.ours.clone(),
                        theirs: k.theirs.clone(),
                    })
                    .collect();
            }
        }
    }
    let present = |v: &Value| (!v.is_null()).then(|| v.clone());
    vec![Element {
        path: String::new(),
        pointer: String::new(),
        base: c.base.clone(),
        ours: present(&c.ours),
        theirs: present(&c.theirs),
    }]
}

/// What a resource is, in a few words.
pub fn describe(resource: &Value) -> Option<String> {
    let s = |k: &str| {
        resource
            .get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
    };
    s("description")
        .or_else(|| s("title"))
        .or_else(|| concept_text(resource.get("code")))
        .or_else(|| concept_text(resource.get("medicationCodeableConcept")))
        .or_else(|| concept_text(resource.get("type")))
}

/// An element's value as short text; absent is `""`.
pub fn render(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| render(Some(i)))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Some(v @ Value::Object(o)) => {
            if o.contains_key("resourceType") {
                let kind = o.get("resourceType").and_then(Value::as_str).unwrap_or("");
                return match describe(v) {
                    Some(d) => format!("{kind}: {d}"),
                    None => format!("{kind} (whole record)"),
                };
            }
            if o.contains_key("value") && !o.contains_key("coding") {
                if let Some(q) = quantity_text(v) {
                    return q;
                }
            }
            if o.contains_key("coding") || (o.len() == 1 && o.contains_key("text")) {
                if let Some(t) = concept_text(Some(v)) {
                    return t;
                }
            }
            if let Some(t) = o.get("text").and_then(Value::as_str) {
                return t.to_owned();
            }
            if let Some(d) = o.get("display").and_then(Value::as_str) {
                return d.to_owned();
            }
            if let Some(r) = o.get("reference").and_then(Value::as_str) {
                return r.to_owned();
            }
            if o.contains_key("start") || o.contains_key("end") {
                let part = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
                return format!("{} – {}", part("start"), part("end"))
                    .trim()
                    .to_owned();
            }
            v.to_string()
        }
    }
}

/// Splits a readable path on dots outside `[...]` selectors: each segment's
/// name and selector.
fn segments(path: &str) -> Vec<(&str, Option<&str>)> {
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, b) in path.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'.' if depth == 0 => {
                pieces.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&path[start..]);
    pieces
        .into_iter()
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.find('[') {
            Some(i) => (&seg[..i], seg.get(i + 1..seg.len().saturating_sub(1))),
            None => (seg, None),
        })
        .collect()
}

fn words(name: &str) -> String {
    let name = name
        .strip_prefix("value")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(name, |_| "value");
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The item of `array` (of the resources given) that a `code=system|code`
/// selector names, as words.
fn selected(name: &str, selector: &str, sides: &[&Value]) -> Option<String> {
    let code = selector.strip_prefix("code=")?.rsplit('|').next()?;
    sides.iter().find_map(|side| {
        side.get(name)?.as_array()?.iter().find_map(|item| {
            let c = item.get("code")?;
            let matches = c
                .get("coding")?
                .as_array()?
                .iter()
                .any(|k| k.get("code").and_then(Value::as_str) == Some(code));
            matches.then(|| concept_text(Some(c))).flatten()
        })
    })
}

/// A label for people from an element's path: `status` → "Status",
/// `component[code=http://loinc.org|8480-6].valueQuantity.value` →
/// "Systolic blood pressure" (the item's own words when the resource names
/// them), `note[id=n1].text` → "Note".
pub fn label(path: &str, sides: &[&Value]) -> String {
    if path.is_empty() {
        return "Whole record".into();
    }
    let mut parts: Vec<String> = Vec::new();
    for (name, selector) in segments(path) {
        match selector.and_then(|s| selected(name, s, sides)) {
            Some(own) => {
                parts.clear();
                parts.push(own);
            }
            None => parts.push(words(name)),
        }
    }
    while parts.len() > 1
        && parts
            .last()
            .is_some_and(|p| matches!(p.as_str(), "value" | "text" | "display"))
    {
        parts.pop();
    }
    let text = parts.join(" ");
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("meta")?.get(key)?.as_str()
}

/// The conflict for the inbox.
pub fn conflict_item(
    c: &ConflictRecord,
    patient_name: Option<String>,
    organisations: &HashMap<String, String>,
) -> ConflictItem {
    let sides: Vec<&Value> = [&c.theirs, &c.ours]
        .into_iter()
        .chain(c.base.as_ref())
        .filter(|v| v.is_object())
        .collect();
    let what = sides.iter().find_map(|v| describe(v));
    let title = match what {
        Some(w) => format!("{}: {w}", c.resource_type),
        None => format!("{}/{}", c.resource_type, c.resource_id),
    };
    let theirs_by = meta_str(&c.theirs, "source").map(|s| {
        let id = s.rsplit_once("Organization/").map_or(s, |(_, id)| id);
        organisations
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    });
    let mine_at = meta_str(&c.ours, "lastUpdated")
        .or_else(|| c.ours.get("lastModified").and_then(Value::as_str))
        .map(str::to_owned);
    ConflictItem {
        id: c.id,
        reference: format!("{}/{}", c.resource_type, c.resource_id),
        title,
        patient_id: c.patient_id.clone(),
        patient_name,
        detected_at: c.detected_at,
        mine_at,
        theirs_by,
        theirs_at: meta_str(&c.theirs, "lastUpdated").map(str::to_owned),
        elements: elements(c)
            .into_iter()
            .map(|e| ConflictElement {
                label: label(&e.path, &sides),
                base: render(e.base.as_ref()),
                mine: render(e.ours.as_ref()),
                theirs: render(e.theirs.as_ref()),
                path: e.path,
            })
            .collect(),
    }
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new("invalid-input", message)
}

/// The JSON value of text typed for an element shaped like `like`.
pub fn typed_value(text: &str, like: Option<&Value>, label: &str) -> Result<Value, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(format!(
            "{label}: type a value, or keep one of the two versions"
        )));
    }
    let number = |t: &str| -> Result<Value, AppError> {
        let v: Value = serde_json::from_str(t)
            .ok()
            .filter(Value::is_number)
            .ok_or_else(|| invalid(format!("{label}: {t:?} is not a number")))?;
        Ok(v)
    };
    Ok(match like {
        None | Some(Value::Null) | Some(Value::String(_)) => Value::String(text.to_owned()),
        Some(Value::Number(_)) => number(text)?,
        Some(Value::Bool(_)) => match text.to_lowercase().as_str() {
            "yes" | "true" => Value::Bool(true),
            "no" | "false" => Value::Bool(false),
            _ => return Err(invalid(format!("{label}: answer yes or no"))),
        },
        Some(Value::Object(o)) if o.contains_key("value") && !o.contains_key("coding") => {
            let first = text.split_whitespace().next().unwrap_or("");
            let mut q = o.clone();
            q.insert("value".into(), number(first)?);
            Value::Object(q)
        }
        Some(Value::Object(o)) if o.contains_key("coding") => {
            serde_json::json!({ "text": text })
        }
        Some(Value::Object(o)) if o.contains_key("text") => {
            let mut a = o.clone();
            a.insert("text".into(), Value::String(text.to_owned()));
            Value::Object(a)
        }
        Some(_) => {
            return Err(invalid(format!(
                "{label}: this element cannot be typed; keep one of the two versions"
            )))
        }
    })
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Sets (or with `None` removes) the element at an RFC 6901 pointer whose
/// parent exists.
fn set_pointer(root: &mut Value, pointer: &str, value: Option<Value>) -> bool {
    if pointer.is_empty() {
        return false;
    }
    let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    let Some((last, parents)) = tokens.split_last() else {
        return false;
    };
    let mut here = root;
    for t in parents {
        here = match here {
            Value::Object(o) => match o.get_mut(t) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (here, value) {
        (Value::Object(o), Some(v)) => {
            o.insert(last.clone(), v);
            true
        }
        (Value::Object(o), None) => {
            o.remove(last);
            true
        }
        (Value::Array(a), Some(v)) => match last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        },
        (Value::Array(a), None) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The resource a combined decision means: the merge of both versions (every
/// change that merges, from either side) with each conflicting element taken
/// as picked (`mine`, `theirs`, or `value` with the typed text); an element
/// without a pick keeps the hub's value. Refuses a pick of an unknown
/// element or a value that cannot be typed.
pub fn combine(c: &ConflictRecord, picks: &[ElementPick]) -> Result<Value, AppError> {
    let described = elements(c);
    for p in picks {
        if !described.iter().any(|e| e.path == p.path) {
            return Err(invalid(format!(
                "{}: not an element of this conflict",
                p.path
            )));
        }
        if !matches!(p.take.as_str(), "mine" | "theirs" | "value") {
            return Err(invalid(format!(
                "{}: take must be mine, theirs or value, not {:?}",
                p.path, p.take
            )));
        }
    }
    let sides: Vec<&Value> = [&c.theirs, &c.ours]
        .into_iter()
        .filter(|v| v.is_object())
        .collect();
    let pick = |path: &str| picks.iter().find(|p| p.path == path);
    let choice = |e: &Element| -> Result<Choice, AppError> {
        Ok(match pick(&e.path) {
            None => Choice::Theirs,
            Some(p) => match p.take.as_str() {
                "mine" => Choice::Ours,
                "theirs" => Choice::Theirs,
                _ => Choice::Combined(typed_value(
                    p.value.as_deref().unwrap_or(""),
                    e.theirs.as_ref().or(e.ours.as_ref()).or(e.base.as_ref()),
                    &label(&e.path, &sides),
                )?),
            },
        })
    };

    // Deleted on one side: the whole record is the one decision.
    if c.ours.is_null() || c.theirs.is_null() {
        let root = described
            .first()
            .map(|e| e.path.clone())
            .unwrap_or_default();
        return match pick(&root).map(|p| p.take.as_str()) {
            Some("mine") => Ok(c.ours.clone()),
            Some("value") => Err(invalid(
                "a deleted record cannot be typed; keep one of the two versions",
            )),
            _ => Ok(c.theirs.clone()),
        };
    }

    if let Some(base) = c.base.as_ref().filter(|b| b.is_object()) {
        if let Ok(outcome) = merge(base, &c.ours, &c.theirs) {
            let conflicts = outcome.conflicts();
            let same_paths = picks
                .iter()
                .all(|p| conflicts.iter().any(|k| k.path == p.path));
            if same_paths {
                let mut choices = Vec::new();
                for k in conflicts {
                    let e = described
                        .iter()
                        .find(|e| e.path == k.path)
                        .cloned()
                        .unwrap_or_else(|| Element {
                            path: k.path.clone(),
                            pointer: k.pointer.clone(),
                            base: k.base.clone(),
                            ours: k.ours.clone(),
                            theirs: k.theirs.clone(),
                        });
                    choices.push((k.path.clone(), choice(&e)?));
                }
                if let Ok(v) = resolve(&outcome, choices) {
                    return Ok(v);
                }
            }
        }
    }

    // No usable ancestor: the hub's version with the picked elements set at
    // the hub's pointers.
    let mut out = c.theirs.clone();
    for e in &described {
        let value = match choice(e)? {
            Choice::Theirs => continue,
            Choice::Ours => e.ours.clone(),
            Choice::Base => e.base.clone(),
            Choice::Combined(v) => Some(v),
        };
        if e.pointer.is_empty() {
            return match value {
                Some(v) if v.is_object() => Ok(v),
                _ => Err(invalid("the whole record cannot be typed")),
            };
        }
        if !set_pointer(&mut out, &e.pointer, value) {
            return Err(invalid(format!(
                "{}: the element is no longer where it was; keep one of the two versions",
                e.path
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn task(status: &str, note: Option<&str>, meta: Value) -> Value {
        let mut t = json!({
            "resourceType": "Task", "id": "t1", "meta": meta,
            "status": status, "intent": "order", "priority": "routine",
            "description": "Wound dressing change",
            "for": {"reference": "Patient/p1"}
        });
        if let Some(n) = note {
            t["note"] = json!([{"text": n}]);
        }
        t
    }

    /// A conflict as the client stores it, with the hub's description.
    fn record() -> ConflictRecord {
        let base = task("requested", None, json!({"versionId": "1"}));
        let mut ours = task(
            "completed",
            Some("Done at 10:40"),
            json!({"versionId": "1"}),
        );
        ours["priority"] = json!("urgent");
        let theirs = task(
            "cancelled",
            None,
            json!({"versionId": "2", "lastUpdated": "2026-11-26T09:12:00Z", "source": "Organization/org-gp-1"}),
        );
        let outcome = merge(&base, &ours, &theirs).unwrap();
        ConflictRecord {
            id: 7,
            resource_type: "Task".into(),
            resource_id: "t1".into(),
            patient_id: "p1".into(),
            base: Some(base),
            ours,
            theirs,
            elements: serde_json::to_value(outcome.conflicts()).unwrap(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 11, 0, 0).unwrap(),
        }
    }

    fn names() -> HashMap<String, String> {
        [("org-gp-1".to_owned(), "Mill Lane Surgery".to_owned())].into()
    }

    #[test]
    fn an_item_shows_each_element_side_by_side() {
        let item = conflict_item(&record(), Some("KHAN, Amira".into()), &names());
        assert_eq!(item.title, "Task: Wound dressing change");
        assert_eq!(item.reference, "Task/t1");
        assert_eq!(item.theirs_by.as_deref(), Some("Mill Lane Surgery"));
        assert_eq!(item.theirs_at.as_deref(), Some("2026-11-26T09:12:00Z"));
        assert_eq!(item.elements.len(), 1, "{:?}", item.elements);
        let e = &item.elements[0];
        assert_eq!(e.path, "status");
        assert_eq!(e.label, "Status");
        assert_eq!(
            (e.base.as_str(), e.mine.as_str(), e.theirs.as_str()),
            ("requested", "completed", "cancelled")
        );
    }

    #[test]
    fn values_render_as_short_text() {
        assert_eq!(render(None), "");
        assert_eq!(render(Some(&json!("x"))), "x");
        assert_eq!(
            render(Some(&json!({"value": 38.4, "unit": "°C"}))),
            "38.4 °C"
        );
        assert_eq!(
            render(Some(
                &json!({"coding": [{"system": "s", "code": "c", "display": "Penicillin"}]})
            )),
            "Penicillin"
        );
        assert_eq!(render(Some(&json!([{"text": "a"}, {"text": "b"}]))), "a; b");
        assert_eq!(
            render(Some(
                &json!({"reference": "Patient/p1", "display": "Amira"})
            )),
            "Amira"
        );
    }

    #[test]
    fn labels_use_the_items_own_words() {
        let obs = json!({"resourceType": "Observation", "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}], "text": "Systolic blood pressure"}}
        ]});
        assert_eq!(
            label(
                "component[code=http://loinc.org|8480-6].valueQuantity.value",
                &[&obs]
            ),
            "Systolic blood pressure"
        );
        assert_eq!(label("clinicalStatus", &[]), "Clinical status");
        assert_eq!(label("note[id=n1].text", &[]), "Note");
        assert_eq!(label("valueQuantity.value", &[]), "Value");
        assert_eq!(label("", &[]), "Whole record");
    }

    #[test]
    fn a_combined_resolution_merges_and_takes_each_pick() {
        let c = record();
        let pick = |take: &str, value: Option<&str>| ElementPick {
            path: "status".into(),
            take: take.into(),
            value: value.map(str::to_owned),
        };
        let mine = combine(&c, &[pick("mine", None)]).unwrap();
        assert_eq!(mine["status"], "completed");
        assert_eq!(mine["priority"], "urgent", "my other changes are kept");
        assert_eq!(mine["note"][0]["text"], "Done at 10:40");
        assert_eq!(mine["meta"]["versionId"], "2");
        let theirs = combine(&c, &[pick("theirs", None)]).unwrap();
        assert_eq!(theirs["status"], "cancelled");
        let typed = combine(&c, &[pick("value", Some("on-hold"))]).unwrap();
        assert_eq!(typed["status"], "on-hold");
        assert_eq!(combine(&c, &[]).unwrap()["status"], "cancelled");

        let bad = ElementPick {
            path: "nope".into(),
            take: "mine".into(),
            value: None,
        };
        assert_eq!(combine(&c, &[bad]).unwrap_err().code, "invalid-input");
        assert!(combine(&c, &[pick("value", Some(" "))]).is_err());
    }

    #[test]
    fn without_an_ancestor_the_picks_are_set_at_their_pointers() {
        let mut c = record();
        c.base = None;
        let v = combine(
            &c,
            &[ElementPick {
                path: "status".into(),
                take: "mine".into(),
                value: None,
            }],
        )
        .unwrap();
        assert_eq!(v["status"], "completed");
        assert_eq!(v["priority"], "routine", "otherwise the hub's version");
    }

    #[test]
    fn typed_values_follow_the_elements_shape() {
        let q = json!({"value": 4.2, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"});
        let v = typed_value("3.9 cm", Some(&q), "Length").unwrap();
        assert_eq!(v["value"].to_string(), "3.9");
        assert_eq!(v["unit"], "cm");
        assert!(typed_value("long", Some(&q), "Length").is_err());
        assert_eq!(typed_value("12", Some(&json!(3)), "N").unwrap(), json!(12));
        assert_eq!(
            typed_value("Amoxicillin", Some(&json!({"coding": []})), "Code").unwrap(),
            json!({"text": "Amoxicillin"})
        );
    }

    #[test]
    fn a_delete_against_a_change_is_one_whole_record_decision() {
        let mut c = record();
        c.ours = Value::Null;
        c.elements = Value::Null;
        let item = conflict_item(&c, None, &names());
        assert_eq!(item.elements.len(), 1);
        assert_eq!(item.elements[0].label, "Whole record");
        assert_eq!(item.elements[0].mine, "");
        assert!(item.elements[0].theirs.starts_with("Task: "));
        let whole = |take: &str| ElementPick {
            path: String::new(),
            take: take.into(),
            value: None,
        };
        assert!(combine(&c, &[whole("mine")]).unwrap().is_null());
        assert_eq!(
            combine(&c, &[whole("theirs")]).unwrap()["status"],
            "cancelled"
        );
    }
}
