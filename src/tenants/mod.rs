//! Tenants: the businesses sharing a deployment, their settings, their secrets at rest
//! (provider tokens, and the webhook secret flows sign their calls with), and the notices they
//! are sent about their account.

pub mod api;
pub mod db;
pub mod notices;
pub mod secrets;
pub mod webhook_secret;
