//! The desktop app's core: every command as a plain async method, no Tauri
//! types, so the whole shell is tested against a real hub without a window.
//!
//! # State
//!
//! * The open [`Session`] sits behind a `tokio::sync::Mutex`: a command that
//!   reads or writes the replica waits for a running sync (the first sync of
//!   a caseload takes seconds).
//! * What the status bar shows ([`Shared`]: the phase, the sync bar, the
//!   idle timer, break-glass grants) sits behind a `std::sync::Mutex` that is
//!   only ever held for a few field updates, so [`AppCore::app_status`] and
//!   [`AppCore::touch`] never wait for a sync.
//!
//! # Background work
//!
//! [`AppCore::spawn_background`] runs one loop that locks the session after
//! [`Config::idle_lock`] without activity and syncs every
//! [`Config::sync_interval`] while unlocked (so a device that went offline
//! syncs again within one interval of getting its signal back). A sync runs
//! as its own task; locking aborts it (a sync stopped anywhere resumes
//! cleanly: see `careshare-client`).
//!
//! Activity is what the person does: [`AppCore::touch`] (the UI sends it on
//! input) and the commands that act (enrol, unlock, sync now, record, resolve,
//! break-glass). Reads the UI repeats by itself (caseload, patient summary,
//! conflicts, after each background sync) are not activity, or a device left
//! open on a screen would never lock.
//!
//! # Secrets
//!
//! Passphrases cross once, are moved into [`Passphrase`] / [`SecretString`]
//! (zeroized on drop) and are never kept after the call; no error or log
//! line carries one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use careshare_client::{
    enrol, reauthorise, ClientError, Enrolment, HttpConfig, KeyParams, Passphrase, ReplicaFiles,
    Resolution, SecretString, Session, SyncOptions, SyncProgress,
};
use careshare_view::api::{
    AppError, AppStatus, BreakGlassRequest, Caseload, ConflictChoice, ConflictItem, EnrolRequest,
    GrantView, PassphraseStrength, PatientSummary, Phase, SyncProgressView, SyncState, UserInfo,
    VisitForm, VisitSaved,
};
use careshare_view::conflict::{self, ConflictRecord};
use careshare_view::summary::{self, Authors, Clock, Held, RowFacts, SummaryInput};
use careshare_view::visit::{self, VisitContext};
use chrono::{DateTime, FixedOffset, Utc};
use tokio::task::JoinHandle;

/// How many observations a patient summary reads for its trend chart.
pub const SUMMARY_OBSERVATIONS: usize = 600;
/// Shortest replica passphrase enrolment accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 10;
/// Least zxcvbn score (0–4) enrolment accepts.
pub const MIN_PASSPHRASE_SCORE: u8 = 3;

