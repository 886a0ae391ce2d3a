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
