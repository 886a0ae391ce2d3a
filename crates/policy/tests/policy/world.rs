//! A small demo region for the tables, and the one `check` helper.
//!
//! Organisations: `gp-a` (GP practice), `community` (district and community
//! nursing), `hospital`, `council` (social care), `gp-b` (another practice),
//! `region` (the region's own organisation). One person per role.

use careshare_policy::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

pub const PATIENT: &str = "p1";
/// A health organisation that is nobody's own in these tables.
pub const OTHER_ORG: &str = "gp-b";
pub const SOCIAL_CARE_ORG: &str = "council";

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap()
}

pub fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

pub fn orgs() -> OrgIndex {
    let mut index = OrgIndex::new();
    index.insert("gp-a", OrgKind::GpPractice);
    index.insert("gp-b", OrgKind::GpPractice);
    index.insert("community", OrgKind::CommunityHealth);
    index.insert("hospital", OrgKind::Hospital);
    index.insert("council", OrgKind::SocialCare);
    index.insert("region", OrgKind::Region);
    index
}

/// The seven roles of people, in table column order (the source-system
/// role has its own tests).
pub const ROLES: [Role; 7] = [
    Role::DistrictNurse,
    Role::CommunityNurse,
    Role::Gp,
    Role::HospitalClinician,
    Role::SocialWorker,
    Role::PrivacyOfficer,
    Role::RegionAdmin,
];

pub fn subject(role: Role) -> Subject {
    let (org, team) = match role {
        Role::DistrictNurse => ("community", Some("team-dn")),
        Role::CommunityNurse => ("community", Some("team-cn")),
        Role::Gp => ("gp-a", Some("team-gp")),
        Role::HospitalClinician => ("hospital", Some("team-ward")),
        Role::SocialWorker => ("council", Some("team-sw")),
        Role::PrivacyOfficer => ("region", None),
        Role::RegionAdmin => ("region", None),
        Role::SourceSystem => ("hospital", None),
    };
    Subject {
        user_id: format!("u-{}", role.code()),
        practitioner_role_id: format!("pr-{}", role.code()),
        practitioner_id: Some(format!("prac-{}", role.code())),
        role,
        organization_id: org.into(),
        team_ids: team.map(|t| vec![t.to_owned()]).unwrap_or_default(),
    }
}

/// The person's team, or a team nobody is in for roles without one.
pub fn team_of(s: &Subject) -> String {
    s.team_ids
        .first()
        .cloned()
        .unwrap_or_else(|| "team-nobody".into())
}

pub fn reference(r: &str) -> Value {
    json!({ "reference": r })
}

pub fn patient_json(gp: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": PATIENT});
    if let Some(gp) = gp {
        p["generalPractitioner"] = json!([reference(gp)]);
    }
    p
}

pub fn episode(status: &str, team: Option<&str>, org: Option<&str>, period: Value) -> Value {
    let mut ep = json!({
        "resourceType": "EpisodeOfCare", "id": "ep-1", "status": status,
        "patient": reference(&format!("Patient/{PATIENT}")),
    });
    if let Some(team) = team {
        ep["team"] = json!([reference(&format!("CareTeam/{team}"))]);
    }
    if let Some(org) = org {
        ep["managingOrganization"] = reference(&format!("Organization/{org}"));
    }
    if !period.is_null() {
        ep["period"] = period;
    }
    ep
}

pub fn care_team(status: &str, member: &str, member_period: Value) -> Value {
    let mut participant = json!({ "member": reference(member) });
    if !member_period.is_null() {
        participant["period"] = member_period;
    }
    json!({
        "resourceType": "CareTeam", "id": "ct-1", "status": status,
        "subject": reference(&format!("Patient/{PATIENT}")),
        "participant": [participant],
    })
}

pub fn encounter(status: &str, provider: &str) -> Value {
    json!({
        "resourceType": "Encounter", "id": "enc-1", "status": status,
        "subject": reference(&format!("Patient/{PATIENT}")),
        "serviceProvider": reference(&format!("Organization/{provider}")),
    })
}

