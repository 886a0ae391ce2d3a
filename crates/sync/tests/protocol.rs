//! Single-message rules of the protocol.

use careshare_sync::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn upsert(id: &str, version: i64, patient: &str) -> Change {
    Change::Upsert {
        resource_type: "Observation".into(),
        id: id.into(),
        version,
        resource: serde_json::from_str(&format!(
            r#"{{"resourceType": "Observation", "id": "{id}", "valueQuantity": {{"value": 1.50}}}}"#
        ))
        .unwrap(),
        patient: Some(patient.into()),
    }
}

fn page(changes: Vec<Change>, next: i64, more: bool) -> PullPage {
    PullPage {
        changes,
        next: Checkpoint::from_sequence(next),
        more,
    }
}

fn synced_at(sequence: i64) -> ClientSync {
    ClientSync::new(Some(Checkpoint::from_sequence(sequence)), 10)
}

#[test]
fn wire_keeps_decimal_precision() {
    let message = page(vec![upsert("o1", 1, "p1")], 1, false);
    let text = serde_json::to_string(&message).unwrap();
    assert!(text.contains("1.50"), "{text}");
    assert!(text.contains("\"upsert\""), "{text}");
    let back: PullPage = serde_json::from_str(&text).unwrap();
    assert_eq!(back, message);
}

#[test]
fn checkpoint_only_moves_on_commit() {
    let mut sync = ClientSync::new(None, 0);
    assert_eq!(sync.next_pull().page_size, 1);
    let effect = sync
        .apply_page(&page(vec![upsert("o1", 1, "p1")], 7, true))
        .unwrap();
    assert_eq!(sync.next_pull().checkpoint, None);
    assert_eq!(
        sync.committed(Checkpoint::from_sequence(8)),
        Err(ProtocolError::NotPending(Checkpoint::from_sequence(8)))
    );
    sync.committed(effect.checkpoint).unwrap();
    assert_eq!(sync.checkpoint(), Some(Checkpoint::from_sequence(7)));
    assert!(sync.committed(effect.checkpoint).is_err());
}

#[test]
fn refuses_pages_that_go_back_repeat_or_stall() {
    let mut sync = synced_at(5);
    assert!(matches!(
        sync.apply_page(&page(vec![], 4, false)),
        Err(ProtocolError::Backwards { .. })
    ));
    assert!(matches!(
        sync.apply_page(&page(vec![upsert("o1", 1, "p1")], 5, false)),
        Err(ProtocolError::Stale(_))
    ));
    assert!(matches!(
        sync.apply_page(&page(vec![], 5, true)),
        Err(ProtocolError::NoProgress(_))
    ));
    assert!(sync.apply_page(&page(vec![], 5, false)).is_ok());
}

#[test]
fn refuses_inconsistent_changes() {
    let mut sync = synced_at(0);
    let wrong_id = Change::Upsert {
        resource_type: "Observation".into(),
        id: "o1".into(),
        version: 1,
        resource: json!({"resourceType": "Observation", "id": "o2"}),
        patient: None,
    };
    assert!(matches!(
        sync.apply_page(&page(vec![upsert("o0", 1, "p1"), wrong_id], 2, false)),
        Err(ProtocolError::InvalidChange { index: 1, .. })
    ));
    let not_object = Change::Upsert {
        resource_type: "Observation".into(),
        id: "o1".into(),
        version: 1,
        resource: json!([1]),
        patient: None,
    };
    assert!(sync.apply_page(&page(vec![not_object], 1, false)).is_err());
    let empty_purge = Change::PurgePatient {
        patient: String::new(),
        reason: RemovalReason::LeftCaseload,
    };
    assert!(sync.apply_page(&page(vec![empty_purge], 1, false)).is_err());
}

