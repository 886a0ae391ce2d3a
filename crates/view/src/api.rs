//! The commands of the desktop shell, as the UI calls them.
//!
//! Each command is a Tauri command of the same name in `src-tauri`. Its
//! arguments cross as one JSON object whose keys are the Rust parameter names
//! in camelCase (Tauri's rule); the `*Args` structs below are those objects.
//! Results cross as the types named in each command's doc. Every command can
//! fail with an [`AppError`].
//!
//! | command | arguments | result |
//! |---|---|---|
//! | [`APP_STATUS`] | – | [`AppStatus`] |
//! | [`PASSPHRASE_STRENGTH`] | [`PassphraseArgs`] | [`PassphraseStrength`] |
//! | [`ENROL`] | [`EnrolArgs`] | [`AppStatus`] |
//! | [`UNLOCK`] | [`UnlockArgs`] | [`AppStatus`] |
//! | [`LOCK_NOW`] | – | [`AppStatus`] |
//! | [`TOUCH`] | – | `()` |
//! | [`SYNC_NOW`] | – | [`AppStatus`] |
//! | [`SIGN_IN`] | [`SignInArgs`] | [`AppStatus`] |
//! | [`REAUTHORISE`] | [`ReauthoriseArgs`] | [`AppStatus`] |
//! | [`CASELOAD`] | – | [`Caseload`] |
//! | [`PATIENT_SUMMARY`] | [`PatientArgs`] | [`PatientSummary`] |
//! | [`RECORD_VISIT`] | [`RecordVisitArgs`] | [`VisitSaved`] |
//! | [`CONFLICTS`] | – | `Vec<`[`ConflictItem`]`>` |
//! | [`RESOLVE_CONFLICT`] | [`ResolveArgs`] | [`AppStatus`] |
//! | [`BREAK_GLASS`] | [`BreakGlassArgs`] | [`GrantView`] |
//!
//! Times cross as RFC 3339 UTC instants (`DateTime<Utc>`); the UI shows them
//! in local time with [`crate::format`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the app stands: the screen to show, the user, the sync bar.
pub const APP_STATUS: &str = "app_status";
/// How strong a proposed replica passphrase is (shown while it is typed).
pub const PASSPHRASE_STRENGTH: &str = "passphrase_strength";
/// First run: sign in to the hub, register this device, create the
/// encrypted replica; then unlocked, and a first sync starts.
pub const ENROL: &str = "enrol";
/// Opens the replica with the passphrase; a sync starts.
pub const UNLOCK: &str = "unlock";
/// Closes the replica now.
pub const LOCK_NOW: &str = "lock_now";
/// The user did something: restarts the idle timer.
pub const TOUCH: &str = "touch";
/// Starts a sync in the background (no-op when one is running).
pub const SYNC_NOW: &str = "sync_now";
/// Signs in to the hub again when the device's sign-in ran out.
pub const SIGN_IN: &str = "sign_in";
/// A device locked after too many wrong passphrases: its user signs in to
/// the hub again and chooses a new passphrase; then unlocked, and a sync
/// starts.
pub const REAUTHORISE: &str = "reauthorise";
/// The caseload (home screen).
pub const CASELOAD: &str = "caseload";
/// One patient's summary (recorded in the local audit chain as a view).
pub const PATIENT_SUMMARY: &str = "patient_summary";
/// Saves a visit (observations, NEWS2, wound, note, tasks) to the outbox.
pub const RECORD_VISIT: &str = "record_visit";
/// Open conflicts.
pub const CONFLICTS: &str = "conflicts";
/// Resolves one conflict.
pub const RESOLVE_CONFLICT: &str = "resolve_conflict";
/// Emergency access to a patient outside the caseload (online only).
pub const BREAK_GLASS: &str = "break_glass";

/// An error crossing to the UI. `code` is stable (for the UI to act on);
/// `message` is for the person and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable code: the client's codes (`wrong-passphrase`, `locked`,
    /// `wiped`, `unreachable`, `sign-in-required`, `invalid-input`, …) and
    /// the shell's own (`not-unlocked`, `not-found`, `busy`).
    pub code: String,
    /// What happened, in words for the user.
    pub message: String,
}

impl AppError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Which screen the app is on, as decided by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No device is enrolled here: the first-run screen.
    FirstRun,
    /// Enrolled, replica closed: the unlock screen.
    Locked,
    /// Too many wrong passphrases: the replica refuses every passphrase until
    /// the hub re-authorises the device.
    LockedOut,
    /// The hub revoked this device and its local record was deleted.
    Wiped,
    /// Unlocked: the caseload and the rest.
    Unlocked,
}

