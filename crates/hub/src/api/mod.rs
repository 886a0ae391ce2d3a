//! The FHIR R4 REST API under `/fhir` (JSON only).

mod auth;
mod capability;
mod care;
mod error;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use careshare_fhir::bundle::{parse_bundle, BundleType, Target};
use careshare_fhir::datetime::{format_instant, parse_instant};
use careshare_fhir::search::{parse_search, PageToken, SearchRequest, DEFAULT_COUNT, MAX_COUNT};
use careshare_fhir::{
    is_resource_type, is_valid_id, operation_outcome, Issue, IssueType, VersionId,
};
use serde_json::{json, Value};

pub use error::ApiError;

use crate::audit::{self, Action, Record};
use crate::engine::{self, query_pairs, IdMode, Outcome, WriteStatus};
use crate::store::{self, Conn, HistoryScope, Page, Store, Stored};

/// The FHIR JSON media type with its charset.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Largest request body accepted (bytes). Larger requests get 413.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub auth: Arc<crate::auth::AuthConfig>,
    /// The public base URL (e.g. `https://hub.example/fhir`); derived from `Host` if None.
    pub base_url: Option<String>,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    // Everything under /fhir but the CapabilityStatement needs a signed-in caller and is
    // audited (see `gate`).
    let fhir = Router::new()
        .route("/fhir", axum::routing::post(bundle))
        .route("/fhir/", axum::routing::post(bundle))
        .route("/fhir/_history", get(history_system))
        .route(
            "/fhir/{ty}",
            get(search_type).post(create).put(conditional_update),
        )
        .route("/fhir/{ty}/_history", get(history_type))
        .route("/fhir/{ty}/{id}", get(read).put(update).delete(delete))
        .route("/fhir/{ty}/{id}/_history", get(history_instance))
        .route("/fhir/{ty}/{id}/_history/{vid}", get(vread))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate));
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .merge(fhir)
        .merge(auth::routes())
        .merge(care::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// What a FHIR handler tells the audit trail about a successful request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub action: Option<Action>,
    /// Patients whose records were returned or written.
    pub patients: Vec<String>,
}

impl AuditNote {
    fn new(action: Action, resources: &[&Value]) -> AuditNote {
        let mut patients: Vec<String> = resources
            .iter()
            .flat_map(|r| careshare_fhir::search::patient_compartment(r))
            .collect();
        patients.sort();
        patients.dedup();
        AuditNote {
            action: Some(action),
            patients,
        }
    }

    fn attach(self, mut r: Response) -> Response {
        r.extensions_mut().insert(self);
        r
    }
}

fn parsed(s: &Stored) -> Option<Value> {
    s.content
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
}

/// Requires a signed-in caller for the request, and records it in the audit trail: one
/// AuditEvent per patient whose record was returned or written (or one without a patient),
/// refused requests included. If the audit trail cannot be written, the response is
/// withheld.
async fn gate(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let caller = match auth::caller(&state, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let target = req
        .uri()
        .path()
        .trim_start_matches("/fhir")
        .trim_start_matches('/')
        .to_string();
    req.extensions_mut().insert(caller.clone());
    let mut resp = next.run(req).await;
    let note = resp
        .extensions_mut()
        .remove::<AuditNote>()
        .unwrap_or_default();
    let action = note.action.unwrap_or(match method {
        axum::http::Method::GET => Action::Read,
        axum::http::Method::PUT => Action::Update,
        axum::http::Method::DELETE => Action::Delete,
        _ => Action::Create,
    });
    let failure = (!resp.status().is_success()).then(|| format!("HTTP {}", resp.status().as_u16()));
    let base = || {
        let mut r = Record::by(action, &caller);
        r.purpose = Some("TREAT".into());
        r.failure = failure.clone();
        if !target.is_empty() {
            r.entities.push(target.clone());
        }
        r
    };
    let records: Vec<Record> = if note.patients.is_empty() {
        vec![base()]
    } else {
        note.patients
            .iter()
            .map(|p| {
                let mut r = base();
                r.patient_id = Some(p.clone());
                r
            })
            .collect()
    };
    let now = chrono::Utc::now().timestamp_micros();
    match audit::append_many(&state.store, &records, now).await {
        Ok(_) => resp,
        Err(e) => error::internal(&e).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: the FHIR API is under /fhir (see /fhir/metadata)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueType::NotSupported,
        "this method is not supported on this endpoint (see /fhir/metadata)",
    )
}

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(b) = &state.base_url {
        return b.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

fn http_date(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn set_version_headers(r: &mut Response, version: i64, last_updated: i64) {
    if let Ok(v) = HeaderValue::from_str(&VersionId(version).etag()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(last_updated)) {
        r.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

fn check_type(ty: &str) -> Result<(), ApiError> {
    if is_resource_type(ty) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "'{ty}' is not a FHIR R4 resource type"
        )))
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "'{id}' is not a legal FHIR id (1-64 of A-Z a-z 0-9 - .)"
        )))
    }
}

