//! The hub's side of sync (the protocol is `careshare-sync`'s): a feed per device of
//! exactly what its user may see now, pushed edits applied at most once, and the upload of
//! a device's offline audit chain.
//!
//! ## The feed
//!
//! Each registered device has its own feed (`sync_feed`): numbered rows, each an upsert
//! (naming the immutable version row to send), a removal or a patient purge. A device's
//! checkpoint is the number of the last row it committed. When a device has consumed its
//! feed and pulls again, the hub *refreshes* it: it works out which patients the user may
//! see now (`access::candidate_patients`, each confirmed by the policy), compares with what
//! the device was last sent (`sync_sent`) and appends the difference:
//!
//! * patients no longer visible → a purge (left the caseload, or the role changed);
//! * patients newly visible, every patient when the user's role, organisation or teams
//!   changed, and patients whose care links or consents changed → every current record of
//!   theirs is decided again: what became visible is sent, what became hidden is removed;
//! * every other change since the last refresh (by the hub's change sequence) to a record of
//!   a visible patient → sent if visible, removed if hidden or deleted.
//!
//! New records are sent in safety order (alerts, allergies, medicines, conditions, care
//! plans, observations, then the rest: `careshare_sync::priority`), so a nurse who loses
//! signal half-way through a first sync has what matters most.
//!
//! The guard decides on the access facts kept with each version (`resource_facts`, worked
//! out from its JSON when it was written), so a refresh reads no record's JSON; a page
//! splices each version's stored JSON text into the page unparsed. A page is served from
//! the feed, so an interrupted device resumes from its committed checkpoint and gets
//! exactly the rows after it.
//!
//! A refresh is written in one transaction, but for a large one (a first sync): its first
//! two pages' worth is committed before the device is answered, and the rest in the
//! background in transactions of a few thousand rows ([`FeedLock`]), so the device stores
//! its first pages while the rest is written. Each of those transactions leaves the feed,
//! `sync_sent` and the device's row consistent with one another, the row marked
//! incomplete until the last: pages say more follow meanwhile, a device that has every
//! row so far waits for the next, and should the writing stop half-way (the hub stopped),
//! the device's next pull refreshes again, deciding every patient the user may see
//! against what the device was sent, and purging any it may no longer see.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use careshare_policy::{Decision, DenyReason, FactsError};
use careshare_sync::{
    hub_apply_edit, priority, Change, Checkpoint, Edit, EditDecision, EditResult, PullRequest,
    PushBatch, PushResult, RemovalReason,
};
use serde_json::Value;
use sqlx::Row;
use tokio::task::JoinHandle;

use crate::access;
use crate::engine::{self, Authorize, EngineError, Outcome};
use crate::guard::Guard;
use crate::store::{
    self, Arg, Conn, Store, StoreError, VersionFacts, WriteTx, VERSION_FACTS_COLUMNS,
};

/// Largest page a device may ask for.
pub const MAX_PAGE: u32 = 2_000;

/// Resource types whose changes may open or close a patient's record to someone.
const LINKING_TYPES: [&str; 5] = [
    "Patient",
    "EpisodeOfCare",
    "CareTeam",
    "Encounter",
    "Consent",
];

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("checkpoint {0} is ahead of this device's feed ({1}): enrol the device again")]
    CheckpointAhead(i64, i64),
    #[error("{0}")]
    Audit(String),
}

impl From<sqlx::Error> for SyncError {
    fn from(e: sqlx::Error) -> SyncError {
        SyncError::Store(StoreError::Database(e))
    }
}

/// One row of a device's feed.
#[derive(Debug, Clone)]
enum FeedRow {
    /// `version_seq` names the version row to send: `res_type`/`res_id`, `version`.
    Upsert {
        res_type: String,
        res_id: String,
        version: i64,
        version_seq: i64,
        patient: String,
    },
    Remove {
        res_type: String,
        res_id: String,
        patient: Option<String>,
        reason: RemovalReason,
    },
    Purge {
        patient: String,
        reason: RemovalReason,
    },
}

fn reason_code(r: RemovalReason) -> &'static str {
    match r {
        RemovalReason::Deleted => "deleted",
        RemovalReason::LeftCaseload => "leftCaseload",
        RemovalReason::ConsentWithdrawn => "consentWithdrawn",
        RemovalReason::SecurityLabel => "securityLabel",
        RemovalReason::RoleChanged => "roleChanged",
        RemovalReason::DeviceRevoked => "deviceRevoked",
    }
}

fn reason_of(code: &str) -> RemovalReason {
    match code {
        "deleted" => RemovalReason::Deleted,
        "consentWithdrawn" => RemovalReason::ConsentWithdrawn,
        "securityLabel" => RemovalReason::SecurityLabel,
        "roleChanged" => RemovalReason::RoleChanged,
        "deviceRevoked" => RemovalReason::DeviceRevoked,
        _ => RemovalReason::LeftCaseload,
    }
}

/// Why a record the device holds is now hidden from it.
fn hidden_reason(d: &Decision) -> RemovalReason {
    match d.deny_reason() {
        Some(DenyReason::PatientObjection) => RemovalReason::ConsentWithdrawn,
        Some(
            DenyReason::SensitiveLabel
            | DenyReason::OtherOrganisationRestricted
            | DenyReason::UnknownAuthorRestricted,
        ) => RemovalReason::SecurityLabel,
        Some(DenyReason::RoleScope | DenyReason::RoleHasNoPatientAccess) => {
            RemovalReason::RoleChanged
        }
        _ => RemovalReason::LeftCaseload,
    }
}

struct DeviceState {
    global_seq: i64,
    feed_seq: i64,
    subject: String,
    patients: BTreeSet<String>,
    /// False while a refresh's rows are still being written, or when the writing stopped
    /// half-way.
    complete: bool,
}

async fn device_state(store: &Store, device_id: &str) -> Result<Option<DeviceState>, SyncError> {
    let row = sqlx::query(
        "SELECT global_seq, feed_seq, subject, patients, complete FROM sync_device \
         WHERE device_id = $1",
    )
    .bind(device_id)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let patients: String = row.try_get("patients")?;
    Ok(Some(DeviceState {
        global_seq: row.try_get("global_seq")?,
        feed_seq: row.try_get("feed_seq")?,
        subject: row.try_get("subject")?,
        patients: serde_json::from_str(&patients).unwrap_or_default(),
        complete: row.try_get::<i64, _>("complete")? != 0,
    }))
}

