//! The desktop core end to end: a real hub (in this process, on a small demo
//! region, behind a TCP proxy that can drop the network) and the real
//! encrypted replica, driven through `AppCore` exactly as the Tauri commands
//! drive it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use careshare_client::{HttpConfig, KeyParams, Passphrase, RetryPolicy, Session};
use careshare_desktop::core::{AppCore, Config, CoreError};
use careshare_hub::api::{router, AppState};
use careshare_hub::auth::{Auth, AuthConfig, Secret};
use careshare_hub::store::Store;
use careshare_view::api::{
    BreakGlassRequest, ConflictChoice, ElementPick, EnrolRequest, ObservationsForm, Phase,
    VisitForm, WoundForm,
};
use chrono::FixedOffset;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

const HUB_PASS: &str = "careshare-demo-2026";
const REPLICA_PASS: &str = "heather moorland lantern 42 kettle";
const NURSE: &str = "nurse.amy.khan";
const PATIENTS: usize = 60;

/// A hub serving a demo region from a fresh SQLite file.
struct TestHub {
    addr: SocketAddr,
    store: Arc<Store>,
    region: careshare_demo::Region,
    _dir: tempfile::TempDir,
}

impl TestHub {
    async fn start(patients: usize) -> TestHub {
        TestHub::start_with(
            patients,
            AuthConfig {
                pbkdf2_iterations: 1000,
                ..AuthConfig::default()
            },
        )
        .await
    }