/// What the core is configured with (read from the environment by
/// [`crate::config`]; tests set it directly).
#[derive(Debug, Clone)]
pub struct Config {
    /// The replica's directory.
    pub dir: PathBuf,
    /// The hub URL to offer on the first-run screen.
    pub default_hub_url: String,
    /// The device name to offer on the first-run screen.
    pub default_device_name: String,
    /// Lock after this long without activity.
    pub idle_lock: Duration,
    /// Sync this often while unlocked (and retry this soon when offline).
    pub sync_interval: Duration,
    /// Key derivation of a new replica.
    pub key_params: KeyParams,
    /// Hub time-outs and retries.
    pub http: HttpConfig,
    /// The local UTC offset; `None`: the system's, at each call.
    pub utc_offset: Option<FixedOffset>,
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A value the UI sent, refused before anything was done.
    #[error("{0}")]
    InvalidInput(String),
    /// The replica is not open.
    #[error("the record is locked: unlock it first")]
    NotUnlocked,
    /// The device does not hold what was asked for.
    #[error("{0}")]
    NotFound(String),
    /// A view builder refused the input.
    #[error(transparent)]
    View(#[from] AppError),
}

impl CoreError {
    /// The stable code the UI acts on.
    pub fn code(&self) -> String {
        match self {
            CoreError::Client(e) => e.code().to_owned(),
            CoreError::InvalidInput(_) => "invalid-input".into(),
            CoreError::NotUnlocked => "not-unlocked".into(),
            CoreError::NotFound(_) => "not-found".into(),
            CoreError::View(e) => e.code.clone(),
        }
    }
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> AppError {
        match e {
            CoreError::View(e) => e,
            e => AppError::new(e.code(), e.to_string()),
        }
    }
}

/// Result of a core call.
pub type CoreResult<T> = Result<T, CoreError>;

/// What the status bar reads; held only for field updates.
#[derive(Debug)]
struct Shared {
    unlocked: bool,
    wiped: bool,
    user: Option<UserInfo>,
    sync: SyncState,
    last_activity: Instant,
    /// End of the last sync attempt (successful or not).
    last_attempt: Option<Instant>,
    grants: Vec<GrantView>,
    /// Bumped at each unlock and lock, so a stale sync does not report.
    generation: u64,
}

/// The desktop app's core.
pub struct AppCore {
    config: Config,
    session: tokio::sync::Mutex<Option<Session>>,
    shared: Mutex<Shared>,
    sync_task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AppCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `1500` → `1,500`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The sync bar's words for a step of the sync.
pub fn progress_view(p: &SyncProgress, changes_so_far: u64) -> SyncProgressView {
    match p {
        SyncProgress::Authenticating => SyncProgressView {
            label: "Signing in to the hub".into(),
            fraction: None,
            changes: changes_so_far,
        },
        SyncProgress::Pulled { pages, changes, .. } => SyncProgressView {
            label: format!(
                "Receiving records: {}, {}",
                plural(*pages, "page", "pages"),
                plural(*changes, "change", "changes")
            ),
            fraction: None,
            changes: *changes,
        },
        SyncProgress::Pushed { done, total } => SyncProgressView {
            label: format!("Sending edits: {done} of {total}"),
            fraction: (*total > 0).then(|| *done as f32 / *total as f32),
            changes: changes_so_far,
        },
        SyncProgress::UploadedAudit { events } => SyncProgressView {
            label: format!(
                "Sending the access log: {}",
                plural(*events as u64, "event", "events")
            ),
            fraction: None,
            changes: changes_so_far,
        },
        SyncProgress::CheckingIn => SyncProgressView {
            label: "Checking in with the hub".into(),
            fraction: None,
            changes: changes_so_far,
        },
    }
}

/// How strong a proposed replica passphrase is (zxcvbn), and whether
/// enrolment accepts it (score 3 or more and at least 10 characters).
pub fn passphrase_strength(passphrase: &str) -> PassphraseStrength {
    if passphrase.is_empty() {
        return PassphraseStrength {
            score: 0,
            label: "Very weak".into(),
            feedback: Some("Choose a passphrase of several words.".into()),
            acceptable: false,
        };
    }
    let entropy = zxcvbn::zxcvbn(passphrase, &["careshare", "nhs", "nurse"]);
    let score = u8::from(entropy.score());
    let label = ["Very weak", "Weak", "Fair", "Strong", "Very strong"]
        .get(usize::from(score))
        .copied()
        .unwrap_or("Very strong");
    let long_enough = passphrase.chars().count() >= MIN_PASSPHRASE_CHARS;
    let mut advice: Vec<String> = Vec::new();
    if let Some(f) = entropy.feedback() {
        if let Some(w) = f.warning() {
            advice.push(w.to_string());
        }
        advice.extend(f.suggestions().iter().map(ToString::to_string));
    }
    if !long_enough {
        advice.push(format!("Use at least {MIN_PASSPHRASE_CHARS} characters."));
    }
    PassphraseStrength {
        score,
        label: label.into(),
        feedback: (!advice.is_empty()).then(|| advice.join(" ")),
        acceptable: score >= MIN_PASSPHRASE_SCORE && long_enough,
    }
}

/// An NHS number as typed (spaces allowed) → its ten digits, if it is a
/// valid one (modulus 11 check digit, as `careshare_demo::nhs` defines it).
pub fn nhs_number_digits(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    careshare_demo::nhs_number_is_valid(&digits).then_some(digits)
}

fn held(records: Vec<careshare_client::HeldResource>) -> Vec<Held> {
    records
        .into_iter()
        .map(|h| Held {
            resource: h.resource,
            pending: h.pending,
        })
        .collect()
}

/// Refuses a new replica passphrase too weak to protect the record.
fn require_strong(passphrase: &str) -> CoreResult<()> {
    let strength = passphrase_strength(passphrase);
    if strength.acceptable {
        return Ok(());
    }
    Err(CoreError::InvalidInput(format!(
        "passphrase: too weak ({}). {}",
        strength.label.to_lowercase(),
        strength.feedback.unwrap_or_default()
    )))
}

/// Closes a session left open but no longer in use (its key goes with it).
fn close_stale(session: &mut Option<Session>) {
    if let Some(stale) = session.take() {
        if let Err(e) = stale.lock() {
            tracing::warn!("closing the replica: {e}");
        }
    }
}

impl AppCore {
    /// A core over the replica in `config.dir` (nothing is opened yet).
    pub fn new(config: Config) -> Arc<AppCore> {
        Arc::new(AppCore {
            config,
            session: tokio::sync::Mutex::new(None),
            shared: Mutex::new(Shared {
                unlocked: false,
                wiped: false,
                user: None,
                sync: SyncState::default(),
                last_activity: Instant::now(),
                last_attempt: None,
                grants: Vec::new(),
                generation: 0,
            }),
            sync_task: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding it leaves plain data: keep going.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clock(&self) -> Clock {
        let now = Utc::now();
        let offset = self
            .config
            .utc_offset
            .unwrap_or_else(|| *chrono::Local::now().offset());
        Clock { now, offset }
    }

    /// The user did something: restarts the idle timer.
    pub fn touch(&self) {
        self.shared().last_activity = Instant::now();
    }

    // -------------------------------------------------------------- status

    /// Where the app stands. Never waits for the session.
    pub fn app_status(&self) -> AppStatus {
        let now = Utc::now();
        let mut s = self.shared();
        s.grants.retain(|g| g.expires_at > now);
        let files = ReplicaFiles::new(&self.config.dir);
        let (phase, attempts_left) = if s.wiped {
            (Phase::Wiped, None)
        } else if s.unlocked {
            (Phase::Unlocked, None)
        } else if !files.key_file().exists() {
            (Phase::FirstRun, None)
        } else {
            match files.status() {
                Ok(k) if k.locked => (Phase::LockedOut, Some(0)),
                Ok(k) => (
                    Phase::Locked,
                    Some(careshare_replica::MAX_FAILED_ATTEMPTS.saturating_sub(k.failed_attempts)),
                ),
                Err(e) => {
                    tracing::warn!("the key file cannot be read: {e}");
                    (Phase::Locked, None)
                }
            }
        };
        let user = match phase {
            Phase::FirstRun => Some(UserInfo {
                username: String::new(),
                hub_url: self.config.default_hub_url.clone(),
                device_name: self.config.default_device_name.clone(),
            }),
            Phase::Wiped => None,
            _ => s.user.clone(),
        };
        AppStatus {
            phase,
            user,
            attempts_left,
            idle_lock_seconds: self.config.idle_lock.as_secs(),
            sync: s.sync.clone(),
            break_glass: s.grants.clone(),
        }
    }

    /// Records that the hub wiped the device (the client already deleted
    /// the files) and drops the session.
    fn wiped(&self, session: &mut Option<Session>) {
        session.take();
        let mut s = self.shared();
        s.wiped = true;
        s.unlocked = false;
        s.user = None;
        s.grants.clear();
        s.sync = SyncState::default();
        s.generation += 1;
    }

    /// Turns a client error into the command's error, handling a wipe.
    fn fail(&self, session: &mut Option<Session>, e: ClientError) -> CoreError {
        if matches!(e, ClientError::Wiped) {
            tracing::warn!("the hub revoked this device; its local record is gone");
            self.wiped(session);
        }
        CoreError::Client(e)
    }

    /// The open session, or [`CoreError::NotUnlocked`].
    async fn open_session(&self) -> CoreResult<tokio::sync::MutexGuard<'_, Option<Session>>> {
        let guard = self.session.lock().await;
        if guard.is_none() || !self.shared().unlocked {
            return Err(CoreError::NotUnlocked);
        }
        Ok(guard)
    }

    fn update_counts(&self, session: &Session) {
        match session.status() {
            Ok(st) => {
                let mut s = self.shared();
                s.sync.pending = st.pending_edits;
                s.sync.rejected = st.rejected_edits;
                s.sync.conflicts = st.open_conflicts;
                if s.sync.last_sync.is_none() {
                    s.sync.last_sync = st.last_sync;
                }
            }
            Err(e) => tracing::warn!("the replica's status cannot be read: {e}"),
        }
    }

    /// The session is open: show it and start a sync.
    fn opened(self: &Arc<Self>, session: &Session) {
        let d = session.device();
        {
            let mut s = self.shared();
            s.unlocked = true;
            s.wiped = false;
            s.user = Some(UserInfo {
                username: d.username.clone(),
                hub_url: d.hub_url.clone(),
                device_name: d.device_name.clone(),
            });
            s.sync = SyncState::default();
            s.last_activity = Instant::now();
            s.generation += 1;
        }
        self.update_counts(session);
    }

    // -------------------------------------------------------------- locking

    /// Makes a just-opened session the app's: shows it and starts a sync.
    fn install(
        self: &Arc<Self>,
        mut guard: tokio::sync::MutexGuard<'_, Option<Session>>,
        session: Session,
    ) -> AppStatus {
        self.opened(&session);
        *guard = Some(session);
        drop(guard);
        self.start_sync();
        self.app_status()
    }

    /// How strong a proposed passphrase is.
    pub fn passphrase_strength(&self, passphrase: &str) -> PassphraseStrength {
        self.touch();
        passphrase_strength(passphrase)
    }

    /// First run: enrols the device, creates the replica, unlocks, and
    /// starts the first sync.
    pub async fn enrol(self: &Arc<Self>, request: EnrolRequest) -> CoreResult<AppStatus> {
        self.touch();
        require_strong(&request.passphrase)?;
        let hub_url = request.hub_url.trim().to_owned();
        if hub_url.is_empty() {
            return Err(CoreError::InvalidInput(
                "hub_url: give the hub's address".into(),
            ));
        }
        let guard = self.session.lock().await;
        if guard.is_some() {
            return Err(ClientError::AlreadyEnrolled(self.config.dir.clone()).into());
        }
        let EnrolRequest {
            username,
            hub_passphrase,
            passphrase,
            device_name,
            ..
        } = request;
        let mut e = Enrolment::new(
            &self.config.dir,
            hub_url,
            username.trim(),
            SecretString::new(hub_passphrase),
            Passphrase::new(passphrase),
        );
        e.device_name = device_name.trim().to_owned();
        e.key_params = self.config.key_params;
        e.http = self.config.http.clone();
        let session = enrol(e, Utc::now()).await?;
        tracing::info!("enrolled as {}", session.device().username);
        Ok(self.install(guard, session))
    }

    /// Opens the replica with the passphrase (checking in with the hub when
    /// the offline lease ran out, signing in again with `hub_passphrase` if
    /// the device's stored sign-in ran out too) and starts a sync.
    pub async fn unlock(
        self: &Arc<Self>,
        passphrase: String,
        hub_passphrase: Option<String>,
    ) -> CoreResult<AppStatus> {
        let hub_passphrase = hub_passphrase
            .filter(|p| !p.is_empty())
            .map(SecretString::new);
        self.touch();
        let mut guard = self.session.lock().await;
        if guard.is_some() && self.shared().unlocked {
            return Ok(self.app_status());
        }
        close_stale(&mut guard);
        let pass = Passphrase::new(passphrase);
        let now = Utc::now();
        let (dir, http) = (self.config.dir.clone(), self.config.http.clone());
        // The key derivation is deliberately slow: keep it off the async threads.
        let (opened, pass) = tokio::task::spawn_blocking(move || {
            let opened = Session::open_with(&dir, &pass, now, &http);
            (opened, pass)
        })
        .await
        .map_err(|e| CoreError::InvalidInput(format!("unlock failed: {e}")))?;
        let session = match opened {
            Ok(s) => s,
            Err(ClientError::LeaseExpired { .. }) => {
                tracing::info!("the offline lease ran out; checking in with the hub");
                let checked_in = Session::check_in(
                    &self.config.dir,
                    &pass,
                    hub_passphrase.as_ref(),
                    now,
                    &self.config.http,
                )
                .await;
                match checked_in {
                    Ok(s) => s,
                    Err(e) => return Err(self.fail(&mut guard, e)),
                }
            }
            Err(e) => return Err(self.fail(&mut guard, e)),
        };
        drop(pass);
        Ok(self.install(guard, session))
    }

    /// Re-authorises a device locked after too many wrong passphrases: the
    /// user signs in to the hub again with `hub_passphrase`, the replica
    /// takes the new `passphrase` (which must be strong enough, as at
    /// enrolment), and the record opens and syncs. A revoked device is wiped
    /// instead.
    pub async fn reauthorise(
        self: &Arc<Self>,
        hub_passphrase: String,
        passphrase: String,
    ) -> CoreResult<AppStatus> {
        self.touch();
        require_strong(&passphrase)?;
        if hub_passphrase.is_empty() {
            return Err(CoreError::InvalidInput(
                "hub_passphrase: give your hub passphrase".into(),
            ));
        }
        let hub_passphrase = SecretString::new(hub_passphrase);
        let passphrase = Passphrase::new(passphrase);
        let mut guard = self.session.lock().await;
        if guard.is_some() && self.shared().unlocked {
            return Ok(self.app_status());
        }
        close_stale(&mut guard);
        let session = match reauthorise(
            &self.config.dir,
            &hub_passphrase,
            &passphrase,
            Utc::now(),
            &self.config.http,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return Err(self.fail(&mut guard, e)),
        };
        drop((hub_passphrase, passphrase));
        tracing::info!("the hub re-authorised this device");
        Ok(self.install(guard, session))
    }

    /// Closes the replica now (a running sync is stopped; it resumes at the
    /// next unlock).
    pub async fn lock_now(&self) -> AppStatus {
        self.lock_session("locked by the user").await;
        self.app_status()
    }

    async fn lock_session(&self, why: &str) {
        let generation = {
            let mut s = self.shared();
            if !s.unlocked {
                return;
            }
            s.unlocked = false;
            s.generation += 1;
            s.sync.running = false;
            s.sync.progress = None;
            s.generation
        };
        let task = self
            .sync_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        let mut guard = self.session.lock().await;
        if self.shared().generation != generation {
            // Unlocked again while this waited: that session stays open.
            return;
        }
        let session = guard.take();
        drop(guard);
        if let Some(session) = session {
            if let Err(e) = session.lock() {
                tracing::warn!("closing the replica: {e}");
            }
        }
        tracing::info!("the record is locked ({why})");
    }

    /// Signs in to the hub again (the device's sign-in ran out) and syncs.
    pub async fn sign_in(self: &Arc<Self>, hub_passphrase: String) -> CoreResult<AppStatus> {
        self.touch();
        let pass = SecretString::new(hub_passphrase);
        {
            let mut guard = self.open_session().await?;
            let session = guard.as_mut().ok_or(CoreError::NotUnlocked)?;
            if let Err(e) = session.sign_in(&pass, Utc::now()).await {
                return Err(self.fail(&mut guard, e));
            }
        }
        drop(pass);
        {
            let mut s = self.shared();
            if s.sync
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == "sign-in-required")
            {
                s.sync.last_error = None;
            }
        }
        self.start_sync();
        Ok(self.app_status())
    }

    // ----------------------------------------------------------------- sync

    /// Starts a sync in the background; `false` when one is running or the
    /// record is locked.
    pub fn start_sync(self: &Arc<Self>) -> bool {
        let generation = {
            let mut s = self.shared();
            if s.sync.running || !s.unlocked {
                return false;
            }
            s.sync.running = true;
            s.sync.progress = Some(SyncProgressView {
                label: "Starting sync".into(),
                fraction: None,
                changes: 0,
            });
            s.generation
        };
        let core = Arc::clone(self);
        let task = tokio::spawn(async move { core.run_sync(generation).await });
        *self.sync_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        true
    }

    /// Starts a sync (a no-op when one is running) and answers at once.
    pub fn sync_now(self: &Arc<Self>) -> CoreResult<AppStatus> {
        self.touch();
        if !self.shared().unlocked {
            return Err(CoreError::NotUnlocked);
        }
        self.start_sync();
        Ok(self.app_status())
    }

    /// Whether a sync is running.
    pub fn sync_running(&self) -> bool {
        self.shared().sync.running
    }

    async fn run_sync(&self, generation: u64) {
        let mut guard = self.session.lock().await;
        let current = |core: &AppCore| core.shared().generation == generation;
        if !current(self) || guard.is_none() {
            if current(self) {
                self.shared().sync.running = false;
            }
            return;
        }
        let now = Utc::now();
        let result = {
            let Some(session) = guard.as_mut() else {
                return;
            };
            let shared = &self.shared;
            let mut changes = 0u64;
            let mut progress = |p: SyncProgress| {
                if let SyncProgress::Pulled { changes: c, .. } = p {
                    changes = c;
                }
                let view = progress_view(&p, changes);
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                if s.generation == generation {
                    s.sync.progress = Some(view);
                }
            };
            session
                .sync(&SyncOptions::default(), now, &mut progress)
                .await
        };
        let outcome = match result {
            Ok(report) => {
                tracing::info!(
                    "synced: {} change(s), {} edit(s) sent",
                    report.changes,
                    report.pushed.applied + report.pushed.merged
                );
                if let Some(session) = guard.as_mut() {
                    match session.refresh_directory(Utc::now()).await {
                        Ok(n) => tracing::debug!("directory refreshed: {n} resources"),
                        Err(ClientError::Wiped) => {
                            let e = self.fail(&mut guard, ClientError::Wiped);
                            tracing::warn!("{e}");
                        }
                        Err(e) => tracing::warn!("the directory was not refreshed: {e}"),
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        };
        if !current(self) {
            return;
        }
        match outcome {
            Ok(()) => {
                let mut s = self.shared();
                s.sync.online = Some(true);
                s.sync.last_sync = Some(Utc::now());
                s.sync.last_error = None;
            }
            Err(ClientError::Wiped) => {
                self.wiped(&mut guard);
                return;
            }
            Err(e) => {
                tracing::warn!("sync failed: {e}");
                let mut s = self.shared();
                s.sync.online = Some(!matches!(e, ClientError::Unreachable(_)));
                s.sync.last_error = Some(AppError::new(e.code(), e.to_string()));
            }
        }
        if let Some(session) = guard.as_ref() {
            self.update_counts(session);
            // Name the break-glass patients now on the device.
            let ids: Vec<String> = self
                .shared()
                .grants
                .iter()
                .map(|g| g.patient_id.clone())
                .collect();
            let names: Vec<(String, String)> = ids
                .into_iter()
                .filter_map(|id| {
                    let patient = session.current("Patient", &id).ok().flatten()?;
                    Some((id, summary::patient_name(&patient.resource)))
                })
                .collect();
            let mut s = self.shared();
            for (id, name) in names {
                if let Some(g) = s.grants.iter_mut().find(|g| g.patient_id == id) {
                    g.patient_name = Some(name);
                }
            }
        }
        let mut s = self.shared();
        s.sync.running = false;
        s.sync.progress = None;
        s.last_attempt = Some(Instant::now());
    }

    /// Runs the idle lock and the periodic sync until the app ends.
    pub fn spawn_background(self: &Arc<Self>) -> JoinHandle<()> {
        let core = Arc::downgrade(self);
        let tick =
            (self.config.idle_lock / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(core) = core.upgrade() else {
                    return;
                };
                let (unlocked, idle, running, since_attempt) = {
                    let s = core.shared();
                    (
                        s.unlocked,
                        s.last_activity.elapsed(),
                        s.sync.running,
                        s.last_attempt.map(|t| t.elapsed()),
                    )
                };
                if !unlocked {
                    continue;
                }
                if idle >= core.config.idle_lock {
                    core.lock_session("idle").await;
                } else if !running && since_attempt.is_some_and(|t| t >= core.config.sync_interval)
                {
                    core.start_sync();
                }
            }
        })
    }

    // ------------------------------------------------------------- records

    fn grant_for(&self, patient_id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.shared()
            .grants
            .iter()
            .filter(|g| g.patient_id == patient_id && g.expires_at > now)
            .map(|g| g.expires_at)
            .max()
    }

    /// The caseload: today's visits first by time, then by name.
    pub async fn caseload(&self) -> CoreResult<Caseload> {
        let mut guard = self.open_session().await?;
        let clock = self.clock();
        let records = match guard.as_ref().map(Session::caseload_records) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(self.fail(&mut guard, e)),
            None => return Err(CoreError::NotUnlocked),
        };
        drop(guard);
        let mut patients: Vec<_> = records
            .into_iter()
            .map(|r| {
                let facts = RowFacts {
                    data_as_of: r.data_as_of,
                    break_glass_until: self.grant_for(&r.patient_id, clock.now),
                };
                summary::caseload_row(&r.patient.resource, &held(r.records), facts, &clock)
            })
            .collect();
        summary::sort_caseload(&mut patients);
        Ok(Caseload {
            patients,
            today: clock.today().format("%Y-%m-%d").to_string(),
        })
    }

    /// One patient's summary; the view is recorded in the local audit chain.
    pub async fn patient_summary(&self, patient_id: &str) -> CoreResult<PatientSummary> {
        let mut guard = self.open_session().await?;
        let clock = self.clock();
        let read = |session: &mut Session| -> careshare_client::Result<_> {
            if session.view("Patient", patient_id, clock.now)?.is_none() {
                return Ok(None);
            }
            let Some(records) = session.patient_records(patient_id, SUMMARY_OBSERVATIONS)? else {
                return Ok(None);
            };
            let names = session.organisation_names().unwrap_or_else(|e| {
                tracing::warn!("organisation names: {e}");
                HashMap::new()
            });
            let own = session.own_organisation().unwrap_or_default();
            Ok(Some((records, names, own)))
        };
        let answer = match guard.as_mut() {
            Some(session) => read(session),
            None => return Err(CoreError::NotUnlocked),
        };
        let (records, names, own) = match answer {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(CoreError::NotFound(
                    "this patient's record is not on this device".into(),
                ))
            }
            Err(e) => return Err(self.fail(&mut guard, e)),
        };
        drop(guard);
        let facts = RowFacts {
            data_as_of: records.data_as_of,
            break_glass_until: self.grant_for(patient_id, clock.now),
        };
        let others = held(records.records);
        let observations = held(records.observations);
        Ok(summary::patient_summary(&SummaryInput {
            patient: &records.patient.resource,
            records: &others,
            observations: &observations,
            facts,
            authors: Authors {
                names: &names,
                own: own.as_deref(),
            },
            clock,
        }))
    }

