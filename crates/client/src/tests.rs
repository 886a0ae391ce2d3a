//! Unit tests of everything that needs no hub: page commits, outbox actions,
//! edits and views, conflict resolution, status, and secrecy.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use careshare_replica::{
    ConflictContext, DeviceState, EditState, KeyParams, NewConflict, Passphrase, Replica,
    ReplicaFiles, SecretBytes, SecretString,
};
use careshare_sync::{
    Change, Checkpoint, ClientSync, EditResult, OutboxAction, PullPage, PushResult, RemovalReason,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::apply::{apply_action, commit_page, outbox_edits, PushTally};
use crate::device_key::DeviceKey;
use crate::{ClientError, Enrolment, Resolution, Session, SyncOptions, SyncProgress};

const PASS: &str = "replica passphrase for tests";
const TOKEN: &str = "refresh-token-d41d8cd9";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// A fresh directory, removed again by [`Fixture`]'s drop.
struct Fixture {
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An enrolled replica (as [`crate::enrol`] leaves it, without a hub) and an
/// open session on it.
fn session(name: &str) -> (Fixture, Session) {
    // Nothing listens there: these tests never reach a hub.
    session_at(name, "http://127.0.0.1:9")
}

/// Like [`session`], for the hub at `hub_url`, with fast retries.
fn session_at(name: &str, hub_url: &str) -> (Fixture, Session) {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "careshare-client-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = Replica::create(
        ReplicaFiles::new(&dir),
        &Passphrase::from(PASS),
        KeyParams {
            iterations: NonZeroU32::new(1_000).unwrap(),
        },
        t0() + Duration::days(14),
        t0(),
    )
    .unwrap();
    let (_, pkcs8) = DeviceKey::generate().unwrap();
    r.set_device(&DeviceState {
        hub_url: hub_url.into(),
        username: "nurse.amy.khan".into(),
        practitioner_role: Some("PractitionerRole/pr-amy".into()),
        device_id: "dev-test".into(),
        device_name: "test laptop".into(),
        signing_key: pkcs8,
        refresh_token: Some(SecretString::from(TOKEN)),
        audit_sent: None,
        enrolled_at: t0(),
        last_sync_at: None,
    })
    .unwrap();
    r.lock().unwrap();
    let http = crate::HttpConfig {
        retry: crate::RetryPolicy {
            max_retries: 3,
            base_delay: std::time::Duration::from_millis(2),
            max_delay: std::time::Duration::from_millis(10),
        },
        ..Default::default()
    };
    let s = Session::open_with(&dir, &Passphrase::from(PASS), t0(), &http).unwrap();
    (Fixture { dir }, s)
}

fn obs(id: &str, patient: &str, text: &str, version: i64) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "meta": {"versionId": version.to_string()},
        "status": "final",
        "subject": {"reference": format!("Patient/{patient}")},
        "note": [{"text": text}]
    })
}

