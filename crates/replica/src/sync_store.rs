//! Storage for the sync client (schema version 2): the device's identity with
//! the hub, a pulled page committed with its checkpoint, push outcomes, and
//! the audit log read back for upload.
//!
//! Invariants:
//!
//! * [`Replica::apply_pull_page`] commits a page's purges, removals, upserts
//!   and its checkpoint in ONE transaction: after a failure or a kill, either
//!   all of the page and its checkpoint are stored, or none of it.
//! * The device's signing key and refresh token are stored only in the
//!   encrypted database and handled only as [`SecretBytes`] and
//!   [`SecretString`], which never print.
//! * A pulled version never discards a pending edit: the synced copy
//!   (`resource`) is kept apart from the outbox.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::error::{ReplicaError, Result};
use crate::replica::{
    check_edit, insert_edit, non_empty, open_db, parse_ts, purge_patient, read_conflict, read_edit,
    ts, CheckinSession, Conflict, ConflictContext, NewConflict, OutboxEdit, PendingEdit, Replica,
    CONFLICT_COLUMNS, EDIT_COLUMNS,
};
use crate::secret::{SecretBytes, SecretString};

/// The device's identity with the hub, kept inside the encrypted database.
///
/// `Debug` shows the key and the token only as redacted markers.
#[derive(Debug)]
pub struct DeviceState {
    /// Base URL of the hub, e.g. `http://127.0.0.1:8080`.
    pub hub_url: String,
    /// The user the device was enrolled for.
    pub username: String,
    /// The user's `PractitionerRole/<id>`, when the hub told it.
    pub practitioner_role: Option<String>,
    /// The hub's id of this device.
    pub device_id: String,
    /// The name the device was registered under.
    pub device_name: String,
    /// The device's Ed25519 private key (PKCS#8 document).
    pub signing_key: SecretBytes,
    /// The current device-bound refresh token (spent on use).
    pub refresh_token: Option<SecretString>,
    /// The last audit event the hub acknowledged: `(seq, hash)`.
    pub audit_sent: Option<(i64, String)>,
    /// When the device was enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// When the last complete sync ended.
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// One resource version of a pulled page.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledResource<R = Value> {
    /// The resource (string `resourceType` and `id` required): a [`Value`], or its JSON
    /// text as the hub sent it, stored as it is ([`ResourceJson`]).
    pub resource: R,
    /// The hub version, stored as the copy's base version.
    pub version: String,
    /// The patient it belongs to; `None` for shared data (stored as `''`).
    pub patient_id: Option<String>,
}

/// What to commit for one pulled page, in this order: `purges`, `removals`,
/// `upserts`, then the checkpoint (and freshness when `complete`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PullPageWrite<R = Value> {
    /// Patients whose every resource leaves the replica.
    pub purges: Vec<String>,
    /// Resources to delete: `(resource_type, id)`.
    pub removals: Vec<(String, String)>,
    /// Resource versions to store (replacing older copies).
    pub upserts: Vec<PulledResource<R>>,
    /// The pull checkpoint after this page.
    pub checkpoint: String,
    /// Whether this page ends the pull: every patient in the replica is then
    /// up to date as of `now`, which is recorded as their freshness.
    pub complete: bool,
}

/// What [`Replica::apply_pull_page`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageApplied {
    /// Resources deleted by purges.
    pub purged_resources: usize,
    /// Resources deleted by removals.
    pub removed: usize,
    /// Resources stored.
    pub upserted: usize,
    /// Outbox entries of purged patients, kept (client edit ids).
    pub kept_outbox_edits: Vec<String>,
}

/// How a completed edit changes the synced copy.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncedUpdate {
    /// Leave the synced copy as it is (the next pull brings the hub's).
    Keep,
    /// Store `resource` as hub version `version`, unless the synced copy is
    /// already at that version or newer.
    Put {
        /// The resource as the hub now has it.
        resource: Value,
        /// Its hub version.
        version: i64,
    },
    /// The hub deleted the resource: drop the synced copy.
    Delete,
}

