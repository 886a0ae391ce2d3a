//! Integration tests of the encrypted replica.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use careshare_replica::{
    wipe, KeyParams, NewConflict, OutboxEdit, Passphrase, RecoveryBinding, RecoveryKey, Replica,
    ReplicaError, ReplicaFiles, SecretString, MAX_FAILED_ATTEMPTS,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

const PASS: &str = "correct horse battery staple";
const NAME: &str = "Wilhelmina Fotheringay";
const NHS: &str = "9434765919";
const NOTE: &str = "Venous leg ulcer redressed, moderate exudate";

/// A fresh, empty directory for one test.
fn test_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "careshare-replica-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Wipes the replica and removes the test directory.
fn done(dir: &Path) {
    wipe(dir).unwrap();
    std::fs::remove_dir(dir).unwrap();
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn lease() -> DateTime<Utc> {
    t0() + Duration::days(14)
}

fn params() -> KeyParams {
    KeyParams {
        iterations: NonZeroU32::new(1_000).unwrap(),
    }
}

fn pass(s: &str) -> Passphrase {
    Passphrase::from(s)
}

fn create(dir: &Path) -> Replica {
    Replica::create(ReplicaFiles::new(dir), &pass(PASS), params(), lease(), t0()).unwrap()
}

fn patient(id: &str, name: &str) -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "meta": {"versionId": "3"},
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}],
        "name": [{"text": name}]
    })
}

fn note(id: &str, patient_id: &str) -> serde_json::Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "subject": {"reference": format!("Patient/{patient_id}")},
        "note": [{"text": NOTE}]
    })
}

fn fill(r: &mut Replica) {
    r.put_resource(&patient("p1", NAME), "p1", Some("3"), t0())
        .unwrap();
    r.put_resource(&note("o1", "p1"), "p1", None, t0()).unwrap();
    r.enqueue_edit(
        &OutboxEdit {
            client_edit_id: "e-1".into(),
            resource_type: "Observation".into(),
            resource_id: "o2".into(),
            patient_id: "p1".into(),
            base_version: None,
            edit: note("o2", "p1"),
        },
        t0(),
    )
    .unwrap();
    r.append_audit(&json!({"action": "read", "patient": "p1"}), t0())
        .unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no replica file holds any of the secrets in clear.
fn assert_no_plaintext(files: &ReplicaFiles) {
    let mut seen_db = false;
    for path in files.all_files() {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if path == files.database() {
            seen_db = true;
            assert!(!bytes.starts_with(b"SQLite format 3"), "plaintext header");
        }
        for needle in [NAME, NHS, NOTE, PASS, "Patient", "resourceType"] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle:?} found in {}",
                path.display()
            );
        }
    }
    assert!(seen_db);
}

#[test]
fn data_is_encrypted_at_rest() {
    let dir = test_dir("at-rest");
    let files = ReplicaFiles::new(&dir);
    let mut r = create(&dir);
    fill(&mut r);
    // While open (write-ahead log present) and after closing.
    let wal = dir.join("replica.db-wal");
    assert!(std::fs::metadata(&wal)
        .map(|m| m.len() > 0)
        .unwrap_or(false));
    assert_no_plaintext(&files);
    r.lock().unwrap();
    assert_no_plaintext(&files);

    let r = Replica::open(files.clone(), &pass(PASS), t0()).unwrap();
    let got = r.get_resource("Patient", "p1").unwrap().unwrap();
    assert_eq!(got.content, patient("p1", NAME));
    assert_eq!(got.version_id.as_deref(), Some("3"));
    assert_eq!(got.base_version.as_deref(), Some("3"));
    assert_eq!(got.patient_id, "p1");
    let cipher: String = r
        .raw_connection()
        .query_row("PRAGMA cipher_version", [], |row| row.get(0))
        .unwrap();
    assert!(cipher.starts_with("4."), "{cipher}");
    drop(r);
    done(&dir);
}

