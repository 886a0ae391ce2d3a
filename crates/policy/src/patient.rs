//! What the policy needs to know about one patient: the links that can make
//! the patient visible to staff, and whether the patient has objected to
//! sharing.
//!
//! [`PatientFacts::from_resources`] reads them from the patient's Patient
//! resource and from their EpisodeOfCare, CareTeam, Encounter and Consent
//! resources. A resource that is about somebody else is ignored, so a
//! careless caller cannot link the wrong patient.
//!
//! # Links that count (only while active)
//!
//! * **Caseload episode**: an EpisodeOfCare with status `active` whose
//!   `team` lists a team CareTeam or whose `managingOrganization` is an
//!   organisation. Episodes that are planned, waitlisted, on hold,
//!   finished, cancelled or entered in error do not count.
//! * **Care team**: the patient's own CareTeam (`subject` = the patient)
//!   with status `active`; its participants (`member` = PractitionerRole,
//!   Practitioner, Organization or team CareTeam, each within its own
//!   period) and its `managingOrganization` are linked.
//! * **GP registration**: `Patient.generalPractitioner` names an
//!   Organization (the practice), or a PractitionerRole or Practitioner.
//!   If the PractitionerRole resource is passed in too, its organisation
//!   counts as the practice.
//! * **Hospital encounter**: an Encounter with status `arrived`, `triaged`,
//!   `in-progress` or `onleave` (the patient is with the hospital now) and a
//!   `serviceProvider`. Planned, finished and cancelled encounters do not
//!   count.
//!
//! Each link also has to be within its `period` at the moment of the
//! decision. A period that cannot be read makes the link count for nothing.
//!
//! # Objection to sharing
//!
//! A Consent for the patient with status `active`, a scope of
//! `patient-privacy` (system [`CONSENT_SCOPE_SYSTEM`]) and `provision.type`
//! = `deny` is an objection to sharing. It is read in its widest sense:
//! actors, data and purposes inside the provision do not narrow it. It is
//! in force within `provision.period`; a period that cannot be read keeps
//! the objection in force.

use serde_json::Value;

use crate::codes::*;
use crate::fhir::{self, Window};

/// An active EpisodeOfCare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeLink {
    /// The episode's id.
    pub id: Option<String>,
    /// `managingOrganization`.
    pub managing_organization: Option<String>,
    /// Team CareTeams in `team`.
    pub teams: Vec<String>,
    /// `period`.
    pub window: Window,
}

/// Who a care team participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberKind {
    /// `PractitionerRole/<id>`.
    PractitionerRole,
    /// `Practitioner/<id>`.
    Practitioner,
    /// `Organization/<id>`.
    Organization,
    /// `CareTeam/<id>` (a team).
    Team,
}

/// One participant of a patient's care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTeamMember {
    /// Who.
    pub kind: MemberKind,
    /// Their id.
    pub id: String,
    /// The participant's `period`.
    pub window: Window,
}

/// An active CareTeam about the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTeamLink {
    /// The care team's id.
    pub id: Option<String>,
    /// Its participants (and managing organisations, as members).
    pub members: Vec<CareTeamMember>,
    /// The care team's `period`.
    pub window: Window,
}

/// An Encounter that is going on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterLink {
    /// The encounter's id.
    pub id: Option<String>,
    /// `serviceProvider`.
    pub service_provider: String,
    /// `period`.
    pub window: Window,
}

/// An objection to sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objection {
    /// The Consent's id.
    pub id: Option<String>,
    /// `provision.period`.
    pub window: Window,
}

/// Everything about one patient that decides who may see their record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientFacts {
    /// The Patient id.
    pub patient_id: String,
    /// GP practices the patient is registered with.
    pub gp_organizations: Vec<String>,
    /// PractitionerRoles named as the patient's GP.
    pub gp_practitioner_roles: Vec<String>,
    /// Practitioners named as the patient's GP.
    pub gp_practitioners: Vec<String>,
    /// Active episodes of care.
    pub episodes: Vec<EpisodeLink>,
    /// Active care teams.
    pub care_teams: Vec<CareTeamLink>,
    /// Encounters going on now.
    pub encounters: Vec<EncounterLink>,
    /// Objections to sharing.
    pub objections: Vec<Objection>,
}

/// Why patient facts could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientFactsError {
    /// The first resource is not a Patient.
    #[error("expected a Patient resource")]
    NotAPatient,
    /// The Patient has no valid id.
    #[error("the Patient has no valid id")]
    MissingId,
}

impl PatientFacts {
    /// Facts for a patient with no links and no objection.
    pub fn new(patient_id: &str) -> PatientFacts {
        PatientFacts {
            patient_id: patient_id.to_owned(),
            ..PatientFacts::default()
        }
    }

