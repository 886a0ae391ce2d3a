//! From protocol to storage: a pulled page's effect becomes one replica
//! write, the outbox becomes wire edits, and each [`OutboxAction`] becomes a
//! replica operation. No network here, so all of it is tested without a hub.

use std::borrow::Cow;
use std::collections::HashMap;

use careshare_replica::{
    ConflictContext, EditState, NewConflict, PageApplied, PendingEdit, PullPageWrite,
    PulledResource, Replica, SyncedUpdate,
};
use careshare_sync::{Checkpoint, ClientSync, Edit, OutboxAction, PageEffect, ResourceBody};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ClientError, Result};

/// The replica write for one page: its purges, removals, upserts and
/// checkpoint, committed together by [`Replica::apply_pull_page_json`]. Each
/// resource is stored as its JSON text: as the hub sent it when the page was
/// read without parsing the resources ([`careshare_sync::RawResource`]).
pub(crate) fn page_write<R: ResourceBody>(effect: &PageEffect<R>) -> PullPageWrite<Cow<'_, str>> {
    PullPageWrite {
        purges: effect.purges.iter().map(|p| p.patient.clone()).collect(),
        removals: effect
            .removals
            .iter()
            .map(|r| (r.resource_type.clone(), r.id.clone()))
            .collect(),
        upserts: effect
            .upserts
            .iter()
            .map(|u| PulledResource {
                resource: u.resource.json_text(),
                version: u.version.to_string(),
                patient_id: u.patient.clone(),
            })
            .collect(),
        checkpoint: effect.checkpoint.sequence().to_string(),
        complete: !effect.more,
    }
}

/// Checks `page` with the protocol state, commits its effect and checkpoint
/// in one replica transaction, and only then tells the protocol state it is
/// committed. On any error nothing of the page is stored and both the stored
/// and the in-memory checkpoint stay where they were. (A sync does the two
/// halves itself, to ask for the next page in between.)
#[cfg(test)]
pub(crate) fn commit_page<R: ResourceBody>(
    replica: &mut Replica,
    state: &mut ClientSync,
    page: &careshare_sync::PullPage<R>,
    now: DateTime<Utc>,
) -> Result<(PageEffect<R>, PageApplied)> {
    let effect = state.apply_page(page)?;
    let applied = store_page(replica, state, &effect, now)?;
    Ok((effect, applied))
}

/// Commits an applied page's effect and checkpoint in one replica transaction,
/// then tells the protocol state it is committed (the second half of
/// [`commit_page`]).
pub(crate) fn store_page<R: ResourceBody>(
    replica: &mut Replica,
    state: &mut ClientSync,
    effect: &PageEffect<R>,
    now: DateTime<Utc>,
) -> Result<PageApplied> {
    let applied = replica.apply_pull_page_json(&page_write(effect), now)?;
    state.committed(effect.checkpoint)?;
    Ok(applied)
}

/// The stored pull checkpoint as the protocol's type.
pub(crate) fn parse_checkpoint(stored: Option<String>) -> Result<Option<Checkpoint>> {
    stored
        .map(|s| {
            s.parse::<i64>()
                .map(Checkpoint::from_sequence)
                .map_err(|_| {
                    ClientError::Replica(careshare_replica::ReplicaError::Corrupt(
                        "stored pull checkpoint is not a number".into(),
                    ))
                })
        })
        .transpose()
}

/// A stored version text as a hub version number.
pub(crate) fn parse_version(v: Option<&str>) -> Result<Option<i64>> {
    v.map(|v| {
        v.parse::<i64>()
            .map_err(|_| ClientError::InvalidInput(format!("version {v:?} is not a number")))
    })
    .transpose()
}

/// The outbox entries to send, in the order queued: everything not
/// rejected (a `sent` edit whose answer was lost is sent again).
pub(crate) fn outbox_edits(pending: &[PendingEdit]) -> Result<Vec<Edit>> {
    pending
        .iter()
        .filter(|p| p.state != EditState::Rejected)
        .map(|p| {
            let e = &p.edit;
            Ok(Edit {
                client_edit_id: e.client_edit_id.clone(),
                resource_type: e.resource_type.clone(),
                id: e.resource_id.clone(),
                base_version: parse_version(e.base_version.as_deref())?,
                resource: (!e.edit.is_null()).then(|| e.edit.clone()),
            })
        })
        .collect()
}

/// How one push went, edit by edit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PushTally {
    /// Applied as sent (or applied by an earlier, unanswered send).
    pub applied: usize,
    /// Merged with newer hub changes.
    pub merged: usize,
    /// Could not merge: now open conflicts.
    pub conflicts: usize,
    /// Refused by the hub: kept, marked rejected.
    pub rejected: usize,
    /// Not answered: kept, sent again next time.
    pub kept: usize,
}

/// `resource` with `meta.versionId` set to `version`.
fn with_version(mut resource: Value, version: i64) -> Value {
    if let Some(obj) = resource.as_object_mut() {
        let meta = obj
            .entry("meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("versionId".into(), Value::String(version.to_string()));
        }
    }
    resource
}

/// Applies one outbox action to the replica; `edits` are the edits of the
/// batch by client edit id. Returns whether the action took the edit out of
/// the queue (everything but [`OutboxAction::Keep`]).
pub(crate) fn apply_action(
    replica: &mut Replica,
    action: &OutboxAction,
    edits: &HashMap<String, PendingEdit>,
    tally: &mut PushTally,
    now: DateTime<Utc>,
) -> Result<bool> {
    match action {
        OutboxAction::Keep { .. } => {
            tally.kept += 1;
            Ok(false)
        }
        OutboxAction::Remove {
            client_edit_id,
            version,
            merged,
        } => {
            let update = match merged {
                Some(Some(resource)) => SyncedUpdate::Put {
                    resource: resource.clone(),
                    version: *version,
                },
                Some(None) => SyncedUpdate::Delete,
                None => match edits.get(client_edit_id) {
                    Some(p) if p.edit.edit.is_null() => SyncedUpdate::Delete,
                    Some(p) => SyncedUpdate::Put {
                        resource: with_version(p.edit.edit.clone(), *version),
                        version: *version,
                    },
                    None => SyncedUpdate::Keep,
                },
            };
            if merged.is_some() {
                tally.merged += 1;
            } else {
                tally.applied += 1;
            }
            replica.complete_edit_synced(client_edit_id, &update, now)?;
            Ok(true)
        }
        OutboxAction::RecordConflict {
            client_edit_id,
            base,
            ours,
            theirs,
            current_version,
            conflicts,
        } => {
            tally.conflicts += 1;
            let Some(p) = edits.get(client_edit_id) else {
                return Ok(true);
            };
            let conflict = NewConflict {
                resource_type: p.edit.resource_type.clone(),
                resource_id: p.edit.resource_id.clone(),
                patient_id: p.edit.patient_id.clone(),
                base: base.clone(),
                ours: ours.clone().unwrap_or(Value::Null),
                theirs: theirs.clone().unwrap_or(Value::Null),
            };
            let context = ConflictContext {
                client_edit_id: client_edit_id.clone(),
                current_version: current_version.map(|v| v.to_string()),
                details: serde_json::to_value(conflicts).unwrap_or(Value::Null),
            };
            replica.conflict_edit(&conflict, &context, now)?;
            Ok(true)
        }
        OutboxAction::MarkRejected {
            client_edit_id,
            outcome,
        } => {
            tally.rejected += 1;
            replica.reject_edit(client_edit_id, outcome)?;
            Ok(true)
        }
    }
}
