//! FHIR R4 Observations for NEWS2: writing a set of observations and its
//! score, and reading them back (from this product or any system using the
//! standard codes).
//!
//! # What is written
//!
//! One Observation per recorded parameter, each with `status` `final`, the
//! `vital-signs` category, the patient as `subject`, `effectiveDateTime` and
//! an optional `performer`. Quantities carry UCUM units
//! (`http://unitsofmeasure.org`) with both a human `unit` and a UCUM `code`.
//!
//! | Parameter | Observation code | Value |
//! |---|---|---|
//! | Respiration rate | LOINC 9279-1 (profile `resprate`) | `/min` |
//! | SpO2 | LOINC 2708-6 and 59408-5 (profile `oxygensat`) | `%` |
//! | Air or oxygen | text "Air or oxygen" | SNOMED CT 722742002 *Breathing room air* / 371825009 *Patient on oxygen* |
//! | Blood pressure | LOINC 85354-9 panel (profile `bp`), components 8480-6 systolic and 8462-4 diastolic | `mm[Hg]` |
//! | Pulse | LOINC 8867-4 (profile `heartrate`) | `/min` |
//! | Consciousness | SNOMED CT 1104441000000107 *ACVPU (Alert Confusion Voice Pain Unresponsive) scale score* | SNOMED CT finding (see below) |
//! | Temperature | LOINC 8310-5 (profile `bodytemp`) | `Cel`, one decimal place |
//!
//! **Consciousness.** LOINC has no code for ACVPU: its AVPU "level of
//! responsiveness" lacks the "new confusion" level that NEWS2 added. The UK
//! SNOMED CT edition has both the ACVPU observable (1104441000000107) and
//! findings for each level, as used by the HL7 UK / INTEROPen Care Connect
//! ACVPU profile, so those are written: 248234008 *Mentally alert*,
//! 130987000 *Acute confusion*, 300202002 *Responds to voice*, 450847001
//! *Responds to pain*, 422768004 *Unresponsive*.
//!
//! **Air or oxygen.** There is no LOINC or SNOMED CT observable for "on air or
//! on supplemental oxygen" (LOINC 3150-0 is a measured inhaled oxygen
//! concentration, which a community nurse does not have). Following the
//! INTEROPen Care Connect NEWS2 guidance, the Observation's code is the text
//! "Air or oxygen" and the value is the SNOMED CT finding. Read too: *Patient
//! on oxygen* as the code answered SNOMED CT *Yes* / *No* in the value (a
//! "No" is air; an answer not understood is not read as either).
//!
//! **SpO2 scale 2.** A patient on scale 2 has a prescribed target saturation
//! of 88–92 %, so the SpO2 Observation carries that target as a
//! `referenceRange` of type *treatment*. Scale 1 writes no range (it is the
//! chart's default). The NEWS2 score Observation also names the scale through
//! the SNOMED CT code of its SpO2 sub-score.
//!
//! **The NEWS2 score** is written only when all seven parameters are
//! present, as an Observation coded SNOMED CT 1104051000000101 *Royal College
//! of Physicians NEWS2 (National Early Warning Score 2) total score*,
//! category `survey`, with the total as a `{score}` quantity, the clinical
//! response as its `interpretation`, one `component` per sub-score (the UK
//! SNOMED CT NEWS2 sub-score codes) and `derivedFrom` references to the
//! parameter Observations. `derivedFrom` is used rather than `hasMember`
//! because FHIR defines it for a value calculated from other observations,
//! while `hasMember` groups a panel; both are accepted when reading. An
//! incomplete set produces no score Observation, so no partial sum can be
//! mistaken for a NEWS2 score by another system.
//!
//! # What is read
//!
//! [`read_fhir_observation`] understands the codes above and the common
//! alternatives other systems use (SNOMED CT codes for the vital signs, a
//! stand-alone systolic or diastolic Observation, LOINC 3150-0 inhaled
//! oxygen concentration or 3151-8 oxygen flow rate for air or oxygen,
//! temperatures in `[degF]`). Observations with other codes, and those
//! `entered-in-error`, `cancelled` or not yet resulted, are ignored.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::decimal::{parse_scaled, DecimalError};
use crate::scoring::{score, Observations, Parameter};
use crate::values::{
    format_tenths, AirOrOxygen, Consciousness, DiastolicBp, ObservationError, OxygenSaturation,
    Pulse, RespirationRate, SpO2Scale, SystolicBp, Temperature,
};

/// Code systems and codes used in NEWS2 Observations.
pub mod codes {
    /// LOINC.
    pub const LOINC: &str = "http://loinc.org";
    /// SNOMED CT.
    pub const SNOMED: &str = "http://snomed.info/sct";
    /// UCUM units.
    pub const UCUM: &str = "http://unitsofmeasure.org";
    /// FHIR observation categories.
    pub const OBSERVATION_CATEGORY: &str =
        "http://terminology.hl7.org/CodeSystem/observation-category";
    /// FHIR data-absent reasons.
    pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
    /// FHIR reference range meanings.
    pub const REFERENCE_RANGE_MEANING: &str =
        "http://terminology.hl7.org/CodeSystem/referencerange-meaning";

    /// LOINC respiratory rate.
    pub const RESPIRATORY_RATE: &str = "9279-1";
    /// LOINC oxygen saturation in arterial blood (required by the FHIR
    /// oxygen saturation profile).
    pub const OXYGEN_SATURATION: &str = "2708-6";
    /// LOINC oxygen saturation in arterial blood by pulse oximetry.
    pub const OXYGEN_SATURATION_PULSE_OXIMETRY: &str = "59408-5";
    /// LOINC heart rate.
    pub const HEART_RATE: &str = "8867-4";
    /// LOINC blood pressure panel with all children optional.
    pub const BLOOD_PRESSURE_PANEL: &str = "85354-9";
    /// LOINC systolic blood pressure.
    pub const SYSTOLIC_BP: &str = "8480-6";
    /// LOINC diastolic blood pressure.
    pub const DIASTOLIC_BP: &str = "8462-4";
    /// LOINC body temperature.
    pub const BODY_TEMPERATURE: &str = "8310-5";
    /// LOINC inhaled oxygen concentration (read only).
    pub const INHALED_OXYGEN_CONCENTRATION: &str = "3150-0";
    /// LOINC inhaled oxygen flow rate (read only).
    pub const INHALED_OXYGEN_FLOW_RATE: &str = "3151-8";

