//! The replica: files, opening and keying, and typed operations.

use std::fs;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use ring::digest;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction};
use serde_json::Value;

use crate::error::{ReplicaError, Result};
use crate::keyfile::{KeyFile, RecoveryWraps, Unwrap};
use crate::secret::{Passphrase, RecoveryKey, SecretKey};

/// Wrong passphrases in a row after which the replica locks.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;

/// `prev_hash` of the first audit row.
pub const AUDIT_GENESIS: &str = "careshare-replica/audit/genesis/v1";

/// Schema migrations; migration `i` (0-based) brings `user_version` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/replica/0001_replica.sql"),
    include_str!("../../../migrations/replica/0002_device_sync.sql"),
    include_str!("../../../migrations/replica/0003_query_indexes.sql"),
    include_str!("../../../migrations/replica/0004_directory.sql"),
];

const DB_NAME: &str = "replica.db";
const KEY_NAME: &str = "replica.key.json";
const KEY_TMP_NAME: &str = "replica.key.json.tmp";

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ReplicaError::Corrupt("bad timestamp in database".into()))
}

pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|_| ReplicaError::Corrupt("bad JSON in database".into()))
}

pub(crate) fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(ReplicaError::InvalidInput(format!(
            "{what} must not be empty"
        )));
    }
    Ok(())
}

/// Paths of a replica's files inside one directory.
#[derive(Debug, Clone)]
pub struct ReplicaFiles {
    dir: PathBuf,
}

impl ReplicaFiles {
    /// The replica in `dir` (which must exist before [`Replica::create`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The encrypted database.
    pub fn database(&self) -> PathBuf {
        self.dir.join(DB_NAME)
    }

    /// The key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join(KEY_NAME)
    }

    fn key_tmp(&self) -> PathBuf {
        self.dir.join(KEY_TMP_NAME)
    }

    /// Every file the replica may leave in its directory: the key file (and
    /// its temporary), the database and SQLite's side files.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let db = DB_NAME;
        vec![
            self.key_file(),
            self.key_tmp(),
            self.database(),
            self.dir.join(format!("{db}-wal")),
            self.dir.join(format!("{db}-shm")),
            self.dir.join(format!("{db}-journal")),
        ]
    }

    /// Lock and lease state from the key file, without a passphrase.
    pub fn status(&self) -> Result<KeyStatus> {
        let kf = KeyFile::load(&self.key_file())?;
        Ok(KeyStatus {
            failed_attempts: kf.failed_attempts,
            locked: kf.locked,
            lease_expires_at: kf.lease_expires_at,
        })
    }

    /// Deletes the replica. The key file goes first, so even an interrupted
    /// wipe leaves the database unreadable. Missing files are not an error.
    /// Close any open [`Replica`] on these files first.
    pub fn wipe(&self) -> Result<()> {
        for path in self.all_files() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Where to ask for re-authorisation: the device and hub the key file's
    /// recovery wrap is bound to (`None` for a replica made without one).
    pub fn recovery(&self) -> Result<Option<RecoveryBinding>> {
        let kf = KeyFile::load(&self.key_file())?;
        Ok(kf.recovery.map(|r| RecoveryBinding {
            device_id: r.device_id,
            hub_url: r.hub_url,
        }))
    }

    /// Whether a new recovery key waits for the hub's confirmation.
    pub fn recovery_key_pending(&self) -> Result<bool> {
        let kf = KeyFile::load(&self.key_file())?;
        Ok(kf.recovery.is_some_and(|r| r.pending.is_some()))
    }

    /// The hub has stored the pending recovery key: from now on it is the
    /// one a recovery expects first. Does nothing when none is pending.
    pub fn confirm_recovery_key(&self) -> Result<()> {
        let mut kf = KeyFile::load(&self.key_file())?;
        let Some(recovery) = kf.recovery.as_mut() else {
            return Ok(());
        };
        let Some(pending) = recovery.pending.take() else {
            return Ok(());
        };
        recovery.current = pending;
        self.save_key_file(&kf)
    }

    fn save_key_file(&self, kf: &KeyFile) -> Result<()> {
        kf.store(&self.key_file(), &self.key_tmp())
    }
}

/// Deletes the replica in `dir`; see [`ReplicaFiles::wipe`].
pub fn wipe(dir: impl Into<PathBuf>) -> Result<()> {
    ReplicaFiles::new(dir).wipe()
}

/// The device and hub a replica's recovery key belongs to. Not secret: it
/// says where the device's user signs in to re-authorise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryBinding {
    /// The device's id at the hub.
    pub device_id: String,
    /// The hub's base URL.
    pub hub_url: String,
}

