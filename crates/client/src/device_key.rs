//! The device's Ed25519 key: made at enrolment, kept (PKCS#8) only inside the
//! encrypted replica, used to prove the device to the hub and to vouch for
//! the uploaded audit chain. Every signature is over a context prefix, so a
//! signature made for one purpose never passes for another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use careshare_replica::SecretBytes;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::error::{ClientError, Result};

/// What the device signs to prove itself: this prefix, then the hub's nonce.
pub const PROOF_CONTEXT: &str = "careshare-device-proof:";

/// What the device signs to vouch for its audit chain: this prefix, then the
/// hash of the last event sent.
pub const AUDIT_SIGN_CONTEXT: &str = "careshare-audit-head:";

/// A device key pair, loaded from its PKCS#8 document. Never prints.
pub(crate) struct DeviceKey(Ed25519KeyPair);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl DeviceKey {
    /// A fresh key pair and its PKCS#8 document (to store).
    pub fn generate() -> Result<(DeviceKey, SecretBytes)> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| ClientError::DeviceKey("cannot generate a key pair"))?;
        let pkcs8 = SecretBytes::new(doc.as_ref().to_vec());
        Ok((DeviceKey::load(&pkcs8)?, pkcs8))
    }

    /// The key pair stored as `pkcs8`.
    pub fn load(pkcs8: &SecretBytes) -> Result<DeviceKey> {
        Ed25519KeyPair::from_pkcs8(pkcs8.expose())
            .map(DeviceKey)
            .map_err(|_| ClientError::DeviceKey("the stored device key is not valid"))
    }

    /// The public key, base64url without padding (as the hub takes it).
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.0.public_key().as_ref())
    }

    /// The signature proving the device for `nonce`, base64url.
    pub fn sign_proof(&self, nonce: &str) -> String {
        self.sign(&format!("{PROOF_CONTEXT}{nonce}"))
    }

    /// The signature vouching for the audit chain up to `head_hash`, base64url.
    pub fn sign_audit_head(&self, head_hash: &str) -> String {
        self.sign(&format!("{AUDIT_SIGN_CONTEXT}{head_hash}"))
    }

    fn sign(&self, message: &str) -> String {
        B64.encode(self.0.sign(message.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn signatures_verify_with_their_context_only() {
        let (key, pkcs8) = DeviceKey::generate().unwrap();
        let again = DeviceKey::load(&pkcs8).unwrap();
        assert_eq!(key.public_key_b64(), again.public_key_b64());
        let public = B64.decode(key.public_key_b64()).unwrap();
        assert_eq!(public.len(), 32);
        let verify = |msg: &str, sig: &str| {
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(msg.as_bytes(), &B64.decode(sig).unwrap())
                .is_ok()
        };
        let proof = again.sign_proof("n0nce");
        assert!(verify("careshare-device-proof:n0nce", &proof));
        assert!(!verify("careshare-audit-head:n0nce", &proof));
        let head = key.sign_audit_head("abc");
        assert!(verify("careshare-audit-head:abc", &head));
        assert_eq!(format!("{key:?}"), "DeviceKey(<redacted>)");
        assert_eq!(format!("{pkcs8:?}"), "SecretBytes(<redacted>)");
        assert!(DeviceKey::load(&SecretBytes::new(vec![1, 2, 3])).is_err());
    }
}