#[test]
fn secrets_do_not_print() {
    let p = pass(PASS);
    assert!(!format!("{p:?}").contains(PASS));
    let dir = test_dir("debug");
    let r = create(&dir);
    let shown = format!("{r:?}");
    assert!(!shown.contains(PASS));
    drop(r);
    let err = Replica::open(ReplicaFiles::new(&dir), &pass("not it"), t0()).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("not it"));
    done(&dir);
}

#[test]
fn wrong_passphrase_counts_down_then_locks_until_reauthorised() {
    let dir = test_dir("lock");
    create(&dir).lock().unwrap();
    let files = ReplicaFiles::new(&dir);
    for left in (1..MAX_FAILED_ATTEMPTS).rev() {
        match Replica::open(files.clone(), &pass("guess"), t0()) {
            Err(ReplicaError::WrongPassphrase { attempts_left }) => assert_eq!(attempts_left, left),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        Replica::open(files.clone(), &pass("guess"), t0()),
        Err(ReplicaError::Locked)
    ));
    // Survives a fresh start, and refuses the right passphrase.
    let reopened = ReplicaFiles::new(&dir);
    assert!(reopened.status().unwrap().locked);
    assert!(matches!(
        Replica::open(reopened.clone(), &pass(PASS), t0()),
        Err(ReplicaError::Locked)
    ));
    assert!(matches!(
        Replica::open_for_checkin(reopened.clone(), &pass(PASS), t0()),
        Err(ReplicaError::Locked)
    ));
    // Made without a recovery key: only a new enrolment helps.
    let key = RecoveryKey::generate().unwrap();
    assert!(matches!(
        Replica::recover(reopened.clone(), &key, &pass("a new passphrase")),
        Err(ReplicaError::NotRecoverable)
    ));
    assert!(reopened.status().unwrap().locked);
    done(&dir);
}

fn binding() -> RecoveryBinding {
    RecoveryBinding {
        device_id: "dev-0123".into(),
        hub_url: "https://hub.example".into(),
    }
}

fn create_recoverable(dir: &Path, key: &RecoveryKey) -> Replica {
    Replica::create_recoverable(
        ReplicaFiles::new(dir),
        &pass(PASS),
        params(),
        &binding(),
        key,
        lease(),
        t0(),
    )
    .unwrap()
}

fn lock_out(files: &ReplicaFiles) {
    for _ in 0..MAX_FAILED_ATTEMPTS {
        let _ = Replica::open(files.clone(), &pass("guess"), t0());
    }
    assert!(files.status().unwrap().locked);
}

