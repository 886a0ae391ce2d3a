//! End to end: a real hub (in this process, on a demo region, on loopback) and the real
//! `careshare` binary. A sync killed with SIGKILL at random moments, during a first pull
//! and during a push, ends exactly where an uninterrupted run ends; a patient who leaves the
//! caseload and a revoked device leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use careshare_hub::api::{router, AppState};
use careshare_hub::auth::{Auth, AuthConfig, Secret};
use careshare_hub::store::Store;
use careshare_replica::{Passphrase, Replica, ReplicaFiles};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const HUB_PASS: &str = "careshare-demo-2026";
const REPLICA_PASS: &str = "a long replica passphrase";
const NURSE: &str = "nurse.amy.khan";

/// A hub serving a demo region from a fresh SQLite file.
struct TestHub {
    url: String,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    async fn start(patients: usize) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
        let store = Arc::new(Store::connect(&db).await.unwrap());
        let today = chrono::Utc::now().date_naive();
        let region =
            careshare_demo::Region::new(careshare_demo::RegionConfig::new(patients, 11, today))
                .unwrap();
        let summary = careshare_hub::import::load_demo_region(&store, &region, patients)
            .await
            .unwrap();
        assert!(summary.rejected.is_empty());
        let config = AuthConfig {
            pbkdf2_iterations: 1000,
            ..AuthConfig::default()
        };
        let auth = Auth {
            store: &store,
            config: &config,
        };
        for m in region.staff() {
            auth.put_account(&m.username, &m.practitioner_role_id, &Secret::new(HUB_PASS))
                .await
                .unwrap();
        }
        let app = router(AppState {
            store: store.clone(),
            auth: Arc::new(config),
            base_url: None,
            sync_lock: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestHub {
            url,
            store,
            _dir: dir,
        }
    }
}

impl TestHub {
    /// A region administrator reports the device lost: its next contact wipes it.
    async fn revoke_device(&self, device_id: &str) {
        let config = AuthConfig::default();
        Auth {
            store: &self.store,
            config: &config,
        }
        .revoke_device(device_id, chrono::Utc::now().timestamp_micros())
        .await
        .unwrap();
    }
}

fn careshare(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_careshare"));
    c.arg("--dir")
        .arg(dir)
        .arg("--quiet")
        .env("CARESHARE_PASSPHRASE", REPLICA_PASS)
        .env("CARESHARE_HUB_PASSPHRASE", HUB_PASS)
        .env("CARESHARE_REPLICA_ITERATIONS", "1000")
        .stdin(Stdio::null());
    c
}

/// Runs the CLI to completion off the async runtime; (exit code, stdout + stderr).
async fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    run_env(dir, args, &[]).await
}

async fn enrol(hub: &TestHub, dir: &Path) {
    let (code, out) = run(dir, &["enrol", "--hub", &hub.url, "--user", NURSE]).await;
    assert_eq!(code, 0, "{out}");
}

/// A laptop enrolled as the nurse and synced once: (its temporary root, its replica folder).
async fn synced_laptop(hub: &TestHub) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("laptop");
    enrol(hub, &dir).await;
    let (code, out) = run(&dir, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    (root, dir)
}

/// The replica folder holds no file at all (a wiped laptop).
fn assert_nothing_left(dir: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left: {left:?}");
}

/// Starts `careshare sync` and kills it with SIGKILL after `after`; true if it had already
/// finished (successfully) by then.
async fn sync_killed_after(dir: &Path, page_size: &str, after: Duration) -> bool {
    let errors = tempfile::NamedTempFile::new().unwrap();
    let mut child = careshare(dir)
        .args(["sync", "--page-size", page_size])
        .stdout(Stdio::null())
        .stderr(Stdio::from(errors.reopen().unwrap()))
        .spawn()
        .unwrap();
    tokio::time::sleep(after).await;
    match child.try_wait().unwrap() {
        Some(status) => {
            assert!(
                status.success(),
                "sync failed on its own: {status}: {}",
                std::fs::read_to_string(errors.path()).unwrap_or_default()
            );
            true
        }
        None => {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            false
        }
    }
}