/// One row of the local audit log, as stored (the texts are exactly the ones
/// hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// RFC 3339 text, as stored and hashed.
    pub recorded_at: String,
    /// Event JSON text, as stored and hashed.
    pub event: String,
    /// Hash of the previous row ([`crate::AUDIT_GENESIS`] for the first).
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// When a patient's record was last brought up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFreshness {
    /// The patient.
    pub patient_id: String,
    /// End of the last complete pull that covered them.
    pub synced_at: DateTime<Utc>,
}

/// The page cache during a sync, in KiB.
const SYNC_CACHE_KIB: i64 = 16 * 1024;

/// During a sync, the write-ahead log pages (4 KiB) at which a commit checkpoints after
/// all ([`Replica::checkpoint`] does it otherwise); SQLite's default, used at other
/// times, is 1,000.
const SYNC_WAL_BACKSTOP_PAGES: i64 = 8_192;

fn enc(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(|_| ReplicaError::InvalidInput("JSON not serialisable".into()))
}

fn write_device(conn: &Connection, d: &DeviceState) -> Result<()> {
    for (what, v) in [
        ("hub URL", &d.hub_url),
        ("username", &d.username),
        ("device id", &d.device_id),
        ("device name", &d.device_name),
    ] {
        non_empty(what, v)?;
    }
    if d.signing_key.expose().is_empty() {
        return Err(ReplicaError::InvalidInput(
            "signing key must not be empty".into(),
        ));
    }
    conn.execute(
        "INSERT INTO device (id, hub_url, username, practitioner_role, device_id, device_name,
                             signing_key, refresh_token, audit_sent_seq, audit_sent_hash,
                             enrolled_at, last_sync_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (id) DO UPDATE SET
           hub_url = excluded.hub_url, username = excluded.username,
           practitioner_role = excluded.practitioner_role, device_id = excluded.device_id,
           device_name = excluded.device_name, signing_key = excluded.signing_key,
           refresh_token = excluded.refresh_token, audit_sent_seq = excluded.audit_sent_seq,
           audit_sent_hash = excluded.audit_sent_hash, enrolled_at = excluded.enrolled_at,
           last_sync_at = excluded.last_sync_at",
        params![
            d.hub_url,
            d.username,
            d.practitioner_role,
            d.device_id,
            d.device_name,
            d.signing_key.expose(),
            d.refresh_token.as_ref().map(SecretString::expose),
            d.audit_sent.as_ref().map_or(0, |(seq, _)| *seq),
            d.audit_sent.as_ref().map(|(_, hash)| hash.as_str()),
            ts(d.enrolled_at),
            d.last_sync_at.map(ts),
        ],
    )?;
    Ok(())
}