#[test]
fn the_hubs_recovery_key_unlocks_a_locked_replica_with_a_new_passphrase() {
    let dir = test_dir("recover");
    let key = RecoveryKey::generate().unwrap();
    let mut r = create_recoverable(&dir, &key);
    r.put_resource(&patient("p1", "Ada Lovelace"), "p1", Some("3"), t0())
        .unwrap();
    r.lock().unwrap();
    let files = ReplicaFiles::new(&dir);
    assert_eq!(files.recovery().unwrap(), Some(binding()));
    assert!(!files.recovery_key_pending().unwrap());
    lock_out(&files);

    // A key that is not the hub's opens nothing and changes nothing.
    let before = std::fs::read(files.key_file()).unwrap();
    let wrong = RecoveryKey::generate().unwrap();
    assert!(matches!(
        Replica::recover(files.clone(), &wrong, &pass("a new passphrase")),
        Err(ReplicaError::RecoveryKeyRefused)
    ));
    assert_eq!(std::fs::read(files.key_file()).unwrap(), before);

    // The right one: a new passphrase, the lock gone, even past the lease.
    let (checkin, next) = Replica::recover(files.clone(), &key, &pass("a new passphrase")).unwrap();
    let status = files.status().unwrap();
    assert!(!status.locked);
    assert_eq!(status.failed_attempts, 0);
    assert!(files.recovery_key_pending().unwrap());
    let r = checkin
        .renew_lease(lease() + Duration::days(30), t0())
        .unwrap();
    assert!(r.get_resource("Patient", "p1").unwrap().is_some());
    r.lock().unwrap();
    assert!(matches!(
        Replica::open(files.clone(), &pass(PASS), t0()),
        Err(ReplicaError::WrongPassphrase { .. })
    ));
    Replica::open(files.clone(), &pass("a new passphrase"), t0())
        .unwrap()
        .lock()
        .unwrap();
    assert!(!format!("{next:?}").contains(next.to_base64().expose()));

    // The hub stored the new key but its confirmation was lost: the pending
    // wrap still answers it. Once confirmed, the old key no longer works.
    lock_out(&files);
    let (checkin, newest) =
        Replica::recover(files.clone(), &next, &pass("third passphrase")).unwrap();
    drop(checkin);
    files.confirm_recovery_key().unwrap();
    assert!(!files.recovery_key_pending().unwrap());
    lock_out(&files);
    assert!(matches!(
        Replica::recover(files.clone(), &key, &pass("x")),
        Err(ReplicaError::RecoveryKeyRefused)
    ));
    assert!(matches!(
        Replica::recover(files.clone(), &next, &pass("x")),
        Err(ReplicaError::RecoveryKeyRefused)
    ));
    let (checkin, _) =
        Replica::recover(files.clone(), &newest, &pass("fourth passphrase")).unwrap();
    drop(checkin);
    Replica::open(files, &pass("fourth passphrase"), t0())
        .unwrap()
        .lock()
        .unwrap();

    // The key file holds no key in clear: not the data key's recovery key either.
    let text = std::fs::read_to_string(ReplicaFiles::new(&dir).key_file()).unwrap();
    for k in [&key, &next, &newest] {
        assert!(!text.contains(k.to_base64().expose()));
    }
    done(&dir);
}

#[test]
fn recovery_keys_cross_as_base64url_and_refuse_bad_text() {
    let key = RecoveryKey::generate().unwrap();
    let text = key.to_base64();
    assert_eq!(text.expose().len(), 43);
    let back = RecoveryKey::from_base64(&text).unwrap();
    assert_eq!(back.to_base64().expose(), text.expose());
    for bad in ["", "not base64!", "AAAA"] {
        assert!(matches!(
            RecoveryKey::from_base64(&SecretString::from(bad)),
            Err(ReplicaError::InvalidInput(_))
        ));
    }
}

#[test]
fn right_passphrase_resets_the_counter() {
    let dir = test_dir("reset");
    create(&dir).lock().unwrap();
    let files = ReplicaFiles::new(&dir);
    for _ in 0..2 {
        assert!(Replica::open(files.clone(), &pass("guess"), t0()).is_err());
    }
    assert_eq!(files.status().unwrap().failed_attempts, 2);
    Replica::open(files.clone(), &pass(PASS), t0()).unwrap();
    assert_eq!(files.status().unwrap().failed_attempts, 0);
    match Replica::open(files.clone(), &pass("guess"), t0()) {
        Err(ReplicaError::WrongPassphrase { attempts_left }) => {
            assert_eq!(attempts_left, MAX_FAILED_ATTEMPTS - 1)
        }
        other => panic!("unexpected {other:?}"),
    }
    done(&dir);
}

#[test]
fn change_passphrase_rewraps_without_losing_data() {
    let dir = test_dir("rewrap");
    let files = ReplicaFiles::new(&dir);
    let mut r = create(&dir);
    fill(&mut r);
    assert!(matches!(
        r.change_passphrase(&pass("not the old one"), &pass("new one")),
        Err(ReplicaError::WrongPassphrase { .. })
    ));
    r.change_passphrase(&pass(PASS), &pass("a new passphrase"))
        .unwrap();
    r.lock().unwrap();
    assert!(matches!(
        Replica::open(files.clone(), &pass(PASS), t0()),
        Err(ReplicaError::WrongPassphrase { .. })
    ));
    let r = Replica::open(files.clone(), &pass("a new passphrase"), t0()).unwrap();
    assert_eq!(
        r.get_resource("Observation", "o1")
            .unwrap()
            .unwrap()
            .content,
        note("o1", "p1")
    );
    assert_eq!(r.pending_edits().unwrap().len(), 1);
    assert_eq!(r.verify_audit().unwrap(), 1);
    drop(r);
    done(&dir);
}