pub fn objection(status: &str, period: Value) -> Value {
    let mut provision = json!({"type": "deny"});
    if !period.is_null() {
        provision["period"] = period;
    }
    json!({
        "resourceType": "Consent", "id": "consent-1", "status": status,
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy"
        }]},
        "patient": reference(&format!("Patient/{PATIENT}")),
        "provision": provision,
    })
}

pub fn grant(user: &str, patient: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> BreakGlassGrant {
    BreakGlassGrant {
        user_id: user.into(),
        patient_id: patient.into(),
        reason: "covering a colleague on leave".into(),
        granted_at: from,
        expires_at: to,
    }
}

/// The ways a patient can be related to the person in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rel {
    None,
    TeamCaseload,
    OrgCaseload,
    CareTeamRole,
    CareTeamOrg,
    CareTeamTeam,
    GpRegistered,
    GpNamedRole,
    HospitalEncounter,
    PlannedEncounter,
    FinishedEncounter,
    BreakGlassActive,
    BreakGlassExpired,
    BreakGlassNotYet,
    BreakGlassOtherUser,
    BreakGlassOtherPatient,
    FinishedEpisode,
    OnHoldEpisode,
    EpisodeEnded,
    EpisodeNotStarted,
    EpisodeUnreadablePeriod,
    EpisodeOtherPatient,
    CareTeamInactive,
    CareTeamMemberLeft,
}

/// The patient and grants for a relationship, seen from `s`.
pub fn scenario(s: &Subject, rel: Rel) -> (Value, Vec<Value>, Vec<BreakGlassGrant>) {
    let own_org = s.organization_id.clone();
    let team = team_of(s);
    let t = now();
    let mut gp = None;
    let mut related = Vec::new();
    let mut grants = Vec::new();
    let past = json!({"start": "2024-01-01", "end": "2025-02-28"});
    match rel {
        Rel::None => {}
        Rel::TeamCaseload => related.push(episode("active", Some(&team), None, Value::Null)),
        Rel::OrgCaseload => related.push(episode("active", None, Some(&own_org), Value::Null)),
        Rel::CareTeamRole => related.push(care_team(
            "active",
            &format!("PractitionerRole/{}", s.practitioner_role_id),
            Value::Null,
        )),
        Rel::CareTeamOrg => related.push(care_team(
            "active",
            &format!("Organization/{own_org}"),
            Value::Null,
        )),
        Rel::CareTeamTeam => related.push(care_team(
            "active",
            &format!("CareTeam/{team}"),
            Value::Null,
        )),
        Rel::GpRegistered => gp = Some(format!("Organization/{own_org}")),
        Rel::GpNamedRole => {
            gp = Some("PractitionerRole/pr-someone".to_owned());
            related.push(json!({
                "resourceType": "PractitionerRole", "id": "pr-someone",
                "organization": reference(&format!("Organization/{own_org}")),
            }));
        }
        Rel::HospitalEncounter => related.push(encounter("in-progress", &own_org)),
        Rel::PlannedEncounter => related.push(encounter("planned", &own_org)),
        Rel::FinishedEncounter => related.push(encounter("finished", &own_org)),
        Rel::BreakGlassActive => {
            grants.push(grant(&s.user_id, PATIENT, t - hours(1), t + hours(3)))
        }
        Rel::BreakGlassExpired => {
            grants.push(grant(&s.user_id, PATIENT, t - hours(5), t - hours(1)))
        }
        Rel::BreakGlassNotYet => {
            grants.push(grant(&s.user_id, PATIENT, t + hours(1), t + hours(5)))
        }
        Rel::BreakGlassOtherUser => {
            grants.push(grant("u-someone", PATIENT, t - hours(1), t + hours(3)))
        }
        Rel::BreakGlassOtherPatient => {
            grants.push(grant(&s.user_id, "p2", t - hours(1), t + hours(3)))
        }
        Rel::FinishedEpisode => related.push(episode(
            "finished",
            Some(&team),
            Some(&own_org),
            Value::Null,
        )),
        Rel::OnHoldEpisode => {
            related.push(episode("onhold", Some(&team), Some(&own_org), Value::Null))
        }
        Rel::EpisodeEnded => related.push(episode("active", Some(&team), Some(&own_org), past)),
        Rel::EpisodeNotStarted => related.push(episode(
            "active",
            Some(&team),
            Some(&own_org),
            json!({"start": "2025-03-02"}),
        )),
        Rel::EpisodeUnreadablePeriod => related.push(episode(
            "active",
            Some(&team),
            Some(&own_org),
            json!({"start": "last tuesday"}),
        )),
        Rel::EpisodeOtherPatient => {
            let mut ep = episode("active", Some(&team), Some(&own_org), Value::Null);
            ep["patient"] = reference("Patient/p2");
            related.push(ep);
        }
        Rel::CareTeamInactive => related.push(care_team(
            "inactive",
            &format!("PractitionerRole/{}", s.practitioner_role_id),
            Value::Null,
        )),
        Rel::CareTeamMemberLeft => related.push(care_team(
            "active",
            &format!("PractitionerRole/{}", s.practitioner_role_id),
            json!({"end": "2025-02-01"}),
        )),
    }
    (patient_json(gp.as_deref()), related, grants)
}

