//! The patient access report: who viewed or changed a patient's record, when, from which
//! organisation, and why — read from the audit trail.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::audit;
use crate::store::{self, Conn, Store, StoreError};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    pub when: String,
    pub who: String,
    pub role: Option<String>,
    pub organisation: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// A patient access report, oldest event first.
#[derive(Debug, Clone)]
pub struct AccessReport {
    pub patient_id: String,
    pub entries: Vec<ReportEntry>,
}

fn purpose_words(code: &str) -> &str {
    match code {
        "TREAT" => "care",
        "BTG" => "emergency access (break the glass)",
        "HOPERAT" => "privacy review",
        "HSYSADMIN" => "administration",
        other => other,
    }
}

/// Builds the report for a patient.
pub async fn access_report(store: &Store, patient_id: &str) -> Result<AccessReport, StoreError> {
    let mut events = audit::list(
        store,
        &audit::Filter {
            patient_id: Some(patient_id.to_string()),
            limit: 100_000,
            ..audit::Filter::default()
        },
    )
    .await?;
    events.reverse();
    let mut conn = store.reader().await?;
    let mut roles: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let mut entries = Vec::with_capacity(events.len());
    for ev in &events {
        let agent = &ev["agent"][0];
        let role_ref = agent["who"]["reference"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !role_ref.is_empty() && !roles.contains_key(&role_ref) {
            let found = role_and_org(&mut Conn::Any(&mut conn), &role_ref).await?;
            roles.insert(role_ref.clone(), found);
        }
        let (role, organisation) = roles.get(&role_ref).cloned().unwrap_or((None, None));
        entries.push(ReportEntry {
            when: ev["recorded"].as_str().unwrap_or_default().to_string(),
            who: agent["who"]["display"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            role,
            organisation,
            action: ev["subtype"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            purpose: agent["purposeOfUse"][0]["coding"][0]["code"]
                .as_str()
                .map(|c| purpose_words(c).to_string()),
            outcome: if ev["outcome"] == "0" {
                "allowed"
            } else {
                "refused"
            }
            .to_string(),
            detail: ev["outcomeDesc"].as_str().map(str::to_string),
        });
    }
    Ok(AccessReport {
        patient_id: patient_id.to_string(),
        entries,
    })
}

/// The role name and organisation name of a PractitionerRole.
async fn role_and_org(
    conn: &mut Conn<'_>,
    role_ref: &str,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let Some(id) = role_ref.strip_prefix("PractitionerRole/") else {
        return Ok((None, None));
    };
    let Some(role) = store::read_current(conn, "PractitionerRole", id)
        .await?
        .and_then(|s| s.resource().ok().flatten())
    else {
        return Ok((None, None));
    };
    let role_name = role["code"][0]["coding"][0]["display"]
        .as_str()
        .or_else(|| role["code"][0]["coding"][0]["code"].as_str())
        .map(str::to_string);
    let org_name = match role["organization"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Organization/"))
    {
        Some(org) => store::read_current(conn, "Organization", org)
            .await?
            .and_then(|s| s.resource().ok().flatten())
            .and_then(|o| o["name"].as_str().map(str::to_string)),
        None => None,
    };
    Ok((role_name, org_name))
}

impl AccessReport {
    pub fn to_json(&self) -> Value {
        json!({
            "patient": format!("Patient/{}", self.patient_id),
            "events": self.entries.iter().map(|e| json!({
                "when": e.when,
                "who": e.who,
                "role": e.role,
                "organisation": e.organisation,
                "action": e.action,
                "purpose": e.purpose,
                "outcome": e.outcome,
                "detail": e.detail,
            })).collect::<Vec<_>>(),
        })
    }

    /// A readable report for the patient or the privacy officer.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Access report for Patient/{}: {} recorded events\n\n",
            self.patient_id,
            self.entries.len()
        );
        for e in &self.entries {
            let _ = writeln!(
                out,
                "{}  {}{}{}  {}  {}{}{}",
                e.when,
                e.who,
                e.role
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                e.organisation
                    .as_deref()
                    .map(|o| format!(", {o}"))
                    .unwrap_or_default(),
                e.action,
                e.outcome,
                e.purpose
                    .as_deref()
                    .map(|p| format!(", for {p}"))
                    .unwrap_or_default(),
                e.detail
                    .as_deref()
                    .map(|d| format!(" — {d}"))
                    .unwrap_or_default(),
            );
        }
        out
    }
}
