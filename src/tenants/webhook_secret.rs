//! The tenant's webhook secret: the key `http` flow states sign their requests with, so the
//! business can check a request came from its Switchboard.
//!
//! Owns creating, storing (sealed with [`SecretBox`]) and reading it. Invariants: one secret per
//! tenant, created on first use and never changed afterwards by this module; concurrent first
//! uses agree on one secret (the row update keeps whichever was stored first); runs in the
//! caller's tenant transaction, so row-level security scopes it; the plain secret never reaches
//! a log line.

use rand::RngCore;
use secrecy::SecretString;
use sqlx::PgConnection;

use super::secrets::{SecretBox, SecretsError};

/// Prefix of every webhook secret.
pub const PREFIX: &str = "whsec_";

/// Why the secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSecretError {
    /// Database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The stored secret does not open with the configured key.
    #[error(transparent)]
    Sealed(#[from] SecretsError),
    /// The current tenant does not exist.
    #[error("no such tenant")]
    NoTenant,
}

/// A new random secret: `whsec_` and 64 hex digits (32 random bytes).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The current tenant's secret, created (and stored sealed) when it has none yet.
pub async fn get_or_create(
    conn: &mut PgConnection,
    secrets: &SecretBox,
) -> Result<SecretString, WebhookSecretError> {
    let stored: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT webhook_secret FROM tenants WHERE id = sb_tenant()")
            .fetch_optional(&mut *conn)
            .await?;
    let sealed = match stored {
        None => return Err(WebhookSecretError::NoTenant),
        Some(Some(sealed)) => sealed,
        Some(None) => {
            let fresh = secrets.seal(generate().as_bytes());
            // coalesce: a concurrent first use that committed before us wins, and we read its.
            sqlx::query_scalar(
                "UPDATE tenants SET webhook_secret = coalesce(webhook_secret, $1) \
                 WHERE id = sb_tenant() RETURNING webhook_secret",
            )
            .bind(fresh)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(WebhookSecretError::NoTenant)?
        }
    };
    let plain = secrets.open(&sealed)?;
    let text = String::from_utf8(plain).map_err(|_| SecretsError::Undecryptable)?;
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_hex() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 64);
        assert!(a[PREFIX.len()..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
