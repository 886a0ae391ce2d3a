//! Which links make a patient visible, per role (`relationship`).

use careshare_policy::*;

use crate::world::*;

fn decide(rel: Rel, role: Role) -> Decision {
    let setup = Setup::new(role, rel);
    let found = relationship(&setup.subject, &setup.patient, &setup.grants, now());
    // The precomputed context must agree with the direct function.
    assert_eq!(
        found,
        setup.access().relationship(now()),
        "{rel:?} / {role}"
    );
    // Express "no relationship" as a refusal so the table reads like the
    // others.
    as_decision(found)
}

fn as_decision(found: Option<Basis>) -> Decision {
    match found {
        Some(Basis::BreakGlass) => Decision::permit(Basis::BreakGlass, Purpose::BreakGlass),
        Some(basis) => Decision::permit(basis, Purpose::Treatment),
        None => Decision::deny(DenyReason::NoRelationship),
    }
}

const NO: &str = "no-relationship";

#[test]
fn relationships_by_role() {
    use Rel::*;
    #[rustfmt::skip]
    let rows: &[(Rel, [&str; 7])] = &[
        //                          district nurse           community nurse          GP                       hospital clinician       social worker            privacy officer  region admin
        (None,                    [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (TeamCaseload,            ["caseload-team",         "caseload-team",         "caseload-team",         "caseload-team",         "caseload-team",         NO, NO]),
        (OrgCaseload,             ["caseload-organisation", "caseload-organisation", "caseload-organisation", "caseload-organisation", "caseload-organisation", NO, NO]),
        (CareTeamRole,            ["care-team",             "care-team",             "care-team",             "care-team",             "care-team",             NO, NO]),
        (CareTeamOrg,             ["care-team",             "care-team",             "care-team",             "care-team",             "care-team",             NO, NO]),
        (CareTeamTeam,            ["care-team",             "care-team",             "care-team",             "care-team",             "care-team",             NO, NO]),
        (GpRegistered,            ["gp-registration",       "gp-registration",       "gp-registration",       "gp-registration",       "gp-registration",       NO, NO]),
        (GpNamedRole,             ["gp-registration",       "gp-registration",       "gp-registration",       "gp-registration",       "gp-registration",       NO, NO]),
        (HospitalEncounter,       [NO,                      NO,                      NO,                      "hospital-encounter",    NO,                      NO, NO]),
        (PlannedEncounter,        [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (FinishedEncounter,       [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (BreakGlassActive,        ["break-glass",           "break-glass",           "break-glass",           "break-glass",           NO,                      NO, NO]),
        (BreakGlassExpired,       [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (BreakGlassNotYet,        [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (BreakGlassOtherUser,     [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (BreakGlassOtherPatient,  [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (FinishedEpisode,         [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (OnHoldEpisode,           [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (EpisodeEnded,            [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (EpisodeNotStarted,       [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (EpisodeUnreadablePeriod, [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (EpisodeOtherPatient,     [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (CareTeamInactive,        [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
        (CareTeamMemberLeft,      [NO,                      NO,                      NO,                      NO,                      NO,                      NO, NO]),
    ];
    check(per_role(rows, decide));
}

/// The strongest link is reported when there are several; break-glass only
/// when nothing else links.
#[test]
fn strongest_link_wins() {
    let s = subject(Role::DistrictNurse);
    let t = now();
    let patient = patient_json(Some("Organization/community"));
    let related = [
        episode("active", None, Some("community"), serde_json::Value::Null),
        episode("active", Some("team-dn"), None, serde_json::Value::Null),
    ];
    let facts = PatientFacts::from_resources(&patient, &related).unwrap();
    let grants = [grant(&s.user_id, PATIENT, t - hours(1), t + hours(1))];
    check([
        (
            "episode, registration, grant",
            as_decision(relationship(&s, &facts, &grants, t)),
            "caseload-team",
        ),
        (
            "grant alone",
            as_decision(relationship(&s, &PatientFacts::new(PATIENT), &grants, t)),
            "bg",
        ),
    ]);
}

/// Links end exactly when their period or grant ends.
#[test]
fn links_follow_the_clock() {
    let s = subject(Role::Gp);
    let t = now();
    let patient = patient_json(None);
    let ep = episode(
        "active",
        Some("team-gp"),
        None,
        serde_json::json!({"start": "2025-03-01T08:00:00Z", "end": "2025-03-01T10:00:00Z"}),
    );
    let dated = episode(
        "active",
        Some("team-gp"),
        None,
        serde_json::json!({"end": "2025-03-01"}),
    );
    let facts = PatientFacts::from_resources(&patient, [&ep]).unwrap();
    let dated = PatientFacts::from_resources(&patient, [&dated]).unwrap();
    let grants = [grant(&s.user_id, PATIENT, t, t + hours(4))];
    let at = |facts: &PatientFacts, grants: &[BreakGlassGrant], when| {
        as_decision(relationship(&s, facts, grants, when))
    };
    let none = PatientFacts::new(PATIENT);
    check([
        (
            "before start",
            at(&facts, &[], t - hours(2)),
            "no-relationship",
        ),
        ("at start", at(&facts, &[], t - hours(1)), "caseload-team"),
        ("inside", at(&facts, &[], t), "caseload-team"),
        // A FHIR period includes its end.
        ("at end", at(&facts, &[], t + hours(1)), "caseload-team"),
        (
            "just after end",
            at(
                &facts,
                &[],
                t + hours(1) + chrono::Duration::milliseconds(1),
            ),
            "no-relationship",
        ),
        (
            "date-only end: same day",
            at(&dated, &[], t + hours(14)),
            "caseload-team",
        ),
        (
            "date-only end: next day",
            at(&dated, &[], t + hours(15)),
            "no-relationship",
        ),
        ("grant at start", at(&none, &grants, t), "break-glass"),
        (
            "grant just before end",
            at(&none, &grants, t + hours(4) - chrono::Duration::seconds(1)),
            "break-glass",
        ),
        (
            "grant at end",
            at(&none, &grants, t + hours(4)),
            "no-relationship",
        ),
    ]);
}

/// An episode that names a team is that team's caseload only: another team of the same
/// organisation does not see it; an episode that names no team is the organisation's.
#[test]
fn a_teams_caseload_is_not_the_whole_organisations() {
    let s = subject(Role::DistrictNurse);
    let t = now();
    let patient = patient_json(None);
    let other_team = [episode(
        "active",
        Some("team-other"),
        Some(&s.organization_id),
        serde_json::Value::Null,
    )];
    let facts = PatientFacts::from_resources(&patient, &other_team).unwrap();
    assert_eq!(relationship(&s, &facts, &[], t), None);
    let no_team = [episode(
        "active",
        None,
        Some(&s.organization_id),
        serde_json::Value::Null,
    )];
    let facts = PatientFacts::from_resources(&patient, &no_team).unwrap();
    assert_eq!(
        relationship(&s, &facts, &[], t),
        Some(Basis::CaseloadOrganisation)
    );
}