    /// SNOMED CT ACVPU scale score (UK edition).
    pub const ACVPU: &str = "1104441000000107";
    /// SNOMED CT mentally alert.
    pub const ALERT: &str = "248234008";
    /// SNOMED CT acute confusion.
    pub const ACUTE_CONFUSION: &str = "130987000";
    /// SNOMED CT responds to voice.
    pub const RESPONDS_TO_VOICE: &str = "300202002";
    /// SNOMED CT responds to pain.
    pub const RESPONDS_TO_PAIN: &str = "450847001";
    /// SNOMED CT unresponsive.
    pub const UNRESPONSIVE: &str = "422768004";
    /// SNOMED CT breathing room air.
    pub const BREATHING_ROOM_AIR: &str = "722742002";
    /// SNOMED CT patient on oxygen.
    pub const PATIENT_ON_OXYGEN: &str = "371825009";
    /// SNOMED CT yes (the answer to *Patient on oxygen* asked as a question).
    pub const SNOMED_YES: &str = "373066001";
    /// SNOMED CT no.
    pub const SNOMED_NO: &str = "373067005";

    /// SNOMED CT NEWS2 total score (UK edition).
    pub const NEWS2_TOTAL: &str = "1104051000000101";
    /// SNOMED CT NEWS2 respiration rate score.
    pub const NEWS2_RESPIRATION_RATE_SCORE: &str = "1104301000000104";
    /// SNOMED CT NEWS2 oxygen saturation scale 1 score.
    pub const NEWS2_SPO2_SCALE_1_SCORE: &str = "1104311000000102";
    /// SNOMED CT NEWS2 oxygen saturation scale 2 score.
    pub const NEWS2_SPO2_SCALE_2_SCORE: &str = "1104321000000108";
    /// SNOMED CT NEWS2 air or oxygen score.
    pub const NEWS2_AIR_OR_OXYGEN_SCORE: &str = "1104331000000105";
    /// SNOMED CT NEWS2 systolic blood pressure score.
    pub const NEWS2_SYSTOLIC_BP_SCORE: &str = "1104341000000101";
    /// SNOMED CT NEWS2 pulse score.
    pub const NEWS2_PULSE_SCORE: &str = "1104351000000103";
    /// SNOMED CT NEWS2 consciousness score.
    pub const NEWS2_CONSCIOUSNESS_SCORE: &str = "1104361000000100";
    /// SNOMED CT NEWS2 temperature score.
    pub const NEWS2_TEMPERATURE_SCORE: &str = "1104371000000107";
}

use codes::*;

const NEWS2_TOTAL_DISPLAY: &str =
    "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score";

/// The Observation an id is being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationSlot {
    /// Respiration rate.
    RespirationRate,
    /// Oxygen saturation.
    OxygenSaturation,
    /// Air or oxygen.
    AirOrOxygen,
    /// Blood pressure panel (systolic and diastolic).
    BloodPressure,
    /// Pulse.
    Pulse,
    /// Consciousness (ACVPU).
    Consciousness,
    /// Temperature.
    Temperature,
    /// The NEWS2 total score.
    News2Score,
}

/// Who and when: the context shared by every Observation of one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirContext<'a> {
    /// Reference to the patient, e.g. `"Patient/123"` or `"urn:uuid:…"`.
    pub patient: &'a str,
    /// When the observations were taken, as a FHIR `dateTime` precise to at
    /// least the day; with a time it must include a time zone, e.g.
    /// `"2024-03-01T09:30:00Z"`.
    pub effective: &'a str,
    /// Reference to who took the observations, e.g. `"Practitioner/42"`.
    pub performer: Option<&'a str>,
}

/// Why Observations could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirWriteError {
    /// A reference is not a FHIR reference.
    #[error("{field} reference {value:?} is not a FHIR reference (expected e.g. \"Patient/123\")")]
    InvalidReference {
        /// Which reference: "patient" or "performer".
        field: &'static str,
        /// The reference as given.
        value: String,
    },
    /// The effective time is not a FHIR `dateTime` precise to the day.
    #[error(
        "effective date-time {value:?} is not a FHIR dateTime precise to at least the day \
         (with a time zone when a time is given)"
    )]
    InvalidDateTime {
        /// The date-time as given.
        value: String,
    },
    /// An id from the id source is not a FHIR id.
    #[error("observation id {value:?} is not a FHIR id (1–64 of A–Z, a–z, 0–9, '-', '.')")]
    InvalidId {
        /// The id as given.
        value: String,
    },
    /// The id source gave the same id twice.
    #[error("observation id {value:?} was given for more than one observation")]
    DuplicateId {
        /// The repeated id.
        value: String,
    },
}

