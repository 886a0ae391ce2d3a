//! The headless Careshare client: enrols a device, keeps its encrypted
//! replica, and syncs it with the hub. The desktop shell and the `careshare`
//! CLI are thin layers over this library.
//!
//! # Layers
//!
//! ```text
//!   careshare CLI (main.rs) · desktop shell (later)
//!                 │
//!   careshare-client: Session, enrol            ← I/O: HTTP (reqwest), clock passed in
//!     ├── careshare-sync     (pure protocol: ClientSync, OutboxAction)
//!     └── careshare-replica  (SQLCipher storage: one transaction per page)
//! ```
//!
//! The protocol decisions are `careshare-sync`'s; storage is
//! `careshare-replica`'s; this crate moves bytes between them and the hub
//! ([`mod@sync`] describes one sync step by step). No function reads the
//! clock: every operation takes `now`.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), careshare_client::ClientError> {
//! use careshare_client::*;
//! let now = chrono::Utc::now();
//! let mut session = enrol(
//!     Enrolment::new(
//!         "/tmp/replica",
//!         "http://127.0.0.1:8080",
//!         "nurse.amy.khan",
//!         SecretString::from("hub passphrase"),
//!         Passphrase::from("replica passphrase"),
//!     ),
//!     now,
//! )
//! .await?;
//! let report = session.sync(&SyncOptions::default(), now, &mut |_| {}).await?;
//! println!("{} changes", report.changes);
//! session.lock()?;
//!
//! let mut session = Session::open("/tmp/replica", &Passphrase::from("replica passphrase"), now)?;
//! println!("{} edits pending", session.status()?.pending_edits);
//! # Ok(()) }
//! ```
//!
//! # Invariants
//!
//! * **The checkpoint never advances past data not yet committed.** A page's
//!   effect and its checkpoint are one replica transaction; a sync killed at
//!   any point resumes from the last committed page.
//! * **Nothing secret outside the encrypted database.** The device's private
//!   key and refresh token live only in the replica ([`DeviceState`]); the
//!   hub passphrase is used and dropped. Passphrases, tokens and keys are
//!   held in [`Passphrase`], [`SecretString`] and [`SecretBytes`], which
//!   never print and are zeroized on drop, and never appear in a
//!   [`ClientError`] or a log line.
//! * **A revoked device forgets.** A hub answer with `Careshare-Instruction:
//!   wipe` (or a purge for a revoked device) wipes the replica files and key
//!   and ends the session with [`ClientError::Wiped`].
//! * **Re-sending is safe.** Edits carry client-generated UUIDs; a lost push
//!   answer leaves them queued, and the hub applies each at most once.
//! * **A pulled version never discards a pending edit.** The synced copy and
//!   the outbox are kept apart; [`Session::view`] shows the newest queued
//!   edit over the synced copy.

mod apply;
mod device_key;
mod directory;
mod enrol;
mod error;
mod http;
mod reauthorise;
mod records;
mod resolve;
mod session;
pub mod sync;
#[cfg(test)]
mod tests;

pub use apply::PushTally;
pub use careshare_replica::{
    DeviceState, KeyParams, Passphrase, RecoveryBinding, ReplicaFiles, SecretBytes, SecretString,
};
pub use device_key::{AUDIT_SIGN_CONTEXT, PROOF_CONTEXT};
pub use directory::Grant;
pub use enrol::{enrol, Enrolment};
pub use error::{ClientError, Result};
pub use http::{HttpConfig, RetryPolicy};
pub use reauthorise::reauthorise;
pub use records::{HeldResource, PatientRecords};
pub use resolve::{
    Resolution, Resolved, CONFLICT_RESOLUTION_SYSTEM, DEVICE_ID_SYSTEM, USERNAME_SYSTEM,
};
pub use session::{
    ConflictView, DeviceInfo, OutboxEntry, PatientStatus, ResourceView, Session, Status,
};
pub use sync::{SyncOptions, SyncProgress, SyncReport};
