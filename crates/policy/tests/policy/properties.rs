//! Properties over generated people, patients, grants and records.

use careshare_policy::*;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::world::*;

/// `OWN-ORG`, `OWN-TEAM` and `OWN-ROLE` stand for the deciding person's
/// organisation, team and PractitionerRole; they are filled in once the
/// person is known, so that links to them are common.
const ORGS: [&str; 9] = [
    "OWN-ORG",
    "OWN-ORG",
    "OWN-ORG",
    "gp-a",
    "gp-b",
    "community",
    "hospital",
    "council",
    "region",
];
const TEAMS: [&str; 7] = [
    "OWN-TEAM",
    "OWN-TEAM",
    "team-dn",
    "team-cn",
    "team-gp",
    "team-ward",
    "team-sw",
];

fn personalise(v: &Value, s: &Subject) -> Value {
    let text = v
        .to_string()
        .replace("OWN-ORG", &s.organization_id)
        .replace("OWN-TEAM", &team_of(s))
        .replace("OWN-ROLE", &s.practitioner_role_id);
    serde_json::from_str(&text).unwrap()
}

fn period() -> impl Strategy<Value = Value> {
    select(vec![
        Value::Null,
        json!({"end": "2025-02-01"}),
        json!({"end": "2025-03-01"}),
        json!({"start": "2025-01-01"}),
        json!({"start": "2025-04-01"}),
        json!({"start": "2025-03-01T09:00:00Z"}),
        json!({"end": "2025-03-01T09:00:00Z"}),
        json!({"end": "2025-03-01T08:59:59Z"}),
        json!({"end": "someday"}),
        json!("2025"),
    ])
}

fn patient_ref() -> impl Strategy<Value = Value> {
    select(vec!["Patient/p1", "Patient/p1", "Patient/p1", "Patient/p2"]).prop_map(reference)
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("PractitionerRole/OWN-ROLE".to_owned()),
        1 => select(ROLES.to_vec()).prop_map(|r| format!("PractitionerRole/pr-{}", r.code())),
        1 => select(ROLES.to_vec()).prop_map(|r| format!("Practitioner/prac-{}", r.code())),
        1 => select(ORGS.to_vec()).prop_map(|o| format!("Organization/{o}")),
        1 => select(TEAMS.to_vec()).prop_map(|t| format!("CareTeam/{t}")),
    ]
}

fn episode_json() -> impl Strategy<Value = Value> {
    (
        select(vec![
            "active",
            "active",
            "active",
            "active",
            "finished",
            "onhold",
            "planned",
            "cancelled",
        ]),
        proptest::option::of(select(TEAMS.to_vec())),
        proptest::option::of(select(ORGS.to_vec())),
        period(),
        patient_ref(),
    )
        .prop_map(|(status, team, org, period, patient)| {
            let mut ep =
                json!({"resourceType": "EpisodeOfCare", "status": status, "patient": patient});
            if let Some(t) = team {
                ep["team"] = json!([reference(&format!("CareTeam/{t}"))]);
            }
            if let Some(o) = org {
                ep["managingOrganization"] = reference(&format!("Organization/{o}"));
            }
            if !period.is_null() {
                ep["period"] = period;
            }
            ep
        })
}

fn care_team_json() -> impl Strategy<Value = Value> {
    (
        select(vec![
            "active",
            "active",
            "active",
            "inactive",
            "proposed",
            "suspended",
        ]),
        member(),
        period(),
        period(),
        patient_ref(),
    )
        .prop_map(|(status, member, team_period, member_period, patient)| {
            let mut participant = json!({"member": reference(&member)});
            if !member_period.is_null() {
                participant["period"] = member_period;
            }
            let mut ct = json!({
                "resourceType": "CareTeam", "status": status, "subject": patient,
                "participant": [participant]
            });
            if !team_period.is_null() {
                ct["period"] = team_period;
            }
            ct
        })
}

