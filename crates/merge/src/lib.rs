//! Three-way merge of FHIR R4 JSON resources.
//!
//! When a community nurse's device reconnects, every resource edited offline
//! is merged with the hub's current version of it. This crate decides, element
//! by element, what the merged resource contains and which elements a person
//! has to decide. It is pure: no I/O, no clock, and no panics on any input.
//!
//! The sync rules this implements: **merge what can merge, show the person
//! what can't, lose nothing**, and **never silent last-writer-wins on clinical
//! content**.
//!
//! ```
//! use careshare_merge::{merge, resolve, Choice, ConflictKind};
//! use serde_json::json;
//!
//! let base = json!({"resourceType": "Task", "id": "t1", "status": "requested", "priority": "routine"});
//! // Offline, the nurse completes the task and raises its priority...
//! let ours = json!({"resourceType": "Task", "id": "t1", "status": "completed", "priority": "urgent"});
//! // ...while on the hub the GP cancels it.
//! let theirs = json!({"resourceType": "Task", "id": "t1", "status": "cancelled", "priority": "routine"});
//!
//! let outcome = merge(&base, &ours, &theirs)?;
//! assert_eq!(outcome.value()["priority"], "urgent"); // merged
//! let conflict = &outcome.conflicts()[0]; // shown to the nurse
//! assert_eq!((conflict.path.as_str(), conflict.kind), ("status", ConflictKind::BothChanged));
//!
//! let resolved = resolve(&outcome, [("status", Choice::Theirs)])?;
//! assert_eq!(resolved["status"], "cancelled");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The three versions
//!
//! * `base`: the version both edits started from (the last version the device
//!   synced).
//! * `ours`: the local version, edited offline.
//! * `theirs`: the hub's current version.
//!
//! The rules are symmetric between `ours` and `theirs`, with one exception:
//! the bookkeeping fields of `meta` (below), where the hub's version wins.
//!
//! # Rules
//!
//! ## 1. Every element
//!
//! For each element (a property of an object, or an identified item of an
//! array), comparing the three versions of it, where *absent* is a value too:
//!
//! | base → ours | base → theirs | result |
//! |---|---|---|
//! | unchanged | unchanged or changed | theirs |
//! | changed | unchanged | ours |
//! | changed to X | changed to X | X |
//! | changed | changed differently | merge deeper if possible (2, 3), otherwise a **conflict** |
//!
//! "Changed" includes added and deleted. Values compare exactly as JSON:
//! numbers by their written text (`1.0` and `1.00` differ, because FHIR
//! decimal precision is meaningful), strings by their exact characters,
//! objects regardless of key order.
//!
//! There is no "take the newer" rule anywhere. Scalar clinical fields such as
//! `status`, `valueQuantity.value`, `code`, a MedicationStatement's `dosage`,
//! an AllergyIntolerance's `reaction` and a note's `text` therefore **conflict**
//! whenever both sides changed them differently, even if one edit is later
//! than the other. Changes to different elements always merge: a nurse adding
//! a note while a GP changes the status gives a resource with both.
//!
//! ## 2. Objects
//!
//! When both sides changed an object (or both added one where base has none),
//! it merges property by property with rule 1. Properties keep base's order,
//! followed by properties new in ours, then properties new in theirs.
//!
//! ## 3. Repeating elements (arrays)
//!
//! Items are matched by the identity FHIR gives them. The first of these rules
//! that identifies **every** item of **all three** versions, uniquely within
//! each version, is used:
//!
//! | array | identity | path selector |
//! |---|---|---|
//! | any array | element `id` | `note[id=n1]` |
//! | `identifier` | `system` + `value` | `identifier[https://fhir.nhs.uk/Id/nhs-number\|9434765919]` |
//! | `telecom` | `system` + `value` | `telecom[phone\|01632 960 123]` |
//! | `coding` | `system` + `code` | `code.coding[http://snomed.info/sct\|91936005]` |
//! | `meta.tag`, `meta.security` | `system` + `code` | `meta.security[http://terminology.hl7.org/CodeSystem/v3-Confidentiality\|R]` |
//! | `meta.profile` | the profile URL itself | `meta.profile[http://example.org/StructureDefinition/p]` |
//! | `item` (Questionnaire, QuestionnaireResponse) | `linkId` | `item[linkId=1.2]` |
//! | `component` (Observation) | `system` + `code` of the first coding of its `code` | `component[code=http://loinc.org\|8480-6]` |
//! | `extension`, `modifierExtension` | `url` | `extension[url=http://example.org/ext]` |
//!
//! Identified items merge like object properties (rule 1):
//!
//! * an item added on either side is kept;
//! * an item removed on one side and unchanged on the other is removed;
//! * an item removed on one side and changed on the other is a conflict;
//! * an item changed on both sides merges deeper (rule 2).
//!
//! Changing an identifying field (say an identifier's `value`) is a removal of
//! the old item plus an addition of the new one. Item order: base's items,
//! then items new in ours, then items new in theirs. A pure reordering made by
//! one side is kept only when the other side left the array unchanged.
//!
//! Arrays without an identity (`name`, `address`, `dosage`, `reaction`,
//! `CarePlan.activity`, primitive arrays such as `given`, and any array where
//! an item lacks its identity or two items share one) are a single value:
//! changed on one side, that side is taken; changed differently on both, the
//! whole array is one conflict.
//!
//! The one exception is `note` (Annotation), whose items are written one at a
//! time and never replace each other: when both sides only *appended* notes
//! after base's notes, the result keeps base's notes, then ours' new notes,
//! then theirs' new notes (a note appended identically on both sides is kept
//! once). Editing or deleting an existing note on both sides is a conflict.
//!
//! ## 4. `meta`
//!
//! * `meta.versionId` and `meta.lastUpdated` are bookkeeping: they never
//!   conflict. If only one side changed them, that side is taken (rule 1); if
//!   both did, theirs (the hub's current version) is taken.
//! * `meta.tag` and `meta.security` merge as sets of codings by `system` +
//!   `code` (rule 3): a label added on either side is always kept, so a
//!   security label that restricts access is never silently dropped. A label
//!   is removed only when one side removed it and the other left it as it was.
//!
//! * When both sides changed `meta` and one of them has no `meta` at all, the
//!   missing `meta` counts as an empty one, so it merges element by element
//!   as above instead of conflicting as a whole.
//!
//! These apply to the `meta` of every resource, including contained resources
//! and resources inside a Bundle.
//!
//! ## 5. Resource identity
//!
//! The three versions must be the same resource: if `resourceType` or `id`
//! differ between them, [`merge`] returns a [`MergeError`] instead of an
//! outcome. Every version must be a JSON object.
//!
//! ## 6. Deleting the whole resource
//!
//! [`merge_opt`] takes `None` for a side that deleted the resource. Deleted on
//! one side and unchanged on the other (ignoring `meta.versionId` and
//! `meta.lastUpdated`) deletes it; deleted on one side and changed on the
//! other is a conflict on the whole resource (path `""`).
//!
//! ## 7. Depth
//!
//! Elements nested deeper than 128 levels are compared as whole values (rule 1
//! without merging deeper). FHIR resources are nowhere near that deep.
//!
//! # Conflicts
//!
//! A conflicted outcome still carries every non-conflicting change from both
//! sides in `merged_so_far`; at each conflict's location it holds the base
//! value (or nothing, when base had none). Each [`Conflict`] holds the base,
//! ours and theirs values at its location (`None` = absent) and its
//! [`ConflictKind`]. Conflicts never nest: no conflict lies inside another.
//!
//! ## Path syntax
//!
//! [`Conflict::path`] is a readable, FHIRPath-like path from the resource
//! root, without the resource type, stable for the same three versions:
//!
//! * properties are joined with `.`: `valueQuantity.value`;
//! * an identified array item is written `[selector]` after the array's name,
//!   with the selectors of rule 3: `component[code=http://loinc.org|8480-6].valueQuantity.value`,
//!   `note[id=n1].text`, `item[linkId=2].item[linkId=2.1].answer`;
//!   a `system|value` token with no system is written `|value`;
//! * a whole array without identity is its property path: `dosage`;
//! * the whole resource is the empty path `""`.
//!
//! Inside a selector, `\`, `|` and `]` are escaped with a backslash; in a
//! property name, `\`, `.`, `[` and `]` are. Paths are unique within one
//! outcome, and choices passed to [`resolve`] are keyed by them.
//!
//! [`Conflict::pointer`] is the RFC 6901 JSON pointer of the same location in
//! `merged_so_far` (`/component/1/valueQuantity/value`), for highlighting the
//! element in the merged resource. Array positions in it refer to
//! `merged_so_far`, not to any of the three versions.
//!
//! # Resolving
//!
//! [`resolve`] (and [`resolve_opt`] for [`merge_opt`] outcomes) applies one
//! [`Choice`] per conflict path: ours, theirs, base, or a value the person
//! composed. Choosing a side whose value is absent removes the element. A
//! choice for a path that is not a conflict, a conflict without a choice, or
//! two choices for one path are errors; nothing is applied in that case.

