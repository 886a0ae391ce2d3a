//! FHIR write semantics over the store: create, update, delete, conditional operations,
//! transactions, batches and bulk import. Shared by the REST API and the import command,
//! so both refuse the same input for the same reasons and nothing is half-written.

use std::collections::{HashMap, HashSet};

use careshare_fhir::bundle::{Bundle, Entry, Method, Target};
use careshare_fhir::canonical::same_content;
use careshare_fhir::search::{self, parse_search, SearchRequest};
use careshare_fhir::validate::Severity;
use careshare_fhir::{validate, Invalid, Issue, IssueType, ReferenceRules, VersionId};
use serde_json::Value;

use crate::store::{self, Store, StoreError, Stored, WriteTx};

/// Why an operation was refused. Each maps to one HTTP status and an OperationOutcome.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid resource")]
    Invalid(Invalid),
    #[error("bad request: {}", .0.first().map(|i| i.to_string()).unwrap_or_default())]
    BadRequest(Vec<Issue>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotSupported(String),
    /// The access policy refused the write.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides, inside the write transaction, whether each write and each read a write
/// request makes may go ahead. The REST API passes the caller's policy guard; local tools
/// (import, the demo region) pass [`Trusted`].
pub trait Authorize: Send {
    /// Before `proposed` replaces `current` (None: a create, or a delete). May complete
    /// `proposed` (the hub stamps the writer's organisation).
    fn write(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        current: Option<&Value>,
        proposed: Option<&mut Value>,
    ) -> impl std::future::Future<Output = Result<(), EngineError>> + Send;

    /// Before returning `found` (a read inside a transaction, or what a conditional create
    /// matched).
    fn read(
        &mut self,
        tx: &mut WriteTx<'_>,
        res_type: &str,
        id: &str,
        found: &Value,
    ) -> impl std::future::Future<Output = Result<(), EngineError>> + Send;

    /// Just before the transaction commits, with what it did: a chance to write more in
    /// the same transaction (the sync layer records which pushed edit made a version).
    fn before_commit(
        &mut self,
        _tx: &mut WriteTx<'_>,
        _outcomes: &[Outcome],
    ) -> impl std::future::Future<Output = Result<(), EngineError>> + Send {
        async { Ok(()) }
    }
}

/// No access checks: for the operator's own tools (import, demo region), never for a
/// network caller.
pub struct Trusted;

impl Authorize for Trusted {
    async fn write(
        &mut self,
        _: &mut WriteTx<'_>,
        _: &str,
        _: &str,
        _: Option<&Value>,
        _: Option<&mut Value>,
    ) -> Result<(), EngineError> {
        Ok(())
    }

    async fn read(
        &mut self,
        _: &mut WriteTx<'_>,
        _: &str,
        _: &str,
        _: &Value,
    ) -> Result<(), EngineError> {
        Ok(())
    }
}

impl EngineError {
    pub fn bad(code: IssueType, msg: impl Into<String>) -> EngineError {
        EngineError::BadRequest(vec![Issue::error(code, msg)])
    }

    /// Places the error's issues inside Bundle entry `index`.
    fn in_entry(self, index: usize) -> EngineError {
        let at = format!("Bundle.entry[{index}]");
        match self {
            EngineError::Invalid(mut inv) => {
                inv.issues = inv.issues.into_iter().map(|i| i.within(&at)).collect();
                EngineError::Invalid(inv)
            }
            EngineError::BadRequest(issues) => {
                EngineError::BadRequest(issues.into_iter().map(|i| i.within(&at)).collect())
            }
            EngineError::NotFound(m) => EngineError::NotFound(format!("{at}: {m}")),
            EngineError::Gone(m) => EngineError::Gone(format!("{at}: {m}")),
            EngineError::PreconditionFailed(m) => {
                EngineError::PreconditionFailed(format!("{at}: {m}"))
            }
            EngineError::Conflict(m) => EngineError::Conflict(format!("{at}: {m}")),
            EngineError::NotSupported(m) => EngineError::NotSupported(format!("{at}: {m}")),
            EngineError::Forbidden(m) => EngineError::Forbidden(format!("{at}: {m}")),
            e @ EngineError::Store(_) => e,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    Created,
    Updated,
    /// Content identical to the current version: no new version was written.
    Unchanged,
    Deleted,
    /// A conditional create found the resource already there.
    Existing,
    /// A read inside a transaction.
    Read,
}

/// The result of one write (or a read inside a transaction).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: WriteStatus,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: i64,
    /// The resource as stored (None after a delete).
    pub resource: Option<Value>,
}

impl Outcome {
    fn from_stored(status: WriteStatus, s: &Stored) -> Result<Outcome, EngineError> {
        Ok(Outcome {
            status,
            res_type: s.res_type.clone(),
            id: s.id.clone(),
            version: s.version,
            last_updated: s.last_updated,
            resource: s.resource()?,
        })
    }
}

/// Where new ids come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMode {
    /// REST: the server assigns a fresh id to every create.
    Server,
    /// Import: ids are derived from the input (the resource's id, its `urn:uuid` fullUrl,
    /// or a hash of its content), so loading the same input twice changes nothing.
    Import,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A stable id from content: the first 40 hex digits of its SHA-256.
pub fn content_id(resource: &Value) -> String {
    let bytes = serde_json::to_vec(resource).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The identity a resource gets on import: its type and [`import_id`].
pub fn import_key(resource: &Value) -> (String, String) {
    (
        resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        import_id(None, resource),
    )
}

/// The id a resource gets on import: its own id, its `urn:uuid` fullUrl, or a hash of its
/// content.
pub fn import_id(full_url: Option<&str>, resource: &Value) -> String {
    if let Some(id) = resource.get("id").and_then(Value::as_str) {
        if careshare_fhir::is_valid_id(id) {
            return id.to_string();
        }
    }
    if let Some(uuid) = full_url.and_then(|u| u.strip_prefix("urn:uuid:")) {
        if careshare_fhir::is_valid_id(uuid) {
            return uuid.to_string();
        }
    }
    content_id(resource)
}

/// Parses a query string (`a=1&b=2`) into decoded pairs.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Parses a search for conditional operations, refusing result parameters there.
fn conditional_search(res_type: &str, query: &str) -> Result<SearchRequest, EngineError> {
    let mut req = parse_search(res_type, &query_pairs(query))
        .map_err(|e| EngineError::bad(IssueType::Invalid, e.to_string()))?;
    if req.clauses.is_empty() {
        return Err(EngineError::bad(
            IssueType::Invalid,
            format!("conditional criteria '{query}' select nothing specific"),
        ));
    }
    req.count = 2;
    req.includes.clear();
    Ok(req)
}

/// Ids matching a conditional search inside the write transaction (at most two: enough to
/// tell none, one and many apart).
async fn matching_ids(
    tx: &mut WriteTx<'_>,
    req: &SearchRequest,
) -> Result<Vec<String>, EngineError> {
    let page = store::search(&mut tx.conn().await?, req).await?;
    Ok(page.entries.into_iter().map(|s| s.id).collect())
}

fn check_type(resource: &Value, res_type: &str) -> Result<(), EngineError> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == res_type => Ok(()),
        Some(t) => Err(EngineError::bad(
            IssueType::Invalid,
            format!("resource type '{t}' does not match the request URL ('{res_type}')"),
        )),
        None => Err(EngineError::bad(
            IssueType::Required,
            "resourceType is required",
        )),
    }
}

/// Sets the resource's id, keeping its place, or putting it right after `resourceType`.
pub fn set_id(resource: &mut Value, id: &str) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    if let Some(v) = obj.get_mut("id") {
        *v = Value::String(id.to_string());
        return;
    }
    let old = std::mem::take(obj);
    for (k, v) in old {
        let after = k == "resourceType";
        obj.insert(k, v);
        if after {
            obj.insert("id".into(), Value::String(id.to_string()));
        }
    }
    if !obj.contains_key("id") {
        obj.insert("id".into(), Value::String(id.to_string()));
    }
}

