//! Conventions that the rest of Careshare relies on when it reads the record.
//!
//! The demo region is written to these conventions, and the hub, the access
//! policy and the desktop app read them back. Each constant documents the FHIR
//! element it applies to.
//!
//! # Staff and teams
//!
//! * A staff member is a `Practitioner` plus one `PractitionerRole`.
//!   `PractitionerRole.code[0].coding[0]` has system [`STAFF_ROLE_SYSTEM`] and
//!   one of the `ROLE_*` codes; `PractitionerRole.organization` is the
//!   employing organisation.
//! * The sign-in name of a staff member is a `Practitioner.identifier` with
//!   system [`USERNAME_SYSTEM`].
//! * A staff team is a `CareTeam` with a `category` coding
//!   [`TEAM_KIND_SYSTEM`]#[`TEAM_KIND_TEAM`], no `subject`,
//!   `managingOrganization` = the organisation that runs it, and one
//!   `participant.member` = `PractitionerRole/<id>` per member. A patient's own
//!   care team has a `subject` and no team-kind category.
//!
//! # Authorship
//!
//! * Every clinical or care resource carries `meta.source` =
//!   `Organization/<id>` of the organisation that wrote it (see
//!   [`meta_source`]).
//!
//! # Caseloads
//!
//! * A patient is on a team's caseload while an `EpisodeOfCare` with
//!   `status` = `active` names the team in `team` (`CareTeam/<id>`). A
//!   `finished` episode (with `period.end`) means the team's access has ended.
//!   The same rule holds for the nursing teams and the social care team.
//!
//! # Patients
//!
//! * NHS number: `Patient.identifier` with system [`NHS_NUMBER_SYSTEM`].
//! * Registered practice: `Patient.generalPractitioner` = `Organization/<id>`.
//!
//! # Sensitive entries
//!
//! * A sensitive resource has `meta.security` with
//!   [`CONFIDENTIALITY_SYSTEM`]#[`CONFIDENTIALITY_RESTRICTED`] and one
//!   sensitivity code: [`SENSITIVITY_MENTAL_HEALTH`],
//!   [`SENSITIVITY_SEXUAL_HEALTH`] (both in [`ACT_CODE_SYSTEM`]) or
//!   [`SENSITIVITY_SAFEGUARDING`] (in [`CARESHARE_SENSITIVITY_SYSTEM`]; HL7's
//!   ActCode has no code for safeguarding as a whole, only narrower ones such
//!   as `SDV`, so Careshare defines its own).
//!
//! # Objections
//!
//! * A patient who objects to sharing has a `Consent` with `status` =
//!   `active`, `scope` = [`CONSENT_SCOPE_SYSTEM`]#[`CONSENT_SCOPE_PRIVACY`],
//!   `category` = LOINC [`CONSENT_CATEGORY_LOINC`], `policy[0].uri` =
//!   [`OBJECTION_POLICY_URI`] and `provision.type` = `deny`: records are not
//!   shared beyond the organisation that holds each one (break-glass aside).

/// Code system of Careshare staff roles (`PractitionerRole.code`).
pub const STAFF_ROLE_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/staff-role";
/// Staff role: district nurse (leads a caseload in a nursing team).
pub const ROLE_DISTRICT_NURSE: &str = "district-nurse";
/// Staff role: community nurse (member of a nursing team).
pub const ROLE_COMMUNITY_NURSE: &str = "community-nurse";
/// Staff role: general practitioner.
pub const ROLE_GP: &str = "gp";
/// Staff role: hospital clinician.
pub const ROLE_HOSPITAL_CLINICIAN: &str = "hospital-clinician";
/// Staff role: social worker.
pub const ROLE_SOCIAL_WORKER: &str = "social-worker";
/// Staff role: privacy officer (Caldicott guardian).
pub const ROLE_PRIVACY_OFFICER: &str = "privacy-officer";
/// Staff role: region administrator.
pub const ROLE_REGION_ADMIN: &str = "region-admin";
/// Account role: a source system's feed (writes in its organisation's name).
pub const ROLE_SOURCE_SYSTEM: &str = "source-system";

