//! Who is asking: the signed-in person, their role, organisation and teams,
//! and the purpose for which they are using the record.
//!
//! A person's role comes from their `PractitionerRole.code` (system
//! [`STAFF_ROLE_SYSTEM`]); their teams are the standing team CareTeams that
//! list that PractitionerRole as a participant. A PractitionerRole that is
//! inactive, out of its period, has no organisation, or names no role or
//! two different roles gives no subject at all: nobody is let in on a
//! guess.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::codes::*;
use crate::fhir;

/// A staff role, parsed from a `PractitionerRole.code` coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// District nurse (community nursing in patients' homes).
    DistrictNurse,
    /// Community nurse.
    CommunityNurse,
    /// GP practice clinician.
    Gp,
    /// Hospital clinician.
    HospitalClinician,
    /// Social care worker.
    SocialWorker,
    /// Privacy officer (Caldicott guardian): reviews the audit trail.
    PrivacyOfficer,
    /// Region administrator: manages organisations, staff, teams and devices.
    RegionAdmin,
    /// A source system's feed (a hospital or GP system interface, an import
    /// job): loads records in its organisation's name and sees only what its
    /// organisation wrote. Not a person; it never breaks the glass.
    SourceSystem,
}

impl Role {
    /// Every role, in a fixed order (handy for tables and tests).
    pub const ALL: [Role; 8] = [
        Role::DistrictNurse,
        Role::CommunityNurse,
        Role::Gp,
        Role::HospitalClinician,
        Role::SocialWorker,
        Role::PrivacyOfficer,
        Role::RegionAdmin,
        Role::SourceSystem,
    ];

    /// The code in [`STAFF_ROLE_SYSTEM`].
    pub const fn code(self) -> &'static str {
        match self {
            Role::DistrictNurse => "district-nurse",
            Role::CommunityNurse => "community-nurse",
            Role::Gp => "gp",
            Role::HospitalClinician => "hospital-clinician",
            Role::SocialWorker => "social-worker",
            Role::PrivacyOfficer => "privacy-officer",
            Role::RegionAdmin => "region-admin",
            Role::SourceSystem => "source-system",
        }
    }

    /// Clinical roles: nurses, GPs and hospital clinicians. Only they may
    /// break the glass.
    pub const fn is_clinical(self) -> bool {
        matches!(
            self,
            Role::DistrictNurse | Role::CommunityNurse | Role::Gp | Role::HospitalClinician
        )
    }

    /// Roles that look after patients and so may see patient records at all
    /// (the clinical roles and social workers).
    pub const fn cares_for_patients(self) -> bool {
        self.is_clinical() || matches!(self, Role::SocialWorker)
    }

    /// The purpose of use a person in this role normally works under.
    pub const fn default_purpose(self) -> Purpose {
        match self {
            Role::PrivacyOfficer => Purpose::PrivacyReview,
            Role::RegionAdmin => Purpose::SystemAdministration,
            _ => Purpose::Treatment,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A staff-role code that is not one of Careshare's roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown staff role code {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| UnknownRole(code.to_owned()))
    }
}

/// Why a record is being used. Recorded with every decision for the audit
/// trail (as an HL7 ActReason purpose-of-use code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Direct care of the patient (`TREAT`).
    Treatment,
    /// Emergency access under a break-glass grant (`BTG`).
    BreakGlass,
    /// Privacy and audit review by the privacy officer (`HOPERAT`).
    PrivacyReview,
    /// Managing the region's directory: organisations, staff, teams,
    /// devices (`HSYSADMIN`).
    SystemAdministration,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 4] = [
        Purpose::Treatment,
        Purpose::BreakGlass,
        Purpose::PrivacyReview,
        Purpose::SystemAdministration,
    ];

    /// The code in [`ACT_REASON_SYSTEM`].
    pub const fn code(self) -> &'static str {
        match self {
            Purpose::Treatment => PURPOSE_TREATMENT,
            Purpose::BreakGlass => PURPOSE_BREAK_GLASS,
            Purpose::PrivacyReview => PURPOSE_OPERATIONS,
            Purpose::SystemAdministration => PURPOSE_SYSTEM_ADMIN,
        }
    }

    /// The code system of [`Purpose::code`].
    pub const fn system(self) -> &'static str {
        ACT_REASON_SYSTEM
    }

    /// Reads an ActReason code back into a purpose.
    pub fn from_code(code: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.code() == code)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The signed-in person a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user's account id (the key of their break-glass grants).
    pub user_id: String,
    /// The id of the PractitionerRole they act in.
    pub practitioner_role_id: String,
    /// The id of their Practitioner resource, when known.
    pub practitioner_id: Option<String>,
    /// Their role.
    pub role: Role,
    /// The id of the Organization they work for in this role.
    pub organization_id: String,
    /// The ids of the team CareTeams they are a member of.
    pub team_ids: Vec<String>,
}

