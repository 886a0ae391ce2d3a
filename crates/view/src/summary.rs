//! FHIR to screen: the caseload rows and the patient summary, built from the
//! resources the replica holds (queued local edits already laid over their
//! synced copies by the caller, each marked `pending`).
//!
//! Everything here reads plain FHIR R4 JSON as the region writes it (see
//! `careshare-demo`'s conventions): the NHS number is the `Patient.identifier`
//! with system [`NHS_NUMBER_SYSTEM`], the authoring organisation is
//! `meta.source` = `Organization/<id>`, vital signs use the codes
//! `careshare-news2` reads. Nothing reads the clock: `now` and the local UTC
//! offset are passed in.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use careshare_news2::{from_fhir_observations, read_fhir_observation, score, Reading, SpO2Scale};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::Value;

use crate::api::{
    CaseloadRow, DocumentEntry, Entry, PatientSummary, Source, TaskEntry, VitalPoint, VitalSeries,
};
use crate::format;

/// Identifier system of NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// SNOMED CT.
const SNOMED: &str = "http://snomed.info/sct";
/// SNOMED CT NEWS2 total score (UK edition).
const NEWS2_TOTAL: &str = "1104051000000101";

/// How many observation sets [`PatientSummary::recent_observations`] lists.
pub const RECENT_OBSERVATION_SETS: usize = 5;

/// One resource as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The resource (a queued edit's version when there is one).
    pub resource: Value,
    /// Whether a local edit not yet accepted by the hub is shown.
    pub pending: bool,
}

impl Held {
    /// A synced resource.
    pub fn synced(resource: Value) -> Held {
        Held {
            resource,
            pending: false,
        }
    }

    fn kind(&self) -> &str {
        str_at(&self.resource, "resourceType").unwrap_or("")
    }
}

/// Who wrote what: organisation names and the user's own organisation.
#[derive(Debug, Clone, Copy)]
pub struct Authors<'a> {
    /// `Organization.id` → name.
    pub names: &'a HashMap<String, String>,
    /// The user's own `Organization.id`, when known.
    pub own: Option<&'a str>,
}

/// The time the screen is built at.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now.
    pub now: DateTime<Utc>,
    /// The UTC offset of the user's local time (for "today").
    pub offset: FixedOffset,
}

impl Clock {
    /// Today, in local time.
    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.offset).date_naive()
    }
}

/// Facts about a patient that do not come from their own resources.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowFacts {
    /// When the patient's data was last brought up to date.
    pub data_as_of: Option<DateTime<Utc>>,
    /// End of a break-glass grant for the patient.
    pub break_glass_until: Option<DateTime<Utc>>,
}

// ------------------------------------------------------------------ helpers

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn nonempty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// A FHIR `date`, `dateTime` or `instant` as an instant (a date alone is its
/// midnight UTC; a year or year-month its first day).
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let date = match text.len() {
        10 => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
        7 => NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok(),
        4 => NaiveDate::parse_from_str(&format!("{text}-01-01"), "%Y-%m-%d").ok(),
        _ => None,
    }?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The words of a CodeableConcept: its text, else the first coding's display,
/// else its code.
pub fn concept_text(concept: Option<&Value>) -> Option<String> {
    let c = concept?;
    if let Some(t) = str_at(c, "text").and_then(nonempty) {
        return Some(t.to_owned());
    }
    let codings = c.get("coding").and_then(Value::as_array)?;
    codings
        .iter()
        .find_map(|k| str_at(k, "display").and_then(nonempty))
        .or_else(|| codings.iter().find_map(|k| str_at(k, "code")))
        .map(str::to_owned)
}

/// The first coding's code of a CodeableConcept.
fn concept_code(concept: Option<&Value>) -> Option<&str> {
    concept?
        .get("coding")?
        .as_array()?
        .iter()
        .find_map(|k| str_at(k, "code"))
}

fn has_coding(concept: Option<&Value>, system: &str, code: &str) -> bool {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|k| str_at(k, "system") == Some(system) && str_at(k, "code") == Some(code))
        })
}

/// A Quantity as "value unit".
pub fn quantity_text(q: &Value) -> Option<String> {
    let value = q.get("value")?;
    let value = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let unit = str_at(q, "unit")
        .or_else(|| str_at(q, "code"))
        .unwrap_or("");
    Some(if unit.is_empty() {
        value
    } else {
        format!("{value} {unit}")
    })
}

fn reference_display(r: Option<&Value>) -> Option<String> {
    let r = r?;
    str_at(r, "display").and_then(nonempty).map(str::to_owned)
}

/// Who wrote a resource, from `meta.source`.
pub fn source(resource: &Value, authors: &Authors<'_>) -> Source {
    let raw = resource
        .get("meta")
        .and_then(|m| str_at(m, "source"))
        .unwrap_or("");
    let id = raw.rsplit_once("Organization/").map_or(raw, |(_, id)| id);
    if id.is_empty() {
        // Written here and not yet stamped by the hub: the user's own.
        let own = authors.own.unwrap_or("");
        return Source {
            organisation: authors.names.get(own).cloned().unwrap_or_else(|| {
                if own.is_empty() {
                    "This device".into()
                } else {
                    own.into()
                }
            }),
            own: true,
        };
    }
    Source {
        organisation: authors
            .names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned()),
        own: authors.own == Some(id),
    }
}

fn reference_of(resource: &Value) -> String {
    format!(
        "{}/{}",
        str_at(resource, "resourceType").unwrap_or(""),
        str_at(resource, "id").unwrap_or("")
    )
}

fn entry(
    held: &Held,
    authors: &Authors<'_>,
    title: String,
    detail: String,
    date: Option<String>,
    status: Option<String>,
) -> Entry {
    Entry {
        reference: reference_of(&held.resource),
        title,
        detail,
        date,
        status,
        source: source(&held.resource, authors),
        pending: held.pending,
    }
}

fn join(parts: impl IntoIterator<Item = Option<String>>) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Newest first by the given date, then by reference.
fn newest_first(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        let ka = a.date.as_deref().and_then(instant);
        let kb = b.date.as_deref().and_then(instant);
        kb.cmp(&ka).then_with(|| a.reference.cmp(&b.reference))
    });
}