fn encounter_json() -> impl Strategy<Value = Value> {
    (
        select(vec![
            "in-progress",
            "arrived",
            "planned",
            "finished",
            "onleave",
        ]),
        select(ORGS.to_vec()),
        patient_ref(),
    )
        .prop_map(|(status, org, patient)| {
            json!({
                "resourceType": "Encounter", "status": status, "subject": patient,
                "serviceProvider": reference(&format!("Organization/{org}"))
            })
        })
}

fn consent_json() -> impl Strategy<Value = Value> {
    (
        select(vec!["active", "active", "active", "inactive", "draft"]),
        select(vec!["deny", "deny", "deny", "permit"]),
        period(),
        patient_ref(),
    )
        .prop_map(|(status, kind, period, patient)| {
            let mut c = objection(status, period);
            c["provision"]["type"] = json!(kind);
            c["patient"] = patient;
            c
        })
}

/// A link to the deciding person, in force or not depending on its period.
fn own_link_json() -> impl Strategy<Value = Value> {
    (0..3u8, period()).prop_map(|(which, period)| {
        let mut v = match which {
            0 => episode("active", Some("OWN-TEAM"), None, Value::Null),
            1 => care_team("active", "PractitionerRole/OWN-ROLE", Value::Null),
            _ => encounter("in-progress", "OWN-ORG"),
        };
        if !period.is_null() {
            v["period"] = period;
        }
        v
    })
}

/// Any mixture of links; the objection Consents come separately.
fn related_json() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        prop_oneof![
            3 => own_link_json(),
            1 => episode_json(),
            1 => care_team_json(),
            1 => encounter_json(),
        ],
        0..4,
    )
}

fn gp() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        select(ORGS.to_vec()).prop_map(|o| format!("Organization/{o}")),
        select(ROLES.to_vec()).prop_map(|r| format!("PractitionerRole/pr-{}", r.code())),
    ])
}

#[derive(Debug, Clone)]
struct GrantSpec {
    own_user: bool,
    own_patient: bool,
    start: i64,
    length: i64,
}

fn grant_spec() -> impl Strategy<Value = GrantSpec> {
    (any::<bool>(), any::<bool>(), -10i64..4, 0i64..8).prop_map(
        |(own_user, own_patient, start, length)| GrantSpec {
            own_user: own_user || start % 2 == 0,
            own_patient: own_patient || start % 3 == 0,
            start,
            length,
        },
    )
}

fn make_grant(s: &Subject, spec: &GrantSpec) -> BreakGlassGrant {
    let from = now() + hours(spec.start);
    grant(
        if spec.own_user { &s.user_id } else { "u-other" },
        if spec.own_patient { PATIENT } else { "p2" },
        from,
        from + hours(spec.length),
    )
}

fn label() -> impl Strategy<Value = Label> {
    select(vec![
        Label::Restricted,
        Label::VeryRestricted,
        Label::Act("SEX"),
        Label::Act("STD"),
        Label::Act("HIV"),
        Label::Act("PSY"),
        Label::Act("ETH"),
        Label::Act("SDV"),
        Label::Act("GDIS"),
        Label::Safeguarding,
        Label::CareshareOther,
    ])
}