mod engine;
mod identity;
mod path;
mod resolve;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The result of merging three versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MergeOutcome<T = Value> {
    /// Every change merged; no decision needed.
    Merged(T),
    /// Some elements need a person's decision.
    Conflicted {
        /// Every non-conflicting change from both sides; base values at the
        /// conflicts' locations.
        #[serde(rename = "mergedSoFar")]
        merged_so_far: T,
        /// One entry per element that could not merge, in document order.
        conflicts: Vec<Conflict>,
    },
}

impl<T> MergeOutcome<T> {
    /// The merged value, or the partly merged value of a conflicted outcome.
    pub fn value(&self) -> &T {
        match self {
            MergeOutcome::Merged(value) => value,
            MergeOutcome::Conflicted { merged_so_far, .. } => merged_so_far,
        }
    }

    /// The conflicts (empty when merged).
    pub fn conflicts(&self) -> &[Conflict] {
        match self {
            MergeOutcome::Merged(_) => &[],
            MergeOutcome::Conflicted { conflicts, .. } => conflicts,
        }
    }

    /// Whether a person has to decide anything.
    pub fn is_conflicted(&self) -> bool {
        matches!(self, MergeOutcome::Conflicted { .. })
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> MergeOutcome<U> {
        match self {
            MergeOutcome::Merged(value) => MergeOutcome::Merged(f(value)),
            MergeOutcome::Conflicted {
                merged_so_far,
                conflicts,
            } => MergeOutcome::Conflicted {
                merged_so_far: f(merged_so_far),
                conflicts,
            },
        }
    }
}

/// One element that could not merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Readable path of the element, e.g. `component[code=http://loinc.org|8480-6].valueQuantity.value`
    /// (see "Path syntax" in the crate documentation).
    pub path: String,
    /// RFC 6901 JSON pointer of the element in `merged_so_far`.
    pub pointer: String,
    /// How the two sides disagree.
    pub kind: ConflictKind,
    /// The element in base (`None` = absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub base: Option<Value>,
    /// The element in ours (`None` = absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ours: Option<Value>,
    /// The element in theirs (`None` = absent).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub theirs: Option<Value>,
}

