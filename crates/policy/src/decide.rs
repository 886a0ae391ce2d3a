//! The decisions: may this person see, or write, this record now?
//!
//! The order of the checks matters only for which reason a refusal gives;
//! a record is permitted only when every check passes. Checks that would
//! tell something about the record (its labels, who holds it) come after
//! the care-relationship check, so a person with no relationship to the
//! patient learns nothing beyond "no relationship".
//!
//! For speed, everything that depends only on the person and the patient is
//! worked out once in a [`PatientAccess`]; deciding on each record of that
//! patient is then a handful of comparisons.

use chrono::{DateTime, Utc};

use crate::break_glass::BreakGlassGrant;
use crate::decision::{Basis, Decision, DenyReason};
use crate::facts::{Kind, OrgIndex, ResourceFacts};
use crate::fhir::Window;
use crate::patient::{MemberKind, PatientFacts};
use crate::subject::{Purpose, Role, Subject};

/// Resource types that record who is linked to a patient or what the
/// patient agreed to. They cannot be written under break-glass, so an
/// emergency grant cannot be turned into lasting access.
pub const LINKING_TYPES: [&str; 5] = [
    "Patient",
    "EpisodeOfCare",
    "CareTeam",
    "Encounter",
    "Consent",
];

/// Shared working records: any organisation that may write the type and
/// can see the record may update it (a nurse completes a GP's task, anyone
/// caring for the patient corrects an address). Every other type can be
/// changed only by the organisation that wrote it. Deleting is always for
/// the writing organisation alone.
pub const SHARED_WORKING_TYPES: [&str; 8] = [
    "Patient",
    "RelatedPerson",
    "CarePlan",
    "Task",
    "Appointment",
    "AppointmentResponse",
    "CareTeam",
    "Consent",
];

/// The record types a social worker may write besides demographics and
/// care coordination: their own notes and assessments.
pub const SOCIAL_WORKER_NOTE_TYPES: [&str; 4] = [
    "DocumentReference",
    "Communication",
    "Encounter",
    "QuestionnaireResponse",
];

/// Record types only prescribers (GPs and hospital clinicians) may write.
pub const PRESCRIBER_TYPES: [&str; 1] = ["MedicationRequest"];

/// Records that stay visible, to those with a care relationship, despite an
/// objection to sharing: the Patient resource itself (so staff can tell who
/// the person is) and Consents (so staff can see and respect the
/// objection). Labels still apply to them.
pub const OBJECTION_EXEMPT_TYPES: [&str; 2] = ["Patient", "Consent"];

// ---------------------------------------------------------------------------
// Relationships
// ---------------------------------------------------------------------------

fn rank(basis: Basis) -> u8 {
    match basis {
        Basis::CaseloadTeam => 0,
        Basis::CareTeam => 1,
        Basis::GpRegistration => 2,
        Basis::CaseloadOrganisation => 3,
        Basis::HospitalEncounter => 4,
        _ => 5,
    }
}

fn intersect(a: Window, b: Window) -> Window {
    Window {
        start: a.start.max(b.start),
        end: match (a.end, b.end) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        },
    }
}

/// Every care link between this person and this patient, strongest first,
/// with the time each is in force. Roles that do not care for patients
/// have none.
fn links(subject: &Subject, patient: &PatientFacts) -> Vec<(Basis, Window)> {
    let mut out = Vec::new();
    if !subject.role.cares_for_patients() {
        return out;
    }
    let org = subject.organization_id.as_str();
    for ep in &patient.episodes {
        if ep.teams.iter().any(|t| subject.in_team(t)) {
            out.push((Basis::CaseloadTeam, ep.window));
        }
        // An episode that names its teams is those teams' caseload only: a nurse sees her
        // own team's patients, not every team's of her trust. An episode with no team is
        // the managing organisation's.
        if ep.teams.is_empty() && ep.managing_organization.as_deref() == Some(org) {
            out.push((Basis::CaseloadOrganisation, ep.window));
        }
    }
    for ct in &patient.care_teams {
        for m in &ct.members {
            let me = match m.kind {
                MemberKind::PractitionerRole => m.id == subject.practitioner_role_id,
                MemberKind::Practitioner => subject.practitioner_id.as_deref() == Some(&m.id),
                MemberKind::Organization => m.id == org,
                MemberKind::Team => subject.in_team(&m.id),
            };
            if me {
                out.push((Basis::CareTeam, intersect(ct.window, m.window)));
            }
        }
    }
    let registered = patient.gp_organizations.iter().any(|o| o == org)
        || patient
            .gp_practitioner_roles
            .contains(&subject.practitioner_role_id)
        || subject
            .practitioner_id
            .as_ref()
            .is_some_and(|p| patient.gp_practitioners.contains(p));
    if registered {
        out.push((Basis::GpRegistration, Window::ALWAYS));
    }
    if subject.role == Role::HospitalClinician {
        for enc in &patient.encounters {
            if enc.service_provider == org {
                out.push((Basis::HospitalEncounter, enc.window));
            }
        }
    }
    out.sort_by_key(|(basis, _)| rank(*basis));
    out
}

