//! Sync over HTTP (`/sync`): pull pages of a device's feed, push edits, upload the offline
//! audit chain, check in for the offline lease. Every call needs a token bound to a
//! registered, unrevoked device (a revoked device is told to wipe); every page sent and
//! every edit is audited.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use careshare_fhir::IssueType;
use careshare_sync::{EditResult, PullRequest, PushBatch};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{caller, json_body};
use super::{guard_for, ApiError, AppState};
use crate::audit::{self, Action, Record};
use crate::auth::{Auth, Caller};
use crate::sync::{self, AuditRow, SyncError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sync/pull", post(pull))
        .route("/sync/push", post(push))
        .route("/sync/checkin", post(checkin))
        .route("/sync/audit", get(audit_position).post(upload_audit))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> ApiError {
        match e {
            SyncError::Store(s) => ApiError::from(s),
            e @ SyncError::CheckpointAhead(..) => {
                ApiError::new(StatusCode::CONFLICT, IssueType::Conflict, e.to_string())
            }
            SyncError::Audit(m) => ApiError::new(StatusCode::CONFLICT, IssueType::Conflict, m),
        }
    }
}

/// The caller, who must be acting through a registered device, and that device.
async fn device_caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, String), ApiError> {
    let c = caller(state, headers).await?;
    match c.device_id.clone() {
        Some(d) => Ok((c, d)),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "sync needs a token bound to a registered device: prove the device \
             (POST /auth/devices/{id}/challenge, then /token) and use that token",
        )),
    }
}

async fn append(state: &AppState, records: Vec<Record>) -> Result<(), ApiError> {
    if !records.is_empty() {
        audit::append_many(&state.store, &records, now()).await?;
    }
    Ok(())
}

async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (c, device) = device_caller(&state, &headers).await?;
    let req: PullRequest = json_body(&body)?;
    let mut g = guard_for(&state, &c).await?;
    let page = sync::pull(&state.store, &mut g, &device, &req, &state.sync_lock).await?;
    // One AuditEvent per patient whose records this page carries to the device.
    let records = page
        .patients
        .iter()
        .map(|p| {
            let mut r = Record::by(Action::SyncPull, &c);
            r.patient_id = Some(p.to_string());
            r.purpose = Some(
                g.touched()
                    .get(p)
                    .copied()
                    .unwrap_or(g.purpose())
                    .code()
                    .to_string(),
            );
            r
        })
        .collect();
    append(&state, records).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], page.json).into_response())
}

async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (c, device) = device_caller(&state, &headers).await?;
    let batch: PushBatch = json_body(&body)?;
    let mut g = guard_for(&state, &c).await?;
    let result = sync::push(&state.store, &mut g, &device, &batch).await?;
    let mut records = Vec::new();
    for r in &result.results {
        let Some(edit) = batch
            .edits
            .iter()
            .find(|e| e.client_edit_id == r.client_edit_id())
        else {
            continue;
        };
        let mut rec = Record::by(Action::SyncPush, &c);
        rec.entities
            .push(format!("{}/{}", edit.resource_type, edit.id));
        let patient = edit
            .resource
            .as_ref()
            .map(careshare_fhir::search::patient_compartment)
            .and_then(|p| p.into_iter().next());
        rec.patient_id = patient.clone();
        rec.purpose = Some(
            patient
                .as_ref()
                .and_then(|p| g.touched().get(p).copied())
                .unwrap_or(g.purpose())
                .code()
                .to_string(),
        );
        rec.failure = match r {
            EditResult::Applied { .. }
            | EditResult::Merged { .. }
            | EditResult::AlreadyApplied { .. } => None,
            EditResult::Conflict { .. } => Some("conflict: kept for a person to resolve".into()),
            EditResult::Rejected { .. } => Some("rejected".into()),
        };
        records.push(rec);
    }
    append(&state, records).await?;
    Ok(Json(result).into_response())
}

/// Renews the device's offline lease.
async fn checkin(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_c, _device) = device_caller(&state, &headers).await?;
    let until = chrono::Utc::now() + chrono::Duration::days(state.auth.lease_days);
    Ok(Json(json!({
        "lease_until": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }))
    .into_response())
}

async fn audit_position(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_c, device) = device_caller(&state, &headers).await?;
    let (next_seq, head) = sync::audit_head(&state.store, &device).await?;
    Ok(Json(json!({"next_seq": next_seq, "head": head})).into_response())
}

#[derive(Deserialize)]
struct AuditUpload {
    events: Vec<AuditRow>,
    signature: String,
}

/// Takes the next rows of a device's offline audit chain: they must continue the chain the
/// hub holds, unchanged, and the device must sign the new head. Each becomes an AuditEvent.
async fn upload_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (c, device) = device_caller(&state, &headers).await?;
    let upload: AuditUpload = json_body(&body)?;
    let _lock = state.sync_lock.lock().await;
    let (next_seq, head) = sync::audit_head(&state.store, &device).await?;
    let new_head = sync::verify_upload(next_seq, &head, &upload.events)?;
    if upload.events.is_empty() {
        return Ok(Json(json!({"next_seq": next_seq, "head": head})).into_response());
    }
    let message = format!("{}{new_head}", sync::AUDIT_SIGN_CONTEXT);
    Auth {
        store: &state.store,
        config: &state.auth,
    }
    .verify_device_signature(&c, &device, message.as_bytes(), &upload.signature)
    .await?;
    let records: Vec<Record> = upload
        .events
        .iter()
        .map(|row| {
            let event = match &row.event {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                v => v.clone(),
            };
            let mut r = Record::by(Action::OfflineView, &c);
            r.patient_id = event
                .get("patient")
                .and_then(Value::as_str)
                .map(|p| p.trim_start_matches("Patient/").to_string());
            if let Some(what) = event
                .get("resource")
                .or_else(|| event.get("entity"))
                .and_then(Value::as_str)
            {
                r.entities.push(what.to_string());
            }
            r.purpose = event
                .get("purpose")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(Some("TREAT".into()));
            r.description = Some(format!(
                "on device {device} at {} (device audit row {})",
                row.recorded_at, row.seq
            ));
            r
        })
        .collect();
    append(&state, records).await?;
    let next = next_seq + upload.events.len() as i64;
    sync::set_audit_head(&state.store, &device, next, &new_head).await?;
    Ok(Json(json!({"next_seq": next, "head": new_head})).into_response())
}