/// Writes a set of observations as FHIR R4 Observations: one per recorded
/// parameter (systolic and diastolic share one blood pressure panel),
/// followed by the NEWS2 score Observation when all seven parameters are
/// present.
///
/// `ids` is called once for each Observation written, with the slot it is
/// for, and must return a distinct FHIR id; the score Observation refers to
/// the others as `Observation/{id}`. Nothing is random or time-dependent: the
/// same input always gives the same output.
pub fn to_fhir_observations(
    observations: &Observations,
    context: &FhirContext<'_>,
    ids: &mut dyn FnMut(ObservationSlot) -> String,
) -> Result<Vec<Value>, FhirWriteError> {
    validate_reference("patient", context.patient)?;
    if let Some(performer) = context.performer {
        validate_reference("performer", performer)?;
    }
    if !is_date_time_to_day(context.effective) {
        return Err(FhirWriteError::InvalidDateTime {
            value: context.effective.to_owned(),
        });
    }

    let mut writer = Writer {
        context,
        ids,
        seen: HashSet::new(),
        written: Vec::new(),
    };

    if let Some(rate) = observations.respiration_rate {
        writer.push(
            ObservationSlot::RespirationRate,
            Parts {
                profile: Some("http://hl7.org/fhir/StructureDefinition/resprate"),
                code: loinc_code(
                    &[(RESPIRATORY_RATE, "Respiratory rate")],
                    "Respiration rate",
                ),
                value: Some((
                    "valueQuantity",
                    quantity(json!(rate.breaths_per_minute()), "breaths/minute", "/min"),
                )),
                ..Parts::default()
            },
        )?;
    }
    if let Some(spo2) = observations.spo2 {
        let reference_range = (observations.spo2_scale == Some(SpO2Scale::Scale2)).then(|| {
            json!([{
                "low": quantity(json!(88), "%", "%"),
                "high": quantity(json!(92), "%", "%"),
                "type": {
                    "coding": [{
                        "system": REFERENCE_RANGE_MEANING,
                        "code": "treatment",
                        "display": "Treatment Range"
                    }]
                },
                "text": "Prescribed target saturation 88–92% (NEWS2 SpO2 scale 2)"
            }])
        });
        writer.push(
            ObservationSlot::OxygenSaturation,
            Parts {
                profile: Some("http://hl7.org/fhir/StructureDefinition/oxygensat"),
                code: loinc_code(
                    &[
                        (OXYGEN_SATURATION, "Oxygen saturation in Arterial blood"),
                        (
                            OXYGEN_SATURATION_PULSE_OXIMETRY,
                            "Oxygen saturation in Arterial blood by Pulse oximetry",
                        ),
                    ],
                    "SpO2",
                ),
                value: Some(("valueQuantity", quantity(json!(spo2.percent()), "%", "%"))),
                reference_range,
                ..Parts::default()
            },
        )?;
    }
    if let Some(air_or_oxygen) = observations.air_or_oxygen {
        let (code, display) = air_or_oxygen_code(air_or_oxygen);
        writer.push(
            ObservationSlot::AirOrOxygen,
            Parts {
                code: json!({ "text": "Air or oxygen" }),
                value: Some(("valueCodeableConcept", snomed_concept(code, display))),
                ..Parts::default()
            },
        )?;
    }
    if observations.systolic_bp.is_some() || observations.diastolic_bp.is_some() {
        let component = json!([
            bp_component(
                SYSTOLIC_BP,
                "Systolic blood pressure",
                observations.systolic_bp.map(SystolicBp::mmhg)
            ),
            bp_component(
                DIASTOLIC_BP,
                "Diastolic blood pressure",
                observations.diastolic_bp.map(DiastolicBp::mmhg)
            ),
        ]);
        writer.push(
            ObservationSlot::BloodPressure,
            Parts {
                profile: Some("http://hl7.org/fhir/StructureDefinition/bp"),
                code: loinc_code(
                    &[(
                        BLOOD_PRESSURE_PANEL,
                        "Blood pressure panel with all children optional",
                    )],
                    "Blood pressure",
                ),
                component: Some(component),
                ..Parts::default()
            },
        )?;
    }
    if let Some(pulse) = observations.pulse {
        writer.push(
            ObservationSlot::Pulse,
            Parts {
                profile: Some("http://hl7.org/fhir/StructureDefinition/heartrate"),
                code: loinc_code(&[(HEART_RATE, "Heart rate")], "Pulse"),
                value: Some((
                    "valueQuantity",
                    quantity(json!(pulse.beats_per_minute()), "beats/minute", "/min"),
                )),
                ..Parts::default()
            },
        )?;
    }
    if let Some(consciousness) = observations.consciousness {
        let (code, display) = consciousness_code(consciousness);
        writer.push(
            ObservationSlot::Consciousness,
            Parts {
                code: json!({
                    "coding": [{
                        "system": SNOMED,
                        "code": ACVPU,
                        "display": "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score"
                    }],
                    "text": "Consciousness (ACVPU)"
                }),
                value: Some(("valueCodeableConcept", snomed_concept(code, display))),
                ..Parts::default()
            },
        )?;
    }
    if let Some(temperature) = observations.temperature {
        writer.push(
            ObservationSlot::Temperature,
            Parts {
                profile: Some("http://hl7.org/fhir/StructureDefinition/bodytemp"),
                code: loinc_code(&[(BODY_TEMPERATURE, "Body temperature")], "Temperature"),
                value: Some((
                    "valueQuantity",
                    quantity(temperature_value(temperature), "C", "Cel"),
                )),
                ..Parts::default()
            },
        )?;
    }

    let assessment = score(observations);
    if let (Some(total), Some(response)) = (assessment.total(), assessment.response()) {
        let spo2_score_code = match assessment.spo2_scale() {
            SpO2Scale::Scale1 => (NEWS2_SPO2_SCALE_1_SCORE, "oxygen saturation scale 1 score"),
            SpO2Scale::Scale2 => (NEWS2_SPO2_SCALE_2_SCORE, "oxygen saturation scale 2 score"),
        };
        let components: Vec<Value> = Parameter::ALL
            .into_iter()
            .filter_map(|parameter| {
                let (code, what) = match parameter {
                    Parameter::RespirationRate => {
                        (NEWS2_RESPIRATION_RATE_SCORE, "respiration rate score")
                    }
                    Parameter::OxygenSaturation => spo2_score_code,
                    Parameter::AirOrOxygen => (NEWS2_AIR_OR_OXYGEN_SCORE, "air or oxygen score"),
                    Parameter::SystolicBp => {
                        (NEWS2_SYSTOLIC_BP_SCORE, "systolic blood pressure score")
                    }
                    Parameter::Pulse => (NEWS2_PULSE_SCORE, "pulse score"),
                    Parameter::Consciousness => (NEWS2_CONSCIOUSNESS_SCORE, "consciousness score"),
                    Parameter::Temperature => (NEWS2_TEMPERATURE_SCORE, "temperature score"),
                };
                assessment.score_of(parameter).map(|sub_score| {
                    json!({
                        "code": {
                            "coding": [{
                                "system": SNOMED,
                                "code": code,
                                "display": format!(
                                    "Royal College of Physicians NEWS2 (National Early Warning Score 2) - {what}"
                                )
                            }]
                        },
                        "valueQuantity": quantity(json!(sub_score), "score", "{score}")
                    })
                })
            })
            .collect();
        let derived_from: Vec<Value> = writer
            .written
            .iter()
            .filter_map(|observation| observation.get("id").and_then(Value::as_str))
            .map(|id| json!({ "reference": format!("Observation/{id}") }))
            .collect();
        writer.push(
            ObservationSlot::News2Score,
            Parts {
                category: ("survey", "Survey"),
                code: json!({
                    "coding": [{
                        "system": SNOMED,
                        "code": NEWS2_TOTAL,
                        "display": NEWS2_TOTAL_DISPLAY
                    }],
                    "text": "NEWS2 score"
                }),
                value: Some(("valueQuantity", quantity(json!(total), "score", "{score}"))),
                interpretation: Some(json!([{
                    "text": format!("{} ({} clinical risk). {}",
                        response.heading(), response.risk(), response.escalation_prompt())
                }])),
                derived_from: Some(Value::Array(derived_from)),
                component: Some(Value::Array(components)),
                ..Parts::default()
            },
        )?;
    }

    Ok(writer.written)
}

