//! Break-glass: time-limited emergency access to a patient outside one's
//! care relationships.
//!
//! # The rule
//!
//! * Only clinical staff (district nurses, community nurses, GPs, hospital
//!   clinicians) may break the glass. Social workers, privacy officers and
//!   region administrators may not.
//! * A reason is required, in the person's own words: at least
//!   [`BreakGlassPolicy::min_reason_chars`] characters (10 by default) once
//!   surrounding spaces are removed, with at least 4 different letters or
//!   digits, and at most [`BreakGlassPolicy::max_reason_chars`].
//! * It is refused for a patient the person can already see through a care
//!   relationship, unless the patient has objected to sharing (then
//!   breaking the glass is the only way to see other organisations'
//!   records in an emergency). It is refused while the person already holds
//!   an active grant for the patient.
//! * A grant lasts [`BreakGlassPolicy::duration`] (4 hours by default) and
//!   then does nothing. It belongs to one person and one patient.
//! * While active it lets the person see and record care for the patient as
//!   if they had a care relationship, **and** see other organisations'
//!   records despite an objection to sharing. It never opens another
//!   organisation's restricted or sensitive records, and it does not let the
//!   person change the patient's registration, care links or consents.
//! * Every use is recorded with purpose of use `BTG` (HL7 ActReason "break
//!   the glass"), and every grant should be reviewed by the privacy officer.

use chrono::{DateTime, Duration, Utc};

use crate::decide;
use crate::patient::PatientFacts;
use crate::subject::{Role, Subject};

/// An emergency access grant for one person and one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    /// The user the grant belongs to ([`Subject::user_id`]).
    pub user_id: String,
    /// The patient it opens.
    pub patient_id: String,
    /// The reason the user gave.
    pub reason: String,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
    /// When it stops working (exclusive).
    pub expires_at: DateTime<Utc>,
}

impl BreakGlassGrant {
    /// Whether the grant is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.granted_at <= now && now < self.expires_at
    }

    /// Whether the grant is for this user and this patient.
    pub fn is_for(&self, user_id: &str, patient_id: &str) -> bool {
        self.user_id == user_id && self.patient_id == patient_id
    }
}

/// How break-glass is configured in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakGlassPolicy {
    /// How long a grant lasts.
    pub duration: Duration,
    /// The shortest acceptable reason, in characters.
    pub min_reason_chars: usize,
    /// The longest acceptable reason, in characters.
    pub max_reason_chars: usize,
}

impl Default for BreakGlassPolicy {
    fn default() -> Self {
        BreakGlassPolicy {
            duration: Duration::hours(4),
            min_reason_chars: 10,
            max_reason_chars: 1000,
        }
    }
}

/// Why a break-glass request was refused. The messages can be shown to the
/// person asking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakGlassError {
    /// The person's role may not break the glass.
    #[error("only clinical staff may use emergency access; your role is {0}")]
    RoleNotAllowed(Role),
    /// No reason was given.
    #[error("a reason is required for emergency access")]
    ReasonMissing,
    /// The reason is too short.
    #[error("the reason must be at least {min} characters")]
    ReasonTooShort {
        /// The minimum.
        min: usize,
    },
    /// The reason is too long.
    #[error("the reason must be at most {max} characters")]
    ReasonTooLong {
        /// The maximum.
        max: usize,
    },
    /// The reason is filler (for example "..........").
    #[error("the reason must say why emergency access is needed")]
    ReasonNotMeaningful,
    /// The patient is already visible through a care relationship.
    #[error("you can already see this patient's record through a care relationship")]
    AlreadyVisible,
    /// The person already holds an active grant for this patient.
    #[error("you already have emergency access to this patient until {0}")]
    AlreadyGranted(DateTime<Utc>),
    /// The configured duration is not positive or runs past the calendar.
    #[error("emergency access is misconfigured: the grant duration is not usable")]
    BadDuration,
}

/// Checks a break-glass request and, if it is acceptable, returns the grant
/// to store (starting `now`).
pub fn request_break_glass(
    subject: &Subject,
    patient: &PatientFacts,
    existing_grants: &[BreakGlassGrant],
    reason: &str,
    now: DateTime<Utc>,
    policy: &BreakGlassPolicy,
) -> Result<BreakGlassGrant, BreakGlassError> {
    if !subject.role.is_clinical() {
        return Err(BreakGlassError::RoleNotAllowed(subject.role));
    }
    let reason = check_reason(reason, policy)?;
    if let Some(active) = existing_grants
        .iter()
        .filter(|g| g.is_for(&subject.user_id, &patient.patient_id) && g.is_active(now))
        .map(|g| g.expires_at)
        .max()
    {
        return Err(BreakGlassError::AlreadyGranted(active));
    }
    let objection = decide::objection_in_force(patient, now);
    if !objection && decide::regular_relationship(subject, patient, now).is_some() {
        return Err(BreakGlassError::AlreadyVisible);
    }
    if policy.duration <= Duration::zero() {
        return Err(BreakGlassError::BadDuration);
    }
    let expires_at = now
        .checked_add_signed(policy.duration)
        .ok_or(BreakGlassError::BadDuration)?;
    Ok(BreakGlassGrant {
        user_id: subject.user_id.clone(),
        patient_id: patient.patient_id.clone(),
        reason: reason.to_owned(),
        granted_at: now,
        expires_at,
    })
}

/// Checks a break-glass reason on its own; returns it trimmed.
pub fn check_reason<'a>(
    reason: &'a str,
    policy: &BreakGlassPolicy,
) -> Result<&'a str, BreakGlassError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(BreakGlassError::ReasonMissing);
    }
    let chars = reason.chars().count();
    if chars < policy.min_reason_chars {
        return Err(BreakGlassError::ReasonTooShort {
            min: policy.min_reason_chars,
        });
    }
    if chars > policy.max_reason_chars {
        return Err(BreakGlassError::ReasonTooLong {
            max: policy.max_reason_chars,
        });
    }
    let mut distinct: Vec<char> = reason
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err(BreakGlassError::ReasonNotMeaningful);
    }
    Ok(reason)
}
