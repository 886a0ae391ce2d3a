//! A visit as FHIR: the visit form (as typed) becomes the resources to queue
//! in the outbox, or a refusal naming the field, with nothing built.
//!
//! * the NEWS2 observations, by `careshare_news2::to_fhir_observations` (one
//!   Observation per recorded parameter, and the NEWS2 score Observation when
//!   the set is complete);
//! * a wound assessment Observation (category `exam`, LOINC 72287-6 *Wound
//!   size panel* as the region's records code it, text "Wound assessment";
//!   components length 39126-8, width 39125-0 and depth 39127-6 in cm; the
//!   site as `bodySite.text`; the description as a note);
//! * the visit note, a DocumentReference shaped like the region's nursing
//!   visit notes (LOINC 34746-8 *Nurse note*, category `nursing-visit-note`,
//!   a base64 plain-text attachment);
//! * each completed task, its current version with `status` `completed`,
//!   `executionPeriod.end` and `lastModified` set to now.
//!
//! Ids come from the caller (this crate has no random source).

use base64::Engine as _;
use careshare_news2::{score, to_fhir_observations, FhirContext, Parameter};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::api::{AppError, VisitForm, WoundForm};

/// LOINC.
const LOINC: &str = "http://loinc.org";
/// UCUM.
const UCUM: &str = "http://unitsofmeasure.org";
/// LOINC wound size panel (the code of a wound assessment).
pub const LOINC_WOUND_SIZE_PANEL: &str = "72287-6";
/// LOINC length of wound.
pub const LOINC_WOUND_LENGTH: &str = "39126-8";
/// LOINC width of wound.
pub const LOINC_WOUND_WIDTH: &str = "39125-0";
/// LOINC depth of wound.
pub const LOINC_WOUND_DEPTH: &str = "39127-6";
/// LOINC nurse note (the type of a visit note).
pub const LOINC_NURSE_NOTE: &str = "34746-8";
/// Careshare's document categories.
pub const DOCUMENT_CATEGORY_SYSTEM: &str =
    "https://careshare.example.org/fhir/CodeSystem/document-category";
/// Document category of a nursing visit note.
pub const DOCUMENT_NURSING_VISIT_NOTE: &str = "nursing-visit-note";
/// The largest wound dimension accepted, in cm.
const MAX_WOUND_CM: f64 = 100.0;

/// Who records the visit, for whom, and when.
#[derive(Debug, Clone, Copy)]
pub struct VisitContext<'a> {
    /// The user's `PractitionerRole/<id>`, when known.
    pub performer: Option<&'a str>,
    /// The user's name, shown with the performer reference.
    pub performer_name: &'a str,
    /// The user's `Organization/<id>` (the note's custodian), when known.
    pub organisation: Option<&'a str>,
    /// When the visit is recorded.
    pub now: DateTime<Utc>,
}

/// What a visit becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltVisit {
    /// The resources to queue, in order.
    pub resources: Vec<Value>,
    /// The NEWS2 total, when the set is complete.
    pub news2_total: Option<u8>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> AppError {
    AppError::new("invalid-input", format!("{field}: {message}"))
}

/// The form field of a NEWS2 parameter.
fn field(p: Option<Parameter>) -> &'static str {
    match p {
        Some(Parameter::RespirationRate) => "respiration_rate",
        Some(Parameter::OxygenSaturation) => "spo2",
        Some(Parameter::AirOrOxygen) => "air_or_oxygen",
        Some(Parameter::SystolicBp) => "systolic_bp",
        Some(Parameter::Pulse) => "pulse",
        Some(Parameter::Consciousness) => "consciousness",
        Some(Parameter::Temperature) => "temperature",
        None => "diastolic_bp",
    }
}

/// A length in cm as typed: `None` when empty, the exact decimal otherwise.
fn centimetres(field_name: &str, text: &str) -> Result<Option<Value>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let number: f64 = text
        .parse()
        .map_err(|_| invalid(field_name, format!("{text:?} is not a number of cm")))?;
    if !number.is_finite() || !(0.0..=MAX_WOUND_CM).contains(&number) {
        return Err(invalid(
            field_name,
            format!("{text} cm is outside 0–{MAX_WOUND_CM} cm"),
        ));
    }
    // Keep the digits as typed (FHIR decimals are exact).
    let value: Value = serde_json::from_str(text.trim_start_matches('+'))
        .map_err(|_| invalid(field_name, format!("{text:?} is not a number of cm")))?;
    if !value.is_number() {
        return Err(invalid(
            field_name,
            format!("{text:?} is not a number of cm"),
        ));
    }
    Ok(Some(value))
}

