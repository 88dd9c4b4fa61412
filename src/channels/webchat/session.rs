//! One widget connection: hello → ready → history replay → live messages and visitor sends.
//!
//! Delivery to the widget is at-least-once with dedupe by sequence number: the session subscribes
//! to the conversation before reading history, then forwards live events it has not sent yet, so
//! nothing committed between the two is missed. A visitor without a conversation yet offers the
//! id their first message should open it as (`Inbound::open_as`) and subscribes to it before
//! sending: when the message opens it, every event after the commit is already covered and no
//! history is read. Bad frames get an error frame and the session continues; only an unknown
//! channel or a dead socket ends it.

use std::time::Duration;

use axum::{
    extract::{
        ws::{Message, WebSocket},
        State, WebSocketUpgrade,
    },
    response::Response,
};
use chrono::Utc;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use super::delivered::Delivered;
use super::protocol::{valid_client_id, ClientFrame, ServerFrame, WidgetMessage};
use super::visitor;
use crate::app::AppState;
use crate::bus::{EventKind, Subscription};
use crate::channels::{ChannelKind, ChannelRoute};
use crate::ids::ConversationId;
use crate::inbox::{db as inbox_db, Inbound, IngestError, MessageView, SenderIdentity};

const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
const PING_EVERY: Duration = Duration::from_secs(25);
const MAX_FRAME_BYTES: usize = 64 * 1024;
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /webchat/v1/ws`
pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    // Widget frames are small. The default 128 KiB read buffer is zero-filled on every read, which
    // was a quarter of the server's CPU under load (measured with perf).
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            metrics::gauge!("websocket_connections", "kind" => "webchat").increment(1.0);
            run(socket, state).await;
            metrics::gauge!("websocket_connections", "kind" => "webchat").decrement(1.0);
        })
}

struct Session {
    state: AppState,
    route: ChannelRoute,
    address: String,
    conversation: Option<ConversationId>,
    /// The id offered for the conversation the next message opens, already subscribed to, while
    /// the visitor has none.
    proposed: Option<ConversationId>,
    subscription: Option<Subscription>,
    delivered: Delivered,
}

async fn run(mut socket: WebSocket, state: AppState) {
    let span = tracing::info_span!(
        "webchat",
        tenant = tracing::field::Empty,
        channel = tracing::field::Empty,
        conversation = tracing::field::Empty
    );
    run_in(&mut socket, state).instrument(span).await;
}

async fn run_in(socket: &mut WebSocket, state: AppState) {
    let Some(mut session) = handshake(socket, &state).await else {
        return;
    };
    let span = tracing::Span::current();
    span.record("tenant", tracing::field::display(session.route.tenant_id));
    span.record("channel", tracing::field::display(session.route.channel_id));
    if let Some(conversation) = session.conversation {
        span.record("conversation", tracing::field::display(conversation));
    }
    tracing::debug!("web-chat session ready");
    if session.replay(socket).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let stop = state.stop.clone();
    loop {
        // Biased: what is due to the visitor goes out before the next frame is read. With a fair
        // choice a visitor sending faster than its messages commit would read frames ahead of
        // the events each one produces, fall behind the bus and force history replays.
        let outcome = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            event = next_event(&mut session.subscription) => session.on_event(socket, event).await,
            frame = socket.recv() => match frame {
                Some(Ok(frame)) => session.on_frame(socket, frame).await,
                _ => break,
            },
            _ = ping.tick() => socket.send(Message::Ping(Default::default())).await.map_err(|_| ()),
        };
        if outcome.is_err() {
            break;
        }
    }
}

async fn next_event(
    sub: &mut Option<Subscription>,
) -> Result<std::sync::Arc<crate::bus::Event>, RecvError> {
    match sub {
        Some(sub) => sub.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), ()> {
    let text = serde_json::to_string(frame).map_err(|_| ())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ())
}

async fn handshake(socket: &mut WebSocket, state: &AppState) -> Option<Session> {
    loop {
        let frame = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
            .await
            .ok()??
            .ok()?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                send(
                    socket,
                    &ServerFrame::error("bad_frame", "frames must be JSON text"),
                )
                .await
                .ok()?;
                continue;
            }
        };
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Hello {
                channel_key,
                visitor_token,
                after_seq,
            }) => {
                return open(socket, state, &channel_key, visitor_token, after_seq).await;
            }
            Ok(ClientFrame::Send { .. }) => {
                send(socket, &ServerFrame::error("not_ready", "send hello first"))
                    .await
                    .ok()?;
            }
            Err(e) => {
                tracing::info!(reason = %e, "bad web-chat frame before hello");
                send(socket, &ServerFrame::error("bad_frame", e.to_string()))
                    .await
                    .ok()?;
            }
        }
    }
}

async fn open(
    socket: &mut WebSocket,
    state: &AppState,
    channel_key: &str,
    token: Option<String>,
    after_seq: Option<i64>,
) -> Option<Session> {
    let route = match state.channels.resolve(&state.db.system, channel_key).await {
        Ok(Some(route)) if route.kind == ChannelKind::Webchat => route,
        Ok(_) => {
            tracing::info!(channel_key, "web-chat hello for unknown channel");
            let _ = send(
                socket,
                &ServerFrame::error("unknown_channel", "no such web-chat channel"),
            )
            .await;
            let _ = socket.send(Message::Close(None)).await;
            return None;
        }
        Err(error) => {
            tracing::error!(%error, "resolving web-chat channel failed");
            let _ = send(
                socket,
                &ServerFrame::error("unavailable", "try again shortly"),
            )
            .await;
            return None;
        }
    };
    let token = token
        .filter(|t| visitor::is_well_formed(t))
        .unwrap_or_else(visitor::new_token);
    let address = visitor::address_of(&token);
    let conversation = find_conversation(state, &route, &address).await.ok()?;
    let ready = ServerFrame::Ready {
        visitor_token: token,
        conversation_id: conversation,
    };
    send(socket, &ready).await.ok()?;
    let mut session = Session {
        state: state.clone(),
        route,
        address,
        conversation: None,
        proposed: None,
        subscription: None,
        delivered: Delivered::after(after_seq.unwrap_or(0)),
    };
    if let Some(id) = conversation {
        session.follow(id);
    }
    Some(session)
}

async fn find_conversation(
    state: &AppState,
    route: &ChannelRoute,
    address: &str,
) -> Result<Option<ConversationId>, sqlx::Error> {
    let mut tx = state.db.tenant_tx(route.tenant_id).await?;
    let found =
        inbox_db::latest_conversation_for_identity(&mut tx, route.channel_id, address).await?;
    tx.commit().await?;
    Ok(found)
}

impl Session {
    fn follow(&mut self, conversation: ConversationId) {
        if self.conversation.is_some_and(|old| old != conversation) {
            // Sequence numbers are per conversation: start over for the new one.
            self.delivered = Delivered::after(0);
        }
        self.conversation = Some(conversation);
        self.proposed = None;
        tracing::Span::current().record("conversation", tracing::field::display(conversation));
        self.subscription = Some(self.state.hub.subscribe_conversation(conversation));
    }

    /// For a visitor without a conversation: the id their next message should open one as,
    /// subscribed to from now on, so an event published once that message commits (the bot's
    /// reply, from any node) is received without a history read. None once they have one.
    fn propose(&mut self) -> Option<ConversationId> {
        if self.conversation.is_some() {
            return None;
        }
        if self.proposed.is_none() {
            let id = ConversationId::new();
            self.subscription = Some(self.state.hub.subscribe_conversation(id));
            self.proposed = Some(id);
        }
        self.proposed
    }

    /// Takes the conversation opened as proposed: the subscription already covers it.
    fn adopt(&mut self, conversation: ConversationId) {
        self.conversation = Some(conversation);
        self.proposed = None;
        self.delivered = Delivered::after(0);
        tracing::Span::current().record("conversation", tracing::field::display(conversation));
    }

    /// Send every stored message not sent yet, from the delivery watermark on, a page at a time
    /// until caught up.
    async fn replay(&mut self, socket: &mut WebSocket) -> Result<(), ()> {
        let Some(conversation) = self.conversation else {
            return Ok(());
        };
        let page = self.state.settings.webchat.history_limit.max(1);
        let mut from = self.delivered.through();
        loop {
            let rows = self
                .history_page(conversation, from, page)
                .await
                .map_err(|error| tracing::warn!(%error, "loading web-chat history failed"))?;
            for message in &rows {
                self.deliver(socket, message).await?;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == page => from = last.seq,
                _ => return Ok(()),
            }
        }
    }

    async fn history_page(
        &self,
        conversation: ConversationId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageView>, sqlx::Error> {
        let mut tx = self.state.db.tenant_tx(self.route.tenant_id).await?;
        let rows = inbox_db::messages_after(&mut tx, conversation, after, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn deliver(&mut self, socket: &mut WebSocket, message: &MessageView) -> Result<(), ()> {
        if !self.delivered.mark(message.seq) {
            return Ok(());
        }
        let frame = ServerFrame::Message {
            message: WidgetMessage::from(message),
        };
        send(socket, &frame).await
    }

    async fn on_event(
        &mut self,
        socket: &mut WebSocket,
        event: Result<std::sync::Arc<crate::bus::Event>, RecvError>,
    ) -> Result<(), ()> {
        match event {
            Ok(event) => match &event.kind {
                EventKind::MessageCreated { message } => self.deliver(socket, message).await,
                EventKind::ConversationUpdated { .. } => Ok(()),
                EventKind::ReplyDraft {
                    draft_id,
                    text,
                    discarded,
                } => {
                    let frame = ServerFrame::Draft {
                        draft_id: *draft_id,
                        text: text.clone(),
                        discarded: *discarded,
                    };
                    send(socket, &frame).await
                }
            },
            // Fell behind: the database has everything.
            Err(RecvError::Lagged(_)) => self.replay(socket).await,
            Err(RecvError::Closed) => Err(()),
        }
    }

    async fn on_frame(&mut self, socket: &mut WebSocket, frame: Message) -> Result<(), ()> {
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return Err(()),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Binary(_) => {
                return send(
                    socket,
                    &ServerFrame::error("bad_frame", "frames must be JSON text"),
                )
                .await
            }
        };
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Send { client_id, text }) => {
                self.on_send(socket, client_id, text).await
            }
            Ok(ClientFrame::Hello { .. }) => {
                send(
                    socket,
                    &ServerFrame::error("already_ready", "hello was already received"),
                )
                .await
            }
            Err(e) => {
                tracing::info!(reason = %e, "bad web-chat frame");
                send(socket, &ServerFrame::error("bad_frame", e.to_string())).await
            }
        }
    }

    async fn on_send(
        &mut self,
        socket: &mut WebSocket,
        client_id: String,
        text: String,
    ) -> Result<(), ()> {
        if !valid_client_id(&client_id) {
            return send(
                socket,
                &ServerFrame::error(
                    "invalid_client_id",
                    "client_id must be 1-64 characters of [A-Za-z0-9_-]",
                ),
            )
            .await;
        }
        let text = text.trim().to_owned();
        let limit = self.state.settings.webchat.max_message_chars;
        if text.is_empty() || text.chars().count() > limit {
            let message = format!("text must be 1 to {limit} characters");
            return send(socket, &ServerFrame::error("too_long", message)).await;
        }
        let inbound = Inbound {
            tenant_id: self.route.tenant_id,
            channel_id: self.route.channel_id,
            sender: SenderIdentity {
                address: self.address.clone(),
                display_name: None,
            },
            external_id: format!("{}:{client_id}", &self.address[..16]),
            body: text,
            content: json!({ "client_id": client_id }),
            received_at: Utc::now(),
            open_as: self.propose(),
        };
        match self.state.ingest.ingest(inbound).await {
            Ok(accepted) => {
                let ack = ServerFrame::Ack {
                    client_id,
                    message_id: accepted.message_id,
                    seq: accepted.seq,
                    duplicate: accepted.duplicate,
                };
                send(socket, &ack).await?;
                let first = self.conversation != Some(accepted.conversation_id);
                let covered = first && self.proposed == Some(accepted.conversation_id);
                if covered {
                    self.adopt(accepted.conversation_id);
                } else if first {
                    self.follow(accepted.conversation_id);
                }
                // The ack told this socket everything the echo would; other tabs of the same
                // visitor still get the echo through the bus.
                self.delivered.mark(accepted.seq);
                if first && !covered {
                    // Anything committed before the subscription started (a fast bot reply).
                    self.replay(socket).await?;
                }
                Ok(())
            }
            Err(IngestError::Invalid(reason)) => {
                send(socket, &ServerFrame::error("invalid", reason)).await
            }
            Err(error) => {
                tracing::warn!(%error, "web-chat message not stored");
                send(
                    socket,
                    &ServerFrame::error("unavailable", "message not stored; resend it"),
                )
                .await
            }
        }
    }
}
