//! One harness for every hub test: a real `careshare-hub serve` process on port 0 with a
//! fresh database, on SQLite or PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use sqlx::Connection;

pub const FHIR_JSON: &str = "application/fhir+json";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CARESHARE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".to_string())
}

/// A database for one test, removed by [`TestDb::drop_db`].
pub struct TestDb {
    pub url: String,
    backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
                TestDb {
                    url,
                    backend,
                    name: String::new(),
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("careshare_t_{}", uuid::Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL must be reachable for the hub's PostgreSQL tests");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').expect("database in URL").0;
                TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    name,
                    _dir: None,
                }
            }
        }
    }

    pub async fn drop_db(self) {
        if self.backend == Backend::Postgres {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut conn)
                .await;
            }
        }
    }
}

/// A running hub. `client` carries the bearer token of a signed-in test account.
pub struct Hub {
    pub db: TestDb,
    child: Child,
    /// Signed in as the test account.
    session: Session,
}

/// A signed-in caller of a hub's FHIR API.
pub struct Session {
    pub base: String,
    pub client: Client,
    pub token: String,
}

impl std::ops::Deref for Hub {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Session {
    /// A session with a token obtained elsewhere (e.g. a device's).
    pub fn with_token(base: &str, token: &str) -> Session {
        Session::new(base, token.to_string())
    }

    fn new(base: &str, token: String) -> Session {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        let client = Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        Session {
            base: base.to_string(),
            client,
            token,
        }
    }
}

/// What the store holds, read straight from the database past the access policy: the
/// tests' ground truth, worked out independently of what the API lets a caller see.
pub struct Stored {
    store: careshare_hub::store::Store,
}

impl Stored {
    pub async fn open(db: &TestDb) -> Stored {
        Stored {
            store: careshare_hub::store::Store::connect(&db.url)
                .await
                .expect("open the test database"),
        }
    }

    /// Every current resource matching a search (`Type?params`).
    pub async fn search(&self, query: &str) -> Vec<Value> {
        use careshare_hub::store::{self, Conn};
        let (ty, params) = query.split_once('?').unwrap_or((query, ""));
        let pairs = careshare_hub::engine::query_pairs(params);
        let req = careshare_fhir::search::parse_search(ty, &pairs).expect("a valid search");
        let mut conn = self.store.reader().await.expect("a connection");
        let mut conn = Conn::Any(&mut conn);
        let snapshot = store::snapshot_of(&mut conn, None).await.expect("snapshot");
        let rows = store::search_rows(&mut conn, &req, snapshot, None, 1_000_000)
            .await
            .expect("search");
        rows.iter()
            .filter_map(|s| s.resource().expect("stored JSON"))
            .collect()
    }

    /// The current version of `Type/id`, if there is one and it is not deleted.
    pub async fn read(&self, ty: &str, id: &str) -> Option<Value> {
        use careshare_hub::store::{self, Conn};
        let mut conn = self.store.reader().await.expect("a connection");
        store::read_current(&mut Conn::Any(&mut conn), ty, id)
            .await
            .expect("read")
            .and_then(|s| s.resource().expect("stored JSON"))
    }

    /// Stores a break-glass grant as the hub would (for grants in the past).
    pub async fn add_grant(&self, grant: &careshare_policy::BreakGlassGrant) {
        careshare_hub::access::store_grant(&self.store, grant)
            .await
            .expect("store the grant");
    }

    /// The database itself, for a test that sets up a state the API cannot make.
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.store.pool()
    }

    pub async fn close(self) {
        self.store.close().await;
    }
}

/// The account every harness hub signs in as.
pub const TESTER: &str = "tester";
pub const TESTER_PASSPHRASE: &str = "a passphrase for the test account";

/// The organisation the test account writes for.
pub const TESTER_ORG: &str = "org-test";

/// The test account's organisation and PractitionerRole (a source system's feed).
const TESTER_IDENTITY: &str = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
  {"resource": {"resourceType": "Organization", "id": "org-test", "name": "Test feed organisation"}},
  {"resource": {"resourceType": "PractitionerRole", "id": "role-tester", "active": true,
    "organization": {"reference": "Organization/org-test"},
    "code": [{"coding": [{"system": "https://careshare.example.org/fhir/CodeSystem/staff-role",
      "code": "source-system"}]}]}}
]}"#;

/// Versions the test account's identity adds to every harness database.
pub const IDENTITY_VERSIONS: i64 = 2;

/// Fast passphrase hashing for tests (production uses 600,000 iterations).
pub const TEST_PBKDF2_ITERATIONS: &str = "1000";

/// Runs a `careshare-hub` subcommand with extra environment, returning (success, stdout, stderr).
pub fn run_cli_env(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(hub_binary())
        .args(args)
        .env("CARESHARE_DB", &db.url)
        .env("CARESHARE_LOG", "warn")
        .env("CARESHARE_PBKDF2_ITERATIONS", TEST_PBKDF2_ITERATIONS)
        .envs(env.iter().copied())
        .output()
        .expect("run careshare-hub");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn hub_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_careshare-hub"))
}

