//! Convergence of the sync protocol, checked by simulating a small region.
//!
//! One hub, two to four devices (each signed in as one of two users whose
//! caseloads change during the run: patients join and leave) and the staff
//! who edit on the hub directly play a random scenario over a network that
//! drops requests, loses answers after the hub committed, duplicates, delays
//! and reorders messages. Devices go offline for long stretches, crash
//! between receiving a page and committing it, and restart from what they
//! committed. Then the network heals, every device pushes and pulls until
//! nothing is pending, and [`Sim::check_quiescent`] checks what the protocol
//! promises:
//!
//! 1. **Nothing lost, nothing applied twice.** Every edit a device made ends
//!    in exactly one [`Fate`]: applied at the hub exactly once (the hub counts
//!    stores per `client_edit_id`), an open conflict on its device, resolved
//!    by a later edit of the same device, rejected because its user may no
//!    longer see the patient (kept and shown on the device), or withdrawn with
//!    its open conflict when the patient's data left the device. The hub and
//!    the device agree about which.
//! 2. **Never last-writer-wins.** Every version the hub stores from a pushed
//!    edit keeps every change of the edit *and* every change made on the hub
//!    since the edit's base; two different changes to one element are a
//!    conflict, never an overwrite; changes to different elements merge.
//!    This is checked at every store against [`three_way`], an oracle for
//!    this simulation's resources written independently of `careshare-merge`.
//! 3. **Replicas converge.** Every device's synced copies equal the hub's
//!    current data that its user may see: the same resources, versions,
//!    content and patients, and nothing of a patient who left the caseload.
//!
//! Along the way: the device never refuses a page the hub served except as a
//! repeat or an old page ([`ProtocolError::Stale`], [`ProtocolError::Backwards`]),
//! every outbox action names an edit in the outbox, the version an answer
//! names is the one the hub stored for that edit, and a merged answer carries
//! exactly the stored version.
//!
//! The promises hold given what the crate documentation asks of the two
//! ends, which the simulated hub and devices do:
//!
//! * the hub decides each `client_edit_id` once, conflicts and rejections
//!   included, and answers a re-send from its record ([`Rule::DecideOnce`];
//!   the regression test for [`Rule::RememberOnlyApplied`] shows why);
//! * the hub applies the access rule to every write and to every answer that
//!   shows hub data, and builds each device's feed from it: upserts of what
//!   the user sees, a removal when a resource is deleted or re-filed out of
//!   sight, a purge when a patient leaves the caseload, all of a patient's
//!   current resources (in first-sync order) when one joins;
//! * a device commits a page's effect and its checkpoint in one transaction,
//!   keeps no open conflict of a patient whose data left it, and does not
//!   follow up an edit of a resource it created until the hub has answered
//!   the create (the protocol could only send the follow-up as a second
//!   create, which the hub merges from an empty resource, so it would
//!   conflict with the device's own create).
//!
//! Everything is pure and deterministic: no I/O, no clock, no threads. Every
//! message crosses the "network" as JSON text, so the wire format (and FHIR
//! decimal precision: `37.0` is not `37.00`) is part of what is checked.
//!
//! The default run is [`DEFAULT_CASES`] scenarios; set `CARESHARE_SYNC_CASES`
//! to run more (or fewer).

use std::collections::{BTreeMap, BTreeSet};

use careshare_merge::{merge_opt, resolve_opt, Choice, Conflict};
use careshare_sync::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

/// Scenarios in a default run (under a minute in a debug build on 2 cores).
const DEFAULT_CASES: u32 = 6000;
/// The most operations in one scenario.
const MAX_OPS: usize = 200;

/// Returns `Err(message)` from the enclosing function when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

type Failure = String;

// ---------------------------------------------------------------------------
// The record: patients, resources and the elements people edit.

/// Users (each device is signed in as one of them).
const USERS: usize = 2;
/// Patients, each with a `Patient` resource, a Task and an Observation on
/// the hub from the start.
const PATIENTS: usize = 3;

const TASK_STATUS: [&str; 4] = ["requested", "in-progress", "completed", "cancelled"];
const PRIORITY: [&str; 4] = ["routine", "urgent", "asap", "stat"];
const OBSERVATION_STATUS: [&str; 4] = ["preliminary", "final", "amended", "cancelled"];
/// Temperatures as written: `37.0` and `37.00` are different values in FHIR.
const TEMPERATURE: [&str; 4] = ["37.0", "37.00", "38.5", "39.10"];

/// A resource: (type, id).
type Key = (String, String);

fn patient_name(patient: usize) -> String {
    format!("p{patient}")
}

fn patient_key(patient: usize) -> Key {
    ("Patient".into(), patient_name(patient))
}

/// A Task or an Observation, by its id.
fn clinical_key(task: bool, id: String) -> Key {
    let resource_type = if task { "Task" } else { "Observation" };
    (resource_type.into(), id)
}

/// The element naming the patient: `Task.for`, `Observation.subject`.
fn subject_element(resource_type: &str) -> &'static str {
    if resource_type == "Task" {
        "for"
    } else {
        "subject"
    }
}

/// The patient a resource is filed under (a Patient is its own).
fn patient_of(resource_type: &str, id: &str, resource: &Value) -> String {
    if resource_type == "Patient" {
        return id.to_string();
    }
    resource[subject_element(resource_type)]["reference"]
        .as_str()
        .and_then(|reference| reference.strip_prefix("Patient/"))
        .expect("every resource names its patient")
        .to_string()
}

fn set_patient(resource: &mut Value, patient: &str) {
    let element = subject_element(resource["resourceType"].as_str().unwrap_or_default());
    resource[element] = json!({"reference": format!("Patient/{patient}")});
}

fn decimal(text: &str) -> Value {
    serde_json::from_str(text).expect("a decimal")
}

/// A new Task or Observation, filed under `patient`.
fn new_resource((resource_type, id): &Key, patient: &str) -> Value {
    let mut resource = if resource_type == "Task" {
        json!({"resourceType": "Task", "id": id, "status": "requested", "priority": "routine"})
    } else {
        json!({
            "resourceType": "Observation",
            "id": id,
            "status": "preliminary",
            "valueQuantity": {"value": decimal("37.0"), "unit": "Cel"}
        })
    };
    set_patient(&mut resource, patient);
    resource
}

/// What one edit changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    /// `status`: clinical, scalar.
    Status,
    /// `Task.priority` or `Observation.valueQuantity.value` (a decimal, nested).
    Detail,
    /// A note appended to `note` (notes are written one at a time and never
    /// replace each other, so notes appended on both sides merge).
    Note,
}

fn change_element(resource: &mut Value, element: Element, value: u8, note: &str) {
    let task = resource["resourceType"] == "Task";
    let value = usize::from(value) % 4;
    match element {
        Element::Status if task => resource["status"] = json!(TASK_STATUS[value]),
        Element::Status => resource["status"] = json!(OBSERVATION_STATUS[value]),
        Element::Detail if task => resource["priority"] = json!(PRIORITY[value]),
        Element::Detail => resource["valueQuantity"]["value"] = decimal(TEMPERATURE[value]),
        Element::Note => {
            if let Some(object) = resource.as_object_mut() {
                let notes = object.entry("note").or_insert_with(|| json!([]));
                if let Some(notes) = notes.as_array_mut() {
                    notes.push(json!({"text": note}));
                }
            }
        }
    }
}

/// Sends a message across the network: to JSON text and back.
fn wire<T: Serialize + DeserializeOwned>(message: &T) -> T {
    let text = serde_json::to_string(message).expect("serialize");
    serde_json::from_str(&text).expect("deserialize")
}

// ---------------------------------------------------------------------------
// The oracle: what a correct three-way merge of these resources gives.

/// The merge of `ours` and `theirs`, two edits of `base` (`None`: deleted),
/// for this simulation's resources, written without `careshare-merge`:
/// `Ok(merged)`, or `Err(elements)` naming the top-level elements (`""`: the
/// whole resource) that both sides changed differently, which must conflict.
///
/// Per top-level element: the same on both sides → that; changed on one
/// side → that side; changed differently on both → a conflict, except
/// `note`, where notes appended on both sides after base's are all kept
/// (base's, then ours', then theirs'). Deleting the resource merges only
/// with a side that left it unchanged.
fn three_way(
    base: &Value,
    ours: Option<&Value>,
    theirs: Option<&Value>,
) -> Result<Option<Value>, BTreeSet<String>> {
    let (ours, theirs) = match (ours, theirs) {
        (None, None) => return Ok(None),
        (None, Some(survivor)) | (Some(survivor), None) => {
            return if survivor == base {
                Ok(None)
            } else {
                Err(BTreeSet::from([String::new()]))
            };
        }
        (Some(ours), Some(theirs)) => (ours, theirs),
    };
    let empty = serde_json::Map::new();
    let object = |value: &Value| value.as_object().cloned().unwrap_or_default();
    let (b, o, t) = (
        base.as_object().unwrap_or(&empty),
        object(ours),
        object(theirs),
    );
    let mut merged = serde_json::Map::new();
    let mut conflicts = BTreeSet::new();
    let names: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    for name in names {
        let (bv, ov, tv) = (b.get(name), o.get(name), t.get(name));
        let value = if ov == tv || tv == bv {
            ov.cloned()
        } else if ov == bv {
            tv.cloned()
        } else if name == "note" {
            match appended(bv, ov, tv) {
                Some(notes) => Some(notes),
                None => {
                    conflicts.insert(name.clone());
                    None
                }
            }
        } else {
            conflicts.insert(name.clone());
            None
        };
        if let Some(value) = value {
            merged.insert(name.clone(), value);
        }
    }
    if conflicts.is_empty() {
        Ok(Some(Value::Object(merged)))
    } else {
        Err(conflicts)
    }
}

