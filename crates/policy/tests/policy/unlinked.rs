//! Records in no patient's record: the directory, reference data, devices
//! and the audit trail (`may_read_unlinked`).

use careshare_policy::*;
use serde_json::{json, Value};

use crate::world::*;

const DIR: &str = "directory";
const RS: &str = "role-scope";

fn resource(what: &str) -> Value {
    match what {
        "team CareTeam" => json!({
            "resourceType": "CareTeam", "id": "team-dn", "status": "active",
            "category": [{"coding": [{
                "system": "https://careshare.example.org/fhir/CodeSystem/team-kind",
                "code": "team"
            }]}],
            "participant": [{"member": {"reference": "PractitionerRole/pr-district-nurse"}}]
        }),
        "Provenance without patient" => json!({
            "resourceType": "Provenance", "id": "prov1",
            "target": [{"reference": "Organization/gp-a"}]
        }),
        "restricted Organization of gp-b" => json!({
            "resourceType": "Organization", "id": "x",
            "meta": {
                "source": "Organization/gp-b",
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
            }
        }),
        "restricted Location of the community trust" => json!({
            "resourceType": "Location", "id": "x",
            "meta": {
                "source": "Organization/community",
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
            }
        }),
        "Observation" => json!({
            "resourceType": "Observation", "id": "o1",
            "subject": {"reference": "Patient/p1"}
        }),
        other => json!({"resourceType": other, "id": "x1"}),
    }
}

#[test]
fn unlinked_reads_by_role() {
    const PR: &str = "patient-record";
    const UT: &str = "unsupported-type";
    const RA: &str = "restricted-to-author";
    #[rustfmt::skip]
    let rows: &[(&str, [&str; 7])] = &[
        //                                             DN   CN   GP   HC   SW   PO              AD
        ("Organization",                              [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("Practitioner",                              [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("PractitionerRole",                          [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("Location",                                  [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("HealthcareService",                         [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("team CareTeam",                             [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("Medication",                                [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("Questionnaire",                             [DIR, DIR, DIR, DIR, DIR, DIR,            DIR]),
        ("Device",                                    [RS,  RS,  RS,  RS,  RS,  "audit-review", "administration"]),
        ("AuditEvent",                                [RS,  RS,  RS,  RS,  RS,  "audit-review", RS]),
        ("Provenance without patient",                [RS,  RS,  RS,  RS,  RS,  "audit-review", RS]),
        ("restricted Organization of gp-b",           [RA,  RA,  RA,  RA,  RA,  DIR,            DIR]),
        ("restricted Location of the community trust",[DIR, DIR, RA,  RA,  RA,  DIR,            DIR]),
        ("Bundle",                                    [UT,  UT,  UT,  UT,  UT,  UT,             UT]),
        ("Group",                                     [UT,  UT,  UT,  UT,  UT,  UT,             UT]),
        ("Binary",                                    [UT,  UT,  UT,  UT,  UT,  UT,             UT]),
        ("Observation",                               [PR,  PR,  PR,  PR,  PR,  PR,             PR]),
    ];
    check(per_role(rows, |what, role| {
        let facts = ResourceFacts::from_json(&resource(what)).unwrap();
        may_read_unlinked(&subject(role), &facts)
    }));
}

/// The purpose recorded for unlinked reads is the role's own.
#[test]
fn unlinked_purposes() {
    let org = ResourceFacts::from_json(&resource("Organization")).unwrap();
    let audit = ResourceFacts::from_json(&resource("AuditEvent")).unwrap();
    let cases = [
        (Role::DistrictNurse, &org, Purpose::Treatment),
        (Role::RegionAdmin, &org, Purpose::SystemAdministration),
        (Role::PrivacyOfficer, &audit, Purpose::PrivacyReview),
    ];
    for (role, facts, purpose) in cases {
        match may_read_unlinked(&subject(role), facts) {
            Decision::Permit { purpose: p, .. } => assert_eq!(p, purpose, "{role}"),
            other => panic!("{role}: {other}"),
        }
    }
}