fn upsert(resource: Value, version: i64, patient: &str) -> Change {
    Change::Upsert {
        resource_type: resource["resourceType"].as_str().unwrap().into(),
        id: resource["id"].as_str().unwrap().into(),
        version,
        resource,
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

/// Stores `resources` as pulled from the hub (one complete page).
fn pull(s: &mut Session, changes: Vec<Change>, next: i64) {
    let stored =
        crate::apply::parse_checkpoint(s.replica().unwrap().pull_checkpoint().unwrap()).unwrap();
    let mut state = ClientSync::new(stored, 100);
    commit_page(
        s.replica_mut().unwrap(),
        &mut state,
        &page(changes, next, false),
        t0(),
    )
    .unwrap();
}

fn text(v: &Value) -> &str {
    v["note"][0]["text"].as_str().unwrap_or("")
}

#[test]
fn a_page_and_its_checkpoint_commit_together_or_not_at_all() {
    let (_f, mut s) = session("page");
    let mut state = ClientSync::new(None, 2);
    let first = page(vec![upsert(obs("o1", "p1", "first", 1), 1, "p1")], 1, true);
    let (effect, applied) =
        commit_page(s.replica_mut().unwrap(), &mut state, &first, t0()).unwrap();
    assert!(effect.more);
    assert_eq!(applied.upserted, 1);
    assert_eq!(state.checkpoint(), Some(Checkpoint::from_sequence(1)));

    // The device fails while writing the third change of the next page.
    s.replica()
        .unwrap()
        .raw_connection()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON resource WHEN NEW.resource_id = 'o3'
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let second = page(
        vec![
            upsert(obs("o2", "p2", "second", 1), 1, "p2"),
            Change::PurgePatient {
                patient: "p1".into(),
                reason: RemovalReason::LeftCaseload,
            },
            upsert(obs("o3", "p2", "third", 1), 1, "p2"),
        ],
        4,
        false,
    );
    let failed = commit_page(s.replica_mut().unwrap(), &mut state, &second, t0());
    assert!(matches!(failed, Err(ClientError::Replica(_))), "{failed:?}");
    // Nothing of the page, and neither checkpoint moved.
    let r = s.replica().unwrap();
    assert_eq!(state.checkpoint(), Some(Checkpoint::from_sequence(1)));
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("1"));
    assert!(r.get_resource("Observation", "o2").unwrap().is_none());
    assert!(
        r.get_resource("Observation", "o1").unwrap().is_some(),
        "purge undone"
    );
    assert!(r.patient_freshness().unwrap().is_empty());

    // After a restart the sync resumes from the stored checkpoint and the
    // same page applies.
    r.raw_connection()
        .execute_batch("DROP TRIGGER boom;")
        .unwrap();
    let stored = crate::apply::parse_checkpoint(r.pull_checkpoint().unwrap()).unwrap();
    let mut resumed = ClientSync::new(stored, 2);
    assert_eq!(
        resumed.next_pull().checkpoint,
        Some(Checkpoint::from_sequence(1))
    );
    commit_page(s.replica_mut().unwrap(), &mut resumed, &second, t0()).unwrap();
    let r = s.replica().unwrap();
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("4"));
    assert!(r.get_resource("Observation", "o1").unwrap().is_none());
    assert!(r.get_resource("Observation", "o3").unwrap().is_some());
    assert_eq!(r.patient_synced_at("p2").unwrap(), Some(t0()));

    // A page the protocol refuses (it goes back) stores nothing either.
    let back = page(vec![upsert(obs("o9", "p2", "x", 1), 1, "p2")], 2, false);
    assert!(matches!(
        commit_page(s.replica_mut().unwrap(), &mut resumed, &back, t0()),
        Err(ClientError::Protocol(_))
    ));
    assert!(s
        .replica()
        .unwrap()
        .get_resource("Observation", "o9")
        .unwrap()
        .is_none());
}

