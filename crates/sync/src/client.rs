//! The device's side of the protocol.

use std::collections::{BTreeMap, BTreeSet};

use careshare_merge::Conflict;
use serde_json::Value;

use crate::wire::{
    Change, Checkpoint, Edit, EditResult, PullPage, PullRequest, PushBatch, PushResult,
    RemovalReason, ResourceBody,
};

/// A page the device refuses to apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The page's checkpoint is behind the committed one.
    #[error("the page goes back from checkpoint {checkpoint} to {next}")]
    Backwards {
        /// The committed checkpoint.
        checkpoint: Checkpoint,
        /// The page's checkpoint.
        next: Checkpoint,
    },
    /// The page carries changes but does not move the checkpoint: it was
    /// already applied (for example a duplicated response).
    #[error("the page carries changes but stays at checkpoint {0}")]
    Stale(Checkpoint),
    /// The page says more changes wait but does not move the checkpoint,
    /// which would pull the same page forever.
    #[error("the page says more changes wait but stays at checkpoint {0}")]
    NoProgress(Checkpoint),
    /// A change in the page is not well formed.
    #[error("change {index} of the page is invalid: {reason}")]
    InvalidChange {
        /// Position of the change in the page.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// [`ClientSync::committed`] was called with a checkpoint that no applied
    /// page is waiting to commit.
    #[error("checkpoint {0} is not waiting to be committed")]
    NotPending(Checkpoint),
}

/// A resource version to store in the replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsert<R = Value> {
    /// FHIR resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// The hub version.
    pub version: i64,
    /// The resource.
    pub resource: R,
    /// The patient it belongs to, if any.
    pub patient: Option<String>,
}

/// A resource to delete from the replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// FHIR resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// Why it goes.
    pub reason: RemovalReason,
}

/// A patient whose every resource leaves the replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purge {
    /// The patient's id.
    pub patient: String,
    /// Why it goes.
    pub reason: RemovalReason,
}

/// What the storage layer must do, in ONE transaction, for one page.
///
/// Apply in this order: `purges`, then `removals`, then `upserts`, then store
/// `checkpoint`. The lists are already reduced so that this order gives the
/// same replica as applying the page's changes one by one.
#[derive(Clone, Debug, PartialEq)]
pub struct PageEffect<R = Value> {
    /// Patients to purge.
    pub purges: Vec<Purge>,
    /// Resources to delete.
    pub removals: Vec<Removal>,
    /// Resource versions to store.
    pub upserts: Vec<Upsert<R>>,
    /// The checkpoint to store in the same transaction.
    pub checkpoint: Checkpoint,
    /// Whether to pull again straight away.
    pub more: bool,
}

/// A pulled page reduced to what storage must do, before it is checked against the
/// device's checkpoint ([`ClientSync::accept`]). Reducing reads every resource's names,
/// most of the work of applying a page: a device may reduce the next page while it
/// commits this one.
#[derive(Debug)]
pub struct ReducedPage<R = Value> {
    next: Checkpoint,
    more: bool,
    changes: usize,
    wipe: bool,
    effect: Result<PageEffect<R>, ProtocolError>,
}

impl<R: ResourceBody> ReducedPage<R> {
    /// Reduces `page` (an invalid change is reported by [`ClientSync::accept`]).
    pub fn new(page: &PullPage<R>) -> ReducedPage<R> {
        ReducedPage {
            next: page.next,
            more: page.more,
            changes: page.changes.len(),
            wipe: page.changes.iter().any(|c| {
                matches!(
                    c,
                    Change::PurgePatient {
                        reason: RemovalReason::DeviceRevoked,
                        ..
                    }
                )
            }),
            effect: reduce(page),
        }
    }
}

impl<R> ReducedPage<R> {
    /// How many changes the page carried.
    pub fn changes(&self) -> usize {
        self.changes
    }

    /// Whether the hub tells the device it was revoked: it must wipe its replica.
    pub fn wipe(&self) -> bool {
        self.wipe
    }
}

/// What to do with one outbox entry after a push.
#[derive(Clone, Debug, PartialEq)]
pub enum OutboxAction {
    /// The hub has the edit: drop it from the outbox.
    Remove {
        /// The edit.
        client_edit_id: String,
        /// The hub version it made.
        version: i64,
        /// When the hub merged it, the merged resource (`Some(None)`: the
        /// merge deleted it). A later pull brings the same version.
        merged: Option<Option<Value>>,
    },
    /// No answer for this edit: keep it and send it again.
    Keep {
        /// The edit.
        client_edit_id: String,
    },
    /// Move the edit from the outbox to the conflicts a person must resolve.
    /// A resolution is a new edit with a new id and `current_version` as base.
    RecordConflict {
        /// The edit.
        client_edit_id: String,
        /// The version the edit started from.
        base: Option<Value>,
        /// The edit's resource.
        ours: Option<Value>,
        /// The hub's current resource.
        theirs: Option<Value>,
        /// The hub's current version.
        current_version: Option<i64>,
        /// The elements to decide.
        conflicts: Vec<Conflict>,
    },
    /// Move the edit from the outbox to the rejected edits, shown to the user.
    MarkRejected {
        /// The edit.
        client_edit_id: String,
        /// The hub's `OperationOutcome`.
        outcome: Value,
    },
}