/// Writes `resource` as the next version of `Type/id` unless its content is unchanged.
async fn write_resource(
    tx: &mut WriteTx<'_>,
    auth: &mut impl Authorize,
    res_type: &str,
    id: &str,
    mut resource: Value,
    if_match: Option<VersionId>,
) -> Result<Outcome, EngineError> {
    set_id(&mut resource, id);
    validate(&resource, ReferenceRules::Stored).map_err(EngineError::Invalid)?;
    let current = tx.current(res_type, id).await?;
    let old = match current.as_ref().filter(|c| !c.deleted) {
        Some(c) => c.resource()?,
        None => None,
    };
    auth.write(tx, res_type, id, old.as_ref(), Some(&mut resource))
        .await?;
    // Index entries of the resource as it will be stored (the guard may have completed it).
    let entries = validate(&resource, ReferenceRules::Stored).map_err(EngineError::Invalid)?;
    if let Some(expected) = if_match {
        match &current {
            Some(c) if !c.deleted && c.version == expected.0 => {}
            Some(c) if !c.deleted => {
                return Err(EngineError::PreconditionFailed(format!(
                    "{res_type}/{id} is at version {}, not {} (If-Match): read it again and reapply the change",
                    c.version, expected.0
                )))
            }
            _ => {
                return Err(EngineError::PreconditionFailed(format!(
                    "{res_type}/{id} does not exist, so If-Match {} cannot hold",
                    expected.0
                )))
            }
        }
    }
    if let (Some(c), Some(old)) = (current.as_ref(), old.as_ref()) {
        if same_content(old, &resource) {
            return Outcome::from_stored(WriteStatus::Unchanged, c);
        }
    }
    let status = match &current {
        Some(c) if !c.deleted => WriteStatus::Updated,
        _ => WriteStatus::Created,
    };
    let written = tx
        .put_version(
            res_type,
            id,
            current.as_ref(),
            Some((&mut resource, &entries)),
        )
        .await?;
    Ok(Outcome {
        status,
        res_type: res_type.to_string(),
        id: id.to_string(),
        version: written.version,
        last_updated: written.last_updated,
        resource: Some(resource),
    })
}

