//! Sync figures against the physical limit, measured in one run.
//!
//! A hub (the release `careshare-hub` binary, on SQLite, on loopback) serves a demo region
//! (`CARESHARE_BENCH_PATIENTS`, default 1,600 patients: a district nursing team's caseload
//! of about 200 patients). A device enrolled as the team's demo nurse (pages of
//! `CARESHARE_BENCH_PAGE_SIZE` changes, default 1,000) then:
//!
//! 1. makes its first sync, against the limit: the same rows bulk-inserted into an empty
//!    SQLCipher file with the replica's table and index, in one transaction;
//! 2. syncs 100 changes made on the hub;
//! 3. pushes 1,000 offline edits;
//! 4. answers the patient summary and caseload queries with its replica filled to 200,000
//!    resources;
//!
//! and the client's peak resident memory is read from the kernel. Targets (issue "replica
//! and sync"): first sync at least 50% of the raw rate and at least 5,000 resources/s;
//! 100 changes under 200 ms; 1,000 edits under 2 s; queries under 20 ms.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use careshare_client::{enrol, Enrolment, Passphrase, SecretString, SyncOptions};
use careshare_replica::{Replica, ReplicaFiles};
use serde_json::{json, Value};

const HUB_PASS: &str = "careshare-demo-2026";
const REPLICA_PASS: &str = "a long replica passphrase for the bench";
const NURSE: &str = "nurse.amy.khan";

fn hub_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARESHARE_HUB_BIN") {
        return PathBuf::from(p);
    }
    // target/release/deps/sync-… → target/release/careshare-hub
    let exe = std::env::current_exe().expect("the bench's own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("careshare-hub"))
        .expect("target directory")
}

