//! The client's one error type.
//!
//! Invariant: no variant carries a passphrase, a token or key material. Hub
//! messages are the OperationOutcome texts the hub chose to send (the hub
//! never echoes secrets); transport messages name the URL, never a header or
//! a body.

use std::path::PathBuf;

use careshare_replica::ReplicaError;
use careshare_sync::ProtocolError;
use chrono::{DateTime, Utc};

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No device is enrolled in this directory.
    #[error("no device is enrolled in {0}; run `careshare enrol` first")]
    NotEnrolled(PathBuf),
    /// A replica already exists where a new one should be made.
    #[error("a replica already exists in {0}; wipe it before enrolling again")]
    AlreadyEnrolled(PathBuf),
    /// The replica passphrase is wrong (the attempt was counted).
    #[error("wrong passphrase ({attempts_left} attempt(s) left before the replica locks)")]
    WrongPassphrase {
        /// Wrong attempts still allowed before the replica locks.
        attempts_left: u32,
    },
    /// Too many wrong passphrases: the replica refuses every passphrase.
    #[error("the replica is locked after too many wrong passphrases; the device must be re-authorised by the hub")]
    Locked,
    /// The offline lease ran out; a sync checks in and renews it.
    #[error("the device lease expired at {since}; sync to check in with the hub")]
    LeaseExpired {
        /// When the lease ran out.
        since: DateTime<Utc>,
    },
    /// The hub revoked this device; the replica and its key have been wiped.
    /// The hub cannot re-authorise this device (no recovery key, or one that
    /// does not open the replica): only a new enrolment helps.
    #[error(
        "this device cannot be re-authorised by the hub; ask the service desk to enrol it again"
    )]
    NotRecoverable,
    #[error("the hub revoked this device: its local record has been wiped")]
    Wiped,
    /// The device's sign-in ran out (refresh token expired, spent or
    /// refused); the user must sign in to the hub again.
    #[error("sign in to the hub again ({reason})")]
    SignInRequired {
        /// What the hub said.
        reason: String,
    },
    /// The hub could not be reached (after retries).
    #[error("cannot reach the hub: {0}")]
    Unreachable(String),
    /// The hub answered with an error.
    #[error("the hub refused the request (HTTP {status}): {message}")]
    Hub {
        /// HTTP status.
        status: u16,
        /// The OperationOutcome's text.
        message: String,
    },
    /// The hub's answer could not be understood.
    #[error("the hub's answer is not understood: {0}")]
    BadResponse(String),
    /// The hub sent a page the sync protocol refuses.
    #[error("sync protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The local audit trail and the hub's copy disagree.
    #[error("the audit trail does not match the hub's copy: {0}")]
    AuditMismatch(String),
    /// No open conflict has this id.
    #[error("there is no open conflict {0}")]
    NoSuchConflict(i64),
    /// A caller-supplied value was rejected.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The device key could not be made or used.
    #[error("device key error: {0}")]
    DeviceKey(&'static str),
    /// The replica failed.
    #[error(transparent)]
    Replica(ReplicaError),
    /// A file could not be read or written.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// A stable machine-readable code, for the desktop shell (`{code,
    /// message}`) and for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::NotEnrolled(_) => "not-enrolled",
            ClientError::AlreadyEnrolled(_) => "already-enrolled",
            ClientError::WrongPassphrase { .. } => "wrong-passphrase",
            ClientError::Locked => "locked",
            ClientError::LeaseExpired { .. } => "lease-expired",
            ClientError::NotRecoverable => "not-recoverable",
            ClientError::Wiped => "wiped",
            ClientError::SignInRequired { .. } => "sign-in-required",
            ClientError::Unreachable(_) => "unreachable",
            ClientError::Hub { .. } => "hub",
            ClientError::BadResponse(_) => "bad-response",
            ClientError::Protocol(_) => "protocol",
            ClientError::AuditMismatch(_) => "audit-mismatch",
            ClientError::NoSuchConflict(_) => "no-such-conflict",
            ClientError::InvalidInput(_) => "invalid-input",
            ClientError::DeviceKey(_) => "device-key",
            ClientError::Replica(_) => "replica",
            ClientError::Io(_) => "io",
        }
    }
}

impl From<ReplicaError> for ClientError {
    fn from(e: ReplicaError) -> Self {
        match e {
            ReplicaError::WrongPassphrase { attempts_left } => {
                ClientError::WrongPassphrase { attempts_left }
            }
            ReplicaError::Locked => ClientError::Locked,
            ReplicaError::LeaseExpired { since } => ClientError::LeaseExpired { since },
            ReplicaError::InvalidInput(m) => ClientError::InvalidInput(m),
            ReplicaError::NotRecoverable | ReplicaError::RecoveryKeyRefused => {
                ClientError::NotRecoverable
            }
            e => ClientError::Replica(e),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
