//! Access to patients beyond plain FHIR: the caller's access to a patient, break-glass
//! requests, the privacy officer's review, and the patient access report
//! (`/careshare/...`). Everything here is audited.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use careshare_fhir::datetime::format_instant;
use careshare_fhir::IssueType;
use careshare_policy::{request_break_glass, BreakGlassPolicy, Role, Subject};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{caller, json_body};
use super::{ApiError, AppState};
use crate::access::{self, utc};
use crate::audit::{self, Action, Record};
use crate::auth::Caller;
use crate::report;
use crate::store::Conn;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/careshare/patients/{id}/access", get(patient_access))
        .route(
            "/careshare/break-glass",
            post(break_glass).get(list_break_glass),
        )
        .route("/careshare/break-glass/{id}/review", post(review))
        .route("/careshare/access-report", get(access_report))
        .route("/careshare/audit", get(audit_search))
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The caller and their policy subject.
pub(super) async fn who(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Caller, Subject), ApiError> {
    let c = caller(state, headers).await?;
    let mut conn = state.store.reader().await?;
    let subject = access::subject(&mut Conn::Any(&mut conn), &c, utc(now_micros())).await?;
    Ok((c, subject))
}

fn patient_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Patient/{id} does not exist"))
}

async fn patient_access(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (c, subject) = who(&state, &headers).await?;
    let now = now_micros();
    let mut conn = state.store.reader().await?;
    let facts = access::patient_facts(
        &mut Conn::Any(&mut conn),
        &id,
        subject.role == Role::HospitalClinician,
    )
    .await?
    .ok_or_else(|| patient_not_found(&id))?;
    drop(conn);
    let grants = access::grants_for(&state.store, &c.username, &id).await?;
    let view = access::access_view(&subject, &facts, &grants, utc(now));
    Ok(Json(json!({
        "patient": format!("Patient/{id}"),
        "visible": view.basis.is_some(),
        "basis": view.basis.map(|b| b.code()),
        "objection_to_sharing": view.objection,
        "break_glass_until": view.break_glass_until.map(|t| format_instant(t.timestamp_micros())),
        "break_glass_allowed": subject.role.is_clinical(),
    }))
    .into_response())
}

/// A break-glass request names the patient by id or, since the caller cannot see the
/// record yet, by NHS number.
#[derive(Deserialize)]
struct BreakGlassRequest {
    patient: Option<String>,
    nhs_number: Option<String>,
    reason: String,
}

async fn break_glass(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: BreakGlassRequest = json_body(&body)?;
    let (c, subject) = who(&state, &headers).await?;
    let now = now_micros();
    let mut conn = state.store.reader().await?;
    let patient_id = match (&req.patient, &req.nhs_number) {
        (Some(p), None) => p.strip_prefix("Patient/").unwrap_or(p).to_string(),
        (None, Some(n)) => {
            let digits: String = n.chars().filter(|c| !c.is_whitespace()).collect();
            if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::Invalid,
                    format!("{n:?} is not an NHS number (ten digits)"),
                ));
            }
            let found = access::patient_by_nhs_number(&mut Conn::Any(&mut conn), &digits).await?;
            match found {
                Some(id) => id,
                None => {
                    drop(conn);
                    let mut rec = Record::by(Action::BreakGlass, &c);
                    rec.purpose = Some("BTG".into());
                    rec.failure = Some("no patient with this NHS number".into());
                    audit::append(&state.store, &rec, now).await?;
                    return Err(ApiError::not_found(format!(
                        "no patient has NHS number {digits}"
                    )));
                }
            }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueType::Required,
                "name the patient by `patient` (an id) or by `nhs_number`, not both",
            ))
        }
    };
    let facts = access::patient_facts(
        &mut Conn::Any(&mut conn),
        &patient_id,
        subject.role == Role::HospitalClinician,
    )
    .await?;
    drop(conn);
    let mut rec = Record::by(Action::BreakGlass, &c);
    rec.patient_id = Some(patient_id.clone());
    rec.purpose = Some("BTG".into());
    let Some(facts) = facts else {
        rec.failure = Some("no such patient".into());
        audit::append(&state.store, &rec, now).await?;
        return Err(patient_not_found(&patient_id));
    };
    let grants = access::grants_for(&state.store, &c.username, &patient_id).await?;
    let result = request_break_glass(
        &subject,
        &facts,
        &grants,
        &req.reason,
        utc(now),
        &BreakGlassPolicy::default(),
    );
    let grant = match result {
        Ok(g) => g,
        Err(e) => {
            rec.failure = Some(e.to_string());
            audit::append(&state.store, &rec, now).await?;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                IssueType::Forbidden,
                e.to_string(),
            ));
        }
    };
    let grant_id = access::store_grant(&state.store, &grant).await?;
    rec.description = Some(format!(
        "break-glass {grant_id} until {}: {}",
        format_instant(grant.expires_at.timestamp_micros()),
        grant.reason
    ));
    audit::append(&state.store, &rec, now).await?;
    tracing::warn!(grant = %grant_id, user = %c.username, "break-glass access granted; flagged for review");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "grant_id": grant_id,
            "patient": format!("Patient/{patient_id}"),
            "reason": grant.reason,
            "granted_at": format_instant(grant.granted_at.timestamp_micros()),
            "expires_at": format_instant(grant.expires_at.timestamp_micros()),
            "flagged_for_review": true,
        })),
    )
        .into_response())
}

