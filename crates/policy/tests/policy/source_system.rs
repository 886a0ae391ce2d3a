//! A source system's feed: loads records in its organisation's name for any
//! patient, sees and changes only what its organisation wrote.

use careshare_policy::*;

use crate::world::*;

#[test]
fn reads_only_its_own_organisations_records_whatever_the_relationship() {
    let mut cases = Vec::new();
    for rel in [Rel::None, Rel::TeamCaseload, Rel::BreakGlassActive] {
        let setup = Setup::new(Role::SourceSystem, rel);
        for (author, labels, expected) in [
            (Author::Own, &[][..], "source-system"),
            (Author::Own, &[Label::Act("HIV")][..], "source-system"),
            (Author::Own, &[Label::Restricted][..], "source-system"),
            (Author::Other, &[][..], "not-authoring-organisation"),
            (Author::Unknown, &[][..], "not-authoring-organisation"),
            (
                Author::Other,
                &[Label::SharedWithMe][..],
                "not-authoring-organisation",
            ),
        ] {
            for ty in ["Patient", "Observation", "CarePlan", "Consent"] {
                let facts = setup.facts(ty, author, labels);
                cases.push((
                    format!("{rel:?} {ty} by {author:?} {}", labels.len()),
                    setup.read(&facts),
                    expected,
                ));
            }
        }
    }
    check(cases);
}

#[test]
fn writes_any_patient_record_in_its_own_name_and_changes_only_its_own() {
    let setup = Setup::new(Role::SourceSystem, Rel::None);
    let own = |ty| setup.facts(ty, Author::Own, &[]);
    let other = |ty| setup.facts(ty, Author::Other, &[]);
    let unknown = |ty| setup.facts(ty, Author::Unknown, &[]);
    let mut cases = Vec::new();
    for ty in [
        "Patient",
        "EpisodeOfCare",
        "Observation",
        "MedicationRequest",
        "Consent",
    ] {
        let (o, x, u) = (own(ty), other(ty), unknown(ty));
        cases.push((
            format!("create {ty} own"),
            setup.write(WriteOp::Create(&o)),
            "source-system",
        ));
        cases.push((
            format!("create {ty} unstamped"),
            setup.write(WriteOp::Create(&u)),
            "source-system",
        ));
        cases.push((
            format!("create {ty} as other"),
            setup.write(WriteOp::Create(&x)),
            "wrong-author",
        ));
        cases.push((
            format!("update own {ty}"),
            setup.write(WriteOp::Update {
                current: &o,
                proposed: &o,
            }),
            "source-system",
        ));
        cases.push((
            format!("update other's {ty}"),
            setup.write(WriteOp::Update {
                current: &x,
                proposed: &o,
            }),
            "not-authoring-organisation",
        ));
        cases.push((
            format!("delete own {ty}"),
            setup.write(WriteOp::Delete(&o)),
            "source-system",
        ));
        cases.push((
            format!("delete other's {ty}"),
            setup.write(WriteOp::Delete(&x)),
            "not-authoring-organisation",
        ));
    }
    check(cases);
}

#[test]
fn never_breaks_the_glass() {
    let s = subject(Role::SourceSystem);
    let r = request_break_glass(
        &s,
        &PatientFacts::new(PATIENT),
        &[],
        "loading the overnight discharge feed",
        now(),
        &BreakGlassPolicy::default(),
    );
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn directory_and_other_records_in_its_own_name_but_not_devices_or_audit() {
    let s = subject(Role::SourceSystem);
    let own_org = ResourceFacts::from_json(&serde_json::json!({
        "resourceType": "Organization", "id": "o1",
        "meta": {"source": format!("Organization/{}", s.organization_id)}
    }))
    .unwrap();
    let others_org = ResourceFacts::from_json(&serde_json::json!({
        "resourceType": "Organization", "id": "o2", "meta": {"source": "Organization/elsewhere"}
    }))
    .unwrap();
    let device = ResourceFacts::from_json(&serde_json::json!({
        "resourceType": "Device", "id": "d1",
        "meta": {"source": format!("Organization/{}", s.organization_id)}
    }))
    .unwrap();
    let audit = ResourceFacts::from_json(&serde_json::json!({
        "resourceType": "AuditEvent", "id": "a1",
        "meta": {"source": format!("Organization/{}", s.organization_id)}
    }))
    .unwrap();
    let p = Purpose::Treatment;
    check([
        (
            "create own org",
            may_write_unlinked(&s, p, WriteOp::Create(&own_org)),
            "source-system",
        ),
        (
            "delete other org",
            may_write_unlinked(&s, p, WriteOp::Delete(&others_org)),
            "not-authoring-organisation",
        ),
        (
            "create device",
            may_write_unlinked(&s, p, WriteOp::Create(&device)),
            "write-scope",
        ),
        (
            "create audit",
            may_write_unlinked(&s, p, WriteOp::Create(&audit)),
            "audit-append-only",
        ),
        (
            "read other org (directory)",
            may_read_unlinked(&s, &others_org),
            "directory",
        ),
        ("read audit", may_read_unlinked(&s, &audit), "role-scope"),
    ]);
}