    /// Saves a visit to the outbox (works offline) and tries to send it.
    pub async fn record_visit(self: &Arc<Self>, form: VisitForm) -> CoreResult<VisitSaved> {
        self.touch();
        let now = Utc::now();
        let saved = {
            let mut guard = self.open_session().await?;
            let Some(session) = guard.as_mut() else {
                return Err(CoreError::NotUnlocked);
            };
            let prepared = (|| -> careshare_client::Result<_> {
                let patient = session.current("Patient", form.patient_id.trim())?;
                let mut tasks = Vec::new();
                for id in &form.completed_tasks {
                    if let Some(t) = session.current("Task", id)? {
                        tasks.push(t.resource);
                    }
                }
                let own = session.own_organisation().unwrap_or_default();
                let name = session.own_display_name().unwrap_or_default();
                Ok((patient.is_some(), tasks, own, name))
            })();
            let (known, tasks, own, name) = match prepared {
                Ok(p) => p,
                Err(e) => return Err(self.fail(&mut guard, e)),
            };
            if !known {
                return Err(CoreError::NotFound(
                    "this patient's record is not on this device".into(),
                ));
            }
            let device = session.device().clone();
            let organisation = own.map(|o| format!("Organization/{o}"));
            let built = visit::build_visit(
                &form,
                &tasks,
                &VisitContext {
                    performer: device.practitioner_role.as_deref(),
                    // Signed as the directory names them; their user name until a
                    // directory refresh has brought it.
                    performer_name: name.as_deref().unwrap_or(&device.username),
                    organisation: organisation.as_deref(),
                    now,
                },
                &mut || uuid::Uuid::new_v4().to_string(),
            )?;
            let mut edits = 0;
            for resource in built.resources {
                if let Err(e) = session.record_edit(resource, None, now) {
                    return Err(self.fail(&mut guard, e));
                }
                edits += 1;
            }
            tracing::info!("visit saved: {edits} edit(s) queued");
            self.update_counts(session);
            VisitSaved {
                edits,
                news2_total: built.news2_total,
            }
        };
        self.start_sync();
        Ok(saved)
    }

