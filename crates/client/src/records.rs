//! What the desktop app reads from the replica: the caseload and a patient's
//! records as the user sees them (queued edits over synced copies).
//!
//! A queued edit (pending or sent, not rejected) replaces the synced copy of
//! its resource, or adds a resource created on this device, and is marked
//! `pending`; a queued delete hides the resource. Reading here is not
//! audited: the shell records a view with [`Session::view`] when a person
//! opens a patient.

use std::collections::HashMap;

use careshare_replica::{EditState, PendingEdit};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Result;
use crate::session::Session;

/// Resource types left out of a patient's records (observations are read
/// apart, newest first; encounters and provenance are not shown).
const NOT_RECORDS: [&str; 3] = ["Observation", "Encounter", "Provenance"];

/// One resource as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldResource {
    /// The resource (the newest queued edit's version when there is one).
    pub resource: Value,
    /// Whether a local edit not yet accepted by the hub is shown.
    pub pending: bool,
}

/// A patient's records as the user sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRecords {
    /// `Patient.id`.
    pub patient_id: String,
    /// The Patient.
    pub patient: HeldResource,
    /// When the patient's data was last brought up to date.
    pub data_as_of: Option<DateTime<Utc>>,
    /// Every other resource of the patient but observations, encounters and
    /// provenance, by type then id.
    pub records: Vec<HeldResource>,
    /// Observations, newest first (as many as asked for; queued ones
    /// included).
    pub observations: Vec<HeldResource>,
}

/// The newest queued (not rejected) edit of each resource, by patient.
type Overlay = HashMap<String, Vec<(String, String, Value)>>;

fn overlay(edits: Vec<PendingEdit>) -> Overlay {
    let mut newest: HashMap<(String, String), (String, Value)> = HashMap::new();
    let mut order = Vec::new();
    for e in edits.into_iter().filter(|e| e.state != EditState::Rejected) {
        let key = (e.edit.resource_type.clone(), e.edit.resource_id.clone());
        if !newest.contains_key(&key) {
            order.push(key.clone());
        }
        newest.insert(key, (e.edit.patient_id, e.edit.edit));
    }
    let mut by_patient: Overlay = HashMap::new();
    for key in order {
        if let Some((patient, edit)) = newest.remove(&key) {
            by_patient
                .entry(patient)
                .or_default()
                .push((key.0, key.1, edit));
        }
    }
    by_patient
}

fn key_of(v: &Value) -> (&str, &str) {
    (
        v.get("resourceType").and_then(Value::as_str).unwrap_or(""),
        v.get("id").and_then(Value::as_str).unwrap_or(""),
    )
}

/// Lays the queued edits over `held` (for the types `wanted` accepts).
fn apply(
    held: &mut Vec<HeldResource>,
    edits: &[(String, String, Value)],
    wanted: impl Fn(&str) -> bool,
) {
    for (kind, id, edit) in edits {
        if !wanted(kind) {
            continue;
        }
        let at = held
            .iter()
            .position(|h| key_of(&h.resource) == (kind.as_str(), id.as_str()));
        match (at, edit.is_null()) {
            (Some(i), true) => {
                held.remove(i);
            }
            (Some(i), false) => {
                held[i] = HeldResource {
                    resource: edit.clone(),
                    pending: true,
                };
            }
            (None, true) => {}
            (None, false) => held.push(HeldResource {
                resource: edit.clone(),
                pending: true,
            }),
        }
    }
}

fn effective(v: &Value) -> String {
    let text = v
        .get("effectiveDateTime")
        .and_then(Value::as_str)
        .or_else(|| {
            v.get("effectivePeriod")
                .and_then(|p| p.get("start"))
                .and_then(Value::as_str)
        })
        .unwrap_or("");
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).to_rfc3339())
        .unwrap_or_else(|_| text.to_owned())
}

impl Session {
    fn records_of(
        &self,
        patient_id: &str,
        patient: Value,
        data_as_of: Option<DateTime<Utc>>,
        observations: usize,
        edits: &[(String, String, Value)],
    ) -> Result<Option<PatientRecords>> {
        let replica = self.replica()?;
        let mut records = Vec::new();
        let mut obs = Vec::new();
        for (kind, _, content) in replica.patient_summary(patient_id, observations)? {
            let held = HeldResource {
                resource: content,
                pending: false,
            };
            if kind == "Observation" {
                obs.push(held);
            } else if !NOT_RECORDS.contains(&kind.as_str()) && kind != "Patient" {
                records.push(held);
            }
        }
        let mut patients = vec![HeldResource {
            resource: patient,
            pending: false,
        }];
        apply(&mut patients, edits, |k| k == "Patient");
        let Some(patient) = patients.pop() else {
            // Deleted by a queued edit.
            return Ok(None);
        };
        apply(&mut records, edits, |k| {
            !NOT_RECORDS.contains(&k) && k != "Patient"
        });
        if observations > 0 {
            apply(&mut obs, edits, |k| k == "Observation");
            obs.sort_by_key(|h| std::cmp::Reverse(effective(&h.resource)));
            obs.truncate(observations);
        }
        records.sort_by(|a, b| key_of(&a.resource).cmp(&key_of(&b.resource)));
        Ok(Some(PatientRecords {
            patient_id: patient_id.to_owned(),
            patient,
            data_as_of,
            records,
            observations: obs,
        }))
    }

    /// Every patient on the device with their records but observations (for
    /// the caseload), by patient id.
    pub fn caseload_records(&self) -> Result<Vec<PatientRecords>> {
        let replica = self.replica()?;
        let edits = overlay(replica.pending_edits()?);
        let mut out = Vec::new();
        for entry in replica.caseload()? {
            let mine = edits
                .get(&entry.patient_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if let Some(r) =
                self.records_of(&entry.patient_id, entry.patient, entry.synced_at, 0, mine)?
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One patient's records with their `observations` newest observations;
    /// `None` when the device does not hold the patient.
    pub fn patient_records(
        &self,
        patient_id: &str,
        observations: usize,
    ) -> Result<Option<PatientRecords>> {
        let replica = self.replica()?;
        let Some(stored) = replica.get_resource("Patient", patient_id)? else {
            return Ok(None);
        };
        let edits = overlay(replica.pending_edits()?);
        let mine = edits.get(patient_id).map(Vec::as_slice).unwrap_or_default();
        let data_as_of = replica.patient_synced_at(patient_id)?;
        self.records_of(patient_id, stored.content, data_as_of, observations, mine)
    }

    /// A resource as the user sees it (queued edit over synced copy), without
    /// recording a view; `None` when not held or deleted by a queued edit.
    pub fn current(&self, resource_type: &str, id: &str) -> Result<Option<HeldResource>> {
        let replica = self.replica()?;
        let edit = replica
            .edits_for(resource_type, id)?
            .into_iter()
            .rfind(|e| e.state != EditState::Rejected);
        Ok(match edit {
            Some(e) if e.edit.edit.is_null() => None,
            Some(e) => Some(HeldResource {
                resource: e.edit.edit,
                pending: true,
            }),
            None => replica
                .get_resource(resource_type, id)?
                .map(|s| HeldResource {
                    resource: s.content,
                    pending: false,
                }),
        })
    }
}
