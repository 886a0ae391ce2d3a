//! The official FHIR R4 examples: imported, read back losslessly, and imported twice with
//! no change.

use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{run_cli, Backend, Stored, TestDb};

/// The shared FHIR test data (beside the repository unless `CARESHARE_FHIR_DATA` says).
fn data_dir() -> PathBuf {
    std::env::var_os("CARESHARE_FHIR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// Files that must be refused, and a word of the reason.
const REFUSED: &[(&str, &str)] = &[
    ("bundle-with-no-type.json", "Bundle.type is required"),
    ("myconsent-resource.json", "Consent.scope is required"),
    // A contained resource referred to as '1' rather than '#1'.
    (
        "patient-container-example.json",
        "reference '1' is not of the form",
    ),
    // A transaction whose entry 9 is a DocumentReference sent to the Practitioner URL.
    ("r4-caredove-bundle.json", "does not match the request URL"),
    // A contained List whose item reference is a bare word.
    ("bundle-ea-testcase.json", "reference 'denom-EXM104'"),
];

fn strip(mut v: Value) -> Value {
    careshare_fhir::canonical::strip_server_meta(&mut v);
    v
}

fn summary_numbers(out: &str) -> (usize, usize, usize, usize) {
    let line = out.lines().next().unwrap_or_default();
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

async fn examples_round_trip(backend: Backend) {
    let dir = data_dir();
    assert!(
        dir.exists(),
        "FHIR example data not found at {}",
        dir.display()
    );
    let folders = [
        dir.join("fhir-r4-examples"),
        dir.join("fhir-r4-validator-bundles"),
    ];
    let db = TestDb::new(backend).await;
    let args: Vec<String> = ["import".to_string()]
        .into_iter()
        .chain(folders.iter().map(|f| f.display().to_string()))
        .collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = run_cli(&db, &argv);
    let (created, _, _, rejected) = summary_numbers(&first);
    for (file, why) in REFUSED {
        assert!(
            first.lines().any(|l| l.contains(file) && l.contains(why)),
            "{file} should be refused with '{why}':\n{first}"
        );
    }
    // Besides the known-bad files, only resources given again later (same type and id) are
    // set aside: the later one is imported.
    let rejected_at: Vec<&str> = first
        .lines()
        .filter_map(|l| l.strip_prefix("  rejected "))
        .filter_map(|l| l.split_once(": "))
        .map(|(at, why)| {
            assert!(
                REFUSED
                    .iter()
                    .any(|(f, w)| at.ends_with(f) && why.contains(w))
                    || why.starts_with("superseded: "),
                "unexpected refusal of {at}: {why}"
            );
            at
        })
        .collect();
    assert_eq!(rejected, rejected_at.len());
    assert!(created > 140, "{first}");

    // The same input again changes nothing.
    let second = run_cli(&db, &argv);
    let (c2, u2, unchanged, r2) = summary_numbers(&second);
    assert_eq!((c2, u2, r2), (0, 0, rejected), "{second}");
    assert_eq!(unchanged, created, "{second}");

    // What was imported reads back JSON-equal to the input (apart from meta.versionId and
    // meta.lastUpdated): for every resource with its own id, the last one given wins.
    let mut imported: std::collections::BTreeMap<(String, String), (String, Value, Vec<String>)> =
        Default::default();
    for folder in &folders {
        let mut files: Vec<_> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let at = file.display().to_string();
            let v = careshare_fhir::parse_json(&std::fs::read(&file).unwrap()).unwrap();
            let full_urls: Vec<String> = v["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["fullUrl"].as_str().map(str::to_string))
                .collect();
            let located: Vec<(String, Value)> = if v["resourceType"] != "Bundle" {
                vec![(at.clone(), v)]
            } else if matches!(v["type"].as_str(), Some("collection" | "searchset")) {
                v["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| {
                        Some((format!("{at} entry {i}"), e.get("resource")?.clone()))
                    })
                    .collect()
            } else {
                Vec::new() // transactions rewrite references by design; documents are stored whole
            };
            for (loc, r) in located {
                if rejected_at.contains(&loc.as_str())
                    || REFUSED.iter().any(|(f, _)| loc.ends_with(f))
                {
                    continue;
                }
                if let (Some(ty), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) {
                    imported.insert(
                        (ty.to_string(), id.to_string()),
                        (loc, r.clone(), full_urls.clone()),
                    );
                }
            }
        }
    }
    // Read straight from storage: most example types are in no patient's record and no
    // staff role may see them through the API.
    let storage = Stored::open(&db).await;
    let mut checked = 0;
    for ((ty, id), (loc, original, full_urls)) in &imported {
        let stored = storage
            .read(ty, id)
            .await
            .unwrap_or_else(|| panic!("{loc}: {ty}/{id} is not in storage"));
        if references_rewritten(original, full_urls) {
            continue;
        }
        assert_eq!(
            strip(stored),
            strip(original.clone()),
            "{loc}: {ty}/{id} changed in storage"
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} resources compared");
    storage.close().await;
    db.drop_db().await;
}

/// Collection entries that refer to each other by fullUrl are linked by their ids on import.
fn references_rewritten(v: &Value, full_urls: &[String]) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, c)| {
            (k == "reference" && c.as_str().is_some_and(|s| full_urls.iter().any(|u| u == s)))
                || references_rewritten(c, full_urls)
        }),
        Value::Array(a) => a.iter().any(|c| references_rewritten(c, full_urls)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_examples_round_trip_on_sqlite() {
    examples_round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_examples_round_trip_on_postgres() {
    examples_round_trip(Backend::Postgres).await;
}
