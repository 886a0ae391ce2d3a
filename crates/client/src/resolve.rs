//! Resolving a conflict: a new edit based on the hub's current version, and a
//! FHIR Provenance saying who decided, when, and which side was kept.
//!
//! * **Mine** re-sends the device's version, **Combined** a version the user
//!   put together; both become an edit whose base is the hub's current
//!   version, so the hub applies it as an ordinary update (or merges it with
//!   anything newer).
//! * **Theirs** keeps the hub's version: there is nothing to change, so only
//!   the Provenance is queued.
//!
//! The conflict is removed and the edits are queued in one replica
//! transaction.

use careshare_replica::OutboxEdit;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::apply::parse_version;
use crate::error::{ClientError, Result};
use crate::session::{new_id, DeviceInfo, Session};

/// Code system of the side kept when resolving a conflict.
pub const CONFLICT_RESOLUTION_SYSTEM: &str =
    "https://careshare.example.org/fhir/CodeSystem/conflict-resolution";
/// Identifier system of Careshare devices.
pub const DEVICE_ID_SYSTEM: &str = "https://careshare.example.org/fhir/Id/device";
/// Identifier system of staff user names (as `careshare-demo` names it).
pub const USERNAME_SYSTEM: &str = "https://careshare.example.org/fhir/Id/username";

/// Which version wins a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// The device's version.
    Mine,
    /// The hub's version.
    Theirs,
    /// A version the user put together (same type and id; `null` deletes).
    Combined(Value),
}

impl Resolution {
    fn code(&self) -> &'static str {
        match self {
            Resolution::Mine => "mine",
            Resolution::Theirs => "theirs",
            Resolution::Combined(_) => "combined",
        }
    }

    fn display(&self) -> &'static str {
        match self {
            Resolution::Mine => "kept the device's version",
            Resolution::Theirs => "kept the hub's version",
            Resolution::Combined(_) => "combined both versions",
        }
    }
}

/// What [`Session::resolve`] queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The resolved conflict.
    pub conflict_id: i64,
    /// The edit of the resource (none when the hub's version was kept).
    pub edit_id: Option<String>,
    /// The edit creating the Provenance.
    pub provenance_edit_id: String,
    /// The Provenance's id.
    pub provenance_id: String,
}

/// What was decided about one conflict.
pub(crate) struct Decision<'a> {
    /// The resource's type.
    pub resource_type: &'a str,
    /// The resource's id.
    pub resource_id: &'a str,
    /// The patient (`""`: none).
    pub patient_id: &'a str,
    /// The hub version the resolution is based on.
    pub base_version: Option<i64>,
    /// The side kept.
    pub choice: &'a Resolution,
    /// Whether the resolution deletes the resource.
    pub deletes: bool,
}

/// The Provenance of a resolution.
pub(crate) fn provenance(
    id: &str,
    decision: &Decision<'_>,
    device: &DeviceInfo,
    now: DateTime<Utc>,
) -> Value {
    let Decision {
        resource_type,
        resource_id,
        patient_id,
        base_version,
        choice,
        deletes,
    } = *decision;
    let mut targets = vec![json!({"reference": format!("{resource_type}/{resource_id}")})];
    let is_the_patient = resource_type == "Patient" && resource_id == patient_id;
    if !patient_id.is_empty() && !is_the_patient {
        // Puts the Provenance in the patient's compartment.
        targets.push(json!({"reference": format!("Patient/{patient_id}")}));
    }
    let author = match &device.practitioner_role {
        Some(role) => json!({"reference": role, "display": device.username}),
        None => json!({
            "identifier": {"system": USERNAME_SYSTEM, "value": device.username},
            "display": device.username
        }),
    };
    let participant = |code: &str| {
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": code
        }]})
    };
    let mut p = json!({
        "resourceType": "Provenance",
        "id": id,
        "target": targets,
        "recorded": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "reason": [{
            "coding": [{
                "system": CONFLICT_RESOLUTION_SYSTEM,
                "code": choice.code(),
                "display": choice.display()
            }],
            "text": format!("Sync conflict resolved: {}", choice.display())
        }],
        "agent": [
            {"type": participant("author"), "who": author},
            {"type": participant("assembler"), "who": {
                "identifier": {"system": DEVICE_ID_SYSTEM, "value": device.device_id},
                "display": device.device_name
            }}
        ]
    });
    let obj = p.as_object_mut().expect("a JSON object");
    if !matches!(choice, Resolution::Theirs) {
        let (code, display) = if deletes {
            ("DELETE", "delete")
        } else {
            ("UPDATE", "revise")
        };
        obj.insert(
            "activity".into(),
            json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": code,
                "display": display
            }]}),
        );
    }
    if let Some(v) = base_version {
        obj.insert(
            "entity".into(),
            json!([{
                "role": "revision",
                "what": {"reference": format!("{resource_type}/{resource_id}/_history/{v}")}
            }]),
        );
    }
    p
}

