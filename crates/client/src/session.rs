//! An unlocked replica with its hub identity: what the desktop shell and the
//! CLI hold while the user works.

use std::future::Future;
use std::path::{Path, PathBuf};

use careshare_replica::{
    CheckinSession, DeviceState, EditState, OutboxEdit, Passphrase, Replica, ReplicaError,
    ReplicaFiles, SecretString,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::apply::parse_version;
use crate::device_key::DeviceKey;
use crate::error::{ClientError, Result};
use crate::http::{CallError, HttpConfig, HubClient, TokenPair};

/// The non-secret part of the device's identity, kept in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Base URL of the hub.
    pub hub_url: String,
    /// The user the device is enrolled for.
    pub username: String,
    /// The user's `PractitionerRole/<id>`, when known.
    pub practitioner_role: Option<String>,
    /// The hub's id of this device.
    pub device_id: String,
    /// The device's registered name.
    pub device_name: String,
}

impl DeviceInfo {
    pub(crate) fn of(d: &careshare_replica::DeviceState) -> DeviceInfo {
        DeviceInfo {
            hub_url: d.hub_url.clone(),
            username: d.username.clone(),
            practitioner_role: d.practitioner_role.clone(),
            device_id: d.device_id.clone(),
            device_name: d.device_name.clone(),
        }
    }
}

/// A device-bound access token and when to stop using it.
pub(crate) struct Access {
    pub token: SecretString,
    pub use_until: DateTime<Utc>,
}

impl Access {
    pub fn from_pair(pair: &TokenPair, now: DateTime<Utc>) -> Access {
        // Stop using a token a little before the hub does.
        let secs = (pair.expires_in - 30).max(0);
        Access {
            token: copy_secret(&pair.access),
            use_until: now + Duration::seconds(secs),
        }
    }
}

pub(crate) fn copy_secret(s: &SecretString) -> SecretString {
    SecretString::new(s.expose().to_owned())
}

/// Where the replica stands, for a status line or screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The device.
    pub device: DeviceInfo,
    /// Offline edits not yet accepted by the hub (pending or sent).
    pub pending_edits: usize,
    /// Edits the hub refused; they stay, marked, for the user.
    pub rejected_edits: usize,
    /// Conflicts waiting for a person.
    pub open_conflicts: usize,
    /// End of the last complete sync.
    pub last_sync: Option<DateTime<Utc>>,
    /// End of the offline lease.
    pub lease_expires_at: DateTime<Utc>,
    /// The committed pull checkpoint.
    pub checkpoint: Option<String>,
    /// Resources held.
    pub resources: u64,
    /// Each patient held, with the time their data is current as of.
    pub patients: Vec<PatientStatus>,
}

/// One patient's freshness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientStatus {
    /// The patient's id.
    pub patient_id: String,
    /// When their record was last brought up to date (`None`: a pull that
    /// brought them has not finished yet).
    pub data_as_of: Option<DateTime<Utc>>,
}

/// One outbox entry, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    /// The edit's id.
    pub client_edit_id: String,
    /// Target resource type.
    pub resource_type: String,
    /// Target id.
    pub resource_id: String,
    /// The patient.
    pub patient_id: String,
    /// Hub version the edit started from.
    pub base_version: Option<String>,
    /// `pending`, `sent` or `rejected`.
    pub state: &'static str,
    /// Whether the edit deletes the resource.
    pub deletes: bool,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// For a rejected edit, the hub's OperationOutcome.
    pub outcome: Option<Value>,
}

/// A conflict, for a person to resolve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictView {
    /// Local id, for [`Session::resolve`].
    pub id: i64,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// The patient.
    pub patient_id: String,
    /// The edit that could not merge.
    pub client_edit_id: Option<String>,
    /// The hub's current version (the base of the resolution).
    pub current_version: Option<i64>,
    /// The common ancestor, if known.
    pub base: Option<Value>,
    /// The device's version (`null`: a delete).
    pub ours: Value,
    /// The hub's version (`null`: deleted on the hub).
    pub theirs: Value,
    /// The elements that could not merge, as the hub described them.
    pub elements: Value,
    /// When it was detected.
    pub detected_at: DateTime<Utc>,
}