#[test]
fn expired_lease_refuses_until_checkin_renews_it() {
    let dir = test_dir("lease");
    let files = ReplicaFiles::new(&dir);
    create(&dir).lock().unwrap();
    // Still valid at the exact expiry instant.
    Replica::open(files.clone(), &pass(PASS), lease()).unwrap();
    let late = lease() + Duration::seconds(1);
    match Replica::open(files.clone(), &pass(PASS), late) {
        Err(ReplicaError::LeaseExpired { since }) => assert_eq!(since, lease()),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        Replica::open_for_checkin(files.clone(), &pass("guess"), late),
        Err(ReplicaError::WrongPassphrase { .. })
    ));
    let session = Replica::open_for_checkin(files.clone(), &pass(PASS), late).unwrap();
    assert!(matches!(
        Replica::open_for_checkin(files.clone(), &pass(PASS), late)
            .unwrap()
            .renew_lease(late, late),
        Err(ReplicaError::InvalidInput(_))
    ));
    let until = late + Duration::days(14);
    session.renew_lease(until, late).unwrap().lock().unwrap();
    assert_eq!(files.status().unwrap().lease_expires_at, until);
    Replica::open(files.clone(), &pass(PASS), late).unwrap();
    done(&dir);
}

#[test]
fn wipe_leaves_no_files() {
    let dir = test_dir("wipe");
    let mut r = create(&dir);
    fill(&mut r);
    r.lock().unwrap();
    wipe(&dir).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert!(matches!(
        Replica::open(ReplicaFiles::new(&dir), &pass(PASS), t0()),
        Err(ReplicaError::NotCreated)
    ));
    // Wiping nothing is fine.
    wipe(&dir).unwrap();
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn create_refuses_existing_and_open_refuses_missing() {
    let dir = test_dir("exists");
    assert!(matches!(
        Replica::open(ReplicaFiles::new(&dir), &pass(PASS), t0()),
        Err(ReplicaError::NotCreated)
    ));
    create(&dir).lock().unwrap();
    assert!(matches!(
        Replica::create(
            ReplicaFiles::new(&dir),
            &pass(PASS),
            params(),
            lease(),
            t0()
        ),
        Err(ReplicaError::AlreadyExists)
    ));
    done(&dir);
}

#[test]
fn database_from_another_replica_is_corrupt() {
    let a = test_dir("swap-a");
    let b = test_dir("swap-b");
    create(&a).lock().unwrap();
    create(&b).lock().unwrap();
    let fa = ReplicaFiles::new(&a);
    std::fs::copy(ReplicaFiles::new(&b).database(), fa.database()).unwrap();
    assert!(matches!(
        Replica::open(fa, &pass(PASS), t0()),
        Err(ReplicaError::Corrupt(_))
    ));
    done(&a);
    done(&b);
}

#[test]
fn audit_chain_detects_altered_and_removed_rows() {
    let dir = test_dir("audit");
    let files = ReplicaFiles::new(&dir);
    let mut r = create(&dir);
    for i in 1..=4 {
        let seq = r
            .append_audit(
                &json!({"action": "read", "n": i}),
                t0() + Duration::minutes(i),
            )
            .unwrap();
        assert_eq!(seq, i);
    }
    assert_eq!(r.verify_audit().unwrap(), 4);
    r.lock().unwrap();

    // Altered event.
    let r = Replica::open(files.clone(), &pass(PASS), t0()).unwrap();
    r.raw_connection()
        .execute(
            "UPDATE audit_log SET event = '{\"action\":\"none\"}' WHERE seq = 2",
            [],
        )
        .unwrap();
    match r.verify_audit() {
        Err(ReplicaError::AuditChainBroken { seq, .. }) => assert_eq!(seq, 2),
        other => panic!("unexpected {other:?}"),
    }
    drop(r);
    wipe(&dir).unwrap();

    // Altered timestamp; removed row.
    let mut r = create(&dir);
    for i in 1..=4 {
        r.append_audit(&json!({"n": i}), t0()).unwrap();
    }
    let raw = r.raw_connection();
    raw.execute(
        "UPDATE audit_log SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 4",
        [],
    )
    .unwrap();
    assert!(matches!(
        r.verify_audit(),
        Err(ReplicaError::AuditChainBroken { seq: 4, .. })
    ));
    let raw = r.raw_connection();
    raw.execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    assert!(matches!(
        r.verify_audit(),
        Err(ReplicaError::AuditChainBroken { seq: 3, .. })
    ));
    drop(r);
    done(&dir);
}

#[test]
fn remove_patient_purges_every_row_but_keeps_outbox() {
    let dir = test_dir("purge");
    let mut r = create(&dir);
    fill(&mut r);
    r.put_resource(&patient("p2", "Other Person"), "p2", None, t0())
        .unwrap();
    r.mark_patient_synced("p1", t0()).unwrap();
    r.mark_patient_synced("p2", t0()).unwrap();
    r.record_conflict(
        &NewConflict {
            resource_type: "Observation".into(),
            resource_id: "o1".into(),
            patient_id: "p1".into(),
            base: None,
            ours: note("o1", "p1"),
            theirs: note("o1", "p1"),
        },
        t0(),
    )
    .unwrap();

    let removed = r.remove_patient("p1").unwrap();
    assert_eq!(removed.resources, 2);
    assert_eq!(removed.conflicts, 1);
    assert!(removed.freshness);
    assert_eq!(removed.kept_outbox_edits, vec!["e-1".to_string()]);

    for table in ["resource", "conflict", "patient_freshness"] {
        let n: i64 = r
            .raw_connection()
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE patient_id = 'p1'"),
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    assert!(r.get_resource("Patient", "p1").unwrap().is_none());
    assert!(r.patient_synced_at("p1").unwrap().is_none());
    assert!(r.open_conflicts().unwrap().is_empty());
    assert_eq!(r.pending_edits().unwrap()[0].edit.client_edit_id, "e-1");
    assert!(r.get_resource("Patient", "p2").unwrap().is_some());
    assert_eq!(r.patient_synced_at("p2").unwrap(), Some(t0()));
    drop(r);
    done(&dir);
}

#[test]
fn outbox_is_idempotent_and_rejects_reused_ids() {
    let dir = test_dir("outbox");
    let mut r = create(&dir);
    let edit = OutboxEdit {
        client_edit_id: "e-9".into(),
        resource_type: "Observation".into(),
        resource_id: "o9".into(),
        patient_id: "p1".into(),
        base_version: Some("2".into()),
        edit: json!({"status": "final", "value": 1.50}),
    };
    assert!(r.enqueue_edit(&edit, t0()).unwrap());
    assert!(!r.enqueue_edit(&edit, t0()).unwrap());
    let mut other = edit.clone();
    other.edit = json!({"status": "amended"});
    assert!(matches!(
        r.enqueue_edit(&other, t0()),
        Err(ReplicaError::DuplicateEdit(_))
    ));
    let pending = r.pending_edits().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].edit, edit);
    assert_eq!(pending[0].created_at, t0());
    r.set_pull_checkpoint("cursor-17", t0()).unwrap();
    assert_eq!(r.pull_checkpoint().unwrap().as_deref(), Some("cursor-17"));
    assert!(r.complete_edit("e-9").unwrap());
    assert!(r.pending_edits().unwrap().is_empty());
    assert!(matches!(
        r.put_resource(&json!({"id": "x"}), "p1", None, t0()),
        Err(ReplicaError::InvalidInput(_))
    ));
    drop(r);
    done(&dir);
}
