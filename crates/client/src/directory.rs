//! Online extras of a session: emergency (break-glass) access, and the
//! directory of organisations that names who wrote each entry.
//!
//! The directory is not part of the sync feed (it belongs to no patient): a
//! session refreshes it from the hub's FHIR API after a sync and keeps it in
//! the replica, so the names are there offline too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{ClientError, Result};
use crate::session::Session;

/// A break-glass grant the hub made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The patient's id.
    pub patient_id: String,
    /// The reason given.
    pub reason: String,
    /// When access ends.
    pub expires_at: DateTime<Utc>,
}

/// Organisations read in one refresh: the hub's largest page. A region has tens.
const PAGE: &str = "1000";

impl Session {
    /// Asks the hub for emergency access to the patient with `nhs_number`
    /// (spaces allowed), giving `reason`. The hub audits the grant and flags
    /// it for review; while it lasts the patient is in this device's sync
    /// feed, so sync next. Online only.
    pub async fn break_glass(
        &mut self,
        nhs_number: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Grant> {
        let digits: String = nhs_number.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ClientError::InvalidInput(
                "an NHS number has ten digits".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(ClientError::InvalidInput(
                "emergency access needs a reason".into(),
            ));
        }
        let access = self.access_token(now).await?;
        let answer = self.hub.break_glass(&access, &digits, reason.trim()).await;
        let grant = answer.map_err(|e| self.fail(e))?;
        let expires_at = DateTime::parse_from_rfc3339(&grant.expires_at)
            .map_err(|_| ClientError::BadResponse("expires_at is not an RFC 3339 time".into()))?
            .with_timezone(&Utc);
        Ok(Grant {
            patient_id: grant
                .patient
                .strip_prefix("Patient/")
                .unwrap_or(&grant.patient)
                .to_owned(),
            reason: grant.reason,
            expires_at,
        })
    }

    /// Fetches the region's organisations and the user's own PractitionerRole
    /// and replaces the replica's directory with them. Returns how many
    /// resources it holds now. Online only; on failure the old directory
    /// stays.
    pub async fn refresh_directory(&mut self, now: DateTime<Utc>) -> Result<usize> {
        let access = self.access_token(now).await?;
        let page = self
            .hub
            .search(&access, "Organization", &[("_count", PAGE)])
            .await;
        let page = page.map_err(|e| self.fail(e))?;
        let mut resources = entries(&page);
        if has_next(&page) {
            tracing::warn!(
                "the region has more than {PAGE} organisations; the first {PAGE} are named"
            );
        }
        if let Some(role) = self.device.practitioner_role.clone() {
            if let Some(id) = role.strip_prefix("PractitionerRole/") {
                let answer = self.hub.read(&access, "PractitionerRole", id).await;
                resources.push(answer.map_err(|e| self.fail(e))?);
            }
        }
        let n = resources.len();
        self.replica_mut()?.replace_directory(&resources)?;
        Ok(n)
    }

    /// Organisation names by id, from the directory on the device.
    pub fn organisation_names(&self) -> Result<HashMap<String, String>> {
        Ok(self
            .replica()?
            .directory("Organization")?
            .into_iter()
            .filter_map(|o| {
                let id = o.get("id")?.as_str()?.to_owned();
                let name = o.get("name")?.as_str()?.to_owned();
                Some((id, name))
            })
            .collect())
    }

    /// The id of the user's organisation, from their PractitionerRole in the
    /// directory (`None` until a directory refresh has brought it).
    pub fn own_organisation(&self) -> Result<Option<String>> {
        Ok(self.own_role()?.and_then(|r| {
            r.pointer("/organization/reference")?
                .as_str()?
                .strip_prefix("Organization/")
                .map(str::to_owned)
        }))
    }

    /// The user's name as their PractitionerRole shows it (e.g. "Amy Khan"),
    /// for signing what they write; `None` until a directory refresh.
    pub fn own_display_name(&self) -> Result<Option<String>> {
        Ok(self.own_role()?.and_then(|r| {
            r.pointer("/practitioner/display")?
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        }))
    }

    fn own_role(&self) -> Result<Option<Value>> {
        let Some(role) = &self.device.practitioner_role else {
            return Ok(None);
        };
        let id = role.strip_prefix("PractitionerRole/").unwrap_or(role);
        Ok(self
            .replica()?
            .directory("PractitionerRole")?
            .into_iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id)))
    }
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(|es| {
            es.iter()
                .filter_map(|e| e.get("resource").cloned())
                .collect()
        })
        .unwrap_or_default()
}

fn has_next(bundle: &Value) -> bool {
    bundle
        .get("link")
        .and_then(Value::as_array)
        .is_some_and(|ls| ls.iter().any(|l| l.get("relation") == Some(&"next".into())))
}
