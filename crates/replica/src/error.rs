//! Error type of the replica.
//!
//! Invariant: no variant ever carries key material or a passphrase. Messages
//! name what went wrong and what to do, never a secret.

use chrono::{DateTime, Utc};

/// Everything that can go wrong when opening or using the replica.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The passphrase did not unwrap the data key. The failed-attempts
    /// counter has been incremented and persisted.
    #[error("wrong passphrase ({attempts_left} attempt(s) left before the replica locks)")]
    WrongPassphrase {
        /// Wrong attempts still allowed before the replica locks.
        attempts_left: u32,
    },
    /// Too many wrong passphrases: the replica refuses every passphrase until
    /// the hub re-authorises the device.
    #[error(
        "replica is locked after too many wrong passphrases; the device must be re-authorised"
    )]
    Locked,
    /// The device lease has run out; the device must check in with the hub.
    #[error("device lease expired at {since}; check in with the hub to renew it")]
    LeaseExpired {
        /// When the lease ran out.
        since: DateTime<Utc>,
    },
    /// The replica was made without a recovery key, so the hub cannot
    /// re-authorise it; the device must be enrolled again.
    #[error("this replica cannot be re-authorised by the hub; enrol the device again")]
    NotRecoverable,
    /// The recovery key the hub gave does not open this replica.
    #[error("the hub's recovery key does not open this replica; enrol the device again")]
    RecoveryKeyRefused,
    /// There is no replica (no key file) in this directory.
    #[error("no replica has been created here")]
    NotCreated,
    /// A replica (database or key file) already exists in this directory.
    #[error("a replica already exists here; wipe it before creating a new one")]
    AlreadyExists,
    /// The key file or the database is damaged or does not match.
    #[error("replica is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer version of this software.
    #[error("replica schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// Schema version found in the database.
        found: i64,
        /// Newest schema version this build understands.
        supported: i64,
    },
    /// A caller-supplied value was rejected.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A client edit id was reused for a different edit.
    #[error("client edit id {0} is already used by a different edit")]
    DuplicateEdit(String),
    /// The audit chain does not verify.
    #[error("audit chain broken at seq {seq}: {reason}")]
    AuditChainBroken {
        /// Sequence number at which verification failed.
        seq: i64,
        /// What did not match.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
    /// File system error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Database error (never raised by the keying statement, whose text holds
    /// the key: failures there are reported as [`ReplicaError::Corrupt`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Result alias for this crate.
pub type Result<T, E = ReplicaError> = std::result::Result<T, E>;