/// Key-derivation parameters for a new wrap.
#[derive(Debug, Clone, Copy)]
pub struct KeyParams {
    /// PBKDF2-HMAC-SHA256 iterations.
    pub iterations: NonZeroU32,
}

impl Default for KeyParams {
    /// 600,000 iterations.
    fn default() -> Self {
        Self {
            iterations: NonZeroU32::new(600_000).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Public state of the key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Wrong passphrases since the last right one.
    pub failed_attempts: u32,
    /// Whether the replica refuses every passphrase until re-authorised.
    pub locked: bool,
    /// End of the device lease.
    pub lease_expires_at: DateTime<Utc>,
}

/// Whether an unlock must respect the lease.
#[derive(PartialEq, Eq)]
enum Purpose {
    Use,
    Checkin,
}

/// Checks the lock, the lease (for [`Purpose::Use`]) and the passphrase,
/// maintaining the persisted failed-attempts counter. Returns the data key.
fn unlock(
    files: &ReplicaFiles,
    passphrase: &Passphrase,
    now: DateTime<Utc>,
    purpose: Purpose,
) -> Result<(KeyFile, SecretKey)> {
    let mut kf = KeyFile::load(&files.key_file())?;
    if kf.locked {
        return Err(ReplicaError::Locked);
    }
    if purpose == Purpose::Use && now > kf.lease_expires_at {
        return Err(ReplicaError::LeaseExpired {
            since: kf.lease_expires_at,
        });
    }
    match kf.unwrap_key(passphrase)? {
        Unwrap::Key(key) => {
            if kf.failed_attempts != 0 {
                kf.failed_attempts = 0;
                files.save_key_file(&kf)?;
            }
            Ok((kf, key))
        }
        Unwrap::WrongPassphrase => {
            kf.failed_attempts = kf.failed_attempts.saturating_add(1);
            if kf.failed_attempts >= MAX_FAILED_ATTEMPTS {
                kf.locked = true;
            }
            files.save_key_file(&kf)?;
            if kf.locked {
                Err(ReplicaError::Locked)
            } else {
                Err(ReplicaError::WrongPassphrase {
                    attempts_left: MAX_FAILED_ATTEMPTS - kf.failed_attempts,
                })
            }
        }
    }
}

/// Opens (or creates) the database and keys it; applies pending migrations.
pub(crate) fn open_db(files: &ReplicaFiles, key: &SecretKey, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !files.database().exists() {
        return Err(ReplicaError::Corrupt("database file is missing".into()));
    }
    let mut conn = Connection::open_with_flags(files.database(), flags)?;
    // The statement text holds the key: never let its error escape.
    conn.execute_batch(&key.sqlcipher_key_pragma())
        .map_err(|_| ReplicaError::Corrupt("cannot key the database".into()))?;
    // SQLCipher only notices a wrong key at the first read. The passphrase
    // already unwrapped this key, so a failure means the files do not match.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => {
            return Err(ReplicaError::Corrupt(
                "database does not match its key file".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;",
    )?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > supported {
        return Err(ReplicaError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let tx = conn.transaction()?;
    for (version, sql) in (1i64..).zip(MIGRATIONS) {
        if version > current {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A passphrase-verified session that may only renew the lease.
///
/// Returned by [`Replica::open_for_checkin`], which ignores the lease so that
/// an expired device can still check in. Holds the data key (zeroized on
/// drop) but gives no access to the record until the lease is renewed.
#[derive(Debug)]
pub struct CheckinSession {
    pub(crate) files: ReplicaFiles,
    pub(crate) key: SecretKey,
}

impl CheckinSession {
    /// Sets the lease to `until` (which must be after `now`) and opens the
    /// replica.
    pub fn renew_lease(self, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<Replica> {
        if until <= now {
            return Err(ReplicaError::InvalidInput(
                "lease must end after now".into(),
            ));
        }
        let mut kf = KeyFile::load(&self.files.key_file())?;
        kf.lease_expires_at = until;
        self.files.save_key_file(&kf)?;
        let conn = open_db(&self.files, &self.key, false)?;
        Ok(Replica {
            files: self.files.clone(),
            conn,
        })
    }
}

/// Sets an outbox entry's state (`?1` its edit id, `?2` the state).
const SET_EDIT_STATE: &str = "UPDATE outbox SET state = ?2 WHERE client_edit_id = ?1";

/// An open, unlocked replica.
///
/// Holds the database connection but not the data key (SQLCipher keeps its
/// own copy inside the connection until it is closed). Dropping the replica
/// or calling [`Replica::lock`] closes the connection.
pub struct Replica {
    pub(crate) files: ReplicaFiles,
    pub(crate) conn: Connection,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// A resource as stored in the replica.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// FHIR resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// `meta.versionId` of the content, if present.
    pub version_id: Option<String>,
    /// Hub version the local copy derives from.
    pub base_version: Option<String>,
    /// Patient whose record this belongs to (`""` for shared data, such as
    /// a Practitioner, stored by [`Replica::apply_pull_page`]).
    pub patient_id: String,
    /// When it was last written locally.
    pub updated_at: DateTime<Utc>,
    /// The resource JSON, exactly as written.
    pub content: Value,
}

/// A new offline edit for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEdit {
    /// Client-generated id; resending the same edit reuses it.
    pub client_edit_id: String,
    /// Target resource type.
    pub resource_type: String,
    /// Target resource id.
    pub resource_id: String,
    /// Patient whose record the edit belongs to.
    pub patient_id: String,
    /// Hub version the edit was made against (`None` for a create).
    pub base_version: Option<String>,
    /// The edit JSON.
    pub edit: Value,
}

/// State of an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditState {
    /// Not yet accepted by the hub.
    Pending,
    /// Sent, awaiting the hub's answer.
    Sent,
    /// Refused by the hub; needs a person.
    Rejected,
}

impl EditState {
    fn as_str(self) -> &'static str {
        match self {
            EditState::Pending => "pending",
            EditState::Sent => "sent",
            EditState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(EditState::Pending),
            "sent" => Ok(EditState::Sent),
            "rejected" => Ok(EditState::Rejected),
            _ => Err(ReplicaError::Corrupt("bad outbox state".into())),
        }
    }
}

/// An outbox entry, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEdit {
    /// The edit.
    pub edit: OutboxEdit,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Where it stands.
    pub state: EditState,
    /// For a rejected edit, the hub's `OperationOutcome` saying why.
    pub outcome: Option<Value>,
}

/// A conflict to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConflict {
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Patient whose record this belongs to.
    pub patient_id: String,
    /// Common ancestor, if known.
    pub base: Option<Value>,
    /// Local version.
    pub ours: Value,
    /// Hub version.
    pub theirs: Value,
}

/// An open conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Local id of the conflict.
    pub id: i64,
    /// The conflict.
    pub conflict: NewConflict,
    /// When it was detected.
    pub detected_at: DateTime<Utc>,
    /// What the hub said about it, for conflicts that came back from a push
    /// ([`Replica::conflict_edit`]); `None` for [`Replica::record_conflict`].
    pub context: Option<ConflictContext>,
}

/// What the hub said about a conflicting edit.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictContext {
    /// The outbox edit that could not merge.
    pub client_edit_id: String,
    /// The hub's current version: the base of the resolution (`None`: the
    /// resource does not exist on the hub).
    pub current_version: Option<String>,
    /// The elements that could not merge (JSON, as the hub described them).
    pub details: Value,
}

/// What [`Replica::remove_patient`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientRemoval {
    /// Resources deleted.
    pub resources: usize,
    /// Open conflicts deleted.
    pub conflicts: usize,
    /// Whether a freshness row was deleted.
    pub freshness: bool,
    /// Outbox entries of the patient that were KEPT (client edit ids).
    pub kept_outbox_edits: Vec<String>,
}

fn audit_hash(prev_hash: &str, seq: i64, recorded_at: &str, event: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
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

/// The columns [`read_edit`] reads, in order.
pub(crate) const EDIT_COLUMNS: &str =
    "client_edit_id, resource_type, resource_id, patient_id, base_version, edit, created_at, state, outcome";

pub(crate) struct EditRow {
    edit: OutboxEditRow,
    created_at: String,
    state: String,
    outcome: Option<String>,
}

impl EditRow {
    pub(crate) fn into_pending(self) -> Result<PendingEdit> {
        Ok(PendingEdit {
            edit: self.edit.into_edit()?,
            created_at: parse_ts(&self.created_at)?,
            state: EditState::parse(&self.state)?,
            outcome: self.outcome.as_deref().map(parse_json).transpose()?,
        })
    }
}

pub(crate) fn read_edit(row: &rusqlite::Row<'_>) -> rusqlite::Result<EditRow> {
    Ok(EditRow {
        edit: OutboxEditRow {
            client_edit_id: row.get(0)?,
            resource_type: row.get(1)?,
            resource_id: row.get(2)?,
            patient_id: row.get(3)?,
            base_version: row.get(4)?,
            edit: row.get(5)?,
        },
        created_at: row.get(6)?,
        state: row.get(7)?,
        outcome: row.get(8)?,
    })
}

struct OutboxEditRow {
    client_edit_id: String,
    resource_type: String,
    resource_id: String,
    patient_id: String,
    base_version: Option<String>,
    edit: String,
}

impl OutboxEditRow {
    fn into_edit(self) -> Result<OutboxEdit> {
        Ok(OutboxEdit {
            client_edit_id: self.client_edit_id,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            patient_id: self.patient_id,
            base_version: self.base_version,
            edit: parse_json(&self.edit)?,
        })
    }
}

/// Checks an edit before it is queued; returns its JSON text.
pub(crate) fn check_edit(edit: &OutboxEdit) -> Result<String> {
    non_empty("client edit id", &edit.client_edit_id)?;
    non_empty("resource type", &edit.resource_type)?;
    non_empty("resource id", &edit.resource_id)?;
    non_empty("patient id", &edit.patient_id)?;
    serde_json::to_string(&edit.edit)
        .map_err(|_| ReplicaError::InvalidInput("edit is not serialisable".into()))
}

/// Inserts a checked edit inside `tx`. Idempotent like [`Replica::enqueue_edit`].
pub(crate) fn insert_edit(
    tx: &Transaction<'_>,
    edit: &OutboxEdit,
    json: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let existing = tx
        .query_row(
            &format!("SELECT {EDIT_COLUMNS} FROM outbox WHERE client_edit_id = ?1"),
            [&edit.client_edit_id],
            read_edit,
        )
        .optional()?;
    if let Some(row) = existing {
        return if row.edit.into_edit()? == *edit {
            Ok(false)
        } else {
            Err(ReplicaError::DuplicateEdit(edit.client_edit_id.clone()))
        };
    }
    tx.execute(
        "INSERT INTO outbox (client_edit_id, resource_type, resource_id, patient_id, base_version, edit, created_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
        params![
            edit.client_edit_id,
            edit.resource_type,
            edit.resource_id,
            edit.patient_id,
            edit.base_version,
            json,
            ts(now)
        ],
    )?;
    Ok(true)
}

/// Deletes everything about `patient_id` but its outbox entries and audit
/// events, inside `tx`. See [`Replica::remove_patient`].
pub(crate) fn purge_patient(tx: &Transaction<'_>, patient_id: &str) -> Result<PatientRemoval> {
    let resources = tx.execute("DELETE FROM resource WHERE patient_id = ?1", [patient_id])?;
    let conflicts = tx.execute("DELETE FROM conflict WHERE patient_id = ?1", [patient_id])?;
    let freshness = tx.execute(
        "DELETE FROM patient_freshness WHERE patient_id = ?1",
        [patient_id],
    )? > 0;
    let mut stmt =
        tx.prepare("SELECT client_edit_id FROM outbox WHERE patient_id = ?1 ORDER BY rowid")?;
    let kept_outbox_edits = stmt
        .query_map([patient_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(PatientRemoval {
        resources,
        conflicts,
        freshness,
        kept_outbox_edits,
    })
}

/// The columns [`read_conflict`] reads, in order.
pub(crate) const CONFLICT_COLUMNS: &str =
    "id, resource_type, resource_id, patient_id, base, ours, theirs, detected_at, client_edit_id, current_version, details";

pub(crate) struct ConflictRow {
    id: i64,
    resource_type: String,
    resource_id: String,
    patient_id: String,
    base: Option<String>,
    ours: String,
    theirs: String,
    detected_at: String,
    client_edit_id: Option<String>,
    current_version: Option<String>,
    details: Option<String>,
}

pub(crate) fn read_conflict(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConflictRow> {
    Ok(ConflictRow {
        id: r.get(0)?,
        resource_type: r.get(1)?,
        resource_id: r.get(2)?,
        patient_id: r.get(3)?,
        base: r.get(4)?,
        ours: r.get(5)?,
        theirs: r.get(6)?,
        detected_at: r.get(7)?,
        client_edit_id: r.get(8)?,
        current_version: r.get(9)?,
        details: r.get(10)?,
    })
}

impl ConflictRow {
    pub(crate) fn into_conflict(self) -> Result<Conflict> {
        let context = match self.client_edit_id {
            Some(client_edit_id) => Some(ConflictContext {
                client_edit_id,
                current_version: self.current_version,
                details: match self.details.as_deref() {
                    Some(d) => parse_json(d)?,
                    None => Value::Null,
                },
            }),
            None => None,
        };
        Ok(Conflict {
            id: self.id,
            conflict: NewConflict {
                resource_type: self.resource_type,
                resource_id: self.resource_id,
                patient_id: self.patient_id,
                base: self.base.as_deref().map(parse_json).transpose()?,
                ours: parse_json(&self.ours)?,
                theirs: parse_json(&self.theirs)?,
            },
            detected_at: parse_ts(&self.detected_at)?,
            context,
        })
    }
}

impl Replica {
    /// Creates a new replica in `files` (whose directory must exist): a fresh
    /// random data key, the encrypted database with the current schema, then
    /// the key file wrapping the data key under `passphrase`. The key file is
    /// written last, so its presence means the replica is complete; on
    /// failure, whatever was written is removed again.
    pub fn create(
        files: ReplicaFiles,
        passphrase: &Passphrase,
        params: KeyParams,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Replica> {
        Replica::create_inner(files, passphrase, params, None, lease_until, now)
    }

    /// [`Replica::create`] with a second wrap of the data key under
    /// `recovery_key`, which the hub keeps for `binding`'s device, so that
    /// the hub can re-authorise the replica ([`Replica::recover`]).
    pub fn create_recoverable(
        files: ReplicaFiles,
        passphrase: &Passphrase,
        params: KeyParams,
        binding: &RecoveryBinding,
        recovery_key: &RecoveryKey,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Replica> {
        if binding.device_id.is_empty() || binding.hub_url.is_empty() {
            return Err(ReplicaError::InvalidInput(
                "the recovery binding needs a device id and a hub address".into(),
            ));
        }
        Replica::create_inner(
            files,
            passphrase,
            params,
            Some((binding, recovery_key)),
            lease_until,
            now,
        )
    }

    fn create_inner(
        files: ReplicaFiles,
        passphrase: &Passphrase,
        params: KeyParams,
        recovery: Option<(&RecoveryBinding, &RecoveryKey)>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Replica> {
        if passphrase.is_empty() {
            return Err(ReplicaError::InvalidInput(
                "passphrase must not be empty".into(),
            ));
        }
        if lease_until <= now {
            return Err(ReplicaError::InvalidInput(
                "lease must end after now".into(),
            ));
        }
        if files.all_files().iter().any(|p| p.exists()) {
            return Err(ReplicaError::AlreadyExists);
        }
        let (mut kf, key) = KeyFile::generate(passphrase, params.iterations, lease_until)?;
        if let Some((binding, recovery_key)) = recovery {
            kf.recovery = Some(RecoveryWraps::new(
                &binding.device_id,
                &binding.hub_url,
                &key,
                &recovery_key.0,
            )?);
        }
        let conn = open_db(&files, &key, true);
        drop(key);
        let saved = conn.and_then(|conn| files.save_key_file(&kf).map(|()| conn));
        match saved {
            Ok(conn) => Ok(Replica { files, conn }),
            Err(e) => {
                // Leave nothing half-made behind; the first error is the one
                // worth reporting.
                let _ = files.wipe();
                Err(e)
            }
        }
    }

    /// Opens the replica for use. Refuses when locked, when `now` is past
    /// the lease (without trying the passphrase), or on a wrong passphrase
    /// (counted; the fifth wrong attempt in a row locks and returns
    /// [`ReplicaError::Locked`]).
    pub fn open(
        files: ReplicaFiles,
        passphrase: &Passphrase,
        now: DateTime<Utc>,
    ) -> Result<Replica> {
        let (_kf, key) = unlock(&files, passphrase, now, Purpose::Use)?;
        let conn = open_db(&files, &key, false)?;
        Ok(Replica { files, conn })
    }

    /// Verifies the passphrase regardless of the lease (lock and attempt
    /// counting still apply), for the sync layer to renew the lease after a
    /// successful check-in with the hub.
    pub fn open_for_checkin(
        files: ReplicaFiles,
        passphrase: &Passphrase,
        now: DateTime<Utc>,
    ) -> Result<CheckinSession> {
        let (_kf, key) = unlock(&files, passphrase, now, Purpose::Checkin)?;
        Ok(CheckinSession { files, key })
    }

    /// Re-authorises a replica with the recovery key the hub gave back to
    /// the device's signed-in user: sets `new_passphrase` (fresh salt, same
    /// iterations), clears the lock and the failed-attempts counter, and
    /// seals the data key under a fresh recovery key, returned for the hub
    /// to keep (pending in the key file until
    /// [`ReplicaFiles::confirm_recovery_key`]). Works whatever the lock and
    /// the lease say: the hub has just authenticated the user. The record is
    /// not opened: the caller renews the lease with the returned session.
    pub fn recover(
        files: ReplicaFiles,
        recovery_key: &RecoveryKey,
        new_passphrase: &Passphrase,
    ) -> Result<(CheckinSession, RecoveryKey)> {
        if new_passphrase.is_empty() {
            return Err(ReplicaError::InvalidInput(
                "passphrase must not be empty".into(),
            ));
        }
        let mut kf = KeyFile::load(&files.key_file())?;
        let mut recovery = kf.recovery.take().ok_or(ReplicaError::NotRecoverable)?;
        let key = match recovery.open(&recovery.current, &recovery_key.0)? {
            Some(key) => key,
            None => {
                // The hub may hold the newer key whose confirmation was lost.
                let pending = recovery
                    .pending
                    .take()
                    .ok_or(ReplicaError::RecoveryKeyRefused)?;
                let key = recovery
                    .open(&pending, &recovery_key.0)?
                    .ok_or(ReplicaError::RecoveryKeyRefused)?;
                recovery.current = pending;
                key
            }
        };
        // The key the hub gave has now crossed the network: replace it.
        let next = RecoveryKey::generate()?;
        recovery.pending = Some(recovery.seal(&key, &next.0)?);
        kf.recovery = Some(recovery);
        let iterations = kf.iterations()?;
        kf.wrap(&key, new_passphrase, iterations)?;
        kf.locked = false;
        kf.failed_attempts = 0;
        files.save_key_file(&kf)?;
        Ok((CheckinSession { files, key }, next))
    }

    /// The files of this replica.
    pub fn files(&self) -> &ReplicaFiles {
        &self.files
    }

    /// Extends (or shortens) the lease of an open replica.
    pub fn renew_lease(&mut self, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
        if until <= now {
            return Err(ReplicaError::InvalidInput(
                "lease must end after now".into(),
            ));
        }
        let mut kf = KeyFile::load(&self.files.key_file())?;
        kf.lease_expires_at = until;
        self.files.save_key_file(&kf)
    }

    /// Rewraps the data key under `new` (fresh salt and nonce, same iteration
    /// count); the database is not rewritten. `old` is checked like an open:
    /// a wrong `old` counts towards the lock.
    pub fn change_passphrase(&mut self, old: &Passphrase, new: &Passphrase) -> Result<()> {
        if new.is_empty() {
            return Err(ReplicaError::InvalidInput(
                "passphrase must not be empty".into(),
            ));
        }
        // The lease does not matter here: the replica is already open.
        let (mut kf, key) = unlock(&self.files, old, DateTime::<Utc>::MIN_UTC, Purpose::Checkin)?;
        let iterations = kf.iterations()?;
        kf.wrap(&key, new, iterations)?;
        drop(key);
        self.files.save_key_file(&kf)
    }

    /// Closes the connection (SQLCipher's key copy goes with it).
    pub fn lock(self) -> Result<()> {
        self.conn.close().map_err(|(_, e)| e.into())
    }

    /// Stores `resource` (must have string `resourceType` and `id`) for
    /// `patient_id`, replacing any previous copy.
    pub fn put_resource(
        &mut self,
        resource: &Value,
        patient_id: &str,
        base_version: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let field = |name: &str| -> Result<&str> {
            match resource.get(name).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(ReplicaError::InvalidInput(format!(
                    "resource needs a non-empty string {name}"
                ))),
            }
        };
        let resource_type = field("resourceType")?;
        let id = field("id")?;
        non_empty("patient id", patient_id)?;
        let version_id = resource
            .get("meta")
            .and_then(|m| m.get("versionId"))
            .and_then(Value::as_str);
        let content = serde_json::to_string(resource)
            .map_err(|_| ReplicaError::InvalidInput("resource is not serialisable".into()))?;
        self.conn.execute(
            "INSERT INTO resource (resource_type, resource_id, version_id, content, base_version, patient_id, updated_at, clinical_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (resource_type, resource_id) DO UPDATE SET
               version_id = excluded.version_id, content = excluded.content,
               base_version = excluded.base_version, patient_id = excluded.patient_id,
               updated_at = excluded.updated_at, clinical_time = excluded.clinical_time",
            params![
                resource_type,
                id,
                version_id,
                content,
                base_version,
                patient_id,
                ts(now),
                clinical_time(resource)
            ],
        )?;
        Ok(())
    }

    /// The stored copy of `resource_type/id`, if any.
    pub fn get_resource(&self, resource_type: &str, id: &str) -> Result<Option<StoredResource>> {
        let row = self
            .conn
            .query_row(
                "SELECT version_id, base_version, patient_id, updated_at, content
                 FROM resource WHERE resource_type = ?1 AND resource_id = ?2",
                params![resource_type, id],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(version_id, base_version, patient_id, updated_at, content)| {
                Ok(StoredResource {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    version_id,
                    base_version,
                    patient_id,
                    updated_at: parse_ts(&updated_at)?,
                    content: parse_json(&content)?,
                })
            },
        )
        .transpose()
    }

    /// Records that `patient_id`'s record was brought up to date at `at`.
    pub fn mark_patient_synced(&mut self, patient_id: &str, at: DateTime<Utc>) -> Result<()> {
        non_empty("patient id", patient_id)?;
        self.conn.execute(
            "INSERT INTO patient_freshness (patient_id, synced_at) VALUES (?1, ?2)
             ON CONFLICT (patient_id) DO UPDATE SET synced_at = excluded.synced_at",
            params![patient_id, ts(at)],
        )?;
        Ok(())
    }

    /// When `patient_id`'s record was last brought up to date, if ever.
    pub fn patient_synced_at(&self, patient_id: &str) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT synced_at FROM patient_freshness WHERE patient_id = ?1",
                [patient_id],
                |r| r.get(0),
            )
            .optional()?;
        s.as_deref().map(parse_ts).transpose()
    }

    /// Stores the pull checkpoint (replacing the previous one).
    pub fn set_pull_checkpoint(&mut self, cursor: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pull_checkpoint (id, cursor, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            params![cursor, ts(now)],
        )?;
        Ok(())
    }

    /// The pull checkpoint, if one was stored.
    pub fn pull_checkpoint(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT cursor FROM pull_checkpoint WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Queues an offline edit. Idempotent: queuing the same edit again under
    /// the same `client_edit_id` returns `Ok(false)`; a different edit under
    /// a used id is [`ReplicaError::DuplicateEdit`].
    pub fn enqueue_edit(&mut self, edit: &OutboxEdit, now: DateTime<Utc>) -> Result<bool> {
        let json = check_edit(edit)?;
        let tx = self.conn.transaction()?;
        let inserted = insert_edit(&tx, edit, &json, now)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// Every outbox entry, in the order queued.
    pub fn pending_edits(&self) -> Result<Vec<PendingEdit>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {EDIT_COLUMNS} FROM outbox ORDER BY rowid"))?;
        let rows = stmt.query_map([], read_edit)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_pending()?);
        }
        Ok(out)
    }

    /// Sets the state of an outbox entry; `false` if there is no such entry.
    pub fn set_edit_state(&mut self, client_edit_id: &str, state: EditState) -> Result<bool> {
        let n = self
            .conn
            .execute(SET_EDIT_STATE, params![client_edit_id, state.as_str()])?;
        Ok(n > 0)
    }

    /// [`Replica::set_edit_state`] for several edits, in one transaction.
    pub fn set_edits_state<'a>(
        &mut self,
        client_edit_ids: impl IntoIterator<Item = &'a str>,
        state: EditState,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(SET_EDIT_STATE)?;
            for id in client_edit_ids {
                stmt.execute(params![id, state.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes an outbox entry once the hub has accepted it; `false` if
    /// there is no such entry.
    pub fn complete_edit(&mut self, client_edit_id: &str) -> Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM outbox WHERE client_edit_id = ?1",
            [client_edit_id],
        )?;
        Ok(n > 0)
    }

    /// Records an open conflict; returns its id.
    pub fn record_conflict(&mut self, c: &NewConflict, now: DateTime<Utc>) -> Result<i64> {
        let enc = |v: &Value| {
            serde_json::to_string(v)
                .map_err(|_| ReplicaError::InvalidInput("conflict is not serialisable".into()))
        };
        let base = c.base.as_ref().map(enc).transpose()?;
        self.conn.execute(
            "INSERT INTO conflict (resource_type, resource_id, patient_id, base, ours, theirs, detected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.resource_type,
                c.resource_id,
                c.patient_id,
                base,
                enc(&c.ours)?,
                enc(&c.theirs)?,
                ts(now)
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Open conflicts, oldest first.
    pub fn open_conflicts(&self) -> Result<Vec<Conflict>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CONFLICT_COLUMNS} FROM conflict ORDER BY id"
        ))?;
        let rows = stmt.query_map([], read_conflict)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_conflict()?);
        }
        Ok(out)
    }

    /// Deletes a resolved conflict; `false` if there is no such conflict.
    pub fn resolve_conflict(&mut self, id: i64) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM conflict WHERE id = ?1", [id])?
            > 0)
    }

    /// Purges `patient_id` from the replica in one transaction: resources,
    /// open conflicts (they hold hub data) and freshness.
    ///
    /// Outbox entries of the patient are KEPT and reported: they are the
    /// user's own unsent clinical entries, which must still reach the hub
    /// (the sync layer decides what to do with them). Audit events are also
    /// kept (removing them would break the chain); they should carry
    /// references, not clinical content. Deleted content is overwritten
    /// (`secure_delete`) and the write-ahead log is checkpointed and
    /// truncated afterwards.
    pub fn remove_patient(&mut self, patient_id: &str) -> Result<PatientRemoval> {
        non_empty("patient id", patient_id)?;
        let tx: Transaction<'_> = self.conn.transaction()?;
        let removal = purge_patient(&tx, patient_id)?;
        tx.commit()?;
        self.truncate_wal()?;
        Ok(removal)
    }

    /// Checkpoints the write-ahead log and truncates it, so that deleted
    /// content does not linger in old log frames.
    pub(crate) fn truncate_wal(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Appends `event` to the audit log at `now`; returns its seq.
    pub fn append_audit(&mut self, event: &Value, now: DateTime<Utc>) -> Result<i64> {
        let event = serde_json::to_string(event)
            .map_err(|_| ReplicaError::InvalidInput("event is not serialisable".into()))?;
        let recorded_at = ts(now);
        let tx = self.conn.transaction()?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (
                seq.checked_add(1)
                    .ok_or_else(|| ReplicaError::Corrupt("audit seq overflow".into()))?,
                hash,
            ),
            None => (1, AUDIT_GENESIS.to_owned()),
        };
        let hash = audit_hash(&prev_hash, seq, &recorded_at, &event);
        tx.execute(
            "INSERT INTO audit_log (seq, recorded_at, event, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![seq, recorded_at, event, prev_hash, hash],
        )?;
        tx.commit()?;
        Ok(seq)
    }

    /// Verifies the audit chain from the genesis; returns the number of rows.
    ///
    /// Detects altered rows, removed or reordered rows anywhere but at the
    /// end. Removing the newest rows is not detectable from the chain alone:
    /// the sync layer should compare the head with what it last sent.
    pub fn verify_audit(&self) -> Result<u64> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, recorded_at, event, prev_hash, hash FROM audit_log ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut expected_seq: i64 = 1;
        let mut prev = AUDIT_GENESIS.to_owned();
        let mut count: u64 = 0;
        for row in rows {
            let (seq, recorded_at, event, prev_hash, hash) = row?;
            let broken = |reason: &str| ReplicaError::AuditChainBroken {
                seq,
                reason: reason.to_owned(),
            };
            if seq != expected_seq {
                return Err(broken("sequence gap: row(s) missing"));
            }
            if prev_hash != prev {
                return Err(broken("prev_hash does not match the previous row"));
            }
            if audit_hash(&prev_hash, seq, &recorded_at, &event) != hash {
                return Err(broken("hash does not match the row"));
            }
            prev = hash;
            expected_seq = expected_seq.saturating_add(1);
            count += 1;
        }
        Ok(count)
    }

    /// The raw SQLCipher connection. Bypasses every invariant of this crate
    /// (schema, audit chain, purge rules); for tests and maintenance tools
    /// only, behind the `raw-sql` feature.
    #[cfg(feature = "raw-sql")]
    pub fn raw_connection(&self) -> &Connection {
        &self.conn
    }
}

/// A record's own time, for "latest first": an observation's effective time, a
/// document's date, a condition's onset… (FHIR date-times sort as text within one zone
/// format, which the hub writes).
pub(crate) fn clinical_time(resource: &Value) -> Option<&str> {
    CLINICAL_TIME_FIELDS
        .iter()
        .find_map(|k| resource.get(*k).and_then(Value::as_str))
        .or_else(|| {
            CLINICAL_PERIOD_FIELDS
                .iter()
                .find_map(|k| resource.get(*k)?.get("start")?.as_str())
        })
}

/// The elements [`clinical_time`] reads, the first string one wins.
pub(crate) const CLINICAL_TIME_FIELDS: [&str; 9] = [
    "effectiveDateTime",
    "effectiveInstant",
    "issued",
    "date",
    "authoredOn",
    "recordedDate",
    "onsetDateTime",
    "occurrenceDateTime",
    "start",
];

/// The periods whose `start` [`clinical_time`] reads when none of
/// [`CLINICAL_TIME_FIELDS`] is a string, the first string one wins.
pub(crate) const CLINICAL_PERIOD_FIELDS: [&str; 2] = ["effectivePeriod", "period"];