/// Identifier system of staff sign-in names (`Practitioner.identifier`).
pub const USERNAME_SYSTEM: &str = "https://careshare.example.org/fhir/Id/username";
/// Identifier system of Careshare staff numbers (`Practitioner.identifier`).
pub const STAFF_NUMBER_SYSTEM: &str = "https://careshare.example.org/fhir/Id/staff-number";

/// Code system that marks a `CareTeam` as a staff team (`CareTeam.category`).
pub const TEAM_KIND_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/team-kind";
/// Code of a staff team in [`TEAM_KIND_SYSTEM`].
pub const TEAM_KIND_TEAM: &str = "team";

/// Identifier system of NHS numbers (`Patient.identifier`).
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// Identifier system of ODS organisation codes (`Organization.identifier`).
pub const ODS_CODE_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Code system of confidentiality labels (`meta.security`).
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// Confidentiality `R` (restricted): set on every sensitive resource.
pub const CONFIDENTIALITY_RESTRICTED: &str = "R";
/// HL7 v3 ActCode system, which holds the sensitivity codes used here.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Sensitivity: mental health (`PSY`, in [`ACT_CODE_SYSTEM`]).
pub const SENSITIVITY_MENTAL_HEALTH: &str = "PSY";
/// Sensitivity: sexual health (`STD`, sexually transmitted disease information,
/// in [`ACT_CODE_SYSTEM`]).
pub const SENSITIVITY_SEXUAL_HEALTH: &str = "STD";
/// Careshare's own sensitivity code system, for what ActCode lacks.
pub const CARESHARE_SENSITIVITY_SYSTEM: &str =
    "https://careshare.example.org/fhir/CodeSystem/sensitivity";
/// Sensitivity: safeguarding (in [`CARESHARE_SENSITIVITY_SYSTEM`]).
pub const SENSITIVITY_SAFEGUARDING: &str = "safeguarding";

/// Consent scope code system.
pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// Consent scope of an objection to sharing.
pub const CONSENT_SCOPE_PRIVACY: &str = "patient-privacy";
/// LOINC code of the consent category (`Consent.category`): Patient consent.
pub const CONSENT_CATEGORY_LOINC: &str = "59284-0";
/// Policy named by an objection (`Consent.policy[0].uri`).
pub const OBJECTION_POLICY_URI: &str =
    "https://careshare.example.org/fhir/policy/objection-to-sharing";

/// Code system of Careshare document categories (`DocumentReference.category`).
pub const DOCUMENT_CATEGORY_SYSTEM: &str =
    "https://careshare.example.org/fhir/CodeSystem/document-category";
/// Document category: hospital discharge summary.
pub const DOCUMENT_DISCHARGE_SUMMARY: &str = "discharge-summary";
/// Document category: hospital outpatient clinic letter.
pub const DOCUMENT_CLINIC_LETTER: &str = "clinic-letter";
/// Document category: note of a nursing visit.
pub const DOCUMENT_NURSING_VISIT_NOTE: &str = "nursing-visit-note";
/// Document category: social care note.
pub const DOCUMENT_SOCIAL_CARE_NOTE: &str = "social-care-note";

/// SNOMED CT.
pub const SNOMED: &str = "http://snomed.info/sct";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// Observation category code system.
pub const OBSERVATION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";