/// What the device was last sent, for one patient's records or one record:
/// (type, id) → (version, patient).
async fn sent_where(
    store: &Store,
    device_id: &str,
    which: Sent<'_>,
) -> Result<HashMap<(String, String), (i64, Option<String>)>, SyncError> {
    let q = match which {
        Sent::Patient(p) => sqlx::query(
            "SELECT res_type, res_id, version, patient_id FROM sync_sent \
             WHERE device_id = $1 AND patient_id = $2",
        )
        .bind(device_id)
        .bind(p),
        Sent::Record(t, i) => sqlx::query(
            "SELECT res_type, res_id, version, patient_id FROM sync_sent \
             WHERE device_id = $1 AND res_type = $2 AND res_id = $3",
        )
        .bind(device_id)
        .bind(t)
        .bind(i),
    };
    let mut out = HashMap::new();
    for r in q.fetch_all(store.pool()).await? {
        out.insert(
            (r.try_get("res_type")?, r.try_get("res_id")?),
            (r.try_get("version")?, r.try_get("patient_id")?),
        );
    }
    Ok(out)
}

enum Sent<'a> {
    Patient(&'a str),
    Record(&'a str, &'a str),
}

/// Current versions (at `snapshot`) in one patient's compartment, with their stored
/// access facts (not their content).
async fn compartment_now(
    store: &Store,
    conn: &mut Conn<'_>,
    patient: &str,
    snapshot: i64,
) -> Result<Vec<VersionFacts>, SyncError> {
    if let Some(native) = store.sqlite_reader() {
        return compartment_native(native, patient, snapshot).await;
    }
    Ok(conn
        .fetch_version_facts(
            &compartment_sql(),
            &[
                Arg::S(patient.to_string()),
                Arg::I(snapshot),
                Arg::I(snapshot),
            ],
        )
        .await?)
}

fn compartment_sql() -> String {
    format!(
        "SELECT {VERSION_FACTS_COLUMNS} FROM resource_version v \
         LEFT JOIN resource_facts f ON f.seq = v.seq WHERE v.seq IN \
         (SELECT seq FROM compartment WHERE patient_id = $1) AND v.seq <= $2 \
         AND (v.superseded_seq IS NULL OR v.superseded_seq > $3) AND v.deleted = 0"
    )
}

/// [`compartment_now`] through SQLite's native driver, as one JSON array built by SQLite
/// (a row at a time through the driver costs more than the rest of deciding it). Versions
/// are immutable but for being superseded, and the query reads as of the snapshot: any
/// connection gives the same rows.
async fn compartment_native(
    native: &sqlx::SqlitePool,
    patient: &str,
    snapshot: i64,
) -> Result<Vec<VersionFacts>, SyncError> {
    let sql = format!(
        "SELECT json_group_array(json_array(seq, res_type, res_id, version, deleted, facts)) \
         FROM ({})",
        compartment_sql()
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(patient)
        .bind(snapshot)
        .bind(snapshot)
        .fetch_one(native)
        .await?;
    type Columns = (i64, String, String, i64, i64, Option<String>);
    let rows: Vec<Columns> = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt("compartment versions".into(), e))?;
    Ok(rows
        .into_iter()
        .map(
            |(seq, res_type, id, version, deleted, facts)| VersionFacts {
                seq,
                res_type,
                id,
                version,
                deleted: deleted != 0,
                facts,
            },
        )
        .collect())
}

/// Patients whose versions are read while an earlier one's are decided.
const READ_AHEAD: usize = 2;

/// The current versions of each of a list of patients' compartments, in turn. On SQLite
/// the next [`READ_AHEAD`] patients' are read while one patient's are decided, each in a
/// task of its own on the native pool (which has as many connections): reading costs more
/// than deciding, and so keeps both cores busy. On PostgreSQL each is read when asked for.
struct Compartments<'s> {
    store: &'s Store,
    snapshot: i64,
    patients: Vec<String>,
    next: usize,
    reads: VecDeque<JoinHandle<Result<Vec<VersionFacts>, SyncError>>>,
}

impl<'s> Compartments<'s> {
    fn new(store: &'s Store, snapshot: i64, patients: Vec<String>) -> Compartments<'s> {
        Compartments {
            store,
            snapshot,
            patients,
            next: 0,
            reads: VecDeque::new(),
        }
    }

    /// The next patient and their current versions.
    async fn next(
        &mut self,
        conn: &mut Conn<'_>,
    ) -> Result<Option<(String, Vec<VersionFacts>)>, SyncError> {
        let Some(patient) = self.patients.get(self.next).cloned() else {
            return Ok(None);
        };
        if let Some(native) = self.store.sqlite_reader() {
            // This patient's read and the next READ_AHEAD.
            while self.reads.len() <= READ_AHEAD {
                let Some(p) = self.patients.get(self.next + self.reads.len()).cloned() else {
                    break;
                };
                let (pool, snapshot) = (native.clone(), self.snapshot);
                self.reads.push_back(tokio::spawn(async move {
                    compartment_native(&pool, &p, snapshot).await
                }));
            }
        }
        self.next += 1;
        let versions = match self.reads.pop_front() {
            // A read's task ends only by finishing (it is aborted only on drop).
            Some(read) => read
                .await
                .map_err(|_| SyncError::from(sqlx::Error::WorkerCrashed))??,
            None => compartment_now(self.store, conn, &patient, self.snapshot).await?,
        };
        Ok(Some((patient, versions)))
    }
}

impl Drop for Compartments<'_> {
    /// A refresh that fails half-way stops the reads it started.
    fn drop(&mut self) {
        for read in &self.reads {
            read.abort();
        }
    }
}