/// The device's sync state: the committed checkpoint and what is in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSync {
    checkpoint: Option<Checkpoint>,
    pending: Option<Checkpoint>,
    /// Whether the applied page waiting to be committed said more changes wait.
    pending_more: bool,
    page_size: u32,
    in_flight: Vec<String>,
}

impl ClientSync {
    /// Sync state resumed from the committed `checkpoint` (`None`: first sync).
    /// A `page_size` of 0 is taken as 1.
    pub fn new(checkpoint: Option<Checkpoint>, page_size: u32) -> ClientSync {
        ClientSync {
            checkpoint,
            pending: None,
            pending_more: false,
            page_size: page_size.max(1),
            in_flight: Vec::new(),
        }
    }

    /// The committed checkpoint.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// The next request to send.
    pub fn next_pull(&self) -> PullRequest {
        PullRequest {
            checkpoint: self.checkpoint,
            page_size: self.page_size,
        }
    }

    /// Checks a page against the committed checkpoint and reduces it to what
    /// storage must do. Nothing counts as synced until [`ClientSync::committed`].
    pub fn apply_page<R: ResourceBody>(
        &mut self,
        page: &PullPage<R>,
    ) -> Result<PageEffect<R>, ProtocolError> {
        self.accept(ReducedPage::new(page))
    }

    /// [`ClientSync::apply_page`] for a page reduced beforehand ([`ReducedPage::new`]),
    /// with the same checks in the same order.
    pub fn accept<R>(&mut self, page: ReducedPage<R>) -> Result<PageEffect<R>, ProtocolError> {
        if let Some(checkpoint) = self.checkpoint {
            if page.next < checkpoint {
                return Err(ProtocolError::Backwards {
                    checkpoint,
                    next: page.next,
                });
            }
            if page.next == checkpoint && page.changes > 0 {
                return Err(ProtocolError::Stale(checkpoint));
            }
            if page.next == checkpoint && page.more {
                return Err(ProtocolError::NoProgress(checkpoint));
            }
        }
        let effect = page.effect?;
        self.pending = Some(page.next);
        self.pending_more = page.more;
        Ok(effect)
    }

    /// The request for the page after the applied page that waits to be committed, when
    /// that page said more changes wait: a device may send it while it commits (the hub
    /// serves pages from the device's feed and takes a pull as no acknowledgement of
    /// anything; see "Pull" in the crate documentation). Its answer is applied only after
    /// [`ClientSync::committed`]; if the commit fails, the answer is dropped and the device
    /// pulls again from its committed checkpoint.
    pub fn prefetch_pull(&self) -> Option<PullRequest> {
        match self.pending {
            Some(next) if self.pending_more => Some(PullRequest {
                checkpoint: Some(next),
                page_size: self.page_size,
            }),
            _ => None,
        }
    }

    /// Records that storage committed the effect whose checkpoint is
    /// `checkpoint`.
    pub fn committed(&mut self, checkpoint: Checkpoint) -> Result<(), ProtocolError> {
        if self.pending != Some(checkpoint) {
            return Err(ProtocolError::NotPending(checkpoint));
        }
        self.pending = None;
        self.pending_more = false;
        self.checkpoint = Some(checkpoint);
        Ok(())
    }

    /// The next batch: the first `max` edits of the outbox, as many of them as fit in
    /// [`PUSH_BATCH_BYTES`] of JSON (at least one when the outbox is not empty: a few
    /// edits carrying photographs must not make a batch the hub refuses). Remembers them
    /// as in flight; any earlier unanswered batch counts as lost.
    pub fn push_batch(&mut self, outbox: &[Edit], max: usize) -> PushBatch {
        let mut bytes = 0;
        let mut edits: Vec<Edit> = Vec::new();
        for edit in outbox.iter().take(max.max(1)) {
            bytes += json_len(edit);
            if !edits.is_empty() && bytes > PUSH_BATCH_BYTES {
                break;
            }
            edits.push(edit.clone());
        }
        self.in_flight = edits.iter().map(|e| e.client_edit_id.clone()).collect();
        PushBatch { edits }
    }

    /// Turns the hub's answer into outbox actions: one per in-flight edit, in
    /// batch order. Results for edits not in flight (a duplicated or late
    /// response) are ignored; in-flight edits without a result are kept.
    ///
    /// Answers are matched by `client_edit_id` only: a late answer to an
    /// earlier batch counts as the answer for those of its edits that are in
    /// flight again. That is sound because the hub decides each edit once
    /// (see "Push" in the crate documentation).
    pub fn apply_push_result(&mut self, result: &PushResult) -> Vec<OutboxAction> {
        let mut answers: BTreeMap<&str, &EditResult> = BTreeMap::new();
        for answer in &result.results {
            answers.entry(answer.client_edit_id()).or_insert(answer);
        }
        let mut seen = BTreeSet::new();
        let in_flight = std::mem::take(&mut self.in_flight);
        in_flight
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .map(|id| match answers.get(id.as_str()) {
                None => OutboxAction::Keep { client_edit_id: id },
                Some(answer) => action(id, answer),
            })
            .collect()
    }
}

