//! Properties of generated regions: determinism, streaming, identity,
//! references, FHIR R4 rules, volumes and the demo sign-ins.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use careshare_demo::conventions::{
    self, CONFIDENTIALITY_RESTRICTED, CONFIDENTIALITY_SYSTEM, NHS_NUMBER_SYSTEM, STAFF_ROLE_SYSTEM,
    TEAM_KIND_SYSTEM, TEAM_KIND_TEAM,
};
use careshare_demo::{
    nhs_number_is_valid, postcode_format_is_valid, DemoError, Region, RegionConfig, StaffRole,
    MAX_PATIENTS, NURSING_TEAMS, TEAM_NURSING_NORTH, TEAM_NURSING_SOUTH,
};
use chrono::NaiveDate;
use serde_json::Value;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 14).unwrap_or_default()
}

fn region(patients: usize, seed: u64) -> Region {
    match Region::new(RegionConfig::new(patients, seed, today())) {
        Ok(region) => region,
        Err(e) => panic!("config refused: {e}"),
    }
}

fn serialize_all(region: &Region) -> String {
    let mut out = String::new();
    for resource in region.structure() {
        out.push_str(&resource.to_string());
        out.push('\n');
    }
    for batch in region.patients() {
        for resource in batch {
            out.push_str(&resource.to_string());
            out.push('\n');
        }
    }
    out
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        str_at(resource, "/resourceType"),
        str_at(resource, "/id")
    )
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "reference" {
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                }
                collect_references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