    /// Reads the facts from the Patient resource and the patient's related
    /// resources (EpisodeOfCare, CareTeam, Encounter, Consent, and the
    /// PractitionerRoles named as their GP). Other resources, and resources
    /// about another patient, are ignored.
    pub fn from_resources<'a>(
        patient: &Value,
        related: impl IntoIterator<Item = &'a Value>,
    ) -> Result<PatientFacts, PatientFactsError> {
        if fhir::str_field(patient, "resourceType") != Some("Patient") {
            return Err(PatientFactsError::NotAPatient);
        }
        let patient_id = fhir::str_field(patient, "id")
            .filter(|id| fhir::is_id(id))
            .ok_or(PatientFactsError::MissingId)?;
        let mut facts = PatientFacts::new(patient_id);

        for gp in fhir::array(patient.get("generalPractitioner")) {
            match fhir::reference(gp) {
                Some(r) if r.kind == "Organization" => facts.gp_organizations.push(r.id.into()),
                Some(r) if r.kind == "PractitionerRole" => {
                    facts.gp_practitioner_roles.push(r.id.into())
                }
                Some(r) if r.kind == "Practitioner" => facts.gp_practitioners.push(r.id.into()),
                _ => {}
            }
        }

        for resource in related {
            match fhir::str_field(resource, "resourceType") {
                Some("EpisodeOfCare") => facts.read_episode(resource),
                Some("CareTeam") => facts.read_care_team(resource),
                Some("Encounter") => facts.read_encounter(resource),
                Some("Consent") => facts.read_consent(resource),
                Some("PractitionerRole") => facts.read_gp_role(resource),
                _ => {}
            }
        }
        facts.gp_organizations.sort();
        facts.gp_organizations.dedup();
        Ok(facts)
    }

    fn is_about_me(&self, reference: Option<&Value>) -> bool {
        reference.and_then(|r| fhir::reference_to(r, "Patient")) == Some(self.patient_id.as_str())
    }

    fn read_episode(&mut self, ep: &Value) {
        if !self.is_about_me(ep.get("patient")) || fhir::str_field(ep, "status") != Some("active") {
            return;
        }
        let Some(window) = fhir::period(ep.get("period")) else {
            return;
        };
        let managing_organization = ep
            .get("managingOrganization")
            .and_then(|r| fhir::reference_to(r, "Organization"))
            .map(str::to_owned);
        let teams: Vec<String> = fhir::array(ep.get("team"))
            .filter_map(|r| fhir::reference_to(r, "CareTeam"))
            .map(str::to_owned)
            .collect();
        if managing_organization.is_none() && teams.is_empty() {
            return;
        }
        self.episodes.push(EpisodeLink {
            id: id_of(ep),
            managing_organization,
            teams,
            window,
        });
    }

    fn read_care_team(&mut self, ct: &Value) {
        if !self.is_about_me(ct.get("subject")) || fhir::str_field(ct, "status") != Some("active") {
            return;
        }
        let Some(window) = fhir::period(ct.get("period")) else {
            return;
        };
        let mut members = Vec::new();
        for p in fhir::array(ct.get("participant")) {
            let Some(r) = p.get("member").and_then(fhir::reference) else {
                continue;
            };
            let kind = match r.kind {
                "PractitionerRole" => MemberKind::PractitionerRole,
                "Practitioner" => MemberKind::Practitioner,
                "Organization" => MemberKind::Organization,
                "CareTeam" => MemberKind::Team,
                _ => continue,
            };
            let Some(window) = fhir::period(p.get("period")) else {
                continue;
            };
            members.push(CareTeamMember {
                kind,
                id: r.id.to_owned(),
                window,
            });
        }
        for org in fhir::array(ct.get("managingOrganization")) {
            if let Some(id) = fhir::reference_to(org, "Organization") {
                members.push(CareTeamMember {
                    kind: MemberKind::Organization,
                    id: id.to_owned(),
                    window: Window::ALWAYS,
                });
            }
        }
        if members.is_empty() {
            return;
        }
        self.care_teams.push(CareTeamLink {
            id: id_of(ct),
            members,
            window,
        });
    }

    fn read_encounter(&mut self, enc: &Value) {
        const GOING_ON: [&str; 4] = ["arrived", "triaged", "in-progress", "onleave"];
        if !self.is_about_me(enc.get("subject")) {
            return;
        }
        if !fhir::str_field(enc, "status").is_some_and(|s| GOING_ON.contains(&s)) {
            return;
        }
        let Some(provider) = enc
            .get("serviceProvider")
            .and_then(|r| fhir::reference_to(r, "Organization"))
        else {
            return;
        };
        let Some(window) = fhir::period(enc.get("period")) else {
            return;
        };
        self.encounters.push(EncounterLink {
            id: id_of(enc),
            service_provider: provider.to_owned(),
            window,
        });
    }

    fn read_consent(&mut self, consent: &Value) {
        if !self.is_about_me(consent.get("patient"))
            || fhir::str_field(consent, "status") != Some("active")
            || !fhir::has_coding(
                consent.get("scope"),
                CONSENT_SCOPE_SYSTEM,
                CONSENT_SCOPE_PRIVACY,
            )
        {
            return;
        }
        let provision = consent.get("provision");
        if provision.and_then(|p| fhir::str_field(p, "type")) != Some("deny") {
            return;
        }
        // An unreadable period keeps the objection in force.
        let window = fhir::period(provision.and_then(|p| p.get("period"))).unwrap_or_default();
        self.objections.push(Objection {
            id: id_of(consent),
            window,
        });
    }

    fn read_gp_role(&mut self, role: &Value) {
        let Some(id) = fhir::str_field(role, "id") else {
            return;
        };
        if !self.gp_practitioner_roles.iter().any(|r| r == id) {
            return;
        }
        if let Some(org) = role
            .get("organization")
            .and_then(|r| fhir::reference_to(r, "Organization"))
        {
            self.gp_organizations.push(org.to_owned());
        }
    }
}

fn id_of(resource: &Value) -> Option<String> {
    fhir::str_field(resource, "id")
        .filter(|id| fhir::is_id(id))
        .map(str::to_owned)
}
