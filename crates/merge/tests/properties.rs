//! Properties of the merge over generated FHIR-like resources.
//!
//! A base resource is generated, then ours and theirs are derived from it by
//! a few random edits each (change, delete, add, reorder, re-identify), so the
//! two sides often touch the same elements.

use std::collections::BTreeSet;

use careshare_merge::{merge, resolve, Choice, Conflict, MergeOutcome};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// Generators

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec!["a", "b", "c"]).prop_map(Value::from),
        select(vec!["1", "1.0", "2", "2.50"]).prop_map(|n| serde_json::from_str(n).unwrap()),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

fn list<S: Strategy<Value = Value>>(item: S) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop::collection::vec(item, 0..4).prop_map(Value::Array))
}

fn coding() -> impl Strategy<Value = Value> {
    (
        select(vec!["http://snomed.info/sct", "http://loinc.org"]),
        select(vec!["x", "y", "z"]),
        proptest::option::of(scalar()),
    )
        .prop_map(|(system, code, display)| {
            object(vec![
                ("system", Some(json!(system))),
                ("code", Some(json!(code))),
                ("display", display),
            ])
        })
}

fn note() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(select(vec!["n1", "n2", "n3"])),
        scalar(),
    )
        .prop_map(|(id, text)| object(vec![("id", id.map(Value::from)), ("text", Some(text))]))
}

fn system_value(systems: Vec<&'static str>) -> impl Strategy<Value = Value> {
    (
        select(systems),
        select(vec!["1", "2", "3"]),
        proptest::option::of(scalar()),
    )
        .prop_map(|(system, value, use_)| {
            object(vec![
                ("system", Some(json!(system))),
                ("value", Some(json!(value))),
                ("use", use_),
            ])
        })
}

fn component() -> impl Strategy<Value = Value> {
    (select(vec!["8480-6", "8462-4", "8478-0"]), scalar()).prop_map(|(code, value)| {
        json!({
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg"}
        })
    })
}

fn extension() -> impl Strategy<Value = Value> {
    (select(vec!["u1", "u2", "u3"]), scalar())
        .prop_map(|(url, value)| json!({"url": url, "valueString": value}))
}

fn question_item() -> impl Strategy<Value = Value> {
    let leaf = (
        select(vec!["1", "2", "3"]),
        proptest::option::of(scalar()),
        list(scalar().prop_map(|v| json!({"valueString": v}))),
    )
        .prop_map(|(link_id, text, answer)| {
            object(vec![
                ("linkId", Some(json!(link_id))),
                ("text", text),
                ("answer", answer),
            ])
        });
    leaf.prop_recursive(2, 12, 3, |inner| {
        (
            select(vec!["1", "2", "3"]),
            proptest::option::of(scalar()),
            list(inner),
        )
            .prop_map(|(link_id, text, item)| {
                object(vec![
                    ("linkId", Some(json!(link_id))),
                    ("text", text),
                    ("item", item),
                ])
            })
    })
}

fn meta() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(
        (
            list(coding()),
            list(coding()),
            list(select(vec!["p1", "p2"]).prop_map(Value::from)),
        )
            .prop_map(|(tag, security, profile)| {
                object(vec![
                    ("tag", tag),
                    ("security", security),
                    ("profile", profile),
                ])
            }),
    )
}