/// Brings the device's feed up to date with what its user may see now. `held` is the
/// refresh lock: released when every row is written. A large refresh commits its first
/// `first_rows` rows before returning and writes the rest in the background
/// ([`FeedLock::written_so_far`]), in transactions of the [`FeedLock`]'s chunk size.
async fn refresh(
    store: &Arc<Store>,
    g: &mut Guard,
    device_id: &str,
    feed: &Arc<FeedLock>,
    held: tokio::sync::OwnedMutexGuard<()>,
    first_rows: usize,
) -> Result<(), SyncError> {
    let mut pooled = store.reader().await?;
    let mut conn = Conn::Any(&mut pooled);
    let started = std::time::Instant::now();
    let snapshot = store::max_seq(&mut conn).await?;
    let state = device_state(store, device_id).await?;
    let fingerprint = g.fingerprint();
    let mut now_patients = BTreeSet::new();
    let candidates: Vec<String> = access::candidate_patients(&mut conn, g.subject(), g.grants())
        .await?
        .into_iter()
        .collect();
    let candidates_at = started.elapsed();
    g.preload_patients(&mut conn, &candidates).await?;
    let preloaded_at = started.elapsed();
    let candidates_len = candidates.len();
    for p in candidates {
        if g.patient_open(&mut conn, &p).await? {
            now_patients.insert(p);
        }
    }
    let (prev_global, prev_feed, prev_subject, prev_patients, complete) = match &state {
        Some(s) => (
            s.global_seq,
            s.feed_seq,
            s.subject.clone(),
            s.patients.clone(),
            s.complete,
        ),
        None => (0, 0, String::new(), BTreeSet::new(), true),
    };
    if state.is_some()
        && complete
        && snapshot == prev_global
        && fingerprint == prev_subject
        && now_patients == prev_patients
    {
        return Ok(());
    }
    let role_changed = state.is_some() && fingerprint != prev_subject;
    let mut rows: Vec<FeedRow> = Vec::new();
    // The records whose copy on the device changes (sent anew or removed), each decided
    // once; and which of those it holds now (their rows are replaced).
    let mut sent_changes: HashSet<(String, String)> = HashSet::new();
    let mut held_before: BTreeSet<(String, String)> = BTreeSet::new();

    for p in prev_patients.difference(&now_patients) {
        rows.push(FeedRow::Purge {
            patient: p.clone(),
            reason: if role_changed {
                RemovalReason::RoleChanged
            } else {
                RemovalReason::LeftCaseload
            },
        });
    }
    let mut decide_again: BTreeSet<String> =
        now_patients.difference(&prev_patients).cloned().collect();
    // After an incomplete write nobody knows which of a patient's records are on their way:
    // every patient is decided again against what the device was sent.
    if role_changed || !complete {
        decide_again.extend(now_patients.iter().cloned());
    }

    // Every version current at the snapshot that changed since the last refresh.
    let changed: Vec<VersionFacts> = if state.is_some() {
        let sql = format!(
            "SELECT {VERSION_FACTS_COLUMNS} FROM resource_version v \
             LEFT JOIN resource_facts f ON f.seq = v.seq WHERE v.seq > $1 AND v.seq <= $2 \
             AND (v.superseded_seq IS NULL OR v.superseded_seq > $3)"
        );
        conn.fetch_version_facts(
            &sql,
            &[Arg::I(prev_global), Arg::I(snapshot), Arg::I(snapshot)],
        )
        .await?
    } else {
        Vec::new()
    };
    let mut changed_facts = store::version_facts(&mut conn, &changed).await?;
    let mut changed_patients: HashMap<i64, Vec<String>> = HashMap::new();
    for s in &changed {
        let patients = conn
            .fetch_strings(
                "SELECT patient_id FROM compartment WHERE seq = $1",
                &[Arg::I(s.seq)],
                "patient_id",
            )
            .await?;
        if LINKING_TYPES.contains(&s.res_type.as_str()) {
            decide_again.extend(
                patients
                    .iter()
                    .filter(|p| now_patients.contains(*p))
                    .cloned(),
            );
        }
        changed_patients.insert(s.seq, patients);
    }

    let linked_at = started.elapsed();
    // Patients decided again: every current record of theirs.
    let mut first: Vec<(u8, FeedRow)> = Vec::new();
    let mut compartments =
        Compartments::new(store, snapshot, decide_again.iter().cloned().collect());
    while let Some((p, versions)) = compartments.next(&mut conn).await? {
        // A device's first refresh: it was sent nothing.
        let sent = match &state {
            Some(_) => sent_where(store, device_id, Sent::Patient(&p)).await?,
            None => HashMap::new(),
        };
        // This patient's current records, to find what the device holds of theirs that no
        // longer is one (only a device that was sent some).
        let mut seen = BTreeSet::new();
        // Every version here has content (deletions are not current records).
        let facts: Vec<_> = store::version_facts(&mut conn, &versions)
            .await?
            .into_iter()
            .map(|f| f.unwrap_or(Err(FactsError::NotAnObject)))
            .collect();
        let verdicts = g.check_many(&mut conn, facts).await?;
        for (s, v) in versions.into_iter().zip(verdicts) {
            let key = (s.res_type, s.id);
            if !sent.is_empty() {
                seen.insert(key.clone());
            }
            if sent_changes.contains(&key) {
                continue;
            }
            let held = sent.get(&key).map(|(ver, _)| *ver);
            if v.is_permit() {
                if held == Some(s.version) {
                    continue;
                }
                if held.is_some() {
                    held_before.insert(key.clone());
                }
                first.push((
                    priority(&key.0),
                    FeedRow::Upsert {
                        res_type: key.0.clone(),
                        res_id: key.1.clone(),
                        version: s.version,
                        version_seq: s.seq,
                        patient: p.clone(),
                    },
                ));
                sent_changes.insert(key);
            } else if held.is_some() {
                held_before.insert(key.clone());
                rows.push(FeedRow::Remove {
                    res_type: key.0.clone(),
                    res_id: key.1.clone(),
                    patient: Some(p.clone()),
                    reason: hidden_reason(&v.decision),
                });
                sent_changes.insert(key);
            }
        }
        for (key, (_, _)) in sent {
            if !seen.contains(&key) && !sent_changes.contains(&key) {
                held_before.insert(key.clone());
                rows.push(FeedRow::Remove {
                    res_type: key.0.clone(),
                    res_id: key.1.clone(),
                    patient: Some(p.clone()),
                    reason: RemovalReason::Deleted,
                });
                sent_changes.insert(key);
            }
        }
    }
    // Safety order for what is new; stable within a kind.
    first.sort_by_key(|(rank, _)| *rank);

    let decided_at = started.elapsed();
    // Every other change.
    let mut later: Vec<FeedRow> = Vec::new();
    for (s, facts) in changed.iter().zip(changed_facts.iter_mut()) {
        let key = (s.res_type.clone(), s.id.clone());
        if sent_changes.contains(&key) {
            continue;
        }
        let patients = &changed_patients[&s.seq];
        if patients.iter().any(|p| decide_again.contains(p)) {
            continue;
        }
        let visible_patient = patients.iter().find(|p| now_patients.contains(*p)).cloned();
        let held = sent_where(store, device_id, Sent::Record(&s.res_type, &s.id))
            .await?
            .remove(&key);
        let decision = match (&visible_patient, s.deleted, facts.take()) {
            (Some(_), false, Some(facts)) => Some(g.check_facts(&mut conn, facts).await?),
            _ => None,
        };
        match (decision, &visible_patient) {
            (Some(v), Some(p)) if v.is_permit() => {
                if held.is_some() {
                    held_before.insert(key.clone());
                }
                if held.map(|(ver, _)| ver) != Some(s.version) {
                    later.push(FeedRow::Upsert {
                        res_type: key.0.clone(),
                        res_id: key.1.clone(),
                        version: s.version,
                        version_seq: s.seq,
                        patient: p.clone(),
                    });
                    sent_changes.insert(key);
                }
            }
            (decision, _) => {
                if let Some((_, patient)) = held {
                    held_before.insert(key.clone());
                    later.push(FeedRow::Remove {
                        res_type: s.res_type.clone(),
                        res_id: s.id.clone(),
                        patient,
                        reason: match decision {
                            Some(v) => hidden_reason(&v.decision),
                            None => RemovalReason::Deleted,
                        },
                    });
                    sent_changes.insert(key);
                }
            }
        }
    }
    drop(pooled);
    let changes_at = started.elapsed();

    let mut all: Vec<FeedRow> = rows;
    all.extend(first.into_iter().map(|(_, r)| r));
    all.extend(later);
    let all_len = all.len();
    let plan = FeedWrite {
        device_id: device_id.to_string(),
        first_seq: prev_feed + 1,
        rows: all,
        held_before,
        snapshot,
        fingerprint,
        patients_before: prev_patients,
        patients_after: now_patients,
    };
    let patients_len = plan.patients_after.len();
    let written = plan.write(store, feed, held, first_rows).await;
    tracing::debug!(
        device = device_id,
        rows = all_len,
        patients = patients_len,
        candidates = candidates_len,
        candidates_ms = candidates_at.as_millis() as u64,
        facts_ms = (preloaded_at - candidates_at).as_millis() as u64,
        links_ms = linked_at.as_millis() as u64,
        decide_ms = (decided_at - linked_at).as_millis() as u64,
        changes_ms = (changes_at - decided_at).as_millis() as u64,
        write_ms = (started.elapsed() - changes_at).as_millis() as u64,
        "sync feed refreshed"
    );
    written
}

