//! The web-chat channel: the embeddable widget (`/widget.js`), the demo page, and the WebSocket
//! (`/webchat/v1/ws`) the widget talks to.
//!
//! A visitor is identified by a random visitor token the widget keeps in `localStorage`; only a
//! SHA-256 of it is stored (as the contact identity's address), so the token itself is a bearer
//! credential for that visitor's conversation and nothing else.

mod assets;
mod delivered;
mod protocol;
mod session;
mod visitor;

use axum::{routing::get, Router};

use crate::app::AppState;

pub use protocol::{ClientFrame, ServerFrame, WidgetMessage};

/// Routes of the web-chat channel.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webchat/v1/ws", get(session::upgrade))
        .route("/widget.js", get(assets::widget_js))
        .route("/demo/{channel_key}", get(assets::demo_page))
}