fn resource() -> impl Strategy<Value = Value> {
    (
        (
            proptest::option::of(scalar()),
            meta(),
            list(note()),
            list(system_value(vec!["s1", "s2"])),
            list(system_value(vec!["phone", "email"])),
            proptest::option::of(
                (list(coding()), proptest::option::of(scalar()))
                    .prop_map(|(coding, text)| object(vec![("coding", coding), ("text", text)])),
            ),
        ),
        (
            list(component()),
            list(extension()),
            list(question_item()),
            list(
                (scalar(), prop::collection::vec(scalar(), 0..3))
                    .prop_map(|(family, given)| json!({"family": family, "given": given})),
            ),
            proptest::option::of(
                (scalar(), proptest::option::of(scalar()))
                    .prop_map(|(value, unit)| object(vec![("value", Some(value)), ("unit", unit)])),
            ),
        ),
    )
        .prop_map(
            |(
                (status, meta, note, identifier, telecom, code),
                (component, extension, item, name, quantity),
            )| {
                object(vec![
                    ("resourceType", Some(json!("Observation"))),
                    ("id", Some(json!("r1"))),
                    ("meta", meta),
                    ("status", status),
                    ("identifier", identifier),
                    ("code", code),
                    ("telecom", telecom),
                    ("name", name),
                    ("valueQuantity", quantity),
                    ("component", component),
                    ("extension", extension),
                    ("item", item),
                    ("note", note),
                ])
            },
        )
}

/// One random edit: which element (by pre-order position), what to do, and a
/// value to use.
type Edit = (usize, u8, Value);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), scalar()), 0..4)
}

/// A base and two edited versions of it.
fn versions() -> impl Strategy<Value = (Value, Value, Value)> {
    (resource(), edits(), edits()).prop_map(|(base, ours, theirs)| {
        let o = edited(&base, &ours);
        let t = edited(&base, &theirs);
        (base, o, t)
    })
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn locations(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Step::Key(key.clone()));
                out.push(at.clone());
                locations(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                out.push(at.clone());
                locations(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'v>(value: &'v mut Value, steps: &[Step]) -> Option<&'v mut Value> {
    steps.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Index(i) => node.get_mut(*i),
    })
}

/// Gives an item a new identity (a new `id`, `linkId`, `url`, `value`, `code`,
/// or component code).
fn reidentify(item: &mut Value, tag: usize) {
    let suffix = format!("~{}", tag % 3);
    if let Some(map) = item.as_object_mut() {
        for key in ["id", "linkId", "url", "value", "code"] {
            if let Some(Value::String(s)) = map.get_mut(key) {
                s.push_str(&suffix);
            }
        }
    }
    if let Some(Value::String(code)) = item.pointer_mut("/code/coding/0/code") {
        code.push_str(&suffix);
    }
}

fn edited(base: &Value, edits: &[Edit]) -> Value {
    let mut value = base.clone();
    for (which, action, replacement) in edits {
        let mut all = Vec::new();
        locations(&value, &mut Vec::new(), &mut all);
        all.retain(
            |steps| !matches!(steps.as_slice(), [Step::Key(k)] if k == "resourceType" || k == "id"),
        );
        if all.is_empty() {
            continue;
        }
        let steps = all[which % all.len()].clone();
        let Some((last, parent_steps)) = steps.split_last() else {
            continue;
        };
        match action % 5 {
            // Delete the element.
            1 => match (get_mut(&mut value, parent_steps).unwrap(), last) {
                (Value::Object(map), Step::Key(key)) => {
                    map.shift_remove(key);
                }
                (Value::Array(items), Step::Index(i)) => {
                    items.remove(*i);
                }
                _ => unreachable!(),
            },
            // Add: a new item to an array, or a new property to an object.
            2 => match get_mut(&mut value, &steps).unwrap() {
                Value::Array(items) => {
                    let mut item = items.first().cloned().unwrap_or(replacement.clone());
                    reidentify(&mut item, *which);
                    items.push(item);
                }
                Value::Object(map) => {
                    let key = ["text", "extra", "status", "display"][which % 4];
                    map.insert(key.to_string(), replacement.clone());
                }
                other => *other = replacement.clone(),
            },
            // Reorder an array, or re-identify an item.
            3 => match get_mut(&mut value, &steps).unwrap() {
                Value::Array(items) => items.reverse(),
                item @ Value::Object(_) => reidentify(item, *which),
                other => *other = replacement.clone(),
            },
            // Replace the element.
            _ => *get_mut(&mut value, &steps).unwrap() = replacement.clone(),
        }
    }
    value
}

