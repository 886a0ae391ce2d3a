//! Who may create, change and delete which records (`may_write`,
//! `may_write_unlinked`).

use careshare_policy::*;
use serde_json::{json, Value};

use crate::world::*;

const RNPA: &str = "role-no-patient-access";
const WS: &str = "write-scope";
const NR: &str = "no-relationship";

#[test]
fn create_by_role_and_type() {
    #[rustfmt::skip]
    let rows: &[(&str, [&str; 7])] = &[
        //                        DN    CN    GP    HC    SW    PO    AD
        ("Observation",          ["ok", "ok", "ok", "ok", WS,   RNPA, RNPA]),
        ("Condition",            ["ok", "ok", "ok", "ok", WS,   RNPA, RNPA]),
        ("AllergyIntolerance",   ["ok", "ok", "ok", "ok", WS,   RNPA, RNPA]),
        ("MedicationStatement",  ["ok", "ok", "ok", "ok", WS,   RNPA, RNPA]),
        ("MedicationRequest",    [WS,   WS,   "ok", "ok", WS,   RNPA, RNPA]),
        ("Procedure",            ["ok", "ok", "ok", "ok", WS,   RNPA, RNPA]),
        ("CarePlan",             ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Task",                 ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Flag",                 ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Appointment",          ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("CareTeam",             ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("EpisodeOfCare",        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Consent",              ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("RelatedPerson",        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("DocumentReference",    ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Communication",        ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("Encounter",            ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        ("QuestionnaireResponse",["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
    ];
    check(per_role(rows, |resource_type, role| {
        let setup = Setup::new(role, Rel::TeamCaseload);
        let new = setup.facts(resource_type, Author::Unknown, &[]);
        setup.write(WriteOp::Create(&new))
    }));
}

/// Nobody writes into a patient they cannot see.
#[test]
fn create_by_relationship() {
    use Rel::*;
    #[rustfmt::skip]
    let rows: &[(Rel, [&str; 7])] = &[
        //                     DN    CN    GP    HC    SW    PO    AD
        (None,               [NR,   NR,   NR,   NR,   NR,   RNPA, RNPA]),
        (TeamCaseload,       ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (GpRegistered,       ["ok", "ok", "ok", "ok", "ok", RNPA, RNPA]),
        (HospitalEncounter,  [NR,   NR,   NR,   "ok", NR,   RNPA, RNPA]),
        (BreakGlassActive,   ["bg", "bg", "bg", "bg", NR,   RNPA, RNPA]),
        (BreakGlassExpired,  [NR,   NR,   NR,   NR,   NR,   RNPA, RNPA]),
        (FinishedEpisode,    [NR,   NR,   NR,   NR,   NR,   RNPA, RNPA]),
    ];
    check(per_role(rows, |rel, role| {
        let setup = Setup::new(role, rel);
        let new = setup.facts("CarePlan", Author::Own, &[]);
        setup.write(WriteOp::Create(&new))
    }));
}

/// Registering a new patient needs no prior link; under break-glass the
/// patient's registration, links and consents cannot be written.
#[test]
fn registration_and_linking_records() {
    #[rustfmt::skip]
    let rows: &[((&str, Rel), [&str; 7])] = &[
        //                                          DN             CN             GP             HC             SW             PO    AD
        (("Patient",       Rel::None),             ["new-patient", "new-patient", "new-patient", "new-patient", "new-patient", RNPA, RNPA]),
        (("Patient",       Rel::GpRegistered),     ["gp-registration", "gp-registration", "gp-registration", "gp-registration", "gp-registration", RNPA, RNPA]),
        (("Patient",       Rel::BreakGlassActive), ["new-patient", "new-patient", "new-patient", "new-patient", "new-patient", RNPA, RNPA]),
        (("EpisodeOfCare", Rel::BreakGlassActive), ["break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", NR, RNPA, RNPA]),
        (("CareTeam",      Rel::BreakGlassActive), ["break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", NR, RNPA, RNPA]),
        (("Encounter",     Rel::BreakGlassActive), ["break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", NR, RNPA, RNPA]),
        (("Consent",       Rel::BreakGlassActive), ["break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", "break-glass-write-scope", NR, RNPA, RNPA]),
        (("Observation",   Rel::BreakGlassActive), ["bg", "bg", "bg", "bg", WS, RNPA, RNPA]),
        (("Task",          Rel::BreakGlassActive), ["bg", "bg", "bg", "bg", NR, RNPA, RNPA]),
        (("EpisodeOfCare", Rel::None),             [NR, NR, NR, NR, NR, RNPA, RNPA]),
    ];
    check(per_role(rows, |(resource_type, rel), role| {
        let setup = Setup::new(role, rel);
        let new = setup.facts(resource_type, Author::Own, &[]);
        setup.write(WriteOp::Create(&new))
    }));
}

fn with_labels(mut facts: ResourceFacts, f: impl FnOnce(&mut Labels)) -> ResourceFacts {
    f(&mut facts.labels);
    facts
}

/// Changing and deleting existing records.
#[test]
fn updates_and_deletes() {
    let gp = Setup::new(Role::Gp, Rel::TeamCaseload);
    let dn = Setup::new(Role::DistrictNurse, Rel::TeamCaseload);
    let sw = Setup::new(Role::SocialWorker, Rel::TeamCaseload);
    let objected = Setup::with(
        Role::Gp,
        Rel::TeamCaseload,
        &[objection("active", Value::Null)],
    );
    let objected_bg = {
        let mut s = Setup::with(
            Role::Gp,
            Rel::TeamCaseload,
            &[objection("active", Value::Null)],
        );
        s.grants.push(grant(
            &s.subject.user_id,
            PATIENT,
            now() - hours(1),
            now() + hours(1),
        ));
        s
    };
    let bg = Setup::new(Role::Gp, Rel::BreakGlassActive);

    let own_obs = gp.facts("Observation", Author::Own, &[]);
    let other_obs = gp.facts("Observation", Author::Other, &[]);
    let own_task = gp.facts("Task", Author::Own, &[]);
    let other_task = gp.facts("Task", Author::Other, &[]);
    let other_task_restricted = gp.facts(
        "Task",
        Author::Other,
        &[Label::Restricted, Label::SharedWithMe],
    );
    let other_patient = gp.facts("Patient", Author::Other, &[]);
    let dn_other_sex = dn.facts("Observation", Author::Own, &[Label::Act("SEX")]);
    let sw_other_obs = sw.facts("Observation", Author::Other, &[]);
    let own_hiv = gp.facts("Observation", Author::Own, &[Label::Act("HIV")]);
    let other_hiv = gp.facts("Observation", Author::Other, &[Label::Act("HIV")]);

    let relabelled =
        |f: &ResourceFacts| with_labels(f.clone(), |l| l.add(Sensitivity::Safeguarding));
    let shared = |f: &ResourceFacts| with_labels(f.clone(), |l| l.share_with("hospital"));
    let moved = |f: &ResourceFacts| {
        let mut f = f.clone();
        f.patients = vec!["p2".into()];
        f
    };
    let retyped = |f: &ResourceFacts| {
        let mut f = f.clone();
        f.resource_type = "Condition".into();
        f
    };
    let by = |f: &ResourceFacts, org: Option<&str>| {
        let mut f = f.clone();
        f.author_org = org.map(str::to_owned);
        f
    };
    let upd = |current, proposed| WriteOp::Update { current, proposed };

    let own_obs_unstamped = by(&own_obs, None);
    let other_task_restamped = by(&other_task, Some("gp-a"));
    let other_task_unstamped = by(&other_task, None);
    let own_task_relabelled = relabelled(&own_task);
    let other_task_relabelled = relabelled(&other_task_unstamped);
    let own_hiv_shared = shared(&own_hiv);
    let own_obs_moved = moved(&own_obs);
    let own_obs_retyped = retyped(&own_obs);
    let own_obs_as_other = by(&own_obs, Some("hospital"));
    let other_patient_restamped = by(&other_patient, None);
    let other_task_restricted_unstamped = by(&other_task_restricted, None);
    let other_hiv_unstamped = by(&other_hiv, None);

    check([
        (
            "update own Observation",
            gp.write(upd(&own_obs, &own_obs_unstamped)),
            "ok",
        ),
        (
            "update own Observation, stamped",
            gp.write(upd(&own_obs, &own_obs)),
            "ok",
        ),
        (
            "update own Observation in another organisation's name",
            gp.write(upd(&own_obs, &own_obs_as_other)),
            "wrong-author",
        ),
        (
            "update another organisation's Observation",
            gp.write(upd(&other_obs, &own_obs_unstamped)),
            "not-authoring-organisation",
        ),
        (
            "update another organisation's Task",
            gp.write(upd(&other_task, &other_task_restamped)),
            "ok",
        ),
        (
            "update another organisation's Patient",
            gp.write(upd(&other_patient, &other_patient_restamped)),
            "ok",
        ),
        (
            "label another organisation's Task",
            gp.write(upd(&other_task, &other_task_relabelled)),
            "label-change",
        ),
        (
            "label own Task",
            gp.write(upd(&own_task, &own_task_relabelled)),
            "ok",
        ),
        (
            "share own HIV Observation",
            gp.write(upd(&own_hiv, &own_hiv_shared)),
            "ok",
        ),
        (
            "update another organisation's restricted Task shared with me",
            gp.write(upd(
                &other_task_restricted,
                &other_task_restricted_unstamped,
            )),
            "not-authoring-organisation",
        ),
        (
            "update another organisation's HIV Observation",
            gp.write(upd(&other_hiv, &other_hiv_unstamped)),
            "restricted-to-author",
        ),
        (
            "move a record to another patient",
            gp.write(upd(&own_obs, &own_obs_moved)),
            "identity-change",
        ),
        (
            "change a record's type",
            gp.write(upd(&own_obs, &own_obs_retyped)),
            "identity-change",
        ),
        (
            "nurse updates own sexual-health Observation she cannot see",
            dn.write(upd(&dn_other_sex, &dn_other_sex)),
            "sensitive-label",
        ),
        (
            "social worker updates an Observation",
            sw.write(upd(&sw_other_obs, &sw_other_obs)),
            WS,
        ),
        (
            "update another organisation's Task under objection",
            objected.write(upd(&other_task, &other_task_restamped)),
            "patient-objection",
        ),
        (
            "... with a break-glass grant",
            objected_bg.write(upd(&other_task, &other_task_restamped)),
            "bg",
        ),
        (
            "... for a Patient",
            objected_bg.write(upd(&other_patient, &other_patient_restamped)),
            "ok",
        ),
        (
            "update own Task under objection",
            objected.write(upd(&own_task, &own_task)),
            "ok",
        ),
        (
            "update Patient under break-glass",
            bg.write(upd(&other_patient, &other_patient_restamped)),
            "break-glass-write-scope",
        ),
        (
            "update Task under break-glass",
            bg.write(upd(&other_task, &other_task_restamped)),
            "bg",
        ),
        (
            "delete own Observation",
            gp.write(WriteOp::Delete(&own_obs)),
            "ok",
        ),
        (
            "delete another organisation's Task",
            gp.write(WriteOp::Delete(&other_task)),
            "not-authoring-organisation",
        ),
        (
            "delete another organisation's HIV Observation",
            gp.write(WriteOp::Delete(&other_hiv)),
            "restricted-to-author",
        ),
        (
            "create in another organisation's name",
            gp.write(WriteOp::Create(&other_obs)),
            "wrong-author",
        ),
        (
            "create for another patient",
            gp.write(WriteOp::Create(&own_obs_moved)),
            "wrong-patient",
        ),
        (
            "create for privacy review",
            gp.write_for(Purpose::PrivacyReview, WriteOp::Create(&own_obs)),
            "purpose-not-allowed",
        ),
        (
            "create for break-glass without a grant",
            gp.write_for(Purpose::BreakGlass, WriteOp::Create(&own_obs)),
            "no-active-break-glass",
        ),
        (
            "context made for someone else",
            may_write(
                &dn.subject,
                Purpose::Treatment,
                &gp.access(),
                WriteOp::Create(&own_obs),
                now(),
            ),
            "context-mismatch",
        ),
    ]);
}

fn unlinked(resource: Value) -> ResourceFacts {
    ResourceFacts::from_json(&resource).unwrap()
}

/// Outside patients' records: region administrators manage the directory
/// and devices; nobody writes the audit trail.
#[test]
fn directory_and_audit_writes() {
    const ADM: &str = "administration";
    const AAO: &str = "audit-append-only";
    #[rustfmt::skip]
    let rows: &[(&str, [&str; 7])] = &[
        //                    DN   CN   GP   HC   SW   PO   AD
        ("Organization",     [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("Practitioner",     [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("PractitionerRole", [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("Location",         [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("team CareTeam",    [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("Device",           [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("Medication",       [WS,  WS,  WS,  WS,  WS,  WS,  ADM]),
        ("AuditEvent",       [AAO, AAO, AAO, AAO, AAO, AAO, AAO]),
        ("Bundle",           ["unsupported-type", "unsupported-type", "unsupported-type", "unsupported-type", "unsupported-type", "unsupported-type", "unsupported-type"]),
        ("Observation",      ["patient-record", "patient-record", "patient-record", "patient-record", "patient-record", "patient-record", "patient-record"]),
    ];
    check(per_role(rows, |what, role| {
        let resource = match what {
            "team CareTeam" => json!({
                "resourceType": "CareTeam", "id": "team-dn", "status": "active",
                "category": [{"coding": [{
                    "system": "https://careshare.example.org/fhir/CodeSystem/team-kind",
                    "code": "team"
                }]}]
            }),
            "Observation" => json!({
                "resourceType": "Observation", "id": "o1",
                "subject": {"reference": "Patient/p1"}
            }),
            other => json!({"resourceType": other, "id": "x1"}),
        };
        let s = subject(role);
        let facts = unlinked(resource);
        may_write_unlinked(&s, role.default_purpose(), WriteOp::Create(&facts))
    }));

    let admin = subject(Role::RegionAdmin);
    let org = unlinked(json!({"resourceType": "Organization", "id": "gp-a"}));
    let team = unlinked(json!({"resourceType": "CareTeam", "id": "t1"}));
    let patient_team = unlinked(json!({
        "resourceType": "CareTeam", "id": "t1",
        "subject": {"reference": "Patient/p1"}
    }));
    check([
        (
            "admin, wrong purpose",
            may_write_unlinked(
                &admin,
                Purpose::Treatment,
                WriteOp::Update {
                    current: &org,
                    proposed: &org,
                },
            ),
            "purpose-not-allowed",
        ),
        (
            "admin deletes an organisation",
            may_write_unlinked(&admin, Purpose::SystemAdministration, WriteOp::Delete(&org)),
            ADM,
        ),
        (
            "admin turns a team into a patient's care team",
            may_write_unlinked(
                &admin,
                Purpose::SystemAdministration,
                WriteOp::Update {
                    current: &team,
                    proposed: &patient_team,
                },
            ),
            "identity-change",
        ),
    ]);
}
