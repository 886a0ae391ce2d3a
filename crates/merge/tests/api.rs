//! Errors, whole-resource deletion and resolving conflicts.

use careshare_merge::{
    merge, merge_opt, resolve, resolve_opt, Choice, ConflictKind, MergeError, MergeOutcome,
    Mismatch, ResolveError, Side,
};
use serde_json::{json, Value};

fn task() -> Value {
    json!({
        "resourceType": "Task",
        "id": "task-7",
        "meta": {"versionId": "5", "lastUpdated": "2024-03-01T09:00:00Z"},
        "status": "requested",
        "priority": "routine",
        "note": [{"text": "Wound clean"}]
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value = task();
    edit(&mut value);
    value
}

#[test]
fn different_resource_type_or_id_is_an_error() {
    let base = task();
    let other_type = with(|t| t["resourceType"] = json!("ServiceRequest"));
    let other_id = with(|t| t["id"] = json!("task-8"));
    let no_id = with(|t| {
        t.as_object_mut().unwrap().shift_remove("id");
    });

    assert!(matches!(
        merge(&base, &other_type, &base),
        Err(MergeError::ResourceTypeMismatch(_))
    ));
    assert_eq!(
        merge(&base, &base, &other_id),
        Err(MergeError::IdMismatch(Box::new(Mismatch {
            base: Some(json!("task-7")),
            ours: Some(json!("task-7")),
            theirs: Some(json!("task-8")),
        })))
    );
    assert!(matches!(
        merge(&base, &no_id, &base),
        Err(MergeError::IdMismatch(m)) if m.ours.is_none()
    ));
    assert_eq!(
        merge(&base, &json!([1]), &base),
        Err(MergeError::NotAResource { side: Side::Ours })
    );
    assert!(merge_opt(&base, None, Some(&other_id)).is_err());
    assert_eq!(
        merge(&base, &base, &json!("Task")).unwrap_err().to_string(),
        "the theirs version is not a FHIR resource (a JSON object)"
    );
    let message = merge(&base, &base, &other_id).unwrap_err().to_string();
    assert_eq!(
        message,
        r#"id differs between versions (base "task-7", ours "task-7", theirs "task-8")"#
    );
}

#[test]
fn unchanged_sides_return_the_other_side_exactly() {
    let base = task();
    let ours = with(|t| t["status"] = json!("in-progress"));
    assert_eq!(
        merge(&base, &ours, &base),
        Ok(MergeOutcome::Merged(ours.clone()))
    );
    assert_eq!(
        merge(&base, &base, &ours),
        Ok(MergeOutcome::Merged(ours.clone()))
    );
}

#[test]
fn whole_resource_deletion() {
    let base = task();
    let changed = with(|t| t["status"] = json!("cancelled"));
    let touched = with(|t| {
        t["meta"] = json!({"versionId": "6", "lastUpdated": "2024-03-02T09:00:00Z"});
    });

    assert_eq!(
        merge_opt(&base, None, Some(&base)),
        Ok(MergeOutcome::Merged(None))
    );
    assert_eq!(
        merge_opt(&base, Some(&base), None),
        Ok(MergeOutcome::Merged(None))
    );
    assert_eq!(merge_opt(&base, None, None), Ok(MergeOutcome::Merged(None)));
    assert_eq!(
        merge_opt(&base, None, Some(&touched)),
        Ok(MergeOutcome::Merged(None)),
        "a bookkeeping-only change does not keep a deleted resource"
    );
    assert_eq!(
        merge_opt(&base, Some(&changed), Some(&base)),
        Ok(MergeOutcome::Merged(Some(changed.clone())))
    );

    let outcome = merge_opt(&base, None, Some(&changed)).unwrap();
    let MergeOutcome::Conflicted {
        merged_so_far,
        conflicts,
    } = &outcome
    else {
        panic!("expected a conflict: {outcome:?}");
    };
    assert_eq!(merged_so_far, &Some(base.clone()));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].path, "");
    assert_eq!(conflicts[0].pointer, "");
    assert_eq!(conflicts[0].kind, ConflictKind::DeletedByOurs);
    assert_eq!(conflicts[0].ours, None);
    assert_eq!(conflicts[0].theirs, Some(changed.clone()));

    assert_eq!(resolve_opt(&outcome, [("", Choice::Ours)]), Ok(None));
    assert_eq!(
        resolve_opt(&outcome, [("", Choice::Theirs)]),
        Ok(Some(changed.clone()))
    );

    let theirs_deleted = merge_opt(&base, Some(&changed), None).unwrap();
    assert_eq!(
        theirs_deleted.conflicts()[0].kind,
        ConflictKind::DeletedByTheirs
    );
}