struct Parts {
    profile: Option<&'static str>,
    category: (&'static str, &'static str),
    code: Value,
    value: Option<(&'static str, Value)>,
    interpretation: Option<Value>,
    reference_range: Option<Value>,
    derived_from: Option<Value>,
    component: Option<Value>,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            profile: None,
            category: ("vital-signs", "Vital Signs"),
            code: Value::Null,
            value: None,
            interpretation: None,
            reference_range: None,
            derived_from: None,
            component: None,
        }
    }
}

struct Writer<'c, 'i> {
    context: &'c FhirContext<'c>,
    ids: &'i mut dyn FnMut(ObservationSlot) -> String,
    seen: HashSet<String>,
    written: Vec<Value>,
}

impl Writer<'_, '_> {
    /// Builds one Observation with its elements in the order FHIR lists
    /// them.
    fn push(&mut self, slot: ObservationSlot, parts: Parts) -> Result<(), FhirWriteError> {
        let id = (self.ids)(slot);
        if !is_fhir_id(&id) {
            return Err(FhirWriteError::InvalidId { value: id });
        }
        if !self.seen.insert(id.clone()) {
            return Err(FhirWriteError::DuplicateId { value: id });
        }

        let mut observation = Map::new();
        observation.insert("resourceType".into(), json!("Observation"));
        observation.insert("id".into(), json!(id));
        if let Some(profile) = parts.profile {
            observation.insert("meta".into(), json!({ "profile": [profile] }));
        }
        observation.insert("status".into(), json!("final"));
        let (category_code, category_display) = parts.category;
        observation.insert(
            "category".into(),
            json!([{
                "coding": [{
                    "system": OBSERVATION_CATEGORY,
                    "code": category_code,
                    "display": category_display
                }],
                "text": category_display
            }]),
        );
        observation.insert("code".into(), parts.code);
        observation.insert(
            "subject".into(),
            json!({ "reference": self.context.patient }),
        );
        observation.insert("effectiveDateTime".into(), json!(self.context.effective));
        if let Some(performer) = self.context.performer {
            observation.insert("performer".into(), json!([{ "reference": performer }]));
        }
        if let Some((key, value)) = parts.value {
            observation.insert(key.into(), value);
        }
        if let Some(interpretation) = parts.interpretation {
            observation.insert("interpretation".into(), interpretation);
        }
        if let Some(reference_range) = parts.reference_range {
            observation.insert("referenceRange".into(), reference_range);
        }
        if let Some(derived_from) = parts.derived_from {
            observation.insert("derivedFrom".into(), derived_from);
        }
        if let Some(component) = parts.component {
            observation.insert("component".into(), component);
        }
        self.written.push(Value::Object(observation));
        Ok(())
    }
}

fn loinc_code(codings: &[(&str, &str)], text: &str) -> Value {
    let coding: Vec<Value> = codings
        .iter()
        .map(|(code, display)| json!({ "system": LOINC, "code": code, "display": display }))
        .collect();
    json!({ "coding": coding, "text": text })
}

fn snomed_concept(code: &str, display: &str) -> Value {
    json!({
        "coding": [{ "system": SNOMED, "code": code, "display": display }],
        "text": display
    })
}

fn quantity(value: Value, unit: &str, code: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": UCUM, "code": code })
}

/// The temperature as a JSON number with exactly one decimal place
/// (`37.0`, not `37`), so the recorded precision travels with the value.
fn temperature_value(temperature: Temperature) -> Value {
    format_tenths(i64::from(temperature.tenths()))
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| json!(temperature.celsius()))
}

fn bp_component(code: &str, display: &str, mmhg: Option<u16>) -> Value {
    let code = json!({
        "coding": [{ "system": LOINC, "code": code, "display": display }]
    });
    match mmhg {
        Some(mmhg) => json!({
            "code": code,
            "valueQuantity": quantity(json!(mmhg), "mmHg", "mm[Hg]")
        }),
        None => json!({
            "code": code,
            "dataAbsentReason": {
                "coding": [{
                    "system": DATA_ABSENT_REASON,
                    "code": "not-performed",
                    "display": "Not Performed"
                }]
            }
        }),
    }
}

