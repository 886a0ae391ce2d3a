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
//!   "lease_expires_at": "2026-01-31T00:00:00Z"
//! }
//! ```
//!
//! Invariants: the file never holds a secret in clear. The wrapping key is
//! PBKDF2-HMAC-SHA256(passphrase, salt, iterations); the data key is sealed
//! with AES-256-GCM under it, with associated data binding the format, the
//! iteration count and the salt. Every wrap uses a fresh salt and nonce.
//! The file is replaced atomically (write to a temporary file, sync, rename).

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
        let nonce: [u8; NONCE_LEN] = random_bytes(&rng)?;
        let salt_b64 = B64.encode(salt);
        let wrapping = derive(passphrase, &salt, iterations);
        let mut in_out = Zeroizing::new(Vec::with_capacity(KEY_LEN + AES_256_GCM.tag_len()));
        in_out.extend_from_slice(&data_key.0);
        aead_key(&wrapping)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(iterations.get(), &salt_b64)),
                &mut *in_out,
            )
            .map_err(|_| ReplicaError::Corrupt("cannot seal the data key".into()))?;
        self.iterations = iterations.get();
        self.salt = salt_b64;
        self.nonce = B64.encode(nonce);
        self.wrapped_key = B64.encode(&*in_out);
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
        let nonce: [u8; NONCE_LEN] = B64
            .decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad("bad nonce"))?;
        let mut in_out = Zeroizing::new(
            B64.decode(&self.wrapped_key)
                .map_err(|_| bad("bad wrapped key"))?,
        );
        if in_out.len() != KEY_LEN + AES_256_GCM.tag_len() {
            return Err(bad("wrapped key has the wrong length"));
        }
        let wrapping = derive(passphrase, &salt, iterations);
        let opened = aead_key(&wrapping)?.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(iterations.get(), &self.salt)),
            &mut in_out,
        );
        match opened {
            Ok(plain) if plain.len() == KEY_LEN => {
                let mut key = SecretKey::zeroed();
                key.0.copy_from_slice(plain);
                Ok(Unwrap::Key(key))
            }
            Ok(_) => Err(bad("wrapped key has the wrong length")),
            Err(ring::error::Unspecified) => Ok(Unwrap::WrongPassphrase),
        }
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
