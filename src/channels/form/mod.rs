//! The public form channel: `POST /api/v1/public/forms/{channel_key}`, where a business's
//! "contact us" form posts (JSON or an HTML form's `application/x-www-form-urlencoded`), with no
//! API key: the `form` channel's public key names the tenant.
//!
//! A submission goes through the same group-committed ingest as every channel: contact (the
//! email is the identity), conversation, inbound message and `agent_turn` job are durable before
//! the 201 answer. Invariants: nothing is stored for a filled honeypot (answered 202 so bots learn
//! nothing); a `client_id` makes the post idempotent (the same sender and key give the same
//! message, stored once); a redirect goes only to an origin the channel's `redirect_origins`
//! setting lists; browsers may post from any origin (CORS), since the key is public anyway.

mod input;

use std::time::Duration;

use axum::{
    extract::{rejection::FormRejection, DefaultBodyLimit, FromRequest, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Form, Json, Router,
};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::cors::{Any, CorsLayer};

use super::{db as channels_db, ChannelKind, ChannelRoute};
use crate::app::AppState;
use crate::http::error::error_body;
use crate::http::{ApiError, ApiPath};
use crate::ids::{ConversationId, MessageId};
use crate::inbox::{Accepted, Inbound, IngestError, SenderIdentity};

use input::{Checked, Submission};
pub use input::{FormFields, MAX_MESSAGE_CHARS};

/// Largest form body, in bytes.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Routes of the form channel.
pub fn router() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(24 * 3600));
    Router::new()
        .route("/api/v1/public/forms/{channel_key}", post(submit_form))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(cors)
}

/// The answer to an accepted post.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FormAccepted {
    /// The conversation the message joined (or opened).
    pub conversation_id: ConversationId,
    /// The stored message.
    pub message_id: MessageId,
    /// True when this repeated a `client_id` already stored.
    pub duplicate: bool,
}

/// A form failure: the API's errors, plus 415 for a body that is neither JSON nor a form.
#[derive(Debug)]
enum FormError {
    Api(ApiError),
    UnsupportedMediaType,
}

impl From<ApiError> for FormError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<sqlx::Error> for FormError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for FormError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::UnsupportedMediaType => {
                let body = error_body(
                    "unsupported_media_type",
                    "post application/json or application/x-www-form-urlencoded",
                    None,
                );
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
            }
        }
    }
}

/// Submit a public form: becomes a contact, a conversation and an inbound message.
#[utoipa::path(post, path = "/api/v1/public/forms/{channel_key}", tag = "public",
    params(("channel_key" = String, Path, description = "public key of a `form` channel")),
    request_body(content(
        (FormFields = "application/json"),
        (FormFields = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, body = FormAccepted, description = "stored; the bot's turn is queued"),
        (status = 202, description = "accepted, not stored (honeypot)"),
        (status = 303, description = "stored; redirected to `redirect_to`"),
        (status = 404, description = "no such form channel"),
        (status = 413, description = "body over 64 KiB"),
        (status = 415, description = "neither JSON nor a urlencoded form"),
        (status = 422, description = "invalid fields (every problem in `details`)"),
    ))]
pub async fn submit_form(
    State(state): State<AppState>,
    ApiPath(channel_key): ApiPath<String>,
    request: Request,
) -> Response {
    match submit(&state, &channel_key, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn submit(state: &AppState, key: &str, request: Request) -> Result<Response, FormError> {
    let route = match state.channels.resolve(&state.db.system, key).await? {
        Some(route) if route.kind == ChannelKind::Form => route,
        _ => return Err(ApiError::NotFound("form channel").into()),
    };
    let fields = parse_body(request).await?;
    let submission = match input::check(fields) {
        Ok(Checked::Valid(submission)) => submission,
        Ok(Checked::Spam) => {
            tracing::info!(channel = %route.channel_id, "form honeypot filled; nothing stored");
            return Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": true }))).into_response());
        }
        Err(problems) => return Err(invalid(&problems).into()),
    };
    let redirect = match &submission.redirect_to {
        Some(url) => Some(checked_redirect(state, &route, url).await?),
        None => None,
    };
    let accepted = store(state, &route, &submission).await?;
    if !accepted.duplicate {
        if let Err(error) = remember_contact(state, &route, &submission, &accepted).await {
            // The message is stored; the contact's email column is a convenience copy.
            tracing::warn!(%error, conversation = %accepted.conversation_id, "form contact details not saved");
        }
    }
    let body = FormAccepted {
        conversation_id: accepted.conversation_id,
        message_id: accepted.message_id,
        duplicate: accepted.duplicate,
    };
    Ok(match redirect {
        Some(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        None => (StatusCode::CREATED, Json(body)).into_response(),
    })
}

/// The body as fields, by content type.
async fn parse_body(request: Request) -> Result<FormFields, FormError> {
    let essence = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Json::<FormFields>::from_request(request, &())
            .await
            .map(|Json(fields)| fields)
            .map_err(|rejection| ApiError::from(rejection).into()),
        Some("application/x-www-form-urlencoded") => Form::<FormFields>::from_request(request, &())
            .await
            .map(|Form(fields)| fields)
            .map_err(form_rejection),
        _ => Err(FormError::UnsupportedMediaType),
    }
}

fn form_rejection(rejection: FormRejection) -> FormError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(rejection.body_text()).into();
    }
    match rejection {
        FormRejection::InvalidFormContentType(_) => FormError::UnsupportedMediaType,
        FormRejection::FailedToDeserializeForm(e) => {
            ApiError::unprocessable("invalid_body", e.body_text()).into()
        }
        FormRejection::FailedToDeserializeFormBody(e) => {
            ApiError::unprocessable("invalid_body", e.body_text()).into()
        }
        other => ApiError::bad_request("invalid_body", other.body_text()).into(),
    }
}

