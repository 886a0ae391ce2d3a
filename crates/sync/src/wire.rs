//! The wire messages. Every message is plain serde data; enums are
//! externally tagged (`{"upsert": {...}}`) so that FHIR decimals keep their
//! written precision through a round trip.

use std::borrow::Cow;

use careshare_merge::Conflict;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// A position in the hub's change sequence for one device.
///
/// Opaque to the device: it only stores it and sends it back. The hub's
/// sequence numbers start at 1; a checkpoint of `n` means "every change up to
/// and including sequence `n` is in the replica".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint(i64);

impl Checkpoint {
    /// The checkpoint after the change with sequence number `sequence`.
    pub fn from_sequence(sequence: i64) -> Checkpoint {
        Checkpoint(sequence)
    }

    /// The sequence number of the last change covered.
    pub fn sequence(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Device → hub: "send me the changes after this checkpoint".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequest {
    /// The last committed checkpoint; `None` on first sync.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    /// The most changes the device wants in one page.
    pub page_size: u32,
}

/// Hub → device: one page of changes, in sequence order.
///
/// `R` is how the page holds each resource ([`ResourceBody`]): parsed as a [`Value`], or,
/// for a device that stores resources as the hub sent them, as their JSON text
/// (`PullPage<Box<RawValue>>`, read without parsing the resources).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullPage<R = Value> {
    /// The changes, oldest first.
    pub changes: Vec<Change<R>>,
    /// The checkpoint to commit together with these changes.
    pub next: Checkpoint,
    /// Whether more changes are waiting after `next`.
    pub more: bool,
}

/// One change to the device's replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Change<R = Value> {
    /// Store this version of a resource (replacing any older one).
    #[serde(rename_all = "camelCase")]
    Upsert {
        /// FHIR resource type, e.g. `Observation`.
        resource_type: String,
        /// Logical id.
        id: String,
        /// The hub's version of the resource (`meta.versionId`).
        version: i64,
        /// The resource itself.
        resource: R,
        /// The patient the resource belongs to, when it belongs to one.
        #[serde(default)]
        patient: Option<String>,
    },
    /// Remove one resource from the replica.
    #[serde(rename_all = "camelCase")]
    Remove {
        /// FHIR resource type.
        resource_type: String,
        /// Logical id.
        id: String,
        /// Why it goes.
        reason: RemovalReason,
    },
    /// Remove everything about one patient from the replica.
    #[serde(rename_all = "camelCase")]
    PurgePatient {
        /// The patient's id.
        patient: String,
        /// Why it goes.
        reason: RemovalReason,
    },
}

/// A resource as its JSON text, exactly as received: `PullPage<RawResource>` reads a page
/// without parsing its resources (checking only their `resourceType` and `id`).
pub type RawResource = Box<RawValue>;

/// A resource as a pull page carries it.
pub trait ResourceBody: Clone {
    /// The `resourceType` and `id` the resource states (None: missing, not strings, or
    /// not a JSON object).
    fn names(&self) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>);

    /// The resource's JSON text: as received for [`RawValue`], printed for a [`Value`].
    fn json_text(&self) -> Cow<'_, str>;
}

impl ResourceBody for Value {
    fn names(&self) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>) {
        let name = |k: &str| self.get(k).and_then(Value::as_str).map(Cow::Borrowed);
        (name("resourceType"), name("id"))
    }

    fn json_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}

/// The names of a resource read from its JSON text, skipping everything else.
#[derive(Deserialize)]
struct Names<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

impl ResourceBody for Box<RawValue> {
    /// Read without building the resource; a text whose names are not plain strings in a
    /// JSON object (or which names one twice) gives none.
    fn names(&self) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>) {
        // A struct also reads from an array: only an object has names.
        if !self.get().trim_start().starts_with('{') {
            return (None, None);
        }
        match serde_json::from_str::<Names<'_>>(self.get()) {
            Ok(n) => (n.resource_type, n.id),
            Err(_) => (None, None),
        }
    }

    fn json_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.get())
    }
}

/// Why data leaves a device's replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemovalReason {
    /// The resource was deleted on the hub.
    Deleted,
    /// The patient left the nurse's caseload.
    LeftCaseload,
    /// The patient withdrew or narrowed consent.
    ConsentWithdrawn,
    /// A security label now hides the resource from this user.
    SecurityLabel,
    /// The user's role changed and no longer grants access.
    RoleChanged,
    /// The device was revoked: everything goes.
    DeviceRevoked,
}

/// Device → hub: local edits to apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushBatch {
    /// The edits, in the order they were made.
    pub edits: Vec<Edit>,
}

/// One local edit, as kept in the device's outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edit {
    /// Unique per edit, chosen by the device; the hub applies an edit at most
    /// once per id, so re-sending is always safe.
    pub client_edit_id: String,
    /// FHIR resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// The hub version the edit started from; `None` for a new resource.
    #[serde(default)]
    pub base_version: Option<i64>,
    /// The edited resource; `None` deletes it.
    #[serde(default)]
    pub resource: Option<Value>,
}

/// Hub → device: the outcome of each edit of a [`PushBatch`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResult {
    /// One result per edit the hub processed, in batch order.
    pub results: Vec<EditResult>,
}

/// The outcome of one edit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EditResult {
    /// The edit started from the current version and is now `version`.
    #[serde(rename_all = "camelCase")]
    Applied {
        /// The edit.
        client_edit_id: String,
        /// The new hub version.
        version: i64,
    },
    /// The edit started from an older version and merged cleanly.
    #[serde(rename_all = "camelCase")]
    Merged {
        /// The edit.
        client_edit_id: String,
        /// The new hub version.
        version: i64,
        /// The merged resource (`None`: the merge deleted it).
        #[serde(default)]
        resource: Option<Value>,
    },
    /// The edit could not merge; a person has to decide. Nothing was applied.
    #[serde(rename_all = "camelCase")]
    Conflict {
        /// The edit.
        client_edit_id: String,
        /// The version the edit started from (`None`: unknown or new).
        #[serde(default)]
        base: Option<Value>,
        /// The edit's resource (`None`: a delete).
        #[serde(default)]
        ours: Option<Value>,
        /// The hub's current resource (`None`: deleted on the hub).
        #[serde(default)]
        theirs: Option<Value>,
        /// The hub's current version, to use as the base of the resolution.
        #[serde(default)]
        current_version: Option<i64>,
        /// The elements that could not merge.
        conflicts: Vec<Conflict>,
    },
    /// The edit is invalid or not permitted and will never apply (a re-send
    /// gets the same answer). Not for a passing failure: an edit the hub
    /// cannot decide now is left out of the [`PushResult`].
    #[serde(rename_all = "camelCase")]
    Rejected {
        /// The edit.
        client_edit_id: String,
        /// A FHIR `OperationOutcome` saying why.
        outcome: Value,
    },
    /// The edit was applied before (a re-send); it made `version`.
    #[serde(rename_all = "camelCase")]
    AlreadyApplied {
        /// The edit.
        client_edit_id: String,
        /// The version the edit made.
        version: i64,
    },
}

impl EditResult {
    /// The edit this result answers.
    pub fn client_edit_id(&self) -> &str {
        match self {
            EditResult::Applied { client_edit_id, .. }
            | EditResult::Merged { client_edit_id, .. }
            | EditResult::Conflict { client_edit_id, .. }
            | EditResult::Rejected { client_edit_id, .. }
            | EditResult::AlreadyApplied { client_edit_id, .. } => client_edit_id,
        }
    }
}
