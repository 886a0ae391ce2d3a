//! The demo region: deterministic, valid, loadable twice without change.

use reqwest::StatusCode;

use crate::harness::{run_cli, Backend, Hub, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_byte_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite).await;
    let mut outs = Vec::new();
    for (i, seed) in ["5", "5", "6"].iter().enumerate() {
        let out = dir.path().join(format!("region{i}.ndjson"));
        run_cli(
            &db,
            &[
                "demo-region",
                "--patients",
                "12",
                "--seed",
                seed,
                "--today",
                "2026-11-26",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        outs.push(std::fs::read(out).unwrap());
    }
    assert!(!outs[0].is_empty());
    assert_eq!(outs[0], outs[1], "same seed, same bytes");
    assert_ne!(outs[0], outs[2], "another seed, another region");
}

async fn demo_region_loads_and_serves(backend: Backend) {
    let db = TestDb::new(backend).await;
    let args = [
        "demo-region",
        "--patients",
        "12",
        "--seed",
        "3",
        "--today",
        "2026-11-26",
    ];
    let first = run_cli(&db, &args);
    assert!(first.contains("rejected 0"), "{first}");
    let second = run_cli(&db, &args);
    assert!(
        second.starts_with("created 0, updated 0,"),
        "loading twice changes nothing: {second}"
    );
    let hub = Hub::start_on(db);
    let patients = hub.search_all("Patient?_count=5").await;
    assert_eq!(patients.len(), 12);
    for p in &patients {
        let nhs = p["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
            .unwrap()["value"]
            .as_str()
            .unwrap();
        assert!(careshare_demo::nhs_number_is_valid(nhs), "{nhs}");
        let gp = p["generalPractitioner"][0]["reference"].as_str().unwrap();
        let (s, _) = hub.get(gp).await;
        assert_eq!(s, StatusCode::OK, "GP practice {gp} exists");
    }
    let (_, b) = hub.get("EpisodeOfCare?status=active&_summary=count").await;
    assert!(b["total"].as_i64().unwrap() >= 2, "{b}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_region_loads_and_serves_on_sqlite() {
    demo_region_loads_and_serves(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_region_loads_and_serves_on_postgres() {
    demo_region_loads_and_serves(Backend::Postgres).await;
}