fn grant_windows(subject: &Subject, patient_id: &str, grants: &[BreakGlassGrant]) -> Vec<Window> {
    if !subject.role.is_clinical() {
        return Vec::new();
    }
    grants
        .iter()
        .filter(|g| g.is_for(&subject.user_id, patient_id))
        .map(|g| Window {
            start: Some(g.granted_at),
            end: Some(g.expires_at),
        })
        .collect()
}

/// The strongest care relationship in force at `now`, break-glass aside.
pub fn regular_relationship(
    subject: &Subject,
    patient: &PatientFacts,
    now: DateTime<Utc>,
) -> Option<Basis> {
    links(subject, patient)
        .into_iter()
        .find(|(_, w)| w.contains(now))
        .map(|(b, _)| b)
}

/// Whether the patient's objection to sharing is in force at `now`.
pub fn objection_in_force(patient: &PatientFacts, now: DateTime<Utc>) -> bool {
    patient.objections.iter().any(|o| o.window.contains(now))
}

/// Why the patient is visible to this person at `now`, if they are: the
/// strongest care relationship in force, or else an active break-glass
/// grant. `None` means the patient's record is closed to them.
///
/// This says nothing about individual records, which may still be closed by
/// role, labels or an objection to sharing.
pub fn relationship(
    subject: &Subject,
    patient: &PatientFacts,
    grants: &[BreakGlassGrant],
    now: DateTime<Utc>,
) -> Option<Basis> {
    regular_relationship(subject, patient, now).or_else(|| {
        grant_windows(subject, &patient.patient_id, grants)
            .iter()
            .any(|w| w.contains(now))
            .then_some(Basis::BreakGlass)
    })
}

// ---------------------------------------------------------------------------
// The per-(person, patient) context
// ---------------------------------------------------------------------------

/// Everything about one person and one patient that decisions on that
/// patient's records need, worked out once.
///
/// Links are kept with their time windows, so the same context can be used
/// across a long sync: a break-glass grant that expires half-way stops
/// working half-way.
#[derive(Debug, Clone)]
pub struct PatientAccess<'a> {
    subject: &'a Subject,
    patient_id: String,
    links: Vec<(Basis, Window)>,
    grants: Vec<Window>,
    objections: Vec<Window>,
    orgs: &'a OrgIndex,
}

impl<'a> PatientAccess<'a> {
    /// Works out the context. `grants` may hold any grants (of other people
    /// or patients too); only this person's grants for this patient count.
    ///
    /// To register a new patient, build the context from the new Patient
    /// resource itself (`PatientFacts::from_resources(&new_patient, [])`).
    pub fn new(
        subject: &'a Subject,
        patient: &PatientFacts,
        grants: &[BreakGlassGrant],
        orgs: &'a OrgIndex,
    ) -> PatientAccess<'a> {
        PatientAccess {
            subject,
            patient_id: patient.patient_id.clone(),
            links: links(subject, patient),
            grants: grant_windows(subject, &patient.patient_id, grants),
            objections: patient.objections.iter().map(|o| o.window).collect(),
            orgs,
        }
    }

    /// The patient this context is for.
    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// The strongest care relationship in force at `now`, break-glass aside.
    pub fn regular_basis(&self, now: DateTime<Utc>) -> Option<Basis> {
        self.links
            .iter()
            .find(|(_, w)| w.contains(now))
            .map(|(b, _)| *b)
    }

    /// Whether a break-glass grant is in force at `now`.
    pub fn break_glass_active(&self, now: DateTime<Utc>) -> bool {
        self.grants.iter().any(|w| w.contains(now))
    }

    /// Why the patient is visible at `now`, as [`relationship`] says.
    pub fn relationship(&self, now: DateTime<Utc>) -> Option<Basis> {
        self.regular_basis(now)
            .or_else(|| self.break_glass_active(now).then_some(Basis::BreakGlass))
    }

    /// Whether the patient's objection to sharing is in force at `now`.
    pub fn objection_in_force(&self, now: DateTime<Utc>) -> bool {
        self.objections.iter().any(|w| w.contains(now))
    }

    fn is_for(&self, subject: &Subject) -> bool {
        std::ptr::eq(self.subject, subject) || self.subject == subject
    }
}

