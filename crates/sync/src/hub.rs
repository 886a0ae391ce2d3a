//! The hub's side of the protocol: deciding edits, serving pages, and the
//! first-sync order.

use careshare_merge::{merge_opt, Conflict, ConflictKind, MergeOutcome};
use serde_json::{json, Map, Value};

use crate::wire::{Change, Checkpoint, Edit, EditResult, PullPage, PullRequest};

/// What the hub does with one pushed edit.
#[derive(Clone, Debug, PartialEq)]
pub enum EditDecision {
    /// The edit was applied before under the same id; it made `version`.
    AlreadyApplied {
        /// The version the edit made.
        version: i64,
    },
    /// The edit started from the current version: store it as the next
    /// version (`None`: delete).
    Apply {
        /// The resource to store.
        resource: Option<Value>,
    },
    /// The edit started from an older version and merged cleanly: store the
    /// merge as the next version (`None`: delete).
    ApplyMerged {
        /// The merged resource.
        resource: Option<Value>,
    },
    /// The edit could not merge. Store nothing; return it to the device.
    Conflict {
        /// The version the edit started from.
        base: Option<Value>,
        /// The edit's resource.
        ours: Option<Value>,
        /// The current resource.
        theirs: Option<Value>,
        /// The current version.
        current_version: Option<i64>,
        /// The elements a person has to decide.
        conflicts: Vec<Conflict>,
    },
    /// The edit is invalid. Store nothing.
    Rejected {
        /// A FHIR `OperationOutcome` saying why.
        outcome: Value,
    },
}

impl EditDecision {
    /// The wire result for this decision. `version` is the version the hub
    /// stored for `Apply`/`ApplyMerged` (ignored otherwise).
    pub fn into_result(self, client_edit_id: String, version: i64) -> EditResult {
        match self {
            EditDecision::AlreadyApplied { version } => EditResult::AlreadyApplied {
                client_edit_id,
                version,
            },
            EditDecision::Apply { .. } => EditResult::Applied {
                client_edit_id,
                version,
            },
            EditDecision::ApplyMerged { resource } => EditResult::Merged {
                client_edit_id,
                version,
                resource,
            },
            EditDecision::Conflict {
                base,
                ours,
                theirs,
                current_version,
                conflicts,
            } => EditResult::Conflict {
                client_edit_id,
                base,
                ours,
                theirs,
                current_version,
                conflicts,
            },
            EditDecision::Rejected { outcome } => EditResult::Rejected {
                client_edit_id,
                outcome,
            },
        }
    }
}

/// A FHIR `OperationOutcome` with one error issue.
pub fn operation_outcome(code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    })
}

fn rejected(code: &str, diagnostics: &str) -> EditDecision {
    EditDecision::Rejected {
        outcome: operation_outcome(code, diagnostics),
    }
}

/// Decides one pushed edit.
///
/// * `current`: the current version and resource (`None`: absent or deleted).
/// * `base`: the stored resource at `edit.base_version` (`None`: unknown,
///   deleted at that version, or the edit has no base).
/// * `already_applied`: the version this `client_edit_id` made, if the hub
///   applied it before. An edit the hub answered with a conflict or a
///   rejection before must not be decided again: answer a re-send with the
///   recorded answer instead of calling this (see "Push" in the crate
///   documentation).
///
/// Never last-writer-wins: a stale edit is merged with
/// [`careshare_merge::merge_opt`], and what cannot merge is a conflict.
pub fn hub_apply_edit(
    edit: &Edit,
    current: Option<(i64, &Value)>,
    base: Option<&Value>,
    already_applied: Option<i64>,
) -> EditDecision {
    if let Some(version) = already_applied {
        return EditDecision::AlreadyApplied { version };
    }
    if let Err(reason) = validate(edit) {
        return rejected("invalid", &reason);
    }
    let ours = edit.resource.as_ref();
    let Some(base_version) = edit.base_version else {
        // A new resource.
        return match (ours, current) {
            (None, _) => rejected("invalid", "a delete needs a base version"),
            (Some(ours), None) => EditDecision::Apply {
                resource: Some(ours.clone()),
            },
            // Created on two sides: merge from an empty resource.
            (Some(ours), Some((version, theirs))) => {
                let empty = skeleton(edit);
                merged(edit, &empty, Some(ours), Some(theirs), Some(version))
            }
        };
    };
    match current {
        Some((version, _)) if version == base_version => EditDecision::Apply {
            resource: ours.cloned(),
        },
        Some((version, _)) if version < base_version => rejected(
            "not-found",
            &format!("base version {base_version} is newer than the current version {version}"),
        ),
        Some((version, theirs)) => match base {
            Some(base) => merged(edit, base, ours, Some(theirs), Some(version)),
            // The base is gone: show both sides whole.
            None => EditDecision::Conflict {
                base: None,
                ours: ours.cloned(),
                theirs: Some(theirs.clone()),
                current_version: Some(version),
                conflicts: vec![Conflict {
                    path: String::new(),
                    pointer: String::new(),
                    kind: if ours.is_some() {
                        ConflictKind::BothAdded
                    } else {
                        ConflictKind::DeletedByOurs
                    },
                    base: None,
                    ours: ours.cloned(),
                    theirs: Some(theirs.clone()),
                }],
            },
        },
        None => match base {
            Some(base) => merged(edit, base, ours, None, None),
            None => rejected(
                "not-found",
                &format!("base version {base_version} is not known"),
            ),
        },
    }
}