#[test]
fn page_reduces_to_ordered_effect() {
    let mut sync = ClientSync::new(None, 10);
    let changes = vec![
        upsert("o1", 1, "p1"),
        upsert("o2", 1, "p2"),
        Change::PurgePatient {
            patient: "p1".into(),
            reason: RemovalReason::ConsentWithdrawn,
        },
        upsert("o3", 1, "p1"),
        upsert("o2", 2, "p2"),
        Change::Remove {
            resource_type: "Observation".into(),
            id: "o4".into(),
            reason: RemovalReason::SecurityLabel,
        },
        upsert("o4", 3, "p2"),
        upsert("o5", 1, "p2"),
        Change::Remove {
            resource_type: "Observation".into(),
            id: "o5".into(),
            reason: RemovalReason::Deleted,
        },
    ];
    let effect = sync.apply_page(&page(changes, 9, false)).unwrap();
    assert_eq!(effect.purges.len(), 1);
    assert_eq!(effect.purges[0].patient, "p1");
    let removed: Vec<&str> = effect.removals.iter().map(|r| r.id.as_str()).collect();
    // o1 was upserted for p1 and then purged with p1: it is removed too, in
    // case the replica held an older copy filed under another patient.
    assert_eq!(removed, ["o1", "o5"]);
    let stored: Vec<(&str, i64)> = effect
        .upserts
        .iter()
        .map(|u| (u.id.as_str(), u.version))
        .collect();
    assert_eq!(stored, [("o2", 2), ("o3", 1), ("o4", 3)]);
}

fn edit(id: &str, base_version: Option<i64>, resource: Option<Value>) -> Edit {
    Edit {
        client_edit_id: id.into(),
        resource_type: "Task".into(),
        id: "t1".into(),
        base_version,
        resource,
    }
}

fn task(status: &str, priority: &str) -> Value {
    json!({"resourceType": "Task", "id": "t1", "status": status, "priority": priority})
}

#[test]
fn a_push_batch_stays_within_its_size_whatever_the_edits_carry() {
    // Three edits each carrying a 3 MiB photograph, then small ones.
    let photo = |id: &str| {
        edit(
            id,
            None,
            Some(
                json!({"resourceType": "Media", "id": id, "status": "completed",
                "content": {"contentType": "image/jpeg", "data": "A".repeat(3 << 20)}}),
            ),
        )
    };
    let outbox = [
        photo("p1"),
        photo("p2"),
        photo("p3"),
        edit("e1", Some(1), Some(task("completed", "routine"))),
    ];
    let mut sync = ClientSync::new(None, 10);
    let first = sync.push_batch(&outbox, 50);
    let ids = |b: &PushBatch| -> Vec<String> {
        b.edits.iter().map(|e| e.client_edit_id.clone()).collect()
    };
    assert_eq!(ids(&first), ["p1", "p2"]);
    assert!(serde_json::to_vec(&first).unwrap().len() <= PUSH_BATCH_BYTES);
    assert_eq!(ids(&sync.push_batch(&outbox[2..], 50)), ["p3", "e1"]);
    // An edit larger than a batch still goes, alone.
    let huge = [edit(
        "h1",
        None,
        Some(json!({"resourceType": "Media", "id": "h1", "data": "A".repeat(PUSH_BATCH_BYTES)})),
    )];
    assert_eq!(ids(&sync.push_batch(&huge, 50)), ["h1"]);
    assert_eq!(sync.push_batch(&outbox, 1).edits.len(), 1);
}

