//! The facts the access policy decides on, read from the store: who the caller is
//! (their PractitionerRole, organisation and teams), what each patient's relationships,
//! objections and break-glass grants are. The decisions themselves are the pure
//! `careshare-policy` crate's.

use careshare_policy::{relationship, Basis, BreakGlassGrant, OrgIndex, PatientFacts, Subject};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::Row;

use crate::auth::Caller;
use crate::store::{
    self, Arg, Conn, Store, StoreError, Stored, VERSION_COLUMNS, VERSION_COLUMNS_V,
};

/// Why the caller's identity could not be turned into a policy subject.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("the account's PractitionerRole ({0}) is missing from the directory")]
    MissingRole(String),
    #[error("the account's PractitionerRole cannot be used: {0}")]
    BadRole(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccessError {
    fn from(e: sqlx::Error) -> AccessError {
        AccessError::Store(StoreError::Database(e))
    }
}

/// Microseconds since the epoch as a UTC time.
pub fn utc(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

fn resources(stored: Vec<Stored>) -> Vec<Value> {
    stored
        .into_iter()
        .filter_map(|s| s.resource().ok().flatten())
        .collect()
}

/// Current, not deleted resources of `types` in the compartment of `patient_id`.
async fn in_compartment(
    conn: &mut Conn<'_>,
    patient_id: &str,
    types: &[&str],
) -> Result<Vec<Value>, StoreError> {
    let sql = format!(
        "SELECT {cols} FROM resource_version v WHERE v.superseded_seq IS NULL AND v.deleted = 0 \
         AND v.res_type IN ({}) AND v.seq IN (SELECT seq FROM compartment WHERE patient_id = $1)",
        store::numbered_params(2, types.len()),
        cols = VERSION_COLUMNS_V
    );
    let mut args = vec![Arg::S(patient_id.to_string())];
    args.extend(types.iter().map(|t| Arg::S(t.to_string())));
    Ok(resources(conn.fetch_stored(&sql, &args).await?))
}

/// Current resources of one type that refer to `target` through `param`.
async fn referring(
    conn: &mut Conn<'_>,
    res_type: &str,
    param: &str,
    target: &str,
) -> Result<Vec<Value>, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version WHERE superseded_seq IS NULL AND deleted = 0 \
         AND seq IN (SELECT seq FROM idx_reference WHERE res_type = $1 AND param = $2 AND target = $3)"
    );
    let args = [
        Arg::S(res_type.into()),
        Arg::S(param.into()),
        Arg::S(target.into()),
    ];
    Ok(resources(conn.fetch_stored(&sql, &args).await?))
}

/// The caller as the policy sees them.
pub async fn subject(
    conn: &mut Conn<'_>,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Subject, AccessError> {
    let role = store::read_current(conn, "PractitionerRole", &caller.practitioner_role_id)
        .await?
        .filter(|s| !s.deleted)
        .and_then(|s| s.resource().ok().flatten())
        .ok_or_else(|| AccessError::MissingRole(caller.practitioner_role_id.clone()))?;
    let teams = referring(
        conn,
        "CareTeam",
        "participant",
        &format!("PractitionerRole/{}", caller.practitioner_role_id),
    )
    .await?;
    Subject::from_practitioner_role(&caller.username, &role, teams.iter(), now)
        .map_err(|e| AccessError::BadRole(e.to_string()))
}