fn air_or_oxygen_code(value: AirOrOxygen) -> (&'static str, &'static str) {
    match value {
        AirOrOxygen::Air => (BREATHING_ROOM_AIR, "Breathing room air"),
        AirOrOxygen::Oxygen => (PATIENT_ON_OXYGEN, "Patient on oxygen"),
    }
}

fn consciousness_code(value: Consciousness) -> (&'static str, &'static str) {
    match value {
        Consciousness::Alert => (ALERT, "Mentally alert"),
        Consciousness::NewConfusion => (ACUTE_CONFUSION, "Acute confusion"),
        Consciousness::Voice => (RESPONDS_TO_VOICE, "Responds to voice"),
        Consciousness::Pain => (RESPONDS_TO_PAIN, "Responds to pain"),
        Consciousness::Unresponsive => (UNRESPONSIVE, "Unresponsive"),
    }
}

/// A FHIR id: 1–64 characters from `A–Z a–z 0–9 - .`.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Accepts a relative reference (`Patient/123`), an absolute URL ending in
/// one, or a `urn:uuid:` / `urn:oid:` reference within a bundle.
fn validate_reference(field: &'static str, value: &str) -> Result<(), FhirWriteError> {
    let invalid = || FhirWriteError::InvalidReference {
        field,
        value: value.to_owned(),
    };
    if value.is_empty()
        || value.len() > 4096
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    if let Some(rest) = value
        .strip_prefix("urn:uuid:")
        .or_else(|| value.strip_prefix("urn:oid:"))
    {
        return if rest.is_empty() {
            Err(invalid())
        } else {
            Ok(())
        };
    }
    let relative = match value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    {
        // The last two path segments of an absolute URL are Type/id.
        Some(rest) => {
            let mut segments = rest.rsplitn(3, '/');
            let id = segments.next().unwrap_or("");
            let resource_type = segments.next().unwrap_or("");
            if segments.next().is_none() {
                return Err(invalid());
            }
            (resource_type, id)
        }
        None => match value.split_once('/') {
            Some(pair) => pair,
            None => return Err(invalid()),
        },
    };
    let (resource_type, id) = relative;
    let type_ok = resource_type
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        && resource_type.chars().all(|c| c.is_ascii_alphabetic());
    if type_ok && is_fhir_id(id) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// A FHIR R4 `dateTime` precise to at least the day (as the vital signs
/// profile requires), with a time zone whenever a time is given.
fn is_date_time_to_day(value: &str) -> bool {
    let b = value.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = b.get(range)?;
        if slice.iter().all(u8::is_ascii_digit) {
            Some(
                slice
                    .iter()
                    .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
            )
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || year == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return false;
    }
    match (number(11..13), number(14..16), number(17..19)) {
        (Some(h), Some(m), Some(s)) if h <= 23 && m <= 59 && s <= 60 => {}
        _ => return false,
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        at += 1 + digits;
    }
    match b.get(at) {
        Some(b'Z') => at + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            if at + 6 != b.len() || b[at + 3] != b':' {
                return false;
            }
            match (number(at + 1..at + 3), number(at + 4..at + 6)) {
                (Some(h), Some(m)) => (h <= 13 && m <= 59) || (h == 14 && m == 0),
                _ => false,
            }
        }
        _ => false,
    }
}

/// One value read from a FHIR Observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reading {
    /// Respiration rate.
    RespirationRate(RespirationRate),
    /// Oxygen saturation.
    OxygenSaturation(OxygenSaturation),
    /// The SpO2 scale, from a prescribed 88–92 % target range on an SpO2
    /// Observation or from the sub-score codes of a NEWS2 score Observation.
    SpO2Scale(SpO2Scale),
    /// Air or oxygen.
    AirOrOxygen(AirOrOxygen),
    /// Systolic blood pressure.
    SystolicBp(SystolicBp),
    /// Diastolic blood pressure.
    DiastolicBp(DiastolicBp),
    /// Pulse.
    Pulse(Pulse),
    /// Consciousness.
    Consciousness(Consciousness),
    /// Temperature.
    Temperature(Temperature),
}

/// Why one Observation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservationReadError {
    /// The value is not a possible measurement.
    #[error(transparent)]
    InvalidValue(#[from] ObservationError),
    /// The quantity's unit is not one this measurement can be read in.
    #[error("unit {unit:?} is not a recognised unit for {what}")]
    UnexpectedUnit {
        /// The measurement being read.
        what: &'static str,
        /// The unit as given.
        unit: String,
    },
    /// A coded value is not one of the codes this measurement uses.
    #[error("the {what} value is not a recognised code")]
    UnrecognisedCode {
        /// The measurement being read.
        what: &'static str,
    },
}

/// Why a set of Observations could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirReadError {
    /// One Observation could not be read.
    #[error("observation at position {index}: {source}")]
    Observation {
        /// Position of the Observation in the input.
        index: usize,
        /// What was wrong with it.
        #[source]
        source: ObservationReadError,
    },
    /// Two Observations are about different patients, so they cannot be one
    /// set of observations.
    #[error("observations at positions {first} and {second} are about different patients")]
    DifferentPatients {
        /// Position of the first Observation.
        first: usize,
        /// Position of the second Observation.
        second: usize,
    },
    /// Two Observations give different values for the same measurement, so
    /// the set cannot be scored as one.
    #[error("{what} is recorded with different values at positions {first} and {second}")]
    Conflict {
        /// The measurement recorded twice.
        what: &'static str,
        /// Position of the first Observation.
        first: usize,
        /// Position of the second Observation.
        second: usize,
    },
}

