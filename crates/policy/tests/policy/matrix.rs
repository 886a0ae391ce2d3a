//! The cross product of the main dimensions, against an oracle written
//! from the product brief's rules as plain tables (independently of the
//! crate's own code):
//!
//! roles × relationship (none, team caseload, GP-registered, break-glass
//! active, break-glass expired, finished episode) × label (none,
//! restricted, each sensitivity) × who wrote the record (same organisation,
//! another one) × objection (none, active) × record type (CarePlan,
//! Observation) × action (read; update the record; create a new one).

use careshare_policy::*;
use serde_json::Value;

use crate::world::*;

const RELS: [Rel; 6] = [
    Rel::None,
    Rel::TeamCaseload,
    Rel::GpRegistered,
    Rel::BreakGlassActive,
    Rel::BreakGlassExpired,
    Rel::FinishedEpisode,
];

/// Roles in [`ROLES`] order: DN, CN, GP, HC, SW, PO, AD.
#[rustfmt::skip]
const LABELS: [(&str, Option<Label>, [bool; 7]); 9] = [
    ("none",         None,                       [true,  true,  true,  true,  true,  true,  true ]),
    ("restricted",   Some(Label::Restricted),    [true,  true,  true,  true,  true,  true,  true ]),
    ("SEX",          Some(Label::Act("SEX")),    [false, false, true,  true,  false, false, false]),
    ("STD",          Some(Label::Act("STD")),    [false, false, true,  true,  false, false, false]),
    ("HIV",          Some(Label::Act("HIV")),    [false, false, true,  true,  false, false, false]),
    ("PSY",          Some(Label::Act("PSY")),    [false, false, true,  true,  false, false, false]),
    ("ETH",          Some(Label::Act("ETH")),    [false, false, true,  true,  false, false, false]),
    ("SDV",          Some(Label::Act("SDV")),    [false, false, true,  true,  true,  false, false]),
    ("safeguarding", Some(Label::Safeguarding),  [true,  true,  true,  false, true,  false, false]),
];

fn role_index(role: Role) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

fn cares(role: Role) -> bool {
    role_index(role) <= 4
}

fn clinical(role: Role) -> bool {
    role_index(role) <= 3
}

fn linked(role: Role, rel: Rel) -> bool {
    cares(role) && matches!(rel, Rel::TeamCaseload | Rel::GpRegistered)
}

fn has_grant(role: Role, rel: Rel) -> bool {
    clinical(role) && rel == Rel::BreakGlassActive
}

/// Social workers see CarePlans, and Observations only when written by a
/// social care organisation (here: their own).
fn sees_type(role: Role, resource_type: &str, own: bool) -> bool {
    resource_type == "CarePlan" || role != Role::SocialWorker || own
}

/// Social workers never write Observations.
fn writes_type(role: Role, resource_type: &str) -> bool {
    resource_type == "CarePlan" || role != Role::SocialWorker
}

/// The oracle for reading: `None` = refused, `Some(true)` = permitted on
/// break-glass, `Some(false)` = permitted on a link.
fn oracle_read(
    role: Role,
    rel: Rel,
    label: usize,
    own: bool,
    objected: bool,
    resource_type: &str,
) -> Option<bool> {
    if !cares(role) {
        return None;
    }
    let linked = linked(role, rel);
    let grant = has_grant(role, rel);
    if !linked && !grant {
        return None;
    }
    if !sees_type(role, resource_type, own) {
        return None;
    }
    if label > 0 && (!LABELS[label].2[role_index(role)] || !own) {
        return None;
    }
    let objection_applies = objected && !own;
    if objection_applies && !grant {
        return None;
    }
    Some(!linked || objection_applies)
}

/// The oracle for updating the same record in place.
fn oracle_update(
    role: Role,
    rel: Rel,
    label: usize,
    own: bool,
    objected: bool,
    resource_type: &str,
) -> Option<bool> {
    if !writes_type(role, resource_type) {
        return None;
    }
    let read = oracle_read(role, rel, label, own, objected, resource_type)?;
    // CarePlans are shared working records; Observations belong to their
    // writer. Labelled records belong to their writer.
    let shared = resource_type == "CarePlan" && label == 0;
    (own || shared).then_some(read)
}

/// The oracle for creating a new record (in the person's own name).
fn oracle_create(role: Role, rel: Rel, resource_type: &str) -> Option<bool> {
    if !cares(role) || !writes_type(role, resource_type) {
        return None;
    }
    if linked(role, rel) {
        Some(false)
    } else if has_grant(role, rel) {
        Some(true)
    } else {
        None
    }
}

fn expect(outcome: Option<bool>) -> &'static str {
    match outcome {
        None => "deny",
        Some(false) => "ok",
        Some(true) => "bg",
    }
}

#[test]
fn cross_product() {
    let mut cases = Vec::new();
    for role in ROLES {
        for rel in RELS {
            for objected in [false, true] {
                let extra: Vec<Value> = if objected {
                    vec![objection("active", Value::Null)]
                } else {
                    vec![]
                };
                let setup = Setup::with(role, rel, &extra);
                for (label, (label_name, label_value, _)) in LABELS.iter().enumerate() {
                    for own in [true, false] {
                        for resource_type in ["CarePlan", "Observation"] {
                            let author = if own { Author::Own } else { Author::Other };
                            let labels: Vec<Label> = label_value.iter().copied().collect();
                            let facts = setup.facts(resource_type, author, &labels);
                            let name = |action: &str| {
                                format!(
                                    "{action} {resource_type} {role} {rel:?} label={label_name} own={own} objection={objected}"
                                )
                            };
                            let read = setup.read(&facts);
                            let want = oracle_read(role, rel, label, own, objected, resource_type);
                            cases.push((name("read"), read, expect(want)));

                            let mut proposed = facts.clone();
                            proposed.author_org = Some(setup.subject.organization_id.clone());
                            let update = setup.write(WriteOp::Update {
                                current: &facts,
                                proposed: &proposed,
                            });
                            let want =
                                oracle_update(role, rel, label, own, objected, resource_type);
                            cases.push((name("update"), update, expect(want)));

                            if own {
                                let create = setup.write(WriteOp::Create(&facts));
                                let want = oracle_create(role, rel, resource_type);
                                cases.push((name("create"), create, expect(want)));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cases.len() > 5000, "{}", cases.len());
    check(cases);
}

#[test]
fn oracle_sanity() {
    // The oracle itself must say what the brief says on a few plain cases.
    assert_eq!(
        oracle_read(
            Role::SocialWorker,
            Rel::TeamCaseload,
            0,
            false,
            false,
            "Observation"
        ),
        None
    );
    assert_eq!(
        oracle_read(
            Role::DistrictNurse,
            Rel::BreakGlassActive,
            1,
            false,
            false,
            "CarePlan"
        ),
        None
    );
    assert_eq!(
        oracle_read(
            Role::DistrictNurse,
            Rel::TeamCaseload,
            0,
            false,
            true,
            "CarePlan"
        ),
        None
    );
    assert_eq!(
        oracle_read(
            Role::DistrictNurse,
            Rel::TeamCaseload,
            0,
            true,
            true,
            "CarePlan"
        ),
        Some(false)
    );
    assert_eq!(
        oracle_read(Role::Gp, Rel::BreakGlassExpired, 0, true, false, "CarePlan"),
        None
    );
}
