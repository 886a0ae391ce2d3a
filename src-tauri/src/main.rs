//! The Careshare desktop app: a Tauri window serving the Yew UI (`ui/dist`)
//! and one Tauri command per entry of `careshare_view::api`, each a single
//! call into [`AppCore`] with its error mapped to `{code, message}`.
//!
//! Environment: see `careshare_desktop::config` (`CARESHARE_DIR`,
//! `CARESHARE_HUB_URL`, `CARESHARE_IDLE_LOCK_SECONDS`,
//! `CARESHARE_SYNC_INTERVAL_SECONDS`, `CARESHARE_LOG`).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::Arc;

use anyhow::Context;
use careshare_desktop::config;
use careshare_desktop::core::AppCore;
use careshare_view::api::{
    AppError, AppStatus, BreakGlassRequest, Caseload, ConflictChoice, ConflictItem, EnrolRequest,
    GrantView, PassphraseStrength, PatientSummary, VisitForm, VisitSaved,
};
use tauri::State;

type Core<'a> = State<'a, Arc<AppCore>>;
type Answer<T> = Result<T, AppError>;

/// Set by `CARESHARE_STARTUP_PROBE` (for `cargo xtask bench`): the first time the UI asks
/// which screen to show, the app prints `first screen` and exits. The screen (unlock, for
/// an enrolled device) is drawn from that answer.
static STARTUP_PROBE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tauri::command]
async fn app_status(app: tauri::AppHandle, core: Core<'_>) -> Answer<AppStatus> {
    let status = core.app_status();
    if STARTUP_PROBE.swap(false, std::sync::atomic::Ordering::SeqCst) {
        println!("first screen: {:?}", status.phase);
        app.exit(0);
    }
    Ok(status)
}

#[tauri::command]
async fn passphrase_strength(core: Core<'_>, passphrase: String) -> Answer<PassphraseStrength> {
    Ok(core.passphrase_strength(&passphrase))
}

#[tauri::command]
async fn enrol(core: Core<'_>, request: EnrolRequest) -> Answer<AppStatus> {
    core.enrol(request).await.map_err(AppError::from)
}

#[tauri::command]
async fn unlock(
    core: Core<'_>,
    passphrase: String,
    hub_passphrase: Option<String>,
) -> Answer<AppStatus> {
    core.unlock(passphrase, hub_passphrase)
        .await
        .map_err(AppError::from)
}

#[tauri::command]
async fn reauthorise(
    core: Core<'_>,
    hub_passphrase: String,
    passphrase: String,
) -> Answer<AppStatus> {
    core.reauthorise(hub_passphrase, passphrase)
        .await
        .map_err(AppError::from)
}

#[tauri::command]
async fn lock_now(core: Core<'_>) -> Answer<AppStatus> {
    Ok(core.lock_now().await)
}

#[tauri::command]
async fn touch(core: Core<'_>) -> Answer<()> {
    core.touch();
    Ok(())
}

#[tauri::command]
async fn sync_now(core: Core<'_>) -> Answer<AppStatus> {
    core.sync_now().map_err(AppError::from)
}

#[tauri::command]
async fn sign_in(core: Core<'_>, hub_passphrase: String) -> Answer<AppStatus> {
    core.sign_in(hub_passphrase).await.map_err(AppError::from)
}

#[tauri::command]
async fn caseload(core: Core<'_>) -> Answer<Caseload> {
    core.caseload().await.map_err(AppError::from)
}

#[tauri::command]
async fn patient_summary(core: Core<'_>, patient_id: String) -> Answer<PatientSummary> {
    core.patient_summary(&patient_id)
        .await
        .map_err(AppError::from)
}

#[tauri::command]
async fn record_visit(core: Core<'_>, visit: VisitForm) -> Answer<VisitSaved> {
    core.record_visit(visit).await.map_err(AppError::from)
}

#[tauri::command]
async fn conflicts(core: Core<'_>) -> Answer<Vec<ConflictItem>> {
    core.conflicts().await.map_err(AppError::from)
}

#[tauri::command]
async fn resolve_conflict(core: Core<'_>, id: i64, choice: ConflictChoice) -> Answer<AppStatus> {
    core.resolve_conflict(id, choice)
        .await
        .map_err(AppError::from)
}

#[tauri::command]
async fn break_glass(core: Core<'_>, request: BreakGlassRequest) -> Answer<GrantView> {
    core.break_glass(request).await.map_err(AppError::from)
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARESHARE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    STARTUP_PROBE.store(
        std::env::var_os("CARESHARE_STARTUP_PROBE").is_some(),
        std::sync::atomic::Ordering::SeqCst,
    );
    let config = config::from_env().context("reading the configuration")?;
    tracing::info!("replica directory: {}", config.dir.display());

    // One tokio runtime for Tauri's commands and the core's background work.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tauri::async_runtime::set(runtime.handle().clone());
    let _entered = runtime.enter();

    let core = AppCore::new(config);
    let _background = core.spawn_background();

    tauri::Builder::default()
        .manage(core)
        .invoke_handler(tauri::generate_handler![
            app_status,
            passphrase_strength,
            enrol,
            unlock,
            reauthorise,
            lock_now,
            touch,
            sync_now,
            sign_in,
            caseload,
            patient_summary,
            record_visit,
            conflicts,
            resolve_conflict,
            break_glass,
        ])
        .run(tauri::generate_context!())
        .context("the Careshare window could not start")?;
    Ok(())
}