#[test]
fn push_results_become_outbox_actions() {
    let mut sync = ClientSync::new(None, 10);
    let outbox = [
        edit("e1", Some(1), Some(task("completed", "routine"))),
        edit("e2", Some(1), Some(task("completed", "routine"))),
        edit("e3", Some(1), None),
        edit("e4", Some(1), None),
        edit("e5", Some(1), None),
    ];
    let batch = sync.push_batch(&outbox, 5);
    assert_eq!(batch.edits.len(), 5);
    let result = PushResult {
        results: vec![
            EditResult::AlreadyApplied {
                client_edit_id: "e2".into(),
                version: 4,
            },
            EditResult::Applied {
                client_edit_id: "e1".into(),
                version: 3,
            },
            EditResult::Rejected {
                client_edit_id: "e3".into(),
                outcome: operation_outcome("invalid", "no"),
            },
            EditResult::Conflict {
                client_edit_id: "e4".into(),
                base: None,
                ours: None,
                theirs: Some(task("cancelled", "routine")),
                current_version: Some(5),
                conflicts: vec![],
            },
            EditResult::Applied {
                client_edit_id: "other".into(),
                version: 9,
            },
        ],
    };
    let actions = sync.apply_push_result(&result);
    assert!(
        matches!(&actions[0], OutboxAction::Remove { client_edit_id, version: 3, .. } if client_edit_id == "e1")
    );
    assert!(matches!(
        &actions[1],
        OutboxAction::Remove { version: 4, .. }
    ));
    assert!(matches!(&actions[2], OutboxAction::MarkRejected { .. }));
    assert!(matches!(
        &actions[3],
        OutboxAction::RecordConflict {
            current_version: Some(5),
            ..
        }
    ));
    assert!(matches!(&actions[4], OutboxAction::Keep { client_edit_id } if client_edit_id == "e5"));
    assert_eq!(actions.len(), 5);
    // A duplicated response finds nothing in flight.
    assert!(sync.apply_push_result(&result).is_empty());
}

#[test]
fn hub_decisions() {
    let base = task("requested", "routine");
    let theirs = task("requested", "urgent");
    // Re-send.
    assert_eq!(
        hub_apply_edit(&edit("e", Some(1), None), None, None, Some(7)),
        EditDecision::AlreadyApplied { version: 7 }
    );
    // Fast-forward.
    let ours = task("completed", "routine");
    assert_eq!(
        hub_apply_edit(
            &edit("e", Some(1), Some(ours.clone())),
            Some((1, &base)),
            Some(&base),
            None
        ),
        EditDecision::Apply {
            resource: Some(ours.clone())
        }
    );
    // Stale, merges.
    assert_eq!(
        hub_apply_edit(
            &edit("e", Some(1), Some(ours.clone())),
            Some((2, &theirs)),
            Some(&base),
            None
        ),
        EditDecision::ApplyMerged {
            resource: Some(task("completed", "urgent"))
        }
    );
    // Stale, conflicts.
    let rival = task("cancelled", "routine");
    let decision = hub_apply_edit(
        &edit("e", Some(1), Some(ours.clone())),
        Some((2, &rival)),
        Some(&base),
        None,
    );
    assert!(
        matches!(decision, EditDecision::Conflict { current_version: Some(2), ref conflicts, .. } if conflicts.len() == 1)
    );
    // Delete against a changed resource conflicts; against an unchanged one applies.
    assert!(matches!(
        hub_apply_edit(
            &edit("e", Some(1), None),
            Some((2, &rival)),
            Some(&base),
            None
        ),
        EditDecision::Conflict { .. }
    ));
    assert_eq!(
        hub_apply_edit(
            &edit("e", Some(1), None),
            Some((1, &base)),
            Some(&base),
            None
        ),
        EditDecision::Apply { resource: None }
    );
    // Lost base: whole-resource conflict, never last-writer-wins.
    assert!(matches!(
        hub_apply_edit(
            &edit("e", Some(1), Some(ours.clone())),
            Some((2, &rival)),
            None,
            None
        ),
        EditDecision::Conflict { base: None, .. }
    ));
    // Created on two sides.
    assert!(matches!(
        hub_apply_edit(
            &edit("e", None, Some(ours.clone())),
            Some((1, &rival)),
            None,
            None
        ),
        EditDecision::Conflict { .. }
    ));
    // Invalid.
    let rejected = |decision: EditDecision| matches!(decision, EditDecision::Rejected { .. });
    assert!(rejected(hub_apply_edit(
        &edit("e", None, None),
        None,
        None,
        None
    )));
    assert!(rejected(hub_apply_edit(
        &edit("", None, Some(ours.clone())),
        None,
        None,
        None
    )));
    assert!(rejected(hub_apply_edit(
        &edit("e", None, Some(json!("x"))),
        None,
        None,
        None
    )));
    assert!(rejected(hub_apply_edit(
        &edit("e", None, Some(json!({"resourceType": "Flag", "id": "t1"}))),
        None,
        None,
        None
    )));
    assert!(rejected(hub_apply_edit(
        &edit("e", Some(3), Some(ours.clone())),
        Some((2, &rival)),
        None,
        None
    )));
    assert!(rejected(hub_apply_edit(
        &edit("e", Some(3), Some(ours)),
        None,
        None,
        None
    )));
}