async fn delete_resource(
    tx: &mut WriteTx<'_>,
    auth: &mut impl Authorize,
    res_type: &str,
    id: &str,
    if_match: Option<VersionId>,
) -> Result<Outcome, EngineError> {
    let current = tx.current(res_type, id).await?;
    let Some(current) = current else {
        return Err(EngineError::NotFound(format!(
            "{res_type}/{id} does not exist"
        )));
    };
    if let Some(expected) = if_match {
        if current.deleted || current.version != expected.0 {
            return Err(EngineError::PreconditionFailed(format!(
                "{res_type}/{id} is at version {}, not {} (If-Match)",
                current.version, expected.0
            )));
        }
    }
    if current.deleted {
        return Outcome::from_stored(WriteStatus::Deleted, &current);
    }
    let old = current.resource()?;
    auth.write(tx, res_type, id, old.as_ref(), None).await?;
    let written = tx.put_version(res_type, id, Some(&current), None).await?;
    Ok(Outcome {
        status: WriteStatus::Deleted,
        res_type: res_type.to_string(),
        id: id.to_string(),
        version: written.version,
        last_updated: written.last_updated,
        resource: None,
    })
}

/// `POST /Type`: creates with a server-assigned id; with `If-None-Exist`, only when
/// nothing matches (one match: that resource is returned, several: 412).
pub async fn create(
    store: &Store,
    auth: &mut impl Authorize,
    resource: Value,
    if_none_exist: Option<&str>,
) -> Result<Outcome, EngineError> {
    let res_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let entry = Entry {
        index: 0,
        full_url: None,
        resource: Some(resource),
        request: Some(careshare_fhir::bundle::Request {
            method: Method::Post,
            url: res_type.clone(),
            target: Target::Type(res_type),
            if_none_exist: if_none_exist.map(str::to_string),
            if_match: None,
        }),
    };
    single(store, auth, entry, IdMode::Server).await
}

