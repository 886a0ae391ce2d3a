//! A patient's objection to sharing: each record stays with the
//! organisation that wrote it, break-glass aside.

use careshare_policy::*;
use serde_json::{json, Value};

use crate::labels::break_glass_purpose;
use crate::world::*;

const RNPA: &str = "role-no-patient-access";
const OBJ: &str = "patient-objection";
const NR: &str = "no-relationship";
const NABG: &str = "no-active-break-glass";

#[derive(Debug, Clone, Copy)]
struct Row {
    rel: Rel,
    objection: Option<&'static str>,
    resource_type: &'static str,
    author: Author,
    labels: &'static [Label],
}

const fn row(
    rel: Rel,
    objection: Option<&'static str>,
    resource_type: &'static str,
    author: Author,
    labels: &'static [Label],
) -> Row {
    Row {
        rel,
        objection,
        resource_type,
        author,
        labels,
    }
}

/// Objection Consents by name.
fn objection_resource(name: &str) -> Value {
    match name {
        "active" => objection("active", Value::Null),
        "inactive" => objection("inactive", Value::Null),
        "ended" => objection("active", json!({"end": "2025-01-01"})),
        "future" => objection("active", json!({"start": "2026-01-01"})),
        "unreadable period" => objection("active", json!({"end": "soon"})),
        "permit, not deny" => {
            let mut c = objection("active", Value::Null);
            c["provision"]["type"] = json!("permit");
            c
        }
        "treatment scope" => {
            let mut c = objection("active", Value::Null);
            c["scope"]["coding"][0]["code"] = json!("treatment");
            c
        }
        "another patient" => {
            let mut c = objection("active", Value::Null);
            c["patient"] = reference("Patient/p2");
            c
        }
        other => panic!("no objection named {other}"),
    }
}

#[test]
fn objection_by_role() {
    use Author::*;
    use Rel::*;
    let active = Some("active");
    #[rustfmt::skip]
    let rows: &[(Row, [&str; 7])] = &[
        //                                                                         DN    CN    GP    HC    SW    PO    AD
        (row(TeamCaseload, Option::None, "CarePlan", Other, &[]),                    ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        // Same organisation: unaffected.
        (row(TeamCaseload, active, "CarePlan", Own, &[]),                         ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        // (The social worker's own organisation provides social care, so its
        // Observations are social care records.)
        (row(TeamCaseload, active, "Observation", Own, &[]),                      ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        // Another organisation, or unknown: withheld.
        (row(TeamCaseload, active, "CarePlan", Other, &[]),                       [OBJ,  OBJ,  OBJ,  OBJ,  OBJ,  RNPA, RNPA]),
        (row(TeamCaseload, active, "CarePlan", Unknown, &[]),                     [OBJ,  OBJ,  OBJ,  OBJ,  OBJ,  RNPA, RNPA]),
        (row(TeamCaseload, active, "Observation", Other, &[]),                    [OBJ,  OBJ,  OBJ,  OBJ,  "role-scope", RNPA, RNPA]),
        (row(GpRegistered, active, "CarePlan", Other, &[]),                       [OBJ,  OBJ,  OBJ,  OBJ,  OBJ,  RNPA, RNPA]),
        // Sharing a labelled record does not override the objection.
        (row(TeamCaseload, active, "CarePlan", Other, &[Label::Restricted, Label::SharedWithMe]), [OBJ, OBJ, OBJ, OBJ, OBJ, RNPA, RNPA]),
        // The person and the objection itself stay visible to those linked.
        (row(TeamCaseload, active, "Patient", Other, &[]),                        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (row(TeamCaseload, active, "Consent", Other, &[]),                        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (row(TeamCaseload, active, "Patient", Other, &[Label::Restricted]),       ["restricted-to-author", "restricted-to-author", "restricted-to-author", "restricted-to-author", "restricted-to-author", RNPA, RNPA]),
        (row(None,         active, "Patient", Other, &[]),                        [NR,   NR,   NR,   NR,   NR,   RNPA, RNPA]),
        // Break-glass overrides the objection (and is recorded as such) ...
        (row(BreakGlassActive, active, "CarePlan", Other, &[]),                   ["bg", "bg", "bg", "bg", NR,   RNPA, RNPA]),
        (row(BreakGlassActive, active, "CarePlan", Unknown, &[]),                 ["bg", "bg", "bg", "bg", NR,   RNPA, RNPA]),
        (row(BreakGlassActive, active, "CarePlan", Own, &[]),                     ["bg", "bg", "bg", "bg", NR,   RNPA, RNPA]),
        // ... but not labels.
        (row(BreakGlassActive, active, "CarePlan", Other, &[Label::Restricted]),  ["restricted-to-author", "restricted-to-author", "restricted-to-author", "restricted-to-author", NR, RNPA, RNPA]),
        (row(BreakGlassExpired, active, "CarePlan", Other, &[]),                  [NABG, NABG, NABG, NABG, NR,   RNPA, RNPA]),
        (row(BreakGlassExpired, active, "CarePlan", Own, &[]),                    [NABG, NABG, NABG, NABG, NR,   RNPA, RNPA]),
    ];
    check(per_role(rows, |r, role| {
        let extra: Vec<Value> = r.objection.map(objection_resource).into_iter().collect();
        let setup = Setup::with(role, r.rel, &extra);
        let purpose = if matches!(r.rel, BreakGlassActive | BreakGlassExpired) {
            break_glass_purpose(role)
        } else {
            Purpose::Treatment
        };
        setup.read_for(purpose, &setup.facts(r.resource_type, r.author, r.labels))
    }));
}

/// Only an active, current, patient-privacy "deny" Consent for this patient
/// is an objection; an unreadable period keeps it in force.
#[test]
fn what_counts_as_an_objection() {
    let rows: &[(&str, [&str; 7])] = &[
        ("active", [OBJ, OBJ, OBJ, OBJ, OBJ, RNPA, RNPA]),
        ("unreadable period", [OBJ, OBJ, OBJ, OBJ, OBJ, RNPA, RNPA]),
        ("inactive", ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("ended", ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("future", ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (
            "permit, not deny",
            ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA],
        ),
        (
            "treatment scope",
            ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA],
        ),
        (
            "another patient",
            ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA],
        ),
    ];
    check(per_role(rows, |name, role| {
        let setup = Setup::with(role, Rel::TeamCaseload, &[objection_resource(name)]);
        setup.read(&setup.facts("CarePlan", Author::Other, &[]))
    }));
}
