//! Tests of the sync storage (schema version 2): device identity, pulled
//! pages committed with their checkpoint, push outcomes, audit read-back.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use careshare_replica::{
    wipe, ConflictContext, DeviceState, EditState, KeyParams, NewConflict, OutboxEdit, Passphrase,
    PullPageWrite, PulledResource, Replica, ReplicaError, ReplicaFiles, SecretBytes, SecretString,
    SyncedUpdate, AUDIT_GENESIS,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

const PASS: &str = "correct horse battery staple";
const KEY: &[u8] = b"pkcs8-device-key-bytes-0123456789";
const TOKEN: &str = "refresh-token-7c1d9a";

fn test_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "careshare-sync-store-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn done(dir: &Path) {
    wipe(dir).unwrap();
    std::fs::remove_dir(dir).unwrap();
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn create(dir: &Path) -> Replica {
    Replica::create(
        ReplicaFiles::new(dir),
        &Passphrase::from(PASS),
        KeyParams {
            iterations: NonZeroU32::new(1_000).unwrap(),
        },
        t0() + Duration::days(14),
        t0(),
    )
    .unwrap()
}

fn device() -> DeviceState {
    DeviceState {
        hub_url: "http://127.0.0.1:8080".into(),
        username: "nurse.amy.khan".into(),
        practitioner_role: Some("PractitionerRole/pr-1".into()),
        device_id: "dev-1".into(),
        device_name: "laptop".into(),
        signing_key: SecretBytes::new(KEY.to_vec()),
        refresh_token: Some(SecretString::from(TOKEN)),
        audit_sent: None,
        enrolled_at: t0(),
        last_sync_at: None,
    }
}

fn obs(id: &str, patient: &str, text: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "meta": {"versionId": "1"},
        "subject": {"reference": format!("Patient/{patient}")},
        "note": [{"text": text}]
    })
}

fn pulled(resource: Value, version: i64, patient: Option<&str>) -> PulledResource {
    PulledResource {
        resource,
        version: version.to_string(),
        patient_id: patient.map(str::to_owned),
    }
}

fn edit(id: &str, resource_id: &str, patient: &str, base: Option<&str>, body: Value) -> OutboxEdit {
    OutboxEdit {
        client_edit_id: id.into(),
        resource_type: "Observation".into(),
        resource_id: resource_id.into(),
        patient_id: patient.into(),
        base_version: base.map(str::to_owned),
        edit: body,
    }
}

