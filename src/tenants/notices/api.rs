//! Notice routes (tenant key): `GET /api/v1/notices` (newest first, keyset-paginated,
//! `?unacknowledged=true`), `POST /api/v1/notices/{id}/acknowledge`, and
//! `GET/PUT /api/v1/tenant/notifications` (the notification webhook URL).
//!
//! Invariants: everything runs in the caller's tenant transaction, so another tenant's notice is
//! simply not found; a webhook URL is stored only when it is an http(s) URL without credentials
//! that the webhook client's address policy would call.

use axum::{
    extract::State,
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};

use super::db::{self, Notice};
use crate::agent::webhook::check_url;
use crate::app::AppState;
use crate::http::pagination::{decode_cursor, encode_cursor, Page, PageParams};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, TenantAuth};
use crate::ids::NoticeId;

/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2000;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notices", get(list_notices))
        .route("/api/v1/notices/{id}/acknowledge", post(acknowledge_notice))
        .route(
            "/api/v1/tenant/notifications",
            get(get_notifications).put(put_notifications),
        )
}

/// Query of `GET /api/v1/notices`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NoticeFilter {
    /// Only notices nobody has acknowledged yet.
    pub unacknowledged: Option<bool>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// The tenant's notification settings (body and reply of `PUT /api/v1/tenant/notifications`).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// http(s) URL notices are POSTed to as JSON, signed like flows' webhook calls
    /// (`X-Switchboard-Signature`, see `GET /api/v1/tenant/webhook-secret`), with the notice id
    /// in `X-Switchboard-Notice`; null (or omitted) for none.
    pub webhook_url: Option<String>,
}

/// The tenant's notices, newest first.
#[utoipa::path(get, path = "/api/v1/notices", tag = "notices", params(NoticeFilter),
    responses((status = 200, body = Page<Notice>), (status = 400)), security(("api_key" = [])))]
pub async fn list_notices(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(filter): ApiQuery<NoticeFilter>,
) -> Result<Json<Page<Notice>>, ApiError> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let before = page
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|(at, id)| (at, NoticeId(id)));
    let unacknowledged = filter.unacknowledged.unwrap_or(false);
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let data = db::list(&mut tx, unacknowledged, before, page.limit()).await?;
    tx.commit().await?;
    let next_cursor = (data.len() as i64 == page.limit())
        .then(|| data.last().map(|n| encode_cursor(n.created_at, n.id.0)))
        .flatten();
    Ok(Json(Page { data, next_cursor }))
}

/// Acknowledge a notice (again is harmless: the first time is kept).
#[utoipa::path(post, path = "/api/v1/notices/{id}/acknowledge", tag = "notices",
    params(("id" = String, Path, description = "notice id")),
    responses((status = 200, body = Notice), (status = 404)), security(("api_key" = [])))]
pub async fn acknowledge_notice(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<NoticeId>,
) -> Result<Json<Notice>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let notice = db::acknowledge(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("notice"))?;
    tx.commit().await?;
    Ok(Json(notice))
}

/// The tenant's notification webhook.
#[utoipa::path(get, path = "/api/v1/tenant/notifications", tag = "notices",
    responses((status = 200, body = NotificationSettings)), security(("api_key" = [])))]
pub async fn get_notifications(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<NotificationSettings>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let webhook_url = db::webhook_url(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(NotificationSettings { webhook_url }))
}

/// Set or clear the tenant's notification webhook. Notices raised from then on are posted to it
/// (and deliveries still queued go to the URL in force when they run).
#[utoipa::path(put, path = "/api/v1/tenant/notifications", tag = "notices",
    request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), (status = 422)),
    security(("api_key" = [])))]
pub async fn put_notifications(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<NotificationSettings>,
) -> Result<Json<NotificationSettings>, ApiError> {
    let allow_private = state.settings.agent.http_allow_private;
    let webhook_url = body
        .webhook_url
        .as_deref()
        .map(|url| valid_webhook_url(url, allow_private))
        .transpose()
        .map_err(|message| ApiError::unprocessable("invalid_webhook_url", message))?;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    if !db::set_webhook_url(&mut tx, webhook_url.as_deref()).await? {
        return Err(ApiError::NotFound("tenant"));
    }
    tx.commit().await?;
    Ok(Json(NotificationSettings { webhook_url }))
}

/// The URL to store, trimmed, or why it is refused.
pub fn valid_webhook_url(raw: &str, allow_private: bool) -> Result<String, String> {
    let url = raw.trim();
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "webhook_url is longer than {MAX_URL_CHARS} characters"
        ));
    }
    check_url(url, allow_private).map_err(|reason| format!("webhook_url: {reason}"))?;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook_url: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "webhook_url must not carry credentials; check the X-Switchboard-Signature header \
             instead"
                .into(),
        );
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::valid_webhook_url;

    #[test]
    fn webhook_urls_must_be_http_and_public_without_credentials() {
        assert_eq!(
            valid_webhook_url(" https://hooks.example.com/sb ", false).as_deref(),
            Ok("https://hooks.example.com/sb")
        );
        for bad in [
            "",
            "not a url",
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://127.0.0.1:9/x",
            "http://10.0.0.8/x",
            "http://[::1]/x",
            "https://user:pw@example.com/x",
        ] {
            assert!(valid_webhook_url(bad, false).is_err(), "{bad:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2000));
        assert!(valid_webhook_url(&long, false).is_err());
    }

    #[test]
    fn private_addresses_are_allowed_when_the_policy_allows_them() {
        assert!(valid_webhook_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(valid_webhook_url("ftp://127.0.0.1/x", true).is_err());
    }
}
