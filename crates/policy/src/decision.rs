//! The answer to "may this person do this?": permit, with the ground it
//! rests on, or deny, with a reason.
//!
//! Both carry a short machine code (for the audit trail and for
//! OperationOutcome diagnostics) and a plain sentence. Neither ever names
//! what is hidden: a refusal says *which rule* refused, never which label a
//! record carries or what it contains.

use std::fmt;

use crate::subject::Purpose;

/// The ground on which access is permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// An active EpisodeOfCare lists one of the person's teams.
    CaseloadTeam,
    /// An active EpisodeOfCare is managed by the person's organisation.
    CaseloadOrganisation,
    /// The patient's active CareTeam includes the person, their team or
    /// their organisation.
    CareTeam,
    /// The patient is registered with the person's GP practice (or names
    /// the person as their GP).
    GpRegistration,
    /// The patient is with the person's hospital now (hospital clinicians).
    HospitalEncounter,
    /// An active break-glass grant.
    BreakGlass,
    /// Registering a new patient.
    NewPatient,
    /// Directory and reference data, open to everyone signed in.
    Directory,
    /// The privacy officer's review of the audit trail.
    AuditReview,
    /// The region administrator's management of the directory.
    Administration,
    /// A source system's own organisation's records.
    SourceSystem,
}

impl Basis {
    /// A short stable code for the audit trail.
    pub const fn code(self) -> &'static str {
        match self {
            Basis::CaseloadTeam => "caseload-team",
            Basis::CaseloadOrganisation => "caseload-organisation",
            Basis::CareTeam => "care-team",
            Basis::GpRegistration => "gp-registration",
            Basis::HospitalEncounter => "hospital-encounter",
            Basis::BreakGlass => "break-glass",
            Basis::NewPatient => "new-patient",
            Basis::Directory => "directory",
            Basis::AuditReview => "audit-review",
            Basis::Administration => "administration",
            Basis::SourceSystem => "source-system",
        }
    }

    /// A plain sentence.
    pub const fn message(self) -> &'static str {
        match self {
            Basis::CaseloadTeam => "The patient is on your team's caseload.",
            Basis::CaseloadOrganisation => "The patient is on your organisation's caseload.",
            Basis::CareTeam => "You are part of the patient's care team.",
            Basis::GpRegistration => "The patient is registered with your GP practice.",
            Basis::HospitalEncounter => "The patient is currently under your hospital's care.",
            Basis::BreakGlass => "Emergency (break-glass) access.",
            Basis::NewPatient => "Registering a new patient.",
            Basis::Directory => "Directory information is open to all staff.",
            Basis::AuditReview => "Privacy and audit review.",
            Basis::Administration => "Directory administration.",
            Basis::SourceSystem => "Records your organisation's system supplied.",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Why access is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The role does not see patient records at all.
    RoleHasNoPatientAccess,
    /// The stated purpose of use does not fit the request.
    PurposeNotAllowed,
    /// Purpose "break the glass" without an active grant.
    NoActiveBreakGlass,
    /// No active care relationship (and no active break-glass grant).
    NoRelationship,
    /// The role may not see this kind of record.
    RoleScope,
    /// The record carries a label the role is not allowed.
    SensitiveLabel,
    /// The record is restricted to the organisation that wrote it (and
    /// those it is shared with).
    OtherOrganisationRestricted,
    /// The record is restricted and its organisation is unknown.
    UnknownAuthorRestricted,
    /// The patient has objected to sharing and the record is held by another
    /// organisation (or by an unknown one).
    PatientObjection,
    /// The role may not create or change this kind of record.
    WriteScope,
    /// Only the organisation that wrote the record may change or delete it.
    NotAuthoringOrganisation,
    /// A record may only be written in the name of one's own organisation.
    WrongAuthor,
    /// Only the organisation that wrote a record may change its labels.
    LabelChange,
    /// An update may not change a record's type or patient.
    IdentityChange,
    /// Break-glass does not allow changing registration, care links or
    /// consents.
    BreakGlassWriteScope,
    /// The audit trail is written by the hub alone.
    AuditIsAppendOnly,
    /// No rule opens records of this type.
    UnsupportedType,
    /// The record is not about the patient the request is for, is about
    /// more than one patient, or (clinical type) names no patient.
    WrongPatient,
    /// The record belongs in a patient's record and must be decided with
    /// that patient's context.
    PatientRecord,
    /// The patient context was built for a different person.
    ContextMismatch,
}

