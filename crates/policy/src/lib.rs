//! # Careshare access policy: who may see and change what
//!
//! This crate decides, for every record the hub serves or accepts and for
//! every record the sync feed would put on a laptop, whether the person
//! asking may see it (or change it). It is pure: it reads records as FHIR
//! JSON values, is told the time, and answers **permit** (with the ground it
//! rests on) or **deny** (with a reason). It stores nothing, reads no clock
//! and performs no input or output; the hub records every answer in the
//! audit trail.
//!
//! Anything not permitted below is refused.
//!
//! ## 1. Which patients a person may see
//!
//! A patient's record is open to a person only while one of these links is
//! in force ([`relationship`]):
//!
//! | ground | what it means |
//! |---|---|
//! | caseload (team) | an active EpisodeOfCare lists one of the person's teams |
//! | care team | the patient's active CareTeam includes the person (their PractitionerRole or Practitioner), one of their teams, or their organisation |
//! | GP registration | the patient's `generalPractitioner` is the person's practice (or the person) |
//! | caseload (organisation) | an active EpisodeOfCare that names no team is managed by the person's organisation (an episode that names teams links only those teams) |
//! | hospital encounter | hospital clinicians only: the patient is with their hospital now (an Encounter that is arrived, triaged, in progress or on leave, provided by their organisation) |
//! | break-glass | the person holds an unexpired emergency grant for the patient |
//!
//! Nothing else opens a patient: not having seen them before, not a finished
//! or planned episode, not a past encounter, not an expired grant. Privacy
//! officers and region administrators have no links to any patient.
//! The details of how links are read are in [`patient`].
//!
//! ## 2. Which kinds of record each role may see
//!
//! For a patient the person may see ([`may_read`]):
//!
//! | role | demographics (Patient, RelatedPerson) | care coordination (CarePlan, Task, Flag, Appointment, CareTeam, EpisodeOfCare, Consent) | clinical records (Observation, Condition, AllergyIntolerance, medicines, Encounter, DocumentReference, …) |
//! |---|---|---|---|
//! | district nurse | yes | yes | yes |
//! | community nurse | yes | yes | yes |
//! | GP | yes | yes | yes |
//! | hospital clinician | yes | yes | yes |
//! | social worker | yes | yes (Flags include clinical alerts) | only records written by a social care organisation |
//! | privacy officer | no | no | no |
//! | region administrator | no | no | no |
//! | source system | only records its organisation wrote | same | same |
//!
//! A source system (a hospital or GP system's feed, an import job) is not a
//! person and has no care links: it sees exactly what its organisation
//! wrote, for any patient, and never breaks the glass.
//!
//! Records that are in no patient's record ([`may_read_unlinked`]):
//!
//! | record | who may see it |
//! |---|---|
//! | directory and reference data: Organization, Practitioner, PractitionerRole, Location, HealthcareService, team CareTeams, Medication, Questionnaire, … | everyone signed in |
//! | device registry (Devices not attached to a patient) | region administrators, privacy officers |
//! | audit trail (AuditEvent, Provenance not about a patient) | privacy officers |
//! | anything else | nobody |
//!
//! The exact sorting of resource types into kinds is in [`facts`].
//!
//! ## 3. Restricted and sensitive records
//!
//! A record labelled restricted (HL7 confidentiality `R` or `V`) or with a
//! sensitivity code is seen only by roles allowed for **every** label on it,
//! **and** only within the organisation that wrote it, unless it has been
//! explicitly shared with the person's organisation (a `meta.tag` with system
//! `https://careshare.example.org/fhir/CodeSystem/shared-with` and the
//! organisation's id as code).
//!
//! | label | codes | district nurse | community nurse | GP | hospital clinician | social worker | privacy officer | region admin |
//! |---|---|---|---|---|---|---|---|---|
//! | restricted | v3-Confidentiality `R`, `V` (and any unknown confidentiality code) | yes | yes | yes | yes | yes | no | no |
//! | sexual and reproductive health | v3-ActCode `SEX` | no | no | yes | yes | no | no | no |
//! | sexually transmitted infection | v3-ActCode `STD` | no | no | yes | yes | no | no | no |
//! | HIV | v3-ActCode `HIV` | no | no | yes | yes | no | no | no |
//! | mental health | v3-ActCode `PSY`, `MH`, `BH`, `PSYTHPN` | no | no | yes | yes | no | no | no |
//! | substance misuse | v3-ActCode `ETH`, `SUD` | no | no | yes | yes | no | no | no |
//! | sexual assault, abuse, domestic violence | v3-ActCode `SDV` | no | no | yes | yes | yes | no | no |
//! | safeguarding | Careshare sensitivity `safeguarding` | yes | yes | yes | no | yes | no | no |
//! | any other sensitivity | any other v3-ActCode or Careshare sensitivity code | no | no | yes | yes | no | no | no |
//!
//! Labels only ever take access away. Break-glass does **not** open another
//! organisation's restricted or sensitive records. A labelled record whose
//! writing organisation is unknown is shown to nobody. How labels are read
//! is in [`labels`].
//!
//! ## 4. Objection to sharing
//!
//! If the patient has an active objection to sharing (a Consent with scope
//! `patient-privacy` and provision `deny`), each of their records is seen
//! only by the organisation that wrote it. A record whose writing
//! organisation is unknown counts as another organisation's. Two records
//! stay visible to those with a care link, so that staff know who the
//! person is and that they objected: the Patient resource and Consents
//! (their labels still apply). An active break-glass grant overrides the
//! objection — it is an emergency — and every such access is recorded as
//! break-glass. Explicit sharing of a labelled record does not override an
//! objection.
//!
//! ## 5. Break-glass
//!
//! Clinical staff (nurses, GPs, hospital clinicians) may ask for emergency
//! access to a patient they have no link to, giving a reason of at least 10
//! characters; the grant lasts 4 hours by default and is for that person and
//! patient alone ([`break_glass`]). It is refused for a patient they can
//! already see (unless the patient objected to sharing) and while they hold
//! an active grant. Under break-glass a person may see and record care as if
//! linked, but may not change the patient's registration, care links or
//! consents (Patient, EpisodeOfCare, CareTeam, Encounter, Consent), so a
//! grant cannot be turned into lasting access. Expired grants do nothing.
//!
//! ## 6. Writing
//!
//! For a patient's records ([`may_write`]):
//!
//! | role | may create and change |
//! |---|---|
//! | GP, hospital clinician | every type of patient record |
//! | district nurse, community nurse | every type except MedicationRequest (prescribing) |
//! | social worker | Patient, RelatedPerson, care coordination records, and their own notes and assessments (DocumentReference, Communication, Encounter, QuestionnaireResponse) — never Observation, Condition, AllergyIntolerance or medicines |
//! | privacy officer, region administrator | nothing in a patient's record |
//! | source system | every type, for any patient, in its organisation's name; changes and deletes only its organisation's records |
//!
//! And further:
//!
//! * Nobody writes into a patient they cannot see: every write needs a care
//!   link or an active break-glass grant. The one exception is registering
//!   a new Patient, which anyone who cares for patients may do.
//! * Changing or deleting a record needs that record to be visible to the
//!   person.
//! * Records are written in the name of the person's own organisation
//!   (`meta.source`). The hub should set `meta.source` to
//!   `Organization/<the person's organisation>` on every write.
//! * Shared working records (Patient, RelatedPerson, CarePlan, Task,
//!   Appointment, AppointmentResponse, the patient's CareTeam, Consent) may
//!   be updated by any organisation that can see them. Every other record,
//!   every restricted or sensitive record, and every deletion is for the
//!   organisation that wrote the record. So is changing a record's labels
//!   or sharing.
//!
//! Outside patients' records ([`may_write_unlinked`]): region administrators
//! manage the directory, reference data and the device registry; a source
//! system may add directory and other records in its organisation's name
//! (not devices). Nobody
//! writes to the audit trail through the record interface; the hub appends
//! to it itself (including the access events uploaded from laptops).
//!
//! ## 7. Purpose of use
//!
//! Every decision is made for a purpose (HL7 ActReason): treatment (`TREAT`)
//! or break-glass (`BTG`) for patient records, privacy review (`HOPERAT`)
//! for the audit trail, system administration (`HSYSADMIN`) for the
//! directory. A permit names the purpose to record in the audit trail; it is
//! `BTG` whenever a grant was needed or asked for.
//!
//! ## 8. Reasons
//!
//! A refusal names the rule that refused ([`DenyReason`]) with a code and a
//! plain sentence. It never names a record's labels or content. The hub
//! should leave refused records out of search results and sync pages
//! without comment, and answer a direct read of one as "not found" to the
//! person while keeping the code in the audit trail.
//!
//! ## Using it
//!
//! Work out a [`PatientAccess`] once per person and patient, then decide per
//! record:
//!
//! ```
//! use careshare_policy::*;
//! use chrono::{TimeZone, Utc};
//! use serde_json::json;
//!
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
//! let nurse = Subject {
//!     user_id: "u-ann".into(),
//!     practitioner_role_id: "pr-ann".into(),
//!     practitioner_id: None,
//!     role: Role::DistrictNurse,
//!     organization_id: "community-trust".into(),
//!     team_ids: vec!["dn-north".into()],
//! };
//! let patient = json!({"resourceType": "Patient", "id": "p1"});
//! let episode = json!({
//!     "resourceType": "EpisodeOfCare", "id": "ep1", "status": "active",
//!     "patient": {"reference": "Patient/p1"},
//!     "team": [{"reference": "CareTeam/dn-north"}]
//! });
//! let facts = PatientFacts::from_resources(&patient, [&episode]).unwrap();
//! let orgs = OrgIndex::new();
//! let access = PatientAccess::new(&nurse, &facts, &[], &orgs);
//!
//! let obs = ResourceFacts::from_json(&json!({
//!     "resourceType": "Observation", "id": "o1",
//!     "meta": {"source": "Organization/gp-practice"},
//!     "subject": {"reference": "Patient/p1"}
//! })).unwrap();
//! let decision = may_read(&nurse, Purpose::Treatment, &access, &obs, now);
//! assert_eq!(decision.basis(), Some(Basis::CaseloadTeam));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod break_glass;
pub mod codes;
pub mod decide;
pub mod decision;
pub mod facts;
mod fhir;
pub mod labels;
pub mod patient;
pub mod subject;

pub use break_glass::{
    check_reason, request_break_glass, BreakGlassError, BreakGlassGrant, BreakGlassPolicy,
};
pub use decide::{
    may_read, may_read_each, may_read_unlinked, may_write, may_write_unlinked, objection_in_force,
    regular_relationship, relationship, role_may_write, PatientAccess, WriteOp,
};
pub use decision::{Basis, Decision, DenyReason};
pub use facts::{author_from_source, FactsError, Kind, OrgIndex, OrgKind, ResourceFacts};
pub use fhir::Window;
pub use labels::{Labels, Sensitivity};
pub use patient::{
    CareTeamLink, CareTeamMember, EncounterLink, EpisodeLink, MemberKind, Objection, PatientFacts,
    PatientFactsError,
};
pub use subject::{is_team_care_team, Purpose, Role, Subject, SubjectError, UnknownRole};
