//! Asking for emergency access (`request_break_glass`).

use careshare_policy::*;
use serde_json::Value;

use crate::world::*;

const GOOD: &str = "Covering for a colleague, patient deteriorating at home";

fn outcome(r: Result<BreakGlassGrant, BreakGlassError>) -> String {
    match r {
        Ok(_) => "granted".into(),
        Err(BreakGlassError::RoleNotAllowed(_)) => "role".into(),
        Err(BreakGlassError::ReasonMissing) => "no reason".into(),
        Err(BreakGlassError::ReasonTooShort { .. }) => "too short".into(),
        Err(BreakGlassError::ReasonTooLong { .. }) => "too long".into(),
        Err(BreakGlassError::ReasonNotMeaningful) => "filler".into(),
        Err(BreakGlassError::AlreadyVisible) => "visible".into(),
        Err(BreakGlassError::AlreadyGranted(_)) => "granted already".into(),
        Err(BreakGlassError::BadDuration) => "bad duration".into(),
    }
}

#[test]
fn who_may_break_the_glass() {
    #[rustfmt::skip]
    let rows: &[((Rel, bool), [&str; 7])] = &[
        //                                          DN         CN         GP         HC         SW      PO      AD
        ((Rel::None, false),                       ["granted", "granted", "granted", "granted", "role", "role", "role"]),
        ((Rel::TeamCaseload, false),               ["visible", "visible", "visible", "visible", "role", "role", "role"]),
        // Linked, but the patient objected: the grant is the only way to see
        // other organisations' records in an emergency.
        ((Rel::TeamCaseload, true),                ["granted", "granted", "granted", "granted", "role", "role", "role"]),
        ((Rel::FinishedEpisode, false),            ["granted", "granted", "granted", "granted", "role", "role", "role"]),
        ((Rel::BreakGlassActive, false),           ["granted already", "granted already", "granted already", "granted already", "role", "role", "role"]),
        ((Rel::BreakGlassExpired, false),          ["granted", "granted", "granted", "granted", "role", "role", "role"]),
        ((Rel::BreakGlassOtherPatient, false),     ["granted", "granted", "granted", "granted", "role", "role", "role"]),
    ];
    let mut failures = Vec::new();
    for ((rel, objected), expected) in rows {
        for (role, expected) in ROLES.iter().zip(expected) {
            let extra: Vec<Value> = if *objected {
                vec![objection("active", Value::Null)]
            } else {
                vec![]
            };
            let setup = Setup::with(*role, *rel, &extra);
            let got = outcome(request_break_glass(
                &setup.subject,
                &setup.patient,
                &setup.grants,
                GOOD,
                now(),
                &BreakGlassPolicy::default(),
            ));
            if got != *expected {
                failures.push(format!(
                    "{rel:?} objected={objected} / {role}: expected {expected}, got {got}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons() {
    let long = "x".repeat(500) + &"y".repeat(501);
    let rows: &[(&str, &str)] = &[
        ("", "no reason"),
        ("     ", "no reason"),
        ("help", "too short"),
        ("  urgent   ", "too short"),
        ("..........", "filler"),
        ("aaaaaaaaaaaa", "filler"),
        ("ab ab ab ab ab", "filler"),
        ("unconscious", "granted"),
        ("Pt collapsed", "granted"),
        ("Évanoui à domicile", "granted"),
        (GOOD, "granted"),
        (&long, "too long"),
    ];
    let s = subject(Role::DistrictNurse);
    let patient = PatientFacts::new(PATIENT);
    for (reason, expected) in rows {
        let got = outcome(request_break_glass(
            &s,
            &patient,
            &[],
            reason,
            now(),
            &BreakGlassPolicy::default(),
        ));
        assert_eq!(&got, expected, "reason {reason:?}");
    }
}

#[test]
fn the_grant() {
    let s = subject(Role::Gp);
    let patient = PatientFacts::new(PATIENT);
    let policy = BreakGlassPolicy::default();
    let g = request_break_glass(
        &s,
        &patient,
        &[],
        "  Patient unconscious in A&E  ",
        now(),
        &policy,
    )
    .unwrap();
    assert_eq!(g.user_id, s.user_id);
    assert_eq!(g.patient_id, PATIENT);
    assert_eq!(g.reason, "Patient unconscious in A&E");
    assert_eq!(g.granted_at, now());
    assert_eq!(g.expires_at, now() + hours(4));
    assert!(g.is_active(now()));
    assert!(g.is_active(now() + hours(4) - chrono::Duration::nanoseconds(1)));
    assert!(!g.is_active(now() + hours(4)));
    assert!(!g.is_active(now() - chrono::Duration::seconds(1)));

    let short = BreakGlassPolicy {
        duration: hours(1),
        ..policy
    };
    let g = request_break_glass(&s, &patient, &[], GOOD, now(), &short).unwrap();
    assert_eq!(g.expires_at, now() + hours(1));

    for duration in [chrono::Duration::zero(), -hours(1), chrono::Duration::MAX] {
        let bad = BreakGlassPolicy { duration, ..policy };
        assert_eq!(
            outcome(request_break_glass(&s, &patient, &[], GOOD, now(), &bad)),
            "bad duration"
        );
    }
}