/// `PUT /Type/id` (create-on-update with the client's id) or `PUT /Type?query`.
pub async fn update(
    store: &Store,
    auth: &mut impl Authorize,
    target: Target,
    resource: Value,
    if_match: Option<&str>,
) -> Result<Outcome, EngineError> {
    let entry = Entry {
        index: 0,
        full_url: None,
        resource: Some(resource),
        request: Some(careshare_fhir::bundle::Request {
            method: Method::Put,
            url: String::new(),
            target,
            if_none_exist: None,
            if_match: if_match.map(str::to_string),
        }),
    };
    single(store, auth, entry, IdMode::Server).await
}

/// `DELETE /Type/id`.
pub async fn delete(
    store: &Store,
    auth: &mut impl Authorize,
    res_type: &str,
    id: &str,
    if_match: Option<&str>,
) -> Result<Outcome, EngineError> {
    let entry = Entry {
        index: 0,
        full_url: None,
        resource: None,
        request: Some(careshare_fhir::bundle::Request {
            method: Method::Delete,
            url: String::new(),
            target: Target::Instance {
                resource_type: res_type.to_string(),
                id: id.to_string(),
            },
            if_none_exist: None,
            if_match: if_match.map(str::to_string),
        }),
    };
    single(store, auth, entry, IdMode::Server).await
}

async fn single(
    store: &Store,
    auth: &mut impl Authorize,
    entry: Entry,
    mode: IdMode,
) -> Result<Outcome, EngineError> {
    let mut out = transaction_entries(store, auth, vec![entry], mode, false).await?;
    Ok(out.pop().expect("one entry in, one outcome out"))
}

/// A transaction Bundle: all entries or none.
pub async fn transaction(
    store: &Store,
    auth: &mut impl Authorize,
    bundle: Bundle,
    mode: IdMode,
) -> Result<Vec<Outcome>, EngineError> {
    transaction_entries(store, auth, bundle.entries, mode, true).await
}

/// A batch Bundle: each entry on its own.
pub async fn batch(
    store: &Store,
    auth: &mut impl Authorize,
    bundle: Bundle,
    mode: IdMode,
) -> Vec<Result<Outcome, EngineError>> {
    let mut out = Vec::with_capacity(bundle.entries.len());
    for entry in bundle.entries {
        let r = single(store, auth, entry, mode).await;
        out.push(r);
    }
    out
}

/// An entry planned for writing: its target decided, its resource's references not yet
/// rewritten.
struct Planned {
    index: usize,
    method: Method,
    res_type: String,
    /// None: a conditional delete that matched nothing.
    id: Option<String>,
    resource: Option<Value>,
    if_match: Option<VersionId>,
    /// A conditional create that found its resource.
    existing: bool,
}

fn processing_rank(m: Method) -> u8 {
    // FHIR transaction processing order: DELETE, POST, PUT/PATCH, GET/HEAD.
    match m {
        Method::Delete => 0,
        Method::Post => 1,
        Method::Put | Method::Patch => 2,
        Method::Get | Method::Head => 3,
    }
}