fn count(r: &Replica, table: &str) -> i64 {
    r.raw_connection()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[test]
fn schema_is_current_and_upgrades_from_version_1() {
    let dir = test_dir("schema");
    let r = create(&dir);
    let version: i64 = r
        .raw_connection()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 4);
    // Take the database back to schema 1 (as an older build left it) ...
    r.raw_connection()
        .execute_batch(
            "DROP TABLE directory;
             DROP INDEX resource_by_patient_type;
             ALTER TABLE resource DROP COLUMN clinical_time;
             DROP TABLE device;
             DROP INDEX outbox_by_resource;
             ALTER TABLE outbox DROP COLUMN outcome;
             ALTER TABLE conflict DROP COLUMN client_edit_id;
             ALTER TABLE conflict DROP COLUMN current_version;
             ALTER TABLE conflict DROP COLUMN details;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    let mut r2 = r;
    r2.enqueue_edit(&edit("e1", "o1", "p1", None, obs("o1", "p1", "x")), t0())
        .unwrap_err(); // the v2 columns are gone
    r2.lock().unwrap();
    // ... and opening migrates it again.
    let mut r = Replica::open(ReplicaFiles::new(&dir), &Passphrase::from(PASS), t0()).unwrap();
    r.enqueue_edit(&edit("e1", "o1", "p1", None, obs("o1", "p1", "x")), t0())
        .unwrap();
    r.set_device(&device()).unwrap();
    assert!(r.device().unwrap().is_some());
    drop(r);
    done(&dir);
}

#[test]
fn device_state_round_trips_and_never_prints_secrets() {
    let dir = test_dir("device");
    let mut r = create(&dir);
    assert!(r.device().unwrap().is_none());
    assert!(
        r.set_refresh_token(&SecretString::from("x")).is_err(),
        "no device yet"
    );
    r.set_device(&device()).unwrap();
    let d = r.device().unwrap().unwrap();
    assert_eq!(d.device_id, "dev-1");
    assert_eq!(d.signing_key.expose(), KEY);
    assert_eq!(d.refresh_token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(d.audit_sent, None);
    let debug = format!("{d:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains("pkcs8-device-key"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");

    r.set_refresh_token(&SecretString::from("next-token"))
        .unwrap();
    r.set_audit_sent(7, "abc").unwrap();
    r.set_last_sync(t0() + Duration::hours(1)).unwrap();
    let d = r.device().unwrap().unwrap();
    assert_eq!(d.refresh_token.unwrap().expose(), "next-token");
    assert_eq!(d.audit_sent, Some((7, "abc".to_owned())));
    assert_eq!(d.last_sync_at, Some(t0() + Duration::hours(1)));
    r.clear_refresh_token().unwrap();
    assert!(r.device().unwrap().unwrap().refresh_token.is_none());
    assert!(r.set_refresh_token(&SecretString::from("")).is_err());
    r.lock().unwrap();

    // The key and the token are never in clear in the files.
    for path in ReplicaFiles::new(&dir).all_files() {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for needle in [KEY, b"next-token".as_slice(), b"nurse.amy.khan".as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "secret in {}",
                path.display()
            );
        }
    }
    done(&dir);
}

#[test]
fn an_expired_device_reads_its_identity_only_through_checkin() {
    let dir = test_dir("checkin");
    let mut r = create(&dir);
    r.set_device(&device()).unwrap();
    r.lock().unwrap();
    let files = ReplicaFiles::new(&dir);
    let late = t0() + Duration::days(30);
    assert!(matches!(
        Replica::open(files.clone(), &Passphrase::from(PASS), late),
        Err(ReplicaError::LeaseExpired { .. })
    ));
    let checkin = Replica::open_for_checkin(files.clone(), &Passphrase::from(PASS), late).unwrap();
    assert_eq!(checkin.device().unwrap().unwrap().device_id, "dev-1");
    checkin
        .set_refresh_token(&SecretString::from("renewed"))
        .unwrap();
    let r = checkin
        .renew_lease(late + Duration::days(14), late)
        .unwrap();
    assert_eq!(
        r.device().unwrap().unwrap().refresh_token.unwrap().expose(),
        "renewed"
    );
    drop(r);
    done(&dir);
}

#[test]
fn a_page_is_committed_with_its_checkpoint() {
    let dir = test_dir("page");
    let mut r = create(&dir);
    r.put_resource(&obs("gone", "p9", "purged"), "p9", Some("1"), t0())
        .unwrap();
    r.put_resource(&obs("old", "p1", "removed"), "p1", Some("1"), t0())
        .unwrap();
    r.enqueue_edit(
        &edit("e9", "gone", "p9", Some("1"), obs("gone", "p9", "mine")),
        t0(),
    )
    .unwrap();
    let page = PullPageWrite {
        purges: vec!["p9".into()],
        removals: vec![("Observation".into(), "old".into())],
        upserts: vec![
            pulled(obs("o1", "p1", "a"), 3, Some("p1")),
            pulled(
                json!({"resourceType": "Practitioner", "id": "pr1"}),
                1,
                None,
            ),
        ],
        checkpoint: "42".into(),
        complete: false,
    };
    let applied = r.apply_pull_page(&page, t0()).unwrap();
    assert_eq!(applied.purged_resources, 1);
    assert_eq!(applied.removed, 1);
    assert_eq!(applied.upserted, 2);
    assert_eq!(applied.kept_outbox_edits, vec!["e9".to_owned()]);
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("42"));
    assert!(r.get_resource("Observation", "gone").unwrap().is_none());
    assert!(r.get_resource("Observation", "old").unwrap().is_none());
    let o1 = r.get_resource("Observation", "o1").unwrap().unwrap();
    assert_eq!(o1.base_version.as_deref(), Some("3"));
    assert_eq!(o1.patient_id, "p1");
    let pr = r.get_resource("Practitioner", "pr1").unwrap().unwrap();
    assert_eq!(pr.patient_id, "", "shared data belongs to no patient");
    assert_eq!(r.pending_edits().unwrap().len(), 1, "outbox kept");
    // Not complete yet: no freshness.
    assert!(r.patient_freshness().unwrap().is_empty());
    assert_eq!(r.patients().unwrap(), vec!["p1".to_owned()]);
    assert_eq!(r.resource_count().unwrap(), 2);

    // The last page of the pull (even an empty one) makes everyone fresh.
    let t1 = t0() + Duration::minutes(5);
    let last = PullPageWrite {
        checkpoint: "43".into(),
        complete: true,
        ..Default::default()
    };
    r.apply_pull_page(&last, t1).unwrap();
    let fresh = r.patient_freshness().unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].patient_id, "p1");
    assert_eq!(fresh[0].synced_at, t1);
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("43"));
    drop(r);
    done(&dir);
}

