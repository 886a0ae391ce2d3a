//! The key file kept beside the database.
//!
//! Format (JSON, `format` = 1):
//!
//! ```json
//! {
//!   "format": 1,
//!   "kdf": "pbkdf2-hmac-sha256",
//!   "iterations": 600000,
//!   "salt": "<base64, 16 bytes>",
//!   "cipher": "aes-256-gcm",
//!   "nonce": "<base64, 12 bytes>",
//!   "wrapped_key": "<base64, 32-byte data key sealed with its 16-byte tag>",
//!   "failed_attempts": 0,
//!   "locked": false,
//!   "lease_expires_at": "2026-01-31T00:00:00Z",
//!   "recovery": {
//!     "device_id": "dev-…",
//!     "hub_url": "https://hub.example",
//!     "current": { "nonce": "<base64>", "wrapped_key": "<base64>" },
//!     "pending": { "nonce": "<base64>", "wrapped_key": "<base64>" }
//!   }
//! }
//! ```
//!
//! Invariants: the file never holds a secret in clear. The wrapping key is
//! PBKDF2-HMAC-SHA256(passphrase, salt, iterations); the data key is sealed
//! with AES-256-GCM under it, with associated data binding the format, the
//! iteration count and the salt. Every wrap uses a fresh salt and nonce.
//! The file is replaced atomically (write to a temporary file, sync, rename).
//!
//! `recovery` (absent on replicas made without one) seals the same data key
//! under a random 256-bit recovery key that only the hub keeps, for this
//! device (associated data: the device id and the hub's address, which are
//! not secret and say where to ask). `current` is the wrap under the key the
//! hub has confirmed; `pending` the wrap under a new key sent to the hub but
//! not yet confirmed — a recovery tries both, so a lost confirmation never
//! strands a device.

use std::fs;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ReplicaError, Result};
use crate::secret::{Passphrase, SecretKey, KEY_LEN};

const FORMAT: u32 = 1;
const KDF: &str = "pbkdf2-hmac-sha256";
const CIPHER: &str = "aes-256-gcm";
const SALT_LEN: usize = 16;

/// Persistent key and device state. See the module documentation.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyFile {
    format: u32,
    kdf: String,
    iterations: u32,
    salt: String,
    cipher: String,
    nonce: String,
    wrapped_key: String,
    pub(crate) failed_attempts: u32,
    pub(crate) locked: bool,
    pub(crate) lease_expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recovery: Option<RecoveryWraps>,
}

/// The data key sealed under a recovery key (no KDF: the key is random).
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct SealedKey {
    nonce: String,
    wrapped_key: String,
}

/// Where to ask for the recovery key, and the data key sealed under it.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct RecoveryWraps {
    pub(crate) device_id: String,
    pub(crate) hub_url: String,
    pub(crate) current: SealedKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<SealedKey>,
}

fn recovery_aad(device_id: &str, hub_url: &str) -> Vec<u8> {
    format!("careshare-replica-recovery/v{FORMAT}\n{device_id}\n{hub_url}\n{CIPHER}").into_bytes()
}

impl RecoveryWraps {
    /// Seals `data_key` under `recovery_key` for this device and hub.
    pub(crate) fn seal(&self, data_key: &SecretKey, recovery_key: &SecretKey) -> Result<SealedKey> {
        seal_with(
            recovery_key,
            data_key,
            &recovery_aad(&self.device_id, &self.hub_url),
        )
    }

    /// A binding with `current` sealed under `recovery_key`.
    pub(crate) fn new(
        device_id: &str,
        hub_url: &str,
        data_key: &SecretKey,
        recovery_key: &SecretKey,
    ) -> Result<Self> {
        let current = seal_with(recovery_key, data_key, &recovery_aad(device_id, hub_url))?;
        Ok(RecoveryWraps {
            device_id: device_id.to_owned(),
            hub_url: hub_url.to_owned(),
            current,
            pending: None,
        })
    }

    /// Opens `sealed` with `recovery_key`; `None` when it is not the key.
    pub(crate) fn open(
        &self,
        sealed: &SealedKey,
        recovery_key: &SecretKey,
    ) -> Result<Option<SecretKey>> {
        open_with(
            recovery_key,
            &sealed.nonce,
            &sealed.wrapped_key,
            &recovery_aad(&self.device_id, &self.hub_url),
        )
    }
}

/// Seals `data_key` under `key` with a fresh nonce.
fn seal_with(key: &SecretKey, data_key: &SecretKey, aad: &[u8]) -> Result<SealedKey> {
    let rng = SystemRandom::new();
    let nonce: [u8; NONCE_LEN] = random_bytes(&rng)?;
    let mut in_out = Zeroizing::new(Vec::with_capacity(KEY_LEN + AES_256_GCM.tag_len()));
    in_out.extend_from_slice(&data_key.0);
    aead_key(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut *in_out,
        )
        .map_err(|_| ReplicaError::Corrupt("cannot seal the data key".into()))?;
    Ok(SealedKey {
        nonce: B64.encode(nonce),
        wrapped_key: B64.encode(&*in_out),
    })
}

