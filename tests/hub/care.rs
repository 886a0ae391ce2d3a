//! Access to patients on a demo region: care relationships, break-glass with its review,
//! and the patient access report.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{diagnostics, json_of, run_cli, run_cli_env, Backend, Hub, Stored, TestDb};

const DEMO_PASSPHRASE: &str = "careshare-demo-2026";

struct Api<'h> {
    hub: &'h Hub,
    root: String,
}

impl<'h> Api<'h> {
    fn new(hub: &'h Hub) -> Api<'h> {
        Api {
            hub,
            root: hub.base.trim_end_matches("/fhir").to_string(),
        }
    }

    async fn token(&self, user: &str) -> String {
        let r = self
            .hub
            .client
            .post(format!("{}/auth/token", self.root))
            .json(&json!({"username": user, "passphrase": DEMO_PASSPHRASE}))
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_eq!(s, StatusCode::OK, "{user}: {b}");
        b["access_token"].as_str().unwrap().to_string()
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        json_of(
            self.hub
                .client
                .get(format!("{}{path}", self.root))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.hub
                .client
                .post(format!("{}{path}", self.root))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

fn refs(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str().map(str::to_string))
        .collect()
}

async fn care_access(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = run_cli(&db, &["demo-region", "--patients", "24", "--seed", "9"]);
    assert!(
        out.contains("nurse.amy.khan"),
        "demo sign-ins are printed: {out}"
    );
    let storage = Stored::open(&db).await;
    let hub = Hub::start_on(db);
    let api = Api::new(&hub);
    let nurse = api.token("nurse.amy.khan").await;

    // Her teams and caseload, worked out independently from the FHIR data.
    let (_, me) = api.get(&nurse, "/auth/whoami").await;
    let role = me["practitioner_role"].as_str().unwrap().to_string();
    let teams: Vec<String> = storage
        .search(&format!("CareTeam?participant={role}"))
        .await
        .iter()
        .map(|t| format!("CareTeam/{}", t["id"].as_str().unwrap()))
        .collect();
    assert!(!teams.is_empty());
    let caseload: Vec<String> = storage
        .search("EpisodeOfCare?status=active")
        .await
        .iter()
        .filter(|e| refs(e, "team").iter().any(|t| teams.contains(t)))
        .map(|e| {
            e["patient"]["reference"]
                .as_str()
                .unwrap()
                .trim_start_matches("Patient/")
                .to_string()
        })
        .collect();
    assert!(caseload.len() >= 2, "{caseload:?}");

    // The hub agrees, patient by patient.
    let mut outside = None;
    let mut second = None;
    for p in storage.search("Patient").await {
        let id = p["id"].as_str().unwrap();
        let (s, a) = api
            .get(&nurse, &format!("/careshare/patients/{id}/access"))
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        let on_caseload = caseload.iter().any(|c| c == id);
        assert_eq!(a["visible"], json!(on_caseload), "{id}: {a}");
        if on_caseload {
            assert_eq!(a["basis"], "caseload-team", "{a}");
        } else if a["objection_to_sharing"] == false {
            if outside.is_none() {
                outside = Some(id.to_string());
            } else if second.is_none() {
                let nhs = p["identifier"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
                    .map(|i| i["value"].as_str().unwrap().to_string())
                    .unwrap();
                second = Some((id.to_string(), nhs));
            }
        }
    }
    let outside = outside.expect("a patient outside her caseload");

    // Break-glass: a reason is required; then time-limited access, flagged for review.
    let (s, oo) = api
        .post(
            &nurse,
            "/careshare/break-glass",
            json!({"patient": outside, "reason": "urgent"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{oo}");
    assert!(diagnostics(&oo).contains("reason"), "{oo}");
    let reason = "Covering for a colleague: patient called with chest pain";
    let (s, g) = api
        .post(
            &nurse,
            "/careshare/break-glass",
            json!({"patient": format!("Patient/{outside}"), "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["flagged_for_review"], true);
    let (_, a) = api
        .get(&nurse, &format!("/careshare/patients/{outside}/access"))
        .await;
    assert_eq!(
        (a["visible"].clone(), a["basis"].clone()),
        (json!(true), json!("break-glass")),
        "{a}"
    );
    let granted = chrono::DateTime::parse_from_rfc3339(g["granted_at"].as_str().unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(g["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        (until - granted).num_hours(),
        4,
        "the default grant lasts four hours"
    );

    // A clinician who cannot see the record names the patient by NHS number, as
    // written on a letter (3-3-4).
    let (second, nhs) = second.expect("a second patient outside her caseload");
    let written = format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]);
    let (s, g) = api
        .post(
            &nurse,
            "/careshare/break-glass",
            json!({"nhs_number": written, "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["patient"], format!("Patient/{second}"));
    let (s, oo) = api
        .post(
            &nurse,
            "/careshare/break-glass",
            json!({"nhs_number": "12345", "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{oo}");
    assert!(diagnostics(&oo).contains("NHS number"), "{oo}");
    let (s, oo) = api
        .post(
            &nurse,
            "/careshare/break-glass",
            json!({"nhs_number": "0000000000", "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{oo}");

    // A social worker may not break the glass; the privacy officer reviews.
    let sw = api.token("sw.claire.dawson").await;
    let (s, _) = api
        .post(
            &sw,
            "/careshare/break-glass",
            json!({"patient": outside, "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api
        .get(&nurse, "/careshare/break-glass?unreviewed=true")
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only the privacy officer lists grants"
    );
    let po = api.token("privacy.margaret.ellis").await;
    let (s, list) = api.get(&po, "/careshare/break-glass?unreviewed=true").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let grants = list["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2, "{list}");
    for g in grants {
        assert_eq!(g["user"], "nurse.amy.khan");
        assert_eq!(g["reason"], reason);
        let id = g["grant_id"].as_str().unwrap();
        let (s, b) = api
            .post(
                &po,
                &format!("/careshare/break-glass/{id}/review"),
                json!({"outcome": "appropriate: covering rota confirmed"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let id = grants[0]["grant_id"].as_str().unwrap();
    let (s, _) = api
        .post(
            &po,
            &format!("/careshare/break-glass/{id}/review"),
            json!({"outcome": "again"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = api.get(&po, "/careshare/break-glass?unreviewed=true").await;
    assert!(list["grants"].as_array().unwrap().is_empty());

    // The access report names who, from where, and why.
    let (s, rep) = api
        .get(&po, &format!("/careshare/access-report?patient={outside}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{rep}");
    let events = rep["events"].as_array().unwrap();
    let btg: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "break-glass")
        .collect();
    assert_eq!(
        btg.len(),
        3,
        "the nurse's refused and granted requests, the social worker's refusal: {rep}"
    );
    let allowed = btg.iter().find(|e| e["outcome"] == "allowed").unwrap();
    assert_eq!(allowed["who"], "nurse.amy.khan");
    assert_eq!(allowed["purpose"], "emergency access (break the glass)");
    assert!(
        allowed["organisation"]
            .as_str()
            .is_some_and(|o| !o.is_empty()),
        "{allowed}"
    );
    assert!(allowed["detail"].as_str().unwrap().contains(reason));
    let (s, _) = api
        .get(
            &nurse,
            &format!("/careshare/access-report?patient={outside}"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The privacy officer searches the trail: break-glass events only, by user, by time.
    let (s, b) = api.get(&po, "/careshare/audit?break_glass=true").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let found = b["entry"].as_array().unwrap();
    assert_eq!(
        found.len(),
        5,
        "the nurse's refused and granted requests (by id and by NHS number), her request \
         naming an unknown NHS number, the social worker's refusal: {b}"
    );
    assert!(found
        .iter()
        .all(|e| e["resource"]["subtype"][0]["code"] == "break-glass"));
    let (_, b) = api
        .get(
            &po,
            "/careshare/audit?user=sw.claire.dawson&break_glass=true",
        )
        .await;
    assert_eq!(b["entry"].as_array().unwrap().len(), 1);
    let (_, b) = api
        .get(&po, "/careshare/audit?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(b["total"], 0);
    let (s, _) = api.get(&nurse, "/careshare/audit").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (ok, text, err) = run_cli_env(&hub.db, &["audit", "report", "--patient", &outside], &[]);
    assert!(ok, "{err}");
    assert!(
        text.contains("nurse.amy.khan") && text.contains("break the glass"),
        "{text}"
    );
    assert!(run_cli_env(&hub.db, &["audit", "verify"], &[]).0);
    storage.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn care_access_on_sqlite() {
    care_access(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn care_access_on_postgres() {
    care_access(Backend::Postgres).await;
}