#[test]
fn outbox_actions_become_replica_operations() {
    let (_f, mut s) = session("actions");
    pull(
        &mut s,
        (1..=5)
            .map(|i| upsert(obs(&format!("o{i}"), "p1", "hub", 3), 3, "p1"))
            .collect(),
        5,
    );
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(
            s.record_edit(obs(&format!("o{i}"), "p1", "mine", 3), None, t0())
                .unwrap(),
        );
    }
    let pending = s.replica().unwrap().pending_edits().unwrap();
    let edits = outbox_edits(&pending).unwrap();
    assert_eq!(edits.len(), 5);
    assert!(edits.iter().all(|e| e.base_version == Some(3)));

    let mut state = ClientSync::new(None, 1);
    let batch = state.push_batch(&edits, 10);
    assert_eq!(batch.edits.len(), 5);
    let outcome = json!({"resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": "status is required"}]});
    let result = PushResult {
        results: vec![
            EditResult::Applied {
                client_edit_id: ids[0].clone(),
                version: 4,
            },
            EditResult::Merged {
                client_edit_id: ids[1].clone(),
                version: 6,
                resource: Some(obs("o2", "p1", "merged", 6)),
            },
            EditResult::Conflict {
                client_edit_id: ids[2].clone(),
                base: Some(obs("o3", "p1", "hub", 3)),
                ours: Some(obs("o3", "p1", "mine", 3)),
                theirs: Some(obs("o3", "p1", "theirs", 5)),
                current_version: Some(5),
                conflicts: vec![],
            },
            EditResult::Rejected {
                client_edit_id: ids[3].clone(),
                outcome: outcome.clone(),
            },
            // No answer for the fifth edit (a lost part of the answer).
        ],
    };
    let actions = state.apply_push_result(&result);
    assert!(matches!(&actions[4], OutboxAction::Keep { .. }));
    let by_id: HashMap<_, _> = pending
        .into_iter()
        .map(|p| (p.edit.client_edit_id.clone(), p))
        .collect();
    let mut tally = PushTally::default();
    let r = s.replica_mut().unwrap();
    let moved: Vec<bool> = actions
        .iter()
        .map(|a| apply_action(r, a, &by_id, &mut tally, t0()).unwrap())
        .collect();
    assert_eq!(moved, vec![true, true, true, true, false]);
    assert_eq!(
        tally,
        PushTally {
            applied: 1,
            merged: 1,
            conflicts: 1,
            rejected: 1,
            kept: 1
        }
    );
    let r = s.replica().unwrap();
    // Applied: gone from the outbox, the synced copy is the edit at version 4.
    let o1 = r.get_resource("Observation", "o1").unwrap().unwrap();
    assert_eq!(o1.base_version.as_deref(), Some("4"));
    assert_eq!(o1.content["meta"]["versionId"], "4");
    assert_eq!(text(&o1.content), "mine");
    // Merged: the synced copy is the hub's merge.
    let o2 = r.get_resource("Observation", "o2").unwrap().unwrap();
    assert_eq!(
        (o2.base_version.as_deref(), text(&o2.content)),
        (Some("6"), "merged")
    );
    // Conflict: out of the outbox, into the conflicts, with base/ours/theirs.
    let conflicts = s.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(
        (c.resource_id.as_str(), c.patient_id.as_str()),
        ("o3", "p1")
    );
    assert_eq!(c.client_edit_id.as_deref(), Some(ids[2].as_str()));
    assert_eq!(c.current_version, Some(5));
    assert_eq!(text(&c.ours), "mine");
    assert_eq!(text(&c.theirs), "theirs");
    assert_eq!(text(c.base.as_ref().unwrap()), "hub");
    // Rejected: kept, marked, with the hub's reason; kept: still queued.
    let outbox = s.outbox().unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox[0].client_edit_id, ids[3]);
    assert_eq!(outbox[0].state, "rejected");
    assert_eq!(outbox[0].outcome.as_ref(), Some(&outcome));
    assert_eq!(outbox[1].client_edit_id, ids[4]);
    assert_ne!(outbox[1].state, "rejected");
    // The next push sends only the unanswered edit again.
    let again = outbox_edits(&s.replica().unwrap().pending_edits().unwrap()).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].client_edit_id, ids[4]);
    let status = s.status().unwrap();
    assert_eq!(
        (
            status.pending_edits,
            status.rejected_edits,
            status.open_conflicts
        ),
        (1, 1, 1)
    );
    // Only rejected edits can be dropped.
    assert!(!s.discard_rejected(&ids[4]).unwrap());
    assert!(s.discard_rejected(&ids[3]).unwrap());
    assert!(!s.discard_rejected(&ids[3]).unwrap());
    assert_eq!(s.outbox().unwrap().len(), 1);
}

#[test]
fn a_lost_push_answer_keeps_every_edit_for_a_resend() {
    let (_f, mut s) = session("lost");
    let id = s
        .record_edit(obs("n1", "p1", "new note", 1), None, t0())
        .unwrap();
    let pending = s.replica().unwrap().pending_edits().unwrap();
    let edits = outbox_edits(&pending).unwrap();
    assert_eq!(edits[0].base_version, None, "no synced copy: a create");
    let mut state = ClientSync::new(None, 1);
    let first = state.push_batch(&edits, 10);
    s.replica_mut()
        .unwrap()
        .set_edit_state(&id, EditState::Sent)
        .unwrap();
    // The answer never arrives; the next sync sends the same edit, same id.
    let pending = s.replica().unwrap().pending_edits().unwrap();
    assert_eq!(pending[0].state, EditState::Sent);
    let second = state.push_batch(&outbox_edits(&pending).unwrap(), 10);
    assert_eq!(first, second);
    // The hub recognises it and says it was applied before.
    let actions = state.apply_push_result(&PushResult {
        results: vec![EditResult::AlreadyApplied {
            client_edit_id: id.clone(),
            version: 1,
        }],
    });
    let by_id: HashMap<_, _> = pending
        .into_iter()
        .map(|p| (p.edit.client_edit_id.clone(), p))
        .collect();
    let mut tally = PushTally::default();
    assert!(apply_action(
        s.replica_mut().unwrap(),
        &actions[0],
        &by_id,
        &mut tally,
        t0()
    )
    .unwrap());
    assert_eq!(tally.applied, 1);
    assert!(s.outbox().unwrap().is_empty());
    let n1 = s
        .replica()
        .unwrap()
        .get_resource("Observation", "n1")
        .unwrap()
        .unwrap();
    assert_eq!(n1.patient_id, "p1");
}

