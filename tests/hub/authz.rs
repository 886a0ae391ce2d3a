//! The authorisation matrix: for each staff role and each kind of relationship to a
//! patient (none, team caseload, GP registration, patient care team, break-glass active
//! and expired, objection to sharing), with sensitive labels and records from several
//! organisations, which records each endpoint shows — read, vread, search with paging and
//! totals, `_include`, every `_history` form, Bundle reads — and which writes it accepts.
//!
//! The expectations are written out by hand from the product's rules; the fixture is
//! loaded straight into storage, as a region's feeds would load it.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{diagnostics, json_of, run_cli, run_cli_env, Hub, Session, Stored};

pub const PASS: &str = "a passphrase for the matrix";
const STAFF_ROLE: &str = "https://careshare.example.org/fhir/CodeSystem/staff-role";
const ORG_KIND: &str = "https://careshare.example.org/fhir/CodeSystem/organization-kind";
const TEAM_KIND: &str = "https://careshare.example.org/fhir/CodeSystem/team-kind";

/// The patients, by how the staff below are related to them.
const PATIENTS: [&str; 6] = [
    "p-caseload", // district nursing team's caseload; registered with the GP; council on care team
    "p-gp",       // registered with the GP practice only
    "p-none",     // registered elsewhere, no links
    "p-bg",       // no links; the nurse holds an active break-glass grant
    "p-expired",  // no links; the nurse's grant has expired
    "p-objection", // caseload + GP, and the patient objected to sharing
];

/// The records each patient has (besides a few care-link records), by who wrote them.
const KINDS: [&str; 6] = [
    "pat",      // the Patient (written by the GP practice)
    "obs-gp",   // an Observation by the GP practice
    "obs-dn",   // an Observation by the community trust (district nurses)
    "cond-hiv", // a Condition by the GP practice labelled HIV
    "doc-sw",   // a social care note by the council
    "flag-hc",  // a Flag by the hospital
];

fn id(kind: &str, patient: &str) -> String {
    if kind == "pat" {
        patient.to_string()
    } else {
        format!("{kind}-{patient}")
    }
}

fn type_of(kind: &str) -> &'static str {
    match kind {
        "pat" => "Patient",
        "obs-gp" | "obs-dn" => "Observation",
        "cond-hiv" => "Condition",
        "doc-sw" => "DocumentReference",
        "flag-hc" => "Flag",
        "consent" => "Consent",
        _ => unreachable!("{kind}"),
    }
}

fn reference(r: &str) -> Value {
    json!({"reference": r})
}

fn source(org: &str) -> Value {
    json!({"source": format!("Organization/{org}")})
}

fn organization(id: &str, kind: &str) -> Value {
    json!({"resourceType": "Organization", "id": id, "name": id,
        "type": [{"coding": [{"system": ORG_KIND, "code": kind}]}]})
}

fn practitioner_role(id: &str, role: &str, org: &str) -> Value {
    json!({"resourceType": "PractitionerRole", "id": id, "active": true,
        "organization": reference(&format!("Organization/{org}")),
        "code": [{"coding": [{"system": STAFF_ROLE, "code": role}]}]})
}