/// Patients who may be linked to the subject: every patient an index says is on one of
/// their teams' caseloads, on a care team with them, registered with their practice, with
/// their hospital, or under one of their grants. A superset: the policy decides each.
pub async fn candidate_patients(
    conn: &mut Conn<'_>,
    subject: &Subject,
    grants: &[BreakGlassGrant],
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let mut out = std::collections::BTreeSet::new();
    if !subject.role.cares_for_patients() {
        return Ok(out);
    }
    let org = format!("Organization/{}", subject.organization_id);
    let role = format!("PractitionerRole/{}", subject.practitioner_role_id);
    let teams: Vec<String> = subject
        .team_ids
        .iter()
        .map(|t| format!("CareTeam/{t}"))
        .collect();
    let mut people = vec![role.clone()];
    if let Some(p) = &subject.practitioner_id {
        people.push(format!("Practitioner/{p}"));
    }
    // (resource type, reference parameter, targets, the parameter naming the patient)
    let mut lookups: Vec<(&str, &str, Vec<String>, &str)> = vec![
        ("EpisodeOfCare", "team", teams.clone(), "patient"),
        (
            "EpisodeOfCare",
            "organization",
            vec![org.clone()],
            "patient",
        ),
        (
            "CareTeam",
            "participant",
            people
                .iter()
                .cloned()
                .chain([org.clone()])
                .chain(teams)
                .collect(),
            "patient",
        ),
        (
            "Patient",
            "general-practitioner",
            people.iter().cloned().chain([org.clone()]).collect(),
            "",
        ),
    ];
    if subject.role == careshare_policy::Role::HospitalClinician {
        lookups.push(("Encounter", "service-provider", vec![org], "patient"));
    }
    for (res_type, param, targets, patient_param) in lookups {
        if targets.is_empty() {
            continue;
        }
        let mut args = vec![Arg::S(res_type.into()), Arg::S(param.into())];
        let placeholders: Vec<String> = targets
            .iter()
            .map(|t| {
                args.push(Arg::S(t.clone()));
                format!("${}", args.len())
            })
            .collect();
        let (select, join) = if patient_param.is_empty() {
            ("'Patient/' || v.res_id AS target", String::new())
        } else {
            args.push(Arg::S(patient_param.into()));
            (
                "p.target AS target",
                format!(
                    "JOIN idx_reference p ON p.seq = r.seq AND p.param = ${}",
                    args.len()
                ),
            )
        };
        // An episode that names teams is those teams' caseload, not the organisation's.
        let no_team = if res_type == "EpisodeOfCare" && param == "organization" {
            " AND NOT EXISTS (SELECT 1 FROM idx_reference t WHERE t.seq = r.seq AND t.param = 'team')"
        } else {
            ""
        };
        let sql = format!(
            "SELECT DISTINCT {select} FROM idx_reference r \
             JOIN resource_version v ON v.seq = r.seq AND v.superseded_seq IS NULL AND v.deleted = 0 \
             {join} WHERE r.res_type = $1 AND r.param = $2 AND r.target IN ({}){no_team}",
            placeholders.join(",")
        );
        for t in conn.fetch_strings(&sql, &args, "target").await? {
            if let Some(id) = t.strip_prefix("Patient/") {
                out.insert(id.to_string());
            }
        }
    }
    for g in grants {
        if g.user_id == subject.user_id {
            out.insert(g.patient_id.clone());
        }
    }
    Ok(out)
}