/// Arbitrary JSON with FHIR-ish property names, for robustness only.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        scalar(),
        select(vec!["x", "y"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 4, |inner| {
        let key = select(vec![
            "id",
            "resourceType",
            "meta",
            "versionId",
            "security",
            "tag",
            "profile",
            "coding",
            "system",
            "code",
            "value",
            "identifier",
            "note",
            "item",
            "linkId",
            "component",
            "extension",
            "url",
            "text",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5).prop_map(|fields| Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect()
            )),
        ]
    })
}

// ---------------------------------------------------------------------------
// Observations on values

/// Every scalar with the property names leading to it (array positions left
/// out, so moving an item does not count as a change).
fn leaves(value: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    collect_leaves(value, String::new(), &mut out);
    out
}

fn collect_leaves(value: &Value, at: String, out: &mut BTreeSet<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                collect_leaves(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_leaves(child, at.clone(), out);
            }
        }
        scalar => {
            out.insert((at, scalar.to_string()));
        }
    }
}

/// The property names leading to a conflict's location in `merged_so_far`.
fn conflict_location(merged: &Value, conflict: &Conflict) -> String {
    let mut node = Some(merged);
    let mut at = String::new();
    for token in conflict.pointer.split('/').skip(1) {
        node = match node {
            Some(Value::Array(items)) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            Some(Value::Object(map)) => {
                at.push('/');
                at.push_str(token);
                map.get(token)
            }
            _ => panic!("pointer {} leaves the merged value", conflict.pointer),
        };
    }
    at
}

fn conflict_leaves(outcome: &MergeOutcome) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for conflict in outcome.conflicts() {
        let at = conflict_location(outcome.value(), conflict);
        for value in [&conflict.ours, &conflict.theirs].into_iter().flatten() {
            collect_leaves(value, at.clone(), &mut out);
        }
    }
    out
}

/// Key order and array order set aside.
fn normalised(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map
                .iter()
                .map(|(k, v)| (k.clone(), normalised(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect::<Map<_, _>>())
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalised).collect();
            items.sort_by_key(Value::to_string);
            Value::Array(items)
        }
        scalar => scalar.clone(),
    }
}

type ConflictView = (String, String, Option<Value>, Option<Value>, Option<Value>);

fn conflict_views(outcome: &MergeOutcome, swap: bool) -> Vec<ConflictView> {
    let norm = |v: &Option<Value>| v.as_ref().map(normalised);
    let mut views: Vec<ConflictView> = outcome
        .conflicts()
        .iter()
        .map(|c| {
            let (kind, ours, theirs) = if swap {
                (c.kind.swapped(), &c.theirs, &c.ours)
            } else {
                (c.kind, &c.ours, &c.theirs)
            };
            (
                c.path.clone(),
                format!("{kind:?}"),
                norm(&c.base),
                norm(ours),
                norm(theirs),
            )
        })
        .collect();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    views
}

fn resolve_all(outcome: &MergeOutcome, choice: &Choice) -> Value {
    let choices = outcome
        .conflicts()
        .iter()
        .map(|c| (c.path.clone(), choice.clone()));
    resolve(outcome, choices).expect("every conflict has a choice")
}

