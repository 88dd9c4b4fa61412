//! Channel routes under `/api/v1/channels` (tenant key).

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{db, db::Channel, ChannelKind};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, ApiPath, TenantAuth};
use crate::ids::ChannelId;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/channels", get(list_channels).post(create_channel))
        .route(
            "/api/v1/channels/{id}",
            get(get_channel)
                .patch(update_channel)
                .delete(delete_channel),
        )
}

/// Body of `POST /api/v1/channels`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// webchat | whatsapp_cloud | twilio | telegram | email | form
    pub kind: ChannelKind,
    /// Display name.
    pub name: String,
    /// Kind-specific settings; `flow` names the flow the bot runs; a `form` channel may list
    /// `redirect_origins` its posts may redirect to.
    #[schema(value_type = Object)]
    pub settings: Option<Value>,
    /// Provider credentials; stored encrypted, never returned.
    #[schema(value_type = Object)]
    pub secrets: Option<Value>,
}

/// Body of `PATCH /api/v1/channels/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    /// New name.
    pub name: Option<String>,
    /// Replacement settings.
    #[schema(value_type = Object)]
    pub settings: Option<Value>,
    /// Enable or disable routing.
    pub enabled: Option<bool>,
}

fn check_settings(settings: &Value) -> Result<(), ApiError> {
    if !settings.is_object() {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            "settings must be a JSON object",
        ));
    }
    Ok(())
}

/// Create a channel.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = CreateChannel,
    responses((status = 201, body = Channel)), security(("api_key" = [])))]
pub async fn create_channel(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name must be 1-200 characters",
        ));
    }
    let settings = body.settings.unwrap_or_else(|| serde_json::json!({}));
    check_settings(&settings)?;
    let secrets = body
        .secrets
        .map(|s| serde_json::to_vec(&s).map(|plain| state.secrets.seal(&plain)))
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let channel = db::insert(&mut tx, auth.tenant_id, body.kind, name, &settings, secrets).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// List channels.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels",
    responses((status = 200, body = [Channel])), security(("api_key" = [])))]
pub async fn list_channels(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<Vec<Channel>>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let channels = db::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(channels))
}

/// Read a channel.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = Channel), (status = 404)), security(("api_key" = [])))]
pub async fn get_channel(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ChannelId>,
) -> Result<Json<Channel>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let channel = db::get(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    tx.commit().await?;
    Ok(Json(channel))
}

/// Update a channel.
#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", request_body = UpdateChannel,
    params(("id" = String, Path, description = "channel id")),
    responses((status = 200, body = Channel), (status = 404)), security(("api_key" = [])))]
pub async fn update_channel(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ChannelId>,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> Result<Json<Channel>, ApiError> {
    if let Some(settings) = &body.settings {
        check_settings(settings)?;
    }
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let channel = db::update(
        &mut tx,
        id,
        body.name.as_deref(),
        body.settings.as_ref(),
        body.enabled,
    )
    .await?
    .ok_or(ApiError::NotFound("channel"))?;
    tx.commit().await?;
    state.channels.invalidate(&channel.public_key);
    Ok(Json(channel))
}

/// Delete a channel and its conversations.
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels",
    params(("id" = String, Path, description = "channel id")),
    responses((status = 204), (status = 404)), security(("api_key" = [])))]
pub async fn delete_channel(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ChannelId>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let key = db::delete(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("channel"))?;
    tx.commit().await?;
    state.channels.invalidate(&key);
    Ok(StatusCode::NO_CONTENT)
}