    fn conflict_records(session: &Session) -> careshare_client::Result<Vec<ConflictRecord>> {
        Ok(session
            .conflicts()?
            .into_iter()
            .map(|c| ConflictRecord {
                id: c.id,
                resource_type: c.resource_type,
                resource_id: c.resource_id,
                patient_id: c.patient_id,
                base: c.base,
                ours: c.ours,
                theirs: c.theirs,
                elements: c.elements,
                detected_at: c.detected_at,
            })
            .collect())
    }

    /// Open conflicts, side by side.
    pub async fn conflicts(&self) -> CoreResult<Vec<ConflictItem>> {
        let mut guard = self.open_session().await?;
        let read = |session: &Session| -> careshare_client::Result<Vec<ConflictItem>> {
            let names = session.organisation_names().unwrap_or_default();
            let mut out = Vec::new();
            for c in Self::conflict_records(session)? {
                let patient = session
                    .current("Patient", &c.patient_id)?
                    .map(|p| summary::patient_name(&p.resource));
                out.push(conflict::conflict_item(&c, patient, &names));
            }
            Ok(out)
        };
        match guard.as_ref().map(read) {
            Some(Ok(items)) => Ok(items),
            Some(Err(e)) => Err(self.fail(&mut guard, e)),
            None => Err(CoreError::NotUnlocked),
        }
    }