struct HubProcess(Child);

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start_hub(db: &str) -> (HubProcess, String) {
    let mut child = Command::new(hub_binary())
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
        .env(
            "CARESHARE_LOG",
            std::env::var("CARESHARE_BENCH_HUB_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("start careshare-hub (build it with cargo build --release -p careshare-hub)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the hub's first line");
    let url = line
        .trim()
        .strip_prefix("Careshare hub listening on ")
        .and_then(|u| u.strip_suffix("/fhir"))
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (HubProcess(child), url)
}

/// Peak resident memory of this process so far (kernel's VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A replica row: type, id, version, content, patient, clinical time.
type RawRow = (String, String, String, String, String, Option<String>);

/// One device's first sync: its time, when its first page and its last were committed
/// (seconds from its start), and its pages.
struct FirstSync {
    seconds: f64,
    first_page: f64,
    pulled: f64,
    pages: u64,
}

/// Enrols a device of the nurse's in `dir` and makes its first sync.
async fn first_sync(
    url: &str,
    dir: &Path,
    options: &SyncOptions,
) -> (careshare_client::Session, FirstSync) {
    let mut session = enrol(
        Enrolment::new(
            dir,
            url,
            NURSE,
            SecretString::from(HUB_PASS),
            Passphrase::from(REPLICA_PASS),
        ),
        chrono::Utc::now(),
    )
    .await
    .expect("enrol");
    let t = Instant::now();
    let mut first_page = f64::NAN;
    let mut pulled = f64::NAN;
    let report = session
        .sync(options, chrono::Utc::now(), &mut |p| match p {
            careshare_client::sync::SyncProgress::Pulled { pages: 1, .. } => {
                first_page = t.elapsed().as_secs_f64()
            }
            careshare_client::sync::SyncProgress::Pulled { more: false, .. } => {
                pulled = t.elapsed().as_secs_f64()
            }
            _ => {}
        })
        .await
        .expect("first sync");
    let seconds = t.elapsed().as_secs_f64();
    (
        session,
        FirstSync {
            seconds,
            first_page,
            pulled,
            pages: report.pages,
        },
    )
}

/// The median of `values` (the lower middle one of an even number).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Bulk-inserts `rows` into an empty SQLCipher file with the replica's `resource` table and
/// index, in one transaction with one prepared statement: the limit for storing them.
fn raw_sqlcipher_rate(dir: &Path, rows: &[RawRow]) -> f64 {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("raw.db{suffix}")));
    }
    let conn = rusqlite::Connection::open(dir.join("raw.db")).expect("raw file");
    let key: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{key}'\"; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE resource (resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
           version_id TEXT, content TEXT NOT NULL, base_version TEXT, patient_id TEXT NOT NULL,
           updated_at TEXT NOT NULL, clinical_time TEXT, PRIMARY KEY (resource_type, resource_id));
         CREATE INDEX resource_by_patient ON resource (patient_id);
         CREATE INDEX resource_by_patient_type ON resource (patient_id, resource_type, clinical_time);"
    ))
    .expect("raw schema");
    let start = Instant::now();
    let tx = conn.unchecked_transaction().expect("begin");
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO resource (resource_type, resource_id, version_id, content, \
                 base_version, patient_id, updated_at, clinical_time) \
                 VALUES (?1, ?2, ?3, ?4, ?3, ?5, '2026-11-26T00:00:00Z', ?6)",
            )
            .expect("prepare");
        for (t, id, v, c, p, time) in rows {
            stmt.execute(rusqlite::params![t, id, v, c, p, time])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    rows.len() as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let patients: usize = std::env::var("CARESHARE_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_600);
    let work = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", work.path().join("hub.sqlite").display());
    println!("sync bench: demo region of {patients} patients, hub on SQLite on loopback");
    let t = Instant::now();
    let out = Command::new(hub_binary())
        .args([
            "demo-region",
            "--db",
            &db,
            "--patients",
            &patients.to_string(),
        ])
        .env("CARESHARE_PBKDF2_ITERATIONS", "1000")
        .env("CARESHARE_LOG", "warn")
        .output()
        .expect("careshare-hub demo-region");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("  region loaded in {:.1} s", t.elapsed().as_secs_f64());
    let (_hub, url) = start_hub(&db);

    let options = SyncOptions {
        page_size: std::env::var("CARESHARE_BENCH_PAGE_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
        ..SyncOptions::default()
    };
    let runs: usize = std::env::var("CARESHARE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);

    // 1. First sync, by `runs` devices of the nurse's in turn (the first is kept for the
    //    rest); the median is reported, as is the median of as many raw inserts.
    let dir = work.path().join("replica");
    let mut firsts: Vec<FirstSync> = Vec::new();
    let mut kept = None;
    for run in 0..runs {
        let run_dir = if run == 0 {
            dir.clone()
        } else {
            work.path().join(format!("replica-{run}"))
        };
        let (session, first) = first_sync(&url, &run_dir, &options).await;
        firsts.push(first);
        match kept {
            None => kept = Some(session),
            Some(_) => {
                session.lock().expect("lock");
                let _ = std::fs::remove_dir_all(&run_dir);
            }
        }
    }
    let session = kept.expect("a first sync");
    let first = median(firsts.iter().map(|f| f.seconds));
    let middle = firsts
        .iter()
        .find(|f| f.seconds == first)
        .expect("the median run");
    println!(
        "  (median run: first page after {:.2} s, the feed built for the whole caseload; all pages in {:.2} s)",
        middle.first_page, middle.pulled
    );
    let rss_after_first = peak_rss_mib();
    let status = session.status().expect("status");
    let held = status.resources;
    let rate = held as f64 / first;
    session.lock().expect("lock");

    let replica = Replica::open(
        ReplicaFiles::new(&dir),
        &Passphrase::from(REPLICA_PASS),
        chrono::Utc::now(),
    )
    .expect("open");
    let rows: Vec<RawRow> = {
        let mut stmt = replica
            .raw_connection()
            .prepare(
                "SELECT resource_type, resource_id, COALESCE(version_id, ''), content, patient_id, \
                 clinical_time FROM resource",
            )
            .expect("select");
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    replica.lock().expect("lock");
    let raws: Vec<f64> = (0..runs)
        .map(|_| raw_sqlcipher_rate(work.path(), &rows))
        .collect();
    let raw = median(raws.iter().copied());
    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(", ");
    println!(
        "  first sync: {held} resources ({} patients, {} pages) in {first:.2} s = {rate:.0} resources/s \
         (median of {runs}: {} s)",
        status.patients.len(),
        middle.pages,
        list(&mut firsts.iter().map(|f| format!("{:.2}", f.seconds)))
    );
    println!(
        "    raw SQLCipher bulk insert of the same rows (limit): {raw:.0} resources/s (median of {runs}: {}); \
         ratio {:.0}% (target ≥ 50% and ≥ 5,000/s)",
        list(&mut raws.iter().map(|r| format!("{r:.0}"))),
        100.0 * rate / raw
    );
    drop(rows);

    // 2. 100 changes made on the hub, by the nurse at her desk.
    let session =
        careshare_client::Session::open(&dir, &Passphrase::from(REPLICA_PASS), chrono::Utc::now())
            .expect("open");
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/auth/token"))
        .json(&json!({"username": NURSE, "passphrase": HUB_PASS}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("token");
    let token = token["access_token"].as_str().expect("token").to_string();
    // Her organisation's observations are hers to amend.
    let me: Value = http
        .get(format!("{url}/auth/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("whoami");
    let role: Value = http
        .get(format!(
            "{url}/fhir/{}",
            me["practitioner_role"].as_str().expect("role")
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("role")
        .json()
        .await
        .expect("role");
    let org = role["organization"]["reference"]
        .as_str()
        .expect("organisation")
        .to_string();
    let replica_rows = {
        session.lock().expect("lock");
        let r = Replica::open(
            ReplicaFiles::new(&dir),
            &Passphrase::from(REPLICA_PASS),
            chrono::Utc::now(),
        )
        .expect("open");
        let mut stmt = r
            .raw_connection()
            .prepare(
                "SELECT content FROM resource WHERE resource_type = 'Observation' \
                 AND content LIKE ?1 LIMIT 100",
            )
            .expect("select");
        let v: Vec<Value> = stmt
            .query_map([format!("%\"source\":\"{org}\"%")], |r| {
                r.get::<_, String>(0)
            })
            .expect("rows")
            .filter_map(|c| c.ok().and_then(|c| serde_json::from_str(&c).ok()))
            .collect();
        drop(stmt);
        r.lock().expect("lock");
        v
    };
    let entries: Vec<Value> = replica_rows
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o["status"] = json!("amended");
            let url = format!("Observation/{}", o["id"].as_str().unwrap_or_default());
            json!({"resource": o, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let r = http
        .post(format!("{url}/fhir"))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string(),
        )
        .send()
        .await
        .expect("changes on the hub");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let mut session =
        careshare_client::Session::open(&dir, &Passphrase::from(REPLICA_PASS), chrono::Utc::now())
            .expect("open");
    let t = Instant::now();
    let report = session
        .sync(&options, chrono::Utc::now(), &mut |_| {})
        .await
        .expect("incremental sync");
    println!(
        "  incremental sync of {} changes: {:.0} ms (target < 200 ms)",
        report.upserted,
        t.elapsed().as_secs_f64() * 1000.0
    );

    // 3. 1,000 offline edits pushed.
    let patient = status
        .patients
        .first()
        .map(|p| p.patient_id.clone())
        .expect("a patient");
    for i in 0..1000 {
        session
            .record_edit(
                json!({"resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
                    "subject": {"reference": format!("Patient/{patient}")}}),
                None,
                chrono::Utc::now(),
            )
            .expect("queue an edit");
    }
    let t = Instant::now();
    let report = session
        .sync(&options, chrono::Utc::now(), &mut |_| {})
        .await
        .expect("push");
    println!(
        "  push of 1,000 offline edits ({} applied): {:.2} s (target < 2 s)",
        report.pushed.applied,
        t.elapsed().as_secs_f64()
    );
    session.lock().expect("lock");

    // 4. Queries with the replica at 200,000 resources.
    let replica = Replica::open(
        ReplicaFiles::new(&dir),
        &Passphrase::from(REPLICA_PASS),
        chrono::Utc::now(),
    )
    .expect("open");
    // Copies of every record (new ids, same patients), so each patient grows in proportion.
    let mut copy = 0;
    loop {
        let have = replica.resource_count().expect("count");
        if have >= 200_000 {
            break;
        }
        copy += 1;
        replica
            .raw_connection()
            .execute(
                &format!(
                    "INSERT INTO resource (resource_type, resource_id, version_id, content, base_version, patient_id, updated_at, clinical_time) \
                     SELECT resource_type, resource_id || '-c{copy}', version_id, content, base_version, patient_id, updated_at, clinical_time \
                     FROM resource WHERE resource_id NOT LIKE '%-c%' AND resource_type <> 'Patient' \
                     ORDER BY random() LIMIT {}",
                    200_000 - have
                ),
                [],
            )
            .expect("fill");
    }
    let total = replica.resource_count().expect("count");
    let busiest = replica
        .raw_connection()
        .query_row(
            "SELECT patient_id FROM resource WHERE patient_id <> '' GROUP BY patient_id ORDER BY count(*) DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .expect("busiest patient");
    let runs = 20;
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..runs {
        n = replica
            .patient_summary(&busiest, 50)
            .expect("summary")
            .len();
    }
    let summary_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let t = Instant::now();
    let mut c = 0;
    for _ in 0..runs {
        c = replica.caseload().expect("caseload").len();
    }
    let caseload_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    println!(
        "  replica at {total} resources: patient summary ({n} records: all but observations and encounters, and the latest 50 observations) {summary_ms:.1} ms, caseload ({c} patients) {caseload_ms:.1} ms (target < 20 ms)"
    );
    replica.lock().expect("lock");
    println!(
        "  client peak RSS: {rss_after_first:.0} MiB after the first sync, {:.0} MiB in all",
        peak_rss_mib()
    );
}
