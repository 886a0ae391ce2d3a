//! What the desktop app reads from the replica: the caseload and a patient's
//! records as the user sees them (queued edits over synced copies).