/// Rows of a multi-row INSERT, in chunks small enough for every engine's parameter limit.
async fn insert_rows(
    tx: &mut store::StoreTx,
    dialect: store::Dialect,
    head: &str,
    width: usize,
    rows: Vec<Vec<Arg>>,
) -> Result<(), SyncError> {
    for chunk in rows.chunks(500) {
        let mut sql = format!("{head} VALUES ");
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push(',');
                }
                n += 1;
                // SQLite looks numbered parameters up by scanning, quadratic on wide
                // statements: positional ones there.
                match dialect {
                    store::Dialect::Sqlite => sql.push('?'),
                    store::Dialect::Postgres => sql.push_str(&format!("${n}")),
                }
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for a in row {
                q = match a {
                    Arg::I(i) => q.bind(*i),
                    Arg::S(s) => q.bind(s.as_str()),
                    Arg::OptS(s) => q.bind(s.as_deref()),
                };
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Rows a large refresh's writing commits at a time after the first pages, unless the
/// hub is told otherwise ([`FeedLock::new`]).
pub const CHUNK_ROWS: usize = 2_500;

/// Serialises the refreshes of devices' feeds, and follows the refreshes whose rows are
/// still being written (after the first ones, in the background), so that their
/// devices' pulls take the rows committed so far and wait for the next when they have
/// them all.
pub struct FeedLock {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Device → the last feed row committed so far; the sender is dropped when done.
    writing: std::sync::Mutex<HashMap<String, tokio::sync::watch::Receiver<i64>>>,
    chunk_rows: usize,
}

impl Default for FeedLock {
    fn default() -> FeedLock {
        FeedLock::new(CHUNK_ROWS)
    }
}

impl FeedLock {
    /// Large refreshes written `chunk_rows` (at least 1) rows per transaction.
    pub fn new(chunk_rows: usize) -> FeedLock {
        FeedLock {
            lock: Arc::default(),
            writing: std::sync::Mutex::default(),
            chunk_rows: chunk_rows.max(1),
        }
    }

    /// Waits until no refresh is being written, and keeps any from starting while held.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    fn writing(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, tokio::sync::watch::Receiver<i64>>> {
        // The map is only inserted into and removed from: a panic elsewhere leaves it whole.
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the refresh being written for `device_id` stands, if one is.
    fn written_so_far(&self, device_id: &str) -> Option<tokio::sync::watch::Receiver<i64>> {
        self.writing().get(device_id).cloned()
    }
}

/// The rows a refresh appends to a device's feed, and the device's state once they are
/// all written.
struct FeedWrite {
    device_id: String,
    /// The feed sequence of `rows[0]`.
    first_seq: i64,
    rows: Vec<FeedRow>,
    /// The records among `rows` that the device held before (their `sync_sent` rows are
    /// replaced).
    held_before: BTreeSet<(String, String)>,
    snapshot: i64,
    fingerprint: String,
    patients_before: BTreeSet<String>,
    patients_after: BTreeSet<String>,
}

impl FeedWrite {
    /// Writes every row: in one transaction when there are few; otherwise the first
    /// `first_rows` now and the rest in the background, in transactions of the
    /// [`FeedLock`]'s chunk size that each leave the device's state consistent with the rows
    /// committed so far (marked incomplete until the last). `held` is released when the
    /// last row is written.
    async fn write(
        self,
        store: &Arc<Store>,
        feed: &Arc<FeedLock>,
        held: tokio::sync::OwnedMutexGuard<()>,
        first_rows: usize,
    ) -> Result<(), SyncError> {
        let first_rows = first_rows.max(1);
        let chunk_rows = feed.chunk_rows;
        let mut patients = self.patients_before.clone();
        if self.rows.len() <= first_rows + chunk_rows {
            return self
                .write_rows(store, 0..self.rows.len(), &mut patients)
                .await;
        }
        self.write_rows(store, 0..first_rows, &mut patients).await?;
        let (tx, rx) = tokio::sync::watch::channel(self.first_seq + first_rows as i64 - 1);
        feed.writing().insert(self.device_id.clone(), rx);
        let (store, feed) = (store.clone(), feed.clone());
        tokio::spawn(async move {
            let _held = held;
            let mut from = first_rows;
            while from < self.rows.len() {
                let to = (from + chunk_rows).min(self.rows.len());
                if let Err(e) = self.write_rows(&store, from..to, &mut patients).await {
                    // The device's state says incomplete: its next pull decides again.
                    tracing::warn!(
                        device = self.device_id,
                        error = %e,
                        "the rest of a sync feed could not be written now"
                    );
                    break;
                }
                tx.send_replace(self.first_seq + to as i64 - 1);
                from = to;
            }
            feed.writing().remove(&self.device_id);
        });
        Ok(())
    }

    /// Commits `range` of the rows in one transaction: the feed rows, the device's
    /// `sync_sent` view of its replica after them, and the device's state (complete when
    /// the range ends the rows). `sent` holds the patients whose records the device may
    /// hold once the rows before `range` are in (those it held before and was not told to
    /// purge, and every patient it was sent a record of), and is brought past `range`.
    async fn write_rows(
        &self,
        store: &Store,
        range: std::ops::Range<usize>,
        sent: &mut BTreeSet<String>,
    ) -> Result<(), SyncError> {
        let complete = range.end == self.rows.len();
        for r in &self.rows[range.clone()] {
            match r {
                FeedRow::Purge { patient, .. } => {
                    sent.remove(patient);
                }
                FeedRow::Upsert { patient, .. } => {
                    sent.insert(patient.clone());
                }
                FeedRow::Remove { .. } => {}
            }
        }
        let patients = if complete {
            &self.patients_after
        } else {
            &*sent
        };
        let started = std::time::Instant::now();
        let mut tx = store.begin().await?;
        // Upserts (nearly every row of a first sync) go in as one JSON array per
        // statement, [[feed seq, version seq, patient, type, id, version], …]: one bind
        // instead of eight per row, for the feed and for what the device will hold. The
        // rest go in as rows.
        let mut upserts: Vec<(i64, i64, &str, &str, &str, i64)> = Vec::new();
        let mut others: Vec<Vec<Arg>> = Vec::new();
        // What the device no longer holds as sent: purged patients' records, removed
        // records, and records sent anew (their row is written again).
        let mut purged: Vec<&str> = Vec::new();
        let mut unsent: Vec<(&str, &str)> = Vec::new();
        let device = || Arg::S(self.device_id.clone());
        for (i, r) in self.rows[range.clone()].iter().enumerate() {
            let seq = self.first_seq + (range.start + i) as i64;
            match r {
                FeedRow::Upsert {
                    res_type,
                    res_id,
                    version,
                    version_seq,
                    patient,
                } => {
                    if !self.held_before.is_empty()
                        && self
                            .held_before
                            .contains(&(res_type.clone(), res_id.clone()))
                    {
                        unsent.push((res_type, res_id));
                    }
                    upserts.push((seq, *version_seq, patient, res_type, res_id, *version))
                }
                FeedRow::Remove {
                    res_type,
                    res_id,
                    patient,
                    reason,
                } => {
                    unsent.push((res_type, res_id));
                    others.push(vec![
                        device(),
                        Arg::I(seq),
                        Arg::S("remove".into()),
                        Arg::OptS(Some(res_type.clone())),
                        Arg::OptS(Some(res_id.clone())),
                        Arg::I(0),
                        Arg::OptS(patient.clone()),
                        Arg::OptS(Some(reason_code(*reason).into())),
                    ])
                }
                FeedRow::Purge { patient, reason } => {
                    purged.push(patient);
                    others.push(vec![
                        device(),
                        Arg::I(seq),
                        Arg::S("purge".into()),
                        Arg::OptS(None),
                        Arg::OptS(None),
                        Arg::I(0),
                        Arg::OptS(Some(patient.clone())),
                        Arg::OptS(Some(reason_code(*reason).into())),
                    ])
                }
            }
        }
        let (feed_from_json, sent_from_json) = match store.dialect() {
            store::Dialect::Sqlite => (
                "INSERT INTO sync_feed (device_id, seq, kind, res_type, res_id, version_seq, patient_id, reason) \
                 SELECT $1, j.value ->> 0, 'upsert', j.value ->> 3, j.value ->> 4, j.value ->> 1, \
                 j.value ->> 2, NULL FROM json_each($2) j",
                "INSERT INTO sync_sent (device_id, res_type, res_id, version, patient_id) \
                 SELECT $1, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 2 \
                 FROM json_each($2) j",
            ),
            store::Dialect::Postgres => (
                "INSERT INTO sync_feed (device_id, seq, kind, res_type, res_id, version_seq, patient_id, reason) \
                 SELECT $1, (j ->> 0)::bigint, 'upsert', j ->> 3, j ->> 4, (j ->> 1)::bigint, j ->> 2, \
                 NULL FROM json_array_elements($2::text::json) j",
                "INSERT INTO sync_sent (device_id, res_type, res_id, version, patient_id) \
                 SELECT $1, j ->> 3, j ->> 4, (j ->> 5)::bigint, j ->> 2 \
                 FROM json_array_elements($2::text::json) j",
            ),
        };
        let chunks: Vec<String> = upserts
            .chunks(20_000)
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()))
            .collect();
        insert_rows(
            &mut tx,
            store.dialect(),
            "INSERT INTO sync_feed (device_id, seq, kind, res_type, res_id, version_seq, patient_id, reason)",
            8,
            others,
        )
        .await?;
        for p in purged {
            sqlx::query("DELETE FROM sync_sent WHERE device_id = $1 AND patient_id = $2")
                .bind(&self.device_id)
                .bind(p)
                .execute(&mut *tx)
                .await?;
        }
        for (t, i) in unsent {
            sqlx::query(
                "DELETE FROM sync_sent WHERE device_id = $1 AND res_type = $2 AND res_id = $3",
            )
            .bind(&self.device_id)
            .bind(t)
            .bind(i)
            .execute(&mut *tx)
            .await?;
        }
        let feed_at = started.elapsed();
        // The upserts' feed rows, and what the device will hold: exactly the records they
        // send (each at most once in a refresh).
        for sql in [feed_from_json, sent_from_json] {
            for json in &chunks {
                sqlx::query(sql)
                    .bind(&self.device_id)
                    .bind(json.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let sent_at = started.elapsed();
        sqlx::query(
            "INSERT INTO sync_device (device_id, global_seq, feed_seq, subject, patients, complete) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO UPDATE SET \
             global_seq = excluded.global_seq, feed_seq = excluded.feed_seq, \
             subject = excluded.subject, patients = excluded.patients, \
             complete = excluded.complete",
        )
        .bind(&self.device_id)
        .bind(self.snapshot)
        .bind(self.first_seq + range.end as i64 - 1)
        .bind(&self.fingerprint)
        .bind(serde_json::to_string(patients).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(complete))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::debug!(
            device = self.device_id,
            rows = range.len(),
            complete,
            others_ms = feed_at.as_millis() as u64,
            upserts_ms = (sent_at - feed_at).as_millis() as u64,
            commit_ms = (started.elapsed() - sent_at).as_millis() as u64,
            "sync feed written"
        );
        Ok(())
    }
}

/// The last row of the device's feed committed so far (0 before its first), and whether
/// the rows of its last refresh are all written.
async fn committed_feed(store: &Store, device_id: &str) -> Result<(i64, bool), SyncError> {
    Ok(device_state(store, device_id)
        .await?
        .map_or((0, true), |s| (s.feed_seq, s.complete)))
}

/// Serves one page of a device's feed after its checkpoint, refreshing the feed first when
/// the device has consumed it. While the rows of a refresh are still being written (or
/// when their writing stopped half-way) a page says more follow; a device that has every
/// row committed so far waits for the next ones (or, when the writing stopped, has its
/// feed refreshed again).
pub async fn pull(
    store: &Arc<Store>,
    g: &mut Guard,
    device_id: &str,
    req: &PullRequest,
    feed: &Arc<FeedLock>,
) -> Result<PulledPage, SyncError> {
    let after = req.checkpoint.map(|c| c.sequence()).unwrap_or(0);
    let limit = req.page_size.clamp(1, MAX_PAGE) as i64;
    let unfinished = loop {
        let (feed_seq, complete) = committed_feed(store, device_id).await?;
        if after > feed_seq {
            return Err(SyncError::CheckpointAhead(after, feed_seq));
        }
        if after < feed_seq {
            break !complete;
        }
        if let Some(mut written) = feed.written_so_far(device_id) {
            // The device has every row committed so far: wait for the next (an error is
            // the end of the writing, whose state the next round reads).
            let _ = written.wait_for(|&seq| seq > after).await;
            continue;
        }
        let held = feed.lock.clone().lock_owned().await;
        if committed_feed(store, device_id).await?.0 != after {
            continue;
        }
        // Two pages' worth first: the device commits one while it fetches the next.
        refresh(store, g, device_id, feed, held, 2 * limit as usize).await?;
        break !committed_feed(store, device_id).await?.1;
    };
    // The feed rows with the versions their upserts send, in one query; on SQLite through
    // the native driver (a page is many rows).
    let sql = "SELECT f.seq, f.kind, f.res_type, f.res_id, f.patient_id, f.reason, \
         v.res_type AS v_type, v.res_id AS v_id, v.version, v.content \
         FROM sync_feed f LEFT JOIN resource_version v \
         ON f.kind = 'upsert' AND v.seq = f.version_seq \
         WHERE f.device_id = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3";
    match store.sqlite_reader() {
        Some(native) => {
            let rows = sqlx::query(sql)
                .bind(device_id)
                .bind(after)
                .bind(limit + 1)
                .fetch_all(native)
                .await?;
            page_json(&rows, after, limit, unfinished)
        }
        None => {
            let rows = sqlx::query(sql)
                .bind(device_id)
                .bind(after)
                .bind(limit + 1)
                .fetch_all(store.pool())
                .await?;
            page_json(&rows, after, limit, unfinished)
        }
    }
}

/// The page of feed rows `rows` (up to `limit`, one more if more wait) as the JSON of a
/// `careshare_sync::PullPage`; it says more follow when more rows wait, or when the feed's
/// last refresh is `unfinished`.
fn page_json<R>(
    rows: &[R],
    after: i64,
    limit: i64,
    unfinished: bool,
) -> Result<PulledPage, SyncError>
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let more = unfinished || rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    // The page is written as JSON text around each version's stored JSON, which is sent
    // as it is stored (parsing and printing it again would cost more than the rest).
    let size: usize = rows
        .iter()
        .map(|r| {
            r.try_get::<Option<&str>, _>("content")
                .ok()
                .flatten()
                .map_or(0, str::len)
        })
        .sum();
    let mut json = String::with_capacity(size + rows.len() * 160 + 64);
    json.push_str("{\"changes\":[");
    let mut patients = BTreeSet::new();
    let mut next = after;
    let mut first = true;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    for r in rows {
        next = r.try_get("seq")?;
        let kind: &str = r.try_get("kind")?;
        let patient: Option<String> = r.try_get("patient_id")?;
        let reason: Option<&str> = r.try_get("reason")?;
        let reason = reason_of(reason.unwrap_or_default());
        let content: Option<&str> = r.try_get("content")?;
        if kind == "upsert" && content.is_none() {
            continue;
        }
        if !first {
            json.push(',');
        }
        match (kind, content) {
            ("upsert", Some(content)) => {
                let res_type: &str = r.try_get("v_type")?;
                let res_id: &str = r.try_get("v_id")?;
                let version: i64 = r.try_get("version")?;
                json.push_str("{\"upsert\":{\"resourceType\":");
                json.push_str(&q(res_type));
                json.push_str(",\"id\":");
                json.push_str(&q(res_id));
                json.push_str(",\"version\":");
                json.push_str(&version.to_string());
                json.push_str(",\"resource\":");
                json.push_str(content);
                json.push_str(",\"patient\":");
                match &patient {
                    Some(p) => json.push_str(&q(p)),
                    None => json.push_str("null"),
                }
                json.push_str("}}");
                if let Some(p) = patient {
                    patients.insert(p);
                }
            }
            ("remove", _) => json.push_str(
                &serde_json::to_string(&Change::<Value>::Remove {
                    resource_type: r
                        .try_get::<Option<String>, _>("res_type")?
                        .unwrap_or_default(),
                    id: r
                        .try_get::<Option<String>, _>("res_id")?
                        .unwrap_or_default(),
                    reason,
                })
                .unwrap_or_default(),
            ),
            _ => json.push_str(
                &serde_json::to_string(&Change::<Value>::PurgePatient {
                    patient: patient.unwrap_or_default(),
                    reason,
                })
                .unwrap_or_default(),
            ),
        }
        first = false;
    }
    json.push_str(&format!(
        "],\"next\":{},\"more\":{more}}}",
        Checkpoint::from_sequence(next)
    ));
    Ok(PulledPage { json, patients })
}

/// A page of a device's feed, as the JSON of a `careshare_sync::PullPage`, and the
/// patients whose records it carries (for the audit trail).
pub struct PulledPage {
    pub json: String,
    pub patients: BTreeSet<String>,
}

/// The engine's access checks for a pushed edit, which also record, in the edit's own
/// transaction, that this edit made the new version.
struct PushWrite<'g> {
    guard: &'g mut Guard,
    client_edit_id: String,
    device_id: String,
}

impl Authorize for PushWrite<'_> {
    async fn write(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        current: Option<&Value>,
        proposed: Option<&mut Value>,
    ) -> Result<(), EngineError> {
        Authorize::write(self.guard, tx, res_type, id, current, proposed).await
    }

    async fn read(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        found: &Value,
    ) -> Result<(), EngineError> {
        Authorize::read(self.guard, tx, res_type, id, found).await
    }

    async fn before_commit(
        &mut self,
        tx: &mut WriteTx<'_>,
        outcomes: &[Outcome],
    ) -> Result<(), EngineError> {
        let version = outcomes.first().map(|o| o.version).unwrap_or(0);
        let now = tx.now();
        tx.conn()
            .await?
            .execute(
                "INSERT INTO sync_edit (client_edit_id, device_id, version, applied_at) VALUES ($1, $2, $3, $4)",
                &[
                    Arg::S(self.client_edit_id.clone()),
                    Arg::S(self.device_id.clone()),
                    Arg::I(version),
                    Arg::I(now),
                ],
            )
            .await?;
        Ok(())
    }
}