/// Where the app stands. The UI polls it (about once a second) and follows
/// `phase`: an idle lock in the shell shows as `Locked` at the next poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The screen to show.
    pub phase: Phase,
    /// The enrolled user, when known: after an unlock or enrolment in this
    /// run (the device's identity is inside the encrypted replica, so it is
    /// `None` on the unlock screen until the first unlock). On
    /// [`Phase::FirstRun`] it holds the defaults to prefill the first-run
    /// screen: `hub_url` from `CARESHARE_HUB_URL` (or empty), `username`
    /// empty, `device_name` from the host name. `None` when [`Phase::Wiped`].
    pub user: Option<UserInfo>,
    /// Wrong passphrases still allowed before the replica locks (on the
    /// unlock screen).
    pub attempts_left: Option<u32>,
    /// Seconds without activity before the app locks itself.
    pub idle_lock_seconds: u64,
    /// The sync bar.
    pub sync: SyncState,
    /// Break-glass grants in force on this device.
    pub break_glass: Vec<GrantView>,
}

/// The enrolled user and device (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Hub user name.
    pub username: String,
    /// The hub.
    pub hub_url: String,
    /// This device's registered name.
    pub device_name: String,
}

/// The sync bar: online or not, what is pending, the last sync, progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Whether the last contact with the hub succeeded (`None`: not tried
    /// since unlock).
    pub online: Option<bool>,
    /// A sync is running.
    pub running: bool,
    /// Progress of the running sync.
    pub progress: Option<SyncProgressView>,
    /// Edits waiting to be accepted by the hub.
    pub pending: usize,
    /// Edits the hub refused (kept, marked, for the user).
    pub rejected: usize,
    /// Conflicts waiting for a person.
    pub conflicts: usize,
    /// End of the last complete sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<AppError>,
}

/// Progress of a running sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncProgressView {
    /// What is happening, e.g. "Receiving records (3 pages, 1,500 changes)".
    pub label: String,
    /// Fraction done when known (pushing), else `None` (show a busy bar).
    pub fraction: Option<f32>,
    /// Changes received so far in this sync.
    pub changes: u64,
}

/// Arguments of [`PASSPHRASE_STRENGTH`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassphraseArgs {
    /// The proposed passphrase.
    pub passphrase: String,
}

/// How strong a proposed passphrase is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseStrength {
    /// 0 (very weak) to 4 (very strong).
    pub score: u8,
    /// "Very weak" … "Very strong".
    pub label: String,
    /// Advice, when there is some.
    pub feedback: Option<String>,
    /// Whether enrolment accepts it.
    pub acceptable: bool,
}

/// Arguments of [`ENROL`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolArgs {
    /// The enrolment.
    pub request: EnrolRequest,
}

/// What the first-run screen collects.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolRequest {
    /// The hub, e.g. `https://hub.example.nhs.uk`.
    pub hub_url: String,
    /// Hub user name.
    pub username: String,
    /// Hub passphrase (used once to sign in, never stored).
    pub hub_passphrase: String,
    /// The new replica passphrase.
    pub passphrase: String,
    /// The name to register this device under.
    pub device_name: String,
}

impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolRequest")
            .field("hub_url", &self.hub_url)
            .field("username", &self.username)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// Arguments of [`UNLOCK`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockArgs {
    /// The replica passphrase.
    pub passphrase: String,
    /// The hub passphrase, when the unlock answered `sign-in-required`: the
    /// offline lease ran out and so did the device's stored sign-in, so the
    /// check-in that renews the lease needs the user to sign in again.
    pub hub_passphrase: Option<String>,
}

impl std::fmt::Debug for UnlockArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockArgs { .. }")
    }
}

/// Arguments of [`SIGN_IN`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInArgs {
    /// The hub passphrase.
    pub hub_passphrase: String,
}

impl std::fmt::Debug for SignInArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInArgs { .. }")
    }
}

/// Arguments of [`REAUTHORISE`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReauthoriseArgs {
    /// The user's hub passphrase.
    pub hub_passphrase: String,
    /// The new passphrase for this device's replica.
    pub passphrase: String,
}

impl std::fmt::Debug for ReauthoriseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReauthoriseArgs { .. }")
    }
}