#[test]
fn edits_show_as_pending_and_views_are_audited() {
    let (_f, mut s) = session("edits");
    pull(&mut s, vec![upsert(obs("o1", "p1", "hub", 3), 3, "p1")], 1);
    let v = s.view("Observation", "o1", t0()).unwrap().unwrap();
    assert!(!v.pending);
    assert_eq!(v.version, Some(3));
    assert_eq!(v.patient_id.as_deref(), Some("p1"));
    assert_eq!(v.data_as_of, Some(t0()));

    let id = s
        .record_edit(obs("o1", "p1", "mine", 3), None, t0())
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let e = &s.replica().unwrap().edits_for("Observation", "o1").unwrap()[0];
    assert_eq!(
        e.edit.base_version.as_deref(),
        Some("3"),
        "base from the synced copy"
    );
    let v = s.view("Observation", "o1", t0()).unwrap().unwrap();
    assert!(v.pending);
    assert_eq!(text(&v.resource), "mine");
    // The synced copy is untouched, and a new pull does not discard the edit.
    pull(
        &mut s,
        vec![upsert(obs("o1", "p1", "hub v4", 4), 4, "p1")],
        2,
    );
    let v = s.view("Observation", "o1", t0()).unwrap().unwrap();
    assert_eq!((text(&v.resource), v.version), ("mine", Some(4)));

    // A create without an id gets a UUID; the patient comes from the subject.
    let mut new = obs("x", "p2", "new", 1);
    new.as_object_mut().unwrap().remove("id");
    s.record_edit(new, None, t0()).unwrap();
    let created = s
        .outbox()
        .unwrap()
        .into_iter()
        .find(|e| e.patient_id == "p2")
        .unwrap();
    assert_eq!(created.resource_id.len(), 36);
    assert_eq!(created.base_version, None);

    // Which patient? Nothing says: refused.
    let orphan = json!({"resourceType": "Observation", "id": "z", "status": "final"});
    assert!(matches!(
        s.record_edit(orphan, None, t0()),
        Err(ClientError::InvalidInput(_))
    ));
    assert!(matches!(
        s.record_edit(json!({"id": "z"}), None, t0()),
        Err(ClientError::InvalidInput(_))
    ));
    assert!(matches!(
        s.record_edit(
            json!({"resourceType": "Observation", "id": "a/b"}),
            None,
            t0()
        ),
        Err(ClientError::InvalidInput(_))
    ));

    // A queued delete hides the resource; an unknown one is not there.
    s.record_delete("Observation", "o1", None, t0()).unwrap();
    assert!(s.view("Observation", "o1", t0()).unwrap().is_none());
    assert!(s.view("Observation", "nope", t0()).unwrap().is_none());

    // Three views were recorded, with references only.
    let r = s.replica().unwrap();
    assert_eq!(r.verify_audit().unwrap(), 3);
    let rows = r.audit_after(0, 10).unwrap();
    let event: Value = serde_json::from_str(&rows[0].event).unwrap();
    assert_eq!(event["action"], "view");
    assert_eq!(event["resource"], "Observation/o1");
    assert_eq!(event["patient"], "Patient/p1");
    assert_eq!(event["device"], "dev-test");
    assert!(!rows[1].event.contains("mine"), "no clinical content");
}

fn conflict_on_o1(s: &mut Session) -> i64 {
    s.replica_mut()
        .unwrap()
        .enqueue_edit(
            &careshare_replica::OutboxEdit {
                client_edit_id: "e-conflicting".into(),
                resource_type: "Observation".into(),
                resource_id: "o1".into(),
                patient_id: "p1".into(),
                base_version: Some("3".into()),
                edit: obs("o1", "p1", "mine", 3),
            },
            t0(),
        )
        .unwrap();
    s.replica_mut()
        .unwrap()
        .conflict_edit(
            &NewConflict {
                resource_type: "Observation".into(),
                resource_id: "o1".into(),
                patient_id: "p1".into(),
                base: Some(obs("o1", "p1", "base", 3)),
                ours: obs("o1", "p1", "mine", 3),
                theirs: obs("o1", "p1", "theirs", 5),
            },
            &ConflictContext {
                client_edit_id: "e-conflicting".into(),
                current_version: Some("5".into()),
                details: json!([]),
            },
            t0(),
        )
        .unwrap()
        .unwrap()
}