fn rejected(client_edit_id: &str, e: EngineError) -> EditResult {
    let err = crate::api::ApiError::from(e);
    EditResult::Rejected {
        client_edit_id: client_edit_id.to_string(),
        outcome: careshare_fhir::operation_outcome(&err.issues),
    }
}

/// Applies a device's pushed edits, each on its own: at most once per client edit id,
/// merged three-way when stale, a conflict when the merge cannot decide, rejected (with an
/// OperationOutcome) when invalid or not permitted. One bad edit never blocks the others.
///
/// The hub decides each edit id once: a re-sent edit gets the answer it got before (its
/// access checked again), so a late or repeated request can never apply an edit the device
/// was told would not apply. An edit that cannot be decided now is left out of the answer;
/// the device keeps it and sends it again.
pub async fn push(
    store: &Store,
    g: &mut Guard,
    device_id: &str,
    batch: &PushBatch,
) -> Result<PushResult, SyncError> {
    let mut results = Vec::with_capacity(batch.edits.len());
    let mut answered = answered_before(store, &batch.edits).await?;
    for edit in &batch.edits {
        let before = answered.remove(&edit.client_edit_id);
        if let Some(r) = answer(store, g, device_id, edit, before).await? {
            results.push(r);
        }
    }
    Ok(PushResult { results })
}

