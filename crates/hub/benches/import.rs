//! Import throughput against the physical limit, on SQLite and PostgreSQL.
//!
//! For a demo region (2,000 patients unless `CARESHARE_BENCH_PATIENTS` says), this loads
//! the region through the hub's import path (validation, identity, change detection,
//! indexing, versioning) and then writes the very rows that import produced into an empty
//! store of the same schema through the barest path the engine offers — one prepared
//! single-row INSERT per row in one transaction on SQLite, COPY on PostgreSQL — and prints
//! both rates and their ratio. Target: import at least 50% of the raw rate.

use std::time::Instant;

use careshare_hub::import::load_batches;
use careshare_hub::store::{copy_text, Store};
use sqlx::{Connection, Row};

const TABLES: &[(&str, &str, &str)] = &[
    (
        "resource_version",
        "seq, res_type, res_id, version, last_updated, deleted, content",
        "ISSIIIs",
    ),
    ("idx_token", "seq, res_type, param, system, code", "ISSSS"),
    ("idx_string", "seq, res_type, param, value, exact", "ISSSS"),
    ("idx_date", "seq, res_type, param, lo, hi", "ISSII"),
    ("idx_reference", "seq, res_type, param, target", "ISSS"),
    ("compartment", "seq, patient_id", "IS"),
];

#[derive(Clone)]
enum Cell {
    I(i64),
    S(String),
    Null,
}

async fn read_rows(store: &Store, table: &str, cols: &str, kinds: &str) -> Vec<Vec<Cell>> {
    let rows = sqlx::query(&format!("SELECT {cols} FROM {table} ORDER BY seq"))
        .fetch_all(store.pool())
        .await
        .expect("read rows");
    rows.iter()
        .map(|r| {
            kinds
                .chars()
                .enumerate()
                .map(|(i, k)| match k {
                    'I' => Cell::I(r.try_get::<i64, _>(i).expect("int")),
                    'S' => Cell::S(r.try_get::<String, _>(i).expect("text")),
                    _ => match r.try_get::<Option<String>, _>(i).expect("text or null") {
                        Some(s) => Cell::S(s),
                        None => Cell::Null,
                    },
                })
                .collect()
        })
        .collect()
}

/// Raw single-row prepared INSERTs in one transaction.
async fn raw_insert(store: &Store, data: &[(String, String, Vec<Vec<Cell>>)]) -> f64 {
    let start = Instant::now();
    let mut tx = store.pool().begin().await.expect("begin");
    for (table, cols, rows) in data {
        let n = cols.split(", ").count();
        let ps: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
        let sql = format!("INSERT INTO {table} ({cols}) VALUES ({})", ps.join(","));
        for row in rows {
            let mut q = sqlx::query(&sql);
            for c in row {
                q = match c {
                    Cell::I(i) => q.bind(*i),
                    Cell::S(s) => q.bind(s.as_str()),
                    Cell::Null => q.bind(None::<String>),
                };
            }
            q.execute(&mut *tx).await.expect("insert");
        }
    }
    tx.commit().await.expect("commit");
    start.elapsed().as_secs_f64()
}

/// COPY on PostgreSQL (the text is prepared before the clock starts).
async fn raw_copy(url: &str, data: &[(String, String, Vec<Vec<Cell>>)]) -> f64 {
    let payloads: Vec<(String, String)> = data
        .iter()
        .map(|(table, cols, rows)| {
            let mut text = String::new();
            for row in rows {
                for (i, c) in row.iter().enumerate() {
                    if i > 0 {
                        text.push('\t');
                    }
                    match c {
                        Cell::I(v) => text.push_str(&v.to_string()),
                        Cell::S(s) => copy_text(s, &mut text),
                        Cell::Null => text.push_str("\\N"),
                    }
                }
                text.push('\n');
            }
            (format!("COPY {table} ({cols}) FROM STDIN"), text)
        })
        .collect();
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let start = Instant::now();
    let mut tx = conn.begin().await.expect("begin");
    for (stmt, text) in &payloads {
        let mut copy = tx.copy_in_raw(stmt).await.expect("copy");
        copy.send(text.as_bytes()).await.expect("send");
        copy.finish().await.expect("finish");
    }
    tx.commit().await.expect("commit");
    start.elapsed().as_secs_f64()
}

