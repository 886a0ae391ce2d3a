//! Encrypted local replica of the shared care record.
//!
//! The desktop app for community nurses keeps the authorised subset of the
//! record on the device so that it works offline. This crate is the storage
//! layer only: no network, no sync protocol.
//!
//! # Files
//!
//! A replica lives in one directory ([`ReplicaFiles`]):
//!
//! * `replica.db` — SQLCipher 4 database (with `-wal`/`-shm` while open),
//!   encrypted with a random 256-bit data key used as a SQLCipher raw key.
//!   The file carries no plaintext header.
//! * `replica.key.json` — the key file: the data key wrapped with AES-256-GCM
//!   under a key derived from the user's passphrase (PBKDF2-HMAC-SHA256,
//!   per-wrap random 16-byte salt), plus the failed-attempts counter, the
//!   locked flag and the device lease expiry, and (for an enrolled device) a
//!   second wrap of the data key under a random recovery key that only the
//!   hub keeps. It holds no secret in clear.
//!   Deleting it makes the database unreadable (crypto-erase).
//!
//! # Invariants
//!
//! * The data key exists in clear only in memory, only while the database is
//!   being keyed or rewrapped, and is zeroized afterwards; passphrases are
//!   held in [`Passphrase`], which never prints and is zeroized on drop.
//! * A wrong passphrase is detected by AEAD failure and increments the
//!   persisted failed-attempts counter; after [`MAX_FAILED_ATTEMPTS`] wrong
//!   attempts in a row the replica is locked (persisted) and refuses every
//!   passphrase until the hub re-authorises the device: it gives the
//!   recovery key back to the device's user, signed in again, and
//!   [`Replica::recover`] sets a new passphrase and replaces the recovery
//!   key. A right passphrase resets the counter.
//! * [`Replica::open`] refuses once `now` is past the lease;
//!   [`Replica::open_for_checkin`] verifies the passphrase without opening the
//!   record so the sync layer can renew the lease after a check-in.
//! * No function reads the clock: every time is passed in.
//! * The local audit log is hash-chained:
//!   `hash = hex(SHA-256(prev_hash "\n" seq "\n" recorded_at "\n" event))`,
//!   where `prev_hash` of the first row is [`AUDIT_GENESIS`], `seq` is decimal
//!   starting at 1 without gaps, and `recorded_at` is the stored RFC 3339
//!   text.
//! * A pulled page and its checkpoint are committed in one transaction
//!   ([`Replica::apply_pull_page`]): the checkpoint never advances past data
//!   not yet committed.
//! * The device's hub identity ([`DeviceState`]: signing key, refresh token)
//!   lives only inside the encrypted database.

mod error;
mod keyfile;
mod replica;
mod secret;
mod sync_store;

pub use error::{ReplicaError, Result};
pub use replica::{
    wipe, CheckinSession, Conflict, ConflictContext, EditState, KeyParams, KeyStatus, NewConflict,
    OutboxEdit, PatientRemoval, PendingEdit, RecoveryBinding, Replica, ReplicaFiles,
    StoredResource, AUDIT_GENESIS, MAX_FAILED_ATTEMPTS,
};
pub use secret::{Passphrase, RecoveryKey, SecretBytes, SecretString};
pub use sync_store::{
    AuditEntry, CaseloadEntry, DeviceState, PageApplied, PatientFreshness, PullPageWrite,
    PulledResource, ResourceJson, SyncedUpdate,
};