/// The region: organisations, staff, one nursing team, the patients and their records.
fn fixture() -> Vec<Value> {
    let mut r = vec![
        organization("org-community", "community-health"),
        organization("org-gp", "gp-practice"),
        organization("org-gp-other", "gp-practice"),
        organization("org-hospital", "hospital"),
        organization("org-council", "social-care"),
        organization("org-region", "region"),
        practitioner_role("pr-dn", "district-nurse", "org-community"),
        practitioner_role("pr-gp", "gp", "org-gp"),
        practitioner_role("pr-hc", "hospital-clinician", "org-hospital"),
        practitioner_role("pr-sw", "social-worker", "org-council"),
        practitioner_role("pr-po", "privacy-officer", "org-region"),
        practitioner_role("pr-ad", "region-admin", "org-region"),
        json!({"resourceType": "CareTeam", "id": "team-dn", "status": "active",
            "category": [{"coding": [{"system": TEAM_KIND, "code": "team"}]}],
            "managingOrganization": [reference("Organization/org-community")],
            "participant": [{"member": reference("PractitionerRole/pr-dn")}]}),
    ];
    for p in PATIENTS {
        let subject = reference(&format!("Patient/{p}"));
        let gp = if p == "p-none" || p == "p-bg" || p == "p-expired" {
            "org-gp-other"
        } else {
            "org-gp"
        };
        r.push(
            json!({"resourceType": "Patient", "id": p, "meta": source("org-gp"),
            "name": [{"family": p}],
            "generalPractitioner": [reference(&format!("Organization/{gp}"))]}),
        );
        r.push(
            json!({"resourceType": "Observation", "id": id("obs-gp", p), "meta": source("org-gp"),
            "status": "final", "code": {"text": "blood pressure"}, "subject": subject}),
        );
        r.push(json!({"resourceType": "Observation", "id": id("obs-dn", p), "meta": source("org-community"),
            "status": "final", "code": {"text": "wound size"}, "subject": subject}));
        r.push(json!({"resourceType": "Condition", "id": id("cond-hiv", p),
            "meta": {"source": "Organization/org-gp", "security": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]},
            "code": {"text": "HIV infection"}, "subject": subject}));
        r.push(json!({"resourceType": "DocumentReference", "id": id("doc-sw", p), "meta": source("org-council"),
            "status": "current", "description": "care needs assessment", "subject": subject,
            "content": [{"attachment": {"contentType": "text/plain", "data": "bm90ZQ=="}}]}));
        r.push(
            json!({"resourceType": "Flag", "id": id("flag-hc", p), "meta": source("org-hospital"),
            "status": "active", "code": {"text": "falls risk"}, "subject": subject}),
        );
        if p == "p-caseload" || p == "p-objection" {
            r.push(
                json!({"resourceType": "EpisodeOfCare", "id": format!("ep-{p}"),
                "meta": source("org-community"), "status": "active",
                "patient": subject, "managingOrganization": reference("Organization/org-community"),
                "team": [reference("CareTeam/team-dn")]}),
            );
        }
        if p == "p-caseload" {
            r.push(json!({"resourceType": "CareTeam", "id": format!("ct-{p}"), "meta": source("org-council"),
                "status": "active", "subject": subject,
                "participant": [{"member": reference("Organization/org-council")}]}));
        }
        if p == "p-objection" {
            r.push(json!({"resourceType": "Consent", "id": id("consent", p), "meta": source("org-gp"),
                "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": subject, "provision": {"type": "deny"}}));
        }
    }
    r
}

/// The staff who sign in, with their role's PractitionerRole.
const STAFF: [(&str, &str); 6] = [
    ("dn", "pr-dn"),
    ("gp", "pr-gp"),
    ("hc", "pr-hc"),
    ("sw", "pr-sw"),
    ("po", "pr-po"),
    ("ad", "pr-ad"),
];

/// What each person may see, patient by patient (record kinds; `consent` is the
/// objection itself). Everything not listed is hidden.
fn expected(user: &str, patient: &str) -> &'static [&'static str] {
    const ALL_BUT_HIV: &[&str] = &["pat", "obs-gp", "obs-dn", "doc-sw", "flag-hc"];
    const ALL: &[&str] = &["pat", "obs-gp", "obs-dn", "cond-hiv", "doc-sw", "flag-hc"];
    match (user, patient) {
        // Nurse: her team's caseload and her break-glass patient; HIV is not for nurses;
        // under an objection, only her own organisation's records, the Patient and the
        // Consent.
        ("dn", "p-caseload" | "p-bg") => ALL_BUT_HIV,
        ("dn", "p-objection") => &["pat", "obs-dn", "consent"],
        // GP: registered patients, everything (the HIV label allows GPs; it is their own).
        ("gp", "p-caseload" | "p-gp") => ALL,
        ("gp", "p-objection") => &["pat", "obs-gp", "cond-hiv", "consent"],
        // Social worker (council on the patient's care team): demographics, care
        // coordination and social care's own notes; no clinical records.
        ("sw", "p-caseload") => &["pat", "doc-sw", "flag-hc"],
        _ => &[],
    }
}

fn visible_ids(user: &str) -> BTreeSet<String> {
    PATIENTS
        .iter()
        .flat_map(|p| expected(user, p).iter().map(move |k| id(k, p)))
        .collect()
}

/// Every named record in the fixture.
fn universe() -> BTreeSet<String> {
    let mut u: BTreeSet<String> = PATIENTS
        .iter()
        .flat_map(|p| KINDS.iter().map(move |k| id(k, p)))
        .collect();
    u.insert(id("consent", "p-objection"));
    u
}

fn kind_of(record_id: &str) -> &'static str {
    [
        "obs-gp", "obs-dn", "cond-hiv", "doc-sw", "flag-hc", "consent",
    ]
    .into_iter()
    .find(|k| record_id.starts_with(&format!("{k}-")))
    .unwrap_or("pat")
}