/// Base's notes, then the notes ours appended, then those theirs appended;
/// `None` when a side did more than append.
fn appended(base: Option<&Value>, ours: Option<&Value>, theirs: Option<&Value>) -> Option<Value> {
    let items = |value: Option<&Value>| -> Option<Vec<Value>> {
        match value {
            None => Some(Vec::new()),
            Some(value) => value.as_array().cloned(),
        }
    };
    let (base, ours, theirs) = (items(base)?, items(ours)?, items(theirs)?);
    if !ours.starts_with(&base) || !theirs.starts_with(&base) {
        return None;
    }
    let mut notes = base.clone();
    notes.extend_from_slice(&ours[base.len()..]);
    for note in &theirs[base.len()..] {
        if !ours[base.len()..].contains(note) {
            notes.push(note.clone());
        }
    }
    Some(Value::Array(notes))
}

/// The hub's answer to an edit its user may not make.
fn forbidden(client_edit_id: &str, patient: &str) -> EditResult {
    EditResult::Rejected {
        client_edit_id: client_edit_id.to_string(),
        outcome: operation_outcome("forbidden", &format!("patient {patient}")),
    }
}

/// The top-level element a conflict path starts with (`""`: the resource).
fn top_element(path: &str) -> String {
    path.split(['.', '['])
        .next()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------
// The hub.

/// How the hub answers an edit it has seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Each `client_edit_id` is decided once; a re-send gets the same answer.
    /// What the protocol needs (crate docs, "Push").
    DecideOnce,
    /// Only applied edits are remembered; a conflicted or rejected edit sent
    /// again is decided again. A delayed copy of a request can then apply an
    /// edit its device was told conflicted or was rejected (see
    /// `a_hub_that_remembers_only_applied_edits_disagrees_with_the_device`).
    RememberOnlyApplied,
}

/// The hub's current version of one resource.
#[derive(Clone, Debug)]
struct Current {
    version: i64,
    /// `None`: deleted (this version is the deletion).
    resource: Option<Value>,
    /// The patient it is filed under (when deleted: the last one).
    patient: String,
}

/// The hub: current resources, every version, who may see what, a change
/// feed per device, and the idempotency record of pushed edits.
struct Hub {
    current: BTreeMap<Key, Current>,
    /// Every version ever stored (the base of a stale edit is looked up here).
    history: BTreeMap<(Key, i64), Option<Value>>,
    /// The access rule: per user, the patients in their caseload.
    caseloads: Vec<BTreeSet<String>>,
    /// The user each device is signed in as.
    device_users: Vec<usize>,
    /// Per device, its feed. Sequence numbers come from one hub-wide change
    /// counter, so a device's feed has gaps, as one read from the hub's
    /// change log would.
    feeds: Vec<Vec<Sequenced>>,
    sequence: i64,
    /// `client_edit_id` → the version that edit made.
    applied: BTreeMap<String, i64>,
    /// `client_edit_id` → the first answer the hub gave about it. The hub
    /// decides each edit once: a re-send (a retry after a lost answer, a
    /// duplicated or delayed request) gets the same answer, `AlreadyApplied`
    /// for an applied edit. See [`Rule`].
    decisions: BTreeMap<String, EditResult>,
    rule: Rule,
    /// `client_edit_id` → how many times it was stored (must never pass 1).
    applications: BTreeMap<String, u32>,
}

impl Hub {
    /// The region at the start: every patient's resources at version 1, and
    /// each device's feed holding its user's initial caseload.
    fn new(device_users: Vec<usize>, caseloads: &[u8; USERS], rule: Rule) -> Hub {
        let mut hub = Hub {
            current: BTreeMap::new(),
            history: BTreeMap::new(),
            caseloads: vec![BTreeSet::new(); USERS],
            feeds: vec![Vec::new(); device_users.len()],
            device_users,
            sequence: 0,
            applied: BTreeMap::new(),
            applications: BTreeMap::new(),
            decisions: BTreeMap::new(),
            rule,
        };
        for patient in 0..PATIENTS {
            let (resource_type, id) = patient_key(patient);
            let resource = json!({"resourceType": resource_type, "id": id});
            hub.store(&patient_key(patient), Some(resource));
            for task in [true, false] {
                let key = clinical_key(task, format!("{}{patient}", if task { "t" } else { "o" }));
                hub.store(&key, Some(new_resource(&key, &patient_name(patient))));
            }
        }
        for (user, mask) in caseloads.iter().enumerate() {
            for patient in 0..PATIENTS {
                if mask & (1 << patient) != 0 {
                    hub.join(user, patient);
                }
            }
        }
        hub
    }

    fn sees(&self, user: usize, patient: &str) -> bool {
        self.caseloads[user].contains(patient)
    }

    /// The Tasks and Observations the hub has ever stored, deleted or not.
    fn clinical_keys(&self) -> Vec<Key> {
        self.current
            .keys()
            .filter(|key| key.0 != "Patient")
            .cloned()
            .collect()
    }

    fn live(&self, key: &Key) -> Option<(i64, &Value)> {
        let current = self.current.get(key)?;
        Some((current.version, current.resource.as_ref()?))
    }

    fn append(&mut self, device: usize, change: Change) {
        self.sequence += 1;
        self.feeds[device].push(Sequenced {
            sequence: self.sequence,
            change,
        });
    }

    /// Stores the next version of `key` (`None`: deletes it) and tells every
    /// device that sees it, or saw it and no longer does.
    fn store(&mut self, key: &Key, resource: Option<Value>) -> i64 {
        let before = self.current.get(key).cloned();
        let version = before.as_ref().map_or(1, |c| c.version + 1);
        let patient = match &resource {
            Some(resource) => patient_of(&key.0, &key.1, resource),
            None => before
                .as_ref()
                .expect("only a stored resource is deleted")
                .patient
                .clone(),
        };
        for device in 0..self.feeds.len() {
            let user = self.device_users[device];
            let saw = before
                .as_ref()
                .is_some_and(|c| c.resource.is_some() && self.sees(user, &c.patient));
            let change = match &resource {
                Some(resource) if self.sees(user, &patient) => Change::Upsert {
                    resource_type: key.0.clone(),
                    id: key.1.clone(),
                    version,
                    resource: resource.clone(),
                    patient: Some(patient.clone()),
                },
                // Deleted, or re-filed under a patient this user may not see.
                _ if saw => Change::Remove {
                    resource_type: key.0.clone(),
                    id: key.1.clone(),
                    reason: if resource.is_none() {
                        RemovalReason::Deleted
                    } else {
                        RemovalReason::LeftCaseload
                    },
                },
                _ => continue,
            };
            self.append(device, change);
        }
        self.current.insert(
            key.clone(),
            Current {
                version,
                resource: resource.clone(),
                patient,
            },
        );
        self.history.insert((key.clone(), version), resource);
        version
    }

    /// A patient joins a caseload: each of the user's devices gets all the
    /// patient's current resources, in first-sync order.
    fn join(&mut self, user: usize, patient: usize) {
        let name = patient_name(patient);
        if !self.caseloads[user].insert(name.clone()) {
            return;
        }
        let mut changes: Vec<Change> = self
            .current
            .iter()
            .filter(|(_, current)| current.patient == name)
            .filter_map(|(key, current)| {
                Some(Change::Upsert {
                    resource_type: key.0.clone(),
                    id: key.1.clone(),
                    version: current.version,
                    resource: current.resource.clone()?,
                    patient: Some(name.clone()),
                })
            })
            .collect();
        sort_for_first_sync(&mut changes);
        for device in 0..self.feeds.len() {
            if self.device_users[device] == user {
                for change in &changes {
                    self.append(device, change.clone());
                }
            }
        }
    }

    /// A patient leaves a caseload: each of the user's devices purges them.
    fn leave(&mut self, user: usize, patient: usize) {
        let name = patient_name(patient);
        if !self.caseloads[user].remove(&name) {
            return;
        }
        for device in 0..self.feeds.len() {
            if self.device_users[device] == user {
                let change = Change::PurgePatient {
                    patient: name.clone(),
                    reason: RemovalReason::LeftCaseload,
                };
                self.append(device, change);
            }
        }
    }

    fn pull(&self, device: usize, request: &PullRequest) -> PullPage {
        serve_pull(&self.feeds[device], request)
    }

    fn push(&mut self, device: usize, batch: &PushBatch) -> Result<PushResult, Failure> {
        let user = self.device_users[device];
        let results = batch
            .edits
            .iter()
            .map(|edit| self.answer(user, edit))
            .collect::<Result<_, _>>()?;
        Ok(PushResult { results })
    }