#[test]
fn resolving_queues_the_choice_and_a_provenance() {
    let (_f, mut s) = session("resolve");
    let now = t0() + Duration::hours(2);
    let id = conflict_on_o1(&mut s);
    let resolved = s.resolve(id, Resolution::Mine, now).unwrap();
    assert!(s.conflicts().unwrap().is_empty());
    assert!(matches!(
        s.resolve(id, Resolution::Mine, now),
        Err(ClientError::NoSuchConflict(_))
    ));
    let outbox = s.replica().unwrap().pending_edits().unwrap();
    assert_eq!(outbox.len(), 2);
    let edit = &outbox[0].edit;
    assert_eq!(
        Some(edit.client_edit_id.as_str()),
        resolved.edit_id.as_deref()
    );
    assert_ne!(edit.client_edit_id, "e-conflicting", "a new edit");
    assert_eq!(
        edit.base_version.as_deref(),
        Some("5"),
        "based on the hub's current"
    );
    assert_eq!(text(&edit.edit), "mine");
    let prov = &outbox[1].edit;
    assert_eq!(prov.client_edit_id, resolved.provenance_edit_id);
    assert_eq!(prov.resource_type, "Provenance");
    assert_eq!(prov.resource_id, resolved.provenance_id);
    assert_eq!(prov.patient_id, "p1");
    assert_eq!(prov.base_version, None);
    let p = &prov.edit;
    assert_eq!(p["resourceType"], "Provenance");
    assert_eq!(p["id"], resolved.provenance_id.as_str());
    assert_eq!(
        p["target"],
        json!([{"reference": "Observation/o1"}, {"reference": "Patient/p1"}])
    );
    assert_eq!(p["recorded"], "2026-03-02T11:00:00.000Z");
    assert_eq!(p["reason"][0]["coding"][0]["code"], "mine");
    assert_eq!(
        p["reason"][0]["coding"][0]["system"],
        crate::CONFLICT_RESOLUTION_SYSTEM
    );
    assert_eq!(p["activity"]["coding"][0]["code"], "UPDATE");
    assert_eq!(p["agent"][0]["who"]["reference"], "PractitionerRole/pr-amy");
    assert_eq!(p["agent"][1]["who"]["identifier"]["value"], "dev-test");
    assert_eq!(
        p["entity"][0]["what"]["reference"],
        "Observation/o1/_history/5"
    );
    // Both go to the hub in order: the resolution, then its Provenance.
    let sent = outbox_edits(&outbox).unwrap();
    assert_eq!(sent[0].base_version, Some(5));
    assert_eq!(sent[1].resource.as_ref(), Some(p));

    // Theirs: nothing to change, only the Provenance.
    let id = conflict_on_o1(&mut s);
    let resolved = s.resolve(id, Resolution::Theirs, now).unwrap();
    assert_eq!(resolved.edit_id, None);
    let last = s.replica().unwrap().pending_edits().unwrap().pop().unwrap();
    assert_eq!(last.edit.edit["reason"][0]["coding"][0]["code"], "theirs");
    assert!(last.edit.edit.get("activity").is_none());

    // Combined: must be the same resource; a wrong one changes nothing.
    let id = conflict_on_o1(&mut s);
    let wrong = obs("o2", "p1", "both", 5);
    assert!(matches!(
        s.resolve(id, Resolution::Combined(wrong), now),
        Err(ClientError::InvalidInput(_))
    ));
    assert_eq!(s.conflicts().unwrap().len(), 1);
    let both = obs("o1", "p1", "both", 5);
    let resolved = s.resolve(id, Resolution::Combined(both), now).unwrap();
    let edits = s.replica().unwrap().edits_for("Observation", "o1").unwrap();
    let combined = edits
        .iter()
        .find(|e| Some(&e.edit.client_edit_id) == resolved.edit_id.as_ref())
        .unwrap();
    assert_eq!(text(&combined.edit.edit), "both");
    // What the user sees now is the combined version, pending.
    let v = s.view("Observation", "o1", now).unwrap().unwrap();
    assert!(v.pending);
    assert_eq!(text(&v.resource), "both");
}

#[test]
fn status_reports_outbox_conflicts_and_freshness() {
    let (_f, mut s) = session("status");
    let st = s.status().unwrap();
    assert_eq!(st.device.device_id, "dev-test");
    assert_eq!(st.last_sync, None);
    assert_eq!(st.checkpoint, None);
    assert_eq!(st.lease_expires_at, t0() + Duration::days(14));
    pull(
        &mut s,
        vec![
            upsert(obs("o1", "p1", "a", 1), 1, "p1"),
            upsert(obs("o2", "p2", "b", 1), 1, "p2"),
        ],
        2,
    );
    s.record_edit(obs("o1", "p1", "c", 1), None, t0()).unwrap();
    conflict_on_o1(&mut s);
    s.replica_mut().unwrap().set_last_sync(t0()).unwrap();
    let st = s.status().unwrap();
    assert_eq!(
        (st.pending_edits, st.rejected_edits, st.open_conflicts),
        (1, 0, 1)
    );
    assert_eq!(st.last_sync, Some(t0()));
    assert_eq!(st.checkpoint.as_deref(), Some("2"));
    assert_eq!(st.resources, 2);
    let ids: Vec<_> = st.patients.iter().map(|p| p.patient_id.as_str()).collect();
    assert_eq!(ids, vec!["p1", "p2"]);
    assert!(st.patients.iter().all(|p| p.data_as_of == Some(t0())));
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["open_conflicts"], 1);
}