/// Edit ids looked up at once when a batch comes in.
const LOOKUP_CHUNK: usize = 500;

/// What the hub answered before to those of `edits` it has seen, by edit id: one query
/// for a batch instead of one per edit.
async fn answered_before(
    store: &Store,
    edits: &[Edit],
) -> Result<HashMap<String, Previous>, SyncError> {
    let mut out = HashMap::new();
    for chunk in edits.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT client_edit_id, version, answer FROM sync_edit WHERE client_edit_id IN ({})",
            store::numbered_params(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q.bind(e.client_edit_id.as_str());
        }
        for row in q.fetch_all(store.pool()).await? {
            out.insert(row.try_get("client_edit_id")?, previous_of(&row)?);
        }
    }
    Ok(out)
}

/// What the hub answered an edit id before.
enum Previous {
    Applied(i64),
    Answered(Box<EditResult>),
}

async fn previous(store: &Store, client_edit_id: &str) -> Result<Option<Previous>, SyncError> {
    sqlx::query("SELECT version, answer FROM sync_edit WHERE client_edit_id = $1")
        .bind(client_edit_id)
        .fetch_optional(store.pool())
        .await?
        .map(|row| previous_of(&row))
        .transpose()
}

/// A `sync_edit` row (its `version` and `answer`).
fn previous_of(row: &sqlx::any::AnyRow) -> Result<Previous, SyncError> {
    let answer: Option<String> = row.try_get("answer")?;
    Ok(match answer.and_then(|a| serde_json::from_str(&a).ok()) {
        Some(r) => Previous::Answered(Box::new(r)),
        None => Previous::Applied(row.try_get("version")?),
    })
}

