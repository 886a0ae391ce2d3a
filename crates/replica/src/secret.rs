//! Secret-holding types.
//!
//! Invariants: none of these types implements `Display`, `Clone` or
//! `Serialize`; their `Debug` output is a fixed redacted marker; their bytes
//! are zeroized when dropped.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A user's passphrase. Zeroized on drop, never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; the string is moved in and zeroized on drop.
    pub fn new(passphrase: String) -> Self {
        Self(Zeroizing::new(passphrase))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Passphrase {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Self {
        Self::new(s.to_owned())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Length of the data key and of the wrapping key, in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// A 256-bit key (the database data key or a passphrase-derived wrapping key).
/// Zeroized on drop, never printed.
pub(crate) struct SecretKey(pub(crate) [u8; KEY_LEN]);

impl SecretKey {
    pub(crate) fn zeroed() -> Self {
        Self([0u8; KEY_LEN])
    }

    /// The SQLCipher raw-key pragma for this key. The returned string holds
    /// the key in hex and is zeroized on drop.
    pub(crate) fn sqlcipher_key_pragma(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Zeroizing::new(String::with_capacity(20 + 2 * KEY_LEN));
        s.push_str("PRAGMA key = \"x'");
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s.push_str("'\";");
        s
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A secret text kept in the replica or sent to the hub (a refresh token, a
/// hub passphrase). Zeroized on drop; `Debug` prints a redacted marker; no
/// `Display`, `Clone` or `Serialize`.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret; the string is moved in and zeroized on drop.
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The secret text, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Secret bytes kept in the replica (the device's private signing key).
/// Zeroized on drop; `Debug` prints a redacted marker; no `Display`, `Clone`
/// or `Serialize`.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps secret bytes; the vector is moved in and zeroized on drop.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes, for the one place that must use them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(b: Vec<u8>) -> Self {
        Self::new(b)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// A device's recovery key: 256 random bits that seal a second copy of the
/// data key in the key file. The hub keeps it for the device and gives it
/// back only to the device's user, signed in again, so that a replica
/// locked after too many wrong passphrases (or whose passphrase is
/// forgotten) can be re-authorised. Zeroized on drop, never printed; it
/// crosses to the hub only as base64url text in a [`SecretString`].
pub struct RecoveryKey(pub(crate) SecretKey);

impl RecoveryKey {
    /// A fresh random key.
    pub fn generate() -> crate::Result<Self> {
        use ring::rand::SecureRandom;
        let mut key = SecretKey::zeroed();
        ring::rand::SystemRandom::new()
            .fill(&mut key.0)
            .map_err(|_| crate::ReplicaError::Random)?;
        Ok(Self(key))
    }

    /// The key as the hub receives it: base64url without padding.
    pub fn to_base64(&self) -> SecretString {
        use base64::Engine as _;
        SecretString::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0 .0))
    }

    /// Reads a key as the hub gives it back.
    pub fn from_base64(text: &SecretString) -> crate::Result<Self> {
        use base64::Engine as _;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.expose().trim())
                .map_err(|_| {
                    crate::ReplicaError::InvalidInput("the recovery key is not base64url".into())
                })?,
        );
        if bytes.len() != KEY_LEN {
            return Err(crate::ReplicaError::InvalidInput(
                "the recovery key is not 32 bytes".into(),
            ));
        }
        let mut key = SecretKey::zeroed();
        key.0.copy_from_slice(&bytes);
        Ok(Self(key))
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}
