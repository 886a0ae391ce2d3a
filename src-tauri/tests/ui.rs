//! The real desktop app, driven through WebDriver (tauri-driver + WebKitWebDriver) against
//! a real hub serving a demo region, as a district nurse and a GP use it.
//!
//! Run under a display (`cargo xtask test` runs `xvfb-run -a cargo test`); without one
//! (no `DISPLAY`) the test says so and passes without running. Each step saves a
//! screenshot as `target/ui-screenshots/<scenario>-<step>.png`.
//!
//! Scenarios, in order (one hub throughout):
//! 1. `nurse`: enrol, lock and unlock (a wrong passphrase is counted), first sync with
//!    progress, the caseload, a patient whose alerts banner comes first; the hub stops and
//!    a visit is recorded offline (NEWS2 with its escalation, saved as pending) while the
//!    hub's copy of a task she completes changes; the hub restarts and the visit syncs,
//!    the task comes back as a conflict, which she resolves; break-glass to a patient
//!    outside her caseload.
//! 2. `gp`: a GP on their practice desktop sees the nurse's visit beside the hospital's
//!    discharge summary, each labelled with its source.
//! 3. `locking`: the nurse's app locks itself when idle, and five wrong passphrases lock
//!    the replica out; she signs in to the hub again and chooses a new passphrase.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use careshare_hub::api::{router, AppState};
use careshare_hub::auth::{Auth, AuthConfig, Secret};
use careshare_hub::store::{Conn, Store};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const HUB_PASS: &str = "careshare-demo-2026";
const NURSE: &str = "nurse.amy.khan";
const REPLICA_PASS: &str = "Heather-kettle-lantern-42";
const WAIT: Duration = Duration::from_secs(40);
const DRIVER_PORT: u16 = 4444;