/// Reads a FHIR JSON request body: right media type, within the size limit, valid JSON.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/fhir+json" && mime != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            format!("Content-Type '{ct}' is not supported: send application/fhir+json"),
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooLong,
            format!(
                "the request body is larger than {} MiB",
                MAX_BODY / (1024 * 1024)
            ),
        )
    };
    // Refuse a declared oversize body before reading any of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    careshare_fhir::parse_json(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueType::Structure,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// What `Prefer: return=` asks for.
enum Return {
    Representation,
    Minimal,
    Outcome,
}

fn prefer_return(headers: &HeaderMap) -> Return {
    let prefer = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if prefer.contains("return=minimal") {
        Return::Minimal
    } else if prefer.contains("return=OperationOutcome") {
        Return::Outcome
    } else {
        Return::Representation
    }
}

fn write_response(base: &str, headers: &HeaderMap, o: &Outcome) -> Response {
    let status = match o.status {
        WriteStatus::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let message = match o.status {
        WriteStatus::Created => "created",
        WriteStatus::Updated => "updated",
        WriteStatus::Unchanged => {
            "unchanged: the content equals the current version, no new version written"
        }
        WriteStatus::Existing => "already exists (If-None-Exist matched): nothing written",
        WriteStatus::Deleted => "deleted",
        WriteStatus::Read => "read",
    };
    let mut r = match prefer_return(headers) {
        Return::Minimal => status.into_response(),
        Return::Outcome => json_response(
            status,
            &operation_outcome(&[Issue::information(format!(
                "{}/{} version {}: {message}",
                o.res_type, o.id, o.version
            ))]),
        ),
        Return::Representation => match &o.resource {
            Some(res) => json_response(status, res),
            None => status.into_response(),
        },
    };
    set_version_headers(&mut r, o.version, o.last_updated);
    let action = match o.status {
        WriteStatus::Created => Action::Create,
        WriteStatus::Updated | WriteStatus::Unchanged => Action::Update,
        WriteStatus::Deleted => Action::Delete,
        WriteStatus::Existing | WriteStatus::Read => Action::Read,
    };
    let resources: Vec<&Value> = o.resource.iter().collect();
    r.extensions_mut()
        .insert(AuditNote::new(action, &resources));
    if matches!(o.status, WriteStatus::Created | WriteStatus::Updated) {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{base}/{}/{}/_history/{}",
            o.res_type, o.id, o.version
        )) {
            r.headers_mut().insert(header::LOCATION, v.clone());
            r.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
    }
    r
}

async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    json_response(
        StatusCode::OK,
        &capability::capability_statement(&base_url(&state, &headers)),
    )
}

async fn read(
    State(state): State<AppState>,
    Path((ty, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    check_id(&id)?;
    let mut conn = state.store.reader().await?;
    match store::read_current(&mut Conn::Any(&mut conn), &ty, &id).await? {
        Some(s) if !s.deleted => Ok(read_response(&s)),
        Some(s) => Err(gone(&s)),
        None => Err(ApiError::not_found(format!("{ty}/{id} does not exist"))),
    }
}

/// A stored version as the answer to a read, noted for the audit trail.
fn read_response(s: &Stored) -> Response {
    let note = match parsed(s) {
        Some(v) => AuditNote::new(Action::Read, &[&v]),
        None => AuditNote::default(),
    };
    note.attach(stored_response(s))
}

fn gone(s: &Stored) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        IssueType::Deleted,
        format!(
            "{}/{} was deleted at {} (version {})",
            s.res_type,
            s.id,
            format_instant(s.last_updated),
            s.version
        ),
    )
}