#[test]
fn resolve_applies_each_choice() {
    let base = task();
    let ours = with(|t| {
        t["status"] = json!("completed");
        t["priority"] = json!("urgent");
        t["note"][0]["text"] = json!("Wound clean, redness at margin");
    });
    let theirs = with(|t| {
        t["status"] = json!("cancelled");
        t["priority"] = json!("asap");
        t["note"] = json!([{"text": "Wound clean"}, {"text": "Seen by GP"}]);
        t["meta"]["versionId"] = json!("6");
    });
    let outcome = merge(&base, &ours, &theirs).unwrap();
    let paths: Vec<&str> = outcome
        .conflicts()
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(paths, ["status", "priority", "note"]);
    assert_eq!(outcome.value()["meta"]["versionId"], json!("6"));

    let combined_notes = json!([
        {"text": "Wound clean, redness at margin"},
        {"text": "Seen by GP"}
    ]);
    let resolved = resolve(
        &outcome,
        [
            ("status", Choice::Theirs),
            ("priority", Choice::Base),
            ("note", Choice::Combined(combined_notes.clone())),
        ],
    )
    .unwrap();
    assert_eq!(
        resolved,
        with(|t| {
            t["status"] = json!("cancelled");
            t["note"] = combined_notes.clone();
            t["meta"]["versionId"] = json!("6");
        })
    );
}

#[test]
fn resolve_rejects_bad_choices() {
    let base = task();
    let ours = with(|t| t["status"] = json!("completed"));
    let theirs = with(|t| t["status"] = json!("cancelled"));
    let outcome = merge(&base, &ours, &theirs).unwrap();

    assert_eq!(
        resolve(&outcome, Vec::<(String, Choice)>::new()),
        Err(ResolveError::MissingChoice("status".into()))
    );
    assert_eq!(
        resolve(
            &outcome,
            [("status", Choice::Ours), ("priority", Choice::Ours)]
        ),
        Err(ResolveError::UnknownPath("priority".into()))
    );
    assert_eq!(
        resolve(
            &outcome,
            [("status", Choice::Ours), ("status", Choice::Theirs)]
        ),
        Err(ResolveError::DuplicateChoice("status".into()))
    );
    assert_eq!(
        resolve(&outcome, [("status", Choice::Ours)]),
        Ok(ours.clone())
    );

    let clean = merge(&base, &ours, &base).unwrap();
    assert_eq!(
        resolve(&clean, Vec::<(String, Choice)>::new()),
        Ok(ours.clone())
    );
    assert_eq!(
        resolve(&clean, [("status", Choice::Ours)]),
        Err(ResolveError::UnknownPath("status".into()))
    );
}

#[test]
fn resolve_removes_array_items_without_disturbing_later_conflicts() {
    let base = json!({
        "resourceType": "Patient",
        "id": "p1",
        "telecom": [
            {"system": "phone", "value": "1", "use": "home"},
            {"system": "phone", "value": "2", "use": "home"},
            {"system": "phone", "value": "3", "use": "home"}
        ]
    });
    let ours = json!({
        "resourceType": "Patient",
        "id": "p1",
        "telecom": [
            {"system": "phone", "value": "2", "use": "work"},
            {"system": "phone", "value": "3", "use": "mobile"}
        ]
    });
    let theirs = json!({
        "resourceType": "Patient",
        "id": "p1",
        "telecom": [
            {"system": "phone", "value": "1", "use": "work"},
            {"system": "phone", "value": "2", "use": "temp"},
            {"system": "phone", "value": "3", "use": "old"}
        ]
    });
    let outcome = merge(&base, &ours, &theirs).unwrap();
    let conflicts: Vec<(&str, &str, ConflictKind)> = outcome
        .conflicts()
        .iter()
        .map(|c| (c.path.as_str(), c.pointer.as_str(), c.kind))
        .collect();
    assert_eq!(
        conflicts,
        [
            (
                "telecom[phone|1]",
                "/telecom/0",
                ConflictKind::DeletedByOurs
            ),
            (
                "telecom[phone|2].use",
                "/telecom/1/use",
                ConflictKind::BothChanged
            ),
            (
                "telecom[phone|3].use",
                "/telecom/2/use",
                ConflictKind::BothChanged
            ),
        ]
    );
    let resolved = resolve(
        &outcome,
        [
            ("telecom[phone|1]", Choice::Ours),
            ("telecom[phone|2].use", Choice::Theirs),
            ("telecom[phone|3].use", Choice::Ours),
        ],
    )
    .unwrap();
    assert_eq!(
        resolved["telecom"],
        json!([
            {"system": "phone", "value": "2", "use": "temp"},
            {"system": "phone", "value": "3", "use": "mobile"}
        ])
    );
}

#[test]
fn both_added_objects_merge_deeper() {
    let base = json!({"resourceType": "Observation", "id": "o1", "status": "final"});
    let ours = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "valueQuantity": {"value": 5.4, "unit": "mmol/L"}});
    let theirs = json!({"resourceType": "Observation", "id": "o1", "status": "final",
        "valueQuantity": {"value": 5.9, "unit": "mmol/L"}});
    let outcome = merge(&base, &ours, &theirs).unwrap();
    assert_eq!(
        outcome.value()["valueQuantity"],
        json!({"unit": "mmol/L"}),
        "agreed parts are kept"
    );
    let conflict = &outcome.conflicts()[0];
    assert_eq!(conflict.path, "valueQuantity.value");
    assert_eq!(conflict.kind, ConflictKind::BothAdded);
    assert_eq!(conflict.base, None);
    assert_eq!(conflict.ours, Some(json!(5.4)));
    let resolved = resolve(&outcome, [("valueQuantity.value", Choice::Ours)]).unwrap();
    assert_eq!(resolved, ours);
}

