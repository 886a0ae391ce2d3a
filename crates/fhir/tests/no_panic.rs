//! No input makes the boundary code panic: arbitrary JSON through validation and index
//! extraction, arbitrary query strings through search parsing, arbitrary references.

use careshare_fhir::search::{extract, parse_search};
use careshare_fhir::{reference::Reference, validate, ReferenceRules};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "Patient",
            "Observation",
            "Bundle",
            "2024-02-30",
            "1950",
            "Patient/1",
            "urn:uuid:x",
            "Patient?identifier=a|b",
            "#c",
            "",
            "http://x/Patient/1/_history/2",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "resourceType",
                        "id",
                        "meta",
                        "reference",
                        "subject",
                        "birthDate",
                        "effectiveDateTime",
                        "period",
                        "start",
                        "end",
                        "coding",
                        "code",
                        "system",
                        "value",
                        "name",
                        "family",
                        "identifier",
                        "status",
                        "x",
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn validation_and_extraction_never_panic(mut v in arb_json(), ty in prop::sample::select(vec!["Patient", "Observation", "Encounter", "Bundle"])) {
        if let Some(o) = v.as_object_mut() {
            o.insert("resourceType".into(), json!(ty));
        }
        let _ = validate(&v, ReferenceRules::Stored);
        let _ = validate(&v, ReferenceRules::InBundle);
        let _ = extract(&v);
    }

    #[test]
    fn search_parsing_never_panics(pairs in prop::collection::vec(("[_a-z:\\.-]{0,20}", "[ -~]{0,30}"), 0..6),
                                   ty in prop::sample::select(vec!["Patient", "Observation", "Basic"])) {
        let _ = parse_search(ty, &pairs);
    }

    #[test]
    fn reference_parsing_never_panics(s in "[ -~é]{0,40}") {
        let _ = Reference::parse(&s);
    }
}