#[test]
fn a_failure_mid_page_commits_nothing_of_the_page_nor_its_checkpoint() {
    let dir = test_dir("atomic");
    let mut r = create(&dir);
    let first = PullPageWrite {
        upserts: vec![pulled(obs("o1", "p1", "first"), 1, Some("p1"))],
        checkpoint: "10".into(),
        complete: true,
        ..Default::default()
    };
    r.apply_pull_page(&first, t0()).unwrap();
    // A storage failure on the third write of the next page (as a full disk
    // or a crash would cause), after a purge and two upserts went in.
    r.raw_connection()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON resource WHEN NEW.resource_id = 'o3'
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let second = PullPageWrite {
        purges: vec!["p1".into()],
        upserts: vec![
            pulled(obs("o2", "p2", "second"), 1, Some("p2")),
            pulled(obs("o1", "p1", "changed"), 2, Some("p1")),
            pulled(obs("o3", "p2", "third"), 1, Some("p2")),
        ],
        checkpoint: "20".into(),
        complete: true,
        ..Default::default()
    };
    let t1 = t0() + Duration::minutes(1);
    assert!(r.apply_pull_page(&second, t1).is_err());
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("10"));
    assert!(r.get_resource("Observation", "o2").unwrap().is_none());
    let o1 = r.get_resource("Observation", "o1").unwrap().unwrap();
    assert_eq!(o1.content["note"][0]["text"], "first", "purge rolled back");
    assert_eq!(r.patient_synced_at("p1").unwrap(), Some(t0()));
    assert_eq!(count(&r, "resource"), 1);

    // A malformed upsert is refused the same way.
    let bad = PullPageWrite {
        upserts: vec![
            pulled(obs("o4", "p1", "ok"), 1, Some("p1")),
            pulled(json!({"resourceType": "Observation"}), 1, Some("p1")),
        ],
        checkpoint: "30".into(),
        ..Default::default()
    };
    assert!(matches!(
        r.apply_pull_page(&bad, t1),
        Err(ReplicaError::InvalidInput(_))
    ));
    assert!(r.get_resource("Observation", "o4").unwrap().is_none());
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("10"));

    // Once the failure is gone, the same page applies.
    r.raw_connection()
        .execute_batch("DROP TRIGGER boom;")
        .unwrap();
    r.apply_pull_page(&second, t1).unwrap();
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("20"));
    assert_eq!(count(&r, "resource"), 3);
    drop(r);
    done(&dir);
}