    /// Answers one pushed edit: from the record when it was decided before
    /// (under [`Rule::DecideOnce`]), else by [`Hub::decide`], recording it.
    fn answer(&mut self, user: usize, edit: &Edit) -> Result<EditResult, Failure> {
        let earlier = self.decisions.get(&edit.client_edit_id);
        if let (Rule::DecideOnce, Some(earlier)) = (self.rule, earlier) {
            // An applied edit goes through `hub_apply_edit`, which answers
            // `AlreadyApplied`; a conflict or a rejection is answered again
            // as it was, never decided anew: once the hub said an edit was
            // not applied, it never applies it. The access rule still holds
            // for the answer: a conflict shows hub data.
            if !matches!(
                earlier,
                EditResult::Applied { .. }
                    | EditResult::Merged { .. }
                    | EditResult::AlreadyApplied { .. }
            ) {
                let earlier = earlier.clone();
                return Ok(self.forbidden(user, edit).unwrap_or(earlier));
            }
        }
        let result = self.decide(user, edit)?;
        self.decisions
            .entry(edit.client_edit_id.clone())
            .or_insert_with(|| result.clone());
        Ok(result)
    }

    /// Decides one pushed edit as a real hub would: idempotent by
    /// `client_edit_id`, the access rule on every write, then
    /// [`hub_apply_edit`]; applied and merged results become new versions.
    fn decide(&mut self, user: usize, edit: &Edit) -> Result<EditResult, Failure> {
        let id = edit.client_edit_id.clone();
        let key = (edit.resource_type.clone(), edit.id.clone());
        let already_applied = self.applied.get(&id).copied();
        if already_applied.is_none() {
            if let Some(forbidden) = self.forbidden(user, edit) {
                return Ok(forbidden);
            }
        }
        let live = self.live(&key).map(|(v, r)| (v, r.clone()));
        let base = edit
            .base_version
            .and_then(|v| self.history.get(&(key.clone(), v)).cloned().flatten());
        let decision = hub_apply_edit(
            edit,
            live.as_ref().map(|(v, r)| (*v, r)),
            base.as_ref(),
            already_applied,
        );
        // What a correct merge gives, from the same three versions. A new
        // resource is stored as it is when the hub has no live version, and
        // merges from an empty one when it was created on both sides.
        let oracle_base = match edit.base_version {
            None if live.is_none() => edit.resource.clone(),
            None => Some(json!({"resourceType": key.0, "id": key.1})),
            Some(_) => base.clone(),
        };
        let oracle = oracle_base.as_ref().map(|base| {
            let theirs = live.as_ref().map(|(_, r)| r);
            let theirs = if edit.base_version.is_none() && live.is_none() {
                Some(base)
            } else {
                theirs
            };
            (base, three_way(base, edit.resource.as_ref(), theirs))
        });
        let stored = match &decision {
            EditDecision::Apply { resource } | EditDecision::ApplyMerged { resource } => {
                resource.clone()
            }
            EditDecision::Conflict { conflicts, .. } => {
                // Must conflict, on exactly the elements both sides changed
                // differently (so different elements would have merged).
                if let Some((base, expected)) = &oracle {
                    let elements: BTreeSet<String> =
                        conflicts.iter().map(|c| top_element(&c.path)).collect();
                    ensure!(
                        expected.as_ref().err() == Some(&elements),
                        "edit {id} conflicted on {elements:?}, expected {expected:?}\n\
                         base {base}\nours {:?}\ntheirs {:?}",
                        edit.resource,
                        live
                    );
                }
                return Ok(decision.into_result(id, 0));
            }
            EditDecision::AlreadyApplied { .. } | EditDecision::Rejected { .. } => {
                return Ok(decision.into_result(id, 0));
            }
        };
        // ... and the patient the new version would be filed under.
        if let Some(resource) = &stored {
            let patient = patient_of(&key.0, &key.1, resource);
            if !self.sees(user, &patient) {
                return Ok(forbidden(&id, &patient));
            }
        }
        // Never last-writer-wins: the stored version is the correct merge.
        let (base, expected) = oracle.ok_or_else(|| format!("edit {id} applied without a base"))?;
        ensure!(
            expected.as_ref() == Ok(&stored),
            "edit {id} stored {stored:?}, a correct merge gives {expected:?}\n\
             base {base}\nours {:?}\ntheirs {:?}",
            edit.resource,
            live
        );
        let version = self.store(&key, stored);
        self.applied.insert(id.clone(), version);
        let applications = self.applications.entry(id.clone()).or_default();
        *applications += 1;
        ensure!(*applications == 1, "edit {id} applied {applications} times");
        Ok(decision.into_result(id, version))
    }

    /// The access rule for a pushed edit: the user must see the patient the
    /// resource is filed under now (a conflict would show it to them).
    fn forbidden(&self, user: usize, edit: &Edit) -> Option<EditResult> {
        let key = (edit.resource_type.clone(), edit.id.clone());
        let filed = match (self.current.get(&key), &edit.resource) {
            (Some(current), _) => current.patient.clone(),
            (None, Some(resource)) => patient_of(&key.0, &key.1, resource),
            (None, None) => return None,
        };
        (!self.sees(user, &filed)).then(|| forbidden(&edit.client_edit_id, &filed))
    }

