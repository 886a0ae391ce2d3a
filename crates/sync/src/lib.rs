//! The Careshare sync protocol between the hub and a device's replica.
//!
//! The hub is the source of truth. A device keeps the authorised subset of
//! the record in a local replica, works offline, and reconciles when it
//! reconnects. This crate is the protocol as pure data and functions: it
//! moves no bytes, reads no clock and touches no storage. The caller sends
//! the messages (they are serde types) and commits the effects.
//!
//! # Messages
//!
//! | direction | message | meaning |
//! |---|---|---|
//! | device → hub | [`PullRequest`] | changes after my checkpoint, please |
//! | hub → device | [`PullPage`] | some changes, the checkpoint after them, and whether more wait |
//! | device → hub | [`PushBatch`] | my offline edits |
//! | hub → device | [`PushResult`] | per edit: applied, merged, conflict, rejected, already applied |
//!
//! # Pull
//!
//! The hub keeps, per device, a feed of [`Change`]s with strictly increasing
//! sequence numbers from 1: resource versions to store
//! ([`Change::Upsert`]), resources to delete ([`Change::Remove`]) and
//! patients to purge ([`Change::PurgePatient`]) when access ends: deleted on
//! the hub, left the caseload, consent withdrawn, a security label, a role
//! change, or the device revoked ([`RemovalReason`]). A [`Checkpoint`] is
//! opaque to the device; [`serve_pull`] serves a page from a feed.
//!
//! The device ([`ClientSync`]):
//!
//! 1. sends [`ClientSync::next_pull`];
//! 2. passes the page to [`ClientSync::apply_page`], which refuses pages that
//!    go back, repeat an applied page, promise more without progress, or
//!    carry malformed changes ([`ProtocolError`]), and otherwise returns a
//!    [`PageEffect`] (or reduces it beforehand with [`ReducedPage::new`], which
//!    reads every resource's names, and passes that to [`ClientSync::accept`]);
//! 3. commits the effect's purges, removals, upserts **and** checkpoint in one
//!    storage transaction, then calls [`ClientSync::committed`];
//! 4. pulls again while [`PageEffect::more`].
//!
//! **The checkpoint never advances past data not yet committed.** If the
//! transaction fails or the device loses power, the committed checkpoint is
//! still the old one and the same changes are pulled again; applying a change
//! twice is harmless because an upsert replaces and a removal of something
//! absent does nothing.
//!
//! A pull acknowledges nothing: the hub serves a page from the device's feed
//! after the checkpoint it is given, and only a pull at the end of the feed
//! makes it add to the feed. So while the device commits a page that says
//! more changes wait, it may already ask for the next one
//! ([`ClientSync::prefetch_pull`]); that page is applied only after the
//! commit, and dropped if the commit fails.
//!
//! # First sync
//!
//! When a device first syncs, or a caseload grows, the hub appends the new
//! data to the feed in [`priority`] order ([`sort_for_first_sync`]): flags,
//! allergies, medications, conditions, care plans, observations, then the
//! rest. A nurse who loses signal half-way has what matters most, and resumes
//! from the committed checkpoint.
//!
//! # Push
//!
//! Each local edit sits in the device's outbox as an [`Edit`] with a unique
//! `client_edit_id` and the hub version it started from. The device sends
//! [`ClientSync::push_batch`]; the hub decides each edit with
//! [`hub_apply_edit`]:
//!
//! * the id was applied before → [`EditResult::AlreadyApplied`] (re-sends are
//!   safe: the hub applies each edit at most once);
//! * the id was answered with a conflict or a rejection before → that same
//!   answer again, never a new decision (below, "each edit is decided once");
//! * the edit started from the current version → [`EditResult::Applied`];
//! * the edit is stale → three-way merge with `careshare-merge`: a clean merge
//!   is [`EditResult::Merged`]; anything that cannot merge is
//!   [`EditResult::Conflict`] and nothing is stored (**never last-writer-wins**);
//! * the edit is invalid or not permitted → [`EditResult::Rejected`] with an
//!   `OperationOutcome`.
//!
//! [`ClientSync::apply_push_result`] turns the answer into an
//! [`OutboxAction`] per edit of the batch. Edits the answer does not mention,
//! or a whole lost answer, stay in the outbox and are sent again; so an edit
//! the hub cannot decide now (say, its resource is changing too fast) is left
//! out of the answer, not rejected. A conflict leaves the outbox for the list
//! a person resolves; the resolution is a new edit based on the hub's current
//! version.
//!
//! **Each edit is decided once.** The hub records every answer it gives per
//! `client_edit_id`, conflicts and rejections as well as applications, and
//! answers a re-send from that record: [`hub_apply_edit`] covers applied
//! edits through its `already_applied` argument; a recorded conflict or
//! rejection is the caller's to send again as it was, without calling it.
//! Remembering only applied edits is not enough. A re-send is not only a
//! retry after a lost answer: a request can arrive late or twice, and a late
//! answer to an earlier batch is taken by [`ClientSync::apply_push_result`]
//! as the answer for the same edits when they are in flight again. A hub that
//! decided such a copy anew could apply an edit after telling the device it
//! conflicted or was rejected: the device would show a conflict for an edit
//! that is on the hub, and a person resolving it by keeping the hub's version
//! would keep the very edit they meant to discard. The access rule still
//! applies to a repeated answer, since a conflict shows hub data.
//!
//! Storage keeps the synced copy of each resource (from pulls) apart from the
//! outbox; a pulled version never discards a pending edit. Open conflicts
//! hold hub data: purging a patient removes that patient's open conflicts
//! (the outbox keeps the user's own edits), and a conflict answer that
//! arrives after the patient's purge (a late answer) is not kept either.
//!
//! # Example: one hub, one device
//!
//! ```
//! use careshare_sync::*;
//! use serde_json::{json, Value};
//!
//! fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(message: &T) -> T {
//!     serde_json::from_str(&serde_json::to_string(message).unwrap()).unwrap()
//! }
//!
//! // The hub: a feed and the current version of one Task.
//! let task = json!({"resourceType": "Task", "id": "t1", "status": "requested"});
//! let mut feed = vec![Sequenced {
//!     sequence: 1,
//!     change: Change::Upsert {
//!         resource_type: "Task".into(),
//!         id: "t1".into(),
//!         version: 1,
//!         resource: task.clone(),
//!         patient: Some("p1".into()),
//!     },
//! }];
//! let mut current: (i64, Value) = (1, task.clone());
//!
//! // The device pulls and commits.
//! let mut device = ClientSync::new(None, 50);
//! let page = wire(&serve_pull(&feed, &wire(&device.next_pull())));
//! let effect = device.apply_page(&page)?;
//! assert_eq!(effect.upserts.len(), 1);
//! // ... storage commits effect.upserts and effect.checkpoint in one transaction ...
//! device.committed(effect.checkpoint)?;
//!
//! // Offline, the nurse completes the task.
//! let outbox = vec![Edit {
//!     client_edit_id: "e1".into(),
//!     resource_type: "Task".into(),
//!     id: "t1".into(),
//!     base_version: Some(1),
//!     resource: Some(json!({"resourceType": "Task", "id": "t1", "status": "completed"})),
//! }];
//!
//! // On reconnect, the device pushes; the hub decides and stores.
//! let batch = wire(&device.push_batch(&outbox, 10));
//! let mut results = Vec::new();
//! for edit in &batch.edits {
//!     let decision = hub_apply_edit(edit, Some((current.0, &current.1)), Some(&task), None);
//!     if let EditDecision::Apply { resource: Some(resource) } = &decision {
//!         current = (current.0 + 1, resource.clone());
//!         feed.push(Sequenced {
//!             sequence: 2,
//!             change: Change::Upsert {
//!                 resource_type: "Task".into(),
//!                 id: "t1".into(),
//!                 version: current.0,
//!                 resource: resource.clone(),
//!                 patient: Some("p1".into()),
//!             },
//!         });
//!     }
//!     results.push(decision.into_result(edit.client_edit_id.clone(), current.0));
//! }
//! let actions = device.apply_push_result(&wire(&PushResult { results }));
//! assert!(matches!(&actions[..], [OutboxAction::Remove { version: 2, .. }]));
//!
//! // The next pull brings the hub's version 2 back.
//! let page = wire(&serve_pull(&feed, &wire(&device.next_pull())));
//! let effect = device.apply_page(&page)?;
//! assert_eq!(effect.upserts[0].resource["status"], "completed");
//! device.committed(effect.checkpoint)?;
//! assert!(!effect.more);
//! # Ok::<(), ProtocolError>(())
//! ```

mod client;
mod hub;
mod wire;

pub use client::{
    ClientSync, OutboxAction, PageEffect, ProtocolError, Purge, ReducedPage, Removal, Upsert,
    PUSH_BATCH_BYTES,
};
pub use hub::{
    hub_apply_edit, operation_outcome, priority, serve_pull, sort_for_first_sync, EditDecision,
    Sequenced,
};
pub use wire::{
    Change, Checkpoint, Edit, EditResult, PullPage, PullRequest, PushBatch, PushResult,
    RawResource, RemovalReason, ResourceBody,
};