fn action(client_edit_id: String, answer: &EditResult) -> OutboxAction {
    match answer {
        EditResult::Applied { version, .. } | EditResult::AlreadyApplied { version, .. } => {
            OutboxAction::Remove {
                client_edit_id,
                version: *version,
                merged: None,
            }
        }
        EditResult::Merged {
            version, resource, ..
        } => OutboxAction::Remove {
            client_edit_id,
            version: *version,
            merged: Some(resource.clone()),
        },
        EditResult::Conflict {
            base,
            ours,
            theirs,
            current_version,
            conflicts,
            ..
        } => OutboxAction::RecordConflict {
            client_edit_id,
            base: base.clone(),
            ours: ours.clone(),
            theirs: theirs.clone(),
            current_version: *current_version,
            conflicts: conflicts.clone(),
        },
        EditResult::Rejected { outcome, .. } => OutboxAction::MarkRejected {
            client_edit_id,
            outcome: outcome.clone(),
        },
    }
}

enum Slot<'a, R> {
    Upsert(&'a Change<R>),
    Remove(RemovalReason),
}

fn invalid(index: usize, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidChange {
        index,
        reason: reason.into(),
    }
}

/// The most JSON a push batch holds besides its first edit ([`ClientSync::push_batch`]):
/// a quarter of what the hub accepts in one request.
pub const PUSH_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The length of `edit` as JSON, counted without keeping the text.
fn json_len(edit: &Edit) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a plain value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, edit);
    count.0
}

/// Reduces a page to purges, removals and upserts whose fixed application
/// order gives the same result as applying the changes one by one.
fn reduce<R: ResourceBody>(page: &PullPage<R>) -> Result<PageEffect<R>, ProtocolError> {
    // Latest change per resource, in first-seen order.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut slots: BTreeMap<(String, String), Slot<'_, R>> = BTreeMap::new();
    let mut purges: Vec<Purge> = Vec::new();
    for (index, change) in page.changes.iter().enumerate() {
        match change {
            Change::Upsert {
                resource_type,
                id,
                resource,
                patient,
                ..
            } => {
                check_names(index, resource_type, id)?;
                let (stated_type, stated_id) = resource.names();
                if stated_type.as_deref() != Some(resource_type.as_str()) {
                    return Err(invalid(index, "resourceType does not match the change"));
                }
                if stated_id.as_deref() != Some(id.as_str()) {
                    return Err(invalid(index, "id does not match the change"));
                }
                if patient.as_deref() == Some("") {
                    return Err(invalid(index, "empty patient"));
                }
                let key = (resource_type.clone(), id.clone());
                if !slots.contains_key(&key) {
                    order.push(key.clone());
                }
                slots.insert(key, Slot::Upsert(change));
            }
            Change::Remove {
                resource_type,
                id,
                reason,
            } => {
                check_names(index, resource_type, id)?;
                let key = (resource_type.clone(), id.clone());
                if !slots.contains_key(&key) {
                    order.push(key.clone());
                }
                slots.insert(key, Slot::Remove(*reason));
            }
            Change::PurgePatient { patient, reason } => {
                if patient.is_empty() {
                    return Err(invalid(index, "empty patient"));
                }
                // An earlier upsert of this patient in the page becomes a
                // removal, not nothing: the replica may hold an older copy
                // of that resource filed under another patient (or none), for
                // example before the resource was re-filed to this patient,
                // and the purge below would not reach that copy. One by one,
                // the upsert replaced it and the purge then removed it.
                for slot in slots.values_mut() {
                    if matches!(slot, Slot::Upsert(Change::Upsert { patient: Some(p), .. }) if p == patient)
                    {
                        *slot = Slot::Remove(*reason);
                    }
                }
                if !purges.iter().any(|p| &p.patient == patient) {
                    purges.push(Purge {
                        patient: patient.clone(),
                        reason: *reason,
                    });
                }
            }
        }
    }
    let mut removals = Vec::new();
    let mut upserts = Vec::new();
    for key in order {
        let Some(slot) = slots.remove(&key) else {
            continue;
        };
        let (resource_type, id) = key;
        match slot {
            Slot::Remove(reason) => removals.push(Removal {
                resource_type,
                id,
                reason,
            }),
            Slot::Upsert(Change::Upsert {
                version,
                resource,
                patient,
                ..
            }) => upserts.push(Upsert {
                resource_type,
                id,
                version: *version,
                resource: resource.clone(),
                patient: patient.clone(),
            }),
            Slot::Upsert(_) => {}
        }
    }
    Ok(PageEffect {
        purges,
        removals,
        upserts,
        checkpoint: page.next,
        more: page.more,
    })
}

fn check_names(index: usize, resource_type: &str, id: &str) -> Result<(), ProtocolError> {
    if resource_type.is_empty() {
        return Err(invalid(index, "empty resource type"));
    }
    if id.is_empty() {
        return Err(invalid(index, "empty id"));
    }
    Ok(())
}
