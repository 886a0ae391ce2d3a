//! Re-authorising a device whose replica locked after too many wrong
//! passphrases (or whose passphrase its user forgot).
//!
//! At enrolment the device made a random recovery key, gave it to the hub
//! and sealed a second copy of the replica's data key under it
//! ([`careshare_replica::Replica::create_recoverable`]). To re-authorise, the
//! device's user signs in to the hub again with their hub passphrase; the
//! hub checks the device is theirs and not revoked, audits, and gives the key
//! back. The replica then takes a new passphrase, clears its lock and seals a
//! fresh recovery key, which the device proves itself to the hub to store
//! (the one that crossed the network is retired). A revoked device is told
//! to wipe instead.

use std::path::Path;

use careshare_replica::{Passphrase, RecoveryKey, Replica, ReplicaFiles, SecretString};
use chrono::{DateTime, Utc};

use crate::device_key::DeviceKey;
use crate::error::{ClientError, Result};
use crate::http::{CallError, HttpConfig, HubClient};
use crate::session::{call_failed, finish_check_in, open_error, prove_with, Session};

/// Re-authorises the device whose replica is in `dir` with its user's
/// `hub_passphrase`, sets `new_passphrase` for the replica and returns the
/// open session (lease renewed, signed in). Works whether or not the
/// replica is locked and whatever its lease says.
pub async fn reauthorise(
    dir: impl AsRef<Path>,
    hub_passphrase: &SecretString,
    new_passphrase: &Passphrase,
    now: DateTime<Utc>,
    http: &HttpConfig,
) -> Result<Session> {
    let dir = dir.as_ref().to_owned();
    if hub_passphrase.is_empty() {
        return Err(ClientError::InvalidInput(
            "the hub passphrase is empty".into(),
        ));
    }
    let files = ReplicaFiles::new(&dir);
    let binding = files
        .recovery()
        .map_err(|e| open_error(&dir, e))?
        .ok_or(ClientError::NotRecoverable)?;
    let hub = HubClient::new(&binding.hub_url, http)?;
    let (user, key_text) = match hub.recover_device(&binding.device_id, hub_passphrase).await {
        Ok(answer) => answer,
        Err(CallError::Status {
            status: reqwest::StatusCode::CONFLICT,
            wipe: false,
            ..
        }) => return Err(ClientError::NotRecoverable),
        Err(e) => return Err(call_failed(&dir, e)),
    };
    let recovery_key = RecoveryKey::from_base64(&key_text)?;
    drop(key_text);
    let (checkin, next) = Replica::recover(files.clone(), &recovery_key, new_passphrase)?;
    drop(recovery_key);
    tracing::info!(
        "the hub re-authorised device {}; the replica has a new passphrase",
        binding.device_id
    );
    let device = checkin
        .device()?
        .ok_or_else(|| ClientError::NotEnrolled(dir.clone()))?;
    let signing_key = DeviceKey::load(&device.signing_key)?;
    let pair = prove_with(&hub, &user.access, &device.device_id, &signing_key)
        .await
        .map_err(|e| call_failed(&dir, e))?;
    checkin.set_refresh_token(&pair.refresh)?;
    // Retire the key that crossed the network. If the hub's answer is lost,
    // the key file keeps both wraps, so either key still re-authorises.
    match hub
        .set_recovery_key(&pair.access, &device.device_id, &next.to_base64())
        .await
    {
        Ok(()) => files.confirm_recovery_key()?,
        Err(e) => tracing::warn!(
            "the hub did not take the new recovery key; the old one stays valid: {}",
            ClientError::from(e)
        ),
    }
    drop(next);
    finish_check_in(dir, hub, checkin, &device, &pair, now).await
}
