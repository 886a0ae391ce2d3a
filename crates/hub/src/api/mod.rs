//! The FHIR R4 REST API under `/fhir` (JSON only).

mod auth;
mod capability;
mod care;
mod error;
mod sync;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, State};
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
use careshare_policy::{DenyReason, Purpose};
use serde_json::{json, Value};
use std::collections::HashMap;

pub use error::ApiError;

use crate::audit::{self, Action, Record};
use crate::auth::Caller;
use crate::engine::{self, query_pairs, IdMode, Outcome, WriteStatus};
use crate::guard::Guard;
use crate::store::{self, Conn, HistoryScope, Store, Stored};

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
    /// Serialises the refresh of devices' sync feeds.
    pub sync_lock: Arc<crate::sync::FeedLock>,
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
        .merge(sync::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// What a FHIR handler tells the audit trail about a request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub action: Option<Action>,
    /// Patients whose records were returned, written or refused, each with the purpose of
    /// use (break-glass where a grant was needed).
    pub patients: Vec<(String, Purpose)>,
    /// The caller's purpose of use for anything not about a patient.
    pub purpose: Option<Purpose>,
    /// Why the access policy refused the request, if it did.
    pub denied: Option<DenyReason>,
}

impl AuditNote {
    fn action(action: Action) -> AuditNote {
        AuditNote {
            action: Some(action),
            ..AuditNote::default()
        }
    }
}

/// The caller's policy guard for this request.
pub(crate) async fn guard_for(state: &AppState, caller: &Caller) -> Result<Guard, ApiError> {
    Ok(Guard::load(&state.store, caller, chrono::Utc::now()).await?)
}

/// The response of a guarded handler, with the audit note made from what the guard
/// permitted and refused. `action` is used unless the response names its own.
fn finish(action: Action, guard: &Guard, result: Result<Response, ApiError>) -> Response {
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    let own = resp.extensions_mut().remove::<AuditNote>();
    let mut note = AuditNote {
        action: own.and_then(|n| n.action).or(Some(action)),
        purpose: Some(guard.purpose()),
        ..AuditNote::default()
    };
    note.patients = guard
        .touched()
        .iter()
        .map(|(p, purpose)| (p.clone(), *purpose))
        .collect();
    if let Some((patients, reason)) = guard.refused() {
        if !resp.status().is_success() || guard.touched().is_empty() {
            note.denied = Some(*reason);
            for p in patients {
                if !note.patients.iter().any(|(q, _)| q == p) {
                    note.patients.push((p.clone(), guard.purpose()));
                }
            }
        }
    }
    resp.extensions_mut().insert(note);
    resp
}