// ------------------------------------------------------------------ patient

/// "SURNAME, Given Names" from the official (else first) name.
pub fn patient_name(patient: &Value) -> String {
    let names = patient.get("name").and_then(Value::as_array);
    let name = names.and_then(|ns| {
        ns.iter()
            .find(|n| str_at(n, "use") == Some("official"))
            .or_else(|| ns.first())
    });
    let Some(name) = name else {
        return String::new();
    };
    let family = str_at(name, "family").unwrap_or("").trim().to_uppercase();
    let given = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    match (family.is_empty(), given.is_empty()) {
        (false, false) => format!("{family}, {given}"),
        (false, true) => family,
        (true, false) => given,
        (true, true) => str_at(name, "text").unwrap_or("").to_owned(),
    }
}

/// The patient's NHS number as recorded (digits), if any.
pub fn nhs_number(patient: &Value) -> Option<String> {
    patient
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|i| str_at(i, "system") == Some(NHS_NUMBER_SYSTEM))
        .and_then(|i| str_at(i, "value"))
        .map(str::to_owned)
}

/// The one-line home address and its postcode.
pub fn address(patient: &Value) -> (String, String) {
    let addresses = patient.get("address").and_then(Value::as_array);
    let Some(a) = addresses.and_then(|all| {
        all.iter()
            .find(|a| str_at(a, "use") == Some("home"))
            .or_else(|| all.first())
    }) else {
        return (String::new(), String::new());
    };
    let mut parts: Vec<String> = a
        .get("line")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .filter_map(nonempty)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let postcode = str_at(a, "postalCode").unwrap_or("").trim().to_owned();
    let town = str_at(a, "city").unwrap_or("").trim();
    let last = [town, postcode.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if !last.is_empty() {
        parts.push(last);
    }
    if parts.is_empty() {
        if let Some(text) = str_at(a, "text") {
            parts.push(text.to_owned());
        }
    }
    (parts.join(", "), postcode)
}

/// Whether a Flag is in force.
pub fn is_active_flag(flag: &Value) -> bool {
    str_at(flag, "status").is_none_or(|s| s == "active")
}

/// Whether a Task is still to be done.
pub fn is_open_task(task: &Value) -> bool {
    !matches!(
        str_at(task, "status"),
        Some("completed" | "cancelled" | "rejected" | "failed" | "entered-in-error")
    )
}

/// The start of an Appointment that is booked (or arrived) for `today`
/// (local date).
pub fn visit_start_today(
    appointment: &Value,
    today: NaiveDate,
    offset: FixedOffset,
) -> Option<DateTime<Utc>> {
    if !matches!(str_at(appointment, "status"), Some("booked" | "arrived")) {
        return None;
    }
    let start = DateTime::parse_from_rfc3339(str_at(appointment, "start")?).ok()?;
    (start.with_timezone(&offset).date_naive() == today).then(|| start.with_timezone(&Utc))
}

/// The caseload row of a patient from their own resources (the Patient and
/// at least their Flags, Tasks and Appointments).
pub fn caseload_row(
    patient: &Value,
    records: &[Held],
    facts: RowFacts,
    clock: &Clock,
) -> CaseloadRow {
    let today = clock.today();
    let alerts = records
        .iter()
        .filter(|h| h.kind() == "Flag" && is_active_flag(&h.resource))
        .count();
    let open_tasks = records
        .iter()
        .filter(|h| h.kind() == "Task" && is_open_task(&h.resource))
        .count();
    let visit_today = records
        .iter()
        .filter(|h| h.kind() == "Appointment")
        .filter_map(|h| visit_start_today(&h.resource, today, clock.offset))
        .min();
    let birth_date = str_at(patient, "birthDate").map(str::to_owned);
    let (address, postcode) = address(patient);
    CaseloadRow {
        patient_id: str_at(patient, "id").unwrap_or("").to_owned(),
        name: patient_name(patient),
        nhs_number: nhs_number(patient)
            .map(|n| format::nhs_number(&n))
            .unwrap_or_default(),
        age: birth_date.as_deref().and_then(|b| format::age(b, today)),
        birth_date,
        address,
        postcode,
        alerts: u32::try_from(alerts).unwrap_or(u32::MAX),
        visit_today,
        open_tasks: u32::try_from(open_tasks).unwrap_or(u32::MAX),
        data_as_of: facts.data_as_of,
        break_glass_until: facts.break_glass_until,
    }
}

/// Sorts the caseload: today's visits first by time, then everyone by name
/// (then id, so the order is stable).
pub fn sort_caseload(rows: &mut [CaseloadRow]) {
    rows.sort_by(|a, b| {
        let visit = match (a.visit_today, b.visit_today) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        visit
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.patient_id.cmp(&b.patient_id))
    });
}

// ------------------------------------------------------------------ entries

fn flag_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let category = r
        .get("category")
        .and_then(Value::as_array)
        .and_then(|c| concept_text(c.first()));
    entry(
        h,
        a,
        concept_text(r.get("code")).unwrap_or_else(|| "Alert".into()),
        join([category]),
        r.get("period")
            .and_then(|p| str_at(p, "start"))
            .map(str::to_owned),
        str_at(r, "status").map(str::to_owned),
    )
}

fn allergy_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let substance = concept_text(r.get("code")).unwrap_or_else(|| "Allergy".into());
    let reactions: Vec<String> = r
        .get("reaction")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|rx| {
            rx.get("manifestation")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| concept_text(Some(m)))
        })
        .collect();
    let title = if reactions.is_empty() {
        substance
    } else {
        format!("{substance} — {}", reactions.join(", ").to_lowercase())
    };
    let severity = r
        .get("reaction")
        .and_then(Value::as_array)
        .and_then(|rx| rx.iter().find_map(|x| str_at(x, "severity")))
        .map(|s| format!("Reaction {s}"));
    let detail = join([
        str_at(r, "criticality").map(|c| format!("Criticality {c}")),
        severity,
        concept_code(r.get("verificationStatus")).map(str::to_owned),
    ]);
    entry(
        h,
        a,
        title,
        detail,
        str_at(r, "recordedDate")
            .or_else(|| str_at(r, "onsetDateTime"))
            .map(str::to_owned),
        concept_code(r.get("clinicalStatus")).map(str::to_owned),
    )
}

