//! Extractors: callers authenticated by API key, and JSON/path/query extraction whose failures are
//! rendered in the one JSON error shape.

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        FromRequest, FromRequestParts,
    },
    http::{request::Parts, StatusCode},
};

use super::ApiError;
use crate::app::AppState;
use crate::auth::api_keys::{self, KeyPrincipal};
use crate::ids::TenantId;

/// A request made with a tenant API key.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    /// The key's tenant.
    pub tenant_id: TenantId,
    /// The key.
    pub key: KeyPrincipal,
}

/// A request made with a platform admin key.
#[derive(Debug, Clone)]
pub struct AdminAuth(pub KeyPrincipal);

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get("x-api-key") {
        return value.to_str().ok();
    }
    let auth = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    auth.strip_prefix("Bearer ").map(str::trim)
}

async fn principal(parts: &Parts, state: &AppState) -> Result<KeyPrincipal, ApiError> {
    let key = presented_key(parts).ok_or(ApiError::Unauthorized)?;
    let found = api_keys::lookup(&state.db.system, key).await?;
    found.ok_or_else(|| {
        tracing::info!(prefix = %key.chars().take(10).collect::<String>(), "unknown or revoked API key");
        ApiError::Unauthorized
    })
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = principal(parts, state).await?;
        let tenant_id = key.tenant_id.ok_or_else(|| {
            ApiError::Forbidden("an admin key has no tenant; use a tenant key".into())
        })?;
        Ok(Self { tenant_id, key })
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = principal(parts, state).await?;
        if !key.is_admin() {
            return Err(ApiError::Forbidden(
                "this endpoint needs an admin key".into(),
            ));
        }
        Ok(Self(key))
    }
}

/// JSON body whose rejections are JSON errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Path parameters whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters whose rejections are JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(rejection.body_text());
        }
        match rejection {
            JsonRejection::JsonDataError(e) => {
                ApiError::unprocessable("invalid_body", e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => {
                ApiError::bad_request("unsupported_media_type", e.body_text())
            }
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request("invalid_json", e.body_text())
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}