/// The caseload (home screen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caseload {
    /// The patients on the device, today's visits first (by time), then by
    /// name.
    pub patients: Vec<CaseloadRow>,
    /// The day "today" refers to (local date, `YYYY-MM-DD`).
    pub today: String,
}

/// One patient on the caseload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseloadRow {
    /// `Patient.id`.
    pub patient_id: String,
    /// "SURNAME, Given" style display name.
    pub name: String,
    /// NHS number formatted 3-3-4 (empty when none).
    pub nhs_number: String,
    /// Date of birth (`YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// Age in whole years today.
    pub age: Option<u32>,
    /// One-line address.
    pub address: String,
    /// Postcode (also in `address`).
    pub postcode: String,
    /// How many alerts (Flags) are active.
    pub alerts: u32,
    /// Start of today's visit (an Appointment), if any.
    pub visit_today: Option<DateTime<Utc>>,
    /// Open tasks for the patient.
    pub open_tasks: u32,
    /// When the patient's data was last brought up to date.
    pub data_as_of: Option<DateTime<Utc>>,
    /// End of a break-glass grant that is why this patient is here.
    pub break_glass_until: Option<DateTime<Utc>>,
}

/// Arguments of [`PATIENT_SUMMARY`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientArgs {
    /// `Patient.id`.
    pub patient_id: String,
}

/// One patient's summary, in the order the screen shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientSummary {
    /// Who (the same fields as the caseload row).
    pub patient: CaseloadRow,
    /// Active alerts (Flag): always first, in the banner.
    pub alerts: Vec<Entry>,
    /// Allergies and intolerances: always in the banner.
    pub allergies: Vec<Entry>,
    /// Active conditions.
    pub conditions: Vec<Entry>,
    /// Current medicines.
    pub medicines: Vec<Entry>,
    /// Vital signs and NEWS2 over time, for the trend chart (oldest first
    /// within each series).
    pub vitals: Vec<VitalSeries>,
    /// The most recent observation sets, newest first.
    pub recent_observations: Vec<Entry>,
    /// Care plans.
    pub care_plans: Vec<Entry>,
    /// Tasks, open first.
    pub tasks: Vec<TaskEntry>,
    /// Documents (discharge summaries, visit notes), newest first.
    pub documents: Vec<DocumentEntry>,
    /// Upcoming and today's visits.
    pub visits: Vec<Entry>,
    /// Whether the patient has a prescribed SpO2 target of 88–92 % (NEWS2
    /// SpO2 scale 2), for the visit form.
    pub spo2_scale2: bool,
}

/// Who wrote an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The authoring organisation's name (or its id when the name is not
    /// known on this device).
    pub organisation: String,
    /// Whether it is the user's own organisation.
    pub own: bool,
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `Type/id`.
    pub reference: String,
    /// What it is, e.g. "Penicillin — anaphylaxis".
    pub title: String,
    /// More, e.g. "Severity high · confirmed".
    pub detail: String,
    /// When (onset, effective, authored…).
    pub date: Option<String>,
    /// Status as recorded (active, completed…).
    pub status: Option<String>,
    /// Who wrote it.
    pub source: Source,
    /// A local edit not yet accepted by the hub.
    pub pending: bool,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEntry {
    /// The line to show.
    pub entry: Entry,
    /// `Task.id`.
    pub id: String,
    /// Whether it is still to be done.
    pub open: bool,
}

/// A document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// The line to show.
    pub entry: Entry,
    /// The document's text, when it is plain text held on the device.
    pub text: Option<String>,
}

/// One vital sign (or NEWS2) over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitalSeries {
    /// Stable key: `news2`, `respiration-rate`, `spo2`, `systolic-bp`,
    /// `pulse`, `temperature`.
    pub key: String,
    /// "NEWS2", "Pulse"…
    pub label: String,
    /// Unit shown, e.g. "/min".
    pub unit: String,
    /// Points, oldest first.
    pub points: Vec<VitalPoint>,
}

/// One reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitalPoint {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The value.
    pub value: f64,
    /// Not yet accepted by the hub.
    pub pending: bool,
}

/// Arguments of [`RECORD_VISIT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordVisitArgs {
    /// The visit.
    pub visit: VisitForm,
}