/// Checks that each change of `side` is in `kept` or (when given) in `shown`.
fn assert_changes_kept(
    label: &str,
    base: &Value,
    side: &Value,
    kept: &BTreeSet<(String, String)>,
    shown: &BTreeSet<(String, String)>,
) -> Result<(), TestCaseError> {
    let before = leaves(base);
    for leaf in leaves(side).difference(&before) {
        prop_assert!(
            kept.contains(leaf) || shown.contains(leaf),
            "{label}: change {leaf:?} was lost"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// (1) Merging with an unchanged side returns the other side exactly.
    #[test]
    fn unchanged_side_returns_the_other((base, ours, theirs) in versions()) {
        let outcome = merge(&base, &base, &theirs).unwrap();
        prop_assert_eq!(&outcome, &MergeOutcome::Merged(theirs.clone()));
        prop_assert_eq!(outcome.value().to_string(), theirs.to_string());
        let outcome = merge(&base, &ours, &base).unwrap();
        prop_assert_eq!(&outcome, &MergeOutcome::Merged(ours.clone()));
        prop_assert_eq!(outcome.value().to_string(), ours.to_string());
    }

    /// (2) Swapping ours and theirs gives the same merged value (up to the
    /// order of added items) and the same conflicts with the sides exchanged.
    #[test]
    fn symmetric((base, ours, theirs) in versions()) {
        let forward = merge(&base, &ours, &theirs).unwrap();
        let backward = merge(&base, &theirs, &ours).unwrap();
        prop_assert_eq!(forward.is_conflicted(), backward.is_conflicted());
        prop_assert_eq!(normalised(forward.value()), normalised(backward.value()));
        prop_assert_eq!(conflict_views(&forward, false), conflict_views(&backward, true));
    }

    /// (3) Nothing is lost: every changed value of either side is in the
    /// merged resource or shown in a conflict.
    #[test]
    fn nothing_lost((base, ours, theirs) in versions()) {
        let outcome = merge(&base, &ours, &theirs).unwrap();
        let kept = leaves(outcome.value());
        let shown = conflict_leaves(&outcome);
        assert_changes_kept("ours", &base, &ours, &kept, &shown)?;
        assert_changes_kept("theirs", &base, &theirs, &kept, &shown)?;
        let paths: BTreeSet<&str> = outcome.conflicts().iter().map(|c| c.path.as_str()).collect();
        prop_assert_eq!(paths.len(), outcome.conflicts().len(), "conflict paths are unique");
    }

    /// (4) The same change on both sides merges to it.
    #[test]
    fn same_change_on_both_sides((base, ours, _theirs) in versions()) {
        prop_assert_eq!(merge(&base, &ours, &ours).unwrap(), MergeOutcome::Merged(ours.clone()));
    }

    /// (5) Resolving every conflict with ours keeps all of ours' changes (and
    /// likewise with theirs).
    #[test]
    fn resolving_with_one_side_keeps_its_changes((base, ours, theirs) in versions()) {
        let outcome = merge(&base, &ours, &theirs).unwrap();
        let none = BTreeSet::new();
        let with_ours = resolve_all(&outcome, &Choice::Ours);
        assert_changes_kept("ours", &base, &ours, &leaves(&with_ours), &none)?;
        let with_theirs = resolve_all(&outcome, &Choice::Theirs);
        assert_changes_kept("theirs", &base, &theirs, &leaves(&with_theirs), &none)?;
        if !outcome.is_conflicted() {
            prop_assert_eq!(&with_ours, outcome.value());
        }
    }

    /// Any JSON at all: no panic, and every conflict can be resolved.
    #[test]
    fn any_input_is_handled(
        base in any_json(),
        ours in any_json(),
        theirs in any_json(),
        picks in prop::collection::vec(0u8..4, 0..8),
    ) {
        let _ = merge(&base, &ours, &theirs);
        // Force one resource identity so the merge itself is exercised.
        let resource = |v: &Value| {
            let mut map = v.as_object().cloned().unwrap_or_default();
            map.insert("resourceType".into(), json!("Basic"));
            map.insert("id".into(), json!("b1"));
            Value::Object(map)
        };
        let outcome = merge(&resource(&base), &resource(&ours), &resource(&theirs)).unwrap();
        let choices = outcome.conflicts().iter().enumerate().map(|(i, c)| {
            let choice = match picks.get(i).copied().unwrap_or(0) {
                0 => Choice::Ours,
                1 => Choice::Theirs,
                2 => Choice::Base,
                _ => Choice::Combined(json!({"text": "agreed"})),
            };
            (c.path.clone(), choice)
        });
        prop_assert!(resolve(&outcome, choices).is_ok());
    }
}
