//! Transaction and batch Bundles.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{Hub, IDENTITY_VERSIONS};

/// Versions written since the hub started (its test identity aside).
async fn total(hub: &Hub) -> i64 {
    hub.get("_history?_count=1").await.1["total"]
        .as_i64()
        .unwrap()
        - IDENTITY_VERSIONS
}

fn visit_bundle(bad_observation: bool) -> Value {
    let mut obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000001"},
        "encounter": {"reference": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000002"},
        "performer": [{"reference": "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|RXX"}],
        "valueQuantity": {"value": 88}});
    if bad_observation {
        obs.as_object_mut().unwrap().remove("status");
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Transact"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Encounter", "status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                      "subject": {"reference": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"fullUrl": "urn:uuid:6a3f2b4c-0000-4000-8000-000000000003",
         "resource": {"resourceType": "Organization", "name": "Calder Community Trust",
                      "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXX"}]},
         "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=https://fhir.nhs.uk/Id/ods-organization-code|RXX"}},
        {"resource": obs, "request": {"method": "POST", "url": "Observation"}}
    ]})
}

async fn transaction_links_new_resources_by_their_new_ids(hub: &Hub) {
    let (s, resp) = hub.post("", &visit_bundle(false)).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    assert_eq!(resp["type"], "transaction-response");
    let entries = resp["entry"].as_array().unwrap();
    assert!(entries
        .iter()
        .all(|e| e["response"]["status"] == "201 Created"));
    let patient_id = entries[0]["resource"]["id"].as_str().unwrap();
    let encounter_id = entries[1]["resource"]["id"].as_str().unwrap();
    let org_id = entries[2]["resource"]["id"].as_str().unwrap();
    let obs = &entries[3]["resource"];
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(
        obs["encounter"]["reference"],
        format!("Encounter/{encounter_id}")
    );
    // The conditional reference resolved to the organisation created in the same Bundle.
    assert_eq!(
        obs["performer"][0]["reference"],
        format!("Organization/{org_id}")
    );
    let (_, enc) = hub.get(&format!("Encounter/{encounter_id}")).await;
    assert_eq!(enc["subject"]["reference"], format!("Patient/{patient_id}"));

    // Posting the same Bundle again: the organisation already exists (If-None-Exist).
    let (s, resp) = hub.post("", &visit_bundle(false)).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    assert_eq!(resp["entry"][2]["response"]["status"], "200 OK");
    assert_eq!(resp["entry"][2]["resource"]["id"], org_id);
}
both!(transaction_links_new_resources_by_their_new_ids);

async fn a_transaction_with_one_bad_entry_writes_nothing(hub: &Hub) {
    let before = total(hub).await;
    let (s, oo) = hub.post("", &visit_bundle(true)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{oo}");
    assert_eq!(
        oo["issue"][0]["expression"][0],
        "Bundle.entry[3].Observation.status"
    );
    assert_eq!(total(hub).await, before, "nothing written");
    let (_, b) = hub.get("Patient?family=transact&_summary=count").await;
    assert_eq!(b["total"], 0);
}
both!(a_transaction_with_one_bad_entry_writes_nothing);

async fn two_entries_for_one_resource_conflict(hub: &Hub) {
    let p = json!({"resourceType": "Patient", "id": "twice"});
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": p, "request": {"method": "PUT", "url": "Patient/twice"}},
        {"resource": p, "request": {"method": "PUT", "url": "Patient/twice"}}]});
    let (s, oo) = hub.post("", &bundle).await;
    assert_eq!(s, StatusCode::CONFLICT, "{oo}");
    assert_eq!(total(hub).await, 0);
}
both!(two_entries_for_one_resource_conflict);

async fn batch_answers_each_entry_on_its_own(hub: &Hub) {
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"family": "Batch"}]}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Patient/nope"}}]});
    let (s, resp) = hub.post("", &bundle).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    assert_eq!(resp["type"], "batch-response");
    assert_eq!(resp["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(
        resp["entry"][1]["response"]["status"],
        "422 Unprocessable Entity"
    );
    assert_eq!(
        resp["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(resp["entry"][2]["response"]["status"], "404 Not Found");
    let (_, b) = hub.get("Patient?family=batch&_summary=count").await;
    assert_eq!(b["total"], 1);
}
both!(batch_answers_each_entry_on_its_own);

/// Many callers at once, writing and reading (each read writes its AuditEvents): every one
/// gets its answer, none an error because another wrote at the same moment, and every
/// write is there afterwards.
async fn many_callers_at_once_all_get_their_answer(hub: &Hub) {
    let before = total(hub).await;
    let (s, patient) = hub
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Busy"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{patient}");
    let id = patient["id"].as_str().unwrap().to_string();
    let mut calls = Vec::new();
    for i in 0..24 {
        let client = hub.client.clone();
        let base = hub.base.clone();
        let id = id.clone();
        calls.push(tokio::spawn(async move {
            let r = if i % 2 == 0 {
                client
                    .post(format!("{base}/Observation"))
                    .header("content-type", "application/fhir+json")
                    .body(
                        json!({"resourceType": "Observation", "status": "final",
                            "code": {"text": "pulse"}, "valueQuantity": {"value": 60 + i},
                            "subject": {"reference": format!("Patient/{id}")}})
                        .to_string(),
                    )
                    .send()
                    .await
            } else {
                client.get(format!("{base}/Patient/{id}")).send().await
            };
            let r = r.expect("the hub answers");
            (r.status(), r.text().await.unwrap_or_default())
        }));
    }
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
    }
    assert_eq!(total(hub).await, before + 1 + 12, "every write is there");
}
both!(many_callers_at_once_all_get_their_answer);