fn id_is_legal(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[test]
fn same_config_gives_identical_bytes_and_seeds_differ() {
    let a = serialize_all(&region(24, 7));
    let b = serialize_all(&region(24, 7));
    assert_eq!(a, b);
    let c = serialize_all(&region(24, 8));
    assert_ne!(a, c);
    // The structure does not depend on the seed.
    assert_eq!(region(1, 1).structure(), region(1, 2).structure());
}

#[test]
fn patients_are_independent_of_what_came_before() {
    let big = region(30, 3);
    let small = region(10, 3);
    let streamed: Vec<Vec<Value>> = big.patients().collect();
    assert_eq!(streamed.len(), 30);
    for k in [0, 4, 9, 17, 29] {
        assert_eq!(big.patient(k).as_ref(), streamed.get(k), "patient {k}");
    }
    for k in 0..10 {
        assert_eq!(
            small.patient(k),
            big.patient(k),
            "patient {k} depends on region size"
        );
    }
    assert_eq!(big.patient(30), None);
    assert_eq!(big.patients().len(), 30);
    assert_eq!(big.patients().nth(17), big.patient(17));
    assert_eq!(big.patient_resource(3).as_ref(), streamed[3].first());
}

#[test]
fn nhs_numbers_are_valid_and_unique_across_20000_patients() {
    let region = region(20_000, 11);
    let mut seen = HashSet::with_capacity(20_000);
    for index in 0..20_000 {
        let patient = region.patient_resource(index).unwrap_or_default();
        let identifier = &patient["identifier"][0];
        assert_eq!(identifier["system"], NHS_NUMBER_SYSTEM);
        let number = identifier["value"].as_str().unwrap_or_default();
        assert!(nhs_number_is_valid(number), "{number}");
        assert!(seen.insert(number.to_owned()), "duplicate {number}");
    }
}

#[test]
fn ids_are_legal_unique_and_references_resolve() {
    let region = region(40, 5);
    let structure = region.structure();
    let mut structure_keys = BTreeSet::new();
    for resource in &structure {
        assert!(id_is_legal(str_at(resource, "/id")), "{}", key(resource));
        assert!(
            structure_keys.insert(key(resource)),
            "duplicate {}",
            key(resource)
        );
    }
    let mut all_keys = structure_keys.clone();
    for batch in region.patients() {
        let batch_keys: BTreeSet<String> = batch.iter().map(key).collect();
        assert_eq!(batch_keys.len(), batch.len(), "duplicate id in a batch");
        assert_eq!(batch[0]["resourceType"], "Patient");
        let mut defined = structure_keys.clone();
        for resource in &batch {
            let id = str_at(resource, "/id");
            assert!(id_is_legal(id), "{id}");
            assert!(
                all_keys.insert(key(resource)),
                "duplicate {}",
                key(resource)
            );
            // Dependency order: whatever a resource refers to came before it.
            let mut refs = Vec::new();
            collect_references(resource, &mut refs);
            for reference in refs {
                assert!(!reference.contains("://"), "absolute reference {reference}");
                assert!(
                    defined.contains(&reference),
                    "{} refers to missing {reference}",
                    key(resource)
                );
            }
            defined.insert(key(resource));
        }
    }
    for resource in &structure {
        let mut refs = Vec::new();
        collect_references(resource, &mut refs);
        for reference in refs {
            assert!(structure_keys.contains(&reference), "{reference}");
        }
    }
}

#[test]
fn volumes_and_caseload_proportion() {
    let region = region(200, 9);
    let mut caseload = 0;
    let mut per_team: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut caseload_sizes = Vec::new();
    let mut other_sizes = Vec::new();
    for (index, batch) in region.patients().enumerate() {
        let profile = region
            .profile(index)
            .unwrap_or_else(|| panic!("profile {index}"));
        match &profile.caseload {
            Some(membership) => {
                caseload += 1;
                let entry = per_team.entry(membership.team_id.clone()).or_default();
                entry.0 += 1;
                if !membership.active {
                    entry.1 += 1;
                }
                if membership.visit_today {
                    entry.2 += 1;
                }
                caseload_sizes.push(batch.len());
            }
            None => other_sizes.push(batch.len()),
        }
    }
    assert_eq!(caseload, 50, "a quarter of patients are on a caseload");
    for team in NURSING_TEAMS {
        let (members, finished, today) = per_team.get(team).copied().unwrap_or_default();
        assert!(members >= 20, "{team}: {members}");
        assert!(finished >= 1, "{team} has no finished episode");
        assert!(today >= 2, "{team} has {today} visits today");
    }
    let min = caseload_sizes.iter().min().copied().unwrap_or_default();
    let max = caseload_sizes.iter().max().copied().unwrap_or_default();
    assert!(
        min >= 250 && max <= 650,
        "caseload record sizes {min}..={max}"
    );
    let total: usize = caseload_sizes.iter().sum();
    let mean = total / caseload_sizes.len().max(1);
    assert!((300..=600).contains(&mean), "mean caseload record {mean}");
    let min = other_sizes.iter().min().copied().unwrap_or_default();
    let max = other_sizes.iter().max().copied().unwrap_or_default();
    assert!(min >= 10 && max <= 40, "other record sizes {min}..={max}");
}

#[test]
fn visit_history_depth_is_configurable() {
    let short = Region::new(RegionConfig::new(1, 2, today()).with_visit_history_days(30));
    let short = short.unwrap_or_else(|e| panic!("{e}"));
    let long = region(1, 2);
    let size = |r: &Region| r.patient(0).map(|b| b.len()).unwrap_or_default();
    assert!(
        size(&short) < size(&long) / 3,
        "{} vs {}",
        size(&short),
        size(&long)
    );
}

#[test]
fn configs_are_checked() {
    assert!(matches!(
        Region::new(RegionConfig::new(MAX_PATIENTS + 1, 1, today())),
        Err(DemoError::TooManyPatients { .. })
    ));
    assert!(matches!(
        Region::new(RegionConfig::new(5, 1, today()).with_visit_history_days(10_000)),
        Err(DemoError::VisitHistoryTooLong { .. })
    ));
    let ancient = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
    assert!(matches!(
        Region::new(RegionConfig::new(5, 1, ancient)),
        Err(DemoError::DateOutOfRange(_))
    ));
}

#[test]
fn demo_sign_ins_reference_real_resources() {
    let region = region(1, 1);
    let structure = region.structure();
    let find = |resource_type: &str, id: &str| {
        structure
            .iter()
            .find(|r| r["resourceType"] == resource_type && r["id"] == id)
            .cloned()
    };
    let sign_ins = region.demo_sign_ins();
    let roles: Vec<StaffRole> = sign_ins.iter().map(|s| s.role).collect();
    assert_eq!(
        roles,
        [
            StaffRole::DistrictNurse,
            StaffRole::Gp,
            StaffRole::HospitalClinician,
            StaffRole::SocialWorker,
            StaffRole::PrivacyOfficer,
            StaffRole::RegionAdmin
        ]
    );
    assert_eq!(sign_ins[0].username, "nurse.amy.khan");
    assert_eq!(sign_ins[0].team_ids, [TEAM_NURSING_NORTH]);
    let staff = region.staff();
    for member in &sign_ins {
        assert!(staff.contains(member));
    }
    for member in &staff {
        assert!(member
            .username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '.'));
        let practitioner = find("Practitioner", &member.practitioner_id)
            .unwrap_or_else(|| panic!("{}", member.practitioner_id));
        let usernames: Vec<&str> = practitioner["identifier"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter(|i| i["system"] == conventions::USERNAME_SYSTEM)
                    .filter_map(|i| i["value"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(usernames, [member.username.as_str()]);
        let role = find("PractitionerRole", &member.practitioner_role_id)
            .unwrap_or_else(|| panic!("{}", member.practitioner_role_id));
        assert_eq!(
            str_at(&role, "/practitioner/reference"),
            format!("Practitioner/{}", member.practitioner_id)
        );
        assert_eq!(
            str_at(&role, "/organization/reference"),
            format!("Organization/{}", member.organization_id)
        );
        assert_eq!(str_at(&role, "/code/0/coding/0/system"), STAFF_ROLE_SYSTEM);
        assert_eq!(str_at(&role, "/code/0/coding/0/code"), member.role.code());
        assert!(find("Organization", &member.organization_id).is_some());
        for team_id in &member.team_ids {
            let team = find("CareTeam", team_id).unwrap_or_else(|| panic!("{team_id}"));
            assert_eq!(
                str_at(&team, "/category/0/coding/0/system"),
                TEAM_KIND_SYSTEM
            );
            assert_eq!(str_at(&team, "/category/0/coding/0/code"), TEAM_KIND_TEAM);
            let member_ref = format!("PractitionerRole/{}", member.practitioner_role_id);
            let listed = team["participant"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["member"]["reference"] == member_ref.as_str())
            });
            assert!(listed, "{} not in {team_id}", member.username);
        }
    }
    // Both nursing teams are run by the community trust.
    for team in [TEAM_NURSING_NORTH, TEAM_NURSING_SOUTH] {
        let team = find("CareTeam", team).unwrap_or_default();
        assert_eq!(
            str_at(&team, "/managingOrganization/0/reference"),
            format!("Organization/{}", careshare_demo::ORG_COMMUNITY)
        );
        assert!(team.get("subject").is_none());
    }
}

// ----------------------------------------------------------- FHIR R4 rules

fn legal_statuses(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Observation" => &[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
        "Encounter" => &[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
        "EpisodeOfCare" => &[
            "planned",
            "waitlist",
            "active",
            "onhold",
            "finished",
            "cancelled",
            "entered-in-error",
        ],
        "CarePlan" => &[
            "draft",
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
            "unknown",
        ],
        "Task" => &[
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        ],
        "Appointment" => &[
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        ],
        "DocumentReference" => &["current", "superseded", "entered-in-error"],
        "Flag" => &["active", "inactive", "entered-in-error"],
        "Consent" => &[
            "draft",
            "proposed",
            "active",
            "rejected",
            "inactive",
            "entered-in-error",
        ],
        "MedicationStatement" => &[
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        ],
        "MedicationRequest" => &[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ],
        "CareTeam" => &[
            "proposed",
            "active",
            "suspended",
            "inactive",
            "entered-in-error",
        ],
        "Location" => &["active", "suspended", "inactive"],
        _ => &[],
    }
}

fn required(resource_type: &str) -> &'static [&'static str] {
    match resource_type {
        "Observation" => &["status", "code"],
        "Encounter" => &["status", "class"],
        "EpisodeOfCare" => &["status", "patient"],
        "CarePlan" => &["status", "intent", "subject"],
        "Task" => &["status", "intent"],
        "Appointment" => &["status", "participant"],
        "DocumentReference" => &["status", "content"],
        "Flag" => &["status", "code", "subject"],
        "Consent" => &["status", "scope", "category"],
        "MedicationStatement" => &["status", "medicationCodeableConcept", "subject"],
        "MedicationRequest" => &["status", "intent", "medicationCodeableConcept", "subject"],
        "AllergyIntolerance" => &["patient"],
        "Condition" => &["subject"],
        _ => &[],
    }
}