async fn transaction_entries(
    store: &Store,
    auth: &mut impl Authorize,
    entries: Vec<Entry>,
    mode: IdMode,
    in_bundle: bool,
) -> Result<Vec<Outcome>, EngineError> {
    let wrap = |index: usize, e: EngineError| if in_bundle { e.in_entry(index) } else { e };
    // Checks that need no database.
    let mut seen_urls = HashSet::new();
    for e in &entries {
        if let Some(u) = &e.full_url {
            if e.resource.is_some() && !seen_urls.insert(u.clone()) {
                return Err(wrap(
                    e.index,
                    EngineError::bad(IssueType::Duplicate, format!("fullUrl '{u}' appears twice")),
                ));
            }
        }
    }
    let mut tx = store.begin_write().await?;
    let mut planned: Vec<Planned> = Vec::with_capacity(entries.len());
    let mut order: Vec<usize> = (0..entries.len()).collect();
    let ranks: Vec<u8> = entries
        .iter()
        .map(|e| processing_rank(e.request.as_ref().map_or(Method::Put, |r| r.method)))
        .collect();
    order.sort_by_key(|i| ranks[*i]);
    let mut full_urls: HashMap<String, String> = HashMap::new();
    let mut slots: Vec<Option<Planned>> = (0..entries.len()).map(|_| None).collect();
    for i in order {
        let e = &entries[i];
        let p = plan(&mut tx, e, mode)
            .await
            .map_err(|err| wrap(e.index, err))?;
        if let (Some(u), Some(id)) = (&e.full_url, &p.id) {
            if p.method != Method::Delete {
                full_urls.insert(u.clone(), format!("{}/{id}", p.res_type));
            }
        }
        slots[i] = Some(p);
    }
    planned.extend(slots.into_iter().map(|p| p.expect("every entry planned")));
    // One resource may be the target of only one entry.
    let mut targets = HashSet::new();
    for p in &planned {
        if let Some(id) = &p.id {
            if !p.existing
                && p.method != Method::Get
                && !targets.insert((p.res_type.clone(), id.clone()))
            {
                return Err(wrap(
                    p.index,
                    EngineError::Conflict(format!(
                        "{}/{id} is the target of more than one entry",
                        p.res_type
                    )),
                ));
            }
        }
    }
    // Rewrite references: fullUrls to the ids just decided, conditional references by search.
    let created: Vec<(String, String, search::IndexEntries)> = planned
        .iter()
        .filter(|p| matches!(p.method, Method::Post | Method::Put) && !p.existing)
        .filter_map(|p| {
            let r = p.resource.as_ref()?;
            let e = search::extract(r).ok()?;
            Some((p.res_type.clone(), p.id.clone()?, e))
        })
        .collect();
    for p in planned.iter_mut() {
        if let Some(r) = p.resource.as_mut() {
            rewrite_references(&mut tx, r, &full_urls, &created)
                .await
                .map_err(|e| wrap(p.index, e))?;
        }
    }
    // Apply in processing order.
    let mut outcomes: Vec<Option<Outcome>> = (0..planned.len()).map(|_| None).collect();
    let mut idx: Vec<usize> = (0..planned.len()).collect();
    idx.sort_by_key(|i| processing_rank(planned[*i].method));
    for i in idx {
        let p = &mut planned[i];
        let result = match (p.method, &p.id) {
            (Method::Delete, None) => Ok(Outcome {
                status: WriteStatus::Deleted,
                res_type: p.res_type.clone(),
                id: String::new(),
                version: 0,
                last_updated: tx.now(),
                resource: None,
            }),
            (Method::Delete, Some(id)) => {
                delete_resource(&mut tx, auth, &p.res_type, id, p.if_match).await
            }
            (Method::Get, Some(id)) => match tx.current(&p.res_type, id).await? {
                Some(s) if !s.deleted => {
                    checked_read(&mut tx, auth, &s).await?;
                    Outcome::from_stored(WriteStatus::Read, &s)
                }
                Some(_) => Err(EngineError::Gone(format!(
                    "{}/{id} was deleted",
                    p.res_type
                ))),
                None => Err(EngineError::NotFound(format!(
                    "{}/{id} does not exist",
                    p.res_type
                ))),
            },
            (_, Some(id)) if p.existing => match tx.current(&p.res_type, id).await? {
                Some(s) => {
                    checked_read(&mut tx, auth, &s).await?;
                    Outcome::from_stored(WriteStatus::Existing, &s)
                }
                None => Err(EngineError::NotFound(format!(
                    "{}/{id} does not exist",
                    p.res_type
                ))),
            },
            (Method::Post | Method::Put, Some(id)) => {
                let resource = p.resource.take().expect("planned writes carry a resource");
                write_resource(&mut tx, auth, &p.res_type, id, resource, p.if_match).await
            }
            _ => Err(EngineError::NotSupported(
                "this request is not supported".into(),
            )),
        };
        outcomes[i] = Some(result.map_err(|e| wrap(p.index, e))?);
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.expect("every entry applied"))
        .collect();
    auth.before_commit(&mut tx, &outcomes).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Lets `auth` see a stored version before it is returned.
async fn checked_read(
    tx: &mut WriteTx<'_>,
    auth: &mut impl Authorize,
    s: &Stored,
) -> Result<(), EngineError> {
    match s.resource()? {
        Some(v) => auth.read(tx, &s.res_type, &s.id, &v).await,
        None => Ok(()),
    }
}

async fn plan(tx: &mut WriteTx<'_>, e: &Entry, mode: IdMode) -> Result<Planned, EngineError> {
    let Some(req) = &e.request else {
        // Collection entries imported as upserts.
        let resource = e
            .resource
            .clone()
            .ok_or_else(|| EngineError::bad(IssueType::Required, "entry has no resource"))?;
        let res_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let id = import_id(e.full_url.as_deref(), &resource);
        return Ok(Planned {
            index: e.index,
            method: Method::Put,
            res_type,
            id: Some(id),
            resource: Some(resource),
            if_match: None,
            existing: false,
        });
    };
    let if_match = match &req.if_match {
        Some(m) => Some(VersionId::parse(m).ok_or_else(|| {
            EngineError::bad(
                IssueType::Value,
                format!("If-Match '{m}' is not a version ETag like W/\"3\""),
            )
        })?),
        None => None,
    };
    let need_resource = |r: &Option<Value>, res_type: &str| -> Result<Value, EngineError> {
        let r = r.clone().ok_or_else(|| {
            EngineError::bad(IssueType::Required, "this request needs a resource")
        })?;
        if !r.is_object() {
            return Err(EngineError::Invalid(Invalid {
                severity: Severity::Structure,
                issues: vec![Issue::error(
                    IssueType::Structure,
                    "a resource must be a JSON object",
                )],
            }));
        }
        check_type(&r, res_type)?;
        Ok(r)
    };
    let planned = |method, res_type: &str, id: Option<String>, resource, existing| Planned {
        index: e.index,
        method,
        res_type: res_type.to_string(),
        id,
        resource,
        if_match,
        existing,
    };
    match (req.method, &req.target) {
        (Method::Post, Target::Type(ty)) => {
            let resource = need_resource(&e.resource, ty)?;
            if let Some(q) = &req.if_none_exist {
                let sreq = conditional_search(ty, q)?;
                let ids = matching_ids(tx, &sreq).await?;
                match ids.len() {
                    0 => {}
                    1 => {
                        return Ok(planned(Method::Post, ty, ids.into_iter().next(), None, true));
                    }
                    _ => {
                        return Err(EngineError::PreconditionFailed(format!(
                            "If-None-Exist '{q}' matches more than one {ty}"
                        )))
                    }
                }
            }
            let id = match mode {
                IdMode::Server => new_id(),
                IdMode::Import => import_id(e.full_url.as_deref(), &resource),
            };
            Ok(planned(Method::Post, ty, Some(id), Some(resource), false))
        }
        (Method::Put, Target::Instance { resource_type, id }) => {
            let resource = need_resource(&e.resource, resource_type)?;
            match resource.get("id").and_then(Value::as_str) {
                Some(body_id) if body_id == id => {}
                Some(body_id) => {
                    return Err(EngineError::bad(
                        IssueType::Invalid,
                        format!("the resource's id '{body_id}' does not match the URL's id '{id}'"),
                    ))
                }
                None => {
                    return Err(EngineError::bad(
                        IssueType::Required,
                        format!("an update must carry the resource's id ('{id}') in the body"),
                    ))
                }
            }
            Ok(planned(Method::Put, resource_type, Some(id.clone()), Some(resource), false))
        }
        (Method::Put, Target::Conditional { resource_type, query }) => {
            let resource = need_resource(&e.resource, resource_type)?;
            let ids = matching_ids(tx, &conditional_search(resource_type, query)?).await?;
            let body_id = resource.get("id").and_then(Value::as_str).map(str::to_string);
            let id = match (ids.len(), body_id) {
                (0, Some(b)) => b,
                (0, None) => match mode {
                    IdMode::Server => new_id(),
                    IdMode::Import => import_id(e.full_url.as_deref(), &resource),
                },
                (1, b) => {
                    let found = ids.into_iter().next().expect("one id");
                    if b.as_ref().is_some_and(|b| *b != found) {
                        return Err(EngineError::bad(
                            IssueType::Invalid,
                            format!("the resource's id does not match {resource_type}/{found} found by '{query}'"),
                        ));
                    }
                    found
                }
                _ => {
                    return Err(EngineError::PreconditionFailed(format!(
                        "'{query}' matches more than one {resource_type}"
                    )))
                }
            };
            Ok(planned(Method::Put, resource_type, Some(id), Some(resource), false))
        }
        (Method::Delete, Target::Instance { resource_type, id }) => {
            Ok(planned(Method::Delete, resource_type, Some(id.clone()), None, false))
        }
        (Method::Delete, Target::Conditional { resource_type, query }) => {
            let ids = matching_ids(tx, &conditional_search(resource_type, query)?).await?;
            match ids.len() {
                0 | 1 => Ok(planned(Method::Delete, resource_type, ids.into_iter().next(), None, false)),
                _ => Err(EngineError::PreconditionFailed(format!(
                    "'{query}' matches more than one {resource_type}"
                ))),
            }
        }
        (Method::Get, Target::Instance { resource_type, id }) => {
            Ok(planned(Method::Get, resource_type, Some(id.clone()), None, false))
        }
        (m, _) => Err(EngineError::NotSupported(format!(
            "{m:?} {} is not supported in a transaction or batch (supported: POST Type, PUT Type/id, PUT Type?query, DELETE Type/id, DELETE Type?query, GET Type/id)",
            e.request.as_ref().map(|r| r.url.as_str()).unwrap_or_default()
        ))),
    }
}

/// Rewrites every `reference` in `resource`: fullUrls of this Bundle become the ids decided
/// for them; `Type?query` references are resolved by search over the store and the
/// resources this Bundle creates, and must match exactly one.
async fn rewrite_references(
    tx: &mut WriteTx<'_>,
    resource: &mut Value,
    full_urls: &HashMap<String, String>,
    created: &[(String, String, search::IndexEntries)],
) -> Result<(), EngineError> {
    let mut refs: Vec<String> = Vec::new();
    collect_references(resource, &mut refs);
    let mut resolved: HashMap<String, String> = HashMap::new();
    for s in refs {
        if full_urls.contains_key(&s) || resolved.contains_key(&s) {
            continue;
        }
        if let Ok(careshare_fhir::reference::Reference::Conditional {
            resource_type,
            query,
        }) = careshare_fhir::reference::Reference::parse(&s)
        {
            let req = conditional_search(resource_type, query)?;
            let mut found: Vec<String> = matching_ids(tx, &req).await?;
            for (ty, id, entries) in created {
                if ty == resource_type && search::matches(&req, id, entries) && !found.contains(id)
                {
                    found.push(id.clone());
                }
            }
            match found.len() {
                1 => {
                    let target = format!("{resource_type}/{}", found[0]);
                    resolved.insert(s, target);
                }
                0 => {
                    return Err(EngineError::bad(
                        IssueType::NotFound,
                        format!("conditional reference '{s}' matches no resource"),
                    ))
                }
                _ => {
                    return Err(EngineError::PreconditionFailed(format!(
                        "conditional reference '{s}' matches more than one resource"
                    )))
                }
            }
        }
    }
    replace_references(resource, &|s| {
        full_urls.get(s).or_else(|| resolved.get(s)).cloned()
    });
    Ok(())
}

fn collect_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                match child {
                    Value::String(s) if k == "reference" => out.push(s.clone()),
                    _ => collect_references(child, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_references(c, out)),
        _ => {}
    }
}

