//! Search: parameters, paging, sorting, counting and includes.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{diagnostics, Hub, IDENTITY_VERSIONS};

fn ids(resources: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn seed(hub: &Hub) -> HashMap<&'static str, String> {
    let mut ids = HashMap::new();
    for (key, family, given, born, nhs) in [
        ("amy", "Khan", "Amy", "1950-02-03", "9434765919"),
        ("bob", "Kendal", "Bob", "1962-11-30", "9434765870"),
        ("cara", "Smith", "Cara", "1950-07-14", "9434765862"),
    ] {
        let (s, p) = hub
            .post(
                "Patient",
                &json!({"resourceType": "Patient",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
                "name": [{"family": family, "given": [given]}], "birthDate": born}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        ids.insert(key, p["id"].as_str().unwrap().to_string());
    }
    for (who, code, value, when, status) in [
        ("amy", "8867-4", 72, "2026-11-20T09:00:00Z", "final"),
        ("amy", "8867-4", 118, "2026-11-25T09:00:00Z", "final"),
        ("amy", "9279-1", 22, "2026-11-25T09:00:00Z", "preliminary"),
        ("bob", "8867-4", 64, "2026-10-01T09:00:00Z", "final"),
    ] {
        let (s, o) = hub
            .post("Observation", &json!({"resourceType": "Observation", "status": status,
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{}", ids[who])},
                "effectiveDateTime": when,
                "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
    }
    ids
}

async fn parameters_find_what_a_clinician_asks_for(hub: &Hub) {
    let p = seed(hub).await;
    let count = |q: &'static str| async move {
        let (s, b) = hub.get(&format!("{q}&_summary=count")).await;
        assert_eq!(s, StatusCode::OK, "{q}: {b}");
        b["total"].as_i64().unwrap()
    };
    assert_eq!(count("Patient?family=k").await, 2);
    assert_eq!(count("Patient?family=KHA").await, 1);
    assert_eq!(count("Patient?family:exact=Khan").await, 1);
    assert_eq!(count("Patient?family:exact=khan").await, 0);
    assert_eq!(count("Patient?name:contains=mit").await, 1);
    assert_eq!(count("Patient?given=amy,bob").await, 2);
    assert_eq!(count("Patient?birthdate=1950").await, 2);
    assert_eq!(count("Patient?birthdate=ge1960-01-01").await, 1);
    assert_eq!(count("Patient?birthdate=lt1950-07").await, 1);
    assert_eq!(
        count("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765870").await,
        1
    );
    assert_eq!(count("Patient?identifier=9434765870").await, 1);
    assert_eq!(count("Patient?identifier=other-system|9434765870").await, 0);
    assert_eq!(count("Observation?code=http://loinc.org|8867-4").await, 3);
    assert_eq!(count("Observation?code=8867-4&date=ge2026-11-01").await, 2);
    assert_eq!(count("Observation?status=preliminary").await, 1);
    assert_eq!(
        count("Observation?category=vital-signs&status=final").await,
        3
    );
    let amy = p["amy"].clone();
    let (s, b) = hub
        .get(&format!("Observation?patient={amy}&_summary=count"))
        .await;
    assert_eq!((s, b["total"].as_i64()), (StatusCode::OK, Some(3)));
    let (_, b) = hub
        .get(&format!("Observation?subject=Patient/{amy}&_summary=count"))
        .await;
    assert_eq!(b["total"], 3);
    let (_, b) = hub.get(&format!("Patient?_id={amy}")).await;
    assert_eq!(b["entry"][0]["resource"]["name"][0]["family"], "Khan");

    // _include brings the patient once, marked as included.
    let (_, b) = hub
        .get(&format!(
            "Observation?patient={amy}&_include=Observation:patient"
        ))
        .await;
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .count(),
        3
    );
    let included: Vec<&Value> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1);
    assert_eq!(included[0]["resource"]["id"], amy.as_str());

    // Newest first.
    let (_, b) = hub.get("Observation?_sort=-_lastUpdated&_count=1").await;
    assert_eq!(
        b["entry"][0]["resource"]["subject"]["reference"],
        format!("Patient/{}", p["bob"])
    );

    // Refusals, never a broader result.
    for q in [
        "Patient?birthdate=soon",
        "Observation?subject=123",
        "Patient?family:phonetic=kan",
        "Observation?_has:Patient:x=y",
        "Observation?value-quantity=72",
    ] {
        let (s, b) = hub.get(q).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q} should be refused: {b}");
        assert!(!diagnostics(&b).is_empty());
    }
}
both!(parameters_find_what_a_clinician_asks_for);

async fn paging_visits_each_match_once_while_data_changes(hub: &Hub) {
    for i in 0..23 {
        hub.post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": format!("Pager{i:02}")}]}),
        )
        .await;
    }
    for sort in ["", "&_sort=_lastUpdated", "&_sort=-_lastUpdated"] {
        // The matches when paging starts (earlier rounds added some).
        let expected = ids(&hub.search_all("Patient?family=pager&_count=1000").await);
        let (s, mut bundle) = hub
            .get(&format!("Patient?family=pager&_count=5{sort}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(bundle["total"], expected.len());
        let mut seen = Vec::new();
        let mut page = 0;
        loop {
            for e in bundle["entry"].as_array().cloned().unwrap_or_default() {
                seen.push(e["resource"]["id"].as_str().unwrap().to_string());
            }
            // The data changes between pages: a new match, and an update of a seen match.
            page += 1;
            let (_, _) = hub
                .post("Patient", &json!({"resourceType": "Patient", "name": [{"family": format!("Pager-new-{page}")}]}))
                .await;
            let first = seen[0].clone();
            let (_, mut cur) = hub.get(&format!("Patient/{first}")).await;
            cur["active"] = json!(page % 2 == 0);
            hub.put(&format!("Patient/{first}"), &cur).await;
            let next = bundle["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == "next")
                .map(|l| l["url"].as_str().unwrap().to_string());
            match next {
                Some(url) => {
                    let r = hub.client.get(url).send().await.unwrap();
                    bundle = r.json().await.unwrap();
                }
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(
            sorted, expected,
            "each original match exactly once ({sort})"
        );
        assert_eq!(page, expected.len().div_ceil(5));
    }
    // New patients from the paging are found by a fresh search.
    let all = hub.search_all("Patient?family=pager&_count=50").await;
    assert_eq!(ids(&all).len(), 23 + 5 + 6 + 7);
}
both!(paging_visits_each_match_once_while_data_changes);

async fn history_pages_and_since(hub: &Hub) {
    for i in 0..7 {
        hub.post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": format!("H{i}")}]}),
        )
        .await;
    }
    let all = hub.search_all("_history?_count=3").await;
    assert_eq!(all.len() as i64, 7 + IDENTITY_VERSIONS);
    let (_, b) = hub.get("Patient/_history?_count=2").await;
    assert_eq!(b["total"], 7);
    assert_eq!(b["entry"].as_array().unwrap().len(), 2);
    let (_, b) = hub.get("_history?_since=2999-01-01T00:00:00Z").await;
    assert_eq!(b["total"], 0);
    let (s, b) = hub.get("_history?_elements=id").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}
both!(history_pages_and_since);