const RESPIRATION_CODES: &[(&str, &str)] = &[(LOINC, RESPIRATORY_RATE), (SNOMED, "86290005")];
const SPO2_CODES: &[(&str, &str)] = &[
    (LOINC, OXYGEN_SATURATION_PULSE_OXIMETRY),
    (LOINC, OXYGEN_SATURATION),
    (LOINC, "20564-1"),
    (SNOMED, "103228002"),
    (SNOMED, "431314004"),
];
const PULSE_CODES: &[(&str, &str)] = &[
    (LOINC, HEART_RATE),
    (LOINC, "8889-8"),
    (SNOMED, "364075005"),
    (SNOMED, "78564009"),
];
const TEMPERATURE_CODES: &[(&str, &str)] = &[
    (LOINC, BODY_TEMPERATURE),
    (LOINC, "8331-1"),
    (LOINC, "8333-7"),
    (LOINC, "8328-7"),
    (SNOMED, "386725007"),
    (SNOMED, "276885007"),
];
const SYSTOLIC_CODES: &[(&str, &str)] = &[(LOINC, SYSTOLIC_BP), (SNOMED, "271649006")];
const DIASTOLIC_CODES: &[(&str, &str)] = &[(LOINC, DIASTOLIC_BP), (SNOMED, "271650006")];
const ACVPU_CODES: &[(&str, &str)] = &[(SNOMED, ACVPU), (LOINC, "67775-7")];
const NEWS2_TOTAL_CODES: &[(&str, &str)] = &[(SNOMED, NEWS2_TOTAL)];
const FIO2_CODES: &[(&str, &str)] = &[(LOINC, INHALED_OXYGEN_CONCENTRATION)];
const O2_FLOW_CODES: &[(&str, &str)] = &[(LOINC, INHALED_OXYGEN_FLOW_RATE)];

const PER_MINUTE_UNITS: &[&str] = &[
    "/min",
    "{breaths}/min",
    "{beats}/min",
    "breaths/min",
    "breaths/minute",
    "beats/min",
    "beats/minute",
    "bpm",
];
const PERCENT_UNITS: &[&str] = &["%"];
const MMHG_UNITS: &[&str] = &["mm[Hg]", "mmHg"];
const CELSIUS_UNITS: &[&str] = &["Cel", "C", "°C", "degC"];
const FAHRENHEIT_UNITS: &[&str] = &["[degF]", "F", "°F", "degF"];
const FLOW_UNITS: &[&str] = &["L/min", "l/min"];

/// Statuses whose value can be used: the result is available.
const USABLE_STATUSES: &[&str] = &["final", "amended", "corrected", "preliminary"];

/// Reads the NEWS2 values in one FHIR Observation, for trend charts and
/// re-scoring.
///
/// Returns no readings for a resource that is not an Observation, that has a
/// status other than final, amended, corrected or preliminary, that carries
/// none of the recognised codes, or whose value is absent (for example a
/// `dataAbsentReason`). A blood pressure panel gives both pressures.
pub fn read_fhir_observation(resource: &Value) -> Result<Vec<Reading>, ObservationReadError> {
    let mut readings = Vec::new();
    if resource.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        return Ok(readings);
    }
    let status = resource.get("status").and_then(Value::as_str);
    if !status.is_some_and(|s| USABLE_STATUSES.contains(&s)) {
        return Ok(readings);
    }
    let code = resource.get("code");
    let quantity = resource.get("valueQuantity");

    if has_code(code, RESPIRATION_CODES) {
        if let Some(text) = quantity_text(quantity, "respiration rate", PER_MINUTE_UNITS)? {
            readings.push(Reading::RespirationRate(text.parse()?));
        }
    }
    if has_code(code, SPO2_CODES) {
        if let Some(text) = quantity_text(quantity, "oxygen saturation", PERCENT_UNITS)? {
            readings.push(Reading::OxygenSaturation(text.parse()?));
        }
        if has_scale_2_target(resource.get("referenceRange")) {
            readings.push(Reading::SpO2Scale(SpO2Scale::Scale2));
        }
    }
    if has_code(code, PULSE_CODES) {
        if let Some(text) = quantity_text(quantity, "pulse", PER_MINUTE_UNITS)? {
            readings.push(Reading::Pulse(text.parse()?));
        }
    }
    if has_code(code, TEMPERATURE_CODES) {
        if let Some(temperature) = read_temperature(quantity)? {
            readings.push(Reading::Temperature(temperature));
        }
    }
    if has_code(code, ACVPU_CODES) {
        if let Some(value) = resource.get("valueCodeableConcept") {
            let level =
                consciousness_from(value).ok_or(ObservationReadError::UnrecognisedCode {
                    what: "consciousness",
                })?;
            readings.push(Reading::Consciousness(level));
        }
    }
    if has_code(code, FIO2_CODES) {
        if let Some(text) = quantity_text(quantity, "inhaled oxygen concentration", PERCENT_UNITS)?
        {
            readings.push(Reading::AirOrOxygen(air_or_oxygen_from_fio2(&text)?));
        }
    }
    if has_code(code, O2_FLOW_CODES) {
        if let Some(text) = quantity_text(quantity, "oxygen flow rate", FLOW_UNITS)? {
            readings.push(Reading::AirOrOxygen(air_or_oxygen_from_flow(&text)?));
        }
    }
    if let Some(value) = air_or_oxygen_of(resource, code) {
        readings.push(Reading::AirOrOxygen(value));
    }

    let is_news2_total = has_code(code, NEWS2_TOTAL_CODES);
    // Systolic or diastolic pressure recorded on its own.
    let mut pressures = vec![(code, quantity)];
    if !is_news2_total {
        if let Some(components) = resource.get("component").and_then(Value::as_array) {
            pressures.extend(
                components
                    .iter()
                    .map(|c| (c.get("code"), c.get("valueQuantity"))),
            );
        }
    }
    for (code, quantity) in pressures {
        if has_code(code, SYSTOLIC_CODES) {
            if let Some(text) = quantity_text(quantity, "systolic blood pressure", MMHG_UNITS)? {
                readings.push(Reading::SystolicBp(text.parse()?));
            }
        }
        if has_code(code, DIASTOLIC_CODES) {
            if let Some(text) = quantity_text(quantity, "diastolic blood pressure", MMHG_UNITS)? {
                readings.push(Reading::DiastolicBp(text.parse()?));
            }
        }
    }

    if is_news2_total {
        let components = resource.get("component").and_then(Value::as_array);
        for component in components.into_iter().flatten() {
            let code = component.get("code");
            if has_code(code, &[(SNOMED, NEWS2_SPO2_SCALE_1_SCORE)]) {
                readings.push(Reading::SpO2Scale(SpO2Scale::Scale1));
            }
            if has_code(code, &[(SNOMED, NEWS2_SPO2_SCALE_2_SCORE)]) {
                readings.push(Reading::SpO2Scale(SpO2Scale::Scale2));
            }
        }
    }
    Ok(readings)
}