fn is_blank(w: &WoundForm) -> bool {
    [
        &w.site,
        &w.length_cm,
        &w.width_cm,
        &w.depth_cm,
        &w.description,
    ]
    .iter()
    .all(|s| s.trim().is_empty())
}

fn performer(ctx: &VisitContext<'_>) -> Option<Value> {
    ctx.performer
        .map(|r| json!([{"reference": r, "display": ctx.performer_name}]))
}

fn wound(
    w: &WoundForm,
    patient: &str,
    ctx: &VisitContext<'_>,
    effective: &str,
    id: String,
) -> Result<Value, AppError> {
    if w.site.trim().is_empty() {
        return Err(invalid("wound.site", "say where the wound is"));
    }
    let dims = [
        (
            "wound.length_cm",
            &w.length_cm,
            LOINC_WOUND_LENGTH,
            "Length of Wound",
        ),
        (
            "wound.width_cm",
            &w.width_cm,
            LOINC_WOUND_WIDTH,
            "Width of Wound",
        ),
        (
            "wound.depth_cm",
            &w.depth_cm,
            LOINC_WOUND_DEPTH,
            "Depth of Wound",
        ),
    ];
    let mut components = Vec::new();
    for (name, text, code, display) in dims {
        if let Some(value) = centimetres(name, text)? {
            components.push(json!({
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "valueQuantity": {"value": value, "unit": "cm", "system": UCUM, "code": "cm"}
            }));
        }
    }
    let mut obs = json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "exam",
            "display": "Exam"
        }]}],
        "code": {
            "coding": [{"system": LOINC, "code": LOINC_WOUND_SIZE_PANEL, "display": "Wound size panel"}],
            "text": "Wound assessment"
        },
        "subject": {"reference": patient},
        "effectiveDateTime": effective,
    });
    let map = obs.as_object_mut().expect("an object");
    if let Some(p) = performer(ctx) {
        map.insert("performer".into(), p);
    }
    map.insert("bodySite".into(), json!({"text": w.site.trim()}));
    if !w.description.trim().is_empty() {
        map.insert("note".into(), json!([{"text": w.description.trim()}]));
    }
    if !components.is_empty() {
        map.insert("component".into(), Value::Array(components));
    }
    Ok(obs)
}

fn note(text: &str, patient: &str, ctx: &VisitContext<'_>, stamp: &str, id: String) -> Value {
    let title = format!("Nursing visit {}", ctx.now.format("%d/%m/%Y"));
    let data = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": LOINC, "code": LOINC_NURSE_NOTE, "display": "Nurse Note"}],
            "text": "Nurse Note"
        },
        "category": [{
            "coding": [{"system": DOCUMENT_CATEGORY_SYSTEM, "code": DOCUMENT_NURSING_VISIT_NOTE, "display": "Nursing visit note"}],
            "text": "Nursing visit note"
        }],
        "subject": {"reference": patient},
        "date": stamp,
    });
    let map = doc.as_object_mut().expect("an object");
    if let Some(p) = performer(ctx) {
        map.insert("author".into(), p);
    }
    if let Some(org) = ctx.organisation {
        map.insert("custodian".into(), json!({"reference": org}));
    }
    map.insert("description".into(), Value::String(title.clone()));
    map.insert(
        "content".into(),
        json!([{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": "en-GB",
            "data": data,
            "title": title,
            "creation": stamp
        }}]),
    );
    doc
}

/// The completed version of a task.
pub fn complete_task(task: &Value, now: DateTime<Utc>) -> Value {
    let stamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut t = task.clone();
    if let Some(map) = t.as_object_mut() {
        map.insert("status".into(), json!("completed"));
        map.insert("lastModified".into(), Value::String(stamp.clone()));
        let mut period = map
            .get("executionPeriod")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new);
        period.insert("end".into(), Value::String(stamp));
        map.insert("executionPeriod".into(), Value::Object(period));
    }
    t
}

