//! The claim of [`PageEffect`]: applying its purges, then its removals, then
//! its upserts gives the same replica as applying the page's changes one by
//! one, whatever the replica held before.

use std::collections::BTreeMap;

use careshare_sync::*;
use proptest::prelude::*;
use serde_json::json;

/// A replica reduced to what a page can change: resource id → (version,
/// patient). One resource type is enough; `reduce` keys by type and id.
type Replica = BTreeMap<String, (i64, Option<String>)>;

const TYPE: &str = "Observation";

fn apply_one_by_one(mut replica: Replica, changes: &[Change]) -> Replica {
    for change in changes {
        match change {
            Change::Upsert {
                id,
                version,
                patient,
                ..
            } => {
                replica.insert(id.clone(), (*version, patient.clone()));
            }
            Change::Remove { id, .. } => {
                replica.remove(id);
            }
            Change::PurgePatient { patient, .. } => {
                replica.retain(|_, (_, p)| p.as_deref() != Some(patient.as_str()));
            }
        }
    }
    replica
}

fn apply_effect(mut replica: Replica, effect: &PageEffect) -> Replica {
    for purge in &effect.purges {
        replica.retain(|_, (_, p)| p.as_deref() != Some(purge.patient.as_str()));
    }
    for removal in &effect.removals {
        replica.remove(&removal.id);
    }
    for upsert in &effect.upserts {
        replica.insert(upsert.id.clone(), (upsert.version, upsert.patient.clone()));
    }
    replica
}

fn patient() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.9,
        prop::sample::select(vec!["p0", "p1"]).prop_map(String::from),
    )
}

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["o0", "o1", "o2"]).prop_map(String::from)
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (id(), 1..5i64, patient()).prop_map(|(id, version, patient)| Change::Upsert {
            resource_type: TYPE.into(),
            resource: json!({"resourceType": TYPE, "id": id}),
            id,
            version,
            patient,
        }),
        1 => id().prop_map(|id| Change::Remove {
            resource_type: TYPE.into(),
            id,
            reason: RemovalReason::Deleted,
        }),
        1 => prop::sample::select(vec!["p0", "p1"]).prop_map(|p| Change::PurgePatient {
            patient: p.into(),
            reason: RemovalReason::LeftCaseload,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn page_effect_equals_applying_changes_one_by_one(
        replica in prop::collection::btree_map(id(), (1..5i64, patient()), 0..3),
        changes in prop::collection::vec(change(), 0..8),
    ) {
        let page = PullPage { changes, next: Checkpoint::from_sequence(9), more: false };
        let effect = ClientSync::new(None, 10).apply_page(&page).expect("a valid page");
        prop_assert_eq!(
            apply_effect(replica.clone(), &effect),
            apply_one_by_one(replica, &page.changes)
        );
    }
}