/// The caller, who must be a privacy officer.
async fn privacy_officer(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let (c, subject) = who(state, headers).await?;
    if subject.role != Role::PrivacyOfficer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "only a privacy officer may do this",
        ));
    }
    Ok(c)
}

#[derive(Deserialize)]
struct ListQuery {
    unreviewed: Option<bool>,
}

async fn list_break_glass(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = privacy_officer(&state, &headers).await?;
    let grants = access::list_grants(&state.store, q.unreviewed.unwrap_or(false)).await?;
    let mut rec = Record::by(Action::Read, &c);
    rec.purpose = Some("HOPERAT".into());
    rec.description = Some("break-glass review list".into());
    audit::append(&state.store, &rec, now_micros()).await?;
    let items: Vec<Value> = grants
        .iter()
        .map(|g| {
            json!({
                "grant_id": g.grant_id,
                "user": g.grant.user_id,
                "patient": format!("Patient/{}", g.grant.patient_id),
                "reason": g.grant.reason,
                "granted_at": format_instant(g.grant.granted_at.timestamp_micros()),
                "expires_at": format_instant(g.grant.expires_at.timestamp_micros()),
                "reviewed_by": g.reviewed_by,
                "reviewed_at": g.reviewed_at.map(format_instant),
                "review_outcome": g.review_outcome,
            })
        })
        .collect();
    Ok(Json(json!({ "grants": items })).into_response())
}

#[derive(Deserialize)]
struct Review {
    outcome: String,
}

async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r: Review = json_body(&body)?;
    let c = privacy_officer(&state, &headers).await?;
    if r.outcome.trim().is_empty() {
        return Err(ApiError::bad_request("give the review's outcome"));
    }
    let now = now_micros();
    let done = access::review_grant(&state.store, &id, &c.username, r.outcome.trim(), now).await?;
    let mut rec = Record::by(Action::Update, &c);
    rec.purpose = Some("HOPERAT".into());
    rec.description = Some(format!("break-glass {id} reviewed: {}", r.outcome.trim()));
    if !done {
        rec.failure = Some("no such unreviewed grant".into());
    }
    audit::append(&state.store, &rec, now).await?;
    if !done {
        return Err(ApiError::not_found(format!(
            "no unreviewed break-glass grant {id}"
        )));
    }
    Ok(
        Json(json!({"grant_id": id, "reviewed_by": c.username, "outcome": r.outcome.trim()}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct ReportQuery {
    patient: String,
    format: Option<String>,
}

async fn access_report(
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = privacy_officer(&state, &headers).await?;
    let patient_id = q.patient.strip_prefix("Patient/").unwrap_or(&q.patient);
    let rep = report::access_report(&state.store, patient_id).await?;
    let mut rec = Record::by(Action::Read, &c);
    rec.patient_id = Some(patient_id.to_string());
    rec.purpose = Some("HOPERAT".into());
    rec.description = Some("patient access report".into());
    audit::append(&state.store, &rec, now_micros()).await?;
    if q.format.as_deref() == Some("text") {
        let mut r = rep.to_text().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(r);
    }
    Ok(Json(rep.to_json()).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    patient: Option<String>,
    user: Option<String>,
    since: Option<String>,
    until: Option<String>,
    break_glass: Option<bool>,
    #[serde(rename = "_count")]
    count: Option<i64>,
}

fn instant(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        careshare_fhir::datetime::parse_instant(s)
            .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
    })
    .transpose()
}

/// The privacy officer's view of the audit trail, newest first, as a Bundle of AuditEvents.
async fn audit_search(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = privacy_officer(&state, &headers).await?;
    let filter = audit::Filter {
        patient_id: q
            .patient
            .as_deref()
            .map(|p| p.strip_prefix("Patient/").unwrap_or(p).to_string()),
        username: q.user.clone(),
        since: instant("since", q.since.as_deref())?,
        until: instant("until", q.until.as_deref())?,
        action: q.break_glass.unwrap_or(false).then_some(Action::BreakGlass),
        limit: q.count.unwrap_or(100).clamp(1, 1000),
    };
    let events = audit::list(&state.store, &filter).await?;
    let mut rec = Record::by(Action::Search, &c);
    rec.patient_id = filter.patient_id.clone();
    rec.purpose = Some("HOPERAT".into());
    rec.description = Some("audit trail search".into());
    audit::append(&state.store, &rec, now_micros()).await?;
    let entries: Vec<Value> = events
        .into_iter()
        .map(|e| json!({"resource": e, "search": {"mode": "match"}}))
        .collect();
    let mut r = Json(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    }))
    .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::FHIR_JSON),
    );
    Ok(r)
}