fn stored_response(s: &Stored) -> Response {
    let mut r = (StatusCode::OK, s.content.clone().unwrap_or_default()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    set_version_headers(&mut r, s.version, s.last_updated);
    r
}

async fn vread(
    State(state): State<AppState>,
    Path((ty, id, vid)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    check_id(&id)?;
    let version = VersionId::parse(&vid)
        .ok_or_else(|| ApiError::bad_request(format!("'{vid}' is not a version id")))?;
    let mut conn = state.store.reader().await?;
    match store::read_version(&mut Conn::Any(&mut conn), &ty, &id, version.0).await? {
        Some(s) if !s.deleted => Ok(read_response(&s)),
        Some(s) => Err(gone(&s)),
        None => Err(ApiError::not_found(format!(
            "{ty}/{id} has no version {vid}"
        ))),
    }
}

async fn create(
    State(state): State<AppState>,
    Path(ty): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    let resource = read_resource(&headers, body, &ty).await?;
    let if_none_exist = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_start_matches('?').to_string());
    let o = engine::create(&state.store, resource, if_none_exist.as_deref()).await?;
    Ok(write_response(&base_url(&state, &headers), &headers, &o))
}

/// Reads the body as a resource of the URL's type.
async fn read_resource(headers: &HeaderMap, body: Body, ty: &str) -> Result<Value, ApiError> {
    let resource = read_body(headers, body).await?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(ty) {
        return Err(resource_type_mismatch(&resource, ty));
    }
    Ok(resource)
}

/// An update (by id or by criteria) and its answer.
async fn put(
    state: &AppState,
    headers: &HeaderMap,
    target: Target,
    resource: Value,
) -> Result<Response, ApiError> {
    let o = engine::update(&state.store, target, resource, if_match(headers).as_deref()).await?;
    Ok(write_response(&base_url(state, headers), headers, &o))
}

fn resource_type_mismatch(resource: &Value, ty: &str) -> ApiError {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) => ApiError::bad_request(format!(
            "the body's resourceType '{t}' does not match the URL's type '{ty}'"
        )),
        None => ApiError::bad_request("the body has no resourceType"),
    }
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn update(
    State(state): State<AppState>,
    Path((ty, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    check_id(&id)?;
    let resource = read_resource(&headers, body, &ty).await?;
    let target = Target::Instance {
        resource_type: ty,
        id,
    };
    put(&state, &headers, target, resource).await
}

async fn conditional_update(
    State(state): State<AppState>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return Err(ApiError::bad_request(
            "PUT needs an id (Type/id) or search criteria (Type?criteria)",
        ));
    }
    let resource = read_resource(&headers, body, &ty).await?;
    let target = Target::Conditional {
        resource_type: ty,
        query,
    };
    put(&state, &headers, target, resource).await
}

async fn delete(
    State(state): State<AppState>,
    Path((ty, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    check_id(&id)?;
    let before = {
        let mut conn = state.store.reader().await?;
        store::read_current(&mut Conn::Any(&mut conn), &ty, &id)
            .await?
            .and_then(|s| parsed(&s))
    };
    let o = engine::delete(&state.store, &ty, &id, if_match(&headers).as_deref()).await?;
    let mut r = json_response(
        StatusCode::OK,
        &operation_outcome(&[Issue::information(format!(
            "{ty}/{id} deleted (version {})",
            o.version
        ))]),
    );
    set_version_headers(&mut r, o.version, o.last_updated);
    let resources: Vec<&Value> = before.iter().collect();
    Ok(AuditNote::new(Action::Delete, &resources).attach(r))
}

fn search_request(ty: &str, query: Option<String>) -> Result<SearchRequest, ApiError> {
    let pairs = query_pairs(query.as_deref().unwrap_or(""));
    parse_search(ty, &pairs).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueType::NotSupported,
            e.to_string(),
        )
    })
}