fn record_json() -> impl Strategy<Value = (String, Option<&'static str>, Vec<Label>, bool)> {
    (
        select(vec![
            "Patient",
            "Observation",
            "Condition",
            "AllergyIntolerance",
            "MedicationRequest",
            "CarePlan",
            "Task",
            "Flag",
            "Consent",
            "EpisodeOfCare",
            "CareTeam",
            "Encounter",
            "DocumentReference",
            "Basic",
        ]),
        proptest::option::weighted(0.9, select(ORGS.to_vec())),
        prop::collection::vec(label(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(t, org, labels, shared)| (t.to_owned(), org, labels, shared))
}

/// A generated situation: who, which patient, which grants, which record,
/// for what purpose.
#[derive(Debug, Clone)]
struct Situation {
    role: Role,
    gp: Option<String>,
    related: Vec<Value>,
    objections: Vec<Value>,
    grants: Vec<GrantSpec>,
    record: (String, Option<&'static str>, Vec<Label>, bool),
    purpose: Purpose,
}

fn situation() -> impl Strategy<Value = Situation> {
    (
        select(ROLES.to_vec()),
        gp(),
        related_json(),
        prop::collection::vec(consent_json(), 0..3),
        prop::collection::vec(grant_spec(), 0..3),
        record_json(),
        prop_oneof![
            8 => Just(Purpose::Treatment),
            2 => Just(Purpose::BreakGlass),
            1 => select(Purpose::ALL.to_vec()),
        ],
    )
        .prop_map(
            |(role, gp, related, objections, grants, record, purpose)| Situation {
                role,
                gp,
                related,
                objections,
                grants,
                record,
                purpose,
            },
        )
}

struct Built {
    subject: Subject,
    patient: PatientFacts,
    grants: Vec<BreakGlassGrant>,
    facts: ResourceFacts,
}

fn build(s: &Situation, with_objections: bool, extra_label: Option<Label>) -> Built {
    let subject = subject(s.role);
    let mut related: Vec<Value> = s.related.iter().map(|v| personalise(v, &subject)).collect();
    if with_objections {
        related.extend(s.objections.iter().cloned());
    }
    let patient = personalise(&patient_json(s.gp.as_deref()), &subject);
    let patient = PatientFacts::from_resources(&patient, &related).unwrap();
    let grants = s.grants.iter().map(|g| make_grant(&subject, g)).collect();
    let (resource_type, org, labels, shared) = &s.record;
    let mut value = record(&subject, resource_type, Author::Unknown, &[]);
    let mut all_labels = labels.clone();
    all_labels.extend(extra_label);
    if *shared {
        all_labels.push(Label::SharedWithMe);
    }
    let labelled = record(&subject, resource_type, Author::Unknown, &all_labels);
    value["meta"] = labelled["meta"].clone();
    if let Some(org) = org {
        value["meta"]["source"] = json!(format!("Organization/{org}"));
    }
    let facts = ResourceFacts::from_json(&personalise(&value, &subject)).unwrap();
    Built {
        subject,
        patient,
        grants,
        facts,
    }
}

fn t() -> DateTime<Utc> {
    now()
}

fn read(b: &Built, purpose: Purpose) -> Decision {
    let orgs = orgs();
    let access = PatientAccess::new(&b.subject, &b.patient, &b.grants, &orgs);
    may_read(&b.subject, purpose, &access, &b.facts, t())
}

/// Update in place (the same record, restamped by the person's own
/// organisation) and create.
fn writes(b: &Built, purpose: Purpose) -> [Decision; 3] {
    let orgs = orgs();
    let access = PatientAccess::new(&b.subject, &b.patient, &b.grants, &orgs);
    let mut proposed = b.facts.clone();
    proposed.author_org = Some(b.subject.organization_id.clone());
    [
        may_write(&b.subject, purpose, &access, WriteOp::Create(&b.facts), t()),
        may_write(
            &b.subject,
            purpose,
            &access,
            WriteOp::Update {
                current: &b.facts,
                proposed: &proposed,
            },
            t(),
        ),
        may_write(&b.subject, purpose, &access, WriteOp::Delete(&b.facts), t()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// No permit on a patient's record without a relationship; break-glass
    /// permits only under an active grant; other permits only on a link.
    #[test]
    fn no_permit_without_a_relationship(s in situation()) {
        let b = build(&s, true, None);
        let rel = relationship(&b.subject, &b.patient, &b.grants, t());
        let regular = regular_relationship(&b.subject, &b.patient, t());
        let grant_active = b.grants.iter().any(|g| g.is_for(&b.subject.user_id, PATIENT) && g.is_active(t()));
        let mut decisions = vec![read(&b, s.purpose)];
        decisions.extend(writes(&b, s.purpose));
        for d in decisions {
            match d.basis() {
                None => {}
                Some(Basis::NewPatient) => prop_assert_eq!(b.facts.resource_type.as_str(), "Patient"),
                Some(Basis::BreakGlass) => {
                    prop_assert!(rel.is_some());
                    prop_assert!(grant_active);
                    prop_assert!(b.subject.role.is_clinical());
                }
                Some(basis) => {
                    prop_assert!(rel.is_some());
                    prop_assert_eq!(Some(basis), regular);
                }
            }
        }
    }

    /// Grants that are not in force (expired or not yet begun) change no
    /// decision.
    #[test]
    fn expired_grants_change_nothing(s in situation()) {
        let with_all = build(&s, true, None);
        let mut only_active = build(&s, true, None);
        only_active.grants.retain(|g| g.is_active(t()));
        prop_assert_eq!(read(&with_all, s.purpose), read(&only_active, s.purpose));
        prop_assert_eq!(writes(&with_all, s.purpose), writes(&only_active, s.purpose));
        prop_assert_eq!(
            relationship(&with_all.subject, &with_all.patient, &with_all.grants, t()),
            relationship(&only_active.subject, &only_active.patient, &only_active.grants, t())
        );
        let none_active = with_all.grants.iter().all(|g| !g.is_active(t()));
        if none_active && regular_relationship(&with_all.subject, &with_all.patient, t()).is_none() {
            prop_assert!(!read(&with_all, s.purpose).is_permit());
        }
    }

    /// Adding a label never turns a refusal into a permit, for reading or
    /// for changing the record.
    #[test]
    fn a_label_never_opens(s in situation(), extra in label()) {
        let plain = build(&s, true, None);
        let labelled = build(&s, true, Some(extra));
        if !read(&plain, s.purpose).is_permit() {
            prop_assert!(!read(&labelled, s.purpose).is_permit());
        }
        let [_, update, delete] = writes(&plain, s.purpose);
        let [_, update_l, delete_l] = writes(&labelled, s.purpose);
        if !update.is_permit() {
            prop_assert!(!update_l.is_permit());
        }
        if !delete.is_permit() {
            prop_assert!(!delete_l.is_permit());
        }
    }

    /// An objection never turns a refusal into a permit.
    #[test]
    fn an_objection_never_opens(s in situation()) {
        let without = build(&s, false, None);
        let with = build(&s, true, None);
        if !read(&without, s.purpose).is_permit() {
            prop_assert!(!read(&with, s.purpose).is_permit());
        }
        for (a, b) in writes(&without, s.purpose).iter().zip(writes(&with, s.purpose)) {
            if !a.is_permit() {
                prop_assert!(!b.is_permit());
            }
        }
    }

    /// Privacy officers and region administrators never see or write a
    /// patient's record, whatever the links.
    #[test]
    fn no_patient_records_for_oversight_roles(s in situation()) {
        let mut s = s;
        s.role = if s.grants.len() % 2 == 0 { Role::PrivacyOfficer } else { Role::RegionAdmin };
        let b = build(&s, true, None);
        prop_assert!(!read(&b, s.purpose).is_permit());
        for d in writes(&b, s.purpose) {
            prop_assert!(!d.is_permit());
        }
        prop_assert_eq!(relationship(&b.subject, &b.patient, &b.grants, t()), None);
    }

    /// Records in a patient's record are never opened as unlinked records.
    #[test]
    fn patient_records_are_never_unlinked(s in situation()) {
        let b = build(&s, true, None);
        prop_assert!(b.facts.kind.is_patient_record());
        prop_assert!(!may_read_unlinked(&b.subject, &b.facts).is_permit());
    }
}

// ---------------------------------------------------------------------------
// Robustness: any JSON at all is read without panicking.
// ---------------------------------------------------------------------------

const KEYS: [&str; 28] = [
    "resourceType",
    "id",
    "meta",
    "source",
    "security",
    "tag",
    "system",
    "code",
    "coding",
    "subject",
    "patient",
    "for",
    "reference",
    "status",
    "period",
    "start",
    "end",
    "team",
    "managingOrganization",
    "participant",
    "member",
    "actor",
    "serviceProvider",
    "scope",
    "provision",
    "type",
    "generalPractitioner",
    "organization",
];

const STRINGS: [&str; 30] = [
    "Patient",
    "Observation",
    "EpisodeOfCare",
    "CareTeam",
    "Encounter",
    "Consent",
    "PractitionerRole",
    "Appointment",
    "Provenance",
    "Patient/p1",
    "Organization/gp-a",
    "CareTeam/team-dn",
    "PractitionerRole/pr-gp",
    "active",
    "in-progress",
    "deny",
    "patient-privacy",
    "http://terminology.hl7.org/CodeSystem/consentscope",
    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "https://careshare.example.org/fhir/CodeSystem/shared-with",
    "https://careshare.example.org/fhir/CodeSystem/staff-role",
    "gp",
    "R",
    "HIV",
    "2025-03-01",
    "2025-13-45",
    "2025-03-01T09:00:00+14:00",
    "-0001",
    "Organization//_history/",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::String),
        select(STRINGS.to_vec()).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![select(KEYS.to_vec()).prop_map(str::to_owned), "[a-z]{1,8}"],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn any_json_is_read_safely(v in any_json(), w in any_json(), rt in select(STRINGS[..9].to_vec())) {
        let mut typed = v.clone();
        if let Value::Object(map) = &mut typed {
            map.insert("resourceType".into(), json!(rt));
            map.insert("id".into(), json!("p1"));
        }
        for value in [&v, &w, &typed] {
            let _ = ResourceFacts::from_json(value);
            let _ = PatientFacts::from_resources(value, [&v, &w, &typed]);
            let _ = Labels::from_meta(Some(value));
            let _ = Subject::from_practitioner_role("u", value, [&v, &w, &typed], now());
            let _ = OrgIndex::from_organizations([value]);
        }
        if let (Ok(facts), Ok(patient)) = (
            ResourceFacts::from_json(&typed),
            PatientFacts::from_resources(&patient_json(None), [&v, &w, &typed]),
        ) {
            let orgs = orgs();
            for role in ROLES {
                let s = subject(role);
                let access = PatientAccess::new(&s, &patient, &[], &orgs);
                let _ = may_read(&s, Purpose::Treatment, &access, &facts, now());
                let _ = may_read_unlinked(&s, &facts);
                let _ = may_write(&s, Purpose::Treatment, &access, WriteOp::Create(&facts), now());
                let _ = may_write_unlinked(&s, Purpose::SystemAdministration, WriteOp::Create(&facts));
            }
        }
    }

    #[test]
    fn any_reason_is_checked_safely(reason in "\\PC{0,40}") {
        let s = subject(Role::Gp);
        let _ = request_break_glass(&s, &PatientFacts::new("p1"), &[], &reason, now(), &BreakGlassPolicy::default());
    }
}

/// The generator must reach the cases the properties are about, or they
/// prove nothing.
#[test]
fn the_generator_reaches_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = situation();
    let (mut permits, mut via_grant, mut objection_refusals, mut label_refusals) = (0, 0, 0, 0);
    let mut write_permits = 0;
    for _ in 0..2000 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        let b = build(&s, true, None);
        let d = read(&b, s.purpose);
        permits += usize::from(d.is_permit());
        via_grant += usize::from(d.basis() == Some(Basis::BreakGlass));
        objection_refusals += usize::from(d.deny_reason() == Some(DenyReason::PatientObjection));
        label_refusals += usize::from(matches!(
            d.deny_reason(),
            Some(DenyReason::SensitiveLabel | DenyReason::OtherOrganisationRestricted)
        ));
        write_permits += writes(&b, s.purpose)
            .iter()
            .filter(|d| d.is_permit())
            .count();
    }
    let counts = (
        permits,
        via_grant,
        objection_refusals,
        label_refusals,
        write_permits,
    );
    assert!(permits > 100, "{counts:?}");
    assert!(via_grant > 20, "{counts:?}");
    assert!(objection_refusals > 20, "{counts:?}");
    assert!(label_refusals > 20, "{counts:?}");
    assert!(write_permits > 100, "{counts:?}");
}
