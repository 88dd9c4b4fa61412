//! Secrets at rest: provider tokens are sealed with XChaCha20-Poly1305 under a key from the
//! environment (`SWITCHBOARD_SECURITY__SECRETS_KEY`, 32 bytes base64). Each value gets a random
//! 24-byte nonce stored in front of the ciphertext.

use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng},
    XChaCha20Poly1305, XNonce,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The configured key is not 32 bytes of base64.
    #[error("security.secrets_key must be 32 bytes encoded as base64")]
    BadKey,
    /// Tampered, truncated, or sealed under another key.
    #[error("secret cannot be decrypted with the configured key")]
    Undecryptable,
}

/// Seals and opens secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// From the configured key; an empty key derives a fixed development key (with a warning).
    pub fn from_config(key: &SecretString) -> Result<Self, SecretsError> {
        let key = key.expose_secret().trim();
        let bytes = if key.is_empty() {
            tracing::warn!("security.secrets_key is not set; using an insecure development key");
            Sha256::digest(b"switchboard-development-key").to_vec()
        } else {
            STANDARD.decode(key).map_err(|_| SecretsError::BadKey)?
        };
        if bytes.len() != 32 {
            return Err(SecretsError::BadKey);
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretsError::BadKey)?;
        Ok(Self { cipher })
    }

    /// Encrypt.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a valid key and a fresh nonce cannot fail for in-memory buffers.
        let sealed = self.cipher.encrypt(&nonce, plain).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Decrypt.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if sealed.len() < 24 {
            return Err(SecretsError::Undecryptable);
        }
        let (nonce, body) = sealed.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| SecretsError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(key: &str) -> SecretBox {
        SecretBox::from_config(&SecretString::from(key.to_owned())).expect("key")
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key() {
        let a = boxed(&STANDARD.encode([7u8; 32]));
        let b = boxed(&STANDARD.encode([8u8; 32]));
        let sealed = a.seal(b"token-123");
        assert_ne!(&sealed[24..], b"token-123");
        assert_eq!(a.open(&sealed).expect("opens"), b"token-123");
        assert!(b.open(&sealed).is_err());
        assert!(a.open(&sealed[..10]).is_err());
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(SecretBox::from_config(&SecretString::from("short".to_owned())).is_err());
        assert!(SecretBox::from_config(&SecretString::from(STANDARD.encode([1u8; 16]))).is_err());
    }
}