#[test]
fn opening_reports_wrong_passphrases_and_missing_replicas() {
    let (f, s) = session("open");
    s.lock().unwrap();
    let wrong = Session::open(&f.dir, &Passphrase::from("not it"), t0());
    assert!(matches!(
        wrong,
        Err(ClientError::WrongPassphrase { attempts_left: 4 })
    ));
    let late = Session::open(&f.dir, &Passphrase::from(PASS), t0() + Duration::days(30));
    assert!(matches!(late, Err(ClientError::LeaseExpired { .. })));
    let s = Session::open(&f.dir, &Passphrase::from(PASS), t0()).unwrap();
    assert_eq!(s.dir(), f.dir.as_path());
    s.lock().unwrap();
    let empty = f.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        Session::open(&empty, &Passphrase::from(PASS), t0()),
        Err(ClientError::NotEnrolled(_))
    ));
}

#[test]
fn secrets_never_print() {
    let (_f, s) = session("secrets");
    let device = s.replica().unwrap().device().unwrap().unwrap();
    let key = device.signing_key.expose().to_vec();
    for shown in [format!("{s:?}"), format!("{device:?}")] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains(PASS), "{shown}");
        assert!(!shown.contains(&format!("{key:?}")), "{shown}");
    }
    let e = Enrolment::new(
        "/tmp/x",
        "http://127.0.0.1:1",
        "nurse",
        SecretString::from("hub-secret-passphrase"),
        Passphrase::from("replica-secret-passphrase"),
    );
    let shown = format!("{e:?}");
    assert!(!shown.contains("hub-secret-passphrase"), "{shown}");
    assert!(!shown.contains("replica-secret-passphrase"), "{shown}");
    // Error messages name what went wrong, never a secret.
    let errors = [
        ClientError::WrongPassphrase { attempts_left: 2 },
        ClientError::Locked,
        ClientError::Wiped,
        ClientError::SignInRequired {
            reason: "the token has expired: refresh it or sign in again".into(),
        },
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(TOKEN) && !text.contains(PASS), "{text}");
        assert!(!e.code().is_empty());
    }
    let _ = SecretBytes::new(key);
}

#[test]
fn sync_is_a_send_future() {
    fn assert_send<T: Send>(_: &T) {}
    let (_f, mut s) = session("send");
    let mut progress = |_: SyncProgress| {};
    let options = SyncOptions::default();
    let fut = s.sync(&options, t0(), &mut progress);
    assert_send(&fut);
    drop(fut);
    fn assert_send_type<T: Send>() {}
    assert_send_type::<Session>();
}

#[test]
fn a_wiped_session_refuses_everything() {
    let (f, mut s) = session("wiped");
    let e = s.wipe();
    assert!(matches!(e, ClientError::Wiped));
    assert!(matches!(s.status(), Err(ClientError::Wiped)));
    assert!(ReplicaFiles::new(&f.dir)
        .all_files()
        .iter()
        .all(|p| !p.exists()));
    assert!(matches!(
        Session::open(&f.dir, &Passphrase::from(PASS), t0()),
        Err(ClientError::NotEnrolled(_))
    ));
    s.lock().unwrap();
}

/// A scripted hub: answers each request with the next reply of its script
/// and records what it was sent.
mod fake {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    pub enum Reply {
        /// A JSON answer with this status.
        Json(u16, Value),
        /// 403 with `Careshare-Instruction: wipe`.
        Wipe,
        /// Close the connection without answering (a lost answer).
        Drop,
    }

    #[derive(Debug, Clone)]
    pub struct Request {
        pub method: String,
        pub path: String,
        pub authorization: Option<String>,
        pub body: String,
    }

    pub struct Hub {
        pub url: String,
        pub requests: Arc<Mutex<Vec<Request>>>,
    }

    impl Hub {
        pub fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }

        pub fn paths(&self) -> Vec<String> {
            self.requests()
                .into_iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect()
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    pub async fn start(script: Vec<Reply>) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Head, then as much body as content-length says.
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = find(&buf, b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                seen.lock().unwrap().push(Request {
                    method: first.next().unwrap_or("").to_owned(),
                    path: first.next().unwrap_or("").to_owned(),
                    authorization: header("authorization"),
                    body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
                });
                let reply = script.lock().unwrap().pop_front();
                let (status, extra, body) = match reply {
                    Some(Reply::Json(status, body)) => (status, "", body.to_string()),
                    Some(Reply::Wipe) => (
                        403,
                        "careshare-instruction: wipe\r\n",
                        r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"security","diagnostics":"this device has been revoked"}]}"#.to_owned(),
                    ),
                    Some(Reply::Drop) | None => {
                        drop(sock);
                        continue;
                    }
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        Hub { url, requests }
    }
}

fn tokens(n: u32) -> Value {
    json!({
        "token_type": "Bearer",
        "access_token": format!("access-{n}"),
        "refresh_token": format!("refresh-{n}"),
        "expires_in": 900
    })
}

fn empty_page(next: i64) -> Value {
    serde_json::to_value(page(vec![], next, false)).unwrap()
}

fn unauthorized() -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "expired", "diagnostics": "the token has expired"}]})
}

#[tokio::test]
async fn a_sync_retries_lost_answers_and_refreshes_expired_tokens() {
    use fake::Reply::{Drop, Json};
    // The edit id is only known once queued: queue first, script after.
    let (_f, mut s) = session("fake-sync");
    let id = s
        .record_edit(obs("n1", "p1", "new note", 1), None, t0())
        .unwrap();
    let pushed = serde_json::to_value(PushResult {
        results: vec![EditResult::AlreadyApplied {
            client_edit_id: id.clone(),
            version: 1,
        }],
    })
    .unwrap();
    let lease = t0() + Duration::days(7);
    let hub = fake::start(vec![
        Json(200, tokens(1)),      // refresh
        Json(401, unauthorized()), // pull: token expired
        Json(200, tokens(2)),      // refresh again
        Json(503, json!({})),      // pull: hub busy
        Json(200, empty_page(0)),  // pull
        Drop,                      // push: answer lost
        Json(200, pushed),         // push again: applied before
        Json(200, empty_page(1)),  // pull after the push
        Json(
            200,
            json!({"next_seq": 1, "head": careshare_replica::AUDIT_GENESIS}),
        ),
        Json(200, json!({"lease_until": lease.to_rfc3339()})),
    ])
    .await;
    // Point the session at the scripted hub.
    s.hub = crate::http::HubClient::new(
        &hub.url,
        &crate::HttpConfig {
            retry: crate::RetryPolicy {
                max_retries: 3,
                base_delay: std::time::Duration::from_millis(2),
                max_delay: std::time::Duration::from_millis(10),
            },
            ..Default::default()
        },
    )
    .unwrap();
    let mut steps = Vec::new();
    let mut progress = |p: SyncProgress| steps.push(p);
    let report = s
        .sync(&SyncOptions::default(), t0(), &mut progress)
        .await
        .unwrap();
    assert_eq!(
        hub.paths(),
        vec![
            "POST /auth/refresh",
            "POST /sync/pull",
            "POST /auth/refresh",
            "POST /sync/pull",
            "POST /sync/pull",
            "POST /sync/push",
            "POST /sync/push",
            "POST /sync/pull",
            "GET /sync/audit",
            "POST /sync/checkin",
        ]
    );
    let requests = hub.requests();
    // The stored refresh token was spent and replaced, each exactly once.
    assert!(requests[0].body.contains(TOKEN));
    assert!(requests[2].body.contains("refresh-1"));
    assert_eq!(
        s.replica()
            .unwrap()
            .device()
            .unwrap()
            .unwrap()
            .refresh_token
            .unwrap()
            .expose(),
        "refresh-2"
    );
    assert_eq!(
        requests[4].authorization.as_deref(),
        Some("Bearer access-2")
    );
    // The resent push is the same edit, under the same id.
    assert_eq!(requests[5].body, requests[6].body);
    assert!(requests[5].body.contains(&id));
    assert_eq!(report.pushed.applied, 1);
    assert_eq!(report.pages, 2);
    assert_eq!(report.lease_until, Some(lease));
    assert_eq!(report.checkpoint, Some(1));
    assert!(s.outbox().unwrap().is_empty());
    let st = s.status().unwrap();
    assert_eq!(st.last_sync, Some(t0()));
    assert_eq!(st.lease_expires_at, lease);
    assert!(steps.contains(&SyncProgress::CheckingIn));
    assert!(steps.contains(&SyncProgress::Pushed { done: 1, total: 1 }));
}