impl DenyReason {
    /// A short stable code for the audit trail and OperationOutcome
    /// diagnostics.
    pub const fn code(self) -> &'static str {
        match self {
            DenyReason::RoleHasNoPatientAccess => "role-no-patient-access",
            DenyReason::PurposeNotAllowed => "purpose-not-allowed",
            DenyReason::NoActiveBreakGlass => "no-active-break-glass",
            DenyReason::NoRelationship => "no-relationship",
            DenyReason::RoleScope => "role-scope",
            DenyReason::SensitiveLabel => "sensitive-label",
            DenyReason::OtherOrganisationRestricted => "restricted-to-author",
            DenyReason::UnknownAuthorRestricted => "restricted-unknown-author",
            DenyReason::PatientObjection => "patient-objection",
            DenyReason::WriteScope => "write-scope",
            DenyReason::NotAuthoringOrganisation => "not-authoring-organisation",
            DenyReason::WrongAuthor => "wrong-author",
            DenyReason::LabelChange => "label-change",
            DenyReason::IdentityChange => "identity-change",
            DenyReason::BreakGlassWriteScope => "break-glass-write-scope",
            DenyReason::AuditIsAppendOnly => "audit-append-only",
            DenyReason::UnsupportedType => "unsupported-type",
            DenyReason::WrongPatient => "wrong-patient",
            DenyReason::PatientRecord => "patient-record",
            DenyReason::ContextMismatch => "context-mismatch",
        }
    }

    /// A plain sentence that can be shown to the person refused.
    pub const fn message(self) -> &'static str {
        match self {
            DenyReason::RoleHasNoPatientAccess => "Your role does not give access to patient records.",
            DenyReason::PurposeNotAllowed => "The stated purpose of use does not allow this.",
            DenyReason::NoActiveBreakGlass => "You have no active emergency access to this patient.",
            DenyReason::NoRelationship => "You have no current care relationship with this patient.",
            DenyReason::RoleScope => "Your role does not give access to this kind of record.",
            DenyReason::SensitiveLabel => "This record is marked sensitive and your role may not see it.",
            DenyReason::OtherOrganisationRestricted => "This record is restricted to the organisation that holds it.",
            DenyReason::UnknownAuthorRestricted => "This record is restricted and cannot be shared.",
            DenyReason::PatientObjection => "The patient has objected to sharing records beyond the organisation that holds them.",
            DenyReason::WriteScope => "Your role may not create or change this kind of record.",
            DenyReason::NotAuthoringOrganisation => "Only the organisation that holds this record may change or delete it.",
            DenyReason::WrongAuthor => "Records can only be written on behalf of your own organisation.",
            DenyReason::LabelChange => "Only the organisation that holds this record may change its sensitivity or sharing.",
            DenyReason::IdentityChange => "An update may not change a record's type or patient.",
            DenyReason::BreakGlassWriteScope => "Emergency access does not allow changing the patient's registration, care links or consent.",
            DenyReason::AuditIsAppendOnly => "The audit trail cannot be changed.",
            DenyReason::UnsupportedType => "This kind of record is not available.",
            DenyReason::WrongPatient => "This record does not belong to the requested patient's record.",
            DenyReason::PatientRecord => "This record belongs to a patient's record.",
            DenyReason::ContextMismatch => "The access check was made for a different user.",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// The outcome of an access decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed.
    Permit {
        /// Why.
        basis: Basis,
        /// The purpose of use to record in the audit trail (break-glass
        /// whenever the basis is break-glass).
        purpose: Purpose,
    },
    /// Refused.
    Deny {
        /// Why.
        reason: DenyReason,
    },
}

impl Decision {
    /// A permit.
    pub const fn permit(basis: Basis, purpose: Purpose) -> Decision {
        Decision::Permit { basis, purpose }
    }

    /// A refusal.
    pub const fn deny(reason: DenyReason) -> Decision {
        Decision::Deny { reason }
    }

    /// Whether access is permitted.
    pub const fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit { .. })
    }

    /// The basis, if permitted.
    pub const fn basis(&self) -> Option<Basis> {
        match self {
            Decision::Permit { basis, .. } => Some(*basis),
            Decision::Deny { .. } => None,
        }
    }

    /// The reason, if refused.
    pub const fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Permit { .. } => None,
            Decision::Deny { reason } => Some(*reason),
        }
    }

    /// A short stable code: the basis code for a permit, the reason code for
    /// a refusal.
    pub const fn code(&self) -> &'static str {
        match self {
            Decision::Permit { basis, .. } => basis.code(),
            Decision::Deny { reason } => reason.code(),
        }
    }

    /// A plain sentence.
    pub const fn message(&self) -> &'static str {
        match self {
            Decision::Permit { basis, .. } => basis.message(),
            Decision::Deny { reason } => reason.message(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Permit { basis, purpose } => {
                write!(
                    f,
                    "permit ({}; purpose {}): {}",
                    basis.code(),
                    purpose,
                    basis
                )
            }
            Decision::Deny { reason } => write!(f, "deny ({}): {}", reason.code(), reason),
        }
    }
}