/// Who wrote a record, seen from the person deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    Own,
    Other,
    SocialCare,
    Unknown,
}

pub fn author_org(s: &Subject, author: Author) -> Option<String> {
    match author {
        Author::Own => Some(s.organization_id.clone()),
        Author::Other => Some(OTHER_ORG.into()),
        Author::SocialCare => Some(SOCIAL_CARE_ORG.into()),
        Author::Unknown => None,
    }
}

/// A label as written on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Restricted,
    VeryRestricted,
    Act(&'static str),
    Safeguarding,
    CareshareOther,
    /// Shared with the deciding person's organisation.
    SharedWithMe,
    /// Shared with an organisation that is not the deciding person's.
    SharedElsewhere,
}

/// A record of `resource_type` about the patient, written by `author`,
/// carrying `labels`.
pub fn record(s: &Subject, resource_type: &str, author: Author, labels: &[Label]) -> Value {
    let patient_ref = reference(&format!("Patient/{PATIENT}"));
    let mut r = json!({"resourceType": resource_type, "id": "r-1"});
    match resource_type {
        "Patient" => r["id"] = json!(PATIENT),
        "AllergyIntolerance" | "EpisodeOfCare" | "Consent" | "RelatedPerson" | "Immunization" => {
            r["patient"] = patient_ref
        }
        "Task" => r["for"] = patient_ref,
        "Appointment" => r["participant"] = json!([{ "actor": patient_ref }]),
        _ => r["subject"] = patient_ref,
    }
    let mut meta = json!({});
    if let Some(org) = author_org(s, author) {
        meta["source"] = json!(format!("Organization/{org}"));
    }
    let mut security = Vec::new();
    let mut tags = Vec::new();
    for label in labels {
        let v3 = |system: &str, code: &str| json!({"system": system, "code": code});
        match label {
            Label::Restricted => security.push(v3(
                "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "R",
            )),
            Label::VeryRestricted => security.push(v3(
                "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "V",
            )),
            Label::Act(code) => {
                security.push(v3("http://terminology.hl7.org/CodeSystem/v3-ActCode", code))
            }
            Label::Safeguarding => security.push(v3(
                "https://careshare.example.org/fhir/CodeSystem/sensitivity",
                "safeguarding",
            )),
            Label::CareshareOther => security.push(v3(
                "https://careshare.example.org/fhir/CodeSystem/sensitivity",
                "gender-identity",
            )),
            Label::SharedWithMe => tags.push(v3(
                "https://careshare.example.org/fhir/CodeSystem/shared-with",
                &s.organization_id,
            )),
            Label::SharedElsewhere => tags.push(v3(
                "https://careshare.example.org/fhir/CodeSystem/shared-with",
                "somewhere-else",
            )),
        }
    }
    if !security.is_empty() {
        meta["security"] = json!(security);
    }
    if !tags.is_empty() {
        meta["tag"] = json!(tags);
    }
    r["meta"] = meta;
    r
}

