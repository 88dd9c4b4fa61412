//! Agent logins: the human agents of a tenant.

use sqlx::PgConnection;

use super::passwords::{hash_password, PasswordError};
use crate::ids::{AgentId, TenantId};

/// Why an agent could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad password.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Not an email address.
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    /// Database failure (e.g. the email is taken).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Create an agent, or reset the password and name of the existing one with that email.
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
    display_name: &str,
    password: &str,
    role: &str,
) -> Result<AgentId, AgentError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(AgentError::BadEmail(email));
    }
    let hash = hash_password(password)?;
    let id: AgentId = sqlx::query_scalar(
        "INSERT INTO agents (id, tenant_id, email, display_name, password_hash, role) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, email) DO UPDATE SET display_name = EXCLUDED.display_name, \
            password_hash = EXCLUDED.password_hash, role = EXCLUDED.role \
         RETURNING id",
    )
    .bind(AgentId::new())
    .bind(tenant)
    .bind(&email)
    .bind(display_name)
    .bind(hash)
    .bind(role)
    .fetch_one(conn)
    .await?;
    Ok(id)
}
