//! Who is calling: staff sign-in, tokens, devices and revocation.
//!
//! - Passphrases are stored as PBKDF2-HMAC-SHA256 hashes with a per-account random salt
//!   and the iteration count in the stored string; verification is constant-time (`ring`).
//! - Repeated failed sign-ins lock the account for a while ([`LOCK_AFTER`] failures).
//! - Tokens are 256-bit random strings; only their SHA-256 is stored. Access tokens are
//!   short-lived; refresh tokens rotate on use.
//! - A desktop device registers an Ed25519 public key, then proves it holds the private
//!   key by signing a one-time hub challenge; the token it gets is bound to user and device.
//! - A device stores a recovery key here (with a token bound to it). The hub gives it back
//!   only to the device's own user, signed in again with their passphrase (the same
//!   failure count and lock as a sign-in), so that a replica locked after too many wrong
//!   passphrases can be re-authorised. Revoking the device deletes its recovery key.
//! - Revoking a user or a device takes effect at the next request: every token check reads
//!   the account and device. A revoked device is told to wipe its replica.
//!
//! Secrets never reach logs or errors: [`Secret`] does not print.

use std::num::NonZeroU32;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{UnparsedPublicKey, ED25519};
use sqlx::Row;

use crate::store::{Store, StoreError};

/// Failed sign-ins in a row that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a locked account stays locked (microseconds).
pub const LOCK_FOR: i64 = 15 * 60 * 1_000_000;
/// How long a device challenge may be answered (microseconds).
pub const CHALLENGE_TTL: i64 = 2 * 60 * 1_000_000;
/// The bytes a device signs: this prefix then the nonce, so a signature made for anything
/// else can never pass as a proof.
pub const PROOF_CONTEXT: &str = "careshare-device-proof:";

/// A secret string (passphrase or token) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Settings of the identity layer.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// PBKDF2 iterations for new passphrase hashes.
    pub pbkdf2_iterations: u32,
    /// Access token lifetime (seconds).
    pub access_ttl_secs: i64,
    /// Refresh token lifetime (seconds).
    pub refresh_ttl_secs: i64,
    /// Longest a device may work offline before checking in (days).
    pub lease_days: i64,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            pbkdf2_iterations: 600_000,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 12 * 60 * 60,
            lease_days: 7,
        }
    }
}