#[test]
fn first_sync_order() {
    let order = [
        "Flag",
        "AllergyIntolerance",
        "MedicationStatement",
        "Condition",
        "CarePlan",
        "Observation",
        "Encounter",
    ];
    for pair in order.windows(2) {
        assert!(priority(pair[0]) < priority(pair[1]), "{pair:?}");
    }
    assert_eq!(
        priority("MedicationRequest"),
        priority("MedicationStatement")
    );
    let mut changes: Vec<Change> = ["Encounter", "Observation", "Flag", "Condition"]
        .iter()
        .map(|t| Change::Upsert {
            resource_type: (*t).into(),
            id: "x".into(),
            version: 1,
            resource: json!({"resourceType": t, "id": "x"}),
            patient: None,
        })
        .collect();
    sort_for_first_sync(&mut changes);
    let types: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert { resource_type, .. } => Some(resource_type.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(types, ["Flag", "Condition", "Observation", "Encounter"]);
}

#[test]
fn serve_pull_pages_through_the_feed() {
    let feed: Vec<Sequenced> = (1..=5)
        .map(|n| Sequenced {
            sequence: n * 2,
            change: upsert(&format!("o{n}"), 1, "p1"),
        })
        .collect();
    let first = serve_pull(
        &feed,
        &PullRequest {
            checkpoint: None,
            page_size: 2,
        },
    );
    assert_eq!(
        (first.changes.len(), first.next.sequence(), first.more),
        (2, 4, true)
    );
    let last = serve_pull(
        &feed,
        &PullRequest {
            checkpoint: Some(Checkpoint::from_sequence(7)),
            page_size: 0,
        },
    );
    assert_eq!(
        (last.changes.len(), last.next.sequence(), last.more),
        (1, 8, true)
    );
    let empty = serve_pull(
        &feed,
        &PullRequest {
            checkpoint: Some(Checkpoint::from_sequence(10)),
            page_size: 9,
        },
    );
    assert_eq!(
        (empty.changes.len(), empty.next.sequence(), empty.more),
        (0, 10, false)
    );
    let nothing = serve_pull(
        &[],
        &PullRequest {
            checkpoint: None,
            page_size: u32::MAX,
        },
    );
    assert_eq!((nothing.next.sequence(), nothing.more), (0, false));
}

fn arbitrary_change() -> impl Strategy<Value = Change> {
    let name = prop::sample::select(vec!["", "Flag", "Observation", "o1", "p1"]);
    prop_oneof![
        (
            name.clone(),
            name.clone(),
            any::<i64>(),
            name.clone(),
            prop::option::of(name.clone())
        )
            .prop_map(|(t, id, version, rid, patient)| Change::Upsert {
                resource_type: t.into(),
                id: id.into(),
                version,
                resource: json!({"resourceType": t, "id": rid}),
                patient: patient.map(Into::into),
            }),
        (name.clone(), name.clone()).prop_map(|(t, id)| Change::Remove {
            resource_type: t.into(),
            id: id.into(),
            reason: RemovalReason::RoleChanged,
        }),
        name.prop_map(|p| Change::PurgePatient {
            patient: p.into(),
            reason: RemovalReason::DeviceRevoked,
        }),
    ]
}

proptest! {
    #[test]
    fn apply_page_never_panics(
        start in prop::option::of(any::<i64>()),
        changes in prop::collection::vec(arbitrary_change(), 0..8),
        next in any::<i64>(),
        more in any::<bool>(),
    ) {
        let mut sync = ClientSync::new(start.map(Checkpoint::from_sequence), 3);
        let page = PullPage { changes, next: Checkpoint::from_sequence(next), more };
        if let Ok(effect) = sync.apply_page(&page) {
            prop_assert!(effect.upserts.len() + effect.removals.len() <= page.changes.len());
            prop_assert!(sync.committed(effect.checkpoint).is_ok());
        }
        let _ = serve_pull(&[], &sync.next_pull());
    }
}

#[test]
fn a_page_read_as_text_keeps_each_resource_as_sent() {
    let text = r#"{"changes":[
        {"upsert":{"resourceType":"Observation","id":"o1","version":2,
          "resource":{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.50},"note":[{"text":"caf\u00e9 \"x\""}]},
          "patient":"p1"}},
        {"remove":{"resourceType":"Observation","id":"o2","reason":"deleted"}},
        {"upsert":{"resourceType":"Patient","id":"p1","version":1,
          "resource":{"id":"p1","resourceType":"Patient"},"patient":"p1"}}],
        "next":9,"more":true}"#;
    let raw: PullPage<RawResource> = serde_json::from_str(text).unwrap();
    let parsed: PullPage = serde_json::from_str(text).unwrap();
    let mut a = ClientSync::new(None, 10);
    let mut b = ClientSync::new(None, 10);
    let raw_effect = a.apply_page(&raw).unwrap();
    let effect = b.apply_page(&parsed).unwrap();
    assert_eq!(raw_effect.removals, effect.removals);
    assert_eq!(raw_effect.upserts.len(), 2);
    for (r, v) in raw_effect.upserts.iter().zip(&effect.upserts) {
        assert_eq!(
            (&r.resource_type, &r.id, r.version, &r.patient),
            (&v.resource_type, &v.id, v.version, &v.patient)
        );
        // The text as sent (escapes, decimals and key order), and the same resource.
        assert!(text.contains(r.resource.get()), "{}", r.resource.get());
        let reread: Value = serde_json::from_str(&r.resource.json_text()).unwrap();
        assert_eq!(reread, v.resource);
    }
    assert_eq!(
        raw_effect.upserts[0].resource.get(),
        r#"{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.50},"note":[{"text":"caf\u00e9 \"x\""}]}"#
    );
    // The next page may be asked for while this one commits, never past it.
    assert_eq!(
        a.prefetch_pull(),
        Some(PullRequest {
            checkpoint: Some(Checkpoint::from_sequence(9)),
            page_size: 10
        })
    );
    a.committed(raw_effect.checkpoint).unwrap();
    assert_eq!(a.prefetch_pull(), None);
    assert_eq!(a.next_pull().checkpoint, Some(Checkpoint::from_sequence(9)));
}

