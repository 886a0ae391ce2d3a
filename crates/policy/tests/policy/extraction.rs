//! Reading the facts from FHIR JSON: labels, writing organisation, the
//! patient a record is about, its kind; patient links; the person.

use careshare_policy::*;
use serde_json::{json, Value};

use crate::world::*;

fn facts(v: Value) -> ResourceFacts {
    ResourceFacts::from_json(&v).unwrap()
}

#[test]
fn writing_organisation() {
    let rows: &[(Value, Option<&str>)] = &[
        (json!({"source": "Organization/gp-a"}), Some("gp-a")),
        (json!({"source": "Organization/gp-a#req-17"}), Some("gp-a")),
        (
            json!({"source": "https://hub.example.org/fhir/Organization/gp-a"}),
            Some("gp-a"),
        ),
        (
            json!({"source": "Organization/gp-a/_history/2"}),
            Some("gp-a"),
        ),
        (json!({"source": "Practitioner/dr-who"}), None),
        (
            json!({"source": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}),
            None,
        ),
        (json!({"source": "gp-a"}), None),
        (json!({"source": 17}), None),
        (json!({}), None),
        (Value::Null, None),
    ];
    for (meta, expected) in rows {
        let f = facts(json!({"resourceType": "Flag", "id": "f", "meta": meta}));
        assert_eq!(f.author_org.as_deref(), *expected, "{meta}");
    }
}

#[test]
fn labels() {
    let conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    let act = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    let shared = "https://careshare.example.org/fhir/CodeSystem/shared-with";
    let sens = "https://careshare.example.org/fhir/CodeSystem/sensitivity";
    // (meta, restricted, sensitivities, shared with)
    #[rustfmt::skip]
    let rows: Vec<(Value, bool, Vec<Sensitivity>, Vec<&str>)> = vec![
        (json!({}), false, vec![], vec![]),
        (json!({"security": [{"system": conf, "code": "N"}]}), false, vec![], vec![]),
        (json!({"security": [{"system": conf, "code": "M"}, {"system": conf, "code": "L"}, {"system": conf, "code": "U"}]}), false, vec![], vec![]),
        (json!({"security": [{"system": conf, "code": "R"}]}), true, vec![], vec![]),
        (json!({"security": [{"system": conf, "code": "V"}]}), true, vec![], vec![]),
        (json!({"security": [{"system": conf, "code": "secret"}]}), true, vec![], vec![]),
        (json!({"tag": [{"system": conf, "code": "R"}]}), true, vec![], vec![]),
        (json!({"security": [{"system": act, "code": "SEX"}]}), false, vec![Sensitivity::SexualHealth], vec![]),
        (json!({"security": [{"system": act, "code": "STD"}]}), false, vec![Sensitivity::SexuallyTransmittedInfection], vec![]),
        (json!({"security": [{"system": act, "code": "HIV"}]}), false, vec![Sensitivity::Hiv], vec![]),
        (json!({"security": [{"system": act, "code": "PSY"}]}), false, vec![Sensitivity::MentalHealth], vec![]),
        (json!({"security": [{"system": act, "code": "BH"}]}), false, vec![Sensitivity::MentalHealth], vec![]),
        (json!({"security": [{"system": act, "code": "ETH"}]}), false, vec![Sensitivity::SubstanceMisuse], vec![]),
        (json!({"security": [{"system": act, "code": "SUD"}]}), false, vec![Sensitivity::SubstanceMisuse], vec![]),
        (json!({"security": [{"system": act, "code": "SDV"}]}), false, vec![Sensitivity::SexualOrDomesticViolence], vec![]),
        (json!({"security": [{"system": act, "code": "GDIS"}]}), false, vec![Sensitivity::Other], vec![]),
        (json!({"security": [{"system": sens, "code": "safeguarding"}]}), false, vec![Sensitivity::Safeguarding], vec![]),
        (json!({"security": [{"system": sens, "code": "Safeguarding"}]}), false, vec![Sensitivity::Other], vec![]),
        (json!({"tag": [{"system": sens, "code": "safeguarding"}]}), false, vec![Sensitivity::Safeguarding], vec![]),
        (json!({"tag": [{"system": shared, "code": "hospital"}, {"system": shared, "code": "Organization/council"}]}), false, vec![], vec!["council", "hospital"]),
        // Sharing is only read from tags.
        (json!({"security": [{"system": shared, "code": "hospital"}]}), false, vec![], vec![]),
        (json!({"tag": [{"system": shared, "code": "not an id!"}]}), false, vec![], vec![]),
        // Unknown systems and incomplete codings are ignored.
        (json!({"security": [{"system": "http://example.org/x", "code": "R"}, {"code": "R"}, {"system": conf}]}), false, vec![], vec![]),
        // Unreadable labels protect the record.
        (json!({"security": "R"}), true, vec![Sensitivity::Other], vec![]),
        (json!({"security": ["R"]}), true, vec![Sensitivity::Other], vec![]),
        (json!({"tag": {"system": conf, "code": "R"}}), true, vec![Sensitivity::Other], vec![]),
        (json!("meta"), true, vec![Sensitivity::Other], vec![]),
    ];
    for (meta, restricted, sensitivities, shared_with) in rows {
        let f = facts(
            json!({"resourceType": "Observation", "subject": {"reference": "Patient/p1"}, "meta": meta}),
        );
        assert_eq!(f.labels.is_restricted(), restricted, "{meta}");
        assert_eq!(
            f.labels.sensitivities().collect::<Vec<_>>(),
            sensitivities,
            "{meta}"
        );
        assert_eq!(
            f.labels.shared_with(),
            shared_with
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            "{meta}"
        );
    }
}