    /// Resolves a conflict (the decision is queued with a Provenance) and
    /// syncs.
    pub async fn resolve_conflict(
        self: &Arc<Self>,
        id: i64,
        choice: ConflictChoice,
    ) -> CoreResult<AppStatus> {
        self.touch();
        {
            let mut guard = self.open_session().await?;
            let Some(session) = guard.as_mut() else {
                return Err(CoreError::NotUnlocked);
            };
            let resolution = match choice {
                ConflictChoice::Mine => Resolution::Mine,
                ConflictChoice::Theirs => Resolution::Theirs,
                ConflictChoice::Combined { picks } => {
                    let records = match Self::conflict_records(session) {
                        Ok(r) => r,
                        Err(e) => return Err(self.fail(&mut guard, e)),
                    };
                    let record = records
                        .iter()
                        .find(|c| c.id == id)
                        .ok_or(ClientError::NoSuchConflict(id))?;
                    Resolution::Combined(conflict::combine(record, &picks)?)
                }
            };
            let resolved = guard
                .as_mut()
                .map(|s| s.resolve(id, resolution, Utc::now()));
            match resolved {
                Some(Ok(r)) => tracing::info!("conflict {} resolved", r.conflict_id),
                Some(Err(e)) => return Err(self.fail(&mut guard, e)),
                None => return Err(CoreError::NotUnlocked),
            }
            if let Some(session) = guard.as_ref() {
                self.update_counts(session);
            }
        }
        self.start_sync();
        Ok(self.app_status())
    }