/// LOINC: respiratory rate (`/min`).
pub const LOINC_RESPIRATORY_RATE: &str = "9279-1";
/// LOINC: oxygen saturation by pulse oximetry (`%`).
pub const LOINC_SPO2: &str = "59408-5";
/// LOINC: heart rate (`/min`).
pub const LOINC_HEART_RATE: &str = "8867-4";
/// LOINC: blood pressure panel (values in components).
pub const LOINC_BLOOD_PRESSURE_PANEL: &str = "85354-9";
/// LOINC: systolic blood pressure (`mm[Hg]`, a component of the panel).
pub const LOINC_SYSTOLIC: &str = "8480-6";
/// LOINC: diastolic blood pressure (`mm[Hg]`, a component of the panel).
pub const LOINC_DIASTOLIC: &str = "8462-4";
/// LOINC: body temperature (`Cel`).
pub const LOINC_BODY_TEMPERATURE: &str = "8310-5";
/// LOINC: inhaled oxygen flow rate (`L/min`), a component of the
/// air-or-oxygen observation when the patient is on oxygen.
pub const LOINC_OXYGEN_FLOW_RATE: &str = "3151-8";
/// LOINC: capillary blood glucose (`mmol/L`).
pub const LOINC_BLOOD_GLUCOSE: &str = "15074-8";
/// LOINC: wound size panel (length and width in components).
pub const LOINC_WOUND_SIZE_PANEL: &str = "72287-6";
/// LOINC: length of wound (`cm`).
pub const LOINC_WOUND_LENGTH: &str = "39126-8";
/// LOINC: width of wound (`cm`).
pub const LOINC_WOUND_WIDTH: &str = "39125-0";

/// SNOMED CT: ACVPU scale score (the consciousness observation's code).
pub const SNOMED_ACVPU: &str = "1104441000000107";
/// SNOMED CT ACVPU value: alert.
pub const SNOMED_ACVPU_ALERT: &str = "248234008";
/// SNOMED CT ACVPU value: new confusion.
pub const SNOMED_ACVPU_CONFUSION: &str = "130987000";
/// SNOMED CT ACVPU value: responds to voice.
pub const SNOMED_ACVPU_VOICE: &str = "300202002";
/// SNOMED CT ACVPU value: responds to pain.
pub const SNOMED_ACVPU_PAIN: &str = "450847001";
/// SNOMED CT ACVPU value: unresponsive.
pub const SNOMED_ACVPU_UNRESPONSIVE: &str = "422768004";
/// SNOMED CT: patient on oxygen (the air-or-oxygen observation's code; the
/// value is [`SNOMED_YES`] on oxygen, [`SNOMED_NO`] on air).
pub const SNOMED_ON_OXYGEN: &str = "371825009";
/// SNOMED CT: yes.
pub const SNOMED_YES: &str = "373066001";
/// SNOMED CT: no.
pub const SNOMED_NO: &str = "373067005";

/// v3 ActCode encounter class of a home visit (`Encounter.class`).
pub const ENCOUNTER_CLASS_HOME: &str = "HH";
/// v3 ActCode encounter class of a hospital admission.
pub const ENCOUNTER_CLASS_INPATIENT: &str = "IMP";
/// v3 ActCode encounter class of an outpatient attendance.
pub const ENCOUNTER_CLASS_AMBULATORY: &str = "AMB";
/// SNOMED CT: home visit (`Encounter.type` of a nursing visit).
pub const SNOMED_HOME_VISIT: &str = "439708006";
/// LOINC: discharge summary (`DocumentReference.type`).
pub const LOINC_DISCHARGE_SUMMARY: &str = "18842-5";
/// LOINC: nurse note (`DocumentReference.type` of a visit note).
pub const LOINC_NURSE_NOTE: &str = "34746-8";
/// LOINC: note (`DocumentReference.type` of a social care note).
pub const LOINC_NOTE: &str = "34109-9";

/// Builds the `meta.source` value for an authoring organisation.
pub fn meta_source(organization_id: &str) -> String {
    format!("Organization/{organization_id}")
}

/// Careshare's kinds of organisation (`Organization.type`): `hospital`, `gp-practice`,
/// `community-health`, `social-care`, `region`. The access policy reads `social-care`.
pub const ORG_KIND_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/organization-kind";
