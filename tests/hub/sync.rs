//! Sync over HTTP, as a device sees it: the first pull brings exactly what the nurse may
//! see, in safety order and in resumable pages; later pulls bring changes and removals
//! when access ends; pushes apply once, merge or conflict, and one bad edit blocks nothing;
//! the offline audit chain is taken only whole and signed; a revoked device is told to wipe.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use reqwest::StatusCode;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use crate::authz::{load, PASS};
use crate::both;
use crate::harness::{diagnostics, json_of, Backend, Hub, Session, Stored, TestDb};

/// A device enrolled for `user`: its id, key and a device-bound session.
struct Device {
    id: String,
    key: Ed25519KeyPair,
    session: Session,
    root: String,
}

impl Device {
    async fn enrol(hub: &Hub, user: &str) -> Device {
        let person = hub.sign_in(user, PASS).await;
        let root = hub.base.trim_end_matches("/fhir").to_string();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let post = |path: &str, body: Value| {
            person
                .client
                .post(format!("{root}{path}"))
                .json(&body)
                .send()
        };
        let (s, b) = json_of(
            post(
                "/auth/devices",
                json!({"name": "laptop", "public_key": B64.encode(key.public_key().as_ref())}),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["device_id"].as_str().unwrap().to_string();
        let (_, c) = json_of(
            post(&format!("/auth/devices/{id}/challenge"), json!({}))
                .await
                .unwrap(),
        )
        .await;
        let nonce = c["nonce"].as_str().unwrap();
        let sig = key.sign(format!("careshare-device-proof:{nonce}").as_bytes());
        let (s, t) = json_of(
            post(
                &format!("/auth/devices/{id}/token"),
                json!({"nonce": nonce, "signature": B64.encode(sig.as_ref())}),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        Device {
            id,
            key,
            session: Session::with_token(&hub.base, t["access_token"].as_str().unwrap()),
            root,
        }
    }

    async fn call(
        &self,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = self
            .session
            .client
            .post(format!("{}{path}", self.root))
            .json(body)
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        let (s, v) = json_of(r).await;
        (s, v, headers)
    }

    /// Pulls pages from `checkpoint` until the feed is drained; returns every change and
    /// the final checkpoint.
    async fn pull_all(
        &self,
        mut checkpoint: Option<i64>,
        page_size: u32,
    ) -> (Vec<Value>, Option<i64>) {
        let mut changes = Vec::new();
        loop {
            let (s, page, _) = self
                .call(
                    "/sync/pull",
                    &json!({"checkpoint": checkpoint, "pageSize": page_size}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let got = page["changes"].as_array().unwrap();
            assert!(got.len() <= page_size as usize, "{page}");
            changes.extend(got.iter().cloned());
            checkpoint = page["next"].as_i64();
            if page["more"] != true {
                return (changes, checkpoint);
            }
        }
    }

    async fn push(&self, edits: Value) -> Vec<Value> {
        let (s, r, _) = self.call("/sync/push", &json!({"edits": edits})).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        r["results"].as_array().unwrap().clone()
    }
}

fn upserted(changes: &[Value]) -> Vec<(String, String, i64)> {
    changes
        .iter()
        .filter_map(|c| c.get("upsert"))
        .map(|u| {
            (
                u["resourceType"].as_str().unwrap().to_string(),
                u["id"].as_str().unwrap().to_string(),
                u["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// What the district nurse's first sync brings from the `load` fixture.
const DN_FIRST_SYNC: [&str; 11] = [
    "p-caseload",
    "obs-gp-p-caseload",
    "obs-dn-p-caseload",
    "doc-sw-p-caseload",
    "flag-hc-p-caseload",
    "ep-p-caseload",
    "ct-p-caseload",
    "p-objection",
    "obs-dn-p-objection",
    "consent-p-objection",
    "ep-p-objection",
];

/// The district nurse's first sync: exactly what she may see, each record once, alerts
/// before observations.
fn assert_first_sync(changes: &[Value]) {
    let got = upserted(changes);
    let ids: BTreeSet<String> = got.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(ids.len(), got.len(), "each record once: {got:?}");
    let want: BTreeSet<String> = DN_FIRST_SYNC.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids, want);
    let first_obs = got.iter().position(|(t, _, _)| t == "Observation").unwrap();
    let last_flag = got.iter().rposition(|(t, _, _)| t == "Flag").unwrap();
    assert!(
        last_flag < first_obs,
        "alerts come before observations: {got:?}"
    );
    for c in changes {
        let p = c["upsert"]["patient"].as_str().unwrap();
        assert!(p == "p-caseload" || p == "p-objection", "{c}");
    }
}

/// A device's replica after `changes`, applied one by one: (type, id) → (version, patient).
fn fold(changes: &[Value]) -> BTreeMap<(String, String), (i64, String)> {
    let mut replica = BTreeMap::new();
    for c in changes {
        if let Some(u) = c.get("upsert") {
            replica.insert(
                (
                    u["resourceType"].as_str().unwrap().to_string(),
                    u["id"].as_str().unwrap().to_string(),
                ),
                (
                    u["version"].as_i64().unwrap(),
                    u["patient"].as_str().unwrap_or_default().to_string(),
                ),
            );
        } else if let Some(r) = c.get("remove") {
            replica.remove(&(
                r["resourceType"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            ));
        } else if let Some(p) = c["purgePatient"]["patient"].as_str() {
            replica.retain(|_, (_, patient)| patient != p);
        }
    }
    replica
}

/// The replica's chain formula: hex(SHA-256(prev "\n" seq "\n" recorded_at "\n" event)).
fn audit_hash(prev: &str, seq: i64, at: &str, event: &str) -> String {
    let text = format!("{prev}\n{seq}\n{at}\n{event}");
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn sync_flows(hub: &Hub) {
    load(hub).await;
    let nurse = Device::enrol(hub, "dn").await;

    // First sync, three changes a page: exactly what she may see, most urgent first.
    let (changes, checkpoint) = nurse.pull_all(None, 3).await;
    assert_first_sync(&changes);

    // Caught up: nothing more; a page resumed from an older checkpoint repeats exactly.
    let (again, same) = nurse.pull_all(checkpoint, 50).await;
    assert!(again.is_empty() && same == checkpoint, "{again:?}");
    let (replay, _) = nurse.pull_all(Some(checkpoint.unwrap() - 2), 50).await;
    assert_eq!(replay, changes[changes.len() - 2..].to_vec());

    // A patient joins her organisation's caseload (an episode that names no team): the next
    // pull brings what she may see of them, and nothing else.
    let (s, b) = hub
        .put(
            "EpisodeOfCare/ep-org-p-none",
            &json!({"resourceType": "EpisodeOfCare", "id": "ep-org-p-none", "status": "active",
                "patient": {"reference": "Patient/p-none"},
                "managingOrganization": {"reference": "Organization/org-community"}}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (changes, checkpoint) = nurse.pull_all(checkpoint, 50).await;
    let joined: BTreeSet<String> = upserted(&changes)
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    let want: BTreeSet<String> = [
        "p-none",
        "obs-gp-p-none",
        "obs-dn-p-none",
        "doc-sw-p-none",
        "flag-hc-p-none",
        "ep-org-p-none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(joined, want, "the HIV-labelled condition stays on the hub");

    // A change on the hub by the GP reaches her; so does a new record of a patient of hers.
    let gp = hub.sign_in("gp", PASS).await;
    let (_, mut obs) = gp.get("Observation/obs-gp-p-caseload").await;
    obs["status"] = json!("amended");
    let (s, b) = gp.put("Observation/obs-gp-p-caseload", &obs).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (changes, checkpoint) = nurse.pull_all(checkpoint, 50).await;
    assert_eq!(
        upserted(&changes),
        vec![("Observation".into(), "obs-gp-p-caseload".into(), 2)]
    );

    // Push: her edit applies once; re-sent, it is recognised; a stale edit of the same
    // clinical element is a conflict; one bad edit blocks nothing.
    let (_, mine) = nurse.session.get("Observation/obs-dn-p-objection").await;
    let mut amended = mine.clone();
    amended["status"] = json!("amended");
    let edit = json!({"clientEditId": "e-1", "resourceType": "Observation", "id": "obs-dn-p-objection",
        "baseVersion": 1, "resource": amended});
    let r = nurse.push(json!([edit])).await;
    assert_eq!(r[0]["applied"]["version"], 2, "{r:?}");
    let r = nurse.push(json!([edit])).await;
    assert_eq!(r[0]["alreadyApplied"]["version"], 2, "{r:?}");
    let mut cancelled = mine.clone();
    cancelled["status"] = json!("cancelled");
    let cancelled_again = cancelled.clone();
    let mut noted = mine.clone();
    noted["note"] = json!([{"text": "dressing changed"}]);
    let r = nurse
        .push(json!([
            {"clientEditId": "e-2", "resourceType": "Observation", "id": "obs-dn-p-objection",
             "baseVersion": 1, "resource": cancelled},
            {"clientEditId": "e-3", "resourceType": "Observation", "id": "obs-gp-p-expired",
             "baseVersion": 1, "resource": {"resourceType": "Observation", "id": "obs-gp-p-expired",
                "status": "cancelled", "code": {"text": "x"}, "subject": {"reference": "Patient/p-expired"}}},
            {"clientEditId": "e-4", "resourceType": "Observation", "id": "obs-dn-p-objection",
             "baseVersion": 1, "resource": noted},
        ]))
        .await;
    assert!(
        r[0].get("conflict").is_some(),
        "same clinical element: {:?}",
        r[0]
    );
    assert_eq!(r[0]["conflict"]["theirs"]["status"], "amended");
    assert!(r[1].get("rejected").is_some(), "{:?}", r[1]);
    assert!(
        diagnostics(&r[1]["rejected"]["outcome"]).contains("does not exist"),
        "a hidden record is not there: {:?}",
        r[1]
    );
    assert_eq!(
        r[2]["merged"]["version"], 3,
        "disjoint change merges: {:?}",
        r[2]
    );
    assert_eq!(r[2]["merged"]["resource"]["status"], "amended");
    assert_eq!(
        r[2]["merged"]["resource"]["note"][0]["text"],
        "dressing changed"
    );

    // The hub decides an edit once: even when the record has since gone back to what the
    // edit started from, a re-sent (or late) copy of the conflicting edit is answered with
    // the same conflict and is not applied.
    let (_, mut now) = nurse.session.get("Observation/obs-dn-p-objection").await;
    now["status"] = json!("final");
    now.as_object_mut().unwrap().remove("note");
    let (s, b) = nurse
        .session
        .put("Observation/obs-dn-p-objection", &now)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let late = json!({"clientEditId": "e-2", "resourceType": "Observation", "id": "obs-dn-p-objection",
        "baseVersion": 1, "resource": cancelled_again});
    let r = nurse.push(json!([late])).await;
    assert!(r[0].get("conflict").is_some(), "{:?}", r[0]);
    let (_, hub_copy) = nurse.session.get("Observation/obs-dn-p-objection").await;
    assert_eq!(
        hub_copy["status"], "final",
        "the conflicting edit was never applied"
    );

    // Access ends: the patient's episode closes, and the next pull purges the patient.
    let (_, mut ep) = nurse.session.get("EpisodeOfCare/ep-p-caseload").await;
    ep["status"] = json!("finished");
    let (s, b) = nurse.session.put("EpisodeOfCare/ep-p-caseload", &ep).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (changes, _) = nurse.pull_all(checkpoint, 50).await;
    assert!(
        changes
            .iter()
            .any(|c| c["purgePatient"]["patient"] == "p-caseload"
                && c["purgePatient"]["reason"] == "leftCaseload"),
        "{changes:?}"
    );
    assert!(
        !upserted(&changes)
            .iter()
            .any(|(_, id, _)| id.ends_with("p-caseload")),
        "{changes:?}"
    );

    // The offline audit chain: taken whole and signed, refused when a row was changed.
    let r = nurse
        .session
        .client
        .get(format!("{}/sync/audit", nurse.root))
        .send()
        .await
        .unwrap();
    let (_, pos) = json_of(r).await;
    assert_eq!(pos["next_seq"], 1);
    let mut prev = pos["head"].as_str().unwrap().to_string();
    let mut rows = Vec::new();
    for seq in 1..=2 {
        let event = json!({"action": "view", "resource": "Observation/obs-dn-p-objection",
            "patient": "p-objection"});
        let at = format!("2026-11-26T0{seq}:00:00Z");
        let hash = audit_hash(&prev, seq, &at, &event.to_string());
        rows.push(
            json!({"seq": seq, "recorded_at": at, "event": event, "prev_hash": prev, "hash": hash}),
        );
        prev = hash;
    }
    let sign = |head: &str| {
        B64.encode(
            nurse
                .key
                .sign(format!("careshare-audit-head:{head}").as_bytes())
                .as_ref(),
        )
    };
    let mut tampered = rows.clone();
    tampered[1]["event"]["resource"] = json!("Observation/obs-gp-p-objection");
    let (s, b, _) = nurse
        .call(
            "/sync/audit",
            &json!({"events": tampered, "signature": sign(&prev)}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b, _) = nurse
        .call(
            "/sync/audit",
            &json!({"events": rows, "signature": sign("not the head")}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an unsigned chain is refused: {b}"
    );
    let (s, b, _) = nurse
        .call(
            "/sync/audit",
            &json!({"events": rows, "signature": sign(&prev)}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["next_seq"], 3);
    let po = hub.sign_in("po", PASS).await;
    let (_, events) = po.get_root("/careshare/audit?patient=p-objection").await;
    let offline = events["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["subtype"][0]["code"] == "offline-view")
        .count();
    assert_eq!(offline, 2, "{events}");

    // A lease to work offline; then, revoked, the device is told to wipe.
    let (s, lease, _) = nurse.call("/sync/checkin", &json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(lease["lease_until"].as_str().unwrap() > "2026", "{lease}");
    let admin = hub.sign_in("ad", PASS).await;
    let r = admin
        .client
        .post(format!("{}/admin/devices/{}/revoke", nurse.root, nurse.id))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.status());
    let (s, b, headers) = nurse
        .call("/sync/pull", &json!({"checkpoint": null, "pageSize": 10}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(headers["careshare-instruction"], "wipe");

    // A person's token (not bound to a device) cannot sync.
    let (s, b) = json_of(
        gp.client
            .post(format!("{}/sync/pull", nurse.root))
            .json(&json!({"pageSize": 10}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(diagnostics(&b).contains("device"), "{b}");
}
both!(sync_flows);

/// A first sync larger than two pages, written here one row per transaction after the first
/// two pages' worth: the device gets exactly what one transaction would have sent, while it
/// is written. Then the writing stops half-way (the state a hub stopped after a row's
/// transaction leaves, made in the database) and a patient whose records were already sent
/// leaves the caseload: the device's next pulls finish the feed with nothing lost, nothing
/// sent twice, and that patient purged.
async fn feed_written_in_chunks(backend: Backend) {
    let hub = Hub::start_with(
        TestDb::new(backend).await,
        &[("CARESHARE_SYNC_CHUNK_ROWS", "1")],
        None,
    );
    load(&hub).await;
    let a = Device::enrol(&hub, "dn").await;
    let (first_a, checkpoint_a) = a.pull_all(None, 2).await;
    assert_first_sync(&first_a);

    // A second laptop takes its first page, and the writing of its feed runs to the end.
    let b = Device::enrol(&hub, "dn").await;
    let (s, page, _) = b
        .call("/sync/pull", &json!({"checkpoint": null, "pageSize": 2}))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["more"], true, "{page}");
    let mut changes_b: Vec<Value> = page["changes"].as_array().unwrap().clone();
    let stored = Stored::open(&hub.db).await;
    let db = stored.pool();
    let complete = || async {
        sqlx::query_scalar::<_, i64>("SELECT complete FROM sync_device WHERE device_id = $1")
            .bind(&b.id)
            .fetch_one(db)
            .await
            .unwrap()
            == 1
    };
    let waited = std::time::Instant::now();
    while !complete().await {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "the feed is written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Back to the state after the fifth row's transaction: its rows, what they sent, and
    // the device's row marked incomplete, naming the patients sent so far.
    const CUT: i64 = 5;
    for (sql, cut) in [
        (
            "DELETE FROM sync_feed WHERE device_id = $1 AND seq > $2",
            true,
        ),
        (
            "DELETE FROM sync_sent WHERE device_id = $1 AND NOT EXISTS (SELECT 1 FROM sync_feed f \
             WHERE f.device_id = $1 AND f.kind = 'upsert' AND f.res_type = sync_sent.res_type \
             AND f.res_id = sync_sent.res_id)",
            false,
        ),
    ] {
        let q = sqlx::query(sql).bind(&b.id);
        let q = if cut { q.bind(CUT) } else { q };
        q.execute(db).await.unwrap();
    }
    let sent: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT patient_id FROM sync_feed WHERE device_id = $1 AND kind = 'upsert'",
    )
    .bind(&b.id)
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(sent.contains("p-caseload"), "{sent:?}");
    sqlx::query(
        "UPDATE sync_device SET feed_seq = $2, complete = 0, patients = $3 WHERE device_id = $1",
    )
    .bind(&b.id)
    .bind(CUT)
    .bind(serde_json::to_string(&sent).unwrap())
    .execute(db)
    .await
    .unwrap();
    stored.close().await;

    // p-caseload leaves the caseload.
    let (_, mut ep) = a.session.get("EpisodeOfCare/ep-p-caseload").await;
    ep["status"] = json!("finished");
    let (s, body) = a.session.put("EpisodeOfCare/ep-p-caseload", &ep).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (rest_b, _) = b.pull_all(page["next"].as_i64(), 2).await;
    changes_b.extend(rest_b);
    let mut all_a = first_a;
    all_a.extend(a.pull_all(checkpoint_a, 50).await.0);
    let replica_b = fold(&changes_b);
    assert_eq!(replica_b, fold(&all_a), "both laptops hold the same");
    assert!(
        !replica_b.values().any(|(_, p)| p == "p-caseload"),
        "{replica_b:?}"
    );
    assert!(
        changes_b
            .iter()
            .any(|c| c["purgePatient"]["patient"] == "p-caseload"),
        "{changes_b:?}"
    );
    let sent_b = upserted(&changes_b);
    let once: BTreeSet<_> = sent_b.iter().collect();
    assert_eq!(once.len(), sent_b.len(), "nothing sent twice: {sent_b:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_written_in_chunks_on_sqlite() {
    feed_written_in_chunks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_written_in_chunks_on_postgres() {
    feed_written_in_chunks(Backend::Postgres).await;
}