/// The hub, in this process, on a fixed loopback address so that it can be stopped and
/// started again where the app expects it.
struct TestHub {
    addr: SocketAddr,
    store: Arc<Store>,
    config: Arc<AuthConfig>,
    /// The region's GPs' sign-in names.
    gps: Vec<String>,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    async fn start(patients: usize) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
        let store = Arc::new(Store::connect(&db).await.unwrap());
        let today = chrono::Utc::now().date_naive();
        let region =
            careshare_demo::Region::new(careshare_demo::RegionConfig::new(patients, 7, today))
                .unwrap();
        let loaded = careshare_hub::import::load_demo_region(&store, &region, patients)
            .await
            .unwrap();
        assert!(loaded.rejected.is_empty());
        let config = AuthConfig {
            pbkdf2_iterations: 1000,
            ..AuthConfig::default()
        };
        let auth = Auth {
            store: &store,
            config: &config,
        };
        for m in region.staff() {
            auth.put_account(&m.username, &m.practitioner_role_id, &Secret::new(HUB_PASS))
                .await
                .unwrap();
        }
        let gps = region
            .staff()
            .into_iter()
            .map(|m| m.username)
            .filter(|u| u.starts_with("gp."))
            .collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut hub = TestHub {
            addr: listener.local_addr().unwrap(),
            store,
            config: Arc::new(config),
            gps,
            stop: None,
            _dir: dir,
        };
        hub.serve(listener);
        hub
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = router(AppState {
            store: self.store.clone(),
            auth: self.config.clone(),
            base_url: None,
            sync_lock: Default::default(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        self.stop = Some((tx, task));
    }

    /// Stops serving: connections are refused until [`TestHub::restart`].
    async fn stop(&mut self) {
        if let Some((tx, task)) = self.stop.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Current resources of `resource_type` (ground truth, read from storage).
    async fn current(&self, resource_type: &str) -> Vec<Value> {
        let mut conn = self.store.reader().await.unwrap();
        Conn::Any(&mut conn)
            .fetch_strings(
                "SELECT content FROM resource_version WHERE res_type = $1 \
                 AND superseded_seq IS NULL AND deleted = 0",
                &[careshare_hub::store::Arg::S(resource_type.into())],
                "content",
            )
            .await
            .unwrap()
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect()
    }

    /// The patient's current resources of `resource_type`.
    async fn of_patient(&self, resource_type: &str, patient: &str) -> Vec<Value> {
        let reference = format!("\"Patient/{patient}\"");
        self.current(resource_type)
            .await
            .into_iter()
            .filter(|r| r.to_string().contains(&reference))
            .collect()
    }

    /// Whether `username` may open the patient now, as the hub decides.
    async fn may_open(&self, username: &str, patient: &str) -> bool {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{}/auth/token", self.url()))
            .json(&json!({"username": username, "passphrase": HUB_PASS}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access: Value = http
            .get(format!(
                "{}/careshare/patients/{patient}/access",
                self.url()
            ))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        access["visible"] == json!(true)
    }

    /// Writes `resource` as a hub-side system would (another clinician's change).
    async fn write(&self, resource: Value) {
        let target = careshare_fhir::bundle::Target::Instance {
            resource_type: resource["resourceType"].as_str().unwrap().to_string(),
            id: resource["id"].as_str().unwrap().to_string(),
        };
        careshare_hub::engine::update(
            &self.store,
            &mut careshare_hub::engine::Trusted,
            target,
            resource,
            None,
        )
        .await
        .unwrap();
    }
}

/// tauri-driver in its own process group, torn down with SIGTERM to the whole group so
/// that WebKitWebDriver goes too (SIGKILL would leave it holding its port).
struct Driver {
    child: Child,
}

impl Driver {
    fn start(env: &[(&str, String)]) -> Driver {
        let mut c = Command::new(tool("tauri-driver"));
        c.args([
            "--port",
            &DRIVER_PORT.to_string(),
            "--native-port",
            &(DRIVER_PORT + 1).to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .spawn()
            .expect("tauri-driver (cargo xtask test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not listen on {DRIVER_PORT}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        // Nothing may be left listening for the next session.
        let deadline = Instant::now() + Duration::from_secs(10);
        while (std::net::TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_ok()
            || std::net::TcpStream::connect(("127.0.0.1", DRIVER_PORT + 1)).is_ok())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn tool(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match home.map(|h| h.join("bin").join(name)) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from(name),
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One app session: the real app binary, launched by WebDriver.
struct App {
    client: Client,
    scenario: &'static str,
    step: u32,
    _driver: Driver,
}

impl App {
    async fn launch(scenario: &'static str, env: &[(&str, String)]) -> App {
        let driver = Driver::start(env);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("wry"));
        caps.insert(
            "tauri:options".into(),
            json!({"application": env!("CARGO_BIN_EXE_careshare-desktop")}),
        );
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
            .await
            .expect("a WebDriver session with the app");
        App {
            client,
            scenario,
            step: 0,
            _driver: driver,
        }
    }

    /// Saves `target/ui-screenshots/<scenario>-<nn>-<name>.png` once WebKit has painted.
    async fn shot(&mut self, name: &str) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.step += 1;
        let png = self.client.screenshot().await.unwrap();
        let file = screenshot_dir().join(format!("{}-{:02}-{name}.png", self.scenario, self.step));
        std::fs::write(file, png).unwrap();
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no {css} ({e})", self.scenario))
    }

    async fn all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    async fn present(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        if !text.is_empty() {
            e.send_keys(text).await.unwrap();
        }
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element's text satisfies `ok`; returns it.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.ok(),
                Err(_) => None,
            };
            if let Some(t) = &found {
                if ok(t) {
                    return t.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: {css} never showed {what} (last: {found:?})",
                self.scenario
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `css` matches something.
    async fn wait_for(&self, css: &str) {
        self.find(css).await;
    }

    /// Waits until `css` matches nothing.
    async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        while self.present(css).await {
            assert!(Instant::now() < deadline, "{}: {css} stayed", self.scenario);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every visible form control on the screen has a label (a `<label for>`, a wrapping
    /// label or an `aria-label`), and every button a name.
    async fn assert_labelled(&self, screen: &str) {
        let unlabelled = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('input, select, textarea, button'))
                   .filter(e => e.offsetParent !== null && e.type !== 'hidden')
                   .filter(e => e.tagName === 'BUTTON'
                       ? !(e.textContent.trim() || e.getAttribute('aria-label'))
                       : !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                           || e.getAttribute('aria-labelledby')))
                   .map(e => e.outerHTML.slice(0, 120));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            unlabelled,
            json!([]),
            "{}: {screen}: controls without a label",
            self.scenario
        );
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.unwrap()
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }

    /// Unlocks with `passphrase` from the unlock screen.
    async fn unlock(&self, passphrase: &str) {
        self.type_into("#unlock-passphrase", passphrase).await;
        self.click("#unlock-submit").await;
    }

    /// The caseload's patient ids, once the caseload shows.
    async fn caseload_ids(&self) -> Vec<String> {
        self.wait_for("#caseload .caseload-row").await;
        let mut ids = Vec::new();
        for row in self.all("#caseload .caseload-row").await {
            ids.push(row.attr("data-patient-id").await.unwrap().unwrap());
        }
        ids
    }

    async fn open_patient(&self, id: &str) {
        self.click("#nav-caseload").await;
        self.click(&format!(".caseload-row[data-patient-id='{id}']"))
            .await;
        self.wait_for(&format!("#patient-summary[data-patient-id='{id}']"))
            .await;
    }
}

fn app_env(dir: &Path, hub: &TestHub, idle_seconds: u64) -> Vec<(&'static str, String)> {
    vec![
        ("CARESHARE_DIR", dir.display().to_string()),
        ("CARESHARE_HUB_URL", hub.url()),
        ("CARESHARE_REPLICA_ITERATIONS", "1000".into()),
        ("CARESHARE_IDLE_LOCK_SECONDS", idle_seconds.to_string()),
        ("CARESHARE_SYNC_INTERVAL_SECONDS", "3".into()),
    ]
}

async fn enrol(app: &mut App, username: &str, device: &str) {
    app.wait_for("#enrol-submit").await;
    app.type_into("#enrol-username", username).await;
    app.type_into("#enrol-hub-passphrase", HUB_PASS).await;
    app.type_into("#enrol-device-name", device).await;
    app.type_into("#enrol-passphrase", "short").await;
    app.wait_text("#passphrase-strength", "a weak rating", |t| {
        t.to_lowercase().contains("weak")
    })
    .await;
    app.type_into("#enrol-passphrase", REPLICA_PASS).await;
    app.type_into("#enrol-passphrase-confirm", REPLICA_PASS)
        .await;
    app.wait_text("#passphrase-strength", "a strong rating", |t| {
        t.to_lowercase().contains("strong")
    })
    .await;
    app.assert_labelled("enrol").await;
    app.shot("enrol-form").await;
    app.click("#enrol-submit").await;
    app.wait_for("#app-header").await;
}

/// Fills in and sends the lockout screen's form.
async fn reauthorise(app: &App, hub_pass: &str, new_pass: &str) {
    app.type_into("#lockout-hub-passphrase", hub_pass).await;
    app.type_into("#lockout-passphrase", new_pass).await;
    app.type_into("#lockout-passphrase-confirm", new_pass).await;
    app.wait_text("#passphrase-strength", "a strong rating", |t| {
        t.to_lowercase().contains("strong")
    })
    .await;
    app.click("#lockout-submit").await;
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_and_a_gp_use_the_real_app() {
    if !has_display() {
        eprintln!("no display: run under xvfb-run (cargo xtask test does)");
        return;
    }
    let mut hub = TestHub::start(80).await;
    let root = tempfile::tempdir().unwrap();
    let nurse_dir = root.path().join("nurse-laptop");
    let gp_dir = root.path().join("gp-desktop");

    // ---- 1. The district nurse.
    let mut app = App::launch("nurse", &app_env(&nurse_dir, &hub, 3600)).await;
    app.shot("first-run").await;
    enrol(&mut app, NURSE, "Amy's laptop").await;

    // Lock now, then unlock: a wrong passphrase is counted.
    app.click("#lock-now").await;
    app.wait_for("#unlock-passphrase").await;
    app.unlock("not the passphrase").await;
    let error = app
        .wait_text("#unlock-error", "attempts left", |t| t.contains('4'))
        .await;
    assert!(error.contains("4 attempts left"), "{error}");
    app.assert_labelled("unlock").await;
    app.shot("unlock-wrong-passphrase").await;
    app.unlock(REPLICA_PASS).await;
    app.wait_for("#app-header").await;

    // The first sync shows progress, then the caseload with its freshness.
    if app.present("#sync-progress").await {
        app.shot("first-sync-progress").await;
    }
    app.wait_gone("#sync-progress").await;
    let caseload = app.caseload_ids().await;
    assert!(caseload.len() >= 3, "{caseload:?}");
    app.wait_text(".caseload-row .freshness", "a freshness line", |t| {
        t.contains("data as of")
    })
    .await;
    let nhs = app.text(".caseload-row .nhs-number").await;
    assert!(
        nhs.len() == 12 && nhs.chars().filter(|c| *c == ' ').count() == 2,
        "NHS number written 3-3-4: {nhs:?}"
    );
    assert_eq!(
        app.attr("#sync-bar", "data-online").await.as_deref(),
        Some("true")
    );
    app.assert_labelled("caseload").await;
    app.shot("caseload").await;

    // Search by name narrows the list.
    let first_name = app.text(".caseload-row .patient-name").await;
    let word = first_name
        .split(|c: char| !c.is_alphabetic())
        .find(|w| w.len() > 2)
        .unwrap()
        .to_string();
    app.type_into("#caseload-search", &word).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shown = app.all("#caseload .caseload-row").await.len();
    assert!(shown >= 1 && shown <= caseload.len(), "{shown}");
    app.type_into("#caseload-search", "").await;

    // A patient with alerts, an open task and a hospital discharge summary, and the GP at
    // their practice.
    let mut chosen = None;
    'patients: for id in &caseload {
        let flags = hub.of_patient("Flag", id).await;
        let open_task = hub.of_patient("Task", id).await.into_iter().find(|t| {
            ["requested", "ready", "in-progress", "accepted"]
                .contains(&t["status"].as_str().unwrap_or(""))
        });
        let discharge = hub
            .of_patient("DocumentReference", id)
            .await
            .into_iter()
            .any(|d| d.to_string().contains("18842-5"));
        if let (false, Some(task), true) = (flags.is_empty(), open_task, discharge) {
            for gp in &hub.gps {
                if hub.may_open(gp, id).await {
                    chosen = Some((id.clone(), task, gp.clone()));
                    break 'patients;
                }
            }
        }
    }
    let (patient, task, gp) =
        chosen.expect("a caseload patient with alerts, a task, a discharge summary and a GP");
    app.open_patient(&patient).await;
    // The banner is the summary's first element, and holds the alerts.
    let first_child = app
        .find("#patient-summary > :first-child")
        .await
        .attr("id")
        .await
        .unwrap();
    assert_eq!(first_child.as_deref(), Some("patient-banner"));
    assert!(app.present("#patient-banner .alert-item").await);
    assert!(app.present("#observations svg.trend-chart").await);
    app.assert_labelled("patient summary").await;
    app.shot("patient-summary").await;

    // ---- Offline: the hub goes away; the nurse records a visit.
    hub.stop().await;
    app.click("#sync-now").await;
    app.wait_text("#sync-bar", "offline", |t| {
        t.to_lowercase().contains("offline")
    })
    .await;
    app.click("#record-visit").await;
    app.wait_for("#visit-form").await;
    for (field, value) in [
        ("#obs-respiration-rate", "23"),
        ("#obs-spo2", "94"),
        ("#obs-systolic", "98"),
        ("#obs-diastolic", "64"),
        ("#obs-pulse", "118"),
        ("#obs-temperature", "38.6"),
    ] {
        app.type_into(field, value).await;
    }
    app.click("#obs-air").await;
    // Not all seven yet: no total.
    let total = app.text("#news2-total").await;
    assert!(
        !total.chars().any(|c| c.is_ascii_digit()) || total.contains("ncomplete"),
        "{total:?}"
    );
    app.find("#obs-consciousness")
        .await
        .select_by_value("A")
        .await
        .unwrap();
    // RR 23 → 2, SpO2 94 → 1, air 0, SBP 98 → 2, pulse 118 → 2, A 0, 38.6 → 1: 8, high.
    app.wait_text("#news2-total", "8", |t| t.contains('8'))
        .await;
    assert_eq!(app.text("#news2-band").await.trim(), "high");
    let prompt = app.text("#news2-prompt").await;
    assert!(prompt.contains("999"), "{prompt}");
    app.type_into("#wound-site", "left lower leg").await;
    app.type_into("#wound-length", "4.5").await;
    app.type_into("#wound-width", "3").await;
    app.type_into(
        "#visit-note",
        "Visit note: feverish and breathless since last night; GP called, 999 advised.",
    )
    .await;
    let task_id = task["id"].as_str().unwrap().to_string();
    app.click(&format!(".task-complete[data-task-id='{task_id}']"))
        .await;
    app.assert_labelled("visit form").await;
    app.shot("visit-offline-news2").await;
    app.click("#visit-save").await;
    app.wait_for(&format!("#patient-summary[data-patient-id='{patient}']"))
        .await;
    app.wait_for("#patient-summary .pending-badge").await;
    app.wait_text("#sync-pending", "pending edits", |t| {
        t.chars().any(|c| c.is_ascii_digit() && c != '0')
    })
    .await;
    app.shot("visit-saved-pending").await;

    // Meanwhile, on the hub, someone else changes the same task.
    let mut theirs = hub
        .current("Task")
        .await
        .into_iter()
        .find(|t| t["id"] == task["id"])
        .unwrap();
    theirs["status"] = json!("on-hold");
    hub.write(theirs).await;

    // ---- The hub is back: the visit syncs, the task conflicts.
    hub.restart().await;
    app.click("#sync-now").await;
    app.wait_text("#nav-conflicts", "one conflict", |t| t.contains('1'))
        .await;
    app.wait_text("#sync-pending", "nothing left to send", |t| {
        !t.chars().any(|c| c.is_ascii_digit() && c != '0')
    })
    .await;
    assert_eq!(
        app.attr("#sync-bar", "data-online").await.as_deref(),
        Some("true")
    );
    let notes = hub.of_patient("DocumentReference", &patient).await;
    assert!(
        notes
            .iter()
            .any(|d| d.to_string().contains("34746-8") && d["meta"]["source"].as_str().is_some()),
        "the visit note reached the hub"
    );
    let news2 = hub.of_patient("Observation", &patient).await;
    assert!(
        news2
            .iter()
            .any(|o| o.to_string().contains("1104051000000101")
                && o["valueQuantity"]["value"] == json!(8)),
        "the NEWS2 total reached the hub"
    );
    app.click("#nav-conflicts").await;
    app.wait_for("#conflicts .conflict").await;
    let conflict_text = app.text("#conflicts .conflict").await;
    assert!(conflict_text.contains("completed"), "{conflict_text}");
    assert!(
        conflict_text.contains("on-hold") || conflict_text.contains("On hold"),
        "{conflict_text}"
    );
    app.assert_labelled("conflicts").await;
    app.shot("conflict-side-by-side").await;
    app.click("#conflicts .conflict .keep-mine").await;
    app.wait_for("#no-conflicts").await;
    app.click("#sync-now").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let now_task = hub
            .current("Task")
            .await
            .into_iter()
            .find(|t| t["id"] == task["id"])
            .unwrap();
        if now_task["status"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resolution reached the hub: {now_task}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let provenance = hub.of_patient("Provenance", &patient).await;
    assert!(!provenance.is_empty(), "the decision is recorded");
    app.shot("conflict-resolved").await;

    // ---- Break-glass: a patient outside her caseload, named by NHS number.
    let mut outside = None;
    for p in hub.current("Patient").await {
        let id = p["id"].as_str().unwrap();
        if !caseload.iter().any(|c| c == id) && !hub.may_open(NURSE, id).await {
            outside = Some(p);
            break;
        }
    }
    let outside = outside.expect("a patient outside her caseload");
    let outside_id = outside["id"].as_str().unwrap().to_string();
    let outside_nhs = outside["identifier"][0]["value"].as_str().unwrap();
    app.click("#nav-break-glass").await;
    app.type_into("#bg-nhs-number", outside_nhs).await;
    app.type_into(
        "#bg-reason",
        "Covering for a colleague: patient rang with a fall at home",
    )
    .await;
    app.assert_labelled("emergency access").await;
    app.shot("break-glass-form").await;
    app.click("#bg-submit").await;
    let deadline = Instant::now() + WAIT;
    let arrived = format!("#patient-summary[data-patient-id='{outside_id}']");
    // The grant shows until the patient's record arrives and opens.
    while !app.present("#bg-granted").await && !app.present(&arrived).await {
        if app.present("#bg-error").await {
            panic!("break-glass refused: {}", app.text("#bg-error").await);
        }
        assert!(Instant::now() < deadline, "no break-glass answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.wait_for(".break-glass-banner").await;
    app.wait_for(&format!("#patient-summary[data-patient-id='{outside_id}']"))
        .await;
    let banner = app.text(".break-glass-banner").await;
    assert!(banner.contains(':'), "the banner says until when: {banner}");
    app.shot("break-glass-patient").await;
    app.close().await;

    // ---- 2. The GP on the practice desktop.
    let mut app = App::launch("gp", &app_env(&gp_dir, &hub, 3600)).await;
    enrol(&mut app, &gp, "Practice desktop 3").await;
    app.wait_gone("#sync-progress").await;
    let gp_caseload = app.caseload_ids().await;
    assert!(gp_caseload.contains(&patient), "{gp_caseload:?}");
    app.open_patient(&patient).await;
    app.wait_for("#documents .document").await;
    // Today's visit note from the nursing team, and the hospital's discharge summary, each
    // labelled with who wrote it.
    let today = chrono::Local::now().format("%d/%m/%Y").to_string();
    let mut nurse_visit = None;
    let mut discharge = None;
    for d in app.all("#documents .document").await {
        let text = d.text().await.unwrap();
        let source = d
            .find(Locator::Css(".source-label"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(&today) && nurse_visit.is_none() {
            assert!(text.contains("Amy Khan"), "signed by the nurse: {text}");
            nurse_visit = Some(source);
        } else if text.to_lowercase().contains("discharge") && discharge.is_none() {
            discharge = Some(source);
        }
    }
    let nurse_visit = nurse_visit.expect("today's nursing visit note on the GP's desktop");
    let discharge = discharge.expect("the hospital discharge summary");
    assert_ne!(nurse_visit, discharge, "two organisations, each named");
    let mut sources = Vec::new();
    for label in app.all("#patient-summary .source-label").await {
        sources.push(label.text().await.unwrap());
    }
    sources.sort();
    sources.dedup();
    assert!(
        sources.len() >= 3,
        "the GP's own entries beside the hospital's and the nursing team's: {sources:?}"
    );
    // The nurse's NEWS2 of 8 is in the GP's recent observations.
    let observations = app.text("#observations").await;
    assert!(observations.contains("NEWS2"), "{observations}");
    // Scroll the documents up to just below the banner, which stays in view.
    app.client
        .execute(
            "const d = document.querySelector('#documents');
             const b = document.querySelector('#patient-banner');
             d.scrollIntoView({block: 'start'});
             let s = d.parentElement;
             while (s && s.scrollHeight <= s.clientHeight) { s = s.parentElement; }
             (s || document.scrollingElement).scrollBy(0, -(b.getBoundingClientRect().height + 24));",
            vec![],
        )
        .await
        .unwrap();
    app.shot("gp-sees-visit-and-discharge").await;
    app.close().await;

    // ---- 3. Locking: idle, then five wrong passphrases.
    let mut app = App::launch("locking", &app_env(&nurse_dir, &hub, 4)).await;
    app.wait_for("#unlock-passphrase").await;
    app.unlock(REPLICA_PASS).await;
    app.wait_for("#app-header").await;
    app.shot("unlocked").await;
    app.wait_for("#unlock-passphrase").await;
    app.shot("idle-locked").await;
    for attempt in 1..=5 {
        app.unlock(&format!("wrong passphrase {attempt}")).await;
        if attempt < 5 {
            app.wait_text("#unlock-error", "attempts left", |t| {
                t.contains(&(5 - attempt).to_string())
            })
            .await;
        }
    }
    let lockout = app.text("#lockout-screen").await;
    assert!(lockout.to_lowercase().contains("locked"), "{lockout}");
    app.assert_labelled("lockout").await;
    app.shot("locked-out").await;

    // She signs in to the hub again and chooses a new passphrase; a wrong hub passphrase
    // is refused in her terms first.
    let new_pass = "kettle harbour violet marmalade 7";
    reauthorise(&app, "not my hub passphrase", new_pass).await;
    let refused = app
        .wait_text("#lockout-error", "the hub's refusal", |t| {
            t.contains("did not accept")
        })
        .await;
    assert!(!refused.contains("not my hub passphrase"), "{refused}");
    app.shot("reauthorise-refused").await;
    reauthorise(&app, HUB_PASS, new_pass).await;
    app.wait_for("#app-header").await;
    app.shot("reauthorised").await;
    // Idle again; only the new passphrase opens it now.
    app.wait_for("#unlock-passphrase").await;
    app.unlock(REPLICA_PASS).await;
    app.wait_text("#unlock-error", "the old passphrase refused", |t| {
        t.contains("not right")
    })
    .await;
    app.unlock(new_pass).await;
    app.wait_for("#app-header").await;
    app.close().await;
    hub.stop().await;
}
