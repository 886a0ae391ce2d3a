//! Create, read, update, delete, versions, history and errors: what a FHIR client author checks.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::harness::{diagnostics, Hub, IDENTITY_VERSIONS, TESTER_ORG};

fn patient(family: &str) -> serde_json::Value {
    let mut p = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
        "name": [{"family": family, "given": ["Amy"]}],
        "birthDate": "1950-02-03",
        "futureElement": {"kept": true}
    });
    // Written as text so that the decimal keeps its trailing zero.
    p["extension"] = serde_json::from_str(
        r#"[{"url": "http://example.org/unknown-to-the-hub", "valueDecimal": 1.50}]"#,
    )
    .unwrap();
    p
}

async fn versions_and_history(hub: &Hub) {
    let (s, created) = hub.post("Patient", &patient("Khan")).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["meta"]["versionId"], "1");
    // Written in the name of the writer's organisation.
    assert_eq!(
        created["meta"]["source"],
        format!("Organization/{TESTER_ORG}")
    );
    // Unknown elements and decimal precision are kept exactly.
    assert_eq!(created["futureElement"], json!({"kept": true}));
    assert_eq!(
        serde_json::to_string(&created["extension"][0]["valueDecimal"]).unwrap(),
        "1.50"
    );

    let r = hub
        .request(Method::GET, &format!("Patient/{id}"), None)
        .await;
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/fhir+json"));

    let mut changed = created.clone();
    changed["name"][0]["family"] = json!("Khan-Smith");
    let (s, updated) = hub.put(&format!("Patient/{id}"), &changed).await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(updated["meta"]["versionId"], "2");

    // The same content again writes no new version.
    let (s, same) = hub.put(&format!("Patient/{id}"), &changed).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(same["meta"]["versionId"], "2");

    let (s, v1) = hub.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v1["name"][0]["family"], "Khan");

    let (s, _) = hub.delete(&format!("Patient/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, oo) = hub.get(&format!("Patient/{id}")).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(diagnostics(&oo).contains("deleted"));

    let (s, h) = hub.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["type"], "history");
    assert_eq!(h["total"], 3);
    let methods: Vec<&str> = h["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);

    // Recreated after deletion: the history continues.
    let (s, again) = hub.put(&format!("Patient/{id}"), &changed).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again["meta"]["versionId"], "4");
}
both!(versions_and_history);

async fn update_creates_with_the_clients_id(hub: &Hub) {
    let mut p = patient("Jones");
    p["id"] = json!("client-chosen-1");
    let (s, body) = hub.put("Patient/client-chosen-1", &p).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, read) = hub.get("Patient/client-chosen-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read["name"][0]["family"], "Jones");
}
both!(update_creates_with_the_clients_id);