fn is_current_allergy(r: &Value) -> bool {
    concept_code(r.get("clinicalStatus")).is_none_or(|s| s == "active")
        && concept_code(r.get("verificationStatus"))
            .is_none_or(|s| s != "entered-in-error" && s != "refuted")
}

fn is_active_condition(r: &Value) -> bool {
    concept_code(r.get("clinicalStatus"))
        .is_none_or(|s| matches!(s, "active" | "recurrence" | "relapse"))
        && concept_code(r.get("verificationStatus"))
            .is_none_or(|s| s != "entered-in-error" && s != "refuted")
}

fn condition_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let onset = str_at(r, "onsetDateTime")
        .or_else(|| r.get("onsetPeriod").and_then(|p| str_at(p, "start")))
        .map(str::to_owned);
    let detail = join([
        concept_code(r.get("verificationStatus")).map(capitalise),
        onset.as_ref().map(|o| format!("since {o}")),
    ]);
    entry(
        h,
        a,
        concept_text(r.get("code")).unwrap_or_else(|| "Condition".into()),
        detail,
        onset.or_else(|| str_at(r, "recordedDate").map(str::to_owned)),
        concept_code(r.get("clinicalStatus")).map(str::to_owned),
    )
}

fn is_current_medicine(r: &Value) -> bool {
    matches!(
        str_at(r, "status"),
        None | Some("active" | "intended" | "on-hold")
    )
}

fn medicine_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let name = concept_text(r.get("medicationCodeableConcept"))
        .or_else(|| reference_display(r.get("medicationReference")))
        .unwrap_or_else(|| "Medicine".into());
    let dosage_key = if h.kind() == "MedicationRequest" {
        "dosageInstruction"
    } else {
        "dosage"
    };
    let dosage = r
        .get(dosage_key)
        .and_then(Value::as_array)
        .and_then(|d| d.iter().find_map(|x| str_at(x, "text")))
        .map(str::to_owned);
    let (kind, date) = if h.kind() == "MedicationRequest" {
        ("Prescribed", str_at(r, "authoredOn"))
    } else {
        (
            "Taking",
            r.get("effectivePeriod")
                .and_then(|p| str_at(p, "start"))
                .or_else(|| str_at(r, "effectiveDateTime"))
                .or_else(|| str_at(r, "dateAsserted")),
        )
    };
    entry(
        h,
        a,
        name,
        join([dosage, Some(kind.to_owned())]),
        date.map(str::to_owned),
        str_at(r, "status").map(str::to_owned),
    )
}

fn care_plan_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let title = str_at(r, "title")
        .map(str::to_owned)
        .or_else(|| {
            r.get("category")
                .and_then(Value::as_array)
                .and_then(|c| concept_text(c.first()))
        })
        .unwrap_or_else(|| "Care plan".into());
    let activities: Vec<String> = r
        .get("activity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|act| {
            let d = act.get("detail")?;
            let what = concept_text(d.get("code"))?;
            Some(match str_at(d, "description") {
                Some(desc) => format!("{what}: {desc}"),
                None => what,
            })
        })
        .collect();
    let mut detail = str_at(r, "description").unwrap_or("").to_owned();
    for act in activities {
        if !detail.is_empty() {
            detail.push('\n');
        }
        detail.push_str(&act);
    }
    entry(
        h,
        a,
        title,
        detail,
        r.get("period")
            .and_then(|p| str_at(p, "start"))
            .or_else(|| str_at(r, "created"))
            .map(str::to_owned),
        str_at(r, "status").map(str::to_owned),
    )
}

/// The words of a Task: its description, else its code.
pub fn task_title(r: &Value) -> String {
    str_at(r, "description")
        .and_then(nonempty)
        .map(str::to_owned)
        .or_else(|| concept_text(r.get("code")))
        .unwrap_or_else(|| "Task".into())
}

fn task_due(r: &Value) -> Option<&str> {
    r.get("restriction")
        .and_then(|x| x.get("period"))
        .and_then(|p| str_at(p, "end"))
}

fn task_entry(h: &Held, a: &Authors<'_>) -> TaskEntry {
    let r = &h.resource;
    let open = is_open_task(r);
    let due = task_due(r).map(|d| format!("due {d}"));
    let owner = reference_display(r.get("owner")).map(|o| format!("owner {o}"));
    let done = (!open)
        .then(|| {
            r.get("executionPeriod")
                .and_then(|p| str_at(p, "end"))
                .or_else(|| str_at(r, "lastModified"))
                .map(|d| format!("{} {d}", str_at(r, "status").unwrap_or("done")))
        })
        .flatten();
    let priority = str_at(r, "priority")
        .filter(|p| *p != "routine")
        .map(capitalise);
    let date = if open {
        task_due(r).or_else(|| str_at(r, "authoredOn"))
    } else {
        r.get("executionPeriod")
            .and_then(|p| str_at(p, "end"))
            .or_else(|| str_at(r, "lastModified"))
    };
    TaskEntry {
        entry: entry(
            h,
            a,
            task_title(r),
            join([priority, due, done, owner]),
            date.map(str::to_owned),
            str_at(r, "status").map(str::to_owned),
        ),
        id: str_at(r, "id").unwrap_or("").to_owned(),
        open,
    }
}

/// The plain text of a DocumentReference's first inline text attachment.
pub fn document_text(r: &Value) -> Option<String> {
    r.get("content")?.as_array()?.iter().find_map(|c| {
        let att = c.get("attachment")?;
        let kind = str_at(att, "contentType").unwrap_or("");
        if !kind.starts_with("text/plain") {
            return None;
        }
        let data = str_at(att, "data")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        String::from_utf8(bytes).ok()
    })
}