/// Everything a replica holds, as (type, id, version, content), in order.
fn contents(dir: &Path) -> Vec<(String, String, String, String)> {
    let replica = Replica::open(
        ReplicaFiles::new(dir),
        &Passphrase::new(REPLICA_PASS.to_string()),
        chrono::Utc::now(),
    )
    .unwrap();
    let conn = replica.raw_connection();
    let mut stmt = conn
        .prepare(
            "SELECT resource_type, resource_id, COALESCE(version_id, ''), content \
             FROM resource ORDER BY resource_type, resource_id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

fn pending(dir: &Path) -> i64 {
    let out = careshare(dir).args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["pending_edits"].as_i64().unwrap_or_else(|| panic!("{v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_anywhere_ends_as_an_uninterrupted_one() {
    let hub = TestHub::start(40).await;
    let root = tempfile::tempdir().unwrap();
    let steady = root.path().join("steady");
    let killed = root.path().join("killed");
    enrol(&hub, &steady).await;
    enrol(&hub, &killed).await;

    // The reference: one uninterrupted first sync, timed.
    let started = std::time::Instant::now();
    let (code, out) = run(&steady, &["sync", "--page-size", "25"]).await;
    assert_eq!(code, 0, "{out}");
    let whole = started.elapsed().as_millis() as u64;
    let reference = contents(&steady);
    assert!(
        reference.len() > 500,
        "a real caseload: {}",
        reference.len()
    );

    // The same first sync, killed at random moments (within the time a whole one takes)
    // until a run gets to the end.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut kills = 0;
    loop {
        let after = Duration::from_millis(rng.gen_range(whole / 20..whole * 9 / 10));
        if sync_killed_after(&killed, "25", after).await {
            break;
        }
        kills += 1;
        assert!(kills < 200, "the first sync never finished between kills");
    }
    assert!(kills > 0, "the sync was killed at least once");
    eprintln!("first sync: {whole} ms uninterrupted; killed {kills} times");
    let (code, out) = run(&killed, &["sync", "--page-size", "25"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(contents(&killed), reference, "killed {kills} times");

    // Offline edits: new observations for a patient on the caseload, pushed by a sync that
    // is killed at random moments; each applies exactly once.
    let patient = reference
        .iter()
        .find(|(t, ..)| t == "Patient")
        .map(|(_, id, ..)| id.clone())
        .unwrap();
    let files = root.path().join("edits");
    std::fs::create_dir_all(&files).unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = format!("offline-obs-{i}");
        let obs = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "valueQuantity": {"value": 60 + i, "unit": "/min"},
            "subject": {"reference": format!("Patient/{patient}")}});
        let f = files.join(format!("{id}.json"));
        std::fs::write(&f, obs.to_string()).unwrap();
        let (code, out) = run(&killed, &["edit", "--file", f.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{out}");
        ids.push(id);
    }
    assert_eq!(pending(&killed), 30);
    let mut push_kills = 0;
    loop {
        let after = Duration::from_millis(rng.gen_range(whole / 20..whole / 2));
        if sync_killed_after(&killed, "25", after).await {
            break;
        }
        push_kills += 1;
        assert!(push_kills < 200, "the push never finished between kills");
    }
    let (code, out) = run(&killed, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(pending(&killed), 0, "every edit was sent");
    // On the hub: each edit made exactly one version.
    let mut conn = hub.store.reader().await.unwrap();
    for id in &ids {
        let versions = careshare_hub::store::read_version(
            &mut careshare_hub::store::Conn::Any(&mut conn),
            "Observation",
            id,
            2,
        )
        .await
        .unwrap();
        assert!(versions.is_none(), "{id} was applied more than once");
        let first = careshare_hub::store::read_version(
            &mut careshare_hub::store::Conn::Any(&mut conn),
            "Observation",
            id,
            1,
        )
        .await
        .unwrap();
        assert!(first.is_some(), "{id} reached the hub");
    }
    drop(conn);
    // And both devices hold the same, hub-made versions.
    let (code, out) = run(&steady, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    let steady_now = contents(&steady);
    assert_eq!(
        contents(&killed),
        steady_now,
        "killed {push_kills} times during the push"
    );
    assert!(steady_now.iter().any(|(_, id, ..)| id == "offline-obs-29"));
}

/// True if any of the replica's files contains `needle` in clear.
fn in_files(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                std::fs::read(e.path())
                    .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_caseload_and_revocation_leave_no_trace() {
    let hub = TestHub::start(40).await;
    let (_root, dir) = synced_laptop(&hub).await;
    let held = contents(&dir);
    let patient = held
        .iter()
        .find(|(t, ..)| t == "Patient")
        .map(|(_, id, _, c)| (id.clone(), serde_json::from_str::<Value>(c).unwrap()))
        .unwrap();
    let family = patient.1["name"][0]["family"].as_str().unwrap().to_string();
    assert!(
        !in_files(&dir, &family),
        "names never in clear, even while held"
    );

    // The patient's episode with her team ends on the hub.
    let episode = held
        .iter()
        .filter(|(t, ..)| t == "EpisodeOfCare")
        .map(|(_, _, _, c)| serde_json::from_str::<Value>(c).unwrap())
        .find(|e| e["patient"]["reference"] == format!("Patient/{}", patient.0))
        .unwrap();
    let mut finished = episode.clone();
    finished["status"] = json!("finished");
    careshare_hub::engine::update(
        &hub.store,
        &mut careshare_hub::engine::Trusted,
        careshare_fhir_target(&finished),
        finished.clone(),
        None,
    )
    .await
    .unwrap();
    let (code, out) = run(&dir, &["sync"]).await;
    assert_eq!(code, 0, "{out}");
    let after = contents(&dir);
    let referring = |(_, _, _, c): &(String, String, String, String)| {
        c.contains(&format!("Patient/{}", patient.0)) || c.contains(&family)
    };
    assert!(
        !after.iter().any(|r| r.1 == patient.0 || referring(r)),
        "purged"
    );
    assert!(after.len() < held.len());
    let (code, status) = run(&dir, &["status", "--json"]).await;
    assert_eq!(code, 0, "{status}");
    assert!(
        !status.contains(&patient.0),
        "no freshness line left for them: {status}"
    );

    // The laptop is reported lost: revoked, its next contact wipes it.
    let device: Value = {
        let (code, out) = run(&dir, &["status", "--json"]).await;
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).unwrap()
    };
    let device_id = device["device"]["device_id"]
        .as_str()
        .unwrap_or_else(|| panic!("status names the device: {device}"))
        .to_string();
    hub.revoke_device(&device_id).await;
    let (code, out) = run(&dir, &["sync"]).await;
    assert_eq!(code, 4, "revoked: {out}");
    assert_nothing_left(&dir);
}

fn careshare_fhir_target(resource: &Value) -> careshare_fhir::bundle::Target {
    careshare_fhir::bundle::Target::Instance {
        resource_type: resource["resourceType"].as_str().unwrap().to_string(),
        id: resource["id"].as_str().unwrap().to_string(),
    }
}

/// Every current Patient on the hub.
async fn hub_patients(hub: &TestHub) -> Vec<Value> {
    let mut conn = hub.store.reader().await.unwrap();
    let mut conn = careshare_hub::store::Conn::Any(&mut conn);
    conn.fetch_strings(
        "SELECT content FROM resource_version WHERE res_type = 'Patient' \
         AND superseded_seq IS NULL AND deleted = 0",
        &[],
        "content",
    )
    .await
    .unwrap()
    .iter()
    .map(|c| serde_json::from_str(c).unwrap())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_brings_a_patient_and_the_directory_names_organisations() {
    use careshare_client::{Passphrase, Session, SyncOptions};
    let hub = TestHub::start(40).await;
    let root = tempfile::tempdir().unwrap();
    let dir: PathBuf = root.path().join("laptop");
    enrol(&hub, &dir).await;
    let now = chrono::Utc::now();
    let mut s = Session::open(&dir, &Passphrase::from(REPLICA_PASS), now).unwrap();
    s.sync(&SyncOptions::default(), now, &mut |_| {})
        .await
        .unwrap();

    // Organisation names, and the nurse's own organisation, are on the device.
    assert!(s.organisation_names().unwrap().is_empty());
    assert!(s.refresh_directory(now).await.unwrap() > 1);
    let names = s.organisation_names().unwrap();
    let own = s.own_organisation().unwrap().expect("her organisation");
    assert_eq!(s.own_display_name().unwrap().as_deref(), Some("Amy Khan"));
    assert!(
        names[&own].to_lowercase().contains("nurs") || names[&own].contains("Community"),
        "{names:?} / {own}"
    );

    // A patient she does not hold, named by NHS number as written on a letter.
    let held = s.status().unwrap().patients;
    let outside = hub_patients(&hub)
        .await
        .into_iter()
        .find(|p| {
            !held
                .iter()
                .any(|h| Some(h.patient_id.as_str()) == p["id"].as_str())
                && !p.to_string().contains("objection")
        })
        .expect("a patient outside her caseload");
    let id = outside["id"].as_str().unwrap().to_string();
    let nhs = outside["identifier"][0]["value"].as_str().unwrap();
    let written = format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]);
    let refused = s.break_glass(&written, "  ", now).await.unwrap_err();
    assert_eq!(refused.code(), "invalid-input");
    let grant = s
        .break_glass(&written, "Covering a colleague's visit: fall at home", now)
        .await
        .unwrap();
    assert_eq!(grant.patient_id, id);
    let hours = (grant.expires_at - now).num_minutes() as f64 / 60.0;
    assert!((3.9..=4.1).contains(&hours), "{hours}");
    s.sync(&SyncOptions::default(), now, &mut |_| {})
        .await
        .unwrap();
    assert!(
        s.status()
            .unwrap()
            .patients
            .iter()
            .any(|p| p.patient_id == id),
        "the patient's record came with the next sync"
    );
    s.lock().unwrap();
}

/// Runs the CLI with extra environment (e.g. another passphrase).
async fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = careshare(dir);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Five wrong passphrases lock the laptop; `careshare status` says so.
async fn lock_out(dir: &Path) {
    for _ in 0..5 {
        let (code, out) = run_env(
            dir,
            &["status"],
            &[("CARESHARE_PASSPHRASE", "a wrong guess")],
        )
        .await;
        assert_eq!(code, 3, "{out}");
    }
    assert!(ReplicaFiles::new(dir).status().unwrap().locked);
}

/// The nurse's audited re-authorisations: (given back, refused).
async fn recoveries(hub: &TestHub) -> (usize, usize) {
    let events = careshare_hub::audit::list(
        &hub.store,
        &careshare_hub::audit::Filter {
            username: Some(NURSE.into()),
            action: Some(careshare_hub::audit::Action::DeviceRecovery),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ok = events.iter().filter(|e| e["outcome"] == "0").count();
    (ok, events.len() - ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_laptop_is_reauthorised_by_its_user_signing_in_again() {
    let hub = TestHub::start(20).await;
    let (_root, dir) = synced_laptop(&hub).await;
    let held = contents(&dir);
    assert!(!held.is_empty());

    lock_out(&dir).await;
    let (code, out) = run(&dir, &["status"]).await;
    assert_eq!(code, 3, "the right passphrase no longer opens it: {out}");
    assert!(out.contains("re-authorised"), "{out}");

    // A wrong hub passphrase changes nothing.
    let (code, out) = run_env(
        &dir,
        &["reauthorise"],
        &[
            ("CARESHARE_HUB_PASSPHRASE", "not the hub passphrase"),
            ("CARESHARE_PASSPHRASE", "a brand new passphrase"),
        ],
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(ReplicaFiles::new(&dir).status().unwrap().locked);
    assert!(!out.contains("not the hub passphrase"), "{out}");

    // The nurse signs in again and chooses a new passphrase: nothing was lost.
    let new_pass = [("CARESHARE_PASSPHRASE", "a brand new passphrase")];
    let (code, out) = run_env(&dir, &["reauthorise"], &new_pass).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("re-authorised"), "{out}");
    let files = ReplicaFiles::new(&dir);
    assert!(!files.status().unwrap().locked);
    assert!(
        !files.recovery_key_pending().unwrap(),
        "the hub took the new recovery key"
    );
    let (code, out) = run(&dir, &["status"]).await;
    assert_eq!(code, 3, "the old passphrase is gone: {out}");
    let (code, out) = run_env(&dir, &["sync"], &new_pass).await;
    assert_eq!(code, 0, "{out}");
    let reopened = {
        let r = Replica::open(
            ReplicaFiles::new(&dir),
            &Passphrase::from("a brand new passphrase"),
            chrono::Utc::now(),
        )
        .unwrap();
        let n: i64 = r
            .raw_connection()
            .query_row("SELECT count(*) FROM resource", [], |row| row.get(0))
            .unwrap();
        r.lock().unwrap();
        n
    };
    assert_eq!(reopened, i64::try_from(held.len()).unwrap());
    assert_eq!(recoveries(&hub).await, (1, 1), "both attempts audited");

    // The replaced recovery key works the next time too.
    lock_out(&dir).await;
    let third = [("CARESHARE_PASSPHRASE", "a third passphrase here")];
    let (code, out) = run_env(&dir, &["reauthorise"], &third).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_env(&dir, &["status"], &third).await;
    assert_eq!(code, 0, "{out}");

    // A laptop reported lost is wiped, not re-authorised.
    lock_out(&dir).await;
    let device_id = files.recovery().unwrap().unwrap().device_id;
    hub.revoke_device(&device_id).await;
    let (code, out) = run_env(&dir, &["reauthorise"], &third).await;
    assert_eq!(code, 4, "revoked: {out}");
    assert_nothing_left(&dir);
}