pub fn facts_of(
    s: &Subject,
    resource_type: &str,
    author: Author,
    labels: &[Label],
) -> ResourceFacts {
    ResourceFacts::from_json(&record(s, resource_type, author, labels)).unwrap()
}

/// Everything needed to decide for one person and the patient.
pub struct Setup {
    pub subject: Subject,
    pub patient: PatientFacts,
    pub grants: Vec<BreakGlassGrant>,
    pub orgs: OrgIndex,
}

impl Setup {
    pub fn new(role: Role, rel: Rel) -> Setup {
        Setup::with(role, rel, &[])
    }

    /// `extra` resources are added to the patient's related resources.
    pub fn with(role: Role, rel: Rel, extra: &[Value]) -> Setup {
        let subject = subject(role);
        let (patient, mut related, grants) = scenario(&subject, rel);
        related.extend(extra.iter().cloned());
        let patient = PatientFacts::from_resources(&patient, &related).unwrap();
        Setup {
            subject,
            patient,
            grants,
            orgs: orgs(),
        }
    }

    pub fn access(&self) -> PatientAccess<'_> {
        PatientAccess::new(&self.subject, &self.patient, &self.grants, &self.orgs)
    }

    pub fn read(&self, facts: &ResourceFacts) -> Decision {
        self.read_for(self.subject.role.default_purpose(), facts)
    }

    pub fn read_for(&self, purpose: Purpose, facts: &ResourceFacts) -> Decision {
        may_read(&self.subject, purpose, &self.access(), facts, now())
    }

    pub fn write(&self, op: WriteOp<'_>) -> Decision {
        self.write_for(self.subject.role.default_purpose(), op)
    }

    pub fn write_for(&self, purpose: Purpose, op: WriteOp<'_>) -> Decision {
        may_write(&self.subject, purpose, &self.access(), op, now())
    }

    pub fn facts(&self, resource_type: &str, author: Author, labels: &[Label]) -> ResourceFacts {
        facts_of(&self.subject, resource_type, author, labels)
    }
}

/// Checks decisions against expectations and reports every mismatch at
/// once.
///
/// An expectation is one of:
/// * `ok` — permitted on a care relationship (not break-glass);
/// * `bg` — permitted on break-glass (and then the purpose is `BTG`);
/// * `deny` — refused, for whatever reason;
/// * a basis code (`caseload-team`, `directory`, …) — permitted on exactly
///   that ground;
/// * a deny reason code (`no-relationship`, `sensitive-label`, …) — refused
///   for exactly that reason.
#[track_caller]
pub fn check<I, N>(cases: I)
where
    I: IntoIterator<Item = (N, Decision, &'static str)>,
    N: std::fmt::Display,
{
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, decision, expected) in cases {
        count += 1;
        if let Decision::Permit { basis, purpose } = decision {
            if (basis == Basis::BreakGlass) != (purpose == Purpose::BreakGlass) {
                failures.push(format!(
                    "{name}: basis {basis:?} recorded with purpose {purpose}"
                ));
            }
        }
        let ok = match expected {
            "ok" => decision.is_permit() && decision.basis() != Some(Basis::BreakGlass),
            "bg" => decision.basis() == Some(Basis::BreakGlass),
            "deny" => !decision.is_permit(),
            code => decision.code() == code,
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expected}, got {}",
                decision.code()
            ));
        }
    }
    assert!(count > 0, "an empty table checks nothing");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Expands a table whose rows have one expectation per role (in [`ROLES`]
/// order) into cases for [`check`].
pub fn per_role<R: std::fmt::Debug + Copy>(
    rows: &[(R, [&'static str; 7])],
    decide: impl Fn(R, Role) -> Decision,
) -> Vec<(String, Decision, &'static str)> {
    let mut cases = Vec::new();
    for (row, expected) in rows {
        for (role, expected) in ROLES.iter().zip(expected) {
            cases.push((format!("{row:?} / {role}"), decide(*row, *role), *expected));
        }
    }
    cases
}