/// `dateTime` with a time must carry a zone; `instant` always does.
fn date_time_is_legal(value: &str) -> bool {
    let b = value.as_bytes();
    let date_ok = |s: &[u8]| {
        s.len() == 10
            && s[4] == b'-'
            && s[7] == b'-'
            && s.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    };
    match b.len() {
        10 => date_ok(b),
        25 => {
            date_ok(&b[..10])
                && b[10] == b'T'
                && b[13] == b':'
                && b[16] == b':'
                && (b[19] == b'+' || b[19] == b'-')
                && b[22] == b':'
        }
        _ => false,
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in chunk {
            n <<= 6;
            if c == b'=' {
                pad += 1;
            } else {
                n |= u32::try_from(ALPHABET.iter().position(|&a| a == c)?).ok()?;
            }
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn walk_dates(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| walk_dates(k, v, out)),
        Value::Array(items) => items.iter().for_each(|v| walk_dates(key, v, out)),
        Value::String(s) => {
            let date_key = matches!(
                key,
                "start"
                    | "end"
                    | "date"
                    | "created"
                    | "creation"
                    | "authoredOn"
                    | "lastModified"
                    | "birthDate"
                    | "onsetDateTime"
                    | "abatementDateTime"
                    | "recordedDate"
                    | "effectiveDateTime"
                    | "dateAsserted"
                    | "dateTime"
            );
            if date_key {
                out.push((key.to_owned(), s.clone()));
            }
        }
        _ => {}
    }
}

#[test]
fn resources_follow_r4_rules() {
    let region = region(40, 21);
    let structure = region.structure();
    let organisations: BTreeSet<String> = structure
        .iter()
        .filter(|r| r["resourceType"] == "Organization")
        .map(key)
        .collect();
    let today = today().format("%Y-%m-%d").to_string();
    let mut seen_types = BTreeSet::new();
    for batch in region.patients() {
        for r in &batch {
            let rt = str_at(r, "/resourceType");
            seen_types.insert(rt.to_owned());
            for field in required(rt) {
                assert!(r.get(*field).is_some(), "{} lacks {field}", key(r));
            }
            let statuses = legal_statuses(rt);
            if !statuses.is_empty() {
                assert!(
                    statuses.contains(&str_at(r, "/status")),
                    "{} status",
                    key(r)
                );
            }
            // Authorship.
            if rt != "Patient" {
                let source = str_at(r, "/meta/source");
                assert!(
                    organisations.contains(source),
                    "{} meta.source {source}",
                    key(r)
                );
            }
            let mut dates = Vec::new();
            walk_dates("", r, &mut dates);
            for (field, value) in dates {
                assert!(date_time_is_legal(&value), "{} {field} = {value}", key(r));
                // Only bookings and due dates lie after today.
                let day = &value[..10];
                if day > today.as_str() {
                    let allowed = matches!(rt, "Appointment" | "Task")
                        || (rt == "Encounter" && r["status"] == "planned");
                    assert!(allowed, "{} dated {value} after today", key(r));
                }
            }
            match rt {
                "Observation" if r["category"][0]["coding"][0]["code"] == "vital-signs" => {
                    assert!(r.get("effectiveDateTime").is_some());
                    assert!(r.get("performer").is_some());
                    let has_value = r.get("valueQuantity").is_some()
                        || r.get("valueCodeableConcept").is_some()
                        || r.get("component").is_some();
                    assert!(has_value, "{}", key(r));
                    if let Some(q) = r.get("valueQuantity") {
                        assert_eq!(q["system"], conventions::UCUM);
                    }
                }
                "Consent" => {
                    // ppc-1 and ppc-2.
                    assert!(r.get("policy").is_some() || r.get("policyRule").is_some());
                    assert!(r.get("patient").is_some());
                    assert_eq!(r["provision"]["type"], "deny");
                    assert_eq!(
                        str_at(r, "/scope/coding/0/code"),
                        conventions::CONSENT_SCOPE_PRIVACY
                    );
                    assert_eq!(
                        str_at(r, "/category/0/coding/0/code"),
                        conventions::CONSENT_CATEGORY_LOINC
                    );
                }
                "DocumentReference" => {
                    let attachment = &r["content"][0]["attachment"];
                    let data = attachment["data"].as_str().unwrap_or_default();
                    let text = base64_decode(data).and_then(|b| String::from_utf8(b).ok());
                    assert!(text.is_some_and(|t| t.len() > 40), "{} attachment", key(r));
                    assert!(attachment["contentType"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("text/plain")));
                }
                "Appointment" => {
                    let participants = r["participant"]
                        .as_array()
                        .map(Vec::len)
                        .unwrap_or_default();
                    assert!(participants >= 1);
                    assert!(r.get("start").is_some() == r.get("end").is_some());
                }
                "EpisodeOfCare" => {
                    let finished = r["status"] == "finished";
                    assert_eq!(finished, r["period"].get("end").is_some(), "{}", key(r));
                }
                "Condition" => {
                    let clinical = str_at(r, "/clinicalStatus/coding/0/code");
                    assert!([
                        "active",
                        "recurrence",
                        "relapse",
                        "inactive",
                        "remission",
                        "resolved"
                    ]
                    .contains(&clinical));
                    if r.get("abatementDateTime").is_some() {
                        assert!(["inactive", "remission", "resolved"].contains(&clinical));
                    }
                }
                "Task" => {
                    if let (Some(a), Some(m)) =
                        (r["authoredOn"].as_str(), r["lastModified"].as_str())
                    {
                        assert!(a <= m, "{} inv-1", key(r));
                    }
                }
                "Patient" => {
                    assert!(postcode_format_is_valid(str_at(r, "/address/0/postalCode")));
                    assert!(r["generalPractitioner"][0]["reference"]
                        .as_str()
                        .is_some_and(|g| g.starts_with("Organization/org-gp-")));
                }
                _ => {}
            }
            if let Some(security) = r["meta"]["security"].as_array() {
                assert!(security
                    .iter()
                    .any(|s| s["system"] == CONFIDENTIALITY_SYSTEM
                        && s["code"] == CONFIDENTIALITY_RESTRICTED));
            }
        }
    }
    for expected in [
        "Patient",
        "Condition",
        "AllergyIntolerance",
        "MedicationStatement",
        "MedicationRequest",
        "Observation",
        "Encounter",
        "DocumentReference",
        "EpisodeOfCare",
        "CarePlan",
        "Task",
        "Appointment",
        "Flag",
        "Consent",
        "CareTeam",
    ] {
        assert!(seen_types.contains(expected), "no {expected} generated");
    }
}

#[test]
fn sensitive_entries_objections_and_caseload_shapes() {
    let region = region(100, 4);
    let mut labels = BTreeSet::new();
    let mut objections = 0;
    let mut tasks_due_today = BTreeSet::new();
    for (index, batch) in region.patients().enumerate() {
        let profile = region.profile(index).unwrap_or_else(|| panic!("{index}"));
        let consents = batch
            .iter()
            .filter(|r| r["resourceType"] == "Consent")
            .count();
        assert_eq!(consents, usize::from(profile.objects_to_sharing));
        objections += consents;
        for r in &batch {
            if let Some(security) = r["meta"]["security"].as_array() {
                for s in security {
                    if s["system"] != CONFIDENTIALITY_SYSTEM {
                        labels.insert(str_at(s, "/code").to_owned());
                    }
                }
            }
        }
        let episodes: Vec<&Value> = batch
            .iter()
            .filter(|r| {
                r["resourceType"] == "EpisodeOfCare"
                    && r["managingOrganization"]["reference"] == "Organization/org-community"
            })
            .collect();
        match &profile.caseload {
            Some(membership) => {
                assert_eq!(episodes.len(), 1);
                let episode = episodes[0];
                assert_eq!(
                    str_at(episode, "/team/0/reference"),
                    format!("CareTeam/{}", membership.team_id)
                );
                assert_eq!(episode["status"] == "active", membership.active);
                let visits_today = batch
                    .iter()
                    .filter(|r| r["resourceType"] == "Appointment")
                    .filter(|r| str_at(r, "/start").starts_with("2025-03-14"))
                    .count();
                assert_eq!(
                    visits_today,
                    usize::from(membership.visit_today),
                    "patient {index}"
                );
                let due_today = batch.iter().any(|r| {
                    r["resourceType"] == "Task"
                        && r["status"] == "requested"
                        && str_at(r, "/restriction/period/end").starts_with("2025-03-14")
                });
                if due_today {
                    tasks_due_today.insert(membership.team_id.clone());
                }
            }
            None => assert!(episodes.is_empty()),
        }
        let social = batch.iter().any(|r| {
            r["resourceType"] == "EpisodeOfCare"
                && r["team"][0]["reference"] == "CareTeam/team-social-care"
        });
        assert_eq!(social, profile.social_care, "patient {index}");
    }
    assert_eq!(objections, 2, "2% object to sharing");
    for label in [
        conventions::SENSITIVITY_MENTAL_HEALTH,
        conventions::SENSITIVITY_SEXUAL_HEALTH,
        conventions::SENSITIVITY_SAFEGUARDING,
    ] {
        assert!(labels.contains(label), "no {label} label in {labels:?}");
    }
    assert_eq!(tasks_due_today.len(), 2, "both teams have tasks due today");
}

/// The access policy reads which organisations are social care from `Organization.type`.
#[test]
fn organisations_say_what_kind_they_are() {
    use careshare_policy::OrgIndex;
    let region = careshare_demo::Region::new(careshare_demo::RegionConfig::new(
        1,
        1,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
    ))
    .unwrap();
    let structure = region.structure();
    let orgs: Vec<&serde_json::Value> = structure
        .iter()
        .filter(|r| r["resourceType"] == "Organization")
        .collect();
    let index = OrgIndex::from_organizations(orgs.iter().copied());
    assert!(index.is_social_care(careshare_demo::ORG_COUNCIL));
    assert!(!index.is_social_care(careshare_demo::ORG_HOSPITAL));
    assert!(!index.is_social_care(careshare_demo::ORG_COMMUNITY));
}