#[test]
fn completed_edits_update_the_synced_copy_only_forwards() {
    let dir = test_dir("complete");
    let mut r = create(&dir);
    r.put_resource(&obs("o1", "p1", "v3"), "p1", Some("3"), t0())
        .unwrap();
    r.enqueue_edit(
        &edit("e1", "o1", "p1", Some("3"), obs("o1", "p1", "mine")),
        t0(),
    )
    .unwrap();
    r.enqueue_edit(
        &edit("e2", "o1", "p1", Some("3"), obs("o1", "p1", "older")),
        t0(),
    )
    .unwrap();
    r.enqueue_edit(&edit("e3", "o1", "p1", Some("5"), Value::Null), t0())
        .unwrap();
    let put = |text: &str, version: i64| SyncedUpdate::Put {
        resource: obs("o1", "p1", text),
        version,
    };
    assert!(r.complete_edit_synced("e1", &put("mine", 5), t0()).unwrap());
    let o1 = r.get_resource("Observation", "o1").unwrap().unwrap();
    assert_eq!(o1.base_version.as_deref(), Some("5"));
    assert_eq!(o1.content["note"][0]["text"], "mine");
    // An answer for an older version does not go back.
    assert!(r
        .complete_edit_synced("e2", &put("older", 4), t0())
        .unwrap());
    let o1 = r.get_resource("Observation", "o1").unwrap().unwrap();
    assert_eq!(o1.content["note"][0]["text"], "mine");
    // The wrong resource is refused, and nothing changes.
    let wrong = SyncedUpdate::Put {
        resource: obs("other", "p1", "x"),
        version: 9,
    };
    assert!(r.complete_edit_synced("e3", &wrong, t0()).is_err());
    assert_eq!(r.pending_edits().unwrap().len(), 1);
    assert!(r
        .complete_edit_synced("e3", &SyncedUpdate::Delete, t0())
        .unwrap());
    assert!(r.get_resource("Observation", "o1").unwrap().is_none());
    assert!(r.pending_edits().unwrap().is_empty());
    assert!(!r
        .complete_edit_synced("e3", &SyncedUpdate::Keep, t0())
        .unwrap());
    drop(r);
    done(&dir);
}

#[test]
fn rejected_edits_stay_with_their_outcome() {
    let dir = test_dir("reject");
    let mut r = create(&dir);
    r.enqueue_edit(&edit("e1", "o1", "p1", None, obs("o1", "p1", "x")), t0())
        .unwrap();
    let outcome = json!({"resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad code"}]});
    assert!(r.reject_edit("e1", &outcome).unwrap());
    assert!(!r.reject_edit("nope", &outcome).unwrap());
    let edits = r.edits_for("Observation", "o1").unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].state, EditState::Rejected);
    assert_eq!(edits[0].outcome.as_ref(), Some(&outcome));
    assert!(r.edits_for("Observation", "o2").unwrap().is_empty());
    drop(r);
    done(&dir);
}

#[test]
fn conflicts_move_out_of_the_outbox_and_resolve_atomically() {
    let dir = test_dir("conflict");
    let mut r = create(&dir);
    r.enqueue_edit(
        &edit("e1", "o1", "p1", Some("3"), obs("o1", "p1", "mine")),
        t0(),
    )
    .unwrap();
    let conflict = NewConflict {
        resource_type: "Observation".into(),
        resource_id: "o1".into(),
        patient_id: "p1".into(),
        base: Some(obs("o1", "p1", "base")),
        ours: obs("o1", "p1", "mine"),
        theirs: Value::Null,
    };
    let context = ConflictContext {
        client_edit_id: "e1".into(),
        current_version: Some("4".into()),
        details: json!([{"path": "note"}]),
    };
    let id = r.conflict_edit(&conflict, &context, t0()).unwrap().unwrap();
    assert!(r.pending_edits().unwrap().is_empty());
    assert_eq!(r.conflict_edit(&conflict, &context, t0()).unwrap(), None);
    let got = r.conflict(id).unwrap().unwrap();
    assert_eq!(got.conflict, conflict);
    assert_eq!(got.context.as_ref(), Some(&context));
    assert_eq!(r.open_conflicts().unwrap(), vec![got]);

    // A resolution whose edit reuses an id for something else fails whole.
    r.enqueue_edit(&edit("used", "o9", "p1", None, obs("o9", "p1", "x")), t0())
        .unwrap();
    let resolution = edit("r1", "o1", "p1", Some("4"), obs("o1", "p1", "mine"));
    let clash = edit("used", "o1", "p1", None, obs("o1", "p1", "other"));
    assert!(matches!(
        r.resolve_conflict_with(id, &[resolution.clone(), clash], t0()),
        Err(ReplicaError::DuplicateEdit(_))
    ));
    assert!(r.conflict(id).unwrap().is_some());
    assert_eq!(r.pending_edits().unwrap().len(), 1);

    assert!(r.resolve_conflict_with(id, &[resolution], t0()).unwrap());
    assert!(r.conflict(id).unwrap().is_none());
    assert_eq!(r.pending_edits().unwrap().len(), 2);
    assert!(!r.resolve_conflict_with(id, &[], t0()).unwrap());
    drop(r);
    done(&dir);
}

