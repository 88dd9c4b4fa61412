//! Tenant routes: `POST/GET /api/v1/tenants` (admin key), `GET /api/v1/tenant` and
//! `GET /api/v1/tenant/webhook-secret` (tenant key).

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::{Deserialize, Serialize};

use secrecy::ExposeSecret;

use super::db::{self, Tenant};
use super::webhook_secret::{self, WebhookSecretError};
use crate::app::AppState;
use crate::auth::api_keys::{self, SCOPE_TENANT};
use crate::http::{error::ResultExt, AdminAuth, ApiError, ApiJson, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants", get(list_tenants).post(create_tenant))
        .route("/api/v1/tenant", get(current_tenant))
        .route("/api/v1/tenant/webhook-secret", get(webhook_secret))
}

/// Body of `POST /api/v1/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// URL-safe unique name: lowercase letters, digits, dashes (2-63).
    pub slug: String,
    /// Business name.
    pub name: String,
    /// IANA time zone, default UTC.
    pub timezone: Option<String>,
}

/// A created tenant with its first API key (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// A tenant-scoped API key. Store it: it is not shown again.
    pub api_key: String,
}

/// Create a tenant and its first API key.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = 409, description = "slug taken")),
    security(("api_key" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let timezone = body.timezone.unwrap_or_else(|| "UTC".into());
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::unprocessable(
            "invalid_timezone",
            format!("unknown time zone {timezone:?}"),
        ));
    }
    if !valid_slug(&body.slug) {
        return Err(ApiError::unprocessable(
            "invalid_slug",
            "slug must be 2-63 characters of lowercase letters, digits and dashes",
        ));
    }
    let mut tx = state.db.system.begin().await?;
    let tenant = db::create(&mut *tx, &body.slug, body.name.trim(), &timezone)
        .await
        .on_constraint("tenants_slug_key", || ApiError::Conflict {
            code: "slug_taken",
            message: format!("a tenant with slug {:?} exists", body.slug),
        })?;
    let key = api_keys::create(&mut *tx, Some(tenant.id), "initial", &[SCOPE_TENANT]).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant,
            api_key: key.plain,
        }),
    ))
}

/// List all tenants.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = [Tenant])), security(("api_key" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(db::list(&state.db.system).await?))
}

/// The tenant the API key belongs to.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenants",
    responses((status = 200, body = Tenant)), security(("api_key" = [])))]
pub async fn current_tenant(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Tenant>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let tenant = db::current(&mut tx)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    tx.commit().await?;
    Ok(Json(tenant))
}

/// The key flows' webhook calls are signed with, and how.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    /// The secret (`whsec_…`); the whole string is the HMAC key.
    pub secret: String,
    /// The header carrying the signature.
    pub header: &'static str,
    /// How the signature is made.
    pub scheme: &'static str,
}

/// The tenant's webhook secret (created on first use): `http` flow states sign each request with
/// it, so the business can check a request came from its Switchboard.
#[utoipa::path(get, path = "/api/v1/tenant/webhook-secret", tag = "tenants",
    responses((status = 200, body = WebhookSecret)), security(("api_key" = [])))]
pub async fn webhook_secret(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<WebhookSecret>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let secret = webhook_secret::get_or_create(&mut tx, &state.secrets)
        .await
        .map_err(|e| match e {
            WebhookSecretError::Database(db) => ApiError::Database(db),
            WebhookSecretError::NoTenant => ApiError::NotFound("tenant"),
            other => ApiError::Internal(other.into()),
        })?;
    tx.commit().await?;
    Ok(Json(WebhookSecret {
        secret: secret.expose_secret().to_string(),
        header: crate::agent::webhook::SIGNATURE_HEADER,
        scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" keyed with the secret>",
    }))
}

/// Whether a slug is acceptable (mirrors the table's CHECK).
pub fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::valid_slug;

    #[test]
    fn slugs_follow_the_table_rule() {
        assert!(valid_slug("smile-dental"));
        assert!(valid_slug("a1"));
        assert!(!valid_slug("A1"));
        assert!(!valid_slug("-ab"));
        assert!(!valid_slug("x"));
        assert!(!valid_slug("has space"));
    }
}
