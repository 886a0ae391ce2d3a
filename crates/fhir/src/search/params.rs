//! The search parameters the hub supports, per resource type, as data.
//!
//! Each parameter names the elements it reads with a simple path: dot-separated element
//! names, where `x[x]` matches a choice element (`effective[x]` matches `effectiveDateTime`
//! and `effectivePeriod`). Arrays are walked at every step. The CapabilityStatement is built
//! from this table, so it always tells the truth.

/// How a parameter's values are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `system|code` against Coding, CodeableConcept, Identifier, code or boolean.
    Token,
    /// Case-insensitive starts-with (or `:exact`, `:contains`) against strings, names and addresses.
    String,
    /// Range comparison against date, dateTime, instant and Period.
    Date,
    /// `Type/id` against Reference.
    Reference,
}

impl ParamKind {
    pub fn code(self) -> &'static str {
        match self {
            ParamKind::Token => "token",
            ParamKind::String => "string",
            ParamKind::Date => "date",
            ParamKind::Reference => "reference",
        }
    }
}

/// One search parameter of one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub name: &'static str,
    pub kind: ParamKind,
    pub paths: &'static [&'static str],
    /// For references: the only target type this parameter accepts (e.g. `patient` → Patient).
    pub target: Option<&'static str>,
}

const fn p(name: &'static str, kind: ParamKind, paths: &'static [&'static str]) -> SearchParam {
    SearchParam {
        name,
        kind,
        paths,
        target: None,
    }
}

const fn patient(paths: &'static [&'static str]) -> SearchParam {
    SearchParam {
        name: "patient",
        kind: ParamKind::Reference,
        paths,
        target: Some("Patient"),
    }
}

use ParamKind::{Date, Reference as Ref, String as Str, Token};

const IDENTIFIER: SearchParam = p("identifier", Token, &["identifier"]);

const PATIENT: &[SearchParam] = &[
    IDENTIFIER,
    p("name", Str, &["name"]),
    p("family", Str, &["name.family"]),
    p("given", Str, &["name.given"]),
    p("birthdate", Date, &["birthDate"]),
    p("gender", Token, &["gender"]),
    p("active", Token, &["active"]),
    p("address", Str, &["address"]),
    p("address-postalcode", Str, &["address.postalCode"]),
    p("general-practitioner", Ref, &["generalPractitioner"]),
    p("organization", Ref, &["managingOrganization"]),
];

const PRACTITIONER: &[SearchParam] = &[
    IDENTIFIER,
    p("name", Str, &["name"]),
    p("family", Str, &["name.family"]),
    p("given", Str, &["name.given"]),
    p("active", Token, &["active"]),
];

const PRACTITIONER_ROLE: &[SearchParam] = &[
    IDENTIFIER,
    p("practitioner", Ref, &["practitioner"]),
    p("organization", Ref, &["organization"]),
    p("role", Token, &["code"]),
    p("active", Token, &["active"]),
];

const ORGANIZATION: &[SearchParam] = &[
    IDENTIFIER,
    p("name", Str, &["name", "alias"]),
    p("type", Token, &["type"]),
    p("active", Token, &["active"]),
    p("partof", Ref, &["partOf"]),
    p("address-postalcode", Str, &["address.postalCode"]),
];

const LOCATION: &[SearchParam] = &[
    IDENTIFIER,
    p("name", Str, &["name", "alias"]),
    p("status", Token, &["status"]),
    p("organization", Ref, &["managingOrganization"]),
    p("address-postalcode", Str, &["address.postalCode"]),
];

const CARE_TEAM: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("status", Token, &["status"]),
    p("category", Token, &["category"]),
    p("participant", Ref, &["participant.member"]),
    p("date", Date, &["period"]),
];

const EPISODE_OF_CARE: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["patient"]),
    p("status", Token, &["status"]),
    p("type", Token, &["type"]),
    p("organization", Ref, &["managingOrganization"]),
    p("care-manager", Ref, &["careManager"]),
    // Not an R4 standard parameter: the care teams (caseloads) an episode is on, which the
    // hub needs to find a team's patients. Advertised in the CapabilityStatement like the
    // rest.
    p("team", Ref, &["team"]),
    p("date", Date, &["period"]),
];

const ENCOUNTER: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("status", Token, &["status"]),
    p("class", Token, &["class"]),
    p("type", Token, &["type"]),
    p("date", Date, &["period"]),
    p("service-provider", Ref, &["serviceProvider"]),
    p("episode-of-care", Ref, &["episodeOfCare"]),
    p("participant", Ref, &["participant.individual"]),
];

const CONDITION: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("code", Token, &["code"]),
    p("category", Token, &["category"]),
    p("clinical-status", Token, &["clinicalStatus"]),
    p("verification-status", Token, &["verificationStatus"]),
    p("onset-date", Date, &["onset[x]"]),
    p("recorded-date", Date, &["recordedDate"]),
    p("encounter", Ref, &["encounter"]),
];

const ALLERGY_INTOLERANCE: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["patient"]),
    p("code", Token, &["code", "reaction.substance"]),
    p("clinical-status", Token, &["clinicalStatus"]),
    p("verification-status", Token, &["verificationStatus"]),
    p("category", Token, &["category"]),
    p("criticality", Token, &["criticality"]),
    p("date", Date, &["recordedDate"]),
];

