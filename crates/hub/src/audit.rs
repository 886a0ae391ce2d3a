//! The audit trail: every access recorded as a FHIR AuditEvent in an append-only,
//! hash-chained table.
//!
//! Each row stores `hash = SHA-256(prev_hash ‖ "\n" ‖ seq ‖ "\n" ‖ content)`, with the first
//! row chained to [`GENESIS`]. Changing a row's content breaks its hash; removing a row
//! breaks the next row's `prev_hash` (and the sequence); both are reported by [`verify`].
//! Appends are serialised by the store's audit lock.

use careshare_fhir::datetime::format_instant;
use serde_json::{json, Value};
use sqlx::Row;

use crate::store::{Store, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "careshare-audit-genesis";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Search,
    Create,
    Update,
    Delete,
    SignIn,
    DeviceRegistration,
    DeviceProof,
    /// A device's recovery key stored or replaced.
    DeviceRecoveryKey,
    /// A device's recovery key given back to its user to re-authorise a locked replica.
    DeviceRecovery,
    Revocation,
    BreakGlass,
    /// Records sent to a device's replica.
    SyncPull,
    /// Edits uploaded from a device.
    SyncPush,
    /// A record viewed on a device (often offline), uploaded from its audit chain.
    OfflineView,
}

impl Action {
    /// (AuditEvent.action code C/R/U/D/E, subtype code, subtype system).
    fn codes(self) -> (&'static str, &'static str, &'static str) {
        const REST: &str = "http://hl7.org/fhir/restful-interaction";
        const CS: &str = "https://careshare.example.org/fhir/CodeSystem/audit-subtype";
        match self {
            Action::Read => ("R", "read", REST),
            Action::Search => ("E", "search-type", REST),
            Action::Create => ("C", "create", REST),
            Action::Update => ("U", "update", REST),
            Action::Delete => ("D", "delete", REST),
            Action::SignIn => ("E", "sign-in", CS),
            Action::DeviceRegistration => ("C", "device-registration", CS),
            Action::DeviceProof => ("E", "device-proof", CS),
            Action::DeviceRecoveryKey => ("U", "device-recovery-key", CS),
            Action::DeviceRecovery => ("E", "device-recovery", CS),
            Action::Revocation => ("U", "revocation", CS),
            Action::BreakGlass => ("E", "break-glass", CS),
            Action::SyncPull => ("R", "sync-pull", CS),
            Action::SyncPush => ("U", "sync-push", CS),
            Action::OfflineView => ("R", "offline-view", CS),
        }
    }

    pub fn code(self) -> &'static str {
        self.codes().1
    }
}

/// One audited event, before it is written.
#[derive(Debug, Clone)]
pub struct Record {
    pub action: Action,
    pub username: Option<String>,
    pub practitioner_role_id: Option<String>,
    pub device_id: Option<String>,
    pub patient_id: Option<String>,
    /// Other things acted on (`Type/id`).
    pub entities: Vec<String>,
    /// None: success; Some(reason): refused or failed.
    pub failure: Option<String>,
    /// v3-ActReason purpose of use (TREAT, BTG, HOPERAT, HSYSADMIN).
    pub purpose: Option<String>,
    pub description: Option<String>,
}

impl Record {
    /// A record of an action by a signed-in caller (user, role and device).
    pub fn by(action: Action, caller: &crate::auth::Caller) -> Record {
        let mut r = Record::new(action);
        r.username = Some(caller.username.clone());
        r.practitioner_role_id = Some(caller.practitioner_role_id.clone());
        r.device_id = caller.device_id.clone();
        r
    }

    pub fn new(action: Action) -> Record {
        Record {
            action,
            username: None,
            practitioner_role_id: None,
            device_id: None,
            patient_id: None,
            entities: Vec::new(),
            failure: None,
            purpose: None,
            description: None,
        }
    }