fn read_device(conn: &Connection) -> Result<Option<DeviceState>> {
    let row = conn
        .query_row(
            "SELECT hub_url, username, practitioner_role, device_id, device_name, signing_key,
                    refresh_token, audit_sent_seq, audit_sent_hash, enrolled_at, last_sync_at
             FROM device WHERE id = 1",
            [],
            |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ),
                    SecretBytes::new(r.get::<_, Vec<u8>>(5)?),
                    r.get::<_, Option<String>>(6)?.map(SecretString::new),
                    (
                        r.get::<_, i64>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, Option<String>>(10)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some((names, signing_key, refresh_token, rest)) = row else {
        return Ok(None);
    };
    let (hub_url, username, practitioner_role, device_id, device_name) = names;
    let (sent_seq, sent_hash, enrolled_at, last_sync_at) = rest;
    Ok(Some(DeviceState {
        hub_url,
        username,
        practitioner_role,
        device_id,
        device_name,
        signing_key,
        refresh_token,
        audit_sent: sent_hash.filter(|_| sent_seq > 0).map(|h| (sent_seq, h)),
        enrolled_at: parse_ts(&enrolled_at)?,
        last_sync_at: last_sync_at.as_deref().map(parse_ts).transpose()?,
    }))
}

fn write_refresh_token(conn: &Connection, token: &SecretString) -> Result<()> {
    if token.is_empty() {
        return Err(ReplicaError::InvalidInput(
            "refresh token must not be empty".into(),
        ));
    }
    let n = conn.execute(
        "UPDATE device SET refresh_token = ?1 WHERE id = 1",
        [token.expose()],
    )?;
    if n == 0 {
        return Err(ReplicaError::InvalidInput(
            "no device is enrolled in this replica".into(),
        ));
    }
    Ok(())
}

/// The stored hub version of a copy, when it is a number.
fn stored_version(conn: &Connection, resource_type: &str, id: &str) -> Result<Option<i64>> {
    let v: Option<Option<String>> = conn
        .query_row(
            "SELECT base_version FROM resource WHERE resource_type = ?1 AND resource_id = ?2",
            params![resource_type, id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.flatten().and_then(|v| v.parse().ok()))
}

/// A resource as a pulled page stores it: its JSON text.
pub trait ResourceJson {
    /// The JSON text to store.
    fn json_text(&self) -> Cow<'_, str>;
}

impl ResourceJson for Value {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

impl ResourceJson for str {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl ResourceJson for String {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl ResourceJson for Cow<'_, str> {
    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl<T: ResourceJson + ?Sized> ResourceJson for &T {
    fn json_text(&self) -> Cow<'_, str> {
        (**self).json_text()
    }
}

/// Stores a resource's JSON text as it is, with what the replica's queries need read from
/// the text: the same values as read from the parsed resource (`clinical_time`).
fn upsert(
    conn: &Connection,
    content: &str,
    version: &str,
    patient_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let head = serde_json::from_str::<head::Head<'_>>(content)
        .map_err(|_| ReplicaError::InvalidInput("a resource must be a JSON object".into()))?;
    let field = |name: &str, value: &Option<Cow<'_, str>>| -> Result<String> {
        match value.as_deref() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(ReplicaError::InvalidInput(format!(
                "resource needs a non-empty string {name}"
            ))),
        }
    };
    let resource_type = field("resourceType", &head.resource_type)?;
    let id = field("id", &head.id)?;
    let version_id = head.version_id.as_deref();
    // Prepared once per connection: a first sync stores tens of thousands of these.
    conn.prepare_cached(
        "INSERT INTO resource (resource_type, resource_id, version_id, content, base_version, patient_id, updated_at, clinical_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (resource_type, resource_id) DO UPDATE SET
           version_id = excluded.version_id, content = excluded.content,
           base_version = excluded.base_version, patient_id = excluded.patient_id,
           updated_at = excluded.updated_at, clinical_time = excluded.clinical_time",
    )?
    .execute(params![
        resource_type,
        id,
        version_id,
        content,
        version,
        patient_id,
        ts(now),
        head.clinical_time()
    ])?;
    Ok(())
}

impl Replica {
    /// Stores the device's identity (replacing any previous one).
    pub fn set_device(&mut self, device: &DeviceState) -> Result<()> {
        write_device(&self.conn, device)
    }

    /// The device's identity, if one was stored.
    pub fn device(&self) -> Result<Option<DeviceState>> {
        read_device(&self.conn)
    }

    /// Replaces the stored refresh token (the old one is spent at the hub).
    pub fn set_refresh_token(&mut self, token: &SecretString) -> Result<()> {
        write_refresh_token(&self.conn, token)
    }

    /// Forgets the refresh token (the hub no longer accepts it).
    pub fn clear_refresh_token(&mut self) -> Result<()> {
        self.conn
            .execute("UPDATE device SET refresh_token = NULL WHERE id = 1", [])?;
        Ok(())
    }

    /// Records that the hub holds the audit log up to `seq`, whose hash is
    /// `hash`.
    pub fn set_audit_sent(&mut self, seq: i64, hash: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE device SET audit_sent_seq = ?1, audit_sent_hash = ?2 WHERE id = 1",
            params![seq, hash],
        )?;
        Ok(())
    }

    /// Records the end of a complete sync.
    pub fn set_last_sync(&mut self, at: DateTime<Utc>) -> Result<()> {
        self.conn
            .execute("UPDATE device SET last_sync_at = ?1 WHERE id = 1", [ts(at)])?;
        Ok(())
    }

    /// Commits one pulled page in ONE transaction: purges (like
    /// [`Replica::remove_patient`]: outbox entries are kept), removals,
    /// upserts, the checkpoint, and when the page is the last of the pull the
    /// freshness of every patient. On any error nothing of the page is stored
    /// and the checkpoint stays where it was.
    pub fn apply_pull_page(
        &mut self,
        page: &PullPageWrite,
        now: DateTime<Utc>,
    ) -> Result<PageApplied> {
        self.apply_pull_page_json(page, now)
    }

    /// [`Replica::apply_pull_page`] for a page whose resources are held in any form
    /// ([`ResourceJson`]), for example as the JSON text the hub sent, which is stored
    /// as it is.
    pub fn apply_pull_page_json<R: ResourceJson>(
        &mut self,
        page: &PullPageWrite<R>,
        now: DateTime<Utc>,
    ) -> Result<PageApplied> {
        non_empty("checkpoint", &page.checkpoint)?;
        let tx = self.conn.transaction()?;
        let mut applied = PageApplied::default();
        for patient in &page.purges {
            non_empty("patient id", patient)?;
            let removal = purge_patient(&tx, patient)?;
            applied.purged_resources += removal.resources;
            applied.kept_outbox_edits.extend(removal.kept_outbox_edits);
        }
        for (resource_type, id) in &page.removals {
            applied.removed += tx.execute(
                "DELETE FROM resource WHERE resource_type = ?1 AND resource_id = ?2",
                params![resource_type, id],
            )?;
        }
        for pulled in &page.upserts {
            if pulled.patient_id.as_deref() == Some("") {
                return Err(ReplicaError::InvalidInput(
                    "patient id must not be empty".into(),
                ));
            }
            let patient = pulled.patient_id.as_deref().unwrap_or("");
            upsert(
                &tx,
                &pulled.resource.json_text(),
                &pulled.version,
                patient,
                now,
            )?;
            applied.upserted += 1;
        }
        if page.complete {
            tx.execute(
                "INSERT INTO patient_freshness (patient_id, synced_at)
                 SELECT DISTINCT patient_id, ?1 FROM resource WHERE patient_id <> ''
                 ON CONFLICT (patient_id) DO UPDATE SET synced_at = excluded.synced_at",
                [ts(now)],
            )?;
        }
        tx.execute(
            "INSERT INTO pull_checkpoint (id, cursor, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            params![page.checkpoint, ts(now)],
        )?;
        tx.commit()?;
        if !page.purges.is_empty() || applied.removed > 0 {
            self.truncate_wal()?;
        }
        Ok(applied)
    }

    /// The outbox entries for one resource, in the order queued.
    pub fn edits_for(&self, resource_type: &str, id: &str) -> Result<Vec<PendingEdit>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EDIT_COLUMNS} FROM outbox WHERE resource_type = ?1 AND resource_id = ?2 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map(params![resource_type, id], read_edit)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_pending()?);
        }
        Ok(out)
    }

    /// The hub has an edit: removes it from the outbox and applies `update`
    /// to the synced copy, in one transaction. `false` (and no change) if
    /// there is no such edit.
    pub fn complete_edit_synced(
        &mut self,
        client_edit_id: &str,
        update: &SyncedUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let edit = tx
            .query_row(
                &format!("SELECT {EDIT_COLUMNS} FROM outbox WHERE client_edit_id = ?1"),
                [client_edit_id],
                read_edit,
            )
            .optional()?;
        let Some(edit) = edit else {
            return Ok(false);
        };
        let edit = edit.into_pending()?.edit;
        tx.execute(
            "DELETE FROM outbox WHERE client_edit_id = ?1",
            [client_edit_id],
        )?;
        match update {
            SyncedUpdate::Keep => {}
            SyncedUpdate::Put { resource, version } => {
                let stored = stored_version(&tx, &edit.resource_type, &edit.resource_id)?;
                if stored.is_none_or(|s| s < *version) {
                    if resource.get("resourceType").and_then(Value::as_str)
                        != Some(edit.resource_type.as_str())
                        || resource.get("id").and_then(Value::as_str)
                            != Some(edit.resource_id.as_str())
                    {
                        return Err(ReplicaError::InvalidInput(
                            "the synced copy is not the edited resource".into(),
                        ));
                    }
                    upsert(
                        &tx,
                        &resource.json_text(),
                        &version.to_string(),
                        &edit.patient_id,
                        now,
                    )?;
                }
            }
            SyncedUpdate::Delete => {
                tx.execute(
                    "DELETE FROM resource WHERE resource_type = ?1 AND resource_id = ?2",
                    params![edit.resource_type, edit.resource_id],
                )?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    /// Marks an edit rejected by the hub, keeping it (and why) for the user;
    /// `false` if there is no such edit.
    pub fn reject_edit(&mut self, client_edit_id: &str, outcome: &Value) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE outbox SET state = 'rejected', outcome = ?2 WHERE client_edit_id = ?1",
            params![client_edit_id, enc(outcome)?],
        )?;
        Ok(n > 0)
    }

    /// Moves an edit that could not merge from the outbox to the open
    /// conflicts, in one transaction; returns the conflict's id, or `None`
    /// (and no change) if there is no such edit.
    pub fn conflict_edit(
        &mut self,
        conflict: &NewConflict,
        context: &ConflictContext,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM outbox WHERE client_edit_id = ?1",
            [&context.client_edit_id],
        )?;
        if n == 0 {
            return Ok(None);
        }
        let base = conflict.base.as_ref().map(enc).transpose()?;
        tx.execute(
            "INSERT INTO conflict (resource_type, resource_id, patient_id, base, ours, theirs, detected_at,
                                   client_edit_id, current_version, details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                conflict.resource_type,
                conflict.resource_id,
                conflict.patient_id,
                base,
                enc(&conflict.ours)?,
                enc(&conflict.theirs)?,
                ts(now),
                context.client_edit_id,
                context.current_version,
                enc(&context.details)?,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Some(id))
    }

    /// One open conflict.
    pub fn conflict(&self, id: i64) -> Result<Option<Conflict>> {
        self.conn
            .query_row(
                &format!("SELECT {CONFLICT_COLUMNS} FROM conflict WHERE id = ?1"),
                [id],
                read_conflict,
            )
            .optional()?
            .map(|row| row.into_conflict())
            .transpose()
    }

    /// Resolves a conflict: deletes it and queues `edits` (the resolution),
    /// in one transaction. `false` (and no change) if there is no such
    /// conflict.
    pub fn resolve_conflict_with(
        &mut self,
        id: i64,
        edits: &[OutboxEdit],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let checked = edits
            .iter()
            .map(|e| check_edit(e).map(|json| (e, json)))
            .collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        if tx.execute("DELETE FROM conflict WHERE id = ?1", [id])? == 0 {
            return Ok(false);
        }
        for (edit, json) in &checked {
            insert_edit(&tx, edit, json, now)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Audit rows after `seq` (at most `limit`), in order.
    pub fn audit_after(&self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, recorded_at, event, prev_hash, hash FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![seq, limit], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                recorded_at: r.get(1)?,
                event: r.get(2)?,
                prev_hash: r.get(3)?,
                hash: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The newest audit row's `(seq, hash)`, if any.
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The hash of audit row `seq`, if it exists.
    pub fn audit_hash_at(&self, seq: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT hash FROM audit_log WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Every patient's freshness, by patient id.
    pub fn patient_freshness(&self) -> Result<Vec<PatientFreshness>> {
        let mut stmt = self
            .conn
            .prepare("SELECT patient_id, synced_at FROM patient_freshness ORDER BY patient_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (patient_id, at) = row?;
            out.push(PatientFreshness {
                patient_id,
                synced_at: parse_ts(&at)?,
            });
        }
        Ok(out)
    }

    /// How many resources the replica holds.
    pub fn resource_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM resource", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// While `relaxed`, commits are not flushed to disk one by one (SQLite
    /// `synchronous = NORMAL`): a power cut may lose the last few, never corrupt the
    /// file. For writes that can be had again from the hub (a sync's pages and
    /// answers); the first commit after relaxing ends flushes everything before it.
    ///
    /// While relaxed, a commit also leaves the write-ahead log to be copied back into the
    /// database by [`Replica::checkpoint`], which the sync calls while it waits for the
    /// hub, up to a backstop.
    pub fn relax_durability(&self, relaxed: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", if relaxed { "NORMAL" } else { "FULL" })?;
        self.conn.pragma_update(
            None,
            "wal_autocheckpoint",
            if relaxed {
                SYNC_WAL_BACKSTOP_PAGES
            } else {
                1000
            },
        )?;
        // A sync writes pages all over the indexes: a larger page cache keeps them
        // decrypted between its commits (SQLite's default of 2 MiB otherwise).
        self.conn.pragma_update(
            None,
            "cache_size",
            if relaxed { -SYNC_CACHE_KIB } else { -2000 },
        )?;
        Ok(())
    }

    /// Copies what the write-ahead log holds back into the database, as far as no reader
    /// still needs it (a passive checkpoint: it waits for nobody).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// What the patient summary shows, by type then id: every record of the patient but
    /// their observations and encounters, and their `recent_observations` latest
    /// observations (by effective time).
    pub fn patient_summary(
        &self,
        patient_id: &str,
        recent_observations: usize,
    ) -> Result<Vec<(String, String, Value)>> {
        let mut out = Vec::new();
        let mut read = |sql: &str, limit: Option<i64>| -> Result<()> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let mut rows = match limit {
                Some(n) => stmt.query(params![patient_id, n])?,
                None => stmt.query(params![patient_id])?,
            };
            while let Some(r) = rows.next()? {
                let (t, id, content): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let content = serde_json::from_str(&content)
                    .map_err(|_| ReplicaError::Corrupt(format!("{t}/{id} is not JSON")))?;
                out.push((t, id, content));
            }
            Ok(())
        };
        read(
            "SELECT resource_type, resource_id, content FROM resource \
             WHERE patient_id = ?1 AND resource_type NOT IN ('Observation', 'Encounter', 'Provenance') \
             ORDER BY resource_type, resource_id",
            None,
        )?;
        read(
            "SELECT resource_type, resource_id, content FROM resource \
             WHERE patient_id = ?1 AND resource_type = 'Observation' \
             ORDER BY clinical_time DESC, resource_id LIMIT ?2",
            Some(i64::try_from(recent_observations).unwrap_or(i64::MAX)),
        )?;
        Ok(out)
    }

    /// The caseload: each patient held, with when their data is current as of and how
    /// many alerts (Flags) they have, by patient id.
    pub fn caseload(&self) -> Result<Vec<CaseloadEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.resource_id, p.content, f.synced_at, \
             (SELECT count(*) FROM resource a WHERE a.patient_id = p.resource_id \
               AND a.resource_type = 'Flag') \
             FROM resource p LEFT JOIN patient_freshness f ON f.patient_id = p.resource_id \
             WHERE p.resource_type = 'Patient' ORDER BY p.resource_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, content, synced, alerts) = row?;
            out.push(CaseloadEntry {
                patient: serde_json::from_str(&content)
                    .map_err(|_| ReplicaError::Corrupt(format!("Patient/{id} is not JSON")))?,
                patient_id: id,
                synced_at: synced.as_deref().map(parse_ts).transpose()?,
                alerts: u64::try_from(alerts).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Replaces the directory (organisations and the like, belonging to no patient) with
    /// `resources`, in one transaction. Each needs a string `resourceType` and `id`.
    pub fn replace_directory(&mut self, resources: &[Value]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM directory", [])?;
        {
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO directory (resource_type, resource_id, content) VALUES (?1, ?2, ?3)",
            )?;
            for r in resources {
                let field = |name: &str| match r.get(name).and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => Ok(s),
                    _ => Err(ReplicaError::InvalidInput(format!(
                        "directory resource needs a non-empty string {name}"
                    ))),
                };
                let content = serde_json::to_string(r).map_err(|_| {
                    ReplicaError::InvalidInput("resource is not serialisable".into())
                })?;
                insert.execute(params![field("resourceType")?, field("id")?, content])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The directory's resources of `resource_type`, by id.
    pub fn directory(&self, resource_type: &str) -> Result<Vec<Value>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resource_id, content FROM directory WHERE resource_type = ?1 ORDER BY resource_id",
        )?;
        let rows = stmt.query_map([resource_type], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, content) = row?;
            out.push(
                serde_json::from_str(&content).map_err(|_| {
                    ReplicaError::Corrupt(format!("{resource_type}/{id} is not JSON"))
                })?,
            );
        }
        Ok(out)
    }

    /// The patients with at least one resource, by id.
    pub fn patients(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT patient_id FROM resource WHERE patient_id <> '' ORDER BY patient_id",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl CheckinSession {
    /// The device's identity, read without opening the record, so that an
    /// expired device can authenticate its check-in.
    pub fn device(&self) -> Result<Option<DeviceState>> {
        let conn = open_db(&self.files, &self.key, false)?;
        let device = read_device(&conn);
        let _ = conn.close();
        device
    }

    /// Replaces the stored refresh token during a check-in.
    pub fn set_refresh_token(&self, token: &SecretString) -> Result<()> {
        let conn = open_db(&self.files, &self.key, false)?;
        let stored = write_refresh_token(&conn, token);
        let _ = conn.close();
        stored
    }
}

/// One patient on the device's caseload.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseloadEntry {
    pub patient_id: String,
    /// The Patient resource.
    pub patient: Value,
    /// When their data was last brought up to date from the hub.
    pub synced_at: Option<DateTime<Utc>>,
    /// How many alerts (Flags) they have.
    pub alerts: u64,
}

/// Reading what the replica keeps beside a resource from its JSON text, without building
/// the resource: every element is skipped but the few read, and each is read as
/// [`serde_json::Value::get`] would give it (the last of repeated keys; a value that is
/// not a string, or an element of something that is not an object, counts as absent).
mod head {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use crate::replica::{CLINICAL_PERIOD_FIELDS, CLINICAL_TIME_FIELDS};

    /// `resourceType`, `id`, `meta.versionId` and the clinical time's candidates.
    #[derive(Default)]
    pub(super) struct Head<'a> {
        pub(super) resource_type: Option<Cow<'a, str>>,
        pub(super) id: Option<Cow<'a, str>>,
        pub(super) version_id: Option<Cow<'a, str>>,
        times: [Option<Cow<'a, str>>; CLINICAL_TIME_FIELDS.len()],
        period_starts: [Option<Cow<'a, str>>; CLINICAL_PERIOD_FIELDS.len()],
    }

    impl Head<'_> {
        /// `crate::replica::clinical_time` of the resource.
        pub(super) fn clinical_time(&self) -> Option<&str> {
            self.times
                .iter()
                .chain(&self.period_starts)
                .find_map(|t| t.as_deref())
        }
    }

    impl<'de> Deserialize<'de> for Head<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct HeadVisitor;
            impl<'de> Visitor<'de> for HeadVisitor {
                type Value = Head<'de>;

                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }

                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head<'de>, A::Error> {
                    let mut head = Head::default();
                    while let Some(Text(key)) = map.next_key()? {
                        let time = CLINICAL_TIME_FIELDS.iter().position(|f| *f == key);
                        let period = CLINICAL_PERIOD_FIELDS.iter().position(|f| *f == key);
                        match (key.as_ref(), time, period) {
                            ("resourceType", _, _) => {
                                head.resource_type = map.next_value::<AnyText>()?.0
                            }
                            ("id", _, _) => head.id = map.next_value::<AnyText>()?.0,
                            ("meta", _, _) => {
                                head.version_id = map.next_value_seed(Element("versionId"))?
                            }
                            (_, Some(i), _) => head.times[i] = map.next_value::<AnyText>()?.0,
                            (_, _, Some(i)) => {
                                head.period_starts[i] = map.next_value_seed(Element("start"))?
                            }
                            _ => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                    Ok(head)
                }
            }
            d.deserialize_map(HeadVisitor)
        }
    }

    /// A string (borrowed from the text when it has no escapes).
    struct Text<'a>(Cow<'a, str>);

    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(TextVisitor).map(Text)
        }
    }

    struct TextVisitor;

    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }

        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }

    /// Any JSON value: the string if it is one.
    struct AnyText<'a>(Option<Cow<'a, str>>);

    impl<'de> Deserialize<'de> for AnyText<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(AnyVisitor(None)).map(AnyText)
        }
    }

    /// Any JSON value: with `Some(name)`, the string element `name` of an object; with
    /// None, the value itself if it is a string.
    struct AnyVisitor(Option<&'static str>);

    impl<'de> Visitor<'de> for AnyVisitor {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(self.0.is_none().then_some(Cow::Borrowed(v)))
        }

        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.0.is_none().then(|| Cow::Owned(v.to_owned())))
        }

        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(self.0.is_none().then_some(Cow::Owned(v)))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        /// An object (with `arbitrary_precision`, also how a number arrives).
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(Text(key)) = map.next_key()? {
                if Some(key.as_ref()) == self.0 {
                    found = map.next_value::<AnyText>()?.0;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    /// The string element of an object, if the value is an object that has one.
    struct Element(&'static str);

    impl<'de> DeserializeSeed<'de> for Element {
        type Value = Option<Cow<'de, str>>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(AnyVisitor(Some(self.0)))
        }
    }

    #[cfg(test)]
    mod tests {
        use serde_json::Value;

        use super::Head;
        use crate::replica::clinical_time;

        /// What the replica reads from a resource, from its text and from the parsed value.
        fn both(text: &str) -> (Vec<Option<String>>, Vec<Option<String>>) {
            let head: Head<'_> = serde_json::from_str(text).expect(text);
            let value: Value = serde_json::from_str(text).expect(text);
            let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
            (
                vec![
                    head.resource_type.as_deref().map(str::to_owned),
                    head.id.as_deref().map(str::to_owned),
                    head.version_id.as_deref().map(str::to_owned),
                    head.clinical_time().map(str::to_owned),
                ],
                vec![
                    s("resourceType"),
                    s("id"),
                    value
                        .get("meta")
                        .and_then(|m| m.get("versionId"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    clinical_time(&value).map(str::to_owned),
                ],
            )
        }

        #[test]
        fn the_head_read_from_text_is_what_the_value_gives() {
            for text in [
                r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"3"},"effectiveDateTime":"2026-01-02"}"#,
                r#"{"resourceType":"Observation","id":"o1","effectiveDateTime":12.50,"issued":"2026-02-01T10:00:00Z"}"#,
                r#"{"resourceType":"Observation","id":"o1","effectiveDateTime":{"x":"y"},"effectivePeriod":{"end":"e","start":"2025-12-31"}}"#,
                r#"{"resourceType":"Encounter","id":"e\u0031","period":{"start":"a\"b"},"meta":{"versionId":7}}"#,
                r#"{"resourceType":"Encounter","id":"e1","period":["x"],"effectivePeriod":"2025","start":null}"#,
                r#"{"resourceType":"Condition","id":"c1","onsetDateTime":"2020","recordedDate":"2021","meta":[1]}"#,
                r#"{"resourceType":"Task","id":"t1","authoredOn":"1","authoredOn":"2","meta":{"versionId":"1"},"meta":{}}"#,
                r#"{"id":"x","resourceType":"Patient","contained":[{"resourceType":"Observation","effectiveDateTime":"no"}]}"#,
                r#"{"resourceType":"Observation","id":"o1","valueQuantity":{"value":1.000000000000000000001},"date":true}"#,
            ] {
                let (from_text, from_value) = both(text);
                assert_eq!(from_text, from_value, "{text}");
            }
        }

        #[test]
        fn a_text_that_is_not_an_object_has_no_head() {
            for text in [
                r#"["a"]"#,
                r#""a""#,
                "1",
                r#"{"id":"x""#,
                r#"{"id":"x"} x"#,
                r#"{"resourceType":"Encounter","period":{"start":"a"b"}}"#,
                r#"{"meta":{"versionId":"1",}}"#,
            ] {
                assert!(serde_json::from_str::<Head<'_>>(text).is_err(), "{text}");
            }
        }
    }
}