fn ids_of(resources: &[Value]) -> BTreeSet<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub async fn load(hub: &Hub) {
    let file = tempfile::Builder::new()
        .suffix(".ndjson")
        .tempfile()
        .unwrap();
    let lines: Vec<String> = fixture().iter().map(Value::to_string).collect();
    std::fs::write(file.path(), lines.join("\n")).unwrap();
    let out = run_cli(&hub.db, &["import", &file.path().display().to_string()]);
    assert!(out.contains("rejected 0"), "{out}");
    for (user, role) in STAFF {
        let (ok, out, err) = run_cli_env(
            &hub.db,
            &[
                "admin",
                "create-user",
                "--username",
                user,
                "--role-id",
                role,
            ],
            &[("CARESHARE_PASSPHRASE", PASS)],
        );
        assert!(ok, "{out}{err}");
    }
    // The nurse's expired grant: given six hours ago for four hours.
    let storage = Stored::open(&hub.db).await;
    let now = chrono::Utc::now();
    storage
        .add_grant(&careshare_policy::BreakGlassGrant {
            user_id: "dn".into(),
            patient_id: "p-expired".into(),
            reason: "covering a colleague's visit yesterday".into(),
            granted_at: now - chrono::Duration::hours(6),
            expires_at: now - chrono::Duration::hours(2),
        })
        .await;
    storage.close().await;
}

async fn break_glass(hub: &Hub, s: &Session, patient: &str) -> StatusCode {
    let root = s.base.trim_end_matches("/fhir");
    let r = s
        .client
        .post(format!("{root}/careshare/break-glass"))
        .json(&json!({"patient": patient, "reason": "Covering for a colleague: urgent visit"}))
        .send()
        .await
        .unwrap();
    let _ = hub;
    json_of(r).await.0
}

