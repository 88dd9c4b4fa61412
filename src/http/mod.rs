//! Shared HTTP pieces: the error type, extractors (API keys, JSON with JSON errors), health and
//! metrics endpoints, request metrics, and the OpenAPI document. Feature routes live in their
//! feature modules.

pub mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod pagination;

pub use error::ApiError;
pub use extract::{AdminAuth, ApiJson, ApiPath, ApiQuery, TenantAuth};