    /// The FHIR AuditEvent for this record at `recorded`.
    pub fn to_audit_event(&self, id: &str, recorded: i64) -> Value {
        let (action, subtype, system) = self.action.codes();
        let mut who = json!({"display": self.username.clone().unwrap_or_else(|| "unknown".into())});
        if let Some(r) = &self.practitioner_role_id {
            who["reference"] = json!(format!("PractitionerRole/{r}"));
        }
        let mut agent = json!({"who": who, "requestor": true});
        if let Some(p) = &self.purpose {
            agent["purposeOfUse"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}]}]);
        }
        let mut agents = vec![agent];
        if let Some(d) = &self.device_id {
            agents.push(json!({"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
                "who": {"identifier": {"system": "https://careshare.example.org/fhir/device-id", "value": d}}, "requestor": false}));
        }
        let mut entities: Vec<Value> = Vec::new();
        if let Some(p) = &self.patient_id {
            entities.push(json!({"what": {"reference": format!("Patient/{p}")},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"}}));
        }
        for e in &self.entities {
            entities.push(json!({"what": {"reference": e}}));
        }
        let mut ev = json!({
            "resourceType": "AuditEvent",
            "id": id,
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
            "subtype": [{"system": system, "code": subtype}],
            "action": action,
            "recorded": format_instant(recorded),
            "outcome": if self.failure.is_some() { "4" } else { "0" },
            "agent": agents,
            "source": {"observer": {"display": "Careshare hub"}},
        });
        if let Some(f) = &self.failure {
            ev["outcomeDesc"] = json!(f);
        }
        if let Some(d) = &self.description {
            ev["entity"] = json!([]);
            ev["outcomeDesc"] = json!(match &self.failure {
                Some(f) => format!("{f}; {d}"),
                None => d.clone(),
            });
        }
        if !entities.is_empty() {
            ev["entity"] = Value::Array(entities);
        } else if let Some(o) = ev.as_object_mut() {
            o.remove("entity");
        }
        ev
    }
}

fn chain_hash(prev: &str, seq: i64, content: &str) -> String {
    let mut data = Vec::with_capacity(prev.len() + content.len() + 24);
    data.extend_from_slice(prev.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(seq.to_string().as_bytes());
    data.push(b'\n');
    data.extend_from_slice(content.as_bytes());
    ring::digest::digest(&ring::digest::SHA256, &data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends a record to the trail and returns its AuditEvent.
pub async fn append(store: &Store, record: &Record, now: i64) -> Result<Value, StoreError> {
    let mut events = append_many(store, std::slice::from_ref(record), now).await?;
    Ok(events.pop().unwrap_or(Value::Null))
}

/// Appends records in one transaction (in order) and returns their AuditEvents.
pub async fn append_many(
    store: &Store,
    records: &[Record],
    now: i64,
) -> Result<Vec<Value>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let _guard = store.audit_lock().await;
    let mut tx = store.begin().await?;
    if store.dialect() == crate::store::Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7270614)")
            .execute(&mut *tx)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let (mut seq, mut prev) = match last {
        Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
        None => (0, GENESIS.to_string()),
    };
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        seq += 1;
        let event = record.to_audit_event(&format!("audit-{seq}"), now);
        let content = serde_json::to_string(&event)
            .map_err(|e| StoreError::Corrupt("AuditEvent".into(), e))?;
        let hash = chain_hash(&prev, seq, &content);
        sqlx::query(
            "INSERT INTO audit_log (seq, recorded, username, patient_id, action, outcome, purpose, content, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(now)
        .bind(record.username.as_deref())
        .bind(record.patient_id.as_deref())
        .bind(record.action.code())
        .bind(if record.failure.is_some() { "failure" } else { "success" })
        .bind(record.purpose.as_deref())
        .bind(&content)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        prev = hash;
        events.push(event);
    }
    tx.commit().await?;
    Ok(events)
}

/// A break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("audit row {seq}: its content does not match its hash (the row was changed)")]
    Altered { seq: i64 },
    #[error("audit row {seq}: it does not follow row {expected_prev} (a row before it was removed or changed)")]
    Unlinked { seq: i64, expected_prev: i64 },
    #[error("audit rows jump from {from} to {to} (rows were removed)")]
    Gap { from: i64, to: i64 },
}

/// Checks the whole chain; returns the number of rows on success.
pub async fn verify(store: &Store) -> Result<Result<i64, ChainBreak>, StoreError> {
    let rows = sqlx::query("SELECT seq, content, prev_hash, hash FROM audit_log ORDER BY seq")
        .fetch_all(store.pool())
        .await?;
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq = 0i64;
    for r in &rows {
        let seq: i64 = r.try_get("seq")?;
        let content: String = r.try_get("content")?;
        let stored_prev: String = r.try_get("prev_hash")?;
        let hash: String = r.try_get("hash")?;
        if seq != prev_seq + 1 {
            return Ok(Err(ChainBreak::Gap {
                from: prev_seq,
                to: seq,
            }));
        }
        if stored_prev != prev_hash {
            return Ok(Err(ChainBreak::Unlinked {
                seq,
                expected_prev: prev_seq,
            }));
        }
        if chain_hash(&stored_prev, seq, &content) != hash {
            return Ok(Err(ChainBreak::Altered { seq }));
        }
        prev_hash = hash;
        prev_seq = seq;
    }
    Ok(Ok(prev_seq))
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub patient_id: Option<String>,
    pub username: Option<String>,
    /// Recorded at or after (microseconds).
    pub since: Option<i64>,
    /// Recorded before (microseconds).
    pub until: Option<i64>,
    /// Only this kind of event (e.g. [`Action::BreakGlass`]).
    pub action: Option<Action>,
    pub limit: i64,
}

/// Audit events, newest first.
pub async fn list(store: &Store, f: &Filter) -> Result<Vec<Value>, StoreError> {
    let mut sql = String::from("SELECT content FROM audit_log WHERE 1 = 1");
    let mut args: Vec<crate::store::Arg> = Vec::new();
    let mut cond = |sql: &mut String, clause: &str, arg: crate::store::Arg| {
        args.push(arg);
        sql.push_str(&format!(" AND {clause} ${}", args.len()));
    };
    use crate::store::Arg;
    if let Some(p) = &f.patient_id {
        cond(&mut sql, "patient_id =", Arg::S(p.clone()));
    }
    if let Some(u) = &f.username {
        cond(&mut sql, "username =", Arg::S(u.clone()));
    }
    if let Some(s) = f.since {
        cond(&mut sql, "recorded >=", Arg::I(s));
    }
    if let Some(u) = f.until {
        cond(&mut sql, "recorded <", Arg::I(u));
    }
    if let Some(a) = f.action {
        cond(&mut sql, "action =", Arg::S(a.code().to_string()));
    }
    cond(&mut sql, "1 = 1 ORDER BY seq DESC LIMIT", Arg::I(f.limit));
    let mut conn = store.reader().await?;
    let rows = crate::store::Conn::Any(&mut conn)
        .fetch_strings(&sql, &args, "content")
        .await?;
    rows.iter()
        .map(|c| serde_json::from_str(c).map_err(|e| StoreError::Corrupt("AuditEvent".into(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_is_an_audit_event_with_outcome_and_purpose() {
        let mut r = Record::new(Action::Read);
        r.username = Some("nurse.amy.khan".into());
        r.practitioner_role_id = Some("role-1".into());
        r.patient_id = Some("p1".into());
        r.purpose = Some("TREAT".into());
        r.failure = Some("no-relationship".into());
        let ev = r.to_audit_event("audit-1", 0);
        assert_eq!(ev["action"], "R");
        assert_eq!(ev["outcome"], "4");
        assert_eq!(ev["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(
            ev["agent"][0]["who"]["reference"],
            "PractitionerRole/role-1"
        );
        assert_eq!(
            ev["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
            "TREAT"
        );
    }

    #[test]
    fn the_hash_covers_sequence_and_content() {
        let a = chain_hash(GENESIS, 1, "{}");
        assert_ne!(a, chain_hash(GENESIS, 2, "{}"));
        assert_ne!(a, chain_hash(GENESIS, 1, "{ }"));
        assert_ne!(a, chain_hash("other", 1, "{}"));
    }
}
