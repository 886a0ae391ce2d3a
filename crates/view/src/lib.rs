//! What the desktop app shows, shared by the Tauri shell (`src-tauri`) and the
//! Yew UI (`ui`, compiled to wasm).
//!
//! * [`api`]: the contract between them: each command's name, arguments and
//!   result. The shell answers every command with one of these types or an
//!   [`api::AppError`] (`{code, message}`); the UI sends and reads nothing else.
//!   No type here carries a key, a token or a passphrase once the replica is
//!   unlocked (the passphrase crosses once, in [`api::EnrolRequest`] and
//!   [`api::UnlockArgs`], and is dropped by the shell).
//! * [`format`]: NHS numbers (3-3-4), ages, "data as of" lines and the
//!   caseload search.
//! * [`news2`]: the live NEWS2 score of the visit form, as the nurse types.
//! * [`summary`], [`visit`], [`conflict`]: FHIR to screen and back, for the
//!   shell: caseload rows and the patient summary from the replica's
//!   resources, the visit form as the resources to queue, conflicts side by
//!   side and a combined resolution.
//!
//! Everything here is pure (no I/O, no clock: time is passed in), so the
//! same code runs in the shell and in the browser engine, and is tested on
//! the host.

pub mod api;
pub mod conflict;
pub mod format;
pub mod news2;
pub mod summary;
pub mod visit;