    /// What `user` may see now: resource → (version, resource, patient).
    fn view(&self, user: usize) -> BTreeMap<Key, Synced> {
        self.current
            .iter()
            .filter(|(_, current)| self.sees(user, &current.patient))
            .filter_map(|(key, current)| {
                let synced = Synced {
                    version: current.version,
                    resource: current.resource.clone()?,
                    patient: current.patient.clone(),
                };
                Some((key.clone(), synced))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The devices.

/// A synced copy of a hub version, as the replica stores it.
#[derive(Clone, Debug, PartialEq)]
struct Synced {
    version: i64,
    resource: Value,
    patient: String,
}

/// An open conflict, as the replica stores it for a person to resolve.
#[derive(Clone, Debug)]
struct OpenConflict {
    client_edit_id: String,
    key: Key,
    /// The patient it belongs to: purging the patient removes the conflict
    /// (it holds hub data), as `careshare-replica`'s `remove_patient` does.
    patient: String,
    base: Option<Value>,
    ours: Option<Value>,
    theirs: Option<Value>,
    current_version: Option<i64>,
    conflicts: Vec<Conflict>,
}

/// One device: the protocol state machine and the replica it commits to.
struct Device {
    user: usize,
    page_size: u32,
    batch: usize,
    online: bool,
    /// Volatile: rebuilt from `checkpoint` when the device restarts.
    sync: ClientSync,
    // The replica: what storage committed (survives a crash).
    checkpoint: Option<Checkpoint>,
    synced: BTreeMap<Key, Synced>,
    outbox: Vec<Edit>,
    conflicts: Vec<OpenConflict>,
    rejected: Vec<(String, Value)>,
    edits_made: u32,
}

impl Device {
    /// What the user sees of `key`: the latest outbox edit of it, else the
    /// synced copy; with the hub version that content started from.
    fn local(&self, key: &Key) -> Option<(Option<i64>, Option<Value>)> {
        let pending = self
            .outbox
            .iter()
            .rev()
            .find(|edit| edit.resource_type == key.0 && edit.id == key.1);
        match pending {
            Some(edit) => Some((edit.base_version, edit.resource.clone())),
            None => self
                .synced
                .get(key)
                .map(|s| (Some(s.version), Some(s.resource.clone()))),
        }
    }

    /// The Tasks and Observations the user sees on the device.
    fn clinical_keys(&self) -> Vec<Key> {
        let mut keys: BTreeSet<Key> = self.synced.keys().cloned().collect();
        keys.extend(
            self.outbox
                .iter()
                .map(|e| (e.resource_type.clone(), e.id.clone())),
        );
        keys.into_iter()
            .filter(|key| key.0 != "Patient" && matches!(self.local(key), Some((_, Some(_)))))
            .collect()
    }

    /// The patients whose record is on the device.
    fn patients(&self) -> Vec<String> {
        self.synced
            .keys()
            .filter(|key| key.0 == "Patient")
            .map(|key| key.1.clone())
            .collect()
    }

    /// Restart after a crash: only what storage committed survives.
    fn restart(&mut self) {
        self.sync = ClientSync::new(self.checkpoint, self.page_size);
    }

    /// Removes an answered edit from the outbox.
    fn take(&mut self, client_edit_id: &str) -> Result<Edit, Failure> {
        let index = self
            .outbox
            .iter()
            .position(|edit| edit.client_edit_id == client_edit_id)
            .ok_or_else(|| format!("an outbox action for {client_edit_id}, not in the outbox"))?;
        Ok(self.outbox.remove(index))
    }
}

// ---------------------------------------------------------------------------
// What became of each edit.

/// Where an edit a device made stands.
#[derive(Clone, Debug, PartialEq)]
enum Fate {
    /// In the outbox.
    Pending,
    /// The hub has it: it made `version`.
    Applied { version: i64 },
    /// In the device's open conflicts.
    Conflict,
    /// Its conflict was resolved, by the edit `by` (`None`: the person kept
    /// the hub's version, or both sides had deleted the resource).
    Resolved { by: Option<String> },
    /// Refused by the hub and kept on the device for the user to see, with
    /// the code of the `OperationOutcome`.
    Rejected { code: String },
    /// Its open conflict went with the patient's data when the user lost
    /// access to the patient (the conflict holds hub data).
    Withdrawn,
}

struct Made {
    device: usize,
    fate: Fate,
}

type Ledger = BTreeMap<String, Made>;

/// Moves an edit to `to`; only the transitions of the edit lifecycle are
/// allowed, so an edit answered twice is caught here.
fn settle(ledger: &mut Ledger, client_edit_id: &str, to: Fate) -> Result<(), Failure> {
    let made = ledger
        .get_mut(client_edit_id)
        .ok_or_else(|| format!("no such edit {client_edit_id}"))?;
    let allowed = matches!(
        (&made.fate, &to),
        (
            Fate::Pending,
            Fate::Applied { .. } | Fate::Conflict | Fate::Rejected { .. }
        ) | (Fate::Pending | Fate::Conflict, Fate::Withdrawn)
            | (Fate::Conflict, Fate::Resolved { .. })
    );
    ensure!(
        allowed,
        "edit {client_edit_id}: {:?} cannot become {to:?}",
        made.fate
    );
    made.fate = to;
    Ok(())
}

// ---------------------------------------------------------------------------
// Storage: what a device commits.

/// Commits a page's effect and its checkpoint in one transaction, then tells
/// the state machine.
fn commit_page(
    device: &mut Device,
    ledger: &mut Ledger,
    effect: &PageEffect,
) -> Result<(), Failure> {
    for purge in &effect.purges {
        device.synced.retain(|_, s| s.patient != purge.patient);
        // Open conflicts go with the patient; outbox edits stay (they are the
        // user's own entries and still go to the hub).
        let (gone, kept) = std::mem::take(&mut device.conflicts)
            .into_iter()
            .partition(|c| c.patient == purge.patient);
        device.conflicts = kept;
        for conflict in gone {
            settle(ledger, &conflict.client_edit_id, Fate::Withdrawn)?;
        }
    }
    for removal in &effect.removals {
        device
            .synced
            .remove(&(removal.resource_type.clone(), removal.id.clone()));
    }
    for upsert in &effect.upserts {
        let patient = upsert
            .patient
            .clone()
            .ok_or_else(|| format!("an upsert of {} without a patient", upsert.id))?;
        let synced = Synced {
            version: upsert.version,
            resource: upsert.resource.clone(),
            patient,
        };
        device
            .synced
            .insert((upsert.resource_type.clone(), upsert.id.clone()), synced);
    }
    device.checkpoint = Some(effect.checkpoint);
    device
        .sync
        .committed(effect.checkpoint)
        .map_err(|e| format!("committed: {e}"))
}

/// Stores the outbox actions of one push answer, in one transaction.
fn store_actions(
    device: &mut Device,
    hub: &Hub,
    ledger: &mut Ledger,
    actions: Vec<OutboxAction>,
) -> Result<(), Failure> {
    for action in actions {
        match action {
            OutboxAction::Keep { .. } => {}
            OutboxAction::Remove {
                client_edit_id,
                version,
                merged,
            } => {
                let edit = device.take(&client_edit_id)?;
                let key = (edit.resource_type.clone(), edit.id.clone());
                ensure!(
                    hub.applied.get(&client_edit_id) == Some(&version),
                    "edit {client_edit_id}: the answer says version {version}, the hub says {:?}",
                    hub.applied.get(&client_edit_id)
                );
                if let Some(merged) = merged {
                    let stored = hub.history.get(&(key, version));
                    ensure!(
                        stored == Some(&merged),
                        "edit {client_edit_id}: merged answer {merged:?}, stored {stored:?}"
                    );
                }
                settle(ledger, &client_edit_id, Fate::Applied { version })?;
            }
            OutboxAction::RecordConflict {
                client_edit_id,
                base,
                ours,
                theirs,
                current_version,
                conflicts,
            } => {
                let edit = device.take(&client_edit_id)?;
                let key = (edit.resource_type.clone(), edit.id.clone());
                let patient = [&theirs, &ours, &base]
                    .into_iter()
                    .flatten()
                    .next()
                    .map(|r| patient_of(&key.0, &key.1, r))
                    .ok_or_else(|| format!("conflict {client_edit_id} without any version"))?;
                if !device
                    .synced
                    .contains_key(&("Patient".into(), patient.clone()))
                {
                    // The patient's data already left the device (a late
                    // answer after the purge): the conflict holds hub data,
                    // so it goes the way the purge took the open conflicts.
                    settle(ledger, &client_edit_id, Fate::Withdrawn)?;
                    continue;
                }
                device.conflicts.push(OpenConflict {
                    client_edit_id: client_edit_id.clone(),
                    key,
                    patient,
                    base,
                    ours,
                    theirs,
                    current_version,
                    conflicts,
                });
                settle(ledger, &client_edit_id, Fate::Conflict)?;
            }
            OutboxAction::MarkRejected {
                client_edit_id,
                outcome,
            } => {
                device.take(&client_edit_id)?;
                let code = outcome["issue"][0]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                device.rejected.push((client_edit_id.clone(), outcome));
                settle(ledger, &client_edit_id, Fate::Rejected { code })?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The scenario: a Vec of small operations, so shrinking stays readable.

/// What happens to a request at the hub end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtHub {
    /// Handled and answered.
    Deliver,
    /// Lost before the hub saw it.
    DropRequest,
    /// Handled (and committed), but the answer is lost: a lost acknowledgement.
    LoseAnswer,
    /// Arrives twice: handled twice, answered twice (the second answer is
    /// still in flight after the first arrives).
    Duplicate,
}

/// What happens to an answer at the device end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtDevice {
    /// Received and committed.
    Deliver,
    /// Delayed: stays in flight, to arrive later (or never).
    Delay,
    /// Received and committed, and a copy arrives again later.
    DeliverAndRepeatLater,
    /// Received, then the device crashes before committing; it restarts
    /// from its committed state.
    CrashBeforeCommit,
    /// Received, but the storage transaction fails; nothing is stored.
    CommitFails,
}

/// One step of a scenario. Every index wraps around what it indexes (the
/// devices, the resources a device or the hub has, the open conflicts...),
/// so any value is valid and shrinking keeps scenarios meaningful.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A device's user edits an element of a resource on the device.
    Edit {
        device: u8,
        resource: u8,
        element: Element,
        value: u8,
    },
    /// A device's user creates a Task or Observation (a new id) for a
    /// patient whose record is on the device.
    Create { device: u8, patient: u8, task: bool },
    /// A device's user deletes a resource.
    Delete { device: u8, resource: u8 },
    /// A device's user resolves an open conflict, keeping their side or the
    /// hub's for every conflicting element.
    Resolve {
        device: u8,
        conflict: u8,
        keep_ours: bool,
    },
    /// Someone edits on the hub directly (restoring the resource if deleted).
    HubEdit {
        resource: u8,
        element: Element,
        value: u8,
    },
    /// Someone creates a Task or Observation on the hub.
    HubCreate { patient: u8, task: bool },
    /// Someone deletes a resource on the hub.
    HubDelete { resource: u8 },
    /// Someone re-files a resource under another patient on the hub.
    HubRefile { resource: u8, patient: u8 },
    /// A patient joins a user's caseload.
    Join { user: u8, patient: u8 },
    /// A patient leaves a user's caseload.
    Leave { user: u8, patient: u8 },
    /// A device syncs (if online): it sends a push when `push` and its
    /// outbox has edits, else a pull; the hub takes that request at once
    /// (`at_hub`), and its answer overtakes anything older in flight
    /// (`at_device`). A pull goes on while more pages wait.
    Sync {
        device: u8,
        push: bool,
        at_hub: AtHub,
        at_device: AtDevice,
    },
    /// A device sends a request (if online) that stays in flight.
    Send { device: u8, push: bool },
    /// Request `pick` (0: the oldest) in flight from a device reaches the hub.
    LateRequest { device: u8, pick: u8, what: AtHub },
    /// Answer `pick` (0: the oldest) in flight to a device reaches it.
    LateAnswer {
        device: u8,
        pick: u8,
        what: AtDevice,
    },
    /// A device crashes and restarts from its committed state.
    Crash { device: u8 },
    /// A device loses its connection; messages in flight are lost.
    Offline { device: u8 },
    /// A device is back online.
    Online { device: u8 },
}

/// One device's setup.
#[derive(Clone, Copy, Debug)]
struct DeviceSetup {
    /// The user it is signed in as.
    user: u8,
    page_size: u8,
    /// The most edits in one push.
    batch: u8,
}

/// A whole run: the devices, the initial caseloads and the operations.
#[derive(Clone, Debug)]
struct Scenario {
    devices: Vec<DeviceSetup>,
    /// Per user, the patients in the caseload at the start (bit `p`).
    caseloads: [u8; USERS],
    ops: Vec<Op>,
}

fn element() -> impl Strategy<Value = Element> {
    prop_oneof![
        2 => Just(Element::Status),
        2 => Just(Element::Detail),
        1 => Just(Element::Note),
    ]
}

fn at_hub() -> impl Strategy<Value = AtHub> {
    prop_oneof![
        8 => Just(AtHub::Deliver),
        1 => Just(AtHub::DropRequest),
        1 => Just(AtHub::LoseAnswer),
        1 => Just(AtHub::Duplicate),
    ]
}

fn at_device() -> impl Strategy<Value = AtDevice> {
    prop_oneof![
        8 => Just(AtDevice::Deliver),
        1 => Just(AtDevice::Delay),
        1 => Just(AtDevice::DeliverAndRepeatLater),
        1 => Just(AtDevice::CrashBeforeCommit),
        1 => Just(AtDevice::CommitFails),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let device = 0..4u8;
    let index = any::<u8>;
    let user = 0..USERS as u8;
    let patient = 0..PATIENTS as u8;
    prop_oneof![
        8 => (device.clone(), index(), element(), 0..4u8).prop_map(
            |(device, resource, element, value)| Op::Edit { device, resource, element, value }
        ),
        1 => (device.clone(), patient.clone(), any::<bool>())
            .prop_map(|(device, patient, task)| Op::Create { device, patient, task }),
        1 => (device.clone(), index()).prop_map(|(device, resource)| Op::Delete { device, resource }),
        3 => (device.clone(), index(), any::<bool>())
            .prop_map(|(device, conflict, keep_ours)| Op::Resolve { device, conflict, keep_ours }),
        5 => (index(), element(), 0..4u8)
            .prop_map(|(resource, element, value)| Op::HubEdit { resource, element, value }),
        1 => (patient.clone(), any::<bool>()).prop_map(|(patient, task)| Op::HubCreate { patient, task }),
        1 => index().prop_map(|resource| Op::HubDelete { resource }),
        1 => (index(), patient.clone()).prop_map(|(resource, patient)| Op::HubRefile { resource, patient }),
        1 => (user.clone(), patient.clone()).prop_map(|(user, patient)| Op::Join { user, patient }),
        1 => (user, patient).prop_map(|(user, patient)| Op::Leave { user, patient }),
        10 => (device.clone(), any::<bool>(), at_hub(), at_device()).prop_map(
            |(device, push, at_hub, at_device)| Op::Sync { device, push, at_hub, at_device }
        ),
        2 => (device.clone(), any::<bool>()).prop_map(|(device, push)| Op::Send { device, push }),
        2 => (device.clone(), index(), at_hub())
            .prop_map(|(device, pick, what)| Op::LateRequest { device, pick, what }),
        3 => (device.clone(), index(), at_device())
            .prop_map(|(device, pick, what)| Op::LateAnswer { device, pick, what }),
        1 => device.clone().prop_map(|device| Op::Crash { device }),
        1 => device.clone().prop_map(|device| Op::Offline { device }),
        2 => device.prop_map(|device| Op::Online { device }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let setup = (0..USERS as u8, 1..5u8, 1..4u8).prop_map(|(user, page_size, batch)| DeviceSetup {
        user,
        page_size,
        batch,
    });
    (
        prop::collection::vec(setup, 2..=4),
        [0..8u8, 0..8u8],
        prop::collection::vec(op(), 0..MAX_OPS),
    )
        .prop_map(|(devices, caseloads, ops)| Scenario {
            devices,
            caseloads,
            ops,
        })
}

// ---------------------------------------------------------------------------
// The simulation.

/// How often each interesting thing happened, to show that the scenarios
/// reach every path (see `scenarios_reach_every_outcome`).
#[derive(Clone, Debug, Default)]
struct Stats {
    applied: u32,
    merged: u32,
    conflicts: u32,
    rejected: u32,
    already_applied: u32,
    pages_committed: u32,
    pages_refused: u32,
    purges_committed: u32,
    crashes_before_commit: u32,
    commits_failed: u32,
    answers_overtaken: u32,
    answers_repeated: u32,
    answers_lost: u32,
    requests_dropped: u32,
    requests_duplicated: u32,
    refiles: u32,
    resolved: u32,
    withdrawn: u32,
}

impl Stats {
    fn counts(&self) -> [(&'static str, u32); 18] {
        [
            ("applied", self.applied),
            ("merged", self.merged),
            ("conflicts", self.conflicts),
            ("rejected", self.rejected),
            ("already_applied", self.already_applied),
            ("pages_committed", self.pages_committed),
            ("pages_refused", self.pages_refused),
            ("purges_committed", self.purges_committed),
            ("crashes_before_commit", self.crashes_before_commit),
            ("commits_failed", self.commits_failed),
            ("answers_overtaken", self.answers_overtaken),
            ("answers_repeated", self.answers_repeated),
            ("answers_lost", self.answers_lost),
            ("requests_dropped", self.requests_dropped),
            ("requests_duplicated", self.requests_duplicated),
            ("refiles", self.refiles),
            ("resolved", self.resolved),
            ("withdrawn", self.withdrawn),
        ]
    }

    fn count_result(&mut self, result: &PushResult) {
        for result in &result.results {
            *match result {
                EditResult::Applied { .. } => &mut self.applied,
                EditResult::Merged { .. } => &mut self.merged,
                EditResult::Conflict { .. } => &mut self.conflicts,
                EditResult::Rejected { .. } => &mut self.rejected,
                EditResult::AlreadyApplied { .. } => &mut self.already_applied,
            } += 1;
        }
    }
}

/// A message in flight from a device to the hub.
#[derive(Clone, Debug)]
enum Request {
    Pull(PullRequest),
    Push(PushBatch),
}

/// A message in flight from the hub to a device.
#[derive(Clone, Debug)]
enum Answer {
    Page(PullPage),
    Result(PushResult),
}

/// The network between one device and the hub: what is in flight each way.
#[derive(Default)]
struct Link {
    requests: Vec<Request>,
    answers: Vec<Answer>,
}

struct Sim {
    hub: Hub,
    devices: Vec<Device>,
    links: Vec<Link>,
    ledger: Ledger,
    /// Notes written so far (each note's text is unique).
    notes: u32,
    /// Resources created so far (each gets a new id).
    created: u32,
    /// When tracing, what happened, for the failure message.
    trace: Option<Vec<String>>,
    stats: Stats,
}

impl Sim {
    fn new(scenario: &Scenario, rule: Rule) -> Sim {
        let users = scenario
            .devices
            .iter()
            .map(|d| usize::from(d.user) % USERS)
            .collect();
        let devices = scenario
            .devices
            .iter()
            .map(|setup| Device {
                user: usize::from(setup.user) % USERS,
                page_size: u32::from(setup.page_size),
                batch: usize::from(setup.batch),
                online: true,
                sync: ClientSync::new(None, u32::from(setup.page_size)),
                checkpoint: None,
                synced: BTreeMap::new(),
                outbox: Vec::new(),
                conflicts: Vec::new(),
                rejected: Vec::new(),
                edits_made: 0,
            })
            .collect();
        Sim {
            hub: Hub::new(users, &scenario.caseloads, rule),
            devices,
            links: scenario.devices.iter().map(|_| Link::default()).collect(),
            ledger: Ledger::new(),
            notes: 0,
            created: 0,
            trace: None,
            stats: Stats::default(),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(line());
        }
    }

    fn note(&mut self, author: &str) -> String {
        self.notes += 1;
        format!("note {} by {author}", self.notes)
    }

    /// Puts a new edit in a device's outbox.
    fn enqueue(
        &mut self,
        d: usize,
        key: Key,
        base_version: Option<i64>,
        resource: Option<Value>,
    ) -> String {
        let device = &mut self.devices[d];
        device.edits_made += 1;
        let client_edit_id = format!("d{d}-{}", device.edits_made);
        device.outbox.push(Edit {
            client_edit_id: client_edit_id.clone(),
            resource_type: key.0,
            id: key.1,
            base_version,
            resource,
        });
        self.ledger.insert(
            client_edit_id.clone(),
            Made {
                device: d,
                fate: Fate::Pending,
            },
        );
        self.log(|| format!("  {client_edit_id} queued (base {base_version:?})"));
        client_edit_id
    }

    /// A device sends a push (when `push` and its outbox has edits) or a
    /// pull. The request is in flight; `false` if the device is offline.
    fn send(&mut self, d: usize, push: bool) -> bool {
        let device = &mut self.devices[d];
        if !device.online {
            return false;
        }
        let request = if push && !device.outbox.is_empty() {
            Request::Push(wire(&device.sync.push_batch(&device.outbox, device.batch)))
        } else {
            Request::Pull(wire(&device.sync.next_pull()))
        };
        self.links[d].requests.push(request);
        true
    }

    fn step(&mut self, op: Op) -> Result<(), Failure> {
        let n = self.devices.len();
        let device = |index: u8| usize::from(index) % n;
        let pick = |keys: Vec<Key>, index: u8| match keys.len() {
            0 => None,
            len => keys.into_iter().nth(usize::from(index) % len),
        };
        self.log(|| format!("{op:?}"));
        match op {
            Op::Edit {
                device: d,
                resource,
                element,
                value,
            } => {
                let d = device(d);
                if let Some(key) = pick(self.devices[d].clinical_keys(), resource) {
                    self.edit(d, key, element, value);
                }
            }
            Op::Create {
                device: d,
                patient,
                task,
            } => {
                let d = device(d);
                let patients = self.devices[d].patients();
                if !patients.is_empty() {
                    let patient = &patients[usize::from(patient) % patients.len()];
                    let key = self.fresh_key(task, &format!("d{d}"));
                    let resource = new_resource(&key, patient);
                    self.enqueue(d, key, None, Some(resource));
                }
            }
            Op::Delete {
                device: d,
                resource,
            } => {
                let d = device(d);
                if let Some(key) = pick(self.devices[d].clinical_keys(), resource) {
                    // Only a resource the hub has: deleting an unsent create
                    // would need a base version it does not have.
                    if let Some((Some(base), Some(_))) = self.devices[d].local(&key) {
                        self.enqueue(d, key, Some(base), None);
                    }
                }
            }
            Op::Resolve {
                device: d,
                conflict,
                keep_ours,
            } => self.resolve(device(d), usize::from(conflict), keep_ours)?,
            Op::HubEdit {
                resource,
                element,
                value,
            } => {
                if let Some(key) = pick(self.hub.clinical_keys(), resource) {
                    let note = self.note("hub");
                    let mut resource = match self.hub.live(&key) {
                        Some((_, resource)) => resource.clone(),
                        // Deleted: restored as new.
                        None => new_resource(&key, &self.hub.current[&key].patient),
                    };
                    change_element(&mut resource, element, value, &note);
                    self.hub.store(&key, Some(resource));
                }
            }
            Op::HubCreate { patient, task } => {
                let key = self.fresh_key(task, "h");
                let resource = new_resource(&key, &patient_name(usize::from(patient) % PATIENTS));
                self.hub.store(&key, Some(resource));
            }
            Op::HubDelete { resource } => {
                if let Some(key) = pick(self.hub.clinical_keys(), resource) {
                    if self.hub.live(&key).is_some() {
                        self.hub.store(&key, None);
                    }
                }
            }
            Op::HubRefile { resource, patient } => {
                let key = pick(self.hub.clinical_keys(), resource);
                if let Some((key, (_, live))) =
                    key.and_then(|k| Some((k.clone(), self.hub.live(&k)?)))
                {
                    let mut resource = live.clone();
                    set_patient(
                        &mut resource,
                        &patient_name(usize::from(patient) % PATIENTS),
                    );
                    if &resource != live {
                        self.hub.store(&key, Some(resource));
                        self.stats.refiles += 1;
                    }
                }
            }
            Op::Join { user, patient } => self
                .hub
                .join(usize::from(user) % USERS, usize::from(patient) % PATIENTS),
            Op::Leave { user, patient } => self
                .hub
                .leave(usize::from(user) % USERS, usize::from(patient) % PATIENTS),
            Op::Sync {
                device: d,
                push,
                at_hub,
                at_device,
            } => self.sync(device(d), push, at_hub, at_device)?,
            Op::Send { device: d, push } => {
                self.send(device(d), push);
            }
            Op::LateRequest {
                device: d,
                pick,
                what,
            } => {
                let d = device(d);
                let requests = &mut self.links[d].requests;
                if !requests.is_empty() {
                    let request = requests.remove(usize::from(pick) % requests.len());
                    self.at_hub(d, request, what)?;
                }
            }
            Op::LateAnswer {
                device: d,
                pick,
                what,
            } => {
                let d = device(d);
                let answers = &mut self.links[d].answers;
                if !answers.is_empty() {
                    let index = usize::from(pick) % answers.len();
                    if index > 0 {
                        self.stats.answers_overtaken += 1;
                    }
                    let answer = answers.remove(index);
                    self.at_device(d, answer, what)?;
                }
            }
            Op::Crash { device: d } => self.devices[device(d)].restart(),
            Op::Offline { device: d } => {
                let d = device(d);
                self.devices[d].online = false;
                self.links[d] = Link::default();
            }
            Op::Online { device: d } => self.devices[device(d)].online = true,
        }
        Ok(())
    }

    /// A new Task or Observation id, never used before.
    fn fresh_key(&mut self, task: bool, author: &str) -> Key {
        self.created += 1;
        let prefix = if task { "t" } else { "o" };
        clinical_key(task, format!("{prefix}-{author}-{}", self.created))
    }

    /// A device's user changes one element of `key` as the device shows it.
    fn edit(&mut self, d: usize, key: Key, element: Element, value: u8) {
        let note = self.note(&format!("d{d}"));
        let (base_version, mut resource) = match self.devices[d].local(&key) {
            Some((Some(base), Some(resource))) => (Some(base), resource),
            // A follow-up to an unacknowledged create waits: it could only
            // be sent as another create, which the hub merges from an empty
            // resource, so it would conflict with the device's own create.
            _ => return,
        };
        change_element(&mut resource, element, value, &note);
        self.enqueue(d, key, base_version, Some(resource));
    }

    /// A person resolves an open conflict: the resolution is a new edit
    /// based on the hub's current version the conflict showed.
    fn resolve(&mut self, d: usize, which: usize, keep_ours: bool) -> Result<(), Failure> {
        let conflicts = &mut self.devices[d].conflicts;
        if conflicts.is_empty() {
            return Ok(());
        }
        let conflict = conflicts.remove(which % conflicts.len());
        let resolved = match &conflict.base {
            Some(base) => {
                let outcome = merge_opt(base, conflict.ours.as_ref(), conflict.theirs.as_ref())
                    .map_err(|e| format!("conflict {}: {e}", conflict.client_edit_id))?;
                ensure!(
                    outcome.conflicts() == conflict.conflicts.as_slice(),
                    "conflict {}: the hub sent {:?}, the merge gives {:?}",
                    conflict.client_edit_id,
                    conflict.conflicts,
                    outcome.conflicts()
                );
                let choice = if keep_ours {
                    Choice::Ours
                } else {
                    Choice::Theirs
                };
                let choices = outcome
                    .conflicts()
                    .iter()
                    .map(|c| (c.path.clone(), choice.clone()));
                resolve_opt(&outcome, choices)
                    .map_err(|e| format!("conflict {}: {e}", conflict.client_edit_id))?
            }
            None if keep_ours => conflict.ours.clone(),
            None => conflict.theirs.clone(),
        };
        // Keeping the hub's version needs no edit.
        let by = if resolved == conflict.theirs {
            None
        } else {
            Some(self.enqueue(d, conflict.key.clone(), conflict.current_version, resolved))
        };
        self.log(|| format!("  {} resolved by {by:?}", conflict.client_edit_id));
        settle(
            &mut self.ledger,
            &conflict.client_edit_id,
            Fate::Resolved { by },
        )
    }

    /// A device syncs: one request, handled at once, whose answer arrives
    /// first; a pull then goes on (cleanly) while more pages wait.
    fn sync(
        &mut self,
        d: usize,
        push: bool,
        at_hub: AtHub,
        at_device: AtDevice,
    ) -> Result<(), Failure> {
        let (mut at_hub, mut at_device) = (at_hub, at_device);
        for page in 0.. {
            ensure!(page < 1000, "device {d}: pulls do not end");
            if page == 0 && !self.send(d, push) {
                return Ok(());
            }
            // The request just sent (for a later page: the one the device
            // sent when it committed the page before).
            let Some(request) = self.links[d].requests.pop() else {
                return Ok(());
            };
            let before = self.links[d].answers.len();
            self.at_hub(d, request, at_hub)?;
            if self.links[d].answers.len() == before {
                return Ok(());
            }
            if before > 0 {
                self.stats.answers_overtaken += 1;
            }
            let answer = self.links[d].answers.remove(before);
            if !self.at_device(d, answer, at_device)? {
                return Ok(());
            }
            (at_hub, at_device) = (AtHub::Deliver, AtDevice::Deliver);
        }
        Ok(())
    }

    /// The hub takes one request; its answers are in flight (none if lost).
    fn at_hub(&mut self, d: usize, request: Request, what: AtHub) -> Result<(), Failure> {
        let times = match what {
            AtHub::Deliver => 1,
            AtHub::DropRequest => {
                self.stats.requests_dropped += 1;
                0
            }
            AtHub::LoseAnswer => {
                self.stats.answers_lost += 1;
                1
            }
            AtHub::Duplicate => {
                self.stats.requests_duplicated += 1;
                2
            }
        };
        for _ in 0..times {
            let answer = match &request {
                Request::Pull(request) => Answer::Page(wire(&self.hub.pull(d, request))),
                Request::Push(batch) => {
                    let result = wire(&self.hub.push(d, batch)?);
                    self.stats.count_result(&result);
                    Answer::Result(result)
                }
            };
            self.log(|| format!("  hub answers {}", summary(&answer)));
            if what != AtHub::LoseAnswer {
                self.links[d].answers.push(answer);
            }
        }
        Ok(())
    }

    /// One answer reaches a device. Returns whether the device committed a
    /// page and sent the pull for the next one.
    fn at_device(&mut self, d: usize, answer: Answer, what: AtDevice) -> Result<bool, Failure> {
        match what {
            AtDevice::Delay => {
                self.links[d].answers.push(answer);
                return Ok(false);
            }
            AtDevice::DeliverAndRepeatLater => {
                self.links[d].answers.push(answer.clone());
                self.stats.answers_repeated += 1;
            }
            AtDevice::CrashBeforeCommit => self.stats.crashes_before_commit += 1,
            AtDevice::CommitFails => self.stats.commits_failed += 1,
            AtDevice::Deliver => {}
        }
        let commit = matches!(what, AtDevice::Deliver | AtDevice::DeliverAndRepeatLater);
        let device = &mut self.devices[d];
        match answer {
            Answer::Page(page) => match device.sync.apply_page(&page) {
                // An old page, or one already applied: refused, harmless.
                Err(ProtocolError::Backwards { .. } | ProtocolError::Stale(_)) => {
                    self.stats.pages_refused += 1;
                }
                Err(error) => return Err(format!("device {d} refused a served page: {error}")),
                Ok(effect) => {
                    if what == AtDevice::CrashBeforeCommit {
                        device.restart();
                    }
                    if commit {
                        commit_page(device, &mut self.ledger, &effect)?;
                        self.stats.pages_committed += 1;
                        self.stats.purges_committed += effect.purges.len() as u32;
                        self.log(|| format!("  d{d} committed {}", effect.checkpoint));
                        if effect.more {
                            return Ok(self.send(d, false));
                        }
                    }
                }
            },
            Answer::Result(result) => {
                let actions = device.sync.apply_push_result(&result);
                if what == AtDevice::CrashBeforeCommit {
                    device.restart();
                }
                if commit {
                    if let Some(trace) = &mut self.trace {
                        trace.push(format!("  d{d} stores {actions:?}"));
                    }
                    store_actions(device, &self.hub, &mut self.ledger, actions)?;
                }
            }
        }
        Ok(false)
    }

    /// The network heals for good and every device syncs until nothing is
    /// pending: first every device pushes its whole outbox, then every
    /// device pulls its whole feed.
    fn quiesce(&mut self) -> Result<(), Failure> {
        self.log(|| "-- the network heals".into());
        for (device, link) in self.devices.iter_mut().zip(&mut self.links) {
            device.online = true;
            *link = Link::default();
        }
        for d in 0..self.devices.len() {
            for round in 0.. {
                let device = &mut self.devices[d];
                if device.outbox.is_empty() {
                    break;
                }
                ensure!(round < 1000, "device {d}: the outbox does not drain");
                let batch = wire(&device.sync.push_batch(&device.outbox, device.batch));
                let result = wire(&self.hub.push(d, &batch)?);
                self.stats.count_result(&result);
                let actions = device.sync.apply_push_result(&result);
                store_actions(device, &self.hub, &mut self.ledger, actions)?;
            }
        }
        for d in 0..self.devices.len() {
            for round in 0.. {
                ensure!(round < 10_000, "device {d}: the feed does not drain");
                let device = &mut self.devices[d];
                let page = wire(&self.hub.pull(d, &wire(&device.sync.next_pull())));
                let effect = device
                    .sync
                    .apply_page(&page)
                    .map_err(|e| format!("device {d} refused a fresh page: {e}"))?;
                commit_page(device, &mut self.ledger, &effect)?;
                if !effect.more {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The protocol's promises, once nothing is pending.
    fn check_quiescent(&self) -> Result<(), Failure> {
        // Replicas converge: exactly what the user may see, nothing more.
        for (d, device) in self.devices.iter().enumerate() {
            let expected = self.hub.view(device.user);
            for key in expected.keys().chain(device.synced.keys()) {
                let (want, got) = (expected.get(key), device.synced.get(key));
                ensure!(
                    want == got,
                    "device {d} (user {}) holds {key:?} as {got:?}; the hub's view is {want:?}",
                    device.user
                );
            }
            ensure!(device.outbox.is_empty(), "device {d}: outbox not empty");
            for conflict in &device.conflicts {
                ensure!(
                    self.hub.sees(device.user, &conflict.patient),
                    "device {d} keeps conflict {} of patient {}, whom its user may not see",
                    conflict.client_edit_id,
                    conflict.patient
                );
            }
        }
        // Every edit has exactly one fate, and the hub agrees with it.
        for (id, made) in &self.ledger {
            let applications = self.hub.applications.get(id).copied().unwrap_or(0);
            let device = &self.devices[made.device];
            match &made.fate {
                Fate::Pending => return Err(format!("edit {id} is still pending")),
                Fate::Applied { version } => ensure!(
                    applications == 1 && self.hub.applied.get(id) == Some(version),
                    "edit {id}: the device has it applied as version {version}; \
                     the hub applied it {applications} times, as {:?}",
                    self.hub.applied.get(id)
                ),
                Fate::Conflict => {
                    ensure!(
                        device.conflicts.iter().any(|c| &c.client_edit_id == id),
                        "edit {id}: the conflict is not open on its device"
                    );
                    ensure!(
                        applications == 0,
                        "edit {id} is an open conflict on its device, but the hub applied it"
                    );
                }
                Fate::Resolved { .. } | Fate::Withdrawn => ensure!(
                    applications == 0,
                    "edit {id} ({:?}) was conflicted on its device, but the hub applied it",
                    made.fate
                ),
                Fate::Rejected { code } => {
                    ensure!(
                        code == "forbidden",
                        "edit {id} rejected: {:?}",
                        device.rejected.iter().find(|(r, _)| r == id)
                    );
                    ensure!(
                        applications == 0,
                        "edit {id} is rejected on its device, but the hub applied it"
                    );
                }
            }
        }
        for id in self.hub.applied.keys() {
            ensure!(
                self.ledger.contains_key(id),
                "the hub applied {id}, which no device made"
            );
        }
        Ok(())
    }
}

/// A one-line account of an answer, for the trace.
fn summary(answer: &Answer) -> String {
    match answer {
        Answer::Page(page) => format!(
            "page of {} changes, next {}, more {}",
            page.changes.len(),
            page.next,
            page.more
        ),
        Answer::Result(result) => {
            let results: Vec<String> = result
                .results
                .iter()
                .map(|r| {
                    let what = match r {
                        EditResult::Applied { version, .. } => format!("applied v{version}"),
                        EditResult::Merged { version, .. } => format!("merged v{version}"),
                        EditResult::Conflict { .. } => "conflict".into(),
                        EditResult::Rejected { .. } => "rejected".into(),
                        EditResult::AlreadyApplied { version, .. } => {
                            format!("already applied v{version}")
                        }
                    };
                    format!("{} {what}", r.client_edit_id())
                })
                .collect();
            format!("push result [{}]", results.join(", "))
        }
    }
}

/// Runs a scenario to quiescence and checks it.
fn simulate(scenario: &Scenario, rule: Rule, trace: bool) -> (Sim, Result<(), Failure>) {
    let mut sim = Sim::new(scenario, rule);
    if trace {
        sim.trace = Some(Vec::new());
    }
    let outcome = (|| {
        for op in &scenario.ops {
            sim.step(*op)?;
        }
        sim.quiesce()?;
        sim.check_quiescent()
    })();
    for made in sim.ledger.values() {
        match made.fate {
            Fate::Resolved { .. } => sim.stats.resolved += 1,
            Fate::Withdrawn => sim.stats.withdrawn += 1,
            _ => {}
        }
    }
    (sim, outcome)
}

/// Runs a scenario; on failure, runs it again with a trace for the message.
fn run(scenario: &Scenario) -> Result<Sim, Failure> {
    run_with(scenario, Rule::DecideOnce)
}

fn run_with(scenario: &Scenario, rule: Rule) -> Result<Sim, Failure> {
    match simulate(scenario, rule, false) {
        (sim, Ok(())) => Ok(sim),
        (_, Err(_)) => {
            let (sim, outcome) = simulate(scenario, rule, true);
            let trace = sim.trace.unwrap_or_default().join("\n");
            Err(format!(
                "{}\n\ntrace:\n{trace}",
                outcome.err().unwrap_or_default()
            ))
        }
    }
}

fn cases() -> u32 {
    std::env::var("CARESHARE_SYNC_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_region_converges(scenario in scenario()) {
        run(&scenario).map_err(TestCaseError::fail)?;
    }
}

/// The scenarios are worth running only if they reach every outcome and
/// every fault: this runs a fixed sample and counts.
#[test]
fn scenarios_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut total: BTreeMap<&str, u32> = BTreeMap::new();
    for _ in 0..200 {
        let scenario = scenario()
            .new_tree(&mut runner)
            .expect("a scenario")
            .current();
        let sim = run(&scenario).unwrap_or_else(|failure| panic!("{failure}"));
        for (name, count) in sim.stats.counts() {
            *total.entry(name).or_default() += count;
        }
    }
    eprintln!("in 200 scenarios: {total:#?}");
    let never: Vec<&&str> = total
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| k)
        .collect();
    assert!(never.is_empty(), "never happened: {never:?}");
}

// ---------------------------------------------------------------------------
// Hand-written scenarios: the guarantees one at a time, and the failures the
// property found, kept as regression tests.

/// `t0`, the Task of patient p0, among the hub's resources (o0 o1 o2 t0 ...).
const T0_ON_HUB: u8 = 3;
/// `t0` on a device whose user sees only p0 (o0 t0).
const T0_ON_DEVICE: u8 = 1;

/// A scenario: devices as (user, page size, batch), each user's initial
/// caseload (bit `p`: patient `p`), the operations.
fn scenario_of(devices: &[(u8, u8, u8)], caseloads: [u8; USERS], ops: &[Op]) -> Scenario {
    Scenario {
        devices: devices
            .iter()
            .map(|&(user, page_size, batch)| DeviceSetup {
                user,
                page_size,
                batch,
            })
            .collect(),
        caseloads,
        ops: ops.to_vec(),
    }
}

/// Runs a scenario under the protocol's rules; panics with the trace when a
/// promise breaks.
fn check(scenario: &Scenario) -> Sim {
    run(scenario).unwrap_or_else(|failure| panic!("{failure}"))
}

/// A clean round trip: a pull, or a push of the outbox.
fn sync(device: u8, push: bool) -> Op {
    Op::Sync {
        device,
        push,
        at_hub: AtHub::Deliver,
        at_device: AtDevice::Deliver,
    }
}

fn t0(sim: &Sim) -> Value {
    let key = ("Task".to_string(), "t0".to_string());
    sim.hub.live(&key).expect("t0 is live").1.clone()
}

fn fate(sim: &Sim, client_edit_id: &str) -> Fate {
    sim.ledger[client_edit_id].fate.clone()
}

#[test]
fn different_elements_merge() {
    // The nurse completes t0 offline; on the hub, someone raises its priority.
    let sim = check(&scenario_of(
        &[(0, 5, 5)],
        [0b001, 0],
        &[
            sync(0, false),
            Op::Edit {
                device: 0,
                resource: T0_ON_DEVICE,
                element: Element::Status,
                value: 2,
            },
            Op::HubEdit {
                resource: T0_ON_HUB,
                element: Element::Detail,
                value: 1,
            },
            sync(0, true),
        ],
    ));
    let t0 = t0(&sim);
    assert_eq!(
        (&t0["status"], &t0["priority"]),
        (&json!("completed"), &json!("urgent"))
    );
    assert_eq!(fate(&sim, "d0-1"), Fate::Applied { version: 3 });
    assert_eq!(sim.stats.merged, 1);
}

#[test]
fn one_element_changed_on_both_sides_conflicts() {
    // The nurse completes t0 offline; on the hub, someone cancels it. The
    // hub keeps its version; the nurse sees the conflict, then keeps hers.
    let ops = [
        sync(0, false),
        Op::Edit {
            device: 0,
            resource: T0_ON_DEVICE,
            element: Element::Status,
            value: 2,
        },
        Op::HubEdit {
            resource: T0_ON_HUB,
            element: Element::Status,
            value: 3,
        },
        sync(0, true),
    ];
    let sim = check(&scenario_of(&[(0, 5, 5)], [0b001, 0], &ops));
    assert_eq!(t0(&sim)["status"], "cancelled");
    assert_eq!(fate(&sim, "d0-1"), Fate::Conflict);

    let resolve = Op::Resolve {
        device: 0,
        conflict: 0,
        keep_ours: true,
    };
    let ops = [&ops[..], &[resolve, sync(0, true)]].concat();
    let sim = check(&scenario_of(&[(0, 5, 5)], [0b001, 0], &ops));
    assert_eq!(t0(&sim)["status"], "completed");
    assert_eq!(
        fate(&sim, "d0-1"),
        Fate::Resolved {
            by: Some("d0-2".into())
        }
    );
    assert_eq!(fate(&sim, "d0-2"), Fate::Applied { version: 3 });
}

#[test]
fn a_lost_acknowledgement_is_applied_once() {
    let sim = check(&scenario_of(
        &[(0, 5, 5)],
        [0b001, 0],
        &[
            sync(0, false),
            Op::Edit {
                device: 0,
                resource: T0_ON_DEVICE,
                element: Element::Note,
                value: 0,
            },
            Op::Sync {
                device: 0,
                push: true,
                at_hub: AtHub::LoseAnswer,
                at_device: AtDevice::Deliver,
            },
            sync(0, true),
        ],
    ));
    assert_eq!(sim.hub.applications["d0-1"], 1);
    assert_eq!(sim.stats.already_applied, 1);
    assert_eq!(t0(&sim)["note"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_crash_before_commit_pulls_the_same_changes_again() {
    let sim = check(&scenario_of(
        &[(0, 2, 5)],
        [0b011, 0],
        &[
            Op::Sync {
                device: 0,
                push: false,
                at_hub: AtHub::Deliver,
                at_device: AtDevice::CrashBeforeCommit,
            },
            Op::HubEdit {
                resource: T0_ON_HUB,
                element: Element::Status,
                value: 1,
            },
            sync(0, false),
        ],
    ));
    assert_eq!(sim.devices[0].synced.len(), 6);
    assert_eq!(sim.stats.crashes_before_commit, 1);
}

/// Regression: `PageEffect` dropped an upsert followed in the same page by
/// the purge of its patient, so the replica kept its older copy of the
/// resource, filed under another patient.
#[test]
fn a_refile_then_a_purge_in_one_page_leaves_nothing_behind() {
    // User 0 sees p1 and p2 (6 changes), then p0 joins (3 more). o1 is
    // re-filed from p1 to p0 (change 10), and p0 leaves (change 11): with 3
    // changes a page, both are in the last page.
    let sim = check(&scenario_of(
        &[(0, 3, 1), (0, 1, 1)],
        [0b110, 0],
        &[
            sync(0, false),
            Op::Join {
                user: 0,
                patient: 0,
            },
            Op::HubRefile {
                resource: 1,
                patient: 0,
            },
            Op::Leave {
                user: 0,
                patient: 0,
            },
            sync(0, false),
        ],
    ));
    let o1 = ("Observation".to_string(), "o1".to_string());
    assert!(!sim.devices[0].synced.contains_key(&o1));
}

/// Regression: a hub that remembers only applied edits decides a re-sent
/// conflicted or rejected edit again, and may apply it after the device was
/// told it was not applied. The hub must decide each edit once.
#[test]
fn a_hub_that_remembers_only_applied_edits_disagrees_with_the_device() {
    // A delayed copy of a request: the device was told "rejected" (t0 was
    // filed under a patient its user may not see), the copy is applied.
    let delayed_request = scenario_of(
        &[(0, 5, 5), (1, 5, 5)],
        [0, 0b001],
        &[
            sync(1, false),
            // d1-1 deletes t0; one copy of the push stays in flight.
            Op::Delete {
                device: 1,
                resource: T0_ON_DEVICE,
            },
            Op::Send {
                device: 1,
                push: true,
            },
            Op::HubRefile {
                resource: T0_ON_HUB,
                patient: 1,
            },
            sync(1, true),
            Op::HubRefile {
                resource: T0_ON_HUB,
                patient: 0,
            },
            Op::LateRequest {
                device: 1,
                pick: 0,
                what: AtHub::Deliver,
            },
        ],
    );
    // A late answer: the device takes the first answer (a conflict) for the
    // re-sent edit in flight, which the hub has meanwhile applied; the nurse
    // then discards her edit, and it is on the hub all the same.
    let late_answer = scenario_of(
        &[(0, 5, 5), (1, 5, 5)],
        [0, 0b001],
        &[
            sync(1, false),
            // d1-1 completes t0 offline; on the hub someone cancels it.
            Op::Edit {
                device: 1,
                resource: T0_ON_DEVICE,
                element: Element::Status,
                value: 2,
            },
            Op::HubEdit {
                resource: T0_ON_HUB,
                element: Element::Status,
                value: 3,
            },
            // A conflict; the answer is delayed.
            Op::Sync {
                device: 1,
                push: true,
                at_hub: AtHub::Deliver,
                at_device: AtDevice::Delay,
            },
            // The cancellation is undone on the hub: d1-1 would now merge.
            Op::HubEdit {
                resource: T0_ON_HUB,
                element: Element::Status,
                value: 0,
            },
            Op::Send {
                device: 1,
                push: true,
            },
            Op::LateRequest {
                device: 1,
                pick: 0,
                what: AtHub::Deliver,
            },
            Op::LateAnswer {
                device: 1,
                pick: 0,
                what: AtDevice::Deliver,
            },
            Op::Resolve {
                device: 1,
                conflict: 0,
                keep_ours: false,
            },
        ],
    );
    let sim = check(&delayed_request);
    assert_eq!(
        fate(&sim, "d1-1"),
        Fate::Rejected {
            code: "forbidden".into()
        }
    );
    let sim = check(&late_answer);
    assert_eq!(fate(&sim, "d1-1"), Fate::Resolved { by: None });
    assert_eq!(t0(&sim)["status"], "requested");

    for (scenario, expected) in [
        (&delayed_request, "edit d1-1 is rejected on its device, but the hub applied it"),
        (&late_answer, "edit d1-1 (Resolved { by: None }) was conflicted on its device, but the hub applied it"),
    ] {
        let failure = run_with(scenario, Rule::RememberOnlyApplied)
            .err()
            .expect("a hub that decides again disagrees with the device");
        assert!(failure.starts_with(expected), "{failure}");
    }
}

/// An answer that arrives after the patient's data left the device does not
/// bring hub data of that patient back as an open conflict.
#[test]
fn a_conflict_arriving_after_the_purge_is_not_kept() {
    let sim = check(&scenario_of(
        &[(0, 5, 5)],
        [0b001, 0],
        &[
            sync(0, false),
            Op::Edit {
                device: 0,
                resource: T0_ON_DEVICE,
                element: Element::Status,
                value: 2,
            },
            Op::HubEdit {
                resource: T0_ON_HUB,
                element: Element::Status,
                value: 3,
            },
            Op::Sync {
                device: 0,
                push: true,
                at_hub: AtHub::Deliver,
                at_device: AtDevice::Delay,
            },
            Op::Leave {
                user: 0,
                patient: 0,
            },
            sync(0, false),
            Op::LateAnswer {
                device: 0,
                pick: 0,
                what: AtDevice::Deliver,
            },
        ],
    ));
    assert_eq!(fate(&sim, "d0-1"), Fate::Withdrawn);
    assert!(sim.devices[0].conflicts.is_empty());
    assert!(sim.devices[0].synced.is_empty());
}
