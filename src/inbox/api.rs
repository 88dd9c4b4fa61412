//! Conversation and message routes under `/api/v1/conversations` (tenant key).

use axum::{extract::State, routing::get, Json, Router};
use serde::Deserialize;

use super::db::{self, ConversationView};
use super::MessageView;
use crate::app::AppState;
use crate::http::pagination::{decode_cursor, encode_cursor, Page, PageParams};
use crate::http::{ApiError, ApiPath, ApiQuery, TenantAuth};
use crate::ids::ConversationId;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/conversations", get(list_conversations))
        .route("/api/v1/conversations/{id}", get(get_conversation))
        .route("/api/v1/conversations/{id}/messages", get(list_messages))
}

/// Filters for listing conversations.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConversationFilter {
    /// open | handoff | closed
    pub status: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// List conversations, most recent activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    params(ConversationFilter),
    responses((status = 200, body = Page<ConversationView>)), security(("api_key" = [])))]
pub async fn list_conversations(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(filter): ApiQuery<ConversationFilter>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    if let Some(status) = filter.status.as_deref() {
        if !["open", "handoff", "closed"].contains(&status) {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status must be open, handoff or closed",
            ));
        }
    }
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let before = page
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|(at, id)| (at, ConversationId(id)));
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let data =
        db::list_conversations(&mut tx, filter.status.as_deref(), before, page.limit()).await?;
    tx.commit().await?;
    let next_cursor = (data.len() as i64 == page.limit())
        .then(|| {
            data.last()
                .map(|c| encode_cursor(c.last_message_at, c.id.0))
        })
        .flatten();
    Ok(Json(Page { data, next_cursor }))
}

/// Read a conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    responses((status = 200, body = ConversationView), (status = 404)), security(("api_key" = [])))]
pub async fn get_conversation(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ConversationId>,
) -> Result<Json<ConversationView>, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let conversation = db::get_conversation(&mut tx, id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    tx.commit().await?;
    Ok(Json(conversation))
}

/// Paging through messages by sequence number.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MessageFilter {
    /// Only messages with a greater sequence number (default 0: from the start).
    pub after_seq: Option<i64>,
    /// Items per page, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// Messages of a conversation, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "conversation id"), MessageFilter),
    responses((status = 200, body = Page<MessageView>), (status = 404)), security(("api_key" = [])))]
pub async fn list_messages(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(filter): ApiQuery<MessageFilter>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let limit = filter.limit.unwrap_or(100).clamp(1, 500);
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    if db::get_conversation(&mut tx, id).await?.is_none() {
        return Err(ApiError::NotFound("conversation"));
    }
    let data = db::messages_after(&mut tx, id, filter.after_seq.unwrap_or(0), limit).await?;
    tx.commit().await?;
    let next_cursor = (data.len() as i64 == limit)
        .then(|| data.last().map(|m| m.seq.to_string()))
        .flatten();
    Ok(Json(Page { data, next_cursor }))
}