/// Reads one set of observations back from FHIR Observations, for re-scoring
/// with [`score`].
///
/// The caller chooses the set: Observations of one patient taken together
/// (typically sharing an effective time, which is not checked here, since
/// observations taken a few minutes apart belong together). Anything not
/// recognised is ignored. The set is refused rather than scored on a guess
/// when two recognised Observations name different `subject` references
/// ([`FhirReadError::DifferentPatients`]) or give different values for the
/// same measurement ([`FhirReadError::Conflict`]).
pub fn from_fhir_observations(resources: &[Value]) -> Result<Observations, FhirReadError> {
    #[derive(Default)]
    struct Found {
        respiration_rate: Option<(RespirationRate, usize)>,
        spo2: Option<(OxygenSaturation, usize)>,
        spo2_scale: Option<(SpO2Scale, usize)>,
        air_or_oxygen: Option<(AirOrOxygen, usize)>,
        systolic_bp: Option<(SystolicBp, usize)>,
        diastolic_bp: Option<(DiastolicBp, usize)>,
        pulse: Option<(Pulse, usize)>,
        consciousness: Option<(Consciousness, usize)>,
        temperature: Option<(Temperature, usize)>,
    }

    fn put<T: PartialEq>(
        slot: &mut Option<(T, usize)>,
        value: T,
        index: usize,
        what: &'static str,
    ) -> Result<(), FhirReadError> {
        match slot {
            Some((existing, first)) if *existing != value => Err(FhirReadError::Conflict {
                what,
                first: *first,
                second: index,
            }),
            Some(_) => Ok(()),
            None => {
                *slot = Some((value, index));
                Ok(())
            }
        }
    }

    let mut found = Found::default();
    let mut subject: Option<(&str, usize)> = None;
    for (index, resource) in resources.iter().enumerate() {
        let readings = read_fhir_observation(resource)
            .map_err(|source| FhirReadError::Observation { index, source })?;
        if readings.is_empty() {
            continue;
        }
        let reference = resource
            .get("subject")
            .and_then(|s| s.get("reference"))
            .and_then(Value::as_str);
        match (subject, reference) {
            (Some((first_reference, first)), Some(reference)) if first_reference != reference => {
                return Err(FhirReadError::DifferentPatients {
                    first,
                    second: index,
                })
            }
            (None, Some(reference)) => subject = Some((reference, index)),
            _ => {}
        }
        for reading in readings {
            match reading {
                Reading::RespirationRate(v) => {
                    put(&mut found.respiration_rate, v, index, "respiration rate")
                }
                Reading::OxygenSaturation(v) => put(&mut found.spo2, v, index, "oxygen saturation"),
                Reading::SpO2Scale(v) => put(&mut found.spo2_scale, v, index, "SpO2 scale"),
                Reading::AirOrOxygen(v) => put(&mut found.air_or_oxygen, v, index, "air or oxygen"),
                Reading::SystolicBp(v) => {
                    put(&mut found.systolic_bp, v, index, "systolic blood pressure")
                }
                Reading::DiastolicBp(v) => put(
                    &mut found.diastolic_bp,
                    v,
                    index,
                    "diastolic blood pressure",
                ),
                Reading::Pulse(v) => put(&mut found.pulse, v, index, "pulse"),
                Reading::Consciousness(v) => {
                    put(&mut found.consciousness, v, index, "consciousness")
                }
                Reading::Temperature(v) => put(&mut found.temperature, v, index, "temperature"),
            }?;
        }
    }

    Ok(Observations {
        respiration_rate: found.respiration_rate.map(|(v, _)| v),
        spo2: found.spo2.map(|(v, _)| v),
        spo2_scale: found.spo2_scale.map(|(v, _)| v),
        air_or_oxygen: found.air_or_oxygen.map(|(v, _)| v),
        systolic_bp: found.systolic_bp.map(|(v, _)| v),
        diastolic_bp: found.diastolic_bp.map(|(v, _)| v),
        pulse: found.pulse.map(|(v, _)| v),
        consciousness: found.consciousness.map(|(v, _)| v),
        temperature: found.temperature.map(|(v, _)| v),
    })
}

/// The (system, code) pairs of a CodeableConcept.
fn codings(concept: Option<&Value>) -> impl Iterator<Item = (&str, &str)> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|coding| {
            Some((
                coding.get("system")?.as_str()?,
                coding.get("code")?.as_str()?,
            ))
        })
}

fn has_code(concept: Option<&Value>, wanted: &[(&str, &str)]) -> bool {
    codings(concept).any(|pair| wanted.contains(&pair))
}

/// The number in a Quantity as exact decimal text, after checking its unit.
/// `None` when there is no Quantity or it has no value.
fn quantity_text(
    quantity: Option<&Value>,
    what: &'static str,
    units: &[&str],
) -> Result<Option<String>, ObservationReadError> {
    let Some((text, unit)) = quantity_parts(quantity, what)? else {
        return Ok(None);
    };
    match unit {
        Some(unit) if !units.contains(&unit) => Err(ObservationReadError::UnexpectedUnit {
            what,
            unit: unit.to_owned(),
        }),
        _ => Ok(Some(text)),
    }
}