/// A serialized value that is present is `Some`, even when it is JSON `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// How the two sides disagree about an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictKind {
    /// Present in base; both sides changed it, differently.
    BothChanged,
    /// Absent in base; both sides added it, differently.
    BothAdded,
    /// Ours deleted it; theirs changed it.
    DeletedByOurs,
    /// Theirs deleted it; ours changed it.
    DeletedByTheirs,
}

impl ConflictKind {
    /// The kind seen with ours and theirs exchanged.
    pub fn swapped(self) -> ConflictKind {
        match self {
            ConflictKind::DeletedByOurs => ConflictKind::DeletedByTheirs,
            ConflictKind::DeletedByTheirs => ConflictKind::DeletedByOurs,
            other => other,
        }
    }
}

/// A person's decision for one conflict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Choice {
    /// Keep our (local) value; removes the element if ours deleted it.
    Ours,
    /// Keep their (hub) value; removes the element if theirs deleted it.
    Theirs,
    /// Keep the base value; removes the element if base had none.
    Base,
    /// A value composed by the person, e.g. combining both sides.
    Combined(Value),
}

/// Which of the three versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The common ancestor.
    Base,
    /// The local version.
    Ours,
    /// The hub's version.
    Theirs,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Base => "base",
            Side::Ours => "ours",
            Side::Theirs => "theirs",
        })
    }
}

