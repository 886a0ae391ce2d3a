//! Which kinds of patient record each role may see (`may_read`), for a
//! patient on the person's team caseload, with no labels and no objection.

use careshare_policy::*;
use serde_json::json;

use crate::world::*;

const RNPA: &str = "role-no-patient-access";
const SCOPE: &str = "role-scope";

#[test]
fn record_kinds_by_role() {
    #[rustfmt::skip]
    let rows: &[((&str, Author), [&str; 7])] = &[
        //                                          DN    CN    GP    HC    SW     PO    AD
        (("Patient",              Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("RelatedPerson",        Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("CarePlan",             Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("Task",                 Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("Flag",                 Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("Appointment",          Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("CareTeam",             Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("EpisodeOfCare",        Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("Consent",              Author::Other),  ["ok", "ok", "ok", "ok", "ok",  RNPA, RNPA]),
        (("Observation",          Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("Condition",            Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("AllergyIntolerance",   Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("MedicationStatement",  Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("MedicationRequest",    Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("DocumentReference",    Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("Encounter",            Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("Goal",                 Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("Provenance",           Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        (("SomeFutureType",       Author::Other),  ["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        // Unknown writer: still an ordinary record, but never a social care one.
        (("DocumentReference",    Author::Unknown),["ok", "ok", "ok", "ok", SCOPE, RNPA, RNPA]),
        // Social care notes: anything written by a social care organisation.
        (("DocumentReference",    Author::SocialCare), ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (("Encounter",            Author::SocialCare), ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (("Observation",          Author::SocialCare), ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ];
    check(per_role(rows, |(resource_type, author), role| {
        let setup = Setup::new(role, Rel::TeamCaseload);
        let mut facts = setup.facts(resource_type, author, &[]);
        if resource_type == "Provenance" {
            facts = facts.about_patient(PATIENT);
        }
        setup.read_for(Purpose::Treatment, &facts)
    }));
}

/// Patient records are read for treatment, or for break-glass under a
/// grant; never for audit review or administration.
#[test]
fn purposes() {
    const PNA: &str = "purpose-not-allowed";
    const NABG: &str = "no-active-break-glass";
    #[rustfmt::skip]
    let rows: &[((Rel, Purpose), [&str; 7])] = &[
        //                                                    DN    CN    GP    HC    SW    PO    AD
        ((Rel::TeamCaseload,     Purpose::Treatment),        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ((Rel::TeamCaseload,     Purpose::BreakGlass),       [NABG, NABG, NABG, NABG, NABG, RNPA, RNPA]),
        ((Rel::TeamCaseload,     Purpose::PrivacyReview),    [PNA,  PNA,  PNA,  PNA,  PNA,  RNPA, RNPA]),
        ((Rel::TeamCaseload,     Purpose::SystemAdministration), [PNA, PNA, PNA, PNA, PNA,  RNPA, RNPA]),
        ((Rel::BreakGlassActive, Purpose::Treatment),        ["bg", "bg", "bg", "bg", "no-relationship", RNPA, RNPA]),
        ((Rel::BreakGlassActive, Purpose::BreakGlass),       ["bg", "bg", "bg", "bg", NABG, RNPA, RNPA]),
        ((Rel::BreakGlassExpired, Purpose::BreakGlass),      [NABG, NABG, NABG, NABG, NABG, RNPA, RNPA]),
    ];
    check(per_role(rows, |(rel, purpose), role| {
        let setup = Setup::new(role, rel);
        setup.read_for(purpose, &setup.facts("CarePlan", Author::Other, &[]))
    }));
}

/// A person linked and holding a grant who reads for break-glass is
/// recorded as break-glass; reading for treatment uses the link.
#[test]
fn link_and_grant_together() {
    let s = subject(Role::Gp);
    let t = now();
    let (patient, related, _) = scenario(&s, Rel::TeamCaseload);
    let facts = PatientFacts::from_resources(&patient, &related).unwrap();
    let grants = [grant(&s.user_id, PATIENT, t - hours(1), t + hours(1))];
    let orgs = orgs();
    let access = PatientAccess::new(&s, &facts, &grants, &orgs);
    let obs = facts_of(&s, "Observation", Author::Other, &[]);
    check([
        (
            "treatment",
            may_read(&s, Purpose::Treatment, &access, &obs, t),
            "caseload-team",
        ),
        (
            "break-glass",
            may_read(&s, Purpose::BreakGlass, &access, &obs, t),
            "bg",
        ),
    ]);
}

#[test]
fn wrong_patient_and_wrong_person() {
    let setup = Setup::new(Role::DistrictNurse, Rel::TeamCaseload);
    let other_patient = ResourceFacts::from_json(&json!({
        "resourceType": "Observation", "id": "o9",
        "subject": {"reference": "Patient/p2"}
    }))
    .unwrap();
    let no_patient = ResourceFacts::from_json(&json!({
        "resourceType": "Observation", "id": "o8"
    }))
    .unwrap();
    let joint = ResourceFacts::from_json(&json!({
        "resourceType": "Appointment", "id": "a1",
        "participant": [
            {"actor": {"reference": "Patient/p1"}},
            {"actor": {"reference": "Patient/p2"}}
        ]
    }))
    .unwrap();
    let directory = ResourceFacts::from_json(&json!({
        "resourceType": "Organization", "id": "gp-a"
    }))
    .unwrap();
    let mut colleague = setup.subject.clone();
    colleague.user_id = "u-colleague".into();
    let mut moved = setup.subject.clone();
    moved.team_ids = vec!["team-elsewhere".into()];
    let obs = setup.facts("Observation", Author::Other, &[]);
    let access = setup.access();
    check([
        (
            "another patient's record",
            setup.read(&other_patient),
            "wrong-patient",
        ),
        (
            "a clinical record naming no patient",
            setup.read(&no_patient),
            "wrong-patient",
        ),
        (
            "a record about two patients",
            setup.read(&joint),
            "wrong-patient",
        ),
        ("a directory entry", setup.read(&directory), "wrong-patient"),
        (
            "context made for a colleague",
            may_read(&colleague, Purpose::Treatment, &access, &obs, now()),
            "context-mismatch",
        ),
        (
            "context made before a team change",
            may_read(&moved, Purpose::Treatment, &access, &obs, now()),
            "context-mismatch",
        ),
    ]);
}

/// A record about two patients needs the person to be allowed for both.
#[test]
fn records_about_several_patients() {
    let s = subject(Role::DistrictNurse);
    let orgs = orgs();
    let linked = |id: &str| {
        let patient = json!({"resourceType": "Patient", "id": id});
        let ep = json!({
            "resourceType": "EpisodeOfCare", "status": "active",
            "patient": {"reference": format!("Patient/{id}")},
            "team": [{"reference": "CareTeam/team-dn"}]
        });
        PatientFacts::from_resources(&patient, [&ep]).unwrap()
    };
    let p1 = linked("p1");
    let p2 = linked("p2");
    let p2_unlinked = PatientFacts::new("p2");
    let p2_grant = [grant(&s.user_id, "p2", now() - hours(1), now() + hours(1))];
    let a1 = PatientAccess::new(&s, &p1, &[], &orgs);
    let a2 = PatientAccess::new(&s, &p2, &[], &orgs);
    let a2_unlinked = PatientAccess::new(&s, &p2_unlinked, &[], &orgs);
    let a2_grant = PatientAccess::new(&s, &p2_unlinked, &p2_grant, &orgs);
    let joint = ResourceFacts::from_json(&json!({
        "resourceType": "Appointment", "id": "a1",
        "participant": [
            {"actor": {"reference": "Patient/p1"}},
            {"actor": {"reference": "Patient/p2"}}
        ]
    }))
    .unwrap();
    let t = now();
    let p = Purpose::Treatment;
    check([
        (
            "both linked",
            may_read_each(&s, p, &[&a1, &a2], &joint, t),
            "caseload-team",
        ),
        (
            "one unlinked",
            may_read_each(&s, p, &[&a1, &a2_unlinked], &joint, t),
            "no-relationship",
        ),
        (
            "one missing",
            may_read_each(&s, p, &[&a1], &joint, t),
            "no-relationship",
        ),
        (
            "one by grant",
            may_read_each(&s, p, &[&a2_grant, &a1], &joint, t),
            "bg",
        ),
    ]);
}