/// Builds the resources of a visit. `tasks` are the current versions of the
/// tasks in `form.completed_tasks` (as found on the device, in any order);
/// `ids` gives a fresh FHIR id each call. Refuses an invalid value, naming
/// the field, and an empty visit.
pub fn build_visit(
    form: &VisitForm,
    tasks: &[Value],
    ctx: &VisitContext<'_>,
    ids: &mut dyn FnMut() -> String,
) -> Result<BuiltVisit, AppError> {
    let patient_id = form.patient_id.trim();
    if patient_id.is_empty() {
        return Err(invalid("patient_id", "no patient"));
    }
    let patient = format!("Patient/{patient_id}");
    let observations = crate::news2::observations(&form.observations).map_err(|errors| {
        let text = errors
            .iter()
            .map(|(p, e)| format!("{}: {e}", field(*p)))
            .collect::<Vec<_>>()
            .join("; ");
        AppError::new("invalid-input", text)
    })?;
    let stamp = ctx.now.to_rfc3339_opts(SecondsFormat::Secs, true);

    // Check everything before building anything.
    let mut wound_obs = form
        .wound
        .as_ref()
        .filter(|w| !is_blank(w))
        .map(|w| wound(w, &patient, ctx, &stamp, String::new()))
        .transpose()?;
    let mut completed = Vec::new();
    for id in &form.completed_tasks {
        let task = tasks
            .iter()
            .find(|t| t.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .ok_or_else(|| {
                invalid(
                    "completed_tasks",
                    format!("there is no task {id} on this device"),
                )
            })?;
        let for_patient = task
            .get("for")
            .and_then(|f| f.get("reference"))
            .and_then(Value::as_str)
            .is_some_and(|r| r == patient || r.ends_with(&format!("/{patient}")));
        if !for_patient {
            return Err(invalid(
                "completed_tasks",
                format!("task {id} is not for this patient"),
            ));
        }
        completed.push(task);
    }

    let mut resources = to_fhir_observations(
        &observations,
        &FhirContext {
            patient: &patient,
            effective: &stamp,
            performer: ctx.performer,
        },
        &mut |_| ids(),
    )
    .map_err(|e| invalid("observations", e))?;
    if let Some(mut w) = wound_obs.take() {
        w["id"] = Value::String(ids());
        resources.push(w);
    }
    if !form.note.trim().is_empty() {
        resources.push(note(form.note.trim_end(), &patient, ctx, &stamp, ids()));
    }
    for task in completed {
        resources.push(complete_task(task, ctx.now));
    }
    if resources.is_empty() {
        return Err(AppError::new(
            "invalid-input",
            "the visit is empty: record an observation, a wound, a note or a completed task",
        ));
    }
    Ok(BuiltVisit {
        resources,
        news2_total: score(&observations).total(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ObservationsForm;
    use careshare_news2::from_fhir_observations;
    use chrono::TimeZone;

    fn full() -> ObservationsForm {
        ObservationsForm {
            respiration_rate: "22".into(),
            spo2: "95".into(),
            spo2_scale2: false,
            air_or_oxygen: "air".into(),
            systolic_bp: "105".into(),
            diastolic_bp: "70".into(),
            pulse: "112".into(),
            consciousness: "A".into(),
            temperature: "38.4".into(),
        }
    }

    fn ctx() -> VisitContext<'static> {
        VisitContext {
            performer: Some("PractitionerRole/role-amy"),
            performer_name: "nurse.amy.khan",
            organisation: Some("Organization/org-community"),
            now: Utc.with_ymd_and_hms(2026, 11, 26, 10, 40, 0).unwrap(),
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id-{n}")
        }
    }

    fn task() -> Value {
        json!({"resourceType": "Task", "id": "p1-task-1", "meta": {"versionId": "3", "source": "Organization/org-community"},
            "status": "requested", "intent": "order", "description": "Redress leg ulcer",
            "for": {"reference": "Patient/p1", "display": "Amira Khan"},
            "executionPeriod": {"start": "2026-11-20T09:00:00Z"},
            "restriction": {"period": {"end": "2026-11-26T17:00:00+00:00"}}})
    }

    fn form() -> VisitForm {
        VisitForm {
            patient_id: "p1".into(),
            observations: full(),
            wound: Some(WoundForm {
                site: "Left lower leg, gaiter area".into(),
                length_cm: "4.20".into(),
                width_cm: "3.1".into(),
                depth_cm: String::new(),
                description: "Granulating, moderate exudate.".into(),
            }),
            note: "Seen at home. Dressing changed.".into(),
            completed_tasks: vec!["p1-task-1".into()],
        }
    }

    #[test]
    fn the_saved_observations_score_the_same_news2_total() {
        let v = build_visit(&form(), &[task()], &ctx(), &mut ids()).unwrap();
        assert_eq!(v.news2_total, Some(7));
        let obs: Vec<Value> = v
            .resources
            .iter()
            .filter(|r| r["resourceType"] == "Observation")
            .cloned()
            .collect();
        let read = from_fhir_observations(&obs).unwrap();
        assert_eq!(score(&read).total(), Some(7));
        for o in &obs {
            assert_eq!(o["subject"]["reference"], "Patient/p1");
            assert_eq!(o["effectiveDateTime"], "2026-11-26T10:40:00Z");
            assert_eq!(o["performer"][0]["reference"], "PractitionerRole/role-amy");
        }
        // 7 parameter observations, the NEWS2 score, the wound, the note, the task.
        assert_eq!(v.resources.len(), 11);
        let ids: Vec<&str> = v
            .resources
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "fresh ids: {ids:?}");
    }

    #[test]
    fn the_wound_note_and_task_are_shaped_like_the_region_writes_them() {
        let v = build_visit(&form(), &[task()], &ctx(), &mut ids()).unwrap();
        let wound = v
            .resources
            .iter()
            .find(|r| r["code"]["text"] == "Wound assessment")
            .unwrap();
        assert_eq!(wound["category"][0]["coding"][0]["code"], "exam");
        assert_eq!(wound["bodySite"]["text"], "Left lower leg, gaiter area");
        assert_eq!(wound["component"].as_array().unwrap().len(), 2);
        assert_eq!(
            wound["component"][0]["code"]["coding"][0]["code"],
            LOINC_WOUND_LENGTH
        );
        assert_eq!(
            wound["component"][0]["valueQuantity"]["value"].to_string(),
            "4.20"
        );
        assert_eq!(wound["note"][0]["text"], "Granulating, moderate exudate.");

        let doc = v
            .resources
            .iter()
            .find(|r| r["resourceType"] == "DocumentReference")
            .unwrap();
        assert_eq!(doc["type"]["coding"][0]["code"], LOINC_NURSE_NOTE);
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["author"][0]["reference"], "PractitionerRole/role-amy");
        assert_eq!(
            crate::summary::document_text(doc).as_deref(),
            Some("Seen at home. Dressing changed.")
        );

        let t = v.resources.last().unwrap();
        assert_eq!(t["resourceType"], "Task");
        assert_eq!(t["status"], "completed");
        assert_eq!(t["executionPeriod"]["start"], "2026-11-20T09:00:00Z");
        assert_eq!(t["executionPeriod"]["end"], "2026-11-26T10:40:00Z");
        assert_eq!(t["lastModified"], "2026-11-26T10:40:00Z");
        assert_eq!(t["meta"]["versionId"], "3", "the rest is kept");
    }

    #[test]
    fn an_incomplete_set_saves_without_a_total() {
        let mut f = form();
        f.observations.temperature.clear();
        f.wound = None;
        let v = build_visit(&f, &[task()], &ctx(), &mut ids()).unwrap();
        assert_eq!(v.news2_total, None);
        assert!(v
            .resources
            .iter()
            .all(|r| r["code"]["coding"][0]["code"] != "1104051000000101"));
    }

    #[test]
    fn a_refused_value_builds_nothing_and_names_the_field() {
        let calls = std::cell::Cell::new(0);
        let mut counting = || {
            calls.set(calls.get() + 1);
            format!("id-{}", calls.get())
        };
        let mut f = form();
        f.observations.pulse = "fast".into();
        let e = build_visit(&f, &[task()], &ctx(), &mut counting).unwrap_err();
        assert_eq!(e.code, "invalid-input");
        assert!(e.message.starts_with("pulse:"), "{}", e.message);

        let mut f = form();
        f.wound.as_mut().unwrap().width_cm = "-2".into();
        let e = build_visit(&f, &[task()], &ctx(), &mut counting).unwrap_err();
        assert!(e.message.starts_with("wound.width_cm:"), "{}", e.message);

        let mut f = form();
        f.completed_tasks = vec!["nope".into()];
        let e = build_visit(&f, &[task()], &ctx(), &mut counting).unwrap_err();
        assert!(e.message.starts_with("completed_tasks:"), "{}", e.message);
        assert_eq!(calls.get(), 0, "no id was even asked for");

        let empty = VisitForm {
            patient_id: "p1".into(),
            ..VisitForm::default()
        };
        assert!(build_visit(&empty, &[], &ctx(), &mut ids()).is_err());
    }
}