/// Opens a sealed data key; `Ok(None)` when `key` is not the one it was
/// sealed under (or the file was tampered with).
fn open_with(
    key: &SecretKey,
    nonce_b64: &str,
    wrapped_b64: &str,
    aad: &[u8],
) -> Result<Option<SecretKey>> {
    let bad = |what: &str| ReplicaError::Corrupt(format!("key file: {what}"));
    let nonce: [u8; NONCE_LEN] = B64
        .decode(nonce_b64)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| bad("bad nonce"))?;
    let mut in_out = Zeroizing::new(
        B64.decode(wrapped_b64)
            .map_err(|_| bad("bad wrapped key"))?,
    );
    if in_out.len() != KEY_LEN + AES_256_GCM.tag_len() {
        return Err(bad("wrapped key has the wrong length"));
    }
    match aead_key(key)?.open_in_place(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut in_out,
    ) {
        Ok(plain) if plain.len() == KEY_LEN => {
            let mut out = SecretKey::zeroed();
            out.0.copy_from_slice(plain);
            Ok(Some(out))
        }
        Ok(_) => Err(bad("wrapped key has the wrong length")),
        Err(ring::error::Unspecified) => Ok(None),
    }
}

/// Outcome of trying a passphrase against the key file.
pub(crate) enum Unwrap {
    /// The passphrase was right; here is the data key.
    Key(SecretKey),
    /// The AEAD tag did not verify: wrong passphrase (or a tampered file).
    WrongPassphrase,
}

fn random_bytes<const N: usize>(rng: &SystemRandom) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    rng.fill(&mut out).map_err(|_| ReplicaError::Random)?;
    Ok(out)
}

fn derive(passphrase: &Passphrase, salt: &[u8], iterations: NonZeroU32) -> SecretKey {
    let mut key = SecretKey::zeroed();
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut key.0,
    );
    key
}

fn aad(iterations: u32, salt_b64: &str) -> Vec<u8> {
    format!("careshare-replica-key/v{FORMAT}\n{KDF}\n{iterations}\n{salt_b64}\n{CIPHER}")
        .into_bytes()
}

fn aead_key(key: &SecretKey) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, &key.0)
        .map_err(|_| ReplicaError::Corrupt("cannot build the wrapping cipher".into()))?;
    Ok(LessSafeKey::new(unbound))
}

impl KeyFile {
    /// Generates a fresh random data key and a key file wrapping it under
    /// `passphrase`.
    pub(crate) fn generate(
        passphrase: &Passphrase,
        iterations: NonZeroU32,
        lease_expires_at: DateTime<Utc>,
    ) -> Result<(Self, SecretKey)> {
        let rng = SystemRandom::new();
        let mut data_key = SecretKey::zeroed();
        rng.fill(&mut data_key.0)
            .map_err(|_| ReplicaError::Random)?;
        let mut file = KeyFile {
            format: FORMAT,
            kdf: KDF.into(),
            iterations: iterations.get(),
            salt: String::new(),
            cipher: CIPHER.into(),
            nonce: String::new(),
            wrapped_key: String::new(),
            failed_attempts: 0,
            locked: false,
            lease_expires_at,
            recovery: None,
        };
        file.wrap(&data_key, passphrase, iterations)?;
        Ok((file, data_key))
    }

    /// Seals `data_key` under `passphrase`, with a fresh salt and nonce.
    pub(crate) fn wrap(
        &mut self,
        data_key: &SecretKey,
        passphrase: &Passphrase,
        iterations: NonZeroU32,
    ) -> Result<()> {
        let rng = SystemRandom::new();
        let salt: [u8; SALT_LEN] = random_bytes(&rng)?;
        let salt_b64 = B64.encode(salt);
        let wrapping = derive(passphrase, &salt, iterations);
        let sealed = seal_with(&wrapping, data_key, &aad(iterations.get(), &salt_b64))?;
        self.iterations = iterations.get();
        self.salt = salt_b64;
        self.nonce = sealed.nonce;
        self.wrapped_key = sealed.wrapped_key;
        Ok(())
    }

    /// Iteration count of the current wrap.
    pub(crate) fn iterations(&self) -> Result<NonZeroU32> {
        NonZeroU32::new(self.iterations)
            .ok_or_else(|| ReplicaError::Corrupt("key file has zero iterations".into()))
    }

    /// Tries `passphrase`. Does not touch the failed-attempts counter.
    pub(crate) fn unwrap_key(&self, passphrase: &Passphrase) -> Result<Unwrap> {
        let bad = |what: &str| ReplicaError::Corrupt(format!("key file: {what}"));
        if self.format != FORMAT || self.kdf != KDF || self.cipher != CIPHER {
            return Err(bad("unsupported format"));
        }
        let iterations = self.iterations()?;
        let salt = B64.decode(&self.salt).map_err(|_| bad("bad salt"))?;
        let wrapping = derive(passphrase, &salt, iterations);
        let opened = open_with(
            &wrapping,
            &self.nonce,
            &self.wrapped_key,
            &aad(iterations.get(), &self.salt),
        )?;
        Ok(match opened {
            Some(key) => Unwrap::Key(key),
            None => Unwrap::WrongPassphrase,
        })
    }

    /// Reads the key file; [`ReplicaError::NotCreated`] when absent.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReplicaError::NotCreated)
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map_err(|_| ReplicaError::Corrupt("key file is not valid".into()))
    }

    /// Atomically replaces the key file at `path` (via `tmp`).
    pub(crate) fn store(&self, path: &Path, tmp: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|_| ReplicaError::Corrupt("cannot serialise key file".into()))?;
        {
            let mut f = fs::File::create(tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
        }
        fs::rename(tmp, path)?;
        #[cfg(unix)]
        if let Some(dir) = path.parent() {
            // Make the rename durable; failure to sync a directory is not fatal.
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}