/// Why a PractitionerRole could not be read into a [`Subject`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Not a PractitionerRole resource.
    #[error("expected a PractitionerRole resource")]
    NotAPractitionerRole,
    /// No usable id.
    #[error("the PractitionerRole has no valid id")]
    MissingId,
    /// `active` is false or its period has ended or not begun.
    #[error("the PractitionerRole is not active")]
    Inactive,
    /// No `organization` reference.
    #[error("the PractitionerRole names no organisation")]
    MissingOrganization,
    /// No coding from the staff-role system.
    #[error("the PractitionerRole has no Careshare staff role")]
    MissingRole,
    /// A staff-role code that is not known.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// Two different staff roles on one PractitionerRole.
    #[error("the PractitionerRole has more than one Careshare staff role")]
    AmbiguousRole,
}

impl Subject {
    /// Builds the subject for a user acting in a PractitionerRole.
    ///
    /// `team_care_teams` may be any CareTeams (for example all team CareTeams
    /// of the user's organisation); the subject's teams are the active ones
    /// categorised as a team ([`TEAM_KIND_SYSTEM`] `team`) that list this
    /// PractitionerRole as a currently active participant.
    pub fn from_practitioner_role<'a>(
        user_id: &str,
        practitioner_role: &Value,
        team_care_teams: impl IntoIterator<Item = &'a Value>,
        now: DateTime<Utc>,
    ) -> Result<Subject, SubjectError> {
        let pr = practitioner_role;
        if fhir::str_field(pr, "resourceType") != Some("PractitionerRole") {
            return Err(SubjectError::NotAPractitionerRole);
        }
        let id = fhir::str_field(pr, "id")
            .filter(|id| fhir::is_id(id))
            .ok_or(SubjectError::MissingId)?;
        if matches!(pr.get("active"), Some(Value::Bool(false))) {
            return Err(SubjectError::Inactive);
        }
        if !fhir::period(pr.get("period")).is_some_and(|w| w.contains(now)) {
            return Err(SubjectError::Inactive);
        }
        let organization_id = pr
            .get("organization")
            .and_then(|r| fhir::reference_to(r, "Organization"))
            .ok_or(SubjectError::MissingOrganization)?;
        let mut role = None;
        for code in fhir::codes_in(pr.get("code"), STAFF_ROLE_SYSTEM) {
            let parsed: Role = code.parse()?;
            match role {
                Some(r) if r != parsed => return Err(SubjectError::AmbiguousRole),
                _ => role = Some(parsed),
            }
        }
        let role = role.ok_or(SubjectError::MissingRole)?;
        let practitioner_id = pr
            .get("practitioner")
            .and_then(|r| fhir::reference_to(r, "Practitioner"))
            .map(str::to_owned);

        let mut team_ids: Vec<String> = team_care_teams
            .into_iter()
            .filter(|team| is_team_care_team(team))
            .filter(|team| fhir::str_field(team, "status") == Some("active"))
            .filter(|team| fhir::period(team.get("period")).is_some_and(|w| w.contains(now)))
            .filter(|team| {
                fhir::array(team.get("participant")).any(|p| {
                    p.get("member")
                        .and_then(|m| fhir::reference_to(m, "PractitionerRole"))
                        == Some(id)
                        && fhir::period(p.get("period")).is_some_and(|w| w.contains(now))
                })
            })
            .filter_map(|team| fhir::str_field(team, "id").filter(|t| fhir::is_id(t)))
            .map(str::to_owned)
            .collect();
        team_ids.sort();
        team_ids.dedup();

        Ok(Subject {
            user_id: user_id.to_owned(),
            practitioner_role_id: id.to_owned(),
            practitioner_id,
            role,
            organization_id: organization_id.to_owned(),
            team_ids,
        })
    }

    /// Whether `team_id` is one of the subject's teams.
    pub fn in_team(&self, team_id: &str) -> bool {
        self.team_ids.iter().any(|t| t == team_id)
    }
}

/// Whether a CareTeam is a standing staff team (category
/// [`TEAM_KIND_SYSTEM`] `team`) rather than one patient's care team.
pub fn is_team_care_team(care_team: &Value) -> bool {
    fhir::str_field(care_team, "resourceType") == Some("CareTeam")
        && fhir::has_coding(care_team.get("category"), TEAM_KIND_SYSTEM, TEAM_KIND_TEAM)
}
