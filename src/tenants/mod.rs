//! Tenants: the businesses sharing a deployment, their settings, and their secrets at rest
//! (provider tokens, and the webhook secret flows sign their calls with).

pub mod api;
pub mod db;
pub mod secrets;
pub mod webhook_secret;