#[tokio::test]
async fn token_calls_are_not_repeated_after_a_server_error() {
    use fake::Reply::Json;
    let (_f, mut s) = session("fake-refresh");
    let hub = fake::start(vec![Json(503, json!({})), Json(200, tokens(1))]).await;
    s.hub = crate::http::HubClient::new(&hub.url, &crate::HttpConfig::default()).unwrap();
    let err = s
        .sync(&SyncOptions::default(), t0(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Hub { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(hub.paths(), vec!["POST /auth/refresh"]);
    // The token may or may not have been spent: it is kept for the next try.
    assert!(s
        .replica()
        .unwrap()
        .device()
        .unwrap()
        .unwrap()
        .refresh_token
        .is_some());
}

#[tokio::test]
async fn a_wipe_instruction_wipes_the_replica() {
    use fake::Reply::{Json, Wipe};
    let (f, mut s) = session("fake-wipe");
    let hub = fake::start(vec![Json(200, tokens(1)), Wipe]).await;
    s.hub = crate::http::HubClient::new(&hub.url, &crate::HttpConfig::default()).unwrap();
    let err = s
        .sync(&SyncOptions::default(), t0(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Wiped), "{err:?}");
    assert!(ReplicaFiles::new(&f.dir)
        .all_files()
        .iter()
        .all(|p| !p.exists()));
    assert!(matches!(s.status(), Err(ClientError::Wiped)));
}

#[tokio::test]
async fn a_refused_refresh_asks_for_a_new_sign_in() {
    use fake::Reply::Json;
    let (_f, mut s) = session("fake-signin");
    let hub = fake::start(vec![Json(401, unauthorized())]).await;
    s.hub = crate::http::HubClient::new(&hub.url, &crate::HttpConfig::default()).unwrap();
    let err = s
        .sync(&SyncOptions::default(), t0(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::SignInRequired { .. }), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
    assert!(s
        .replica()
        .unwrap()
        .device()
        .unwrap()
        .unwrap()
        .refresh_token
        .is_none());
}

#[tokio::test]
async fn audit_rows_are_uploaded_from_the_hubs_position_and_signed() {
    use fake::Reply::Json;
    let (_f, mut s) = session("fake-audit");
    pull(&mut s, vec![upsert(obs("o1", "p1", "hub", 1), 1, "p1")], 1);
    for _ in 0..3 {
        s.view("Observation", "o1", t0()).unwrap();
    }
    let rows = s.replica().unwrap().audit_after(0, 10).unwrap();
    let hub = fake::start(vec![
        Json(200, tokens(1)),
        Json(200, empty_page(1)),
        // The hub already holds row 1.
        Json(200, json!({"next_seq": 2, "head": rows[0].hash})),
        // Someone else moved it on: ask again.
        Json(
            409,
            json!({"resourceType": "OperationOutcome", "issue": []}),
        ),
        Json(200, json!({"next_seq": 3, "head": rows[1].hash})),
        Json(200, json!({"next_seq": 4, "head": rows[2].hash})),
        Json(
            200,
            json!({"lease_until": (t0() + Duration::days(7)).to_rfc3339()}),
        ),
    ])
    .await;
    s.hub = crate::http::HubClient::new(&hub.url, &crate::HttpConfig::default()).unwrap();
    let report = s
        .sync(&SyncOptions::default(), t0(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.audit_events, 1);
    let requests = hub.requests();
    let uploads: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/sync/audit")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0]["events"][0]["seq"], 2);
    assert_eq!(uploads[1]["events"].as_array().unwrap().len(), 1);
    assert_eq!(uploads[1]["events"][0]["seq"], 3);
    let event = &uploads[1]["events"][0];
    assert_eq!(event["event"]["action"], "view");
    assert_eq!(event["hash"], rows[2].hash.as_str());
    // Signed by the device key over the head sent.
    let device = s.replica().unwrap().device().unwrap().unwrap();
    let key = DeviceKey::load(&device.signing_key).unwrap();
    assert_eq!(
        uploads[1]["signature"],
        key.sign_audit_head(&rows[2].hash).as_str()
    );
    assert_eq!(device.audit_sent, Some((3, rows[2].hash.clone())));

    // A hub whose copy is not a prefix of ours is a mismatch.
    let hub = fake::start(vec![
        Json(200, tokens(2)),
        Json(200, empty_page(1)),
        Json(200, json!({"next_seq": 3, "head": "something else"})),
    ])
    .await;
    s.hub = crate::http::HubClient::new(&hub.url, &crate::HttpConfig::default()).unwrap();
    s.access = None;
    let err = s
        .sync(&SyncOptions::default(), t0(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::AuditMismatch(_)), "{err:?}");
}