fn document_entry(h: &Held, a: &Authors<'_>) -> DocumentEntry {
    let r = &h.resource;
    let kind = concept_text(r.get("type"));
    let category = r
        .get("category")
        .and_then(Value::as_array)
        .and_then(|c| concept_text(c.first()));
    let title = str_at(r, "description")
        .and_then(nonempty)
        .map(str::to_owned)
        .or_else(|| {
            r.get("content")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(|c| c.get("attachment"))
                .and_then(|att| str_at(att, "title"))
                .map(str::to_owned)
        })
        .or_else(|| kind.clone())
        .unwrap_or_else(|| "Document".into());
    let author = r
        .get("author")
        .and_then(Value::as_array)
        .and_then(|au| reference_display(au.first()));
    DocumentEntry {
        entry: entry(
            h,
            a,
            title,
            join([category.or(kind), author]),
            str_at(r, "date").map(str::to_owned),
            str_at(r, "docStatus")
                .or_else(|| str_at(r, "status"))
                .map(str::to_owned),
        ),
        text: document_text(r),
    }
}

fn appointment_entry(h: &Held, a: &Authors<'_>) -> Entry {
    let r = &h.resource;
    let title = str_at(r, "description")
        .map(str::to_owned)
        .or_else(|| {
            r.get("serviceType")
                .and_then(Value::as_array)
                .and_then(|s| concept_text(s.first()))
        })
        .unwrap_or_else(|| "Visit".into());
    let with: Vec<String> = r
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("actor"))
        .filter(|actor| !str_at(actor, "reference").is_some_and(|s| s.starts_with("Patient/")))
        .filter_map(|actor| reference_display(Some(actor)))
        .collect();
    let detail = join([
        (!with.is_empty()).then(|| format!("with {}", with.join(", "))),
        str_at(r, "end").map(|e| format!("until {e}")),
    ]);
    entry(
        h,
        a,
        title,
        detail,
        str_at(r, "start").map(str::to_owned),
        str_at(r, "status").map(str::to_owned),
    )
}

// --------------------------------------------------------------- observations

fn effective(obs: &Value) -> Option<(String, DateTime<Utc>)> {
    let text = str_at(obs, "effectiveDateTime")
        .or_else(|| obs.get("effectivePeriod").and_then(|p| str_at(p, "start")))
        .or_else(|| str_at(obs, "issued"))?;
    Some((text.to_owned(), instant(text)?))
}

fn is_news2_total(obs: &Value) -> bool {
    has_coding(obs.get("code"), SNOMED, NEWS2_TOTAL)
}

/// One observation set: the observations of a patient taken at one time.
struct ObservationSet<'a> {
    at: DateTime<Utc>,
    text: String,
    members: Vec<&'a Held>,
}

impl ObservationSet<'_> {
    fn pending(&self) -> bool {
        self.members.iter().any(|h| h.pending)
    }

    /// The set's NEWS2 total: a recorded score, else the score of a
    /// complete set of the seven parameters.
    fn news2(&self) -> Option<u8> {
        if let Some(total) = self.members.iter().find_map(|h| {
            is_news2_total(&h.resource)
                .then(|| h.resource.get("valueQuantity")?.get("value")?.as_u64())
                .flatten()
        }) {
            return u8::try_from(total).ok();
        }
        let resources: Vec<Value> = self.members.iter().map(|h| h.resource.clone()).collect();
        let observations = from_fhir_observations(&resources).ok()?;
        score(&observations).total()
    }
}

/// Observations grouped by effective time, oldest first (usable statuses
/// only).
fn observation_sets(observations: &[Held]) -> Vec<ObservationSet<'_>> {
    let mut sets: BTreeMap<DateTime<Utc>, ObservationSet<'_>> = BTreeMap::new();
    for h in observations {
        let r = &h.resource;
        if matches!(
            str_at(r, "status"),
            Some("entered-in-error" | "cancelled" | "registered")
        ) {
            continue;
        }
        let Some((text, at)) = effective(r) else {
            continue;
        };
        sets.entry(at)
            .or_insert_with(|| ObservationSet {
                at,
                text,
                members: Vec::new(),
            })
            .members
            .push(h);
    }
    sets.into_values().collect()
}

/// "Label value" of one observation.
fn observation_line(r: &Value) -> Option<String> {
    let label = concept_text(r.get("code")).unwrap_or_else(|| "Observation".into());
    let value = if let Some(q) = r.get("valueQuantity") {
        quantity_text(q)
    } else if let Some(c) = r.get("valueCodeableConcept") {
        concept_text(Some(c))
    } else if let Some(s) = str_at(r, "valueString") {
        Some(s.to_owned())
    } else if let Some(components) = r.get("component").and_then(Value::as_array) {
        let values: Vec<String> = components
            .iter()
            .filter_map(|c| c.get("valueQuantity")?.get("value"))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        let unit = components
            .iter()
            .find_map(|c| c.get("valueQuantity").and_then(|q| str_at(q, "unit")))
            .unwrap_or("");
        (!values.is_empty()).then(|| format!("{} {unit}", values.join("/")).trim().to_owned())
    } else {
        None
    }?;
    Some(format!("{label} {value}"))
}