#[test]
fn a_page_read_as_text_refuses_resources_that_are_not_the_change() {
    for resource in [
        r#"{"resourceType":"Observation","id":"other"}"#,
        r#"{"resourceType":"Condition","id":"o1"}"#,
        r#"{"id":"o1"}"#,
        r#"{"resourceType":"Observation","id":1}"#,
        r#"["Observation","o1"]"#,
        r#""o1""#,
        r#"{"resourceType":"Observation","id":"o1","id":"o1"}"#,
    ] {
        let text = format!(
            r#"{{"changes":[{{"upsert":{{"resourceType":"Observation","id":"o1","version":1,"resource":{resource}}}}}],"next":1,"more":false}}"#
        );
        let raw: PullPage<RawResource> = serde_json::from_str(&text).unwrap();
        assert!(
            matches!(
                ClientSync::new(None, 10).apply_page(&raw),
                Err(ProtocolError::InvalidChange { index: 0, .. })
            ),
            "{resource}"
        );
    }
}

#[test]
fn no_prefetch_after_the_last_page() {
    let mut sync = ClientSync::new(None, 10);
    assert_eq!(sync.prefetch_pull(), None);
    let effect = sync
        .apply_page(&page(vec![upsert("o1", 1, "p1")], 3, false))
        .unwrap();
    assert_eq!(sync.prefetch_pull(), None);
    sync.committed(effect.checkpoint).unwrap();
}