/// Requires a signed-in caller for the request, and records it in the audit trail: one
/// AuditEvent per patient whose record was returned, written or refused (or one without a
/// patient), refused requests included. If the audit trail cannot be written, the response
/// is withheld.
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
    let failure = match note.denied {
        Some(reason) => Some(format!("refused: {}", reason.code())),
        None => (!resp.status().is_success()).then(|| format!("HTTP {}", resp.status().as_u16())),
    };
    let base = |purpose: Option<Purpose>| {
        let mut r = Record::by(action, &caller);
        r.purpose = purpose.map(|p| p.code().to_string());
        r.failure = failure.clone();
        if !target.is_empty() {
            r.entities.push(target.clone());
        }
        r
    };
    let records: Vec<Record> = if note.patients.is_empty() {
        vec![base(note.purpose)]
    } else {
        note.patients
            .iter()
            .map(|(p, purpose)| {
                let mut r = base(Some(*purpose));
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
    r.extensions_mut().insert(AuditNote::action(action));
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
    Extension(caller): Extension<Caller>,
    Path((ty, id)): Path<(String, String)>,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = read_inner(&state, &mut g, &ty, &id, None).await;
    finish(Action::Read, &g, r)
}

async fn vread(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((ty, id, vid)): Path<(String, String, String)>,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = match VersionId::parse(&vid) {
        Some(v) => read_inner(&state, &mut g, &ty, &id, Some(v.0)).await,
        None => Err(ApiError::bad_request(format!(
            "'{vid}' is not a version id"
        ))),
    };
    finish(Action::Read, &g, r)
}

fn missing(ty: &str, id: &str, version: Option<i64>) -> ApiError {
    match version {
        None => ApiError::not_found(format!("{ty}/{id} does not exist")),
        Some(v) => ApiError::not_found(format!("{ty}/{id} has no version {v}")),
    }
}

/// A read or vread. What the caller may not see answers exactly as what does not exist;
/// an old version is shown only while the record as it stands is visible too.
async fn read_inner(
    state: &AppState,
    g: &mut Guard,
    ty: &str,
    id: &str,
    version: Option<i64>,
) -> Result<Response, ApiError> {
    check_type(ty)?;
    check_id(id)?;
    let mut conn = state.store.reader().await?;
    let mut conn = Conn::Any(&mut conn);
    let found = match version {
        None => store::read_current(&mut conn, ty, id).await?,
        Some(v) => store::read_version(&mut conn, ty, id, v).await?,
    };
    let Some(s) = found else {
        return Err(missing(ty, id, version));
    };
    if s.deleted {
        return if g.record_visible(&mut conn, ty, id).await? {
            Err(gone(&s))
        } else {
            Err(missing(ty, id, version))
        };
    }
    let Some(seen) = g.check_stored(&mut conn, &s).await? else {
        return Err(missing(ty, id, version));
    };
    if seen.is_permit() && version.is_some() && !g.record_visible(&mut conn, ty, id).await? {
        return Err(missing(ty, id, version));
    }
    g.record(&seen);
    if !seen.is_permit() {
        return Err(missing(ty, id, version));
    }
    Ok(stored_response(&s))
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

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ty): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = async {
        check_type(&ty)?;
        let resource = read_resource(&headers, body, &ty).await?;
        let if_none_exist = headers
            .get("if-none-exist")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim_start_matches('?').to_string());
        let o = engine::create(&state.store, &mut g, resource, if_none_exist.as_deref()).await?;
        Ok(write_response(&base_url(&state, &headers), &headers, &o))
    }
    .await;
    finish(Action::Create, &g, r)
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
    caller: &Caller,
    headers: &HeaderMap,
    target: Target,
    body: Body,
) -> Response {
    let mut g = match guard_for(state, caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = async {
        let ty = match &target {
            Target::Instance { resource_type, .. } | Target::Conditional { resource_type, .. } => {
                resource_type.clone()
            }
            Target::Type(t) => t.clone(),
            Target::Version { resource_type, .. } => resource_type.clone(),
        };
        let resource = read_resource(headers, body, &ty).await?;
        let o = engine::update(
            &state.store,
            &mut g,
            target,
            resource,
            if_match(headers).as_deref(),
        )
        .await?;
        Ok(write_response(&base_url(state, headers), headers, &o))
    }
    .await;
    finish(Action::Update, &g, r)
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
    Extension(caller): Extension<Caller>,
    Path((ty, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = check_type(&ty).and_then(|_| check_id(&id)) {
        return e.into_response();
    }
    let target = Target::Instance {
        resource_type: ty,
        id,
    };
    put(&state, &caller, &headers, target, body).await
}

async fn conditional_update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = check_type(&ty) {
        return e.into_response();
    }
    let query = query.unwrap_or_default();
    if query.is_empty() {
        return ApiError::bad_request(
            "PUT needs an id (Type/id) or search criteria (Type?criteria)",
        )
        .into_response();
    }
    let target = Target::Conditional {
        resource_type: ty,
        query,
    };
    put(&state, &caller, &headers, target, body).await
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((ty, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = async {
        check_type(&ty)?;
        check_id(&id)?;
        let o = engine::delete(
            &state.store,
            &mut g,
            &ty,
            &id,
            if_match(&headers).as_deref(),
        )
        .await?;
        let mut r = json_response(
            StatusCode::OK,
            &operation_outcome(&[Issue::information(format!(
                "{ty}/{id} deleted (version {})",
                o.version
            ))]),
        );
        set_version_headers(&mut r, o.version, o.last_updated);
        Ok(r)
    }
    .await;
    finish(Action::Delete, &g, r)
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

/// How many rows a filtered search or history reads from the store at a time.
const SCAN_CHUNK: usize = 200;

/// One page of what the caller may see, and how to go on.
struct Filtered {
    entries: Vec<Stored>,
    /// The key after which the next page starts, if there are more visible rows.
    next_after: Option<String>,
    /// Every visible match, counted on a first page (a later page does not repeat it).
    total: Option<i64>,
}

/// Reads rows in the store's order, chunk by chunk, keeping those the caller may see, until
/// `count` are kept and one more is known to exist; on a first page (or when only the count
/// is wanted) it reads on to the end to count them all. Totals and `next` links are so
/// computed over visible rows only: they never reveal that hidden ones exist.
async fn filter_rows(
    conn: &mut Conn<'_>,
    g: &mut Guard,
    count: usize,
    count_all: bool,
    start_after: Option<String>,
    source: Source<'_>,
) -> Result<Filtered, ApiError> {
    let key = |s: &Stored| source.key(s);
    let mut after = start_after;
    let mut kept: Vec<Stored> = Vec::new();
    let mut more: i64 = 0;
    let mut next_after = None;
    let mut visible_records: HashMap<(String, String), bool> = HashMap::new();
    'scan: loop {
        let rows = source.fetch(conn, after.as_deref()).await?;
        let n = rows.len();
        for s in rows {
            after = Some(key(&s));
            let record = (s.res_type.clone(), s.id.clone());
            let visible = match visible_records.get(&record) {
                Some(v) => *v,
                // A search row is the record as it stands at the snapshot.
                None if !source.is_history() => true,
                None => {
                    let v = g.record_visible(conn, &s.res_type, &s.id).await?;
                    visible_records.insert(record, v);
                    v
                }
            };
            let visible = visible
                && match g.check_stored(conn, &s).await? {
                    Some(v) => v.is_permit(),
                    None => true, // a deletion of a visible record
                };
            if !visible {
                continue;
            }
            if kept.len() < count {
                kept.push(s);
                continue;
            }
            if more == 0 {
                next_after = kept.last().map(&key);
            }
            more += 1;
            if !count_all {
                break 'scan;
            }
        }
        if n < SCAN_CHUNK {
            break;
        }
    }
    Ok(Filtered {
        total: count_all.then_some(kept.len() as i64 + more),
        next_after: if count == 0 { None } else { next_after },
        entries: kept,
    })
}

/// Where [`filter_rows`] reads from.
enum Source<'a> {
    Search {
        req: &'a SearchRequest,
        snapshot: i64,
    },
    History {
        scope: &'a HistoryScope,
        since: Option<i64>,
        snapshot: i64,
    },
}

impl Source<'_> {
    async fn fetch(
        &self,
        conn: &mut Conn<'_>,
        after: Option<&str>,
    ) -> Result<Vec<Stored>, store::StoreError> {
        match self {
            Source::Search { req, snapshot } => {
                store::search_rows(conn, req, *snapshot, after, SCAN_CHUNK).await
            }
            Source::History {
                scope,
                since,
                snapshot,
            } => {
                let before = after.and_then(|a| a.parse::<i64>().ok());
                store::history_rows(conn, scope, *since, *snapshot, before, SCAN_CHUNK).await
            }
        }
    }

    /// History shows old versions: each is shown only while the record as it stands is
    /// visible too.
    fn is_history(&self) -> bool {
        matches!(self, Source::History { .. })
    }

    /// A row's place in the order, as a page token's `after`.
    fn key(&self, s: &Stored) -> String {
        match self {
            Source::Search { req, .. } => store::search_key(req, s),
            Source::History { .. } => s.seq.to_string(),
        }
    }
}

/// Records what a page returns for the audit trail.
async fn record_returned(
    conn: &mut Conn<'_>,
    g: &mut Guard,
    rows: &[Stored],
) -> Result<(), ApiError> {
    for s in rows {
        if let Some(v) = g.check_stored(conn, s).await? {
            g.record(&v);
        }
    }
    Ok(())
}

async fn search_type(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = search_inner(&state, &mut g, &ty, query, &headers).await;
    finish(Action::Search, &g, r)
}

async fn search_inner(
    state: &AppState,
    g: &mut Guard,
    ty: &str,
    query: Option<String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    check_type(ty)?;
    let req = search_request(ty, query)?;
    let mut conn = state.store.reader().await?;
    let mut conn = Conn::Any(&mut conn);
    let snapshot = store::snapshot_of(&mut conn, req.page.as_ref()).await?;
    let count = if req.summary_count { 0 } else { req.count };
    let count_all = req.page.is_none() || req.summary_count;
    let page = filter_rows(
        &mut conn,
        g,
        count,
        count_all,
        req.page.as_ref().map(|p| p.after.clone()),
        Source::Search {
            req: &req,
            snapshot,
        },
    )
    .await?;
    let mut included = Vec::new();
    for s in store::include(&mut conn, &req, &page.entries, snapshot).await? {
        if let Some(v) = g.check_stored(&mut conn, &s).await? {
            if v.is_permit() {
                included.push(s);
            }
        }
    }
    record_returned(&mut conn, g, &page.entries).await?;
    record_returned(&mut conn, g, &included).await?;
    let next = page.next_after.map(|after| PageToken { snapshot, after });
    let base = base_url(state, headers);
    Ok(json_response(
        StatusCode::OK,
        &searchset(&base, ty, &req, &page.entries, &included, page.total, next),
    ))
}

fn searchset(
    base: &str,
    ty: &str,
    req: &SearchRequest,
    matches: &[Stored],
    included: &[Stored],
    total: Option<i64>,
    next: Option<PageToken>,
) -> Value {
    let mut links = vec![
        json!({"relation": "self", "url": link(base, ty, &req.canonical_params, req.page.as_ref())}),
    ];
    if let Some(next) = &next {
        links.push(
            json!({"relation": "next", "url": link(base, ty, &req.canonical_params, Some(next))}),
        );
    }
    let mut entries: Vec<Value> = Vec::new();
    for (s, mode) in matches
        .iter()
        .map(|s| (s, "match"))
        .chain(included.iter().map(|s| (s, "include")))
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
    let mut b = json!({"resourceType": "Bundle", "type": "searchset"});
    if let Some(total) = total {
        b["total"] = json!(total);
    }
    b["link"] = Value::Array(links);
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
    caller: &Caller,
    headers: &HeaderMap,
    scope: HistoryScope,
    path: String,
    query: Option<String>,
) -> Response {
    let mut g = match guard_for(state, caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = history_inner(state, &mut g, headers, scope, path, query).await;
    finish(Action::Read, &g, r)
}

async fn history_inner(
    state: &AppState,
    g: &mut Guard,
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
    let mut conn = Conn::Any(&mut conn);
    if let HistoryScope::Instance(ty, id) = &scope {
        check_type(ty)?;
        check_id(id)?;
        if !g.record_visible(&mut conn, ty, id).await? {
            return Err(ApiError::not_found(format!("{ty}/{id} does not exist")));
        }
    }
    let snapshot = store::snapshot_of(&mut conn, page_token.as_ref()).await?;
    let page = filter_rows(
        &mut conn,
        g,
        count,
        page_token.is_none(),
        page_token.as_ref().map(|p| p.after.clone()),
        Source::History {
            scope: &scope,
            since,
            snapshot,
        },
    )
    .await?;
    record_returned(&mut conn, g, &page.entries).await?;
    let next = page.next_after.map(|after| PageToken { snapshot, after });
    let base = base_url(state, headers);
    let mut links = vec![
        json!({"relation": "self", "url": link(&base, &path, &canonical, page_token.as_ref())}),
    ];
    if let Some(next) = &next {
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
    let mut b = json!({"resourceType": "Bundle", "type": "history"});
    if let Some(total) = page.total {
        b["total"] = json!(total);
    }
    b["link"] = Value::Array(links);
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    Ok(json_response(StatusCode::OK, &b))
}

async fn history_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((ty, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = format!("{ty}/{id}/_history");
    history(
        &state,
        &caller,
        &headers,
        HistoryScope::Instance(ty, id),
        path,
        query,
    )
    .await
}

async fn history_type(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(ty): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_type(&ty) {
        return e.into_response();
    }
    let path = format!("{ty}/_history");
    history(
        &state,
        &caller,
        &headers,
        HistoryScope::Type(ty),
        path,
        query,
    )
    .await
}

async fn history_system(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    history(
        &state,
        &caller,
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
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut g = match guard_for(&state, &caller).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let r = bundle_inner(&state, &mut g, &headers, body).await;
    finish(Action::Create, &g, r)
}

async fn bundle_inner(
    state: &AppState,
    g: &mut Guard,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = read_body(headers, body).await?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::bad_request(
            "POST /fhir takes a transaction or batch Bundle",
        ));
    }
    let bundle = parse_bundle(value)
        .map_err(|issues| ApiError::with_issues(StatusCode::BAD_REQUEST, issues))?;
    match bundle.bundle_type {
        BundleType::Transaction => {
            let outcomes = engine::transaction(&state.store, g, bundle, IdMode::Server).await?;
            let entries: Vec<Value> = outcomes.iter().map(entry_response).collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entries}),
            ))
        }
        BundleType::Batch => {
            let results = engine::batch(&state.store, g, bundle, IdMode::Server).await;
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
            Ok(json_response(
                StatusCode::OK,
                &json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
            ))
        }
        other => Err(ApiError::bad_request(format!(
            "POST /fhir takes a transaction or batch Bundle, not {other:?} (store other Bundles with POST /fhir/Bundle)"
        ))),
    }
}