#[test]
fn audit_rows_read_back_exactly_as_hashed() {
    let dir = test_dir("audit");
    let mut r = create(&dir);
    assert_eq!(r.audit_head().unwrap(), None);
    for i in 0..5 {
        let event: Value =
            serde_json::from_str(&format!(r#"{{"action":"view","n":{i},"dose":1.50}}"#)).unwrap();
        r.append_audit(&event, t0()).unwrap();
    }
    let (seq, head) = r.audit_head().unwrap().unwrap();
    assert_eq!(seq, 5);
    let all = r.audit_after(0, 100).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].prev_hash, AUDIT_GENESIS);
    assert_eq!(all[4].hash, head);
    assert!(
        all[0].event.contains("1.50"),
        "decimal text kept: {}",
        all[0].event
    );
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let some = r.audit_after(2, 2).unwrap();
    assert_eq!(some.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(r.audit_hash_at(3).unwrap(), Some(all[2].hash.clone()));
    assert_eq!(r.audit_hash_at(6).unwrap(), None);
    drop(r);
    done(&dir);
}

#[test]
fn the_summary_and_the_caseload_read_what_the_screens_show() {
    let dir = test_dir("summary");
    let mut r = create(&dir);
    let put =
        |r: &mut Replica, v: Value, patient: &str| r.put_resource(&v, patient, None, t0()).unwrap();
    put(&mut r, json!({"resourceType": "Patient", "id": "p1"}), "p1");
    put(&mut r, json!({"resourceType": "Patient", "id": "p2"}), "p2");
    put(
        &mut r,
        json!({"resourceType": "Flag", "id": "f1", "subject": {"reference": "Patient/p1"}}),
        "p1",
    );
    put(
        &mut r,
        json!({"resourceType": "Flag", "id": "f2", "subject": {"reference": "Patient/p1"}}),
        "p1",
    );
    put(
        &mut r,
        json!({"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"}}),
        "p1",
    );
    for (id, day) in [("o1", "03"), ("o2", "01"), ("o3", "05"), ("o4", "02")] {
        put(
            &mut r,
            json!({"resourceType": "Observation", "id": id, "effectiveDateTime": format!("2026-11-{day}T09:00:00Z"),
                "subject": {"reference": "Patient/p1"}}),
            "p1",
        );
    }
    let summary: Vec<String> = r
        .patient_summary("p1", 2)
        .unwrap()
        .into_iter()
        .map(|(t, id, _)| format!("{t}/{id}"))
        .collect();
    // Everything but encounters and older observations; the latest two observations.
    assert_eq!(
        summary,
        [
            "Flag/f1",
            "Flag/f2",
            "Patient/p1",
            "Observation/o3",
            "Observation/o1"
        ]
    );
    let caseload = r.caseload().unwrap();
    let alerts: Vec<(String, u64)> = caseload
        .iter()
        .map(|c| (c.patient_id.clone(), c.alerts))
        .collect();
    assert_eq!(alerts, [("p1".to_string(), 2), ("p2".to_string(), 0)]);
    drop(r);
    done(&dir);
}

#[test]
fn the_directory_is_replaced_wholesale_and_survives_reopening() {
    let dir = test_dir("directory");
    let mut r = create(&dir);
    let org =
        |id: &str, name: &str| json!({"resourceType": "Organization", "id": id, "name": name});
    r.replace_directory(&[
        org("o1", "Hexham General Hospital"),
        org("o2", "Tyne Valley GP"),
    ])
    .unwrap();
    r.replace_directory(&[
        org("o2", "Tyne Valley Medical Practice"),
        json!({"resourceType": "PractitionerRole", "id": "r1", "organization": {"reference": "Organization/o2"}}),
    ])
    .unwrap();
    assert!(r
        .replace_directory(&[json!({"resourceType": "Organization"})])
        .is_err());
    r.lock().unwrap();
    let r = Replica::open(ReplicaFiles::new(&dir), &Passphrase::from(PASS), t0()).unwrap();
    let orgs = r.directory("Organization").unwrap();
    assert_eq!(
        orgs,
        [org("o2", "Tyne Valley Medical Practice")],
        "o1 went; a refused refresh changed nothing"
    );
    assert_eq!(r.directory("PractitionerRole").unwrap().len(), 1);
    drop(r);
    done(&dir);
}