    async fn start_with(patients: usize, config: AuthConfig) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
        let store = Arc::new(Store::connect(&db).await.unwrap());
        let today = chrono::Utc::now().date_naive();
        let region =
            careshare_demo::Region::new(careshare_demo::RegionConfig::new(patients, 11, today))
                .unwrap();
        let summary = careshare_hub::import::load_demo_region(&store, &region, patients)
            .await
            .unwrap();
        assert!(summary.rejected.is_empty());
        let auth = Auth {
            store: &store,
            config: &config,
        };
        for m in region.staff() {
            auth.put_account(&m.username, &m.practitioner_role_id, &Secret::new(HUB_PASS))
                .await
                .unwrap();
        }
        let app = router(AppState {
            store: store.clone(),
            auth: Arc::new(config),
            base_url: None,
            sync_lock: Default::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestHub {
            addr,
            store,
            region,
            _dir: dir,
        }
    }

    /// Updates a resource on the hub, as another organisation's system would.
    async fn update(&self, resource: &Value) {
        careshare_hub::engine::update(
            &self.store,
            &mut careshare_hub::engine::Trusted,
            careshare_fhir::bundle::Target::Instance {
                resource_type: resource["resourceType"].as_str().unwrap().to_string(),
                id: resource["id"].as_str().unwrap().to_string(),
            },
            resource.clone(),
            None,
        )
        .await
        .unwrap();
    }
}

/// A TCP proxy in front of the hub: `offline` closes its port and cuts every
/// open connection (the hub refuses connections, as with no signal);
/// `online` opens it again on the same port.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            target,
            accept: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: TcpListener) {
        let (target, connections) = (self.target, self.connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(conn.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    fn offline(&self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
        for conn in self.connections.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    async fn online(&self) {
        // The aborted accept task drops its listener; wait until the port is free.
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the proxy's port did not come back");
    }
}

fn config(dir: &std::path::Path, hub_url: &str) -> Config {
    Config {
        dir: dir.to_owned(),
        default_hub_url: hub_url.to_owned(),
        default_device_name: "Test laptop".into(),
        idle_lock: Duration::from_secs(3600),
        sync_interval: Duration::from_secs(3600),
        key_params: KeyParams {
            iterations: std::num::NonZeroU32::new(1000).unwrap(),
        },
        http: HttpConfig {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(20),
            },
            allow_insecure_http: false,
        },
        utc_offset: Some(FixedOffset::east_opt(0).unwrap()),
    }
}

fn enrolment(hub_url: &str, passphrase: &str) -> EnrolRequest {
    EnrolRequest {
        hub_url: hub_url.into(),
        username: NURSE.into(),
        hub_passphrase: HUB_PASS.into(),
        passphrase: passphrase.into(),
        device_name: "Amy's laptop".into(),
    }
}

async fn synced(core: &AppCore) {
    assert!(
        core.wait_for_sync(Duration::from_secs(120)).await,
        "the sync ended"
    );
}

fn code<T: std::fmt::Debug>(r: Result<T, CoreError>) -> String {
    r.expect_err("an error").code()
}

fn observations() -> ObservationsForm {
    ObservationsForm {
        respiration_rate: "22".into(),
        spo2: "95".into(),
        spo2_scale2: false,
        air_or_oxygen: "air".into(),
        systolic_bp: "105".into(),
        diastolic_bp: "70".into(),
        pulse: "112".into(),
        consciousness: "A".into(),
        temperature: "38.4".into(),
    }
}

fn is_nhs_3_3_4(s: &str) -> bool {
    let parts: Vec<&str> = s.split(' ').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [3, 3, 4]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurses_day_through_the_desktop_core() {
    let hub = TestHub::start(PATIENTS).await;
    let proxy = Proxy::start(hub.addr).await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("replica");
    let core = AppCore::new(config(&dir, &proxy.url()));

    // First run: the hub URL and a device name are offered.
    let status = core.app_status();
    assert_eq!(status.phase, Phase::FirstRun);
    let offered = status.user.unwrap();
    assert_eq!(offered.hub_url, proxy.url());
    assert_eq!(offered.device_name, "Test laptop");
    assert_eq!(code(core.caseload().await), "not-unlocked");

    // A weak replica passphrase is refused before anything happens.
    let weak = core.enrol(enrolment(&proxy.url(), "password1")).await;
    assert_eq!(code(weak), "invalid-input");
    assert_eq!(core.app_status().phase, Phase::FirstRun);

    // Morning sync.
    let status = core
        .enrol(enrolment(&proxy.url(), REPLICA_PASS))
        .await
        .unwrap();
    assert_eq!(status.phase, Phase::Unlocked);
    assert_eq!(status.user.as_ref().unwrap().username, NURSE);
    synced(&core).await;
    let status = core.app_status();
    assert_eq!(status.sync.online, Some(true), "{:?}", status.sync);
    assert!(status.sync.last_sync.is_some());
    assert!(status.sync.last_error.is_none(), "{:?}", status.sync);
    assert_eq!(status.sync.pending, 0);

    let caseload = core.caseload().await.unwrap();
    assert!(!caseload.patients.is_empty());
    assert!(
        caseload
            .patients
            .iter()
            .all(|p| is_nhs_3_3_4(&p.nhs_number)),
        "{:?}",
        caseload
            .patients
            .iter()
            .map(|p| &p.nhs_number)
            .collect::<Vec<_>>()
    );
    let visits: Vec<_> = caseload.patients.iter().map(|p| p.visit_today).collect();
    let first_without = visits
        .iter()
        .position(Option::is_none)
        .unwrap_or(visits.len());
    assert!(
        visits[first_without..].iter().all(Option::is_none),
        "today's visits first"
    );
    assert!(visits[..first_without].windows(2).all(|w| w[0] <= w[1]));
    assert!(caseload.patients.iter().all(|p| p.data_as_of.is_some()));

    // The patient with the first visit today (or the first on the list).
    let row = &caseload.patients[0];
    let summary = core.patient_summary(&row.patient_id).await.unwrap();
    assert_eq!(summary.patient.nhs_number, row.nhs_number);
    assert!(!summary.alerts.is_empty(), "caseload patients have alerts");
    assert!(
        !summary.allergies.is_empty(),
        "allergies, or no known allergy"
    );
    assert!(!summary.conditions.is_empty());
    assert!(!summary.care_plans.is_empty());
    assert!(
        summary.care_plans.iter().any(|e| e.source.own),
        "the nursing team's own care plan: {:?}",
        summary.care_plans[0].source
    );
    assert!(
        summary
            .alerts
            .iter()
            .chain(&summary.conditions)
            .all(|e| !e.source.organisation.starts_with("Organization/")),
        "organisations are named"
    );
    let news2 = summary.vitals.iter().find(|v| v.key == "news2").unwrap();
    assert!(!news2.points.is_empty(), "a NEWS2 trend from the visits");
    assert!(!summary.documents.is_empty());
    let open_tasks: Vec<String> = summary
        .tasks
        .iter()
        .filter(|t| t.open)
        .map(|t| t.id.clone())
        .collect();
    assert!(open_tasks.len() >= 2, "{:?}", summary.tasks);
    assert_eq!(
        code(core.patient_summary("no-such-patient").await),
        "not-found"
    );

    // Offline visit.
    proxy.offline();
    let refused = core
        .record_visit(VisitForm {
            patient_id: row.patient_id.clone(),
            observations: ObservationsForm {
                pulse: "fast".into(),
                ..observations()
            },
            ..VisitForm::default()
        })
        .await;
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), "invalid-input");
    assert!(refused.to_string().starts_with("pulse:"), "{refused}");
    assert_eq!(core.app_status().sync.pending, 0, "nothing saved");

    let saved = core
        .record_visit(VisitForm {
            patient_id: row.patient_id.clone(),
            observations: observations(),
            wound: Some(WoundForm {
                site: "Left lower leg".into(),
                length_cm: "4.2".into(),
                width_cm: "3.1".into(),
                depth_cm: "0.2".into(),
                description: "Granulating".into(),
            }),
            note: "Seen at home; dressing changed.".into(),
            completed_tasks: vec![open_tasks[0].clone()],
        })
        .await
        .unwrap();
    assert_eq!(saved.news2_total, Some(7));
    assert_eq!(saved.edits, 11, "7 parameters, NEWS2, wound, note, task");
    synced(&core).await;
    let status = core.app_status();
    assert!(status.sync.pending >= 1, "{:?}", status.sync);
    assert_eq!(status.sync.online, Some(false));
    assert_eq!(status.sync.last_error.as_ref().unwrap().code, "unreachable");
    let summary = core.patient_summary(&row.patient_id).await.unwrap();
    let done = summary
        .tasks
        .iter()
        .find(|t| t.id == open_tasks[0])
        .unwrap();
    assert!(done.entry.pending && !done.open);
    assert!(
        summary
            .vitals
            .iter()
            .find(|v| v.key == "news2")
            .unwrap()
            .points
            .last()
            .unwrap()
            .pending
    );
    assert!(summary.documents[0].entry.pending);
    assert_eq!(
        summary.documents[0].text.as_deref(),
        Some("Seen at home; dressing changed.")
    );
    assert_eq!(summary.recent_observations[0].title, "NEWS2 7");

    // Meanwhile the GP practice cancels the other task on the hub, which the
    // nurse completes offline: a conflict.
    let mut theirs = hub.read("Task", &open_tasks[1]).await;
    theirs["status"] = json!("cancelled");
    hub.update(&theirs).await;
    core.record_visit(VisitForm {
        patient_id: row.patient_id.clone(),
        completed_tasks: vec![open_tasks[1].clone()],
        ..VisitForm::default()
    })
    .await
    .unwrap();
    synced(&core).await;

    // Reconnect.
    proxy.online().await;
    core.sync_now().unwrap();
    synced(&core).await;
    let status = core.app_status();
    assert_eq!(status.sync.online, Some(true), "{:?}", status.sync);
    assert_eq!(status.sync.pending, 0, "{:?}", status.sync);
    assert_eq!(status.sync.conflicts, 1, "{:?}", status.sync);
    let conflicts = core.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.reference, format!("Task/{}", open_tasks[1]));
    assert_eq!(c.patient_name.as_deref(), Some(row.name.as_str()));
    let status_element = c.elements.iter().find(|e| e.path == "status").unwrap();
    assert_eq!(status_element.label, "Status");
    assert_eq!(status_element.mine, "completed");
    assert_eq!(status_element.theirs, "cancelled");
    core.resolve_conflict(
        c.id,
        ConflictChoice::Combined {
            picks: vec![ElementPick {
                path: "status".into(),
                take: "mine".into(),
                value: None,
            }],
        },
    )
    .await
    .unwrap();
    synced(&core).await;
    let status = core.app_status();
    assert_eq!(status.sync.conflicts, 0);
    assert_eq!(status.sync.pending, 0, "{:?}", status.sync);
    assert_eq!(
        hub.read("Task", &open_tasks[1]).await["status"],
        "completed"
    );
    assert_eq!(
        hub.read("Task", &open_tasks[0]).await["status"],
        "completed"
    );

    // Emergency access to a patient outside the caseload.
    let held: Vec<String> = caseload
        .patients
        .iter()
        .map(|p| p.patient_id.clone())
        .collect();
    let outsider = hub
        .region
        .profiles()
        .find(|p| p.caseload.is_none() && !held.contains(&p.patient_id))
        .unwrap();
    let typed = format!(
        "{} {} {}",
        &outsider.nhs_number[..3],
        &outsider.nhs_number[3..6],
        &outsider.nhs_number[6..]
    );
    let no_reason = core
        .break_glass(BreakGlassRequest {
            nhs_number: typed.clone(),
            reason: "  ".into(),
        })
        .await;
    assert_eq!(code(no_reason), "invalid-input");
    let bad_number = core
        .break_glass(BreakGlassRequest {
            nhs_number: "123 456".into(),
            reason: "Covering".into(),
        })
        .await;
    assert_eq!(code(bad_number), "invalid-input");
    let grant = core
        .break_glass(BreakGlassRequest {
            nhs_number: typed,
            reason: "Covering for a colleague: urgent visit".into(),
        })
        .await
        .unwrap();
    assert_eq!(grant.patient_id, outsider.patient_id);
    synced(&core).await;
    let status = core.app_status();
    assert_eq!(status.break_glass.len(), 1);
    assert!(
        status.break_glass[0].patient_name.is_some(),
        "{:?}",
        status.break_glass
    );
    let caseload = core.caseload().await.unwrap();
    let row = caseload
        .patients
        .iter()
        .find(|p| p.patient_id == outsider.patient_id)
        .expect("the patient is on the device");
    assert_eq!(row.break_glass_until, Some(grant.expires_at));

    // Locking, and wrong passphrases counted.
    let status = core.lock_now().await;
    assert_eq!(status.phase, Phase::Locked);
    assert_eq!(status.attempts_left, Some(5));
    assert_eq!(status.user.as_ref().unwrap().username, NURSE);
    assert_eq!(code(core.caseload().await), "not-unlocked");
    for left in [4, 3] {
        let wrong = core
            .unlock("not my passphrase".into(), None)
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), "wrong-passphrase");
        assert!(!wrong.to_string().contains("not my passphrase"));
        assert_eq!(core.app_status().attempts_left, Some(left));
    }
    let status = core.unlock(REPLICA_PASS.into(), None).await.unwrap();
    assert_eq!(status.phase, Phase::Unlocked);
    synced(&core).await;
    core.lock_now().await;
    assert_eq!(
        core.app_status().attempts_left,
        Some(5),
        "reset by the right one"
    );

    // Idle lock (a second core on the same replica, with a short timeout).
    let idle = AppCore::new(Config {
        idle_lock: Duration::from_secs(2),
        ..config(&dir, &proxy.url())
    });
    let _background = idle.spawn_background();
    idle.unlock(REPLICA_PASS.into(), None).await.unwrap();
    synced(&idle).await;
    idle.touch();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(idle.app_status().phase, Phase::Unlocked, "touched recently");
    idle.touch();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(idle.app_status().phase, Phase::Unlocked, "touched again");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(idle.app_status().phase, Phase::Locked, "locked when idle");
    assert_eq!(code(idle.caseload().await), "not-unlocked");

    // The laptop is reported lost: revoked, the next contact wipes it.
    let device_id = {
        let s = Session::open(&dir, &Passphrase::from(REPLICA_PASS), chrono::Utc::now()).unwrap();
        let id = s.device().device_id.clone();
        s.lock().unwrap();
        id
    };
    let auth_config = AuthConfig::default();
    Auth {
        store: &hub.store,
        config: &auth_config,
    }
    .revoke_device(&device_id, chrono::Utc::now().timestamp_micros())
    .await
    .unwrap();
    let unlocked = core.unlock(REPLICA_PASS.into(), None).await;
    // The replica opens (its lease is valid); the sync that follows is told to wipe.
    assert!(unlocked.is_ok(), "{unlocked:?}");
    synced(&core).await;
    let status = core.app_status();
    assert_eq!(status.phase, Phase::Wiped, "{:?}", status.sync);
    assert!(status.user.is_none());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing left: {left:?}");

    // Another laptop: five wrong passphrases lock it out.
    let dir2 = root.path().join("second");
    let second = AppCore::new(config(&dir2, &proxy.url()));
    second
        .enrol(enrolment(&proxy.url(), REPLICA_PASS))
        .await
        .unwrap();
    second.lock_now().await;
    for _ in 0..4 {
        assert_eq!(
            code(second.unlock("wrong".into(), None).await),
            "wrong-passphrase"
        );
    }
    assert_eq!(code(second.unlock("wrong".into(), None).await), "locked");
    let status = second.app_status();
    assert_eq!(status.phase, Phase::LockedOut);
    assert_eq!(status.attempts_left, Some(0));
    assert_eq!(
        code(second.unlock(REPLICA_PASS.into(), None).await),
        "locked",
        "not even the right passphrase"
    );
}

