//! Sign-in, tokens, devices and revocation over HTTP (`/auth`, `/admin`). Every outcome is
//! audited; no passphrase or token is ever logged or echoed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::audit::{self, Action, Record};
use crate::auth::{Auth, AuthError, Caller, Secret, Tokens};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/token", post(sign_in))
        .route("/auth/refresh", post(refresh))
        .route("/auth/whoami", get(whoami))
        .route("/auth/devices", post(register_device))
        .route("/auth/devices/{id}/challenge", post(challenge))
        .route("/auth/devices/{id}/token", post(device_token))
        .route("/auth/devices/{id}/recovery-key", put(set_recovery_key))
        .route("/auth/devices/{id}/recover", post(recover_device))
        .route("/admin/users/{username}/revoke", post(revoke_user))
        .route("/admin/devices/{id}/revoke", post(revoke_device))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn auth(state: &AppState) -> Auth<'_> {
    Auth {
        store: &state.store,
        config: &state.auth,
    }
}

fn tokens_body(t: &Tokens) -> serde_json::Value {
    json!({
        "token_type": "Bearer",
        "access_token": t.access.expose(),
        "refresh_token": t.refresh.expose(),
        "expires_in": t.expires_in,
    })
}

fn tokens_json(t: &Tokens) -> Response {
    no_store(tokens_body(t))
}

/// A JSON answer holding secrets: never cached.
fn no_store(body: serde_json::Value) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// Parses a JSON request body, refusing it with an OperationOutcome that names the problem
/// (never the body, which may hold a passphrase).
pub fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not the expected JSON object ({} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Data => "missing or wrong field",
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof =>
                    "invalid JSON",
                serde_json::error::Category::Io => "unreadable",
            },
            e.line(),
            e.column()
        ))
    })
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<Secret> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(Secret::new(t.trim()))
}

/// Establishes the caller of a request.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or(AuthError::MissingToken)?;
    Ok(auth(state).authenticate(&token, now()).await?)
}

async fn record(state: &AppState, r: Record) -> Result<(), ApiError> {
    audit::append(&state.store, &r, now()).await?;
    Ok(())
}

/// Audits the outcome of an identity operation, then returns it.
async fn audited<T>(
    state: &AppState,
    mut r: Record,
    result: Result<T, AuthError>,
) -> Result<T, ApiError> {
    if let Err(e) = &result {
        r.failure = Some(e.to_string());
    }
    record(state, r).await?;
    Ok(result?)
}

#[derive(Deserialize)]
struct SignIn {
    username: String,
    passphrase: String,
}

async fn sign_in(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body: SignIn = json_body(&body)?;
    let pass = Secret::new(body.passphrase);
    let result = auth(&state).sign_in(&body.username, &pass, now()).await;
    let mut r = Record::new(Action::SignIn);
    r.username = Some(body.username.clone());
    let tokens = audited(&state, r, result).await?;
    Ok(tokens_json(&tokens))
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

async fn refresh(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body: Refresh = json_body(&body)?;
    let tokens = auth(&state)
        .refresh(&Secret::new(body.refresh_token), now())
        .await?;
    Ok(tokens_json(&tokens))
}

async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = caller(&state, &headers).await?;
    Ok(Json(json!({
        "username": c.username,
        "practitioner_role": format!("PractitionerRole/{}", c.practitioner_role_id),
        "device_id": c.device_id,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct RegisterDevice {
    name: String,
    public_key: String,
}

async fn register_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RegisterDevice = json_body(&body)?;
    let c = caller(&state, &headers).await?;
    let result = auth(&state)
        .register_device(&c, &body.name, &body.public_key, now())
        .await;
    let mut r = Record::by(Action::DeviceRegistration, &c);
    if let Ok(id) = &result {
        r.device_id = Some(id.clone());
    }
    let id = audited(&state, r, result).await?;
    Ok((StatusCode::CREATED, Json(json!({"device_id": id}))).into_response())
}

async fn challenge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(&state, &headers).await?;
    let nonce = auth(&state).challenge(&c, &id, now()).await?;
    Ok(Json(json!({
        "nonce": nonce,
        "expires_in": crate::auth::CHALLENGE_TTL / 1_000_000,
        "sign": format!("{}<nonce>", crate::auth::PROOF_CONTEXT),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct DeviceProof {
    nonce: String,
    signature: String,
}

async fn device_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: DeviceProof = json_body(&body)?;
    let c = caller(&state, &headers).await?;
    let result = auth(&state)
        .device_token(&c, &id, &body.nonce, &body.signature, now())
        .await;
    let mut r = Record::by(Action::DeviceProof, &c);
    r.device_id = Some(id);
    let tokens = audited(&state, r, result).await?;
    Ok(tokens_json(&tokens))
}

#[derive(Deserialize)]
struct RecoveryKeyBody {
    recovery_key: String,
}

/// Stores the recovery key of the caller's device (a token bound to that device).
async fn set_recovery_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RecoveryKeyBody = json_body(&body)?;
    let key = Secret::new(body.recovery_key);
    let c = caller(&state, &headers).await?;
    let result = auth(&state).set_recovery_key(&c, &id, &key).await;
    let mut r = Record::by(Action::DeviceRecoveryKey, &c);
    r.device_id = Some(id.clone());
    audited(&state, r, result).await?;
    Ok(Json(json!({"device_id": id, "recovery_key": "stored"})).into_response())
}

#[derive(Deserialize)]
struct RecoverDevice {
    passphrase: String,
}

/// Re-authorises a locked device: its user signs in again and gets the device's recovery
/// key back, with a token pair for proving the device.
async fn recover_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: RecoverDevice = json_body(&body)?;
    let pass = Secret::new(body.passphrase);
    let result = auth(&state).recover_device(&id, &pass, now()).await;
    let mut r = Record::new(Action::DeviceRecovery);
    // Attempts on a device belong in its user's audit trail, refused ones most of all.
    r.username = auth(&state).device_owner(&id).await?;
    r.device_id = Some(id);
    if result.is_ok() {
        r.description = Some("recovery key given back to the device's user".into());
    }
    let (_, tokens, key) = audited(&state, r, result).await?;
    let mut body = tokens_body(&tokens);
    body["recovery_key"] = json!(key.expose());
    Ok(no_store(body))
}

/// The caller, who must be a region administrator.
async fn administrator(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let (c, subject) = super::care::who(state, headers).await?;
    if subject.role != careshare_policy::Role::RegionAdmin {
        let mut r = Record::by(Action::Revocation, &c);
        r.failure = Some(AuthError::NotAdministrator.to_string());
        record(state, r).await?;
        return Err(AuthError::NotAdministrator.into());
    }
    Ok(c)
}

async fn revoke_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = administrator(&state, &headers).await?;
    let result = auth(&state).revoke_user(&username, now()).await;
    let mut r = Record::by(Action::Revocation, &admin);
    r.description = Some(format!("user {username} revoked"));
    let changed = audited(&state, r, result).await?;
    Ok(Json(json!({"revoked": username, "changed": changed})).into_response())
}

async fn revoke_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = administrator(&state, &headers).await?;
    let result = auth(&state).revoke_device(&id, now()).await;
    let mut r = Record::by(Action::Revocation, &admin);
    r.entities.push(format!("Device/{id}"));
    r.description = Some(format!("device {id} revoked"));
    let changed = audited(&state, r, result).await?;
    Ok(Json(json!({"revoked": id, "changed": changed})).into_response())
}
