//! API keys. A key is `sb_` + 40 random base62 characters; only its SHA-256 is stored, so a
//! database leak reveals no usable key. Keys carry scopes: `admin` (platform administration,
//! tenant_id NULL) or `tenant` (everything within one tenant).

use rand::{distributions::Alphanumeric, Rng};
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;

use crate::ids::{ApiKeyId, TenantId};

/// Scope of a platform administrator key.
pub const SCOPE_ADMIN: &str = "admin";
/// Scope of a tenant key.
pub const SCOPE_TENANT: &str = "tenant";

/// A newly created key: the only time the plain text exists.
#[derive(Debug)]
pub struct NewApiKey {
    /// Row id.
    pub id: ApiKeyId,
    /// The key to hand to the user.
    pub plain: String,
}

/// Who a presented key belongs to.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    /// Key id.
    pub key_id: ApiKeyId,
    /// The tenant, or None for admin keys.
    pub tenant_id: Option<TenantId>,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl KeyPrincipal {
    /// Whether this key may administer the platform.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == SCOPE_ADMIN)
    }
}

/// SHA-256 of a key's text.
pub fn hash_key(plain: &str) -> Vec<u8> {
    Sha256::digest(plain.as_bytes()).to_vec()
}

/// Generate a new key's text.
pub fn generate_key() -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("sb_{body}")
}

/// Insert a key. Use the system pool for admin keys (tenant None), a tenant transaction otherwise.
pub async fn create(
    executor: impl PgExecutor<'_>,
    tenant: Option<TenantId>,
    name: &str,
    scopes: &[&str],
) -> Result<NewApiKey, sqlx::Error> {
    let id = ApiKeyId::new();
    let plain = generate_key();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tenant)
    .bind(name)
    .bind(&plain[..10])
    .bind(hash_key(&plain))
    .bind(&scopes)
    .execute(executor)
    .await?;
    Ok(NewApiKey { id, plain })
}

/// Resolve a presented key (system pool: the tenant is not known yet). Revoked keys resolve to None.
pub async fn lookup(
    system: impl PgExecutor<'_>,
    plain: &str,
) -> Result<Option<KeyPrincipal>, sqlx::Error> {
    if !plain.starts_with("sb_") || plain.len() != 43 {
        return Ok(None);
    }
    // One round trip; `last_used_at` is written at most once a minute per key, so API traffic
    // does not turn every request into a write.
    let row: Option<(ApiKeyId, Option<TenantId>, Vec<String>)> = sqlx::query_as(
        "WITH k AS ( \
           SELECT id, tenant_id, scopes, last_used_at FROM api_keys \
           WHERE key_hash = $1 AND revoked_at IS NULL), \
         touched AS ( \
           UPDATE api_keys a SET last_used_at = now() FROM k \
           WHERE a.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds')) \
         SELECT id, tenant_id, scopes FROM k",
    )
    .bind(hash_key(plain))
    .fetch_optional(system)
    .await?;
    Ok(row.map(|(key_id, tenant_id, scopes)| KeyPrincipal {
        key_id,
        tenant_id,
        scopes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate_key();
        assert!(key.starts_with("sb_"));
        assert_eq!(key.len(), 43);
        assert_ne!(key, generate_key());
    }

    #[test]
    fn hashing_is_stable_and_distinct() {
        assert_eq!(hash_key("a"), hash_key("a"));
        assert_ne!(hash_key("a"), hash_key("b"));
    }
}
