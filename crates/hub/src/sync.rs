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
//! signal half-way through a first sync has what matters most. The refresh is one
//! transaction; a page is served from the feed, so an interrupted device resumes from its
//! committed checkpoint and gets exactly the rows after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use careshare_policy::{Decision, DenyReason};
use careshare_sync::{
    hub_apply_edit, priority, Change, Checkpoint, Edit, EditDecision, EditResult, PullRequest,
    PushBatch, PushResult, RemovalReason,
};
use serde_json::Value;
use sqlx::Row;

use crate::access;
use crate::engine::{self, Authorize, EngineError, Outcome};
use crate::guard::Guard;
use crate::store::{
    self, Arg, Conn, Store, StoreError, Stored, WriteTx, VERSION_COLUMNS, VERSION_COLUMNS_V,
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
    Upsert {
        res_type: String,
        res_id: String,
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
}

async fn device_state(store: &Store, device_id: &str) -> Result<Option<DeviceState>, SyncError> {
    let row = sqlx::query(
        "SELECT global_seq, feed_seq, subject, patients FROM sync_device WHERE device_id = $1",
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

/// Current versions (at `snapshot`) in one patient's compartment.
async fn compartment_now(
    conn: &mut Conn<'_>,
    patient: &str,
    snapshot: i64,
) -> Result<Vec<Stored>, SyncError> {
    let cols = VERSION_COLUMNS_V;
    let sql = format!(
        "SELECT {cols} FROM resource_version v WHERE v.seq IN \
         (SELECT seq FROM compartment WHERE patient_id = $1) AND v.seq <= $2 \
         AND (v.superseded_seq IS NULL OR v.superseded_seq > $3) AND v.deleted = 0"
    );
    Ok(conn
        .fetch_stored(
            &sql,
            &[
                Arg::S(patient.to_string()),
                Arg::I(snapshot),
                Arg::I(snapshot),
            ],
        )
        .await?)
}

/// Brings the device's feed up to date with what its user may see now.
async fn refresh(store: &Store, g: &mut Guard, device_id: &str) -> Result<(), SyncError> {
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
    let (prev_global, prev_feed, prev_subject, prev_patients) = match &state {
        Some(s) => (
            s.global_seq,
            s.feed_seq,
            s.subject.clone(),
            s.patients.clone(),
        ),
        None => (0, 0, String::new(), BTreeSet::new()),
    };
    if state.is_some()
        && snapshot == prev_global
        && fingerprint == prev_subject
        && now_patients == prev_patients
    {
        return Ok(());
    }
    let role_changed = state.is_some() && fingerprint != prev_subject;
    let mut rows: Vec<FeedRow> = Vec::new();
    // What the device will hold after this refresh, for every record that changes
    // (None: removed); and which of those it holds now (their rows are replaced).
    let mut sent_changes: BTreeMap<(String, String), Option<(i64, String)>> = BTreeMap::new();
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
    if role_changed {
        decide_again.extend(now_patients.iter().cloned());
    }

    // Every version current at the snapshot that changed since the last refresh.
    let changed: Vec<Stored> = if state.is_some() {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resource_version WHERE seq > $1 AND seq <= $2 \
             AND (superseded_seq IS NULL OR superseded_seq > $3)"
        );
        conn.fetch_stored(
            &sql,
            &[Arg::I(prev_global), Arg::I(snapshot), Arg::I(snapshot)],
        )
        .await?
    } else {
        Vec::new()
    };
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
    for p in &decide_again {
        let sent = sent_where(store, device_id, Sent::Patient(p)).await?;
        let mut seen = BTreeSet::new();
        for s in compartment_now(&mut conn, p, snapshot).await? {
            let key = (s.res_type.clone(), s.id.clone());
            seen.insert(key.clone());
            let Some(v) = g.check_stored(&mut conn, &s).await? else {
                continue;
            };
            let held = sent.get(&key).map(|(ver, _)| *ver);
            if v.is_permit() {
                if held != Some(s.version) && !sent_changes.contains_key(&key) {
                    first.push((
                        priority(&s.res_type),
                        FeedRow::Upsert {
                            res_type: s.res_type.clone(),
                            res_id: s.id.clone(),
                            version_seq: s.seq,
                            patient: p.clone(),
                        },
                    ));
                    if held.is_some() {
                        held_before.insert(key.clone());
                    }
                    sent_changes.insert(key, Some((s.version, p.clone())));
                }
            } else if held.is_some() && !sent_changes.contains_key(&key) {
                held_before.insert(key.clone());
                rows.push(FeedRow::Remove {
                    res_type: s.res_type.clone(),
                    res_id: s.id.clone(),
                    patient: Some(p.clone()),
                    reason: hidden_reason(&v.decision),
                });
                sent_changes.insert(key, None);
            }
        }
        for (key, (_, _)) in sent {
            if !seen.contains(&key) && !sent_changes.contains_key(&key) {
                held_before.insert(key.clone());
                rows.push(FeedRow::Remove {
                    res_type: key.0.clone(),
                    res_id: key.1.clone(),
                    patient: Some(p.clone()),
                    reason: RemovalReason::Deleted,
                });
                sent_changes.insert(key, None);
            }
        }
    }
    // Safety order for what is new; stable within a kind.
    first.sort_by_key(|(rank, _)| *rank);

    let decided_at = started.elapsed();
    // Every other change.
    let mut later: Vec<FeedRow> = Vec::new();
    for s in &changed {
        let key = (s.res_type.clone(), s.id.clone());
        if sent_changes.contains_key(&key) {
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
        let decision = match (&visible_patient, s.deleted) {
            (Some(_), false) => g.check_stored(&mut conn, s).await?,
            _ => None,
        };
        match (decision, &visible_patient) {
            (Some(v), Some(p)) if v.is_permit() => {
                if held.is_some() {
                    held_before.insert(key.clone());
                }
                if held.map(|(ver, _)| ver) != Some(s.version) {
                    later.push(FeedRow::Upsert {
                        res_type: s.res_type.clone(),
                        res_id: s.id.clone(),
                        version_seq: s.seq,
                        patient: p.clone(),
                    });
                    sent_changes.insert(key, Some((s.version, p.clone())));
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
                    sent_changes.insert(key, None);
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
    let written = write_refresh(
        store,
        device_id,
        prev_feed,
        &all,
        &sent_changes,
        &held_before,
        &prev_patients
            .difference(&now_patients)
            .cloned()
            .collect::<Vec<_>>(),
        snapshot,
        &fingerprint,
        &now_patients,
        state.is_some(),
    )
    .await;
    tracing::debug!(
        device = device_id,
        rows = all_len,
        patients = now_patients.len(),
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
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
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

#[allow(clippy::too_many_arguments)]
async fn write_refresh(
    store: &Store,
    device_id: &str,
    prev_feed: i64,
    rows: &[FeedRow],
    sent_changes: &BTreeMap<(String, String), Option<(i64, String)>>,
    held_before: &BTreeSet<(String, String)>,
    purged: &[String],
    snapshot: i64,
    fingerprint: &str,
    patients: &BTreeSet<String>,
    existed: bool,
) -> Result<(), SyncError> {
    let mut tx = store.pool().begin().await?;
    let feed: Vec<Vec<Arg>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let seq = prev_feed + 1 + i as i64;
            let d = Arg::S(device_id.to_string());
            match r {
                FeedRow::Upsert {
                    res_type,
                    res_id,
                    version_seq,
                    patient,
                    ..
                } => vec![
                    d,
                    Arg::I(seq),
                    Arg::S("upsert".into()),
                    Arg::OptS(Some(res_type.clone())),
                    Arg::OptS(Some(res_id.clone())),
                    Arg::I(*version_seq),
                    Arg::OptS(Some(patient.clone())),
                    Arg::OptS(None),
                ],
                FeedRow::Remove {
                    res_type,
                    res_id,
                    patient,
                    reason,
                } => vec![
                    d,
                    Arg::I(seq),
                    Arg::S("remove".into()),
                    Arg::OptS(Some(res_type.clone())),
                    Arg::OptS(Some(res_id.clone())),
                    Arg::I(0),
                    Arg::OptS(patient.clone()),
                    Arg::OptS(Some(reason_code(*reason).into())),
                ],
                FeedRow::Purge { patient, reason } => vec![
                    d,
                    Arg::I(seq),
                    Arg::S("purge".into()),
                    Arg::OptS(None),
                    Arg::OptS(None),
                    Arg::I(0),
                    Arg::OptS(Some(patient.clone())),
                    Arg::OptS(Some(reason_code(*reason).into())),
                ],
            }
        })
        .collect();
    insert_rows(
        &mut tx,
        store.dialect(),
        "INSERT INTO sync_feed (device_id, seq, kind, res_type, res_id, version_seq, patient_id, reason)",
        8,
        feed,
    )
    .await?;
    for p in purged {
        sqlx::query("DELETE FROM sync_sent WHERE device_id = $1 AND patient_id = $2")
            .bind(device_id)
            .bind(p.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let mut inserts = Vec::new();
    for ((t, i), change) in sent_changes {
        if held_before.contains(&(t.clone(), i.clone())) {
            sqlx::query(
                "DELETE FROM sync_sent WHERE device_id = $1 AND res_type = $2 AND res_id = $3",
            )
            .bind(device_id)
            .bind(t.as_str())
            .bind(i.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some((version, patient)) = change {
            inserts.push(vec![
                Arg::S(device_id.to_string()),
                Arg::S(t.clone()),
                Arg::S(i.clone()),
                Arg::I(*version),
                Arg::OptS(Some(patient.clone())),
            ]);
        }
    }
    insert_rows(
        &mut tx,
        store.dialect(),
        "INSERT INTO sync_sent (device_id, res_type, res_id, version, patient_id)",
        5,
        inserts,
    )
    .await?;
    let patients = serde_json::to_string(patients).unwrap_or_else(|_| "[]".into());
    let feed_seq = prev_feed + rows.len() as i64;
    let q = if existed {
        "UPDATE sync_device SET global_seq = $2, feed_seq = $3, subject = $4, patients = $5 WHERE device_id = $1"
    } else {
        "INSERT INTO sync_device (device_id, global_seq, feed_seq, subject, patients) VALUES ($1, $2, $3, $4, $5)"
    };
    sqlx::query(q)
        .bind(device_id)
        .bind(snapshot)
        .bind(feed_seq)
        .bind(fingerprint)
        .bind(patients)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Serves one page of a device's feed after its checkpoint, refreshing the feed first when
/// the device has consumed it. `refresh_lock` serialises refreshes.
pub async fn pull(
    store: &Store,
    g: &mut Guard,
    device_id: &str,
    req: &PullRequest,
    refresh_lock: &tokio::sync::Mutex<()>,
) -> Result<PulledPage, SyncError> {
    let after = req.checkpoint.map(|c| c.sequence()).unwrap_or(0);
    {
        let _lock = refresh_lock.lock().await;
        let feed_seq = device_state(store, device_id)
            .await?
            .map(|s| s.feed_seq)
            .unwrap_or(0);
        if after > feed_seq {
            return Err(SyncError::CheckpointAhead(after, feed_seq));
        }
        if after == feed_seq {
            refresh(store, g, device_id).await?;
        }
    }
    let limit = req.page_size.clamp(1, MAX_PAGE) as i64;
    let rows = sqlx::query(
        "SELECT seq, kind, res_type, res_id, version_seq, patient_id, reason FROM sync_feed \
         WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(device_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(store.pool())
    .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    // The versions to send, in one query.
    let version_seqs: Vec<i64> = rows
        .iter()
        .filter(|r| r.try_get::<String, _>("kind").ok().as_deref() == Some("upsert"))
        .filter_map(|r| r.try_get::<i64, _>("version_seq").ok())
        .collect();
    let mut contents: HashMap<i64, Stored> = HashMap::new();
    if !version_seqs.is_empty() {
        let mut pooled = store.reader().await?;
        let mut conn = Conn::Any(&mut pooled);
        for chunk in version_seqs.chunks(500) {
            let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM resource_version WHERE seq IN ({})",
                ph.join(",")
            );
            let args: Vec<Arg> = chunk.iter().map(|s| Arg::I(*s)).collect();
            for s in conn.fetch_stored(&sql, &args).await? {
                contents.insert(s.seq, s);
            }
        }
    }
    // The page is written as JSON text around each version's stored JSON, which is sent
    // as it is stored (parsing and printing it again would cost more than the rest).
    let mut json = String::with_capacity(rows.len() * 2048);
    json.push_str("{\"changes\":[");
    let mut patients = BTreeSet::new();
    let mut next = after;
    let mut first = true;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    for r in rows {
        next = r.try_get("seq")?;
        let kind: String = r.try_get("kind")?;
        let patient: Option<String> = r.try_get("patient_id")?;
        let reason: Option<String> = r.try_get("reason")?;
        let reason = reason_of(reason.as_deref().unwrap_or_default());
        let change = match kind.as_str() {
            "upsert" => {
                let vs: i64 = r.try_get("version_seq")?;
                let Some(s) = contents.get(&vs) else { continue };
                let Some(content) = s.content.as_deref() else {
                    continue;
                };
                if let Some(p) = &patient {
                    patients.insert(p.clone());
                }
                format!(
                    "{{\"upsert\":{{\"resourceType\":{},\"id\":{},\"version\":{},\"resource\":{content},\"patient\":{}}}}}",
                    q(&s.res_type),
                    q(&s.id),
                    s.version,
                    patient.as_deref().map(q).unwrap_or_else(|| "null".into())
                )
            }
            "remove" => serde_json::to_string(&Change::Remove {
                resource_type: r
                    .try_get::<Option<String>, _>("res_type")?
                    .unwrap_or_default(),
                id: r
                    .try_get::<Option<String>, _>("res_id")?
                    .unwrap_or_default(),
                reason,
            })
            .unwrap_or_default(),
            _ => serde_json::to_string(&Change::PurgePatient {
                patient: patient.unwrap_or_default(),
                reason,
            })
            .unwrap_or_default(),
        };
        if !first {
            json.push(',');
        }
        first = false;
        json.push_str(&change);
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
    for edit in &batch.edits {
        if let Some(r) = answer(store, g, device_id, edit).await? {
            results.push(r);
        }
    }
    Ok(PushResult { results })
}

/// What the hub answered an edit id before.
enum Previous {
    Applied(i64),
    Answered(Box<EditResult>),
}

async fn previous(store: &Store, client_edit_id: &str) -> Result<Option<Previous>, SyncError> {
    let Some(row) = sqlx::query("SELECT version, answer FROM sync_edit WHERE client_edit_id = $1")
        .bind(client_edit_id)
        .fetch_optional(store.pool())
        .await?
    else {
        return Ok(None);
    };
    let answer: Option<String> = row.try_get("answer")?;
    Ok(Some(
        match answer.and_then(|a| serde_json::from_str(&a).ok()) {
            Some(r) => Previous::Answered(Box::new(r)),
            None => Previous::Applied(row.try_get("version")?),
        },
    ))
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

async fn answer(
    store: &Store,
    g: &mut Guard,
    device_id: &str,
    edit: &Edit,
) -> Result<Option<EditResult>, SyncError> {
    let id = edit.client_edit_id.as_str();
    match previous(store, id).await? {
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