/// A resource as the user sees it: the newest queued edit if any, otherwise
/// the synced copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceView {
    /// The resource.
    pub resource: Value,
    /// The hub version of the synced copy, if there is one.
    pub version: Option<i64>,
    /// Whether a local edit not yet accepted by the hub is shown.
    pub pending: bool,
    /// The patient (`None` for shared data such as a Practitioner).
    pub patient_id: Option<String>,
    /// When the patient's data was last brought up to date.
    pub data_as_of: Option<DateTime<Utc>>,
}

/// An open session: the unlocked replica, the device identity and a hub
/// client. Dropping it or calling [`Session::lock`] closes the replica.
pub struct Session {
    pub(crate) dir: PathBuf,
    /// `None` once the replica has been wiped.
    pub(crate) replica: Option<Replica>,
    pub(crate) device: DeviceInfo,
    pub(crate) hub: HubClient,
    pub(crate) access: Option<Access>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dir", &self.dir)
            .field("device", &self.device)
            .field("open", &self.replica.is_some())
            .finish_non_exhaustive()
    }
}

/// Maps the replica's open errors, naming the directory when nothing is there.
pub(crate) fn open_error(dir: &Path, e: ReplicaError) -> ClientError {
    match e {
        ReplicaError::NotCreated => ClientError::NotEnrolled(dir.to_owned()),
        e => e.into(),
    }
}

/// Signs the user in and proves the device with its key: a token pair bound
/// to user and device.
pub(crate) async fn prove_device(
    hub: &HubClient,
    username: &str,
    hub_passphrase: &SecretString,
    device_id: &str,
    key: &DeviceKey,
) -> Result<TokenPair, CallError> {
    let user = hub.sign_in(username, hub_passphrase).await?;
    prove_with(hub, &user.access, device_id, key).await
}

/// Proves the device with the user's (not device-bound) access token.
pub(crate) async fn prove_with(
    hub: &HubClient,
    user_access: &SecretString,
    device_id: &str,
    key: &DeviceKey,
) -> Result<TokenPair, CallError> {
    let nonce = hub.challenge(user_access, device_id).await?;
    hub.device_token(user_access, device_id, &nonce, &key.sign_proof(&nonce))
        .await
}

/// Wipes the replica in `dir` after the hub said the device is revoked.
pub(crate) fn wipe_dir(dir: &Path) -> ClientError {
    match ReplicaFiles::new(dir).wipe() {
        Ok(()) => {
            tracing::warn!("the hub revoked this device; the local record was wiped");
            ClientError::Wiped
        }
        Err(e) => {
            tracing::error!("the hub revoked this device but wiping failed: {e}");
            ClientError::Replica(e)
        }
    }
}

/// A hub call that failed without an open session: the error to report,
/// after wiping the replica in `dir` when the hub says the device is revoked.
pub(crate) fn call_failed(dir: &Path, e: CallError) -> ClientError {
    match e {
        CallError::Status { wipe: true, .. } => wipe_dir(dir),
        e => e.into(),
    }
}

/// The end of a check-in, once the device holds a device-bound sign-in
/// (`pair`, already stored): the hub renews the lease and the replica opens.
pub(crate) async fn finish_check_in(
    dir: PathBuf,
    hub: HubClient,
    checkin: CheckinSession,
    device: &DeviceState,
    pair: &TokenPair,
    now: DateTime<Utc>,
) -> Result<Session> {
    let lease = hub
        .checkin(&pair.access)
        .await
        .map_err(|e| call_failed(&dir, e))?;
    let replica = checkin.renew_lease(lease, now)?;
    Ok(Session {
        device: DeviceInfo::of(device),
        dir,
        replica: Some(replica),
        hub,
        access: Some(Access::from_pair(pair, now)),
    })
}