fn invalid(problems: &[input::Problem]) -> ApiError {
    let first = problems.first();
    ApiError::Unprocessable {
        code: first.map_or("invalid_form", |p| p.code),
        message: first.map_or_else(|| "invalid form".into(), |p| p.message.clone()),
        details: Some(json!(problems
            .iter()
            .map(|p| json!({"field": p.field, "code": p.code, "message": p.message}))
            .collect::<Vec<_>>())),
    }
}

/// The redirect target when its origin is allowed by the channel's `redirect_origins`.
async fn checked_redirect(
    state: &AppState,
    route: &ChannelRoute,
    url: &str,
) -> Result<HeaderValue, FormError> {
    let mut tx = state.db.tenant_tx(route.tenant_id).await?;
    let channel = channels_db::get(&mut tx, route.channel_id).await?;
    tx.commit().await?;
    let allowed: Vec<String> = channel
        .and_then(|c| c.settings.get("redirect_origins").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let not_allowed = || {
        ApiError::unprocessable(
            "redirect_not_allowed",
            "redirect_to's origin is not in this form channel's redirect_origins",
        )
    };
    if !input::redirect_allowed(url, &allowed) {
        return Err(not_allowed().into());
    }
    HeaderValue::from_str(url).map_err(|_| not_allowed().into())
}

/// Ingest the submission as an inbound message from the sender's email.
async fn store(
    state: &AppState,
    route: &ChannelRoute,
    submission: &Submission,
) -> Result<Accepted, FormError> {
    let external_id = match &submission.client_id {
        // Scoped to the sender, so two senders whose pages reuse a key never share a message.
        Some(id) => {
            let sender = hex::encode(Sha256::digest(submission.email.as_bytes()));
            format!("form:{}:{id}", &sender[..16])
        }
        None => format!("form:{}", uuid::Uuid::now_v7()),
    };
    let inbound = Inbound {
        tenant_id: route.tenant_id,
        channel_id: route.channel_id,
        sender: SenderIdentity {
            address: submission.email.clone(),
            display_name: submission.name.clone(),
        },
        external_id,
        body: submission.message.clone(),
        content: submission.content(),
        received_at: Utc::now(),
        open_as: None,
    };
    state.ingest.ingest(inbound).await.map_err(|error| {
        match error {
            IngestError::Invalid(reason) => ApiError::unprocessable("invalid_message", reason),
            other => {
                tracing::warn!(error = %other, "form submission not stored");
                ApiError::Unavailable("the message was not stored; try again".into())
            }
        }
        .into()
    })
}

/// Copy the email and phone onto the contact (ingest knows only the identity and name).
async fn remember_contact(
    state: &AppState,
    route: &ChannelRoute,
    submission: &Submission,
    accepted: &Accepted,
) -> Result<(), sqlx::Error> {
    let mut tx = state.db.tenant_tx(route.tenant_id).await?;
    sqlx::query(
        "UPDATE contacts SET email = coalesce(email, $2), phone = coalesce($3, phone), \
            display_name = coalesce(display_name, $4), updated_at = now() \
         WHERE id = (SELECT contact_id FROM conversations WHERE id = $1)",
    )
    .bind(accepted.conversation_id)
    .bind(&submission.email)
    .bind(&submission.phone)
    .bind(&submission.name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