/// The three versions are not versions of one resource.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// A version is not a JSON object.
    #[error("the {side} version is not a FHIR resource (a JSON object)")]
    NotAResource {
        /// The offending version.
        side: Side,
    },
    /// `resourceType` differs between versions.
    #[error("resourceType differs between versions ({0})")]
    ResourceTypeMismatch(Box<Mismatch>),
    /// `id` differs between versions.
    #[error("id differs between versions ({0})")]
    IdMismatch(Box<Mismatch>),
}

/// The values of an identifying field (`resourceType` or `id`) in the three
/// versions (`None` = absent).
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// The field in base.
    pub base: Option<Value>,
    /// The field in ours.
    pub ours: Option<Value>,
    /// The field in theirs.
    pub theirs: Option<Value>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "base {}, ours {}, theirs {}",
            show(&self.base),
            show(&self.ours),
            show(&self.theirs)
        )
    }
}

fn show(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "absent".to_string(), Value::to_string)
}

/// The choices could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A choice names a path that is not a conflict of this outcome.
    #[error("no conflict at `{0}`")]
    UnknownPath(String),
    /// A conflict has no choice.
    #[error("no choice for the conflict at `{0}`")]
    MissingChoice(String),
    /// Two choices name the same path.
    #[error("more than one choice for `{0}`")]
    DuplicateChoice(String),
    /// A conflict's pointer does not fit `merged_so_far` (the outcome was altered).
    #[error("the conflict at `{path}` does not point into the merged resource (`{pointer}`)")]
    InvalidPointer {
        /// The conflict's path.
        path: String,
        /// The conflict's pointer.
        pointer: String,
    },
    /// The choices delete the whole resource, which [`resolve`] cannot return.
    #[error("the choices delete the whole resource")]
    ResourceDeleted,
}

/// Merges `ours` and `theirs`, two edits of `base`, by the rules in the
/// crate documentation.
pub fn merge(base: &Value, ours: &Value, theirs: &Value) -> Result<MergeOutcome, MergeError> {
    check_same_resource(base, Some(ours), Some(theirs))?;
    let (merged, conflicts) = engine::merge_values(base, ours, theirs);
    Ok(outcome(merged, conflicts))
}