/// The vital-sign series (NEWS2 first), oldest first.
fn vital_series(sets: &[ObservationSet<'_>]) -> Vec<VitalSeries> {
    let mut series: Vec<VitalSeries> = [
        ("news2", "NEWS2", ""),
        ("respiration-rate", "Respiration rate", "/min"),
        ("spo2", "SpO2", "%"),
        ("systolic-bp", "Systolic blood pressure", "mmHg"),
        ("pulse", "Pulse", "/min"),
        ("temperature", "Temperature", "°C"),
    ]
    .iter()
    .map(|(key, label, unit)| VitalSeries {
        key: (*key).into(),
        label: (*label).into(),
        unit: (*unit).into(),
        points: Vec::new(),
    })
    .collect();
    for set in sets {
        let point = |value: f64, pending: bool| VitalPoint {
            at: set.at,
            value,
            pending,
        };
        if let Some(total) = set.news2() {
            series[0]
                .points
                .push(point(f64::from(total), set.pending()));
        }
        for h in &set.members {
            for reading in read_fhir_observation(&h.resource).unwrap_or_default() {
                let (index, value) = match reading {
                    Reading::RespirationRate(v) => (1, f64::from(v.breaths_per_minute())),
                    Reading::OxygenSaturation(v) => (2, f64::from(v.percent())),
                    Reading::SystolicBp(v) => (3, f64::from(v.mmhg())),
                    Reading::Pulse(v) => (4, f64::from(v.beats_per_minute())),
                    Reading::Temperature(v) => (5, v.celsius()),
                    _ => continue,
                };
                let points = &mut series[index].points;
                // One point per series per set (the first reading wins).
                if points.last().is_none_or(|p| p.at != set.at) {
                    points.push(point(value, h.pending));
                }
            }
        }
    }
    series
}

/// Whether the newest observation that names an SpO2 scale names scale 2
/// (a prescribed target of 88–92 %).
fn spo2_scale2(sets: &[ObservationSet<'_>]) -> bool {
    for set in sets.iter().rev() {
        for h in &set.members {
            for reading in read_fhir_observation(&h.resource).unwrap_or_default() {
                if let Reading::SpO2Scale(scale) = reading {
                    return scale == SpO2Scale::Scale2;
                }
            }
        }
    }
    false
}

fn observation_set_entry(set: &ObservationSet<'_>, a: &Authors<'_>) -> Option<Entry> {
    let first = set.members.first()?;
    let lines: Vec<String> = set
        .members
        .iter()
        .filter(|h| !is_news2_total(&h.resource))
        .filter_map(|h| observation_line(&h.resource))
        .collect();
    let title = match set.news2() {
        Some(total) => format!("NEWS2 {total}"),
        None if set.members.len() == 1 => {
            concept_text(first.resource.get("code")).unwrap_or_else(|| "Observation".into())
        }
        None => "Observations".into(),
    };
    let performer = first
        .resource
        .get("performer")
        .and_then(Value::as_array)
        .and_then(|p| reference_display(p.first()));
    let mut e = entry(
        first,
        a,
        title,
        join([
            Some(lines.join(" · ")),
            performer.map(|p| format!("by {p}")),
        ]),
        Some(set.text.clone()),
        str_at(&first.resource, "status").map(str::to_owned),
    );
    e.pending = set.pending();
    Some(e)
}

// ------------------------------------------------------------------ summary

/// What a patient summary is built from.
#[derive(Debug, Clone, Copy)]
pub struct SummaryInput<'a> {
    /// The Patient.
    pub patient: &'a Value,
    /// The patient's other resources but their observations.
    pub records: &'a [Held],
    /// The patient's observations (as many as the trend chart should show).
    pub observations: &'a [Held],
    /// Facts from outside the record.
    pub facts: RowFacts,
    /// Who wrote what.
    pub authors: Authors<'a>,
    /// Now, and local time.
    pub clock: Clock,
}

/// The patient summary, in the order the screen shows it.
pub fn patient_summary(input: &SummaryInput<'_>) -> PatientSummary {
    let a = &input.authors;
    let of = |kind: &'static str| input.records.iter().filter(move |h| h.kind() == kind);

    let mut alerts: Vec<Entry> = of("Flag")
        .filter(|h| is_active_flag(&h.resource))
        .map(|h| flag_entry(h, a))
        .collect();
    newest_first(&mut alerts);
    let mut allergies: Vec<Entry> = of("AllergyIntolerance")
        .filter(|h| is_current_allergy(&h.resource))
        .map(|h| allergy_entry(h, a))
        .collect();
    // The most dangerous first.
    allergies.sort_by_key(|e| !e.detail.contains("Criticality high"));
    let mut conditions: Vec<Entry> = of("Condition")
        .filter(|h| is_active_condition(&h.resource))
        .map(|h| condition_entry(h, a))
        .collect();
    newest_first(&mut conditions);
    let mut medicines: Vec<Entry> = input
        .records
        .iter()
        .filter(|h| matches!(h.kind(), "MedicationStatement" | "MedicationRequest"))
        .filter(|h| is_current_medicine(&h.resource))
        .map(|h| medicine_entry(h, a))
        .collect();
    medicines.sort_by(|x, y| {
        x.title
            .cmp(&y.title)
            .then_with(|| x.reference.cmp(&y.reference))
    });
    let mut care_plans: Vec<Entry> = of("CarePlan").map(|h| care_plan_entry(h, a)).collect();
    care_plans.sort_by_key(|e| e.status.as_deref() != Some("active"));

    let mut tasks: Vec<TaskEntry> = of("Task").map(|h| task_entry(h, a)).collect();
    tasks.sort_by(|x, y| {
        let kx = x.entry.date.as_deref().and_then(instant);
        let ky = y.entry.date.as_deref().and_then(instant);
        y.open.cmp(&x.open).then_with(|| {
            if x.open {
                // Open: soonest due first.
                kx.cmp(&ky)
            } else {
                ky.cmp(&kx)
            }
        })
    });

    let mut documents: Vec<DocumentEntry> = of("DocumentReference")
        .filter(|h| str_at(&h.resource, "status") != Some("entered-in-error"))
        .map(|h| document_entry(h, a))
        .collect();
    documents.sort_by(|x, y| {
        let kx = x.entry.date.as_deref().and_then(instant);
        let ky = y.entry.date.as_deref().and_then(instant);
        ky.cmp(&kx)
            .then_with(|| x.entry.reference.cmp(&y.entry.reference))
    });

    let today_start = input
        .clock
        .today()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(input.clock.offset).single())
        .map(|t| t.with_timezone(&Utc));
    let mut visits: Vec<(DateTime<Utc>, Entry)> = of("Appointment")
        .filter(|h| {
            matches!(
                str_at(&h.resource, "status"),
                Some("booked" | "arrived" | "pending" | "proposed" | "checked-in")
            )
        })
        .filter_map(|h| {
            let start = instant(str_at(&h.resource, "start")?)?;
            today_start
                .is_none_or(|t| start >= t)
                .then(|| (start, appointment_entry(h, a)))
        })
        .collect();
    visits.sort_by(|x, y| {
        x.0.cmp(&y.0)
            .then_with(|| x.1.reference.cmp(&y.1.reference))
    });

    let sets = observation_sets(input.observations);
    let vitals = vital_series(&sets);
    let recent_observations = sets
        .iter()
        .rev()
        .take(RECENT_OBSERVATION_SETS)
        .filter_map(|s| observation_set_entry(s, a))
        .collect();

    PatientSummary {
        patient: caseload_row(input.patient, input.records, input.facts, &input.clock),
        alerts,
        allergies,
        conditions,
        medicines,
        vitals,
        recent_observations,
        care_plans,
        tasks,
        documents,
        visits: visits.into_iter().map(|(_, e)| e).collect(),
        spo2_scale2: spo2_scale2(&sets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const TODAY: &str = "2026-11-26";

    fn clock() -> Clock {
        Clock {
            now: Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap(),
            offset: FixedOffset::east_opt(0).unwrap(),
        }
    }

    fn names() -> HashMap<String, String> {
        [
            ("org-community", "Ravensdale Community Health"),
            ("org-gp-1", "Mill Lane Surgery"),
            ("org-council", "Ravensdale Council"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"source": "Organization/org-gp-1"},
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9990001234"}],
            "active": true,
            "name": [{"use": "official", "family": "Khan", "given": ["Amira", "Bibi"]}],
            "gender": "female",
            "birthDate": "1941-03-09",
            "address": [{"use": "home", "type": "physical", "line": ["12 Mill Lane"],
                "city": "Hexham", "postalCode": "NE46 3AB", "country": "GB"}]
        })
    }

    fn subject() -> Value {
        json!({"reference": "Patient/p1", "display": "Amira Khan"})
    }

    fn concept(system: &str, code: &str, display: &str) -> Value {
        json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
    }

    fn loinc(code: &str, display: &str) -> Value {
        concept("http://loinc.org", code, display)
    }

    fn qty(value: &str, unit: &str, code: &str) -> Value {
        json!({"value": serde_json::from_str::<Value>(value).unwrap(), "unit": unit,
            "system": "http://unitsofmeasure.org", "code": code})
    }

    /// A demo-style visit: the seven NEWS2 parameters at `at`.
    #[allow(clippy::too_many_arguments)]
    fn visit(
        n: u32,
        at: &str,
        rr: &str,
        spo2: &str,
        hr: &str,
        sys: &str,
        temp: &str,
        oxygen: bool,
    ) -> Vec<Value> {
        let common = |suffix: &str, code: Value| {
            json!({
                "resourceType": "Observation",
                "id": format!("p1-visit-{n:03}-{suffix}"),
                "meta": {"source": "Organization/org-community"},
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
                "code": code,
                "subject": subject(),
                "effectiveDateTime": at,
                "performer": [{"reference": "PractitionerRole/role-amy", "display": "Amy Khan"}]
            })
        };
        let with = |mut v: Value, key: &str, value: Value| {
            v[key] = value;
            v
        };
        vec![
            with(
                common("rr", loinc("9279-1", "Respiratory rate")),
                "valueQuantity",
                qty(rr, "breaths/minute", "/min"),
            ),
            with(
                common(
                    "spo2",
                    loinc(
                        "59408-5",
                        "Oxygen saturation in Arterial blood by Pulse oximetry",
                    ),
                ),
                "valueQuantity",
                qty(spo2, "%", "%"),
            ),
            with(
                common("hr", loinc("8867-4", "Heart rate")),
                "valueQuantity",
                qty(hr, "beats/minute", "/min"),
            ),
            with(
                common(
                    "bp",
                    loinc("85354-9", "Blood pressure panel with all children optional"),
                ),
                "component",
                json!([
                    {"code": loinc("8480-6", "Systolic blood pressure"), "valueQuantity": qty(sys, "mmHg", "mm[Hg]")},
                    {"code": loinc("8462-4", "Diastolic blood pressure"), "valueQuantity": qty("70", "mmHg", "mm[Hg]")}
                ]),
            ),
            with(
                common("temp", loinc("8310-5", "Body temperature")),
                "valueQuantity",
                qty(temp, "°C", "Cel"),
            ),
            with(
                common(
                    "acvpu",
                    concept(
                        SNOMED,
                        "1104441000000107",
                        "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score",
                    ),
                ),
                "valueCodeableConcept",
                concept(SNOMED, "248234008", "Alert"),
            ),
            with(
                common(
                    "o2",
                    json!({"coding": [{"system": SNOMED, "code": "371825009", "display": "Patient on oxygen"}], "text": "Air or oxygen"}),
                ),
                "valueCodeableConcept",
                if oxygen {
                    concept(SNOMED, "373066001", "Yes")
                } else {
                    concept(SNOMED, "373067005", "No")
                },
            ),
        ]
    }

    fn records() -> Vec<Held> {
        let r = vec![
            json!({"resourceType": "Flag", "id": "p1-flag-1", "meta": {"source": "Organization/org-council"},
                "status": "active",
                "category": [concept("http://terminology.hl7.org/CodeSystem/flag-category", "safety", "Safety")],
                "code": {"text": "Dog in the property — ask for it to be shut away before entering"},
                "subject": subject(), "period": {"start": "2026-01-02"},
                "author": {"reference": "Organization/org-council"}}),
            json!({"resourceType": "Flag", "id": "p1-flag-old", "meta": {"source": "Organization/org-gp-1"},
                "status": "inactive", "code": {"text": "Old alert"}, "subject": subject()}),
            json!({"resourceType": "AllergyIntolerance", "id": "p1-allergy-1", "meta": {"source": "Organization/org-gp-1"},
                "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
                "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
                "type": "allergy", "category": ["medication"], "criticality": "high",
                "code": concept(SNOMED, "91936005", "Penicillin"),
                "patient": subject(), "recordedDate": "1990-04-01",
                "reaction": [{"manifestation": [concept(SNOMED, "39579001", "Anaphylaxis")], "severity": "severe"}]}),
            json!({"resourceType": "Condition", "id": "p1-cond-1", "meta": {"source": "Organization/org-gp-1"},
                "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
                "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
                "code": concept(SNOMED, "402863001", "Venous leg ulcer"),
                "subject": subject(), "onsetDateTime": "2026-05-01"}),
            json!({"resourceType": "Condition", "id": "p1-cond-2", "meta": {"source": "Organization/org-gp-1"},
                "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved", "Resolved"),
                "code": concept(SNOMED, "195662009", "Acute viral pharyngitis"), "subject": subject()}),
            json!({"resourceType": "MedicationStatement", "id": "p1-medstmt-7", "meta": {"source": "Organization/org-gp-1"},
                "status": "active", "medicationCodeableConcept": concept(SNOMED, "322236009", "Paracetamol 500mg tablets"),
                "subject": subject(), "effectivePeriod": {"start": "2026-05-10"},
                "dosage": [{"text": "Two tablets four times a day when required"}]}),
            json!({"resourceType": "CarePlan", "id": "p1-dn-careplan", "meta": {"source": "Organization/org-community"},
                "status": "active", "intent": "plan", "title": "District nursing care plan: Venous leg ulcer",
                "description": "Heal venous leg ulcer with compression therapy.",
                "subject": subject(), "period": {"start": "2026-05-20"},
                "activity": [{"detail": {"code": concept(SNOMED, "225358003", "Wound care"), "status": "in-progress",
                    "description": "Cleanse, dress and apply two-layer compression twice a week."}}]}),
            json!({"resourceType": "Task", "id": "p1-task-1", "meta": {"source": "Organization/org-community"},
                "status": "requested", "intent": "order", "priority": "routine",
                "description": "Redress leg ulcer and reapply compression", "for": subject(),
                "authoredOn": "2026-06-01T10:00:00+01:00",
                "restriction": {"period": {"end": "2026-11-26T17:00:00+00:00"}}}),
            json!({"resourceType": "Task", "id": "p1-task-2", "meta": {"source": "Organization/org-community"},
                "status": "completed", "intent": "order", "description": "Order compression bandages", "for": subject(),
                "authoredOn": "2026-06-01T10:00:00+01:00", "lastModified": "2026-06-05T10:00:00+01:00",
                "executionPeriod": {"start": "2026-06-01T10:00:00+01:00", "end": "2026-06-05T10:00:00+01:00"}}),
            json!({"resourceType": "DocumentReference", "id": "p1-hosp-1-summary", "meta": {"source": "Organization/org-hospital"},
                "status": "current", "docStatus": "final", "type": loinc("18842-5", "Discharge summary"),
                "category": [concept("https://careshare.example.org/fhir/CodeSystem/document-category", "discharge-summary", "Discharge summary")],
                "subject": subject(), "date": "2026-11-25T14:20:00+00:00",
                "author": [{"reference": "PractitionerRole/role-dr", "display": "Dr Lee"}],
                "description": "Discharge summary: Cellulitis",
                "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "language": "en-GB",
                    "data": "RElTQ0hBUkdFIFNVTU1BUlkKRm9sbG93LXVwOiBkaXN0cmljdCBudXJzZXMu", "title": "Discharge summary: Cellulitis"}}]}),
            json!({"resourceType": "Appointment", "id": "p1-visit-today", "meta": {"source": "Organization/org-community"},
                "status": "booked", "serviceType": [{"text": "District nursing"}],
                "description": "Home visit: leg ulcer dressing and compression",
                "start": "2026-11-26T10:30:00+00:00", "end": "2026-11-26T11:00:00+00:00",
                "participant": [{"actor": subject(), "status": "accepted"},
                    {"actor": {"reference": "PractitionerRole/role-amy", "display": "Amy Khan"}, "status": "accepted"}]}),
            json!({"resourceType": "Appointment", "id": "p1-visit-next", "meta": {"source": "Organization/org-community"},
                "status": "booked", "description": "Home visit: leg ulcer dressing and compression",
                "start": "2026-11-29T09:00:00+00:00", "end": "2026-11-29T09:30:00+00:00",
                "participant": [{"actor": subject(), "status": "accepted"}]}),
        ];
        r.into_iter().map(Held::synced).collect()
    }

    fn observations() -> Vec<Held> {
        let mut obs: Vec<Held> = visit(
            1,
            "2026-11-20T10:05:00+00:00",
            "16",
            "96",
            "72",
            "130",
            "36.8",
            false,
        )
        .into_iter()
        .chain(visit(
            2,
            "2026-11-24T10:05:00+00:00",
            "22",
            "95",
            "112",
            "105",
            "38.4",
            false,
        ))
        .map(Held::synced)
        .collect();
        obs.push(Held::synced(json!({"resourceType": "Observation", "id": "p1-weight", "status": "final",
            "meta": {"source": "Organization/org-gp-1"},
            "code": loinc("29463-7", "Body weight"), "subject": subject(),
            "effectiveDateTime": "2026-03-01T09:00:00+00:00", "valueQuantity": qty("64", "kg", "kg")})));
        obs
    }

    fn summary(records: &[Held], observations: &[Held]) -> PatientSummary {
        let names = names();
        let p = patient();
        patient_summary(&SummaryInput {
            patient: &p,
            records,
            observations,
            facts: RowFacts::default(),
            authors: Authors {
                names: &names,
                own: Some("org-community"),
            },
            clock: clock(),
        })
    }

    #[test]
    fn the_caseload_row_has_the_formatted_banner_facts() {
        let row = caseload_row(&patient(), &records(), RowFacts::default(), &clock());
        assert_eq!(row.name, "KHAN, Amira Bibi");
        assert_eq!(row.nhs_number, "999 000 1234");
        assert_eq!(row.age, Some(85));
        assert_eq!(row.address, "12 Mill Lane, Hexham NE46 3AB");
        assert_eq!(row.postcode, "NE46 3AB");
        assert_eq!(row.alerts, 1, "the inactive flag is not counted");
        assert_eq!(row.open_tasks, 1);
        assert_eq!(
            row.visit_today,
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap())
        );
        assert_eq!(clock().today().to_string(), TODAY);
    }

    #[test]
    fn a_visit_counts_as_today_in_local_time() {
        let appt = json!({"resourceType": "Appointment", "status": "booked",
            "start": "2026-11-26T23:30:00+00:00"});
        let utc = FixedOffset::east_opt(0).unwrap();
        let ahead = FixedOffset::east_opt(3600).unwrap();
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(visit_start_today(&appt, day("2026-11-26"), utc).is_some());
        assert!(visit_start_today(&appt, day("2026-11-27"), ahead).is_some());
        assert!(visit_start_today(&appt, day("2026-11-26"), ahead).is_none());
        let cancelled = json!({"resourceType": "Appointment", "status": "cancelled",
            "start": "2026-11-26T10:30:00+00:00"});
        assert!(visit_start_today(&cancelled, day("2026-11-26"), utc).is_none());
    }

    #[test]
    fn the_caseload_puts_todays_visits_first_by_time_then_names() {
        let row = |id: &str, name: &str, visit: Option<u32>| CaseloadRow {
            patient_id: id.into(),
            name: name.into(),
            nhs_number: String::new(),
            birth_date: None,
            age: None,
            address: String::new(),
            postcode: String::new(),
            alerts: 0,
            visit_today: visit.map(|h| Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap()),
            open_tasks: 0,
            data_as_of: None,
            break_glass_until: None,
        };
        let mut rows = vec![
            row("a", "ZED, Ann", None),
            row("b", "ABLE, Bob", None),
            row("c", "MOSS, Cat", Some(14)),
            row("d", "YATES, Dan", Some(9)),
        ];
        sort_caseload(&mut rows);
        let order: Vec<_> = rows.iter().map(|r| r.patient_id.as_str()).collect();
        assert_eq!(order, ["d", "c", "b", "a"]);
    }

    #[test]
    fn the_summary_shows_each_section_with_its_source() {
        let s = summary(&records(), &observations());
        assert_eq!(s.patient.nhs_number, "999 000 1234");
        assert_eq!(s.alerts.len(), 1);
        assert!(s.alerts[0].title.starts_with("Dog in the property"));
        assert_eq!(s.alerts[0].source.organisation, "Ravensdale Council");
        assert!(!s.alerts[0].source.own);
        assert_eq!(s.allergies.len(), 1);
        assert_eq!(s.allergies[0].title, "Penicillin — anaphylaxis");
        assert!(s.allergies[0].detail.contains("Criticality high"));
        assert_eq!(s.conditions.len(), 1, "resolved conditions are left out");
        assert_eq!(s.conditions[0].title, "Venous leg ulcer");
        assert_eq!(s.medicines[0].title, "Paracetamol 500mg tablets");
        assert!(s.medicines[0].detail.contains("Two tablets"));
        assert_eq!(
            s.care_plans[0].source.organisation,
            "Ravensdale Community Health"
        );
        assert!(s.care_plans[0].source.own);
        assert!(s.care_plans[0].detail.contains("Wound care"));
        assert_eq!(s.tasks.len(), 2);
        assert!(s.tasks[0].open && !s.tasks[1].open, "open tasks first");
        assert_eq!(s.tasks[0].id, "p1-task-1");
        assert_eq!(s.documents.len(), 1);
        assert_eq!(
            s.documents[0].text.as_deref(),
            Some("DISCHARGE SUMMARY\nFollow-up: district nurses.")
        );
        assert_eq!(
            s.documents[0].entry.source.organisation, "org-hospital",
            "an unknown organisation shows as its id"
        );
        assert_eq!(s.visits.len(), 2);
        assert_eq!(s.visits[0].reference, "Appointment/p1-visit-today");
        assert!(s.visits[0].detail.contains("Amy Khan"));
        assert!(!s.spo2_scale2);
    }

    #[test]
    fn vitals_are_series_with_a_news2_total_per_complete_set() {
        let s = summary(&records(), &observations());
        let series = |key: &str| s.vitals.iter().find(|v| v.key == key).unwrap();
        let news2: Vec<f64> = series("news2").points.iter().map(|p| p.value).collect();
        // Visit 1: all normal on air = 0; visit 2: 7 (as in the NEWS2 form test).
        assert_eq!(news2, [0.0, 7.0]);
        let pulse: Vec<f64> = series("pulse").points.iter().map(|p| p.value).collect();
        assert_eq!(pulse, [72.0, 112.0]);
        assert_eq!(series("temperature").points[1].value, 38.4);
        assert_eq!(series("systolic-bp").points[0].value, 130.0);
        assert!(series("pulse").points[0].at < series("pulse").points[1].at);
        // Newest first: the last visit, then the first, then the weight.
        assert_eq!(s.recent_observations.len(), 3);
        assert_eq!(s.recent_observations[0].title, "NEWS2 7");
        assert!(s.recent_observations[0]
            .detail
            .contains("Heart rate 112 beats/minute"));
        assert!(s.recent_observations[0].detail.contains("105/70 mmHg"));
        assert_eq!(s.recent_observations[2].title, "Body weight");
    }

    #[test]
    fn a_prescribed_target_range_means_scale_2() {
        let mut obs = observations();
        let spo2 = obs
            .iter_mut()
            .find(|h| h.resource["id"] == "p1-visit-002-spo2")
            .unwrap();
        spo2.resource["referenceRange"] = json!([{
            "low": {"value": 88, "unit": "%"}, "high": {"value": 92, "unit": "%"},
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning", "code": "treatment"}]}
        }]);
        assert!(summary(&records(), &obs).spo2_scale2);
    }

    #[test]
    fn pending_edits_are_marked_and_own_when_unstamped() {
        let mut recs = records();
        let task = recs
            .iter_mut()
            .find(|h| h.resource["id"] == "p1-task-1")
            .unwrap();
        task.resource["status"] = json!("completed");
        task.resource["meta"] = json!({});
        task.pending = true;
        let s = summary(&recs, &[]);
        let t = s.tasks.iter().find(|t| t.id == "p1-task-1").unwrap();
        assert!(t.entry.pending && !t.open);
        assert!(t.entry.source.own);
        assert_eq!(t.entry.source.organisation, "Ravensdale Community Health");
        let row = caseload_row(&patient(), &recs, RowFacts::default(), &clock());
        assert_eq!(row.open_tasks, 0);
        assert!(s.vitals.iter().all(|v| v.points.is_empty()));
    }
}