    /// Emergency access to a patient outside the caseload (online only); the
    /// patient arrives with the sync that follows.
    pub async fn break_glass(
        self: &Arc<Self>,
        request: BreakGlassRequest,
    ) -> CoreResult<GrantView> {
        self.touch();
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() {
            return Err(CoreError::InvalidInput(
                "reason: say why you need this record (the privacy officer reviews every emergency access)".into(),
            ));
        }
        let nhs = nhs_number_digits(&request.nhs_number).ok_or_else(|| {
            CoreError::InvalidInput(
                "nhs_number: an NHS number is ten digits with a valid check digit".into(),
            )
        })?;
        let grant = {
            let mut guard = self.open_session().await?;
            let Some(session) = guard.as_mut() else {
                return Err(CoreError::NotUnlocked);
            };
            match session.break_glass(&nhs, &reason, Utc::now()).await {
                Ok(g) => g,
                Err(e) => {
                    if matches!(e, ClientError::Unreachable(_)) {
                        self.shared().sync.online = Some(false);
                    }
                    return Err(self.fail(&mut guard, e));
                }
            }
        };
        tracing::info!("emergency access granted until {}", grant.expires_at);
        let view = GrantView {
            patient_id: grant.patient_id,
            patient_name: None,
            reason: grant.reason,
            expires_at: grant.expires_at,
        };
        {
            let mut s = self.shared();
            s.grants.retain(|g| g.patient_id != view.patient_id);
            s.grants.push(view.clone());
        }
        self.start_sync();
        Ok(view)
    }

