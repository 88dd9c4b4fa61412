//! Tenants: the businesses sharing a deployment, their settings, and their secrets at rest.

pub mod api;
pub mod db;
pub mod secrets;