/// The current Patient whose NHS number is `nhs_number` (ten digits), if exactly one
/// is. Used by break-glass, where a clinician names a patient they cannot yet see.
pub async fn patient_by_nhs_number(
    conn: &mut Conn<'_>,
    nhs_number: &str,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT DISTINCT v.res_id AS id FROM idx_token t \
               JOIN resource_version v ON v.seq = t.seq AND v.superseded_seq IS NULL AND v.deleted = 0 \
               WHERE t.res_type = 'Patient' AND t.param = 'identifier' AND t.code = $1 AND t.system = $2";
    let ids = conn
        .fetch_strings(
            sql,
            &[
                Arg::S(nhs_number.into()),
                Arg::S(careshare_demo::conventions::NHS_NUMBER_SYSTEM.into()),
            ],
            "id",
        )
        .await?;
    Ok(match ids.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

/// Every organisation in the directory, by kind (social care or not).
pub async fn organisations(conn: &mut Conn<'_>) -> Result<OrgIndex, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version WHERE res_type = 'Organization' \
         AND superseded_seq IS NULL AND deleted = 0"
    );
    let orgs = resources(conn.fetch_stored(&sql, &[]).await?);
    Ok(OrgIndex::from_organizations(orgs.iter()))
}

/// What the policy needs to know about one patient, or None if there is no such patient.
///
/// Encounters matter only to hospital clinicians (a patient with their hospital now); a
/// caseload patient has dozens of visits, so they are read only when `encounters` says.
pub async fn patient_facts(
    conn: &mut Conn<'_>,
    patient_id: &str,
    encounters: bool,
) -> Result<Option<PatientFacts>, StoreError> {
    let Some(patient) = store::read_current(conn, "Patient", patient_id)
        .await?
        .filter(|s| !s.deleted)
        .and_then(|s| s.resource().ok().flatten())
    else {
        return Ok(None);
    };
    let types: &[&str] = if encounters {
        &["EpisodeOfCare", "CareTeam", "Encounter", "Consent"]
    } else {
        &["EpisodeOfCare", "CareTeam", "Consent"]
    };
    let mut related = in_compartment(conn, patient_id, types).await?;
    // A GP named as a PractitionerRole brings that role's practice.
    for gp in patient["generalPractitioner"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(id) = gp["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("PractitionerRole/"))
        {
            if let Some(r) = store::read_current(conn, "PractitionerRole", id)
                .await?
                .and_then(|s| s.resource().ok().flatten())
            {
                related.push(r);
            }
        }
    }
    Ok(PatientFacts::from_resources(&patient, related.iter()).ok())
}

/// [`patient_facts`] for many patients at once (a handful of queries, not three per
/// patient); patients that do not exist are left out.
pub async fn patient_facts_many(
    conn: &mut Conn<'_>,
    ids: &[String],
    encounters: bool,
) -> Result<std::collections::HashMap<String, PatientFacts>, StoreError> {
    let types = if encounters {
        "'EpisodeOfCare', 'CareTeam', 'Encounter', 'Consent'"
    } else {
        "'EpisodeOfCare', 'CareTeam', 'Consent'"
    };
    use std::collections::HashMap;
    let cols = VERSION_COLUMNS_V;
    let mut patients: Vec<Value> = Vec::new();
    let mut related: HashMap<String, Vec<Value>> = HashMap::new();
    for chunk in ids.chunks(400) {
        let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let args: Vec<Arg> = chunk.iter().map(|i| Arg::S(i.clone())).collect();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resource_version WHERE res_type = 'Patient' \
             AND superseded_seq IS NULL AND deleted = 0 AND res_id IN ({})",
            ph.join(",")
        );
        patients.extend(resources(conn.fetch_stored(&sql, &args).await?));
        // Through the `patient` reference index: exactly these patients' links, whatever
        // the size of the region.
        let refs: Vec<Arg> = chunk
            .iter()
            .map(|i| Arg::S(format!("Patient/{i}")))
            .collect();
        let sql = format!(
            "SELECT DISTINCT {cols} FROM idx_reference r JOIN resource_version v ON v.seq = r.seq \
             WHERE r.res_type IN ({types}) AND r.param = 'patient' AND r.target IN ({}) \
             AND v.superseded_seq IS NULL AND v.deleted = 0",
            ph.join(",")
        );
        for r in resources(conn.fetch_stored(&sql, &refs).await?) {
            for p in careshare_fhir::search::patient_compartment(&r) {
                related.entry(p).or_default().push(r.clone());
            }
        }
    }
    // GPs named as PractitionerRoles bring their practices.
    let mut role_ids: Vec<String> = patients
        .iter()
        .flat_map(|p| {
            p["generalPractitioner"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|gp| gp["reference"].as_str()?.strip_prefix("PractitionerRole/"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    role_ids.sort();
    role_ids.dedup();
    let mut roles: HashMap<String, Value> = HashMap::new();
    for chunk in role_ids.chunks(400) {
        let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let args: Vec<Arg> = chunk.iter().map(|i| Arg::S(i.clone())).collect();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resource_version WHERE res_type = 'PractitionerRole' \
             AND superseded_seq IS NULL AND deleted = 0 AND res_id IN ({})",
            ph.join(",")
        );
        for r in resources(conn.fetch_stored(&sql, &args).await?) {
            if let Some(id) = r["id"].as_str() {
                roles.insert(id.to_string(), r.clone());
            }
        }
    }
    let mut out = HashMap::new();
    for patient in &patients {
        let Some(id) = patient["id"].as_str() else {
            continue;
        };
        let mut rel: Vec<Value> = related.remove(id).unwrap_or_default();
        for gp in patient["generalPractitioner"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(r) = gp["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("PractitionerRole/"))
                .and_then(|r| roles.get(r))
            {
                rel.push(r.clone());
            }
        }
        if let Ok(f) = PatientFacts::from_resources(patient, rel.iter()) {
            out.insert(id.to_string(), f);
        }
    }
    Ok(out)
}

/// A stored break-glass grant with its review state.
#[derive(Debug, Clone)]
pub struct StoredGrant {
    pub grant_id: String,
    pub grant: BreakGlassGrant,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub review_outcome: Option<String>,
}

fn grant_from_row(r: &sqlx::any::AnyRow) -> Result<StoredGrant, sqlx::Error> {
    Ok(StoredGrant {
        grant_id: r.try_get("grant_id")?,
        grant: BreakGlassGrant {
            user_id: r.try_get("username")?,
            patient_id: r.try_get("patient_id")?,
            reason: r.try_get("reason")?,
            granted_at: utc(r.try_get("granted_at")?),
            expires_at: utc(r.try_get("expires_at")?),
        },
        reviewed_by: r.try_get("reviewed_by")?,
        reviewed_at: r.try_get("reviewed_at")?,
        review_outcome: r.try_get("review_outcome")?,
    })
}

const GRANT_COLUMNS: &str = "grant_id, username, patient_id, reason, granted_at, expires_at, reviewed_by, reviewed_at, review_outcome";

/// The caller's break-glass grants for a patient (active or not).
pub async fn grants_for(
    store: &Store,
    username: &str,
    patient_id: &str,
) -> Result<Vec<BreakGlassGrant>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM break_glass WHERE username = $1 AND patient_id = $2"
    ))
    .bind(username)
    .bind(patient_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| grant_from_row(r).map(|g| g.grant))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

/// Every break-glass grant the user holds (active or not; the policy looks at the times).
pub async fn grants_of(store: &Store, username: &str) -> Result<Vec<BreakGlassGrant>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM break_glass WHERE username = $1"
    ))
    .bind(username)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| grant_from_row(r).map(|g| g.grant))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