    /// Waits (polling) until no sync runs; for tests and shutdown.
    pub async fn wait_for_sync(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while self.sync_running() {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_like_a_sentence() {
        let v = progress_view(
            &SyncProgress::Pulled {
                pages: 3,
                changes: 1500,
                more: true,
            },
            0,
        );
        assert_eq!(v.label, "Receiving records: 3 pages, 1,500 changes");
        assert_eq!(v.changes, 1500);
        let v = progress_view(&SyncProgress::Pushed { done: 1, total: 4 }, 1500);
        assert_eq!(v.fraction, Some(0.25));
        assert_eq!(v.changes, 1500);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn weak_passphrases_are_refused() {
        let weak = passphrase_strength("password1");
        assert!(!weak.acceptable);
        assert!(weak.score < 3);
        assert!(weak.feedback.is_some());
        let short = passphrase_strength("Zq8#vL!");
        assert!(!short.acceptable, "too short whatever the score");
        let good = passphrase_strength("correct horse battery staple moor");
        assert!(good.acceptable, "{good:?}");
        assert_eq!(good.label, "Very strong");
        assert!(!passphrase_strength("").acceptable);
    }

    #[test]
    fn nhs_numbers_need_ten_digits_and_a_valid_check_digit() {
        assert_eq!(
            nhs_number_digits("943 476 5919").as_deref(),
            Some("9434765919")
        );
        assert_eq!(
            nhs_number_digits("9434765919").as_deref(),
            Some("9434765919")
        );
        assert_eq!(nhs_number_digits("9434765918"), None);
        assert_eq!(nhs_number_digits("943476591"), None);
        assert_eq!(nhs_number_digits("94347659x9"), None);
    }

    #[test]
    fn errors_cross_with_their_code() {
        let e: AppError =
            CoreError::Client(ClientError::WrongPassphrase { attempts_left: 3 }).into();
        assert_eq!(e.code, "wrong-passphrase");
        assert!(e.message.contains("3 attempt"));
        let e: AppError = CoreError::NotUnlocked.into();
        assert_eq!(e.code, "not-unlocked");
        let e: AppError = CoreError::View(AppError::new("invalid-input", "pulse: x")).into();
        assert_eq!(e, AppError::new("invalid-input", "pulse: x"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "invalid-input", "message": "pulse: x"})
        );
    }
}