/// Keeps the answer given to an edit that was not applied.
async fn remember(store: &Store, device_id: &str, result: &EditResult) -> Result<(), SyncError> {
    let text = serde_json::to_string(result).unwrap_or_default();
    let r = sqlx::query(
        "INSERT INTO sync_edit (client_edit_id, device_id, version, applied_at, answer) \
         VALUES ($1, $2, 0, $3, $4)",
    )
    .bind(result.client_edit_id())
    .bind(device_id)
    .bind(chrono::Utc::now().timestamp_micros())
    .bind(text)
    .execute(store.pool())
    .await;
    match r {
        Ok(_) => Ok(()),
        // Decided concurrently by another request: the first answer stands.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether the caller may still see what the edit touches (the record as it stands).
async fn still_visible(store: &Store, g: &mut Guard, edit: &Edit) -> Result<bool, SyncError> {
    let mut pooled = store.reader().await?;
    let mut conn = Conn::Any(&mut pooled);
    match store::read_current(&mut conn, &edit.resource_type, &edit.id)
        .await?
        .filter(|s| !s.deleted)
    {
        Some(s) => Ok(g
            .check_stored(&mut conn, &s)
            .await?
            .is_some_and(|v| v.is_permit())),
        None => Ok(true),
    }
}

/// The answer to `edit`, given what was answered to its id `before` the batch came in.
async fn answer(
    store: &Store,
    g: &mut Guard,
    device_id: &str,
    edit: &Edit,
    before: Option<Previous>,
) -> Result<Option<EditResult>, SyncError> {
    let id = edit.client_edit_id.as_str();
    match before {
        Some(Previous::Applied(version)) => {
            return Ok(Some(EditResult::AlreadyApplied {
                client_edit_id: id.to_string(),
                version,
            }))
        }
        Some(Previous::Answered(r)) => {
            return Ok(Some(if still_visible(store, g, edit).await? {
                *r
            } else {
                rejected(
                    id,
                    EngineError::NotFound(format!(
                        "{}/{} does not exist",
                        edit.resource_type, edit.id
                    )),
                )
            }))
        }
        None => {}
    }
    let result = push_one(store, g, device_id, edit).await?;
    if let Some(r @ (EditResult::Conflict { .. } | EditResult::Rejected { .. })) = &result {
        remember(store, device_id, r).await?;
    }
    Ok(result)
}

/// Decides and applies one edit seen for the first time; None when it cannot be decided
/// now (the record keeps changing under it).
async fn push_one(
    store: &Store,
    g: &mut Guard,
    device_id: &str,
    edit: &Edit,
) -> Result<Option<EditResult>, SyncError> {
    let id = edit.client_edit_id.as_str();
    for attempt in 0..3 {
        // `answer` looked before the first try; a retry looks again, as a concurrent
        // request may have applied this very edit meanwhile.
        if attempt > 0 {
            if let Some(Previous::Applied(version)) = previous(store, id).await? {
                return Ok(Some(EditResult::AlreadyApplied {
                    client_edit_id: id.to_string(),
                    version,
                }));
            }
        }
        if !careshare_fhir::is_resource_type(&edit.resource_type)
            || !careshare_fhir::is_valid_id(&edit.id)
        {
            return Ok(Some(rejected(
                id,
                EngineError::bad(
                    careshare_fhir::IssueType::Invalid,
                    format!(
                        "{}/{} is not a FHIR resource type and id",
                        edit.resource_type, edit.id
                    ),
                ),
            )));
        }
        let (current, base) = {
            let mut pooled = store.reader().await?;
            let mut conn = Conn::Any(&mut pooled);
            let current = store::read_current(&mut conn, &edit.resource_type, &edit.id)
                .await?
                .filter(|s| !s.deleted);
            let current = match current {
                Some(s) => match s.resource()? {
                    Some(v) => {
                        if !g.check(&mut conn, &v).await?.is_permit() {
                            return Ok(Some(rejected(
                                id,
                                EngineError::NotFound(format!(
                                    "{}/{} does not exist",
                                    edit.resource_type, edit.id
                                )),
                            )));
                        }
                        Some((s.version, v))
                    }
                    None => None,
                },
                None => None,
            };
            let base = match edit.base_version {
                Some(v) => store::read_version(&mut conn, &edit.resource_type, &edit.id, v)
                    .await?
                    .and_then(|s| s.resource().ok().flatten()),
                None => None,
            };
            (current, base)
        };
        let decision = hub_apply_edit(
            edit,
            current.as_ref().map(|(v, r)| (*v, r)),
            base.as_ref(),
            None,
        );
        let (resource, merged) = match decision {
            EditDecision::Apply { resource } => (resource, false),
            EditDecision::ApplyMerged { resource } => (resource, true),
            other => return Ok(Some(other.into_result(id.to_string(), 0))),
        };
        let if_match = current
            .as_ref()
            .map(|(v, _)| careshare_fhir::VersionId(*v).etag());
        let mut auth = PushWrite {
            guard: g,
            client_edit_id: id.to_string(),
            device_id: device_id.to_string(),
        };
        let written = match resource {
            Some(mut r) => {
                engine::set_id(&mut r, &edit.id);
                engine::update(
                    store,
                    &mut auth,
                    careshare_fhir::bundle::Target::Instance {
                        resource_type: edit.resource_type.clone(),
                        id: edit.id.clone(),
                    },
                    r,
                    if_match.as_deref(),
                )
                .await
            }
            None => {
                engine::delete(
                    store,
                    &mut auth,
                    &edit.resource_type,
                    &edit.id,
                    if_match.as_deref(),
                )
                .await
            }
        };
        match written {
            Ok(o) => {
                return Ok(Some(if merged {
                    EditResult::Merged {
                        client_edit_id: id.to_string(),
                        version: o.version,
                        resource: o.resource,
                    }
                } else {
                    EditResult::Applied {
                        client_edit_id: id.to_string(),
                        version: o.version,
                    }
                }))
            }
            // Someone wrote in between (or this edit id was applied by a concurrent
            // request): decide again against the new current version.
            Err(EngineError::PreconditionFailed(_)) => continue,
            Err(EngineError::Store(e)) if is_unique_violation(&e) => continue,
            Err(EngineError::Store(e)) => return Err(SyncError::Store(e)),
            Err(e) => return Ok(Some(rejected(id, e))),
        }
    }
    // Still changing after three tries: left out of the answer, sent again later.
    Ok(None)
}

fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(d)) => d.is_unique_violation(),
        _ => false,
    }
}