/// Why a caller was refused. The texts are safe to send: they name no secret and do not
/// say whether a user name exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the user name or passphrase is not right")]
    InvalidCredentials,
    #[error("too many failed sign-ins: this account is locked for a while")]
    Locked { until: i64 },
    #[error("sign in first: this request needs a valid bearer token")]
    MissingToken,
    #[error("the token is not valid (unknown, malformed or revoked)")]
    InvalidToken,
    #[error("the token has expired: refresh it or sign in again")]
    Expired,
    #[error("this account has been revoked")]
    AccountRevoked,
    #[error("this device has been revoked: its local record must be wiped")]
    DeviceRevoked,
    #[error("this device is not registered to the signed-in user")]
    UnknownDevice,
    #[error("the device's proof is not valid (unknown or expired challenge, or a bad signature)")]
    BadProof,
    #[error("the public key is not a 32-byte Ed25519 key in base64url")]
    BadPublicKey,
    #[error("the recovery key is not 32 bytes in base64url")]
    BadRecoveryKey,
    #[error("the hub holds no recovery key for this device: enrol it again")]
    NoRecoveryKey,
    #[error("only a region administrator may do this")]
    NotAdministrator,
    #[error("passphrases need at least 12 characters")]
    WeakPassphrase,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> AuthError {
        AuthError::Store(StoreError::Database(e))
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the operating system's random source works");
    b
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hashes a passphrase for storage: `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64url).
pub fn hash_passphrase(passphrase: &Secret, iterations: u32) -> String {
    let salt: [u8; 16] = random_bytes();
    let iters = NonZeroU32::new(iterations.max(1)).expect("at least one iteration");
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        passphrase.expose().as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${iters}${}${}",
        B64.encode(salt),
        B64.encode(out)
    )
}

/// Checks a passphrase against a stored hash in constant time.
pub fn verify_passphrase(passphrase: &Secret, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [scheme, iters, salt, hash] = parts.as_slice() else {
        return false;
    };
    if *scheme != "pbkdf2-sha256" {
        return false;
    }
    let (Some(iters), Ok(salt), Ok(hash)) = (
        iters.parse::<u32>().ok().and_then(NonZeroU32::new),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        passphrase.expose().as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A signed-in caller, as established from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub username: String,
    pub practitioner_role_id: String,
    /// Set when the token was issued to a registered device after its proof.
    pub device_id: Option<String>,
}

/// A fresh pair of tokens.
#[derive(Debug)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Secret,
    pub expires_in: i64,
}

/// The identity layer over the store.
pub struct Auth<'a> {
    pub store: &'a Store,
    pub config: &'a AuthConfig,
}

impl Auth<'_> {
    /// Creates an account, or sets a new passphrase and role for an existing one (and
    /// lifts a revocation or lock).
    pub async fn put_account(
        &self,
        username: &str,
        practitioner_role_id: &str,
        passphrase: &Secret,
    ) -> Result<(), AuthError> {
        if passphrase.expose().chars().count() < 12 {
            return Err(AuthError::WeakPassphrase);
        }
        let hash = hash_passphrase(passphrase, self.config.pbkdf2_iterations);
        let mut tx = self.store.begin().await?;
        sqlx::query("DELETE FROM account WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO account (username, practitioner_role_id, password_hash, failed_attempts, locked_until) \
             VALUES ($1, $2, $3, 0, 0)",
        )
        .bind(username)
        .bind(practitioner_role_id)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether an account exists (for idempotent set-up).
    pub async fn account_exists(&self, username: &str) -> Result<bool, AuthError> {
        Ok(
            sqlx::query("SELECT username FROM account WHERE username = $1")
                .bind(username)
                .fetch_optional(self.store.pool())
                .await?
                .is_some(),
        )
    }

    async fn issue(
        &self,
        username: &str,
        device_id: Option<&str>,
        now: i64,
    ) -> Result<Tokens, AuthError> {
        let access = B64.encode(random_bytes::<32>());
        let refresh = B64.encode(random_bytes::<32>());
        let mut tx = self.store.begin().await?;
        for (token, kind, ttl) in [
            (&access, "access", self.config.access_ttl_secs),
            (&refresh, "refresh", self.config.refresh_ttl_secs),
        ] {
            sqlx::query(
                "INSERT INTO token (token_hash, kind, username, device_id, expires_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(sha256_hex(token.as_bytes()))
            .bind(kind)
            .bind(username)
            .bind(device_id)
            .bind(now + ttl * 1_000_000)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Tokens {
            access: Secret(access),
            refresh: Secret(refresh),
            expires_in: self.config.access_ttl_secs,
        })
    }

    /// The answer for an unknown user or device, after the same effort as a real
    /// passphrase check, so that neither the answer nor its timing reveals names.
    fn unknown(&self, passphrase: &Secret) -> AuthError {
        let _ = verify_passphrase(
            passphrase,
            &hash_passphrase(&Secret::new("x"), self.config.pbkdf2_iterations),
        );
        AuthError::InvalidCredentials
    }

    /// Signs in with user name and passphrase. Failures count towards a lock.
    pub async fn sign_in(
        &self,
        username: &str,
        passphrase: &Secret,
        now: i64,
    ) -> Result<Tokens, AuthError> {
        let row = sqlx::query(
            "SELECT password_hash, failed_attempts, locked_until, revoked_at FROM account WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Err(self.unknown(passphrase));
        };
        let hash: String = row.try_get("password_hash")?;
        let failed: i64 = row.try_get("failed_attempts")?;
        let locked_until: i64 = row.try_get("locked_until")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if locked_until > now {
            return Err(AuthError::Locked {
                until: locked_until,
            });
        }
        if !verify_passphrase(passphrase, &hash) {
            let failed = failed + 1;
            let lock = if failed >= LOCK_AFTER {
                now + LOCK_FOR
            } else {
                0
            };
            sqlx::query(
                "UPDATE account SET failed_attempts = $1, locked_until = $2 WHERE username = $3",
            )
            .bind(if lock > 0 { 0 } else { failed })
            .bind(lock)
            .bind(username)
            .execute(self.store.pool())
            .await?;
            return Err(if lock > 0 {
                AuthError::Locked { until: lock }
            } else {
                AuthError::InvalidCredentials
            });
        }
        if revoked.is_some() {
            return Err(AuthError::AccountRevoked);
        }
        sqlx::query("UPDATE account SET failed_attempts = 0, locked_until = 0 WHERE username = $1")
            .bind(username)
            .execute(self.store.pool())
            .await?;
        self.issue(username, None, now).await
    }

    /// Establishes the caller from an access token, checking expiry and revocation of the
    /// token, the account and the device.
    pub async fn authenticate(&self, token: &Secret, now: i64) -> Result<Caller, AuthError> {
        self.check_token(token, "access", now).await
    }

    async fn check_token(&self, token: &Secret, kind: &str, now: i64) -> Result<Caller, AuthError> {
        let row = sqlx::query(
            "SELECT t.username, t.device_id, t.expires_at, t.revoked, a.practitioner_role_id, a.revoked_at \
             FROM token t JOIN account a ON a.username = t.username \
             WHERE t.token_hash = $1 AND t.kind = $2",
        )
        .bind(sha256_hex(token.expose().as_bytes()))
        .bind(kind)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(AuthError::InvalidToken)?;
        let device_id: Option<String> = row.try_get("device_id")?;
        if let Some(d) = &device_id {
            let revoked: Option<Option<i64>> =
                sqlx::query("SELECT revoked_at FROM device WHERE device_id = $1")
                    .bind(d)
                    .fetch_optional(self.store.pool())
                    .await?
                    .map(|r| r.try_get("revoked_at"))
                    .transpose()?;
            if !matches!(revoked, Some(None)) {
                return Err(AuthError::DeviceRevoked);
            }
        }
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Err(AuthError::AccountRevoked);
        }
        if row.try_get::<i64, _>("revoked")? != 0 {
            return Err(AuthError::InvalidToken);
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Err(AuthError::Expired);
        }
        Ok(Caller {
            username: row.try_get("username")?,
            practitioner_role_id: row.try_get("practitioner_role_id")?,
            device_id,
        })
    }

    /// Exchanges a refresh token for a new pair; the old refresh token is spent.
    pub async fn refresh(&self, refresh: &Secret, now: i64) -> Result<Tokens, AuthError> {
        let caller = self.check_token(refresh, "refresh", now).await?;
        // Spent once: of two refreshes with one token at the same moment, only the one
        // that spends it gets new tokens.
        let spent =
            sqlx::query("UPDATE token SET revoked = 1 WHERE token_hash = $1 AND revoked = 0")
                .bind(sha256_hex(refresh.expose().as_bytes()))
                .execute(self.store.pool())
                .await?;
        if spent.rows_affected() != 1 {
            return Err(AuthError::InvalidToken);
        }
        self.issue(&caller.username, caller.device_id.as_deref(), now)
            .await
    }

    /// Registers a device's Ed25519 public key for the caller.
    pub async fn register_device(
        &self,
        caller: &Caller,
        name: &str,
        public_key_b64: &str,
        now: i64,
    ) -> Result<String, AuthError> {
        let key = B64
            .decode(public_key_b64.trim())
            .map_err(|_| AuthError::BadPublicKey)?;
        if key.len() != 32 {
            return Err(AuthError::BadPublicKey);
        }
        let device_id = format!("dev-{}", uuid::Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO device (device_id, username, name, public_key, registered_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&device_id)
        .bind(&caller.username)
        .bind(name)
        .bind(B64.encode(&key))
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(device_id)
    }

    async fn device_of(&self, caller: &Caller, device_id: &str) -> Result<String, AuthError> {
        let row =
            sqlx::query("SELECT username, public_key, revoked_at FROM device WHERE device_id = $1")
                .bind(device_id)
                .fetch_optional(self.store.pool())
                .await?
                .ok_or(AuthError::UnknownDevice)?;
        if row.try_get::<String, _>("username")? != caller.username {
            return Err(AuthError::UnknownDevice);
        }
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Err(AuthError::DeviceRevoked);
        }
        Ok(row.try_get("public_key")?)
    }

    /// A one-time challenge for the device to sign.
    pub async fn challenge(
        &self,
        caller: &Caller,
        device_id: &str,
        now: i64,
    ) -> Result<String, AuthError> {
        self.device_of(caller, device_id).await?;
        let nonce = B64.encode(random_bytes::<32>());
        sqlx::query(
            "INSERT INTO device_challenge (nonce, device_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&nonce)
        .bind(device_id)
        .bind(now + CHALLENGE_TTL)
        .execute(self.store.pool())
        .await?;
        Ok(nonce)
    }

    /// Checks the device's signature over a challenge and issues tokens bound to the user
    /// and the device. The challenge is spent either way.
    pub async fn device_token(
        &self,
        caller: &Caller,
        device_id: &str,
        nonce: &str,
        signature_b64: &str,
        now: i64,
    ) -> Result<Tokens, AuthError> {
        let key = self.device_of(caller, device_id).await?;
        let spent = sqlx::query(
            "DELETE FROM device_challenge WHERE nonce = $1 AND device_id = $2 AND expires_at > $3",
        )
        .bind(nonce)
        .bind(device_id)
        .bind(now)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if spent != 1 {
            return Err(AuthError::BadProof);
        }
        let key = B64.decode(key).map_err(|_| AuthError::BadProof)?;
        let signature = B64
            .decode(signature_b64.trim())
            .map_err(|_| AuthError::BadProof)?;
        let message = format!("{PROOF_CONTEXT}{nonce}");
        UnparsedPublicKey::new(&ED25519, key)
            .verify(message.as_bytes(), &signature)
            .map_err(|_| AuthError::BadProof)?;
        self.issue(&caller.username, Some(device_id), now).await
    }

    /// Checks a signature made with the caller's registered, unrevoked device key.
    pub async fn verify_device_signature(
        &self,
        caller: &Caller,
        device_id: &str,
        message: &[u8],
        signature_b64: &str,
    ) -> Result<(), AuthError> {
        let key = self.device_of(caller, device_id).await?;
        let key = B64.decode(key).map_err(|_| AuthError::BadProof)?;
        let signature = B64
            .decode(signature_b64.trim())
            .map_err(|_| AuthError::BadProof)?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(message, &signature)
            .map_err(|_| AuthError::BadProof)
    }

    /// Stores the recovery key of the caller's device, replacing any earlier one. The
    /// caller's token must be bound to that device (it proved it holds the device key).
    pub async fn set_recovery_key(
        &self,
        caller: &Caller,
        device_id: &str,
        recovery_key: &Secret,
    ) -> Result<(), AuthError> {
        if caller.device_id.as_deref() != Some(device_id) {
            return Err(AuthError::UnknownDevice);
        }
        self.device_of(caller, device_id).await?;
        let key = B64
            .decode(recovery_key.expose().trim())
            .map_err(|_| AuthError::BadRecoveryKey)?;
        if key.len() != 32 {
            return Err(AuthError::BadRecoveryKey);
        }
        sqlx::query(
            "UPDATE device SET recovery_key = $1 WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(B64.encode(&key))
        .bind(device_id)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The user a device is registered to, if it exists.
    pub async fn device_owner(&self, device_id: &str) -> Result<Option<String>, AuthError> {
        Ok(
            sqlx::query("SELECT username FROM device WHERE device_id = $1")
                .bind(device_id)
                .fetch_optional(self.store.pool())
                .await?
                .map(|r| r.try_get("username"))
                .transpose()?,
        )
    }

    /// Gives a device's recovery key back to the device's user, who signs in again with
    /// their passphrase (counted like any sign-in). Returns the user, a (not device-bound)
    /// token pair for proving the device again, and the key.
    pub async fn recover_device(
        &self,
        device_id: &str,
        passphrase: &Secret,
        now: i64,
    ) -> Result<(String, Tokens, Secret), AuthError> {
        let row = sqlx::query(
            "SELECT username, revoked_at, recovery_key FROM device WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Err(self.unknown(passphrase));
        };
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            return Err(AuthError::DeviceRevoked);
        }
        let username: String = row.try_get("username")?;
        let key: Option<String> = row.try_get("recovery_key")?;
        let tokens = self.sign_in(&username, passphrase, now).await?;
        let key = key.ok_or(AuthError::NoRecoveryKey)?;
        Ok((username, tokens, Secret(key)))
    }

    /// Revokes a user: their tokens stop working at once and they cannot sign in.
    pub async fn revoke_user(&self, username: &str, now: i64) -> Result<bool, AuthError> {
        let n = sqlx::query(
            "UPDATE account SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(username)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        sqlx::query("UPDATE token SET revoked = 1 WHERE username = $1")
            .bind(username)
            .execute(self.store.pool())
            .await?;
        Ok(n > 0)
    }

    /// Revokes a device: its next contact is answered with a wipe instruction.
    pub async fn revoke_device(&self, device_id: &str, now: i64) -> Result<bool, AuthError> {
        let n = sqlx::query(
            "UPDATE device SET revoked_at = $1, recovery_key = NULL \
             WHERE device_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(device_id)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_hashes_verify_and_differ_by_salt() {
        let p = Secret::new("correct horse battery staple");
        let a = hash_passphrase(&p, 1000);
        let b = hash_passphrase(&p, 1000);
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify_passphrase(&p, &a));
        assert!(!verify_passphrase(
            &Secret::new("correct horse battery stapl"),
            &a
        ));
        assert!(!verify_passphrase(&p, "pbkdf2-sha256$x$y$z"));
        assert!(!verify_passphrase(&p, ""));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