/// Runs a `careshare-hub` subcommand to completion against `db`, returning stdout.
pub fn run_cli(db: &TestDb, args: &[&str]) -> String {
    let out = Command::new(hub_binary())
        .args(args)
        .arg("--db")
        .arg(&db.url)
        .env("CARESHARE_LOG", "warn")
        .env("CARESHARE_PBKDF2_ITERATIONS", TEST_PBKDF2_ITERATIONS)
        .output()
        .expect("run careshare-hub");
    assert!(
        out.status.success(),
        "careshare-hub {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Hub {
    pub async fn start(backend: Backend) -> Hub {
        let db = TestDb::new(backend).await;
        Hub::start_on(db)
    }

    pub fn start_on(db: TestDb) -> Hub {
        Hub::start_with(db, &[], None)
    }

    /// Starts a hub with extra environment, optionally sending its log to a file.
    pub fn start_with(db: TestDb, env: &[(&str, &str)], log: Option<std::fs::File>) -> Hub {
        let mut child = Command::new(hub_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &db.url])
            .env("CARESHARE_LOG", "warn")
            .env("CARESHARE_PBKDF2_ITERATIONS", TEST_PBKDF2_ITERATIONS)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(f) => Stdio::from(f),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("spawn careshare-hub");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the hub's first line");
        let base = line
            .trim()
            .strip_prefix("Careshare hub listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the hub: {line:?}"))
            .to_string();
        // The test account is a source system of its own organisation: it may write any
        // record in that organisation's name and read back what it wrote.
        let identity = tempfile::Builder::new()
            .suffix(".json")
            .tempfile()
            .expect("temp file");
        std::fs::write(identity.path(), TESTER_IDENTITY).expect("write the tester identity");
        run_cli(&db, &["import", &identity.path().display().to_string()]);
        let (ok, out, err) = run_cli_env(
            &db,
            &[
                "admin",
                "create-user",
                "--username",
                TESTER,
                "--role-id",
                "role-tester",
            ],
            &[("CARESHARE_PASSPHRASE", TESTER_PASSPHRASE)],
        );
        assert!(ok, "creating the test account: {out}{err}");
        let token = sign_in_blocking(&base, TESTER, TESTER_PASSPHRASE);
        Hub {
            db,
            child,
            session: Session::new(&base, token),
        }
    }

    /// Signs another account in.
    pub async fn sign_in(&self, user: &str, passphrase: &str) -> Session {
        let root = self.base.trim_end_matches("/fhir");
        let r = Client::new()
            .post(format!("{root}/auth/token"))
            .json(&serde_json::json!({"username": user, "passphrase": passphrase}))
            .send()
            .await
            .expect("sign-in reaches the hub");
        let (s, b) = json_of(r).await;
        assert_eq!(s, StatusCode::OK, "{user} signs in: {b}");
        Session::new(
            &self.base,
            b["access_token"].as_str().expect("a token").to_string(),
        )
    }

    /// Stops the hub (SIGTERM, then wait) and removes its database.
    pub async fn stop(mut self) {
        self.terminate();
        let db = std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                backend: Backend::Sqlite,
                name: String::new(),
                _dir: None,
            },
        );
        db.drop_db().await;
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Session {
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{path}", self.base)
        }
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(b) = body {
            rb = rb
                .header("content-type", FHIR_JSON)
                .body(serde_json::to_vec(b).expect("json"));
        }
        rb.send().await.expect("request reaches the hub")
    }

    /// GET a path outside `/fhir` (e.g. `/auth/whoami`).
    pub async fn get_root(&self, path: &str) -> (StatusCode, Value) {
        let root = self.base.trim_end_matches("/fhir");
        json_of(
            self.client
                .get(format!("{root}{path}"))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.request(Method::GET, path, None).await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        json_of(self.request(Method::POST, path, Some(body)).await).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        json_of(self.request(Method::PUT, path, Some(body)).await).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        json_of(self.request(Method::DELETE, path, None).await).await
    }

    /// Follows `next` links from a search, returning every entry's resource.
    pub async fn search_all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let (status, mut bundle) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {bundle}");
        loop {
            for e in bundle["entry"].as_array().cloned().unwrap_or_default() {
                if e["search"]["mode"] != "include" {
                    out.push(e["resource"].clone());
                }
            }
            let next = bundle["link"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_string);
            match next {
                Some(url) => {
                    let r = self.client.get(url).send().await.expect("next page");
                    let (s, b) = json_of(r).await;
                    assert_eq!(s, StatusCode::OK, "{b}");
                    bundle = b;
                }
                None => return out,
            }
        }
    }
}

/// Signs in over HTTP without an async runtime (the harness starts hubs from sync code).
fn sign_in_blocking(base: &str, user: &str, pass: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches("/fhir");
    let body = serde_json::json!({"username": user, "passphrase": pass}).to_string();
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the hub");
    write!(
        stream,
        "POST /auth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send sign-in");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read sign-in");
    let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("sign-in answer ({e}): {response}"));
    v["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.terminate();
    }
}

pub async fn json_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, v)
}

/// The OperationOutcome's first diagnostics.
pub fn diagnostics(oo: &Value) -> String {
    assert_eq!(
        oo["resourceType"], "OperationOutcome",
        "expected an OperationOutcome: {oo}"
    );
    oo["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Declares a test that runs on both stores: `both!(name, async_fn)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            use $crate::harness::{Backend, Hub};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let hub = Hub::start(Backend::Sqlite).await;
                super::$name(&hub).await;
                hub.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let hub = Hub::start(Backend::Postgres).await;
                super::$name(&hub).await;
                hub.stop().await;
            }
        }
    };
}