/// The visit form as typed: values are text, parsed and checked by the
/// shell (and live, for the NEWS2 panel, by [`crate::news2::assess`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VisitForm {
    /// `Patient.id`.
    pub patient_id: String,
    /// The NEWS2 observations.
    pub observations: ObservationsForm,
    /// A wound assessment, if one was made.
    pub wound: Option<WoundForm>,
    /// Free-text visit note (may be empty).
    pub note: String,
    /// Ids of tasks completed at this visit.
    pub completed_tasks: Vec<String>,
}

/// The NEWS2 part of the visit form. Empty text means "not recorded".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationsForm {
    /// Breaths per minute.
    pub respiration_rate: String,
    /// SpO2 %.
    pub spo2: String,
    /// Use SpO2 scale 2 (prescribed target 88–92 %).
    pub spo2_scale2: bool,
    /// `"air"`, `"oxygen"` or empty.
    pub air_or_oxygen: String,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp: String,
    /// Diastolic blood pressure, mmHg (recorded, not scored).
    pub diastolic_bp: String,
    /// Pulse, beats per minute.
    pub pulse: String,
    /// ACVPU letter (`A`, `C`, `V`, `P`, `U`) or empty.
    pub consciousness: String,
    /// Temperature, °C.
    pub temperature: String,
}

/// A wound assessment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WoundForm {
    /// Where, e.g. "left lower leg".
    pub site: String,
    /// Length in cm (text; may be empty).
    pub length_cm: String,
    /// Width in cm.
    pub width_cm: String,
    /// Depth in cm.
    pub depth_cm: String,
    /// Wound bed, exudate, surrounding skin, dressing.
    pub description: String,
}

/// What [`RECORD_VISIT`] saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitSaved {
    /// Edits queued in the outbox.
    pub edits: usize,
    /// The NEWS2 total recorded, when the set was complete.
    pub news2_total: Option<u8>,
}

/// A conflict, for the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictItem {
    /// Local id, for [`RESOLVE_CONFLICT`].
    pub id: i64,
    /// `Type/id`.
    pub reference: String,
    /// What the record is, e.g. "Task: Wound dressing change".
    pub title: String,
    /// The patient.
    pub patient_id: String,
    /// The patient's name, when on the device.
    pub patient_name: Option<String>,
    /// When the conflict was found.
    pub detected_at: DateTime<Utc>,
    /// When the device's version was made.
    pub mine_at: Option<String>,
    /// Who made the hub's version (organisation or author), if known.
    pub theirs_by: Option<String>,
    /// When the hub's version was made.
    pub theirs_at: Option<String>,
    /// Each element that differs, side by side.
    pub elements: Vec<ConflictElement>,
}

/// One element of a conflict, side by side. Values are shown as text; an
/// empty text means "absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictElement {
    /// The element's path, e.g. `status` or `note[0].text`.
    pub path: String,
    /// A label for people, e.g. "Status".
    pub label: String,
    /// The common ancestor's value.
    pub base: String,
    /// The device's value.
    pub mine: String,
    /// The hub's value.
    pub theirs: String,
}

/// Arguments of [`RESOLVE_CONFLICT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolveArgs {
    /// The conflict.
    pub id: i64,
    /// The decision.
    pub choice: ConflictChoice,
}

/// How a conflict is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConflictChoice {
    /// Keep the device's version.
    Mine,
    /// Keep the hub's version.
    Theirs,
    /// Per element: the hub's version with each listed element taken from
    /// the device's version or replaced by the text typed.
    Combined {
        /// One pick per element of the conflict.
        picks: Vec<ElementPick>,
    },
}

/// The decision for one element of a combined resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementPick {
    /// [`ConflictElement::path`].
    pub path: String,
    /// `mine`, `theirs`, or `value` (then `value` holds the text).
    pub take: String,
    /// The typed value when `take` is `value`.
    pub value: Option<String>,
}

/// Arguments of [`BREAK_GLASS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakGlassArgs {
    /// The request.
    pub request: BreakGlassRequest,
}

/// Emergency access to a patient outside the caseload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassRequest {
    /// The patient's NHS number (spaces allowed).
    pub nhs_number: String,
    /// Why (required; reviewed by the privacy officer).
    pub reason: String,
}

/// A break-glass grant in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// `Patient.id`.
    pub patient_id: String,
    /// The patient's name, once on the device.
    pub patient_name: Option<String>,
    /// The reason given.
    pub reason: String,
    /// When access ends.
    pub expires_at: DateTime<Utc>,
}