#[test]
fn kinds_and_patients() {
    let p1 = json!({"reference": "Patient/p1"});
    #[rustfmt::skip]
    let rows: Vec<(Value, Kind, Vec<&str>)> = vec![
        (json!({"resourceType": "Patient", "id": "p1"}), Kind::Demographics, vec!["p1"]),
        (json!({"resourceType": "Patient"}), Kind::Demographics, vec![]),
        (json!({"resourceType": "RelatedPerson", "patient": p1}), Kind::Demographics, vec!["p1"]),
        (json!({"resourceType": "Observation", "subject": p1}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}), Kind::Clinical, vec![]),
        (json!({"resourceType": "Observation", "subject": {"reference": "https://hub.example.org/fhir/Patient/p1/_history/3"}}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "AllergyIntolerance", "patient": p1}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Task", "for": p1}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "Task", "subject": p1}), Kind::CareCoordination, vec![]),
        (json!({"resourceType": "Flag", "subject": p1}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "Appointment", "participant": [{"actor": p1}, {"actor": {"reference": "Practitioner/x"}}]}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "Appointment", "participant": [{"actor": p1}, {"actor": {"reference": "Patient/p2"}}]}), Kind::CareCoordination, vec!["p1", "p2"]),
        (json!({"resourceType": "CareTeam", "subject": p1}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "CareTeam"}), Kind::Directory, vec![]),
        (json!({"resourceType": "EpisodeOfCare", "patient": p1}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "Consent", "patient": p1}), Kind::CareCoordination, vec!["p1"]),
        (json!({"resourceType": "Account", "subject": [p1, {"reference": "Patient/p1"}]}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Coverage", "beneficiary": p1}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Device", "patient": p1}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Device"}), Kind::DeviceRegistry, vec![]),
        (json!({"resourceType": "Provenance", "target": [p1]}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Provenance", "target": [{"reference": "Observation/o1"}]}), Kind::Audit, vec![]),
        (json!({"resourceType": "AuditEvent", "entity": [{"what": p1}]}), Kind::Audit, vec![]),
        (json!({"resourceType": "Organization"}), Kind::Directory, vec![]),
        (json!({"resourceType": "Schedule", "actor": [p1]}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Basic", "subject": p1}), Kind::Clinical, vec!["p1"]),
        (json!({"resourceType": "Basic"}), Kind::Other, vec![]),
        (json!({"resourceType": "Bundle"}), Kind::Other, vec![]),
    ];
    for (resource, kind, patients) in rows {
        let f = facts(resource.clone());
        assert_eq!(f.kind, kind, "{resource}");
        assert_eq!(f.patients, patients, "{resource}");
    }
    let prov =
        facts(json!({"resourceType": "Provenance", "target": [{"reference": "Observation/o1"}]}))
            .about_patient("p1");
    assert_eq!(
        (prov.kind, prov.patients),
        (Kind::Clinical, vec!["p1".to_owned()])
    );
}

#[test]
fn not_resources() {
    for v in [
        json!(null),
        json!([]),
        json!("Patient"),
        json!({}),
        json!({"resourceType": 3}),
        json!({"resourceType": "patient"}),
        json!({"resourceType": "Pa/tient"}),
    ] {
        assert!(ResourceFacts::from_json(&v).is_err(), "{v}");
    }
}

#[test]
fn patient_links_about_someone_else_are_ignored() {
    let s = subject(Role::DistrictNurse);
    let patient = patient_json(None);
    let mut other_episode = episode("active", Some("team-dn"), None, Value::Null);
    other_episode["patient"] = reference("Patient/p2");
    let mut other_team = care_team("active", "PractitionerRole/pr-district-nurse", Value::Null);
    other_team["subject"] = reference("Patient/p2");
    let mut other_consent = objection("active", Value::Null);
    other_consent["patient"] = reference("Patient/p2");
    let facts =
        PatientFacts::from_resources(&patient, [&other_episode, &other_team, &other_consent])
            .unwrap();
    assert_eq!(facts, PatientFacts::new(PATIENT));
    assert_eq!(relationship(&s, &facts, &[], now()), None);

    assert_eq!(
        PatientFacts::from_resources(&json!({"resourceType": "Observation", "id": "p1"}), []),
        Err(PatientFactsError::NotAPatient)
    );
    assert_eq!(
        PatientFacts::from_resources(&json!({"resourceType": "Patient"}), []),
        Err(PatientFactsError::MissingId)
    );
}

fn practitioner_role(code: Value) -> Value {
    json!({
        "resourceType": "PractitionerRole", "id": "pr-ann", "active": true,
        "practitioner": {"reference": "Practitioner/ann"},
        "organization": {"reference": "Organization/community"},
        "code": code,
    })
}

fn staff(code: &str) -> Value {
    json!([{"coding": [{"system": "https://careshare.example.org/fhir/CodeSystem/staff-role", "code": code}]}])
}

fn team(id: &str, status: &str, member: &str, period: Value) -> Value {
    let mut t = json!({
        "resourceType": "CareTeam", "id": id, "status": status,
        "category": [{"coding": [{"system": "https://careshare.example.org/fhir/CodeSystem/team-kind", "code": "team"}]}],
        "participant": [{"member": {"reference": member}}],
    });
    if !period.is_null() {
        t["participant"][0]["period"] = period;
    }
    t
}

#[test]
fn the_person() {
    let teams = [
        team("team-dn", "active", "PractitionerRole/pr-ann", Value::Null),
        team(
            "team-old",
            "active",
            "PractitionerRole/pr-ann",
            json!({"end": "2024-12-31"}),
        ),
        team(
            "team-closed",
            "inactive",
            "PractitionerRole/pr-ann",
            Value::Null,
        ),
        team(
            "team-other",
            "active",
            "PractitionerRole/pr-bob",
            Value::Null,
        ),
        // A patient's care team is not a staff team.
        json!({
            "resourceType": "CareTeam", "id": "ct-p1", "status": "active",
            "subject": {"reference": "Patient/p1"},
            "participant": [{"member": {"reference": "PractitionerRole/pr-ann"}}]
        }),
    ];
    let s = Subject::from_practitioner_role(
        "u-ann",
        &practitioner_role(staff("district-nurse")),
        &teams,
        now(),
    )
    .unwrap();
    assert_eq!(
        s,
        Subject {
            user_id: "u-ann".into(),
            practitioner_role_id: "pr-ann".into(),
            practitioner_id: Some("ann".into()),
            role: Role::DistrictNurse,
            organization_id: "community".into(),
            team_ids: vec!["team-dn".into()],
        }
    );

    let err = |pr: Value| Subject::from_practitioner_role("u", &pr, &teams, now()).unwrap_err();
    let mut two = practitioner_role(staff("gp"));
    two["code"][0]["coding"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "https://careshare.example.org/fhir/CodeSystem/staff-role", "code": "region-admin"}));
    let mut inactive = practitioner_role(staff("gp"));
    inactive["active"] = json!(false);
    let mut ended = practitioner_role(staff("gp"));
    ended["period"] = json!({"end": "2025-01-01"});
    let mut no_org = practitioner_role(staff("gp"));
    no_org.as_object_mut().unwrap().remove("organization");
    assert_eq!(err(two), SubjectError::AmbiguousRole);
    assert_eq!(err(inactive), SubjectError::Inactive);
    assert_eq!(err(ended), SubjectError::Inactive);
    assert_eq!(err(no_org), SubjectError::MissingOrganization);
    assert_eq!(err(practitioner_role(json!([]))), SubjectError::MissingRole);
    assert_eq!(
        err(practitioner_role(staff("surgeon"))),
        SubjectError::UnknownRole(UnknownRole("surgeon".into()))
    );
    assert_eq!(
        err(json!({"resourceType": "Practitioner", "id": "x"})),
        SubjectError::NotAPractitionerRole
    );

    for role in Role::ALL {
        assert_eq!(role.code().parse::<Role>(), Ok(role));
        assert_eq!(
            Purpose::from_code(role.default_purpose().code()),
            Some(role.default_purpose())
        );
    }
}

#[test]
fn organisation_kinds() {
    let org = |id: &str, codes: &[&str]| {
        let coding: Vec<Value> = codes
            .iter()
            .map(|c| json!({"system": "https://careshare.example.org/fhir/CodeSystem/organization-kind", "code": c}))
            .collect();
        json!({"resourceType": "Organization", "id": id, "type": [{"coding": coding}]})
    };
    let orgs = [
        org("council", &["social-care"]),
        org("gp-a", &["gp-practice"]),
        org("odd", &["social-care", "hospital"]),
        org("plain", &[]),
        json!({"resourceType": "Patient", "id": "council-2", "type": [{"coding": [{"system": "https://careshare.example.org/fhir/CodeSystem/organization-kind", "code": "social-care"}]}]}),
    ];
    let index = OrgIndex::from_organizations(&orgs);
    assert!(index.is_social_care("council"));
    assert_eq!(index.kind("gp-a"), OrgKind::GpPractice);
    assert_eq!(index.kind("odd"), OrgKind::Unknown);
    assert_eq!(index.kind("plain"), OrgKind::Unknown);
    assert!(!index.is_social_care("council-2"));
    assert!(!index.is_social_care("nowhere"));
}
