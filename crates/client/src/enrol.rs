//! Enrolment: a new device for a user, with its own key and encrypted replica.
//!
//! Everything at the hub happens first (sign in, register the device's
//! public key, prove the device, hand the hub the device's recovery key,
//! check in for the first lease), so a wrong
//! hub passphrase leaves nothing behind. Then the replica is created and the
//! device's identity — hub URL, user, device id, private key, device-bound
//! refresh token — is stored inside it, nowhere else.

use std::path::PathBuf;

use careshare_replica::{
    DeviceState, KeyParams, Passphrase, RecoveryBinding, RecoveryKey, Replica, ReplicaError,
    ReplicaFiles, SecretString,
};
use chrono::{DateTime, Utc};

use crate::device_key::DeviceKey;
use crate::error::{ClientError, Result};
use crate::http::{HttpConfig, HubClient};
use crate::session::{prove_with, Access, DeviceInfo, Session};

/// What [`enrol`] needs. Secrets are held in types that never print.
#[derive(Debug)]
pub struct Enrolment {
    /// Directory of the replica (created if missing; must hold no replica).
    pub dir: PathBuf,
    /// Base URL of the hub, e.g. `http://127.0.0.1:8080`.
    pub hub_url: String,
    /// The user's hub user name.
    pub username: String,
    /// The user's hub passphrase (used once, never stored).
    pub hub_passphrase: SecretString,
    /// The passphrase that will unlock the replica.
    pub replica_passphrase: Passphrase,
    /// The name the device is registered under.
    pub device_name: String,
    /// Key derivation of the replica's key file.
    pub key_params: KeyParams,
    /// Time-outs and retries of hub calls.
    pub http: HttpConfig,
}

impl Enrolment {
    /// An enrolment with the default device name, key parameters and HTTP
    /// settings.
    pub fn new(
        dir: impl Into<PathBuf>,
        hub_url: impl Into<String>,
        username: impl Into<String>,
        hub_passphrase: SecretString,
        replica_passphrase: Passphrase,
    ) -> Enrolment {
        Enrolment {
            dir: dir.into(),
            hub_url: hub_url.into(),
            username: username.into(),
            hub_passphrase,
            replica_passphrase,
            device_name: "Careshare device".into(),
            key_params: KeyParams::default(),
            http: HttpConfig::default(),
        }
    }
}

/// Enrols a device: signs in, makes an Ed25519 key pair, registers and
/// proves the device, checks in for the first lease, creates the encrypted
/// replica in `dir` and stores the device's identity in it. Returns the open
/// session (nothing pulled yet: [`Session::sync`] next).
pub async fn enrol(e: Enrolment, now: DateTime<Utc>) -> Result<Session> {
    if e.username.trim().is_empty() {
        return Err(ClientError::InvalidInput("the user name is empty".into()));
    }
    if e.device_name.trim().is_empty() {
        return Err(ClientError::InvalidInput("the device name is empty".into()));
    }
    if e.hub_passphrase.is_empty() {
        return Err(ClientError::InvalidInput(
            "the hub passphrase is empty".into(),
        ));
    }
    std::fs::create_dir_all(&e.dir)?;
    let files = ReplicaFiles::new(&e.dir);
    if files.all_files().iter().any(|p| p.exists()) {
        return Err(ClientError::AlreadyEnrolled(e.dir));
    }
    let hub = HubClient::new(&e.hub_url, &e.http)?;
    let (key, signing_key) = DeviceKey::generate()?;
    let user = hub.sign_in(&e.username, &e.hub_passphrase).await?;
    let device_id = hub
        .register_device(&user.access, &e.device_name, &key.public_key_b64())
        .await?;
    let pair = prove_with(&hub, &user.access, &device_id, &key).await?;
    drop(user);
    let practitioner_role = match hub.whoami(&pair.access).await {
        Ok(who) => who.practitioner_role,
        Err(err) => {
            tracing::warn!(
                "the hub did not say who the user is: {}",
                ClientError::from(err)
            );
            None
        }
    };
    // The hub keeps the recovery key, so that it can re-authorise the
    // replica if it locks (`reauthorise`).
    let recovery_key = RecoveryKey::generate()?;
    hub.set_recovery_key(&pair.access, &device_id, &recovery_key.to_base64())
        .await?;
    let lease = hub.checkin(&pair.access).await?;
    let binding = RecoveryBinding {
        device_id: device_id.clone(),
        hub_url: hub.base_url().to_owned(),
    };
    let mut replica = Replica::create_recoverable(
        files.clone(),
        &e.replica_passphrase,
        e.key_params,
        &binding,
        &recovery_key,
        lease,
        now,
    )
    .map_err(|err| match err {
        ReplicaError::AlreadyExists => ClientError::AlreadyEnrolled(e.dir.clone()),
        err => err.into(),
    })?;
    let state = DeviceState {
        hub_url: hub.base_url().to_owned(),
        username: e.username.clone(),
        practitioner_role,
        device_id,
        device_name: e.device_name.clone(),
        signing_key,
        refresh_token: Some(pair.refresh),
        audit_sent: None,
        enrolled_at: now,
        last_sync_at: None,
    };
    if let Err(err) = replica.set_device(&state) {
        drop(replica);
        let _ = files.wipe();
        return Err(err.into());
    }
    tracing::info!(
        "enrolled device {} for {} at {}",
        state.device_id,
        state.username,
        state.hub_url
    );
    let access = Some(Access {
        token: pair.access,
        use_until: now + chrono::Duration::seconds((pair.expires_in - 30).max(0)),
    });
    Ok(Session {
        device: DeviceInfo::of(&state),
        dir: e.dir,
        replica: Some(replica),
        hub,
        access,
    })
}