impl TestHub {
    /// The hub's current version of `Type/id`.
    async fn read(&self, resource_type: &str, id: &str) -> Value {
        let mut conn = self.store.reader().await.unwrap();
        let mut conn = careshare_hub::store::Conn::Any(&mut conn);
        let stored = careshare_hub::store::read_current(&mut conn, resource_type, id)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_str(stored.content.as_deref().unwrap()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_absence_unlocking_signs_in_again() {
    // Sign-ins that last a second, so the device's stored one has run out by the unlock.
    let hub = TestHub::start_with(
        20,
        AuthConfig {
            pbkdf2_iterations: 1000,
            refresh_ttl_secs: 1,
            ..AuthConfig::default()
        },
    )
    .await;
    let url = format!("http://{}", hub.addr);
    let root = tempfile::tempdir().unwrap();
    let core = AppCore::new(config(&root.path().join("laptop"), &url));
    core.enrol(enrolment(&url, REPLICA_PASS)).await.unwrap();
    synced(&core).await;
    core.lock_now().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Weeks away: the offline lease in the key file ended yesterday.
    let key_file = careshare_client::ReplicaFiles::new(root.path().join("laptop")).key_file();
    let mut key: Value = serde_json::from_slice(&std::fs::read(&key_file).unwrap()).unwrap();
    key["lease_expires_at"] = json!((chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    std::fs::write(&key_file, serde_json::to_vec(&key).unwrap()).unwrap();

    let refused = core.unlock(REPLICA_PASS.into(), None).await;
    assert_eq!(code(refused), "sign-in-required");
    assert_eq!(core.app_status().phase, Phase::Locked);
    assert_eq!(
        core.app_status().attempts_left,
        Some(5),
        "the right passphrase is not counted as wrong"
    );
    let wrong = core
        .unlock(REPLICA_PASS.into(), Some("not the hub passphrase".into()))
        .await;
    assert_eq!(code(wrong), "sign-in-required");
    let status = core
        .unlock(REPLICA_PASS.into(), Some(HUB_PASS.into()))
        .await
        .unwrap();
    assert_eq!(status.phase, Phase::Unlocked);
    synced(&core).await;
    assert!(!core.caseload().await.unwrap().patients.is_empty());
}