/// Stores a new grant.
pub async fn store_grant(store: &Store, g: &BreakGlassGrant) -> Result<String, StoreError> {
    let id = format!("bg-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO break_glass (grant_id, username, patient_id, reason, granted_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&g.user_id)
    .bind(&g.patient_id)
    .bind(&g.reason)
    .bind(g.granted_at.timestamp_micros())
    .bind(g.expires_at.timestamp_micros())
    .execute(store.pool())
    .await?;
    Ok(id)
}

/// Grants for the privacy officer's review, newest first.
pub async fn list_grants(
    store: &Store,
    unreviewed_only: bool,
) -> Result<Vec<StoredGrant>, StoreError> {
    let filter = if unreviewed_only {
        "WHERE reviewed_at IS NULL"
    } else {
        ""
    };
    let rows = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM break_glass {filter} ORDER BY granted_at DESC"
    ))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(grant_from_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

/// Records the privacy officer's review of a grant. False if there is no such grant or it
/// was already reviewed.
pub async fn review_grant(
    store: &Store,
    grant_id: &str,
    reviewer: &str,
    outcome: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE break_glass SET reviewed_by = $1, reviewed_at = $2, review_outcome = $3 \
         WHERE grant_id = $4 AND reviewed_at IS NULL",
    )
    .bind(reviewer)
    .bind(now)
    .bind(outcome)
    .bind(grant_id)
    .execute(store.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Why (or whether) the caller may open a patient's record now.
#[derive(Debug, Clone)]
pub struct PatientAccessView {
    pub basis: Option<Basis>,
    pub objection: bool,
    pub break_glass_until: Option<DateTime<Utc>>,
}

/// The caller's access to a patient now.
pub fn access_view(
    subject: &Subject,
    facts: &PatientFacts,
    grants: &[BreakGlassGrant],
    now: DateTime<Utc>,
) -> PatientAccessView {
    PatientAccessView {
        basis: relationship(subject, facts, grants, now),
        objection: careshare_policy::objection_in_force(facts, now),
        break_glass_until: grants
            .iter()
            .filter(|g| g.is_for(&subject.user_id, &facts.patient_id) && g.is_active(now))
            .map(|g| g.expires_at)
            .max(),
    }
}
