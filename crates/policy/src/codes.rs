//! The code systems and codes the policy reads, in one place.
//!
//! HL7 systems are the published FHIR R4 / HL7 terminology URLs. The
//! `careshare.example.org` systems are Careshare's own conventions, used by
//! the demo region and by every organisation loading records into the hub.

/// Staff roles, on `PractitionerRole.code`.
pub const STAFF_ROLE_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/staff-role";

/// Kinds of CareTeam, on `CareTeam.category`. Code [`TEAM_KIND_TEAM`] marks a
/// standing staff team (for example a district nursing team), as opposed to
/// the care team around one patient.
pub const TEAM_KIND_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/team-kind";
/// See [`TEAM_KIND_SYSTEM`].
pub const TEAM_KIND_TEAM: &str = "team";

/// Kinds of organisation, on `Organization.type`. The policy only needs to
/// know which organisations provide social care (see
/// [`ORG_KIND_SOCIAL_CARE`]); the other codes are listed for completeness.
pub const ORG_KIND_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/organization-kind";
/// An NHS hospital trust or other hospital provider.
pub const ORG_KIND_HOSPITAL: &str = "hospital";
/// A GP practice.
pub const ORG_KIND_GP_PRACTICE: &str = "gp-practice";
/// A community health provider (district and community nursing).
pub const ORG_KIND_COMMUNITY_HEALTH: &str = "community-health";
/// A council's social care service.
pub const ORG_KIND_SOCIAL_CARE: &str = "social-care";
/// The region itself (the organisation the region administrators belong to).
pub const ORG_KIND_REGION: &str = "region";

/// HL7 confidentiality codes, on `meta.security`.
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// Confidentiality "restricted".
pub const CONFIDENTIALITY_RESTRICTED: &str = "R";
/// Confidentiality "very restricted" (treated exactly like "restricted").
pub const CONFIDENTIALITY_VERY_RESTRICTED: &str = "V";
/// The confidentiality codes that do not restrict anything beyond the
/// ordinary rules: unrestricted, low, moderate, normal.
pub const CONFIDENTIALITY_ORDINARY: [&str; 4] = ["U", "L", "M", "N"];

/// HL7 ActCode, whose information-sensitivity codes appear on
/// `meta.security`.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// Careshare's own sensitivity codes, on `meta.security`.
pub const SENSITIVITY_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/sensitivity";
/// Safeguarding information (children or adults at risk).
pub const SENSITIVITY_SAFEGUARDING: &str = "safeguarding";

/// Explicit sharing of a restricted or sensitive record with another
/// organisation, on `meta.tag`: the code is the id of the organisation the
/// record is shared with (`Organization/<id>` is accepted too).
pub const SHARED_WITH_SYSTEM: &str = "https://careshare.example.org/fhir/CodeSystem/shared-with";

/// HL7 ActReason, whose purpose-of-use codes describe why a record is used.
pub const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// Purpose of use: treatment.
pub const PURPOSE_TREATMENT: &str = "TREAT";
/// Purpose of use: break the glass (emergency access).
pub const PURPOSE_BREAK_GLASS: &str = "BTG";
/// Purpose of use: healthcare operations (used for privacy and audit review).
pub const PURPOSE_OPERATIONS: &str = "HOPERAT";
/// Purpose of use: health system administration.
pub const PURPOSE_SYSTEM_ADMIN: &str = "HSYSADMIN";

/// Consent scopes, on `Consent.scope`.
pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// Consent scope "privacy consent" (about sharing the patient's records).
pub const CONSENT_SCOPE_PRIVACY: &str = "patient-privacy";