const MEDICATION_STATEMENT: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("code", Token, &["medication[x]"]),
    p("medication", Ref, &["medication[x]"]),
    p("status", Token, &["status"]),
    p("category", Token, &["category"]),
    p("effective", Date, &["effective[x]"]),
];

const MEDICATION_REQUEST: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("code", Token, &["medication[x]"]),
    p("medication", Ref, &["medication[x]"]),
    p("status", Token, &["status"]),
    p("intent", Token, &["intent"]),
    p("category", Token, &["category"]),
    p("authoredon", Date, &["authoredOn"]),
    p("requester", Ref, &["requester"]),
];

const OBSERVATION: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("code", Token, &["code"]),
    p("component-code", Token, &["component.code"]),
    p("category", Token, &["category"]),
    p("status", Token, &["status"]),
    p("date", Date, &["effective[x]"]),
    p("encounter", Ref, &["encounter"]),
    p("performer", Ref, &["performer"]),
];

const CARE_PLAN: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("status", Token, &["status"]),
    p("intent", Token, &["intent"]),
    p("category", Token, &["category"]),
    p("activity-code", Token, &["activity.detail.code"]),
    p("date", Date, &["period"]),
    p("care-team", Ref, &["careTeam"]),
];

const TASK: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["for"]),
    p("subject", Ref, &["for"]),
    p("code", Token, &["code"]),
    p("status", Token, &["status"]),
    p("business-status", Token, &["businessStatus"]),
    p("intent", Token, &["intent"]),
    p("owner", Ref, &["owner"]),
    p("authored-on", Date, &["authoredOn"]),
    p("period", Date, &["executionPeriod"]),
    p("focus", Ref, &["focus"]),
];

const APPOINTMENT: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["participant.actor"]),
    p("actor", Ref, &["participant.actor"]),
    p("status", Token, &["status"]),
    p("service-type", Token, &["serviceType"]),
    p("date", Date, &["start"]),
];

const DOCUMENT_REFERENCE: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("type", Token, &["type"]),
    p("category", Token, &["category"]),
    p("status", Token, &["status"]),
    p("date", Date, &["date"]),
    p("author", Ref, &["author"]),
    p("encounter", Ref, &["context.encounter"]),
];

const FLAG: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject"]),
    p("subject", Ref, &["subject"]),
    p("status", Token, &["status"]),
    p("category", Token, &["category"]),
    p("code", Token, &["code"]),
    p("date", Date, &["period"]),
    p("author", Ref, &["author"]),
];

const CONSENT: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["patient"]),
    p("status", Token, &["status"]),
    p("scope", Token, &["scope"]),
    p("category", Token, &["category"]),
    p("action", Token, &["provision.action"]),
    p("date", Date, &["dateTime"]),
];

const AUDIT_EVENT: &[SearchParam] = &[
    patient(&["entity.what"]),
    p("entity", Ref, &["entity.what"]),
    p("agent", Ref, &["agent.who"]),
    p("type", Token, &["type"]),
    p("subtype", Token, &["subtype"]),
    p("action", Token, &["action"]),
    p("outcome", Token, &["outcome"]),
    p("date", Date, &["recorded"]),
];

const PROVENANCE: &[SearchParam] = &[
    patient(&["target"]),
    p("target", Ref, &["target"]),
    p("agent", Ref, &["agent.who"]),
    p("recorded", Date, &["recorded"]),
];

const OTHER: &[SearchParam] = &[
    IDENTIFIER,
    patient(&["subject", "patient", "for", "beneficiary"]),
];

/// The parameters supported for `resource_type` (besides `_id` and `_lastUpdated`, which
/// every type has). Types without their own table get `identifier` and `patient`.
pub fn params_for(resource_type: &str) -> &'static [SearchParam] {
    match resource_type {
        "Patient" => PATIENT,
        "Practitioner" => PRACTITIONER,
        "PractitionerRole" => PRACTITIONER_ROLE,
        "Organization" => ORGANIZATION,
        "Location" => LOCATION,
        "CareTeam" => CARE_TEAM,
        "EpisodeOfCare" => EPISODE_OF_CARE,
        "Encounter" => ENCOUNTER,
        "Condition" => CONDITION,
        "AllergyIntolerance" => ALLERGY_INTOLERANCE,
        "MedicationStatement" => MEDICATION_STATEMENT,
        "MedicationRequest" => MEDICATION_REQUEST,
        "Observation" => OBSERVATION,
        "CarePlan" => CARE_PLAN,
        "Task" => TASK,
        "Appointment" => APPOINTMENT,
        "DocumentReference" => DOCUMENT_REFERENCE,
        "Flag" => FLAG,
        "Consent" => CONSENT,
        "AuditEvent" => AUDIT_EVENT,
        "Provenance" => PROVENANCE,
        _ => OTHER,
    }
}

/// Looks up one parameter of a type.
pub fn param(resource_type: &str, name: &str) -> Option<&'static SearchParam> {
    params_for(resource_type).iter().find(|p| p.name == name)
}

/// The resource types the product reasons about (PRODUCT.md's list), with their own tables.
pub const INDEXED_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "Appointment",
    "AuditEvent",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Consent",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "Flag",
    "Location",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Provenance",
    "Task",
];