struct Figures {
    resources: usize,
    rows: usize,
    import_secs: f64,
    raw_secs: f64,
}

async fn run(
    backend: &str,
    url_import: &str,
    url_raw: &str,
    region: &careshare_demo::Region,
    patients: usize,
) -> Figures {
    // The region is generated before the clock starts, as the raw rows are prepared before
    // theirs: both sides measure loading only.
    let structure = region.structure();
    let batches: Vec<Vec<serde_json::Value>> = region.patients().collect();
    let store = Store::connect(url_import).await.expect("store");
    let start = Instant::now();
    let summary = load_batches(&store, structure, batches, patients)
        .await
        .expect("import");
    let import_secs = start.elapsed().as_secs_f64();
    assert!(summary.rejected.is_empty(), "{summary}");
    let resources = summary.accepted();
    let mut data = Vec::new();
    let mut rows = 0;
    for (table, cols, kinds) in TABLES {
        let r = read_rows(&store, table, cols, kinds).await;
        rows += r.len();
        data.push((table.to_string(), cols.to_string(), r));
    }
    store.close().await;
    let raw = Store::connect(url_raw).await.expect("raw store");
    let raw_secs = if backend == "PostgreSQL" {
        raw.close().await;
        raw_copy(url_raw, &data).await
    } else {
        let s = raw_insert(&raw, &data).await;
        raw.close().await;
        s
    };
    Figures {
        resources,
        rows,
        import_secs,
        raw_secs,
    }
}

fn report(backend: &str, raw_kind: &str, f: &Figures) {
    let ours = f.resources as f64 / f.import_secs;
    let raw = f.resources as f64 / f.raw_secs;
    println!(
        "{backend:<10} import: {} resources ({} rows) in {:.2} s = {:>8.0} resources/s | raw {raw_kind}: {:.2} s = {:>8.0} resources/s | import/raw = {:.0}% (target >= 50%)",
        f.resources,
        f.rows,
        f.import_secs,
        ours,
        f.raw_secs,
        raw,
        100.0 * ours / raw
    );
}

fn main() {
    let patients: usize = std::env::var("CARESHARE_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let region = careshare_demo::Region::new(careshare_demo::RegionConfig::new(
        patients,
        1,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
    ))
    .expect("region");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("import benchmark: demo region of {patients} patients");
        // CARESHARE_BENCH_STORES=sqlite or =postgres runs one store only.
        let stores = std::env::var("CARESHARE_BENCH_STORES").unwrap_or_default();
        let dir = tempfile::tempdir().expect("temp dir");
        if stores.is_empty() || stores.contains("sqlite") {
            let a = format!("sqlite://{}", dir.path().join("import.sqlite").display());
            let b = format!("sqlite://{}", dir.path().join("raw.sqlite").display());
            let f = run("SQLite", &a, &b, &region, patients).await;
            report("SQLite", "prepared INSERT", &f);
        }
        if !(stores.is_empty() || stores.contains("postgres")) {
            return;
        }

        let admin = std::env::var("CARESHARE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".to_string());
        let base = admin
            .rsplit_once('/')
            .expect("database in URL")
            .0
            .to_string();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL");
        let names = ["careshare_bench_import", "careshare_bench_raw"];
        for n in names {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop");
            sqlx::query(&format!("CREATE DATABASE {n}"))
                .execute(&mut conn)
                .await
                .expect("create");
        }
        let f = run(
            "PostgreSQL",
            &format!("{base}/{}", names[0]),
            &format!("{base}/{}", names[1]),
            &region,
            patients,
        )
        .await;
        report("PostgreSQL", "COPY", &f);
        for n in names {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    });
}