fn merged(
    edit: &Edit,
    base: &Value,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    current_version: Option<i64>,
) -> EditDecision {
    match merge_opt(base, ours, theirs) {
        Ok(MergeOutcome::Merged(resource)) => EditDecision::ApplyMerged { resource },
        Ok(MergeOutcome::Conflicted { conflicts, .. }) => EditDecision::Conflict {
            base: Some(base.clone()),
            ours: ours.cloned(),
            theirs: theirs.cloned(),
            current_version,
            conflicts,
        },
        Err(error) => rejected(
            "invalid",
            &format!("{}/{}: {error}", edit.resource_type, edit.id),
        ),
    }
}

fn skeleton(edit: &Edit) -> Value {
    let mut map = Map::new();
    map.insert(
        "resourceType".into(),
        Value::from(edit.resource_type.clone()),
    );
    map.insert("id".into(), Value::from(edit.id.clone()));
    Value::Object(map)
}

fn validate(edit: &Edit) -> Result<(), String> {
    if edit.client_edit_id.is_empty() {
        return Err("empty client edit id".into());
    }
    if edit.resource_type.is_empty() || edit.id.is_empty() {
        return Err("empty resource type or id".into());
    }
    let Some(resource) = &edit.resource else {
        return Ok(());
    };
    if !resource.is_object() {
        return Err("the resource is not a JSON object".into());
    }
    if resource.get("resourceType").and_then(Value::as_str) != Some(edit.resource_type.as_str()) {
        return Err(format!(
            "resourceType does not match the edit ({})",
            edit.resource_type
        ));
    }
    if resource.get("id").and_then(Value::as_str) != Some(edit.id.as_str()) {
        return Err(format!("id does not match the edit ({})", edit.id));
    }
    Ok(())
}

/// The first-sync rank of a resource type: lower goes first, so a nurse who
/// loses signal half-way already has what matters most.
///
/// | rank | types |
/// |---|---|
/// | 0 | `Flag` (alerts) |
/// | 1 | `AllergyIntolerance` |
/// | 2 | `MedicationStatement`, `MedicationRequest` |
/// | 3 | `Condition` |
/// | 4 | `CarePlan` |
/// | 5 | `Observation` |
/// | 6 | everything else |
pub fn priority(resource_type: &str) -> u8 {
    match resource_type {
        "Flag" => 0,
        "AllergyIntolerance" => 1,
        "MedicationStatement" | "MedicationRequest" => 2,
        "Condition" => 3,
        "CarePlan" => 4,
        "Observation" => 5,
        _ => 6,
    }
}

/// Orders the changes of a bulk grant (a new caseload, a first sync) before
/// the hub appends them to a device's feed: removals first, then upserts by
/// [`priority`]; stable otherwise.
pub fn sort_for_first_sync(changes: &mut [Change]) {
    changes.sort_by_key(|change| match change {
        Change::PurgePatient { .. } | Change::Remove { .. } => 0,
        Change::Upsert { resource_type, .. } => 1 + u16::from(priority(resource_type)),
    });
}

/// One entry of a device's change feed.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequenced {
    /// The sequence number (from 1, strictly increasing).
    pub sequence: i64,
    /// The change.
    pub change: Change,
}

/// Serves a pull from a device's feed (sorted by sequence): the changes after
/// the request's checkpoint, at most `page_size` (at least 1) of them.
pub fn serve_pull(feed: &[Sequenced], request: &PullRequest) -> PullPage {
    let after = request.checkpoint.map_or(i64::MIN, Checkpoint::sequence);
    let size = usize::try_from(request.page_size.max(1)).unwrap_or(usize::MAX);
    let start = feed.partition_point(|entry| entry.sequence <= after);
    let rest = feed.get(start..).unwrap_or_default();
    let page = rest.get(..size.min(rest.len())).unwrap_or_default();
    let next = match page.last() {
        Some(entry) => Checkpoint::from_sequence(entry.sequence),
        None => request.checkpoint.unwrap_or(Checkpoint::from_sequence(0)),
    };
    PullPage {
        changes: page.iter().map(|entry| entry.change.clone()).collect(),
        next,
        more: rest.len() > page.len(),
    }
}
