//! Channels: the adapters between providers and the inbox, and the per-tenant channel records.
//!
//! Every channel has a `public_key` that routes unauthenticated traffic (the widget, public
//! forms, provider webhooks) to its tenant. Resolving it is one of the few system-pool lookups;
//! results are cached briefly in [`ChannelDirectory`].

pub mod api;
pub mod db;
pub mod directory;
pub mod form;
pub mod webchat;

pub use directory::{ChannelDirectory, ChannelRoute};

use serde::{Deserialize, Serialize};

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The embeddable web-chat widget.
    Webchat,
    /// WhatsApp Cloud API.
    WhatsappCloud,
    /// Twilio (WhatsApp or SMS).
    Twilio,
    /// Telegram bot.
    Telegram,
    /// Inbound email.
    Email,
    /// A public "contact us" form posting to the gateway.
    Form,
}

impl ChannelKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webchat => "webchat",
            Self::WhatsappCloud => "whatsapp_cloud",
            Self::Twilio => "twilio",
            Self::Telegram => "telegram",
            Self::Email => "email",
            Self::Form => "form",
        }
    }

    /// Parse a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Webchat,
            Self::WhatsappCloud,
            Self::Twilio,
            Self::Telegram,
            Self::Email,
            Self::Form,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Prefix of this kind's public keys.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::Webchat => "wc_",
            Self::WhatsappCloud => "wa_",
            Self::Twilio => "tw_",
            Self::Telegram => "tg_",
            Self::Email => "em_",
            Self::Form => "fm_",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelKind;

    #[test]
    fn kinds_round_trip() {
        for kind in [
            "webchat",
            "whatsapp_cloud",
            "twilio",
            "telegram",
            "email",
            "form",
        ] {
            assert_eq!(ChannelKind::parse(kind).map(|k| k.as_str()), Some(kind));
        }
        assert_eq!(ChannelKind::parse("fax"), None);
    }
}
