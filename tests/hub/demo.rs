//! The demo region: deterministic, valid, loadable twice without change.

use reqwest::StatusCode;

use crate::harness::{run_cli, Backend, Hub, Stored, TestDb};

const DEMO_PASSPHRASE: &str = "careshare-demo-2026";

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
    let storage = Stored::open(&db).await;
    let patients = storage.search("Patient").await;
    assert_eq!(patients.len(), 12);
    let hub = Hub::start_on(db);
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
        assert_eq!(s, StatusCode::OK, "GP practice {gp} is in the directory");
    }
    assert!(storage.search("EpisodeOfCare?status=active").await.len() >= 2);

    // The demo GP sees exactly the patients registered with her practice, page by page.
    let gp = hub.sign_in("gp.sarah.holmes", DEMO_PASSPHRASE).await;
    let (_, me) = gp.get_root("/auth/whoami").await;
    let role_id = me["practitioner_role"]
        .as_str()
        .unwrap()
        .trim_start_matches("PractitionerRole/");
    let role = storage.read("PractitionerRole", role_id).await.unwrap();
    let practice = role["organization"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let mut registered: Vec<String> = patients
        .iter()
        .filter(|p| p["generalPractitioner"][0]["reference"] == practice.as_str())
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    registered.sort();
    assert!(!registered.is_empty() && registered.len() < patients.len());
    let mut seen: Vec<String> = gp
        .search_all("Patient?_count=2")
        .await
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, registered);
    storage.close().await;
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
