//! The one error type at the HTTP edge. Every failure becomes
//! `{"error": {"code": "...", "message": "...", "details": ...}}` with a fitting status; database
//! and internal errors are logged in full and returned opaque.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

/// An error returned by an HTTP handler.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a machine-readable code.
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `invalid_json`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
        /// Optional structured details (e.g. validation problems).
        details: Option<Value>,
    },
    /// 401: missing or wrong credentials.
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: conflicts with existing state.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// 413.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 422: well-formed but invalid.
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Structured details.
        details: Option<Value>,
    },
    /// 429.
    #[error("too many requests")]
    RateLimited,
    /// 503: a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a database failure (logged, not shown).
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// 500: anything else unexpected (logged, not shown).
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A 422 with a code and message.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
            details: None,
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<&Value>) {
        match self {
            Self::BadRequest { code, details, .. } => {
                (StatusCode::BAD_REQUEST, code, details.as_ref())
            }
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            Self::Unprocessable { code, details, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, details.as_ref())
            }
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            Self::Database(_) | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        }
    }
}

/// Build the JSON error body.
pub fn error_body(code: &str, message: &str, details: Option<&Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(details) = details {
        error["details"] = details.clone();
    }
    json!({ "error": error })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, details) = self.parts();
        match &self {
            Self::Database(e) => tracing::error!(error = %e, "database error in request"),
            Self::Internal(e) => tracing::error!(error = ?e, "internal error in request"),
            other => tracing::info!(%status, code, reason = %other, "request rejected"),
        }
        let body = error_body(code, &self.to_string(), details);
        (status, Json(body)).into_response()
    }
}

/// Map a unique/foreign-key violation on a named constraint to a conflict.
pub trait ResultExt<T> {
    /// When the error is a violation of `constraint`, return `f()` instead.
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> ResultExt<T> for Result<T, E> {
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|e| match e.into() {
            ApiError::Database(sqlx::Error::Database(db))
                if db.constraint() == Some(constraint) =>
            {
                f()
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_message_and_optional_details() {
        let body = error_body("invalid_json", "bad", None);
        assert_eq!(body["error"]["code"], "invalid_json");
        assert!(body["error"].get("details").is_none());
        let body = error_body("x", "y", Some(&json!([1])));
        assert_eq!(body["error"]["details"][0], 1);
    }

    #[test]
    fn internal_errors_are_opaque() {
        let err = ApiError::Internal(anyhow::anyhow!("secret detail"));
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.parts().0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
