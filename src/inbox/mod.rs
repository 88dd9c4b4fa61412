//! The inbox: contacts, conversations and messages, and the group-committed ingest path that
//! turns every normalized inbound message into durable rows plus a queued `agent_turn` job (the
//! conversation's open one, shared by the messages that arrive before it runs).
//!
//! Invariants: a message is acknowledged only after its transaction commits; a provider retry of
//! the same `(channel_id, external_id)` stores nothing new and acknowledges with the original ids;
//! messages of one conversation get strictly increasing `seq` under the conversation's row lock.

pub mod api;
pub mod db;
mod ingest;
mod ingest_sql;
mod model;

pub use ingest::{IngestError, Ingestor};
pub use model::{Accepted, Inbound, MessageView, SenderIdentity};
