//! Dead-letter routes: `GET /api/v1/jobs?status=dead` and `POST /api/v1/jobs/{id}/retry`.

use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;

use super::{list_dead, retry_dead, DeadJob};
use crate::app::AppState;
use crate::http::{ApiError, ApiPath, ApiQuery, TenantAuth};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}/retry", post(retry_job))
}

/// Filters for listing jobs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct JobFilter {
    /// Only `dead` is listable.
    pub status: Option<String>,
    /// Jobs with a smaller id than this.
    pub before: Option<i64>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// List dead-lettered jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobFilter),
    responses((status = 200, body = [DeadJob])), security(("api_key" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(filter): ApiQuery<JobFilter>,
) -> Result<Json<Vec<DeadJob>>, ApiError> {
    if filter.status.as_deref().unwrap_or("dead") != "dead" {
        return Err(ApiError::bad_request(
            "invalid_status",
            "only status=dead can be listed",
        ));
    }
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    let jobs = list_dead(
        &mut tx,
        filter.before,
        filter.limit.unwrap_or(50).clamp(1, 200),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(jobs))
}

/// Put a dead job back in the queue.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 202), (status = 404)), security(("api_key" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.tenant_tx(auth.tenant_id).await?;
    if !retry_dead(&mut tx, id).await? {
        return Err(ApiError::NotFound("dead job"));
    }
    tx.commit().await?;
    state.wake_jobs.notify_one();
    Ok(StatusCode::ACCEPTED)
}