/// A page-by-page search, checking that the first page's total counts what is visible.
async fn search_checked(s: &Session, query: &str) -> BTreeSet<String> {
    let (status, first) = s.get(query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {first}");
    let all = s.search_all(query).await;
    let ids = ids_of(&all);
    // Each match (each version, in a history) once.
    let versions: BTreeSet<(String, String)> = all
        .iter()
        .map(|r| (r["id"].to_string(), r["meta"]["versionId"].to_string()))
        .collect();
    assert_eq!(versions.len(), all.len(), "{query}: each match once");
    assert_eq!(
        first["total"].as_u64(),
        Some(all.len() as u64),
        "{query}: the total counts exactly what the caller may see: {first}"
    );
    ids
}

async fn matrix(hub: &Hub) {
    load(hub).await;
    let universe = universe();
    for (user, _) in STAFF {
        let s = hub.sign_in(user, PASS).await;
        if user == "dn" {
            assert_eq!(break_glass(hub, &s, "p-bg").await, StatusCode::CREATED);
        }
        let visible = visible_ids(user);
        let who = |what: &str| format!("{user}: {what}");

        // read, vread, instance history: visible, or exactly like a record that is not there.
        let (_, nothing) = s.get("Observation/no-such-record").await;
        let missing_words = diagnostics(&nothing).replace("no-such-record", "");
        for rid in &universe {
            let ty = type_of(kind_of(rid));
            let shown = visible.contains(rid);
            for path in [
                format!("{ty}/{rid}"),
                format!("{ty}/{rid}/_history/1"),
                format!("{ty}/{rid}/_history"),
            ] {
                let (status, body) = s.get(&path).await;
                if shown {
                    assert_eq!(
                        status,
                        StatusCode::OK,
                        "{}",
                        who(&format!("{path}: {body}"))
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{}",
                        who(&format!("{path}: {body}"))
                    );
                    if !path.contains("_history/") {
                        assert_eq!(
                            diagnostics(&body)
                                .replace(rid.as_str(), "")
                                .replace(ty, "Observation"),
                            missing_words,
                            "{}",
                            who(&format!("{path}: a hidden record answers as a missing one"))
                        );
                    }
                }
            }
        }

        // Searches, two to a page: exactly the visible records of each type, total included.
        for ty in [
            "Patient",
            "Observation",
            "Condition",
            "DocumentReference",
            "Flag",
            "Consent",
        ] {
            let want: BTreeSet<String> = visible
                .iter()
                .filter(|r| type_of(kind_of(r)) == ty)
                .cloned()
                .collect();
            let got = search_checked(&s, &format!("{ty}?_count=2")).await;
            let got: BTreeSet<String> = got.intersection(&universe).cloned().collect();
            assert_eq!(got, want, "{}", who(&format!("search {ty}")));
            // Type history, paged: the same records.
            let hist = search_checked(&s, &format!("{ty}/_history?_count=2")).await;
            let hist: BTreeSet<String> = hist.intersection(&universe).cloned().collect();
            assert_eq!(hist, want, "{}", who(&format!("{ty}/_history")));
        }
        // _summary=count counts only what is visible.
        let (_, c) = s.get("Observation?_summary=count").await;
        let n_obs = visible.iter().filter(|r| r.starts_with("obs-")).count();
        assert_eq!(c["total"].as_u64(), Some(n_obs as u64), "{}", who("count"));

        // System history: every named record it shows is visible, and all visible are shown.
        let sys = search_checked(&s, "_history?_count=7").await;
        let sys: BTreeSet<String> = sys.intersection(&universe).cloned().collect();
        assert_eq!(sys, visible, "{}", who("_history"));

        // _include brings in only patients the caller may see.
        let (_, b) = s
            .get("Observation?_include=Observation:subject&_count=100")
            .await;
        let included: BTreeSet<String> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["search"]["mode"] == "include")
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect();
        let visible_patients: BTreeSet<String> = visible
            .iter()
            .filter(|r| kind_of(r) == "pat")
            .cloned()
            .collect();
        assert!(
            included.is_subset(&visible_patients),
            "{}",
            who(&format!("_include showed {included:?}"))
        );

        // A batch of reads: each entry answers as the direct read would.
        let entries: Vec<Value> = universe
            .iter()
            .map(|rid| {
                json!({"request": {"method": "GET", "url": format!("{}/{rid}", type_of(kind_of(rid)))}})
            })
            .collect();
        let (status, b) = s
            .post(
                "",
                &json!({"resourceType": "Bundle", "type": "batch", "entry": entries}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        for (rid, e) in universe.iter().zip(b["entry"].as_array().unwrap()) {
            let code = e["response"]["status"].as_str().unwrap();
            let want = if visible.contains(rid) { "200" } else { "404" };
            assert!(
                code.starts_with(want),
                "{}",
                who(&format!("batch GET {rid}: {e}"))
            );
        }
    }

    // Writes, once every read has been checked against the fixture as loaded.
    for (user, _) in STAFF {
        let s = hub.sign_in(user, PASS).await;
        let who = |what: &str| format!("{user}: {what}");
        // Writing an observation for each patient: only with a care link or an active grant,
        // and only for roles that record clinical observations.
        for p in PATIENTS {
            let obs = json!({"resourceType": "Observation", "status": "final",
                "code": {"text": "pulse"}, "valueQuantity": {"value": 72, "unit": "/min"},
                "subject": reference(&format!("Patient/{p}"))});
            let (status, body) = s.post("Observation", &obs).await;
            let may = matches!(
                (user, p),
                ("dn", "p-caseload" | "p-bg" | "p-objection")
                    | ("gp", "p-caseload" | "p-gp" | "p-objection")
            );
            let want = if may {
                StatusCode::CREATED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(
                status,
                want,
                "{}",
                who(&format!("create Observation for {p}: {body}"))
            );
            if may {
                assert_eq!(
                    body["meta"]["source"],
                    format!(
                        "Organization/{}",
                        match user {
                            "dn" => "org-community",
                            _ => "org-gp",
                        }
                    ),
                    "{body}"
                );
            }
        }
        // Deleting: a hidden record is not there; a visible one of another organisation is
        // not theirs to delete.
        if user == "dn" {
            let (status, body) = s.delete("Condition/cond-hiv-p-caseload").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            let (status, body) = s.delete("Observation/obs-gp-p-caseload").await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            // Changing the GP's observation is not hers either; her own she may change.
            let (_, mut theirs) = s.get("Observation/obs-gp-p-caseload").await;
            theirs["status"] = json!("amended");
            let (status, body) = s.put("Observation/obs-gp-p-caseload", &theirs).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            let (_, mut mine) = s.get("Observation/obs-dn-p-caseload").await;
            mine["status"] = json!("amended");
            let (status, body) = s.put("Observation/obs-dn-p-caseload", &mine).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    // The privacy officer sees the nurse's break-glass reads as such in the audit trail,
    // and the refused attempts too.
    let po = hub.sign_in("po", PASS).await;
    let (status, b) = po.get_root("/careshare/audit?patient=p-bg").await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let events: Vec<&Value> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let purpose = |e: &Value| {
        e["agent"][0]["purposeOfUse"][0]["coding"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        events
            .iter()
            .any(|e| purpose(e) == "BTG" && e["outcome"] == "0"),
        "break-glass reads are recorded as BTG: {b}"
    );
    let (_, b) = po.get_root("/careshare/audit?patient=p-none").await;
    let refused: Vec<&Value> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|e| e["outcome"] != "0")
        .collect();
    assert!(
        !refused.is_empty(),
        "refused reads of p-none are in the audit trail: {b}"
    );
    // The privacy officer herself reads audit, not records (checked in the matrix above).
}
both!(matrix);