#[test]
fn contained_resources_follow_the_meta_rules() {
    let base = json!({
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "contained": [{"resourceType": "Medication", "id": "med", "meta": {"versionId": "1"}, "code": {"text": "Oramorph"}}],
        "status": "active"
    });
    let ours = json!({
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "contained": [{"resourceType": "Medication", "id": "med", "meta": {"versionId": "1a"}, "code": {"text": "Oramorph"}}],
        "status": "stopped"
    });
    let theirs = json!({
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "contained": [{"resourceType": "Medication", "id": "med", "meta": {"versionId": "2"}, "code": {"text": "Oramorph oral solution"}}],
        "status": "active"
    });
    let outcome = merge(&base, &ours, &theirs).unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Merged(json!({
            "resourceType": "MedicationStatement",
            "id": "ms-1",
            "contained": [{"resourceType": "Medication", "id": "med", "meta": {"versionId": "2"}, "code": {"text": "Oramorph oral solution"}}],
            "status": "stopped"
        }))
    );
}

#[test]
fn outcomes_round_trip_through_json() {
    let base = json!({"resourceType": "Observation", "id": "o1", "note": [{"text": "a"}]});
    let ours = json!({"resourceType": "Observation", "id": "o1", "note": [{"text": "b"}], "valueString": null});
    let theirs = json!({"resourceType": "Observation", "id": "o1", "note": [{"text": "c"}], "valueString": "x"});
    let outcome = merge(&base, &ours, &theirs).unwrap();
    let text = serde_json::to_string(&outcome).unwrap();
    let back: MergeOutcome = serde_json::from_str(&text).unwrap();
    assert_eq!(back, outcome);
    assert_eq!(back.conflicts()[1].ours, Some(Value::Null));
    assert_eq!(back.conflicts()[1].base, None);

    let choice: Choice = serde_json::from_value(json!({"combined": {"text": "b"}})).unwrap();
    assert_eq!(choice, Choice::Combined(json!({"text": "b"})));
    assert_eq!(serde_json::to_value(Choice::Ours).unwrap(), json!("ours"));
}

#[test]
fn altered_pointers_are_rejected_not_panicked_on() {
    let base = task();
    let ours = with(|t| t["status"] = json!("completed"));
    let theirs = with(|t| t["status"] = json!("cancelled"));
    let mut outcome = merge(&base, &ours, &theirs).unwrap();
    if let MergeOutcome::Conflicted { conflicts, .. } = &mut outcome {
        conflicts[0].pointer = "/note/7/text".into();
    }
    assert!(matches!(
        resolve(&outcome, [("status", Choice::Ours)]),
        Err(ResolveError::InvalidPointer { .. })
    ));
}

#[test]
fn a_side_without_meta_still_merges_meta_element_by_element() {
    let base = json!({"resourceType": "Patient", "id": "p1",
        "meta": {"versionId": "5", "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}});
    let ours = json!({"resourceType": "Patient", "id": "p1", "active": true});
    let bumped = json!({"resourceType": "Patient", "id": "p1",
        "meta": {"versionId": "6", "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}});
    assert_eq!(
        merge(&base, &ours, &bumped).unwrap(),
        MergeOutcome::Merged(
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "6"}, "active": true})
        )
    );

    let labelled = json!({"resourceType": "Patient", "id": "p1",
    "meta": {"versionId": "6", "security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"},
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    ]}});
    let outcome = merge(&base, &ours, &labelled).unwrap();
    let conflicts: Vec<(&str, ConflictKind)> = outcome
        .conflicts()
        .iter()
        .map(|c| (c.path.as_str(), c.kind))
        .collect();
    assert_eq!(conflicts, [("meta.security", ConflictKind::DeletedByOurs)]);
}

#[test]
fn very_deep_nesting_is_compared_whole() {
    fn nest(depth: usize, leaf: Value) -> Value {
        (0..depth).fold(
            leaf,
            |inner, _| json!({"extension": [{"url": "u", "extension": [inner]}]}),
        )
    }
    let resource = |leaf: &str| {
        let mut r = nest(100, json!({"valueString": leaf}));
        r["resourceType"] = json!("Basic");
        r["id"] = json!("b1");
        r
    };
    let outcome = merge(&resource("a"), &resource("b"), &resource("c")).unwrap();
    assert_eq!(outcome.conflicts().len(), 1);
    let conflict = &outcome.conflicts()[0];
    assert!(conflict.path.starts_with("extension[url=u].extension"));
    assert_eq!(
        resolve(&outcome, [(conflict.path.clone(), Choice::Theirs)]).unwrap(),
        resource("c")
    );
}