/// Like [`merge`], where `None` means that side deleted the resource.
///
/// Deleted on both sides, or deleted on one side and unchanged on the other
/// (ignoring `meta.versionId` and `meta.lastUpdated`), gives `Merged(None)`.
/// Deleted on one side and changed on the other is a conflict at the root
/// path `""`, with `base` as `merged_so_far`.
pub fn merge_opt(
    base: &Value,
    ours: Option<&Value>,
    theirs: Option<&Value>,
) -> Result<MergeOutcome<Option<Value>>, MergeError> {
    check_same_resource(base, ours, theirs)?;
    let (ours, theirs) = match (ours, theirs) {
        (Some(ours), Some(theirs)) => return merge(base, ours, theirs).map(|o| o.map(Some)),
        (None, None) => return Ok(MergeOutcome::Merged(None)),
        (ours, theirs) => (ours, theirs),
    };
    let survivor = ours.or(theirs).unwrap_or(base);
    if same_ignoring_bookkeeping(base, survivor) {
        return Ok(MergeOutcome::Merged(None));
    }
    Ok(MergeOutcome::Conflicted {
        merged_so_far: Some(base.clone()),
        conflicts: vec![engine::root_conflict(Some(base), ours, theirs)],
    })
}

/// Applies a person's choices to a merge outcome, giving the final resource.
///
/// `choices` holds exactly one `(path, choice)` per conflict; see
/// [`ResolveError`] for what is rejected. A merged outcome takes no choices.
pub fn resolve<I, S>(outcome: &MergeOutcome, choices: I) -> Result<Value, ResolveError>
where
    I: IntoIterator<Item = (S, Choice)>,
    S: Into<String>,
{
    let merged = Some(outcome.value().clone());
    resolve::apply(merged, outcome.conflicts(), choices)?.ok_or(ResolveError::ResourceDeleted)
}

/// [`resolve`] for an outcome of [`merge_opt`]; `None` means the resource is
/// deleted.
pub fn resolve_opt<I, S>(
    outcome: &MergeOutcome<Option<Value>>,
    choices: I,
) -> Result<Option<Value>, ResolveError>
where
    I: IntoIterator<Item = (S, Choice)>,
    S: Into<String>,
{
    resolve::apply(outcome.value().clone(), outcome.conflicts(), choices)
}

fn outcome(merged: Value, conflicts: Vec<Conflict>) -> MergeOutcome {
    if conflicts.is_empty() {
        MergeOutcome::Merged(merged)
    } else {
        MergeOutcome::Conflicted {
            merged_so_far: merged,
            conflicts,
        }
    }
}

fn check_same_resource(
    base: &Value,
    ours: Option<&Value>,
    theirs: Option<&Value>,
) -> Result<(), MergeError> {
    let sides = [
        (Side::Base, Some(base)),
        (Side::Ours, ours),
        (Side::Theirs, theirs),
    ];
    for (side, value) in sides {
        if value.is_some_and(|v| !v.is_object()) {
            return Err(MergeError::NotAResource { side });
        }
    }
    let mismatch = |name: &str| {
        let base_value = base.get(name);
        let differs = [ours, theirs]
            .into_iter()
            .flatten()
            .any(|v| v.get(name) != base_value);
        differs.then(|| {
            Box::new(Mismatch {
                base: base_value.cloned(),
                ours: ours.and_then(|v| v.get(name)).cloned(),
                theirs: theirs.and_then(|v| v.get(name)).cloned(),
            })
        })
    };
    if let Some(mismatch) = mismatch("resourceType") {
        return Err(MergeError::ResourceTypeMismatch(mismatch));
    }
    if let Some(mismatch) = mismatch("id") {
        return Err(MergeError::IdMismatch(mismatch));
    }
    Ok(())
}

/// Equal once `meta.versionId` and `meta.lastUpdated` are set aside.
fn same_ignoring_bookkeeping(a: &Value, b: &Value) -> bool {
    fn strip(value: &Value) -> Value {
        let mut value = value.clone();
        if let Some(resource) = value.as_object_mut() {
            let empty = resource
                .get_mut("meta")
                .and_then(Value::as_object_mut)
                .map(|meta| {
                    meta.shift_remove("versionId");
                    meta.shift_remove("lastUpdated");
                    meta.is_empty()
                });
            if empty == Some(true) {
                resource.shift_remove("meta");
            }
        }
        value
    }
    a == b || strip(a) == strip(b)
}