async fn stale_if_match_is_refused(hub: &Hub) {
    let (_, created) = hub.post("Patient", &patient("Khan")).await;
    let id = created["id"].as_str().unwrap();
    let mut v2 = created.clone();
    v2["active"] = json!(true);
    hub.put(&format!("Patient/{id}"), &v2).await;

    let mut stale = created.clone();
    stale["active"] = json!(false);
    let r = hub
        .client
        .put(hub.url(&format!("Patient/{id}")))
        .header("content-type", "application/fhir+json")
        .header("if-match", "W/\"1\"")
        .body(stale.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let (_, current) = hub.get(&format!("Patient/{id}")).await;
    assert_eq!(current["active"], true, "a refused update changes nothing");
    assert_eq!(current["meta"]["versionId"], "2");

    let r = hub
        .client
        .delete(hub.url(&format!("Patient/{id}")))
        .header("if-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let (s, _) = hub.get(&format!("Patient/{id}")).await;
    assert_eq!(s, StatusCode::OK);
}
both!(stale_if_match_is_refused);

async fn conditional_create_twice_makes_one(hub: &Hub) {
    let post = || async {
        hub.client
            .post(hub.url("Patient"))
            .header("content-type", "application/fhir+json")
            .header(
                "if-none-exist",
                "identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
            )
            .body(patient("Khan").to_string())
            .send()
            .await
            .unwrap()
    };
    let first = post().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = post().await;
    assert_eq!(second.status(), StatusCode::OK);
    let (_, b) = hub
        .get("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919&_summary=count")
        .await;
    assert_eq!(b["total"], 1);
}
both!(conditional_create_twice_makes_one);

async fn errors_are_operation_outcomes_with_the_right_status(hub: &Hub) {
    let raw = |method: Method, path: &str, ct: &str, body: Vec<u8>| {
        hub.client
            .request(method, hub.url(path))
            .header("content-type", ct.to_string())
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (raw(Method::POST, "Patient", "application/fhir+json", b"{not json".to_vec()).await.unwrap(), StatusCode::BAD_REQUEST, "not valid JSON"),
        (raw(Method::POST, "Patient", "text/plain", b"{}".to_vec()).await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type"),
        (raw(Method::POST, "Patient", "application/fhir+json", br#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#.to_vec()).await.unwrap(), StatusCode::BAD_REQUEST, "does not match"),
        (raw(Method::POST, "Observation", "application/fhir+json", br#"{"resourceType":"Observation","code":{"text":"x"}}"#.to_vec()).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "Observation.status is required"),
        (raw(Method::POST, "Observation", "application/fhir+json", br#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/not ok"}}"#.to_vec()).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "illegal id"),
        (raw(Method::PUT, "Patient/abc", "application/fhir+json", br#"{"resourceType":"Patient","id":"xyz"}"#.to_vec()).await.unwrap(), StatusCode::BAD_REQUEST, "does not match the URL"),
        (raw(Method::POST, "Patinet", "application/fhir+json", b"{}".to_vec()).await.unwrap(), StatusCode::NOT_FOUND, "not a FHIR R4 resource type"),
        (hub.client.get(hub.url("Patient/does-not-exist")).send().await.unwrap(), StatusCode::NOT_FOUND, "does not exist"),
        (hub.client.get(hub.url("Patient?nickname=x")).send().await.unwrap(), StatusCode::BAD_REQUEST, "unknown search parameter"),
        (hub.client.get(hub.url("Patient/a%20b")).send().await.unwrap(), StatusCode::BAD_REQUEST, "not a legal FHIR id"),
    ];
    for (r, expected, words) in cases {
        let status = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, expected, "{body}");
        assert!(ct.starts_with("application/fhir+json"));
        let d = diagnostics(&body);
        assert!(d.contains(words), "expected {words:?} in {d:?}");
    }
    // An oversize body is refused from its declared length, before it is sent.
    let status_line = oversize_post(hub).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    // Nothing was written by any of those.
    let (_, h) = hub.get("_history").await;
    assert_eq!(
        h["total"], IDENTITY_VERSIONS,
        "refused requests wrote nothing: {h}"
    );
}
both!(errors_are_operation_outcomes_with_the_right_status);

async fn capability_statement_tells_the_truth(hub: &Hub) {
    let (s, cs) = hub.get("metadata").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let security = cs["rest"][0]["security"]["description"].as_str().unwrap();
    assert!(security.contains("Bearer"), "{security}");
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    let names: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in [
        "_id",
        "_lastUpdated",
        "identifier",
        "name",
        "family",
        "given",
        "birthdate",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
        // Every advertised parameter is accepted.
        let (s, b) = hub.get(&format!("Patient?{n}=x&_summary=count")).await;
        assert!(
            s == StatusCode::OK || diagnostics(&b).contains("invalid value"),
            "{n}: {b}"
        );
    }
}
both!(capability_statement_tells_the_truth);

/// Declares a 33 MiB body and reads the hub's answer without sending the body.
async fn oversize_post(hub: &Hub) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let addr = hub
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/fhir")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /fhir/Patient HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
        hub.token,
        33 * 1024 * 1024
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_line(&mut line),
    )
    .await
    .expect("the hub answers an oversize request without waiting for its body")
    .unwrap();
    line
}

async fn every_fhir_request_needs_a_caller_and_is_audited(hub: &Hub) {
    let anonymous = reqwest::Client::new();
    let r = anonymous.get(hub.url("Patient")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let oo: serde_json::Value = r.json().await.unwrap();
    assert!(diagnostics(&oo).contains("sign in"), "{oo}");
    let r = anonymous.get(hub.url("metadata")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the CapabilityStatement is open"
    );

    let (_, p) = hub.post("Patient", &patient("Audited")).await;
    let id = p["id"].as_str().unwrap().to_string();
    hub.post(
        "Observation",
        &json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "pulse"}, "subject": {"reference": format!("Patient/{id}")}}),
    )
    .await;
    hub.get(&format!("Patient/{id}")).await;
    hub.get(&format!("Observation?patient={id}")).await;
    hub.get("Patient/no-such-patient").await;
    let (ok, out, err) = crate::harness::run_cli_env(
        &hub.db,
        &["audit", "list", "--patient", &id, "--limit", "50"],
        &[],
    );
    assert!(ok, "{err}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let subtypes: Vec<&str> = events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        subtypes,
        ["search-type", "read", "create", "create"],
        "newest first: {subtypes:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["agent"][0]["who"]["display"] == crate::harness::TESTER));
    assert!(events.iter().all(|e| e["outcome"] == "0"));
    // A refused request is audited too.
    let (_, out, _) = crate::harness::run_cli_env(&hub.db, &["audit", "list", "--limit", "1"], &[]);
    let last: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(last["outcome"], "4", "{last}");
    assert_eq!(
        last["entity"][0]["what"]["reference"],
        "Patient/no-such-patient"
    );
}
both!(every_fhir_request_needs_a_caller_and_is_audited);

async fn records_are_written_in_the_writers_name(hub: &Hub) {
    let mut p = patient("Author");
    p["meta"] = json!({"source": "Organization/someone-else"});
    let (s, oo) = hub.post("Patient", &p).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{oo}");
    assert!(diagnostics(&oo).contains("your own organisation"), "{oo}");
    p["meta"] = json!({"source": "http://legacy-system.example/feed"});
    let (s, oo) = hub.post("Patient", &p).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{oo}");
    assert!(diagnostics(&oo).contains("meta.source"), "{oo}");
    let (_, h) = hub.get("Patient/_history").await;
    assert_eq!(h["total"], 0, "nothing written: {h}");
}
both!(records_are_written_in_the_writers_name);