/// Where a device's uploaded audit chain stands: the next seq expected and the head hash.
pub async fn audit_head(store: &Store, device_id: &str) -> Result<(i64, String), SyncError> {
    let row = sqlx::query("SELECT next_seq, head FROM sync_audit_head WHERE device_id = $1")
        .bind(device_id)
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => (r.try_get("next_seq")?, r.try_get("head")?),
        None => (1, AUDIT_GENESIS.to_string()),
    })
}

/// The first `prev_hash` of a device's audit chain (the replica's genesis).
pub const AUDIT_GENESIS: &str = "careshare-replica/audit/genesis/v1";

/// What a device signs to vouch for the chain up to a head.
pub const AUDIT_SIGN_CONTEXT: &str = "careshare-audit-head:";

/// One uploaded row of a device's offline audit chain.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub recorded_at: String,
    pub event: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// `hex(SHA-256(prev_hash "\n" seq "\n" recorded_at "\n" event))`, the replica's formula.
pub fn audit_row_hash(prev_hash: &str, seq: i64, recorded_at: &str, event: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(seq.to_string().as_bytes());
    ctx.update(b"\n");
    ctx.update(recorded_at.as_bytes());
    ctx.update(b"\n");
    ctx.update(event.as_bytes());
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `rows` continue the device's chain from `(next_seq, head)` without gaps or
/// edits. The event text hashed is the event as the device stored it: its JSON as sent.
pub fn verify_upload(next_seq: i64, head: &str, rows: &[AuditRow]) -> Result<String, SyncError> {
    let mut prev = head.to_string();
    for (expected, r) in (next_seq..).zip(rows) {
        if r.seq != expected {
            return Err(SyncError::Audit(format!(
                "audit row {} does not follow: the hub expects row {expected}",
                r.seq
            )));
        }
        if r.prev_hash != prev {
            return Err(SyncError::Audit(format!(
                "audit row {} does not continue the chain the hub holds",
                r.seq
            )));
        }
        // The event text hashed is the device's own: a string as sent, or the JSON text.
        let text = match &r.event {
            Value::String(s) => s.clone(),
            v => serde_json::to_string(v).unwrap_or_default(),
        };
        if audit_row_hash(&r.prev_hash, r.seq, &r.recorded_at, &text) != r.hash {
            return Err(SyncError::Audit(format!(
                "audit row {} was changed after it was recorded",
                r.seq
            )));
        }
        prev = r.hash.clone();
    }
    Ok(prev)
}

/// Records the new head of a device's chain.
pub async fn set_audit_head(
    store: &Store,
    device_id: &str,
    next_seq: i64,
    head: &str,
) -> Result<(), SyncError> {
    let updated =
        sqlx::query("UPDATE sync_audit_head SET next_seq = $2, head = $3 WHERE device_id = $1")
            .bind(device_id)
            .bind(next_seq)
            .bind(head)
            .execute(store.pool())
            .await?
            .rows_affected();
    if updated == 0 {
        sqlx::query("INSERT INTO sync_audit_head (device_id, next_seq, head) VALUES ($1, $2, $3)")
            .bind(device_id)
            .bind(next_seq)
            .bind(head)
            .execute(store.pool())
            .await?;
    }
    Ok(())
}