fn purpose_for(basis: Basis) -> Purpose {
    if basis == Basis::BreakGlass {
        Purpose::BreakGlass
    } else {
        Purpose::Treatment
    }
}

fn permit(basis: Basis) -> Decision {
    Decision::permit(basis, purpose_for(basis))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Whether the role may see this kind of patient record (labels aside).
fn role_may_read(role: Role, facts: &ResourceFacts, orgs: &OrgIndex) -> bool {
    match role {
        Role::DistrictNurse | Role::CommunityNurse | Role::Gp | Role::HospitalClinician => true,
        Role::SocialWorker => match facts.kind {
            Kind::Demographics | Kind::CareCoordination => true,
            _ => facts
                .author_org
                .as_deref()
                .is_some_and(|a| orgs.is_social_care(a)),
        },
        Role::PrivacyOfficer | Role::RegionAdmin | Role::SourceSystem => false,
    }
}

/// The checks shared by reading and writing: may the person see this record
/// (already known to be in this patient's record)? Gives the basis.
fn read_check(
    subject: &Subject,
    purpose: Purpose,
    access: &PatientAccess<'_>,
    facts: &ResourceFacts,
    now: DateTime<Utc>,
) -> Result<Basis, DenyReason> {
    let role = subject.role;
    if !role.cares_for_patients() {
        return Err(DenyReason::RoleHasNoPatientAccess);
    }
    if !matches!(purpose, Purpose::Treatment | Purpose::BreakGlass) {
        return Err(DenyReason::PurposeNotAllowed);
    }
    let regular = access.regular_basis(now);
    let break_glass = access.break_glass_active(now);
    if purpose == Purpose::BreakGlass && !break_glass {
        return Err(DenyReason::NoActiveBreakGlass);
    }
    if regular.is_none() && !break_glass {
        return Err(DenyReason::NoRelationship);
    }
    if !role_may_read(role, facts, access.orgs) {
        return Err(DenyReason::RoleScope);
    }
    let org = subject.organization_id.as_str();
    let own = facts.author_org.as_deref() == Some(org);
    if facts.labels.limits_organisations() {
        if !facts.labels.allows_role(role) {
            return Err(DenyReason::SensitiveLabel);
        }
        if facts.author_org.is_none() {
            return Err(DenyReason::UnknownAuthorRestricted);
        }
        if !own && !facts.labels.is_shared_with(org) {
            return Err(DenyReason::OtherOrganisationRestricted);
        }
    }
    let needs_break_glass = access.objection_in_force(now)
        && !own
        && !OBJECTION_EXEMPT_TYPES.contains(&facts.resource_type.as_str());
    if needs_break_glass && !break_glass {
        return Err(DenyReason::PatientObjection);
    }
    Ok(match regular {
        Some(basis) if purpose == Purpose::Treatment && !needs_break_glass => basis,
        _ => Basis::BreakGlass,
    })
}

/// May this person see this record of the patient `access` is for?
///
/// The record must be in that patient's record (and in no other patient's:
/// use [`may_read_each`] for records about several patients). Permitted
/// when all of these hold:
///
/// 1. the person's role cares for patients (not privacy officer or region
///    administrator), and the purpose is treatment or break-glass;
/// 2. a care relationship is in force, or a break-glass grant is (purpose
///    break-glass requires the grant);
/// 3. the role may see this kind of record (social workers: demographics,
///    care coordination, and records written by social care organisations);
/// 4. any restricted or sensitive label allows the role, and the person's
///    organisation wrote the record or it was shared with them;
/// 5. if the patient objected to sharing, the person's organisation wrote
///    the record, or it is the Patient or a Consent, or a break-glass grant
///    is in force.
///
/// The permit says which ground it rests on; it is break-glass (purpose
/// `BTG`) whenever the grant was needed or asked for.
pub fn may_read(
    subject: &Subject,
    purpose: Purpose,
    access: &PatientAccess<'_>,
    facts: &ResourceFacts,
    now: DateTime<Utc>,
) -> Decision {
    if !access.is_for(subject) {
        return Decision::deny(DenyReason::ContextMismatch);
    }
    if !facts.is_only_about(&access.patient_id) {
        return Decision::deny(DenyReason::WrongPatient);
    }
    if subject.role == Role::SourceSystem {
        return source_system_read(subject, facts);
    }
    match read_check(subject, purpose, access, facts, now) {
        Ok(basis) => permit(basis),
        Err(reason) => Decision::deny(reason),
    }
}

/// May this person see a record about several patients (for example a
/// joint appointment)? Only if [`may_read`]'s rules permit it for every one
/// of them; `accesses` must hold a context for each. The basis is
/// break-glass if any patient needed it.
pub fn may_read_each(
    subject: &Subject,
    purpose: Purpose,
    accesses: &[&PatientAccess<'_>],
    facts: &ResourceFacts,
    now: DateTime<Utc>,
) -> Decision {
    if subject.role == Role::SourceSystem && facts.kind.is_patient_record() {
        return source_system_read(subject, facts);
    }
    if !facts.kind.is_patient_record() || facts.patients.is_empty() {
        return Decision::deny(DenyReason::WrongPatient);
    }
    let mut result = None;
    for patient in &facts.patients {
        let Some(access) = accesses.iter().find(|a| a.patient_id == *patient) else {
            return Decision::deny(DenyReason::NoRelationship);
        };
        if !access.is_for(subject) {
            return Decision::deny(DenyReason::ContextMismatch);
        }
        match read_check(subject, purpose, access, facts, now) {
            Ok(basis) => {
                result = match result {
                    Some(Basis::BreakGlass) => Some(Basis::BreakGlass),
                    Some(first) if basis != Basis::BreakGlass => Some(first),
                    _ => Some(basis),
                }
            }
            Err(reason) => return Decision::deny(reason),
        }
    }
    match result {
        Some(basis) => permit(basis),
        None => Decision::deny(DenyReason::WrongPatient),
    }
}

/// A source system sees what its own organisation wrote, whoever the
/// patient, and nothing else (no care relationships, so no break-glass and
/// no objection or label applies beyond that).
fn source_system_read(subject: &Subject, facts: &ResourceFacts) -> Decision {
    if facts.author_org.as_deref() == Some(subject.organization_id.as_str()) {
        Decision::permit(Basis::SourceSystem, Purpose::Treatment)
    } else {
        Decision::deny(DenyReason::NotAuthoringOrganisation)
    }
}

/// May this person see a record that is in no patient's record?
///
/// * Directory and reference data: everyone signed in.
/// * The device registry: region administrators and privacy officers.
/// * The audit trail: privacy officers.
/// * Anything else: nobody.
///
/// A restricted or sensitive directory or device entry is further limited to
/// its writing organisation and those it is shared with, except for region
/// administrators (who look after the directory and devices) and privacy
/// officers (who review everything they may read).
pub fn may_read_unlinked(subject: &Subject, facts: &ResourceFacts) -> Decision {
    let role = subject.role;
    if role == Role::SourceSystem
        && matches!(facts.kind, Kind::Directory | Kind::Other)
        && facts.author_org.as_deref() == Some(subject.organization_id.as_str())
    {
        return Decision::permit(Basis::SourceSystem, Purpose::Treatment);
    }
    let (allowed, keeper, basis) = match facts.kind {
        Kind::Demographics | Kind::CareCoordination | Kind::Clinical => {
            return Decision::deny(DenyReason::PatientRecord)
        }
        Kind::Other => return Decision::deny(DenyReason::UnsupportedType),
        Kind::Directory => (true, Role::RegionAdmin, Basis::Directory),
        Kind::DeviceRegistry => (
            matches!(role, Role::RegionAdmin | Role::PrivacyOfficer),
            Role::RegionAdmin,
            if role == Role::PrivacyOfficer {
                Basis::AuditReview
            } else {
                Basis::Administration
            },
        ),
        Kind::Audit => (
            role == Role::PrivacyOfficer,
            Role::PrivacyOfficer,
            Basis::AuditReview,
        ),
    };
    if !allowed {
        return Decision::deny(DenyReason::RoleScope);
    }
    if facts.labels.limits_organisations() && role != keeper && role != Role::PrivacyOfficer {
        let org = subject.organization_id.as_str();
        match facts.author_org.as_deref() {
            None => return Decision::deny(DenyReason::UnknownAuthorRestricted),
            Some(a) if a != org && !facts.labels.is_shared_with(org) => {
                return Decision::deny(DenyReason::OtherOrganisationRestricted)
            }
            Some(_) => {}
        }
    }
    Decision::permit(basis, role.default_purpose())
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// A write: creating a record, replacing it with a new version, or deleting
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// A new record.
    Create(&'a ResourceFacts),
    /// A new version of an existing record.
    Update {
        /// The version being replaced.
        current: &'a ResourceFacts,
        /// The new version.
        proposed: &'a ResourceFacts,
    },
    /// Deleting an existing record.
    Delete(&'a ResourceFacts),
}

impl<'a> WriteOp<'a> {
    fn current(self) -> Option<&'a ResourceFacts> {
        match self {
            WriteOp::Create(_) => None,
            WriteOp::Update { current, .. } | WriteOp::Delete(current) => Some(current),
        }
    }

    fn proposed(self) -> Option<&'a ResourceFacts> {
        match self {
            WriteOp::Create(proposed) | WriteOp::Update { proposed, .. } => Some(proposed),
            WriteOp::Delete(_) => None,
        }
    }

    fn target(self) -> &'a ResourceFacts {
        match self {
            WriteOp::Create(f) | WriteOp::Delete(f) => f,
            WriteOp::Update { proposed, .. } => proposed,
        }
    }

    fn changes_identity(self) -> bool {
        match self {
            WriteOp::Update { current, proposed } => {
                current.resource_type != proposed.resource_type
                    || current.kind.is_patient_record() != proposed.kind.is_patient_record()
                    || current.patients != proposed.patients
            }
            _ => false,
        }
    }
}

/// Whether the role may create or change records of this type (patient
/// records only).
pub fn role_may_write(role: Role, resource_type: &str, kind: Kind) -> bool {
    if !kind.is_patient_record() {
        return false;
    }
    match role {
        Role::Gp | Role::HospitalClinician | Role::SourceSystem => true,
        Role::DistrictNurse | Role::CommunityNurse => !PRESCRIBER_TYPES.contains(&resource_type),
        Role::SocialWorker => {
            matches!(kind, Kind::Demographics | Kind::CareCoordination)
                || SOCIAL_WORKER_NOTE_TYPES.contains(&resource_type)
        }
        Role::PrivacyOfficer | Role::RegionAdmin => false,
    }
}

/// May this person make this change to the record of the patient `access`
/// is for?
///
/// Permitted when all of these hold:
///
/// 1. the record stays the same type and stays about the same (single)
///    patient;
/// 2. the role cares for patients, the purpose is treatment or break-glass,
///    and the role may write this type (table in the crate documentation);
/// 3. the new version is written in the name of the person's own
///    organisation (`meta.source` is theirs, or empty for the hub to fill
///    in);
/// 4. a new Patient may be registered by anyone who cares for patients;
///    every other write needs a care relationship or an active break-glass
///    grant — nobody writes into a patient they cannot see;
/// 5. an update or delete needs the current version to be visible to the
///    person ([`may_read`]);
/// 6. deleting, and updating anything but a shared working record, is for
///    the organisation that wrote the record; so is updating a restricted
///    or sensitive record, and changing a record's labels or sharing;
/// 7. under break-glass, the patient's registration, care links and
///    consents ([`LINKING_TYPES`]) cannot be written.
pub fn may_write(
    subject: &Subject,
    purpose: Purpose,
    access: &PatientAccess<'_>,
    op: WriteOp<'_>,
    now: DateTime<Utc>,
) -> Decision {
    match write_check(subject, purpose, access, op, now) {
        Ok(basis) => permit(basis),
        Err(reason) => Decision::deny(reason),
    }
}

fn write_check(
    subject: &Subject,
    purpose: Purpose,
    access: &PatientAccess<'_>,
    op: WriteOp<'_>,
    now: DateTime<Utc>,
) -> Result<Basis, DenyReason> {
    if !access.is_for(subject) {
        return Err(DenyReason::ContextMismatch);
    }
    if op.changes_identity() {
        return Err(DenyReason::IdentityChange);
    }
    let target = op.target();
    for facts in op.current().into_iter().chain(op.proposed()) {
        if !facts.is_only_about(&access.patient_id) {
            return Err(DenyReason::WrongPatient);
        }
    }
    let role = subject.role;
    if role == Role::SourceSystem {
        return source_system_write(subject, op);
    }
    if !role.cares_for_patients() {
        return Err(DenyReason::RoleHasNoPatientAccess);
    }
    if !matches!(purpose, Purpose::Treatment | Purpose::BreakGlass) {
        return Err(DenyReason::PurposeNotAllowed);
    }
    let resource_type = target.resource_type.as_str();
    if !role_may_write(role, resource_type, target.kind) {
        return Err(DenyReason::WriteScope);
    }
    let org = subject.organization_id.as_str();
    if let Some(proposed) = op.proposed() {
        if proposed.author_org.as_deref().is_some_and(|a| a != org) {
            return Err(DenyReason::WrongAuthor);
        }
    }

    let basis = match op {
        WriteOp::Create(_) if resource_type == "Patient" && purpose == Purpose::Treatment => {
            access.regular_basis(now).unwrap_or(Basis::NewPatient)
        }
        WriteOp::Create(_) => {
            let regular = access.regular_basis(now);
            let break_glass = access.break_glass_active(now);
            if purpose == Purpose::BreakGlass && !break_glass {
                return Err(DenyReason::NoActiveBreakGlass);
            }
            match regular {
                Some(basis) if purpose == Purpose::Treatment => basis,
                _ if break_glass => Basis::BreakGlass,
                _ => return Err(DenyReason::NoRelationship),
            }
        }
        WriteOp::Update { current, proposed } => {
            let basis = read_check(subject, purpose, access, current, now)?;
            let own = current.author_org.as_deref() == Some(org);
            let shared = SHARED_WORKING_TYPES.contains(&resource_type)
                && !current.labels.limits_organisations();
            if !own && !shared {
                return Err(DenyReason::NotAuthoringOrganisation);
            }
            if !own && current.labels != proposed.labels {
                return Err(DenyReason::LabelChange);
            }
            basis
        }
        WriteOp::Delete(current) => {
            let basis = read_check(subject, purpose, access, current, now)?;
            if current.author_org.as_deref() != Some(org) {
                return Err(DenyReason::NotAuthoringOrganisation);
            }
            basis
        }
    };
    if basis == Basis::BreakGlass && LINKING_TYPES.contains(&resource_type) {
        return Err(DenyReason::BreakGlassWriteScope);
    }
    Ok(basis)
}

/// A source system writes in its own organisation's name, for any patient
/// (it is where registrations and care links come from), and changes or
/// deletes only what its organisation wrote.
fn source_system_write(subject: &Subject, op: WriteOp<'_>) -> Result<Basis, DenyReason> {
    let org = subject.organization_id.as_str();
    if let Some(proposed) = op.proposed() {
        if proposed.author_org.as_deref().is_some_and(|a| a != org) {
            return Err(DenyReason::WrongAuthor);
        }
    }
    if let Some(current) = op.current() {
        if current.author_org.as_deref() != Some(org) {
            return Err(DenyReason::NotAuthoringOrganisation);
        }
    }
    Ok(Basis::SourceSystem)
}

/// May this person make this change to a record that is in no patient's
/// record?
///
/// * Directory, reference data and the device registry: region
///   administrators, for purpose system administration.
/// * The audit trail: nobody; the hub appends to it itself.
/// * Anything else: nobody.
pub fn may_write_unlinked(subject: &Subject, purpose: Purpose, op: WriteOp<'_>) -> Decision {
    if op.changes_identity() {
        return Decision::deny(DenyReason::IdentityChange);
    }
    let facts = op.current().into_iter().chain(op.proposed());
    let mut saw_audit = false;
    for f in facts {
        match f.kind {
            Kind::Demographics | Kind::CareCoordination | Kind::Clinical => {
                return Decision::deny(DenyReason::PatientRecord)
            }
            Kind::Other if subject.role != Role::SourceSystem => {
                return Decision::deny(DenyReason::UnsupportedType)
            }
            Kind::Audit => saw_audit = true,
            Kind::Other => {}
            Kind::Directory | Kind::DeviceRegistry => {}
        }
    }
    if saw_audit {
        return Decision::deny(DenyReason::AuditIsAppendOnly);
    }
    if subject.role == Role::SourceSystem {
        let devices = op
            .current()
            .into_iter()
            .chain(op.proposed())
            .any(|f| f.kind == Kind::DeviceRegistry);
        if devices {
            return Decision::deny(DenyReason::WriteScope);
        }
        return match source_system_write(subject, op) {
            Ok(basis) => Decision::permit(basis, Purpose::Treatment),
            Err(reason) => Decision::deny(reason),
        };
    }
    if subject.role != Role::RegionAdmin {
        return Decision::deny(DenyReason::WriteScope);
    }
    if purpose != Purpose::SystemAdministration {
        return Decision::deny(DenyReason::PurposeNotAllowed);
    }
    Decision::permit(Basis::Administration, Purpose::SystemAdministration)
}