fn link(base: &str, path: &str, params: &[(String, String)], page: Option<&PageToken>) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    if let Some(p) = page {
        ser.append_pair("_page", &p.render());
    }
    let q = ser.finish();
    if q.is_empty() {
        format!("{base}/{path}")
    } else {
        format!("{base}/{path}?{q}")
    }
}

async fn search_type(
    State(state): State<AppState>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    let req = search_request(&ty, query)?;
    let mut conn = state.store.reader().await?;
    let page = store::search(&mut Conn::Any(&mut conn), &req).await?;
    let base = base_url(&state, &headers);
    let returned: Vec<Value> = page
        .entries
        .iter()
        .chain(page.included.iter())
        .filter_map(parsed)
        .collect();
    let note = AuditNote::new(Action::Search, &returned.iter().collect::<Vec<_>>());
    Ok(note.attach(json_response(
        StatusCode::OK,
        &searchset(&base, &ty, &req, &page),
    )))
}

fn searchset(base: &str, ty: &str, req: &SearchRequest, page: &Page) -> Value {
    let mut links = vec![
        json!({"relation": "self", "url": link(base, ty, &req.canonical_params, req.page.as_ref())}),
    ];
    if let Some(next) = &page.next {
        links.push(
            json!({"relation": "next", "url": link(base, ty, &req.canonical_params, Some(next))}),
        );
    }
    let mut entries: Vec<Value> = Vec::new();
    for (s, mode) in page
        .entries
        .iter()
        .map(|s| (s, "match"))
        .chain(page.included.iter().map(|s| (s, "include")))
    {
        let resource: Value = s
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or(Value::Null);
        entries.push(json!({
            "fullUrl": format!("{base}/{}/{}", s.res_type, s.id),
            "resource": resource,
            "search": {"mode": mode}
        }));
    }
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
    });
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    b
}

/// The parameters of a `_history` request.
struct HistoryParams {
    since: Option<i64>,
    count: usize,
    page: Option<PageToken>,
    /// For the self and next links.
    canonical: Vec<(String, String)>,
}

/// `_since`, `_count` and `_page` of a history request; anything else is refused.
fn history_params(query: Option<String>) -> Result<HistoryParams, ApiError> {
    let mut since = None;
    let mut count = DEFAULT_COUNT;
    let mut page = None;
    let mut canonical = Vec::new();
    for (k, v) in query_pairs(query.as_deref().unwrap_or("")) {
        match k.as_str() {
            "_since" => {
                since = Some(
                    parse_instant(&v).map_err(|e| ApiError::bad_request(format!("_since: {e}")))?,
                );
                canonical.push((k, v));
            }
            "_count" => {
                count = v
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::bad_request(format!("_count '{v}' is not a whole number"))
                    })?
                    .min(MAX_COUNT);
                canonical.push((k, v));
            }
            "_page" => {
                page = Some(PageToken::parse(&v).ok_or_else(|| {
                    ApiError::bad_request("_page is not a page token from a next link")
                })?);
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueType::NotSupported,
                    format!("'{other}' is not supported on _history (supported: _since, _count)"),
                ))
            }
        }
    }
    Ok(HistoryParams {
        since,
        count,
        page,
        canonical,
    })
}