impl Session {
    /// Resolves open conflict `conflict_id` with `choice`: queues the chosen
    /// version as a new edit based on the hub's current version (except for
    /// [`Resolution::Theirs`]) and a Provenance recording who, when and which
    /// side; removes the conflict. All in one replica transaction.
    pub fn resolve(
        &mut self,
        conflict_id: i64,
        choice: Resolution,
        now: DateTime<Utc>,
    ) -> Result<Resolved> {
        let device = self.device.clone();
        let replica = self.replica_mut()?;
        let conflict = replica
            .conflict(conflict_id)?
            .ok_or(ClientError::NoSuchConflict(conflict_id))?;
        let c = &conflict.conflict;
        let base_version = match &conflict.context {
            Some(ctx) => parse_version(ctx.current_version.as_deref())?,
            None => parse_version(
                replica
                    .get_resource(&c.resource_type, &c.resource_id)?
                    .and_then(|s| s.base_version)
                    .as_deref(),
            )?,
        };
        let chosen = match &choice {
            Resolution::Mine => c.ours.clone(),
            Resolution::Theirs => c.theirs.clone(),
            Resolution::Combined(v) => v.clone(),
        };
        if !chosen.is_null() {
            let field = |name: &str| chosen.get(name).and_then(Value::as_str);
            if field("resourceType") != Some(c.resource_type.as_str())
                || field("id") != Some(c.resource_id.as_str())
            {
                return Err(ClientError::InvalidInput(format!(
                    "the resolution must be {}/{} (same resourceType and id) or null",
                    c.resource_type, c.resource_id
                )));
            }
        }
        let mut edits = Vec::new();
        let edit_id = if matches!(choice, Resolution::Theirs) {
            None
        } else {
            let id = new_id();
            edits.push(OutboxEdit {
                client_edit_id: id.clone(),
                resource_type: c.resource_type.clone(),
                resource_id: c.resource_id.clone(),
                patient_id: c.patient_id.clone(),
                base_version: base_version.map(|v| v.to_string()),
                edit: chosen.clone(),
            });
            Some(id)
        };
        let provenance_id = new_id();
        let provenance_edit_id = new_id();
        edits.push(OutboxEdit {
            client_edit_id: provenance_edit_id.clone(),
            resource_type: "Provenance".into(),
            resource_id: provenance_id.clone(),
            patient_id: c.patient_id.clone(),
            base_version: None,
            edit: provenance(
                &provenance_id,
                &Decision {
                    resource_type: &c.resource_type,
                    resource_id: &c.resource_id,
                    patient_id: &c.patient_id,
                    base_version,
                    choice: &choice,
                    deletes: chosen.is_null(),
                },
                &device,
                now,
            ),
        });
        if !replica.resolve_conflict_with(conflict_id, &edits, now)? {
            return Err(ClientError::NoSuchConflict(conflict_id));
        }
        Ok(Resolved {
            conflict_id,
            edit_id,
            provenance_edit_id,
            provenance_id,
        })
    }
}