fn replace_references(v: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                match child {
                    Value::String(s) if k == "reference" => {
                        if let Some(new) = lookup(s) {
                            *s = new;
                        }
                    }
                    _ => replace_references(child, lookup),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| replace_references(c, lookup)),
        _ => {}
    }
}

/// Result of importing one resource in bulk.
pub type ImportResult = Result<Outcome, EngineError>;

/// Imports resources as upserts in one write transaction: each is validated on its own (a
/// bad one is refused with its reason and does not stop the others); unchanged content
/// writes nothing. Ids come from the resources (or a hash of their content).
pub async fn upsert_many(
    store: &Store,
    resources: Vec<Value>,
) -> Result<Vec<ImportResult>, StoreError> {
    let mut tx = store.begin_write().await?;
    // Prefetch the current versions of every (type, id) in one query per type.
    let keyed: Vec<(String, String)> = resources
        .iter()
        .map(|r| {
            (
                r.get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                import_id(None, r),
            )
        })
        .collect();
    let mut by_type: HashMap<&str, Vec<&str>> = HashMap::new();
    for (t, i) in &keyed {
        by_type.entry(t.as_str()).or_default().push(i.as_str());
    }
    let mut current: HashMap<(String, String), Stored> = HashMap::new();
    let mut types: Vec<&&str> = by_type.keys().collect();
    types.sort();
    for t in types {
        for s in tx.current_many(t, &by_type[*t]).await? {
            current.insert((s.res_type.clone(), s.id.clone()), s);
        }
    }
    let mut out = Vec::with_capacity(resources.len());
    let mut written_now: HashSet<(String, String)> = HashSet::new();
    for (mut resource, (res_type, id)) in resources.into_iter().zip(keyed) {
        set_id(&mut resource, &id);
        let entries = match validate(&resource, ReferenceRules::Stored) {
            Ok(e) => e,
            Err(inv) => {
                out.push(Err(EngineError::Invalid(inv)));
                continue;
            }
        };
        let key = (res_type.clone(), id.clone());
        if !written_now.insert(key.clone()) {
            out.push(Err(EngineError::Conflict(format!(
                "{res_type}/{id} appears more than once in this import"
            ))));
            continue;
        }
        let prev = current.get(&key);
        if let Some(c) = prev.filter(|c| !c.deleted) {
            if let Some(old) = c.resource()? {
                if same_content(&old, &resource) {
                    out.push(Outcome::from_stored(WriteStatus::Unchanged, c));
                    continue;
                }
            }
        }
        let status = if prev.is_some_and(|c| !c.deleted) {
            WriteStatus::Updated
        } else {
            WriteStatus::Created
        };
        let written = tx
            .put_version(&res_type, &id, prev, Some((&mut resource, &entries)))
            .await?;
        out.push(Ok(Outcome {
            status,
            res_type,
            id,
            version: written.version,
            last_updated: written.last_updated,
            resource: None,
        }));
    }
    tx.commit().await?;
    Ok(out)
}