async fn history(
    state: &AppState,
    headers: &HeaderMap,
    scope: HistoryScope,
    path: String,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let HistoryParams {
        since,
        count,
        page: page_token,
        canonical,
    } = history_params(query)?;
    let mut conn = state.store.reader().await?;
    let page = store::history(
        &mut Conn::Any(&mut conn),
        &scope,
        since,
        count,
        page_token.as_ref(),
    )
    .await?;
    let base = base_url(state, headers);
    let mut links = vec![
        json!({"relation": "self", "url": link(&base, &path, &canonical, page_token.as_ref())}),
    ];
    if let Some(next) = &page.next {
        links.push(json!({"relation": "next", "url": link(&base, &path, &canonical, Some(next))}));
    }
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|s| {
            let url = format!("{}/{}", s.res_type, s.id);
            let method = if s.deleted { "DELETE" } else if s.version == 1 { "POST" } else { "PUT" };
            let mut e = json!({
                "fullUrl": format!("{base}/{url}"),
                "request": {"method": method, "url": if method == "POST" { s.res_type.clone() } else { url.clone() }},
                "response": {
                    "status": if s.deleted { "204" } else if s.version == 1 { "201" } else { "200" },
                    "etag": VersionId(s.version).etag(),
                    "lastModified": format_instant(s.last_updated),
                },
            });
            if let Some(c) = s.content.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()) {
                e["resource"] = c;
            }
            e
        })
        .collect();
    let returned: Vec<Value> = page.entries.iter().filter_map(parsed).collect();
    let note = AuditNote::new(Action::Read, &returned.iter().collect::<Vec<_>>());
    let mut b =
        json!({"resourceType": "Bundle", "type": "history", "total": page.total, "link": links});
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    Ok(note.attach(json_response(StatusCode::OK, &b)))
}

async fn history_instance(
    State(state): State<AppState>,
    Path((ty, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    check_id(&id)?;
    let mut conn = state.store.reader().await?;
    if store::read_current(&mut Conn::Any(&mut conn), &ty, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("{ty}/{id} does not exist")));
    }
    drop(conn);
    let path = format!("{ty}/{id}/_history");
    history(
        &state,
        &headers,
        HistoryScope::Instance(ty, id),
        path,
        query,
    )
    .await
}

async fn history_type(
    State(state): State<AppState>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_type(&ty)?;
    let path = format!("{ty}/_history");
    history(&state, &headers, HistoryScope::Type(ty), path, query).await
}

async fn history_system(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    history(
        &state,
        &headers,
        HistoryScope::System,
        "_history".into(),
        query,
    )
    .await
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

fn entry_response(o: &Outcome) -> Value {
    let status = match o.status {
        WriteStatus::Created => StatusCode::CREATED,
        WriteStatus::Deleted if o.version == 0 => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    };
    let mut response = json!({"status": status_line(status)});
    if o.version > 0 {
        response["location"] = json!(format!("{}/{}/_history/{}", o.res_type, o.id, o.version));
        response["etag"] = json!(VersionId(o.version).etag());
        response["lastModified"] = json!(format_instant(o.last_updated));
    }
    let mut e = json!({"response": response});
    if let Some(r) = &o.resource {
        e["resource"] = r.clone();
    }
    e
}

async fn bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = read_body(&headers, body).await?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::bad_request(
            "POST /fhir takes a transaction or batch Bundle",
        ));
    }
    let bundle = parse_bundle(value)
        .map_err(|issues| ApiError::with_issues(StatusCode::BAD_REQUEST, issues))?;
    match bundle.bundle_type {
        BundleType::Transaction => {
            let outcomes = engine::transaction(&state.store, bundle, IdMode::Server).await?;
            let entries: Vec<Value> = outcomes.iter().map(entry_response).collect();
            let written: Vec<&Value> = outcomes.iter().filter_map(|o| o.resource.as_ref()).collect();
            Ok(AuditNote::new(Action::Create, &written).attach(json_response(
                StatusCode::OK,
                &json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
            )))
        }
        BundleType::Batch => {
            let results = engine::batch(&state.store, bundle, IdMode::Server).await;
            let written: Vec<Value> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().and_then(|o| o.resource.clone()))
                .collect();
            let note = AuditNote::new(Action::Create, &written.iter().collect::<Vec<_>>());
            let entries: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(o) => entry_response(&o),
                    Err(e) => {
                        let err = ApiError::from(e);
                        json!({"response": {
                            "status": status_line(err.status),
                            "outcome": operation_outcome(&err.issues)
                        }})
                    }
                })
                .collect();
            Ok(note.attach(json_response(
                StatusCode::OK,
                &json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
            )))
        }
        other => Err(ApiError::bad_request(format!(
            "POST /fhir takes a transaction or batch Bundle, not {other:?} (store other Bundles with POST /fhir/Bundle)"
        ))),
    }
}