/// Whether `s` is a FHIR id (1-64 of `A-Z a-z 0-9 - .`).
fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The patient a resource belongs to, from the resource itself.
pub(crate) fn patient_of(resource: &Value) -> Option<String> {
    if resource.get("resourceType").and_then(Value::as_str) == Some("Patient") {
        return resource
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    ["subject", "patient", "for", "beneficiary"]
        .iter()
        .filter_map(|f| resource.get(*f))
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .find_map(|r| {
            let mut parts = r.rsplit('/');
            let id = parts.next()?;
            (parts.next()? == "Patient" && is_fhir_id(id)).then(|| id.to_owned())
        })
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Session {
    /// Opens the replica in `dir` with the default [`HttpConfig`]. Refuses a
    /// wrong passphrase (counted), a locked replica and an expired lease
    /// ([`ClientError::LeaseExpired`]: use [`Session::check_in`]).
    pub fn open(
        dir: impl AsRef<Path>,
        passphrase: &Passphrase,
        now: DateTime<Utc>,
    ) -> Result<Session> {
        Session::open_with(dir, passphrase, now, &HttpConfig::default())
    }

    /// [`Session::open`] with explicit time-outs and retries.
    pub fn open_with(
        dir: impl AsRef<Path>,
        passphrase: &Passphrase,
        now: DateTime<Utc>,
        http: &HttpConfig,
    ) -> Result<Session> {
        let dir = dir.as_ref().to_owned();
        let replica = Replica::open(ReplicaFiles::new(&dir), passphrase, now)
            .map_err(|e| open_error(&dir, e))?;
        let device = replica
            .device()?
            .ok_or_else(|| ClientError::NotEnrolled(dir.clone()))?;
        let hub = HubClient::new(&device.hub_url, http)?;
        Ok(Session {
            device: DeviceInfo::of(&device),
            dir,
            replica: Some(replica),
            hub,
            access: None,
        })
    }

    /// Opens a replica whose lease has run out: verifies the passphrase
    /// (counted), checks in with the hub using the stored device sign-in,
    /// renews the lease and opens. When the stored sign-in has run out too,
    /// `hub_passphrase` (if given) signs in again; otherwise the answer is
    /// [`ClientError::SignInRequired`]. Also works when the lease is valid.
    pub async fn check_in(
        dir: impl AsRef<Path>,
        passphrase: &Passphrase,
        hub_passphrase: Option<&SecretString>,
        now: DateTime<Utc>,
        http: &HttpConfig,
    ) -> Result<Session> {
        let dir = dir.as_ref().to_owned();
        let files = ReplicaFiles::new(&dir);
        let checkin =
            Replica::open_for_checkin(files, passphrase, now).map_err(|e| open_error(&dir, e))?;
        let device = checkin
            .device()?
            .ok_or_else(|| ClientError::NotEnrolled(dir.clone()))?;
        let hub = HubClient::new(&device.hub_url, http)?;
        let refreshed = match &device.refresh_token {
            Some(token) => hub.refresh(token).await,
            None => Err(CallError::Status {
                status: reqwest::StatusCode::UNAUTHORIZED,
                message: "no sign-in is stored".into(),
                wipe: false,
            }),
        };
        let pair = match (refreshed, hub_passphrase) {
            (Ok(pair), _) => pair,
            (Err(e @ CallError::Status { wipe: true, .. }), _) => return Err(call_failed(&dir, e)),
            (
                Err(CallError::Status {
                    status: reqwest::StatusCode::UNAUTHORIZED,
                    ..
                }),
                Some(pass),
            ) => {
                let key = DeviceKey::load(&device.signing_key)?;
                prove_device(&hub, &device.username, pass, &device.device_id, &key)
                    .await
                    .map_err(|e| call_failed(&dir, e))?
            }
            (Err(e), _) => return Err(e.into()),
        };
        checkin.set_refresh_token(&pair.refresh)?;
        finish_check_in(dir, hub, checkin, &device, &pair, now).await
    }

    /// The replica's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device's identity (nothing secret).
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    pub(crate) fn replica(&self) -> Result<&Replica> {
        self.replica.as_ref().ok_or(ClientError::Wiped)
    }

    pub(crate) fn replica_mut(&mut self) -> Result<&mut Replica> {
        self.replica.as_mut().ok_or(ClientError::Wiped)
    }

    /// Closes the replica and deletes its files and key.
    pub(crate) fn wipe(&mut self) -> ClientError {
        if let Some(replica) = self.replica.take() {
            let _ = replica.lock();
        }
        self.access = None;
        wipe_dir(&self.dir)
    }

    /// Turns a failed call into the error to report, wiping first when the
    /// hub says the device is revoked.
    pub(crate) fn fail(&mut self, e: CallError) -> ClientError {
        match e {
            CallError::Status { wipe: true, .. } => self.wipe(),
            e => e.into(),
        }
    }

    /// A device-bound access token: the cached one while it lasts, else a
    /// refresh (whose new refresh token is stored before it is used).
    pub(crate) async fn access_token(&mut self, now: DateTime<Utc>) -> Result<SecretString> {
        if let Some(a) = &self.access {
            if a.use_until > now {
                return Ok(copy_secret(&a.token));
            }
        }
        self.refresh(now).await
    }

    async fn refresh(&mut self, now: DateTime<Utc>) -> Result<SecretString> {
        self.access = None;
        let refresh = self.replica()?.device()?.and_then(|d| d.refresh_token);
        let Some(refresh) = refresh else {
            return Err(ClientError::SignInRequired {
                reason: "no device sign-in is stored".into(),
            });
        };
        match self.hub.refresh(&refresh).await {
            Ok(pair) => {
                self.replica_mut()?.set_refresh_token(&pair.refresh)?;
                let access = Access::from_pair(&pair, now);
                let token = copy_secret(&access.token);
                self.access = Some(access);
                Ok(token)
            }
            Err(e) => {
                if matches!(&e, CallError::Status { status, wipe: false, .. } if *status == reqwest::StatusCode::UNAUTHORIZED)
                {
                    // Spent, expired or revoked: it will never work again.
                    self.replica_mut()?.clear_refresh_token()?;
                }
                Err(self.fail(e))
            }
        }
    }

    /// Runs a device call with a fresh access token; on 401 refreshes once
    /// and retries; wipes on a revocation.
    pub(crate) async fn with_access<T, F, Fut>(
        &mut self,
        now: DateTime<Utc>,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(HubClient, SecretString) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let token = self.access_token(now).await?;
        match call(self.hub.clone(), token).await {
            Ok(v) => Ok(v),
            Err(CallError::Status {
                status: reqwest::StatusCode::UNAUTHORIZED,
                wipe: false,
                ..
            }) => {
                let token = self.refresh(now).await?;
                let answer = call(self.hub.clone(), token).await;
                answer.map_err(|e| self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Signs in to the hub again with the user's hub passphrase and proves
    /// the device with its stored key; stores the new device sign-in. Needed
    /// when the stored one ran out ([`ClientError::SignInRequired`]).
    pub async fn sign_in(
        &mut self,
        hub_passphrase: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let device = self
            .replica()?
            .device()?
            .ok_or_else(|| ClientError::NotEnrolled(self.dir.clone()))?;
        let key = DeviceKey::load(&device.signing_key)?;
        drop(device);
        let proved = prove_device(
            &self.hub,
            &self.device.username,
            hub_passphrase,
            &self.device.device_id,
            &key,
        )
        .await;
        let pair = proved.map_err(|e| self.fail(e))?;
        self.replica_mut()?.set_refresh_token(&pair.refresh)?;
        self.access = Some(Access::from_pair(&pair, now));
        Ok(())
    }

    /// Where the replica stands.
    pub fn status(&self) -> Result<Status> {
        let replica = self.replica()?;
        let edits = replica.pending_edits()?;
        let rejected_edits = edits
            .iter()
            .filter(|e| e.state == EditState::Rejected)
            .count();
        let device = replica.device()?;
        let freshness = replica.patient_freshness()?;
        let patients = replica
            .patients()?
            .into_iter()
            .map(|patient_id| PatientStatus {
                data_as_of: freshness
                    .iter()
                    .find(|f| f.patient_id == patient_id)
                    .map(|f| f.synced_at),
                patient_id,
            })
            .collect();
        Ok(Status {
            device: self.device.clone(),
            pending_edits: edits.len() - rejected_edits,
            rejected_edits,
            open_conflicts: replica.open_conflicts()?.len(),
            last_sync: device.and_then(|d| d.last_sync_at),
            lease_expires_at: replica.files().status()?.lease_expires_at,
            checkpoint: replica.pull_checkpoint()?,
            resources: replica.resource_count()?,
            patients,
        })
    }

    /// The outbox, in the order queued.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        Ok(self
            .replica()?
            .pending_edits()?
            .into_iter()
            .map(|p| OutboxEntry {
                state: match p.state {
                    EditState::Pending => "pending",
                    EditState::Sent => "sent",
                    EditState::Rejected => "rejected",
                },
                deletes: p.edit.edit.is_null(),
                client_edit_id: p.edit.client_edit_id,
                resource_type: p.edit.resource_type,
                resource_id: p.edit.resource_id,
                patient_id: p.edit.patient_id,
                base_version: p.edit.base_version,
                queued_at: p.created_at,
                outcome: p.outcome,
            })
            .collect())
    }

    /// Queues an offline edit of `resource` and returns its client edit id
    /// (a fresh UUID). A resource without an `id` is a create and gets a
    /// fresh UUID id. `base_version` is the hub version the edit started
    /// from; `None` takes the synced copy's version (or a create when there
    /// is no synced copy). The edit is what [`Session::view`] shows until
    /// the hub answers.
    pub fn record_edit(
        &mut self,
        mut resource: Value,
        base_version: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let resource_type = match resource.get("resourceType").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()) => t.to_owned(),
            _ => {
                return Err(ClientError::InvalidInput(
                    "the resource needs a resourceType".into(),
                ))
            }
        };
        let id = match resource.get("id") {
            None => {
                let id = new_id();
                if let Some(obj) = resource.as_object_mut() {
                    obj.insert("id".into(), Value::String(id.clone()));
                }
                id
            }
            Some(Value::String(id)) if is_fhir_id(id) => id.clone(),
            Some(_) => {
                return Err(ClientError::InvalidInput(
                    "the resource id must be 1-64 of A-Z a-z 0-9 - .".into(),
                ))
            }
        };
        self.queue(resource_type, id, resource, base_version, now)
    }

    /// Queues an offline delete of `resource_type/id`; see
    /// [`Session::record_edit`] for `base_version`.
    pub fn record_delete(
        &mut self,
        resource_type: &str,
        id: &str,
        base_version: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        self.queue(
            resource_type.to_owned(),
            id.to_owned(),
            Value::Null,
            base_version,
            now,
        )
    }

    fn queue(
        &mut self,
        resource_type: String,
        id: String,
        resource: Value,
        base_version: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let replica = self.replica_mut()?;
        let synced = replica.get_resource(&resource_type, &id)?;
        let base = match base_version {
            Some(v) => Some(v),
            None => parse_version(synced.as_ref().and_then(|s| s.base_version.as_deref()))?,
        };
        let earlier = replica.edits_for(&resource_type, &id)?;
        let patient_id = patient_of(&resource)
            .or_else(|| {
                synced
                    .as_ref()
                    .map(|s| s.patient_id.clone())
                    .filter(|p| !p.is_empty())
            })
            .or_else(|| earlier.last().map(|e| e.edit.patient_id.clone()))
            .ok_or_else(|| {
                ClientError::InvalidInput(format!(
                    "cannot tell which patient {resource_type}/{id} belongs to \
                     (no subject or patient reference, and no synced copy)"
                ))
            })?;
        let client_edit_id = new_id();
        replica.enqueue_edit(
            &OutboxEdit {
                client_edit_id: client_edit_id.clone(),
                resource_type,
                resource_id: id,
                patient_id,
                base_version: base.map(|v| v.to_string()),
                edit: resource,
            },
            now,
        )?;
        Ok(client_edit_id)
    }

    /// Drops an edit the hub rejected (after the user has read why); `false`
    /// if there is no such edit. Only rejected edits can be dropped: any
    /// other may already be at the hub.
    pub fn discard_rejected(&mut self, client_edit_id: &str) -> Result<bool> {
        let replica = self.replica_mut()?;
        let rejected = replica
            .pending_edits()?
            .iter()
            .any(|e| e.edit.client_edit_id == client_edit_id && e.state == EditState::Rejected);
        if !rejected {
            return Ok(false);
        }
        Ok(replica.complete_edit(client_edit_id)?)
    }

    /// Open conflicts, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictView>> {
        self.replica()?
            .open_conflicts()?
            .into_iter()
            .map(|c| {
                let (client_edit_id, current_version, elements) = match c.context {
                    Some(ctx) => (
                        Some(ctx.client_edit_id),
                        parse_version(ctx.current_version.as_deref())?,
                        ctx.details,
                    ),
                    None => (None, None, Value::Null),
                };
                Ok(ConflictView {
                    id: c.id,
                    resource_type: c.conflict.resource_type,
                    resource_id: c.conflict.resource_id,
                    patient_id: c.conflict.patient_id,
                    client_edit_id,
                    current_version,
                    base: c.conflict.base,
                    ours: c.conflict.ours,
                    theirs: c.conflict.theirs,
                    elements,
                    detected_at: c.detected_at,
                })
            })
            .collect()
    }

    /// Shows `resource_type/id` as the user sees it and records the view in
    /// the local audit chain (uploaded to the hub at the next sync). `None`
    /// (and no audit row) when the replica does not hold it or a queued
    /// edit deletes it.
    pub fn view(
        &mut self,
        resource_type: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ResourceView>> {
        let device = self.device.clone();
        let replica = self.replica_mut()?;
        let synced = replica.get_resource(resource_type, id)?;
        let edit = replica
            .edits_for(resource_type, id)?
            .into_iter()
            .rfind(|e| e.state != EditState::Rejected);
        let version = parse_version(synced.as_ref().and_then(|s| s.base_version.as_deref()))?;
        let (resource, pending, patient) = match (edit, synced) {
            (Some(e), _) if e.edit.edit.is_null() => return Ok(None),
            (Some(e), _) => (e.edit.edit, true, e.edit.patient_id),
            (None, Some(s)) => (s.content, false, s.patient_id),
            (None, None) => return Ok(None),
        };
        let patient_id = (!patient.is_empty()).then_some(patient);
        let data_as_of = match &patient_id {
            Some(p) => replica.patient_synced_at(p)?,
            None => None,
        };
        let mut event = json!({
            "action": "view",
            "resource": format!("{resource_type}/{id}"),
            "user": device.username,
            "device": device.device_id,
        });
        if let (Some(p), Some(obj)) = (&patient_id, event.as_object_mut()) {
            obj.insert("patient".into(), Value::String(format!("Patient/{p}")));
        }
        replica.append_audit(&event, now)?;
        Ok(Some(ResourceView {
            resource,
            version,
            pending,
            patient_id,
            data_as_of,
        }))
    }

    /// Closes the replica (SQLCipher's key copy goes with it) and forgets
    /// the access token.
    pub fn lock(mut self) -> Result<()> {
        self.access = None;
        match self.replica.take() {
            Some(replica) => Ok(replica.lock()?),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_are_found_in_references() {
        assert_eq!(
            patient_of(&json!({"resourceType": "Patient", "id": "p1"})).as_deref(),
            Some("p1")
        );
        assert_eq!(
            patient_of(
                &json!({"resourceType": "Observation", "subject": {"reference": "Patient/p2"}})
            )
            .as_deref(),
            Some("p2")
        );
        assert_eq!(
            patient_of(&json!({"resourceType": "AllergyIntolerance",
                "patient": {"reference": "http://hub/fhir/Patient/p3"}}))
            .as_deref(),
            Some("p3")
        );
        assert_eq!(
            patient_of(
                &json!({"resourceType": "Observation", "subject": {"reference": "Group/g"}})
            ),
            None
        );
        assert!(is_fhir_id("a-b.C9"));
        assert!(!is_fhir_id("a/b"));
        assert!(!is_fhir_id(""));
    }
}