fn quantity_parts<'a>(
    quantity: Option<&'a Value>,
    what: &'static str,
) -> Result<Option<(String, Option<&'a str>)>, ObservationReadError> {
    let Some(quantity) = quantity.filter(|q| !q.is_null()) else {
        return Ok(None);
    };
    let text = match quantity.get("value") {
        None | Some(Value::Null) => return Ok(None),
        // With exact number handling this is the number's text as written.
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => {
            return Err(ObservationError::NotANumber {
                what,
                text: other.to_string(),
            }
            .into())
        }
    };
    let unit = quantity
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| quantity.get("unit").and_then(Value::as_str));
    Ok(Some((text, unit)))
}

fn read_temperature(quantity: Option<&Value>) -> Result<Option<Temperature>, ObservationReadError> {
    let Some((text, unit)) = quantity_parts(quantity, Temperature::WHAT)? else {
        return Ok(None);
    };
    match unit {
        None => Ok(Some(text.parse()?)),
        Some(unit) if CELSIUS_UNITS.contains(&unit) => Ok(Some(text.parse()?)),
        Some(unit) if FAHRENHEIT_UNITS.contains(&unit) => {
            Ok(Some(Temperature::from_fahrenheit_text(&text)?))
        }
        Some(unit) => Err(ObservationReadError::UnexpectedUnit {
            what: Temperature::WHAT,
            unit: unit.to_owned(),
        }),
    }
}

fn consciousness_from(concept: &Value) -> Option<Consciousness> {
    codings(Some(concept))
        .filter(|(system, _)| *system == SNOMED)
        .find_map(|(_, code)| match code {
            ALERT => Some(Consciousness::Alert),
            ACUTE_CONFUSION => Some(Consciousness::NewConfusion),
            // 255373000 |Verbal| is used for the V of AVPU by some systems.
            RESPONDS_TO_VOICE | "255373000" => Some(Consciousness::Voice),
            RESPONDS_TO_PAIN => Some(Consciousness::Pain),
            UNRESPONSIVE => Some(Consciousness::Unresponsive),
            _ => None,
        })
}

/// Air or oxygen as an Observation records it: the finding (*Breathing room
/// air* / *Patient on oxygen*) as the value; or *Patient on oxygen* asked as
/// the code and answered Yes or No in the value; or, with no value at all,
/// the finding as the code. A value that says something else is not read
/// as either: the question alone never means oxygen.
fn air_or_oxygen_of(resource: &Value, code: Option<&Value>) -> Option<AirOrOxygen> {
    let value = resource.get("valueCodeableConcept");
    if let Some(found) = air_or_oxygen_from(value) {
        return Some(found);
    }
    if codings(code).any(|c| c == (SNOMED, PATIENT_ON_OXYGEN)) {
        let answer = codings(value)
            .filter(|(system, _)| *system == SNOMED)
            .find_map(|(_, code)| match code {
                SNOMED_YES => Some(AirOrOxygen::Oxygen),
                SNOMED_NO => Some(AirOrOxygen::Air),
                _ => None,
            });
        if answer.is_some() {
            return answer;
        }
    }
    let has_value = resource
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with("value")));
    if has_value {
        return None;
    }
    air_or_oxygen_from(code)
}

fn air_or_oxygen_from(concept: Option<&Value>) -> Option<AirOrOxygen> {
    codings(concept)
        .filter(|(system, _)| *system == SNOMED)
        .find_map(|(_, code)| match code {
            BREATHING_ROOM_AIR => Some(AirOrOxygen::Air),
            PATIENT_ON_OXYGEN => Some(AirOrOxygen::Oxygen),
            _ => None,
        })
}

/// An inhaled oxygen concentration above room air's 21 % means
/// supplemental oxygen.
fn air_or_oxygen_from_fio2(text: &str) -> Result<AirOrOxygen, ObservationError> {
    const WHAT: &str = "inhaled oxygen concentration";
    let out_of_range = || ObservationError::OutOfRange {
        what: WHAT,
        value: text.to_owned(),
        min: "0".to_owned(),
        max: "100".to_owned(),
        unit: "%",
    };
    let tenths = match parse_scaled(text, 1) {
        Ok((tenths, _)) => tenths,
        Err(DecimalError::NotANumber) => {
            return Err(ObservationError::NotANumber {
                what: WHAT,
                text: text.to_owned(),
            })
        }
        Err(DecimalError::TooLarge) => return Err(out_of_range()),
    };
    match tenths {
        0..=210 => Ok(AirOrOxygen::Air),
        211..=1000 => Ok(AirOrOxygen::Oxygen),
        _ => Err(out_of_range()),
    }
}

/// Any oxygen flow means supplemental oxygen.
fn air_or_oxygen_from_flow(text: &str) -> Result<AirOrOxygen, ObservationError> {
    const WHAT: &str = "oxygen flow rate";
    let out_of_range = || ObservationError::OutOfRange {
        what: WHAT,
        value: text.to_owned(),
        min: "0".to_owned(),
        max: "100".to_owned(),
        unit: "L/min",
    };
    let (hundredths, exact) = match parse_scaled(text, 2) {
        Ok(parsed) => parsed,
        Err(DecimalError::NotANumber) => {
            return Err(ObservationError::NotANumber {
                what: WHAT,
                text: text.to_owned(),
            })
        }
        Err(DecimalError::TooLarge) => return Err(out_of_range()),
    };
    match hundredths {
        0 if exact => Ok(AirOrOxygen::Air),
        0..=10_000 => Ok(AirOrOxygen::Oxygen),
        _ => Err(out_of_range()),
    }
}

/// An SpO2 target range of exactly 88–92 % is the scale 2 prescription.
fn has_scale_2_target(ranges: Option<&Value>) -> bool {
    let bound = |range: &Value, key: &str| -> Option<i64> {
        let text = range.get(key)?.get("value")?.as_number()?.to_string();
        match parse_scaled(&text, 0) {
            Ok((value, true)) => Some(value),
            _ => None,
        }
    };
    ranges
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|range| bound(range, "low") == Some(88) && bound(range, "high") == Some(92))
}
