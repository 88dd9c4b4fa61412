//! A tenant's own OpenAI-compatible LLM endpoint (base URL, model, API key, timeout), stored in
//! `tenant_llm_endpoints` and used for its conversations instead of the server's `[llm]`.
//!
//! Owns the row's queries, the validation of what a tenant sends, and [`merge`]: how a change
//! (each field kept when omitted, cleared when `null`, set otherwise) applies to what is stored.
//! Invariants: the API key is sealed with the server's [`SecretBox`] before it is stored and is
//! never returned, logged or put in an error message; a stored URL is http(s) with a host and no
//! credentials, query or fragment, normalized (lower-case host, no trailing slash), and — unless
//! private addresses are allowed — no literal non-public address (names are checked when
//! connecting, see `crate::llm`); a base URL different from the stored one needs its key sent
//! again (or `null`), so a stored key is never sent to a host it was not given for; every query
//! runs in the caller's tenant transaction (row-level security).

use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use sqlx::PgConnection;

use super::webhook::is_public;
use crate::ids::TenantId;
use crate::tenants::secrets::SecretBox;

/// Longest base URL accepted.
pub const MAX_URL_CHARS: usize = 2000;
/// Longest model name accepted.
pub const MAX_MODEL_CHARS: usize = 200;
/// Longest API key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Allowed per-attempt timeouts, in milliseconds.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=120_000;

/// The stored endpoint (the key still sealed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, sqlx::FromRow)]
pub struct StoredEndpoint {
    /// Normalized base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name sent to the provider.
    pub model: String,
    /// The sealed API key; None: no key (local servers).
    pub api_key: Option<Vec<u8>>,
    /// Per-attempt timeout; None: the server's.
    pub timeout_ms: Option<i32>,
}

/// One field of a change: omitted (keep what is stored), `null` (clear it) or a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Omitted: unchanged.
    #[default]
    Keep,
    /// `null`.
    Clear,
    /// A new value.
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only called for a present field (`#[serde(default)]` gives Keep), so None is `null`.
        Ok(Option::<T>::deserialize(d)?.map_or(Patch::Clear, Patch::Set))
    }
}

/// What a tenant asks to change about its endpoint.
#[derive(Debug, Default)]
pub struct EndpointChange {
    /// `null` removes the endpoint (the server's LLM is used again).
    pub base_url: Patch<String>,
    /// Model name.
    pub model: Patch<String>,
    /// API key; `null` or `""` stores none.
    pub api_key: Patch<SecretString>,
    /// Per-attempt timeout; `null`: the server's.
    pub timeout_ms: Patch<u32>,
}

impl EndpointChange {
    fn touches_anything_but_the_url(&self) -> bool {
        !(matches!(self.model, Patch::Keep)
            && matches!(self.api_key, Patch::Keep)
            && matches!(self.timeout_ms, Patch::Keep))
    }
}

/// What to do with the stored row.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was asked about the endpoint.
    Unchanged,
    /// Delete it.
    Remove,
    /// Insert or replace it.
    Store(StoredEndpoint),
}

/// Why a change is refused; each has a stable [`code`](EndpointError::code).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not an acceptable http(s) URL.
    #[error("base_url {0}")]
    BaseUrl(&'static str),
    /// A literal loopback/private/... address while private addresses are not allowed.
    #[error("base_url points at {0}, which is not a public address")]
    NotPublic(IpAddr),
    /// Empty, too long or with control characters.
    #[error("model must be 1 to {MAX_MODEL_CHARS} printable characters")]
    Model,
    /// Too long or not printable ASCII (the message never shows the key).
    #[error("api_key must be at most {MAX_KEY_BYTES} printable ASCII characters")]
    ApiKey,
    /// Out of range.
    #[error("timeout_ms must be between 100 and 120000")]
    Timeout,
    /// An endpoint field without a base URL, given or stored.
    #[error("set base_url to configure the tenant's own LLM endpoint")]
    BaseUrlRequired,
    /// A new endpoint without a model.
    #[error("model is required with a new base_url")]
    ModelRequired,
    /// A changed base URL while a key is stored and no new one was sent.
    #[error("a different base_url needs its api_key (or \"api_key\": null for none)")]
    ApiKeyRequired,
    /// `"base_url": null` together with other endpoint fields.
    #[error("\"base_url\": null removes the endpoint; send no other endpoint field with it")]
    Conflicting,
}

impl EndpointError {
    /// The machine-readable code of the API error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BaseUrl(_) => "invalid_llm_base_url",
            Self::NotPublic(_) => "llm_base_url_not_public",
            Self::Model => "invalid_llm_model",
            Self::ApiKey => "invalid_llm_api_key",
            Self::Timeout => "invalid_llm_timeout",
            Self::BaseUrlRequired => "llm_base_url_required",
            Self::ModelRequired => "llm_model_required",
            Self::ApiKeyRequired => "llm_api_key_required",
            Self::Conflicting => "invalid_llm_endpoint",
        }
    }
}

/// Applies `change` to `current`: validates every given field and seals a new key.
pub fn merge(
    current: Option<&StoredEndpoint>,
    change: EndpointChange,
    allow_private: bool,
    secrets: &SecretBox,
) -> Result<Outcome, EndpointError> {
    let base_url = match &change.base_url {
        Patch::Clear if change.touches_anything_but_the_url() => {
            return Err(EndpointError::Conflicting)
        }
        Patch::Clear => return Ok(Outcome::Remove),
        Patch::Set(url) => base_url(url, allow_private)?,
        Patch::Keep => match current {
            Some(current) => current.base_url.clone(),
            None if change.touches_anything_but_the_url() => {
                return Err(EndpointError::BaseUrlRequired)
            }
            None => return Ok(Outcome::Unchanged),
        },
    };
    let moved = current.map_or(true, |c| c.base_url != base_url);
    let model = match change.model {
        Patch::Set(model) => checked_model(&model)?,
        Patch::Clear => return Err(EndpointError::Model),
        Patch::Keep => match current {
            Some(current) => current.model.clone(),
            None => return Err(EndpointError::ModelRequired),
        },
    };
    let api_key = match change.api_key {
        Patch::Set(key) => sealed_key(&key, secrets)?,
        Patch::Clear => None,
        Patch::Keep => {
            let stored = current.and_then(|c| c.api_key.clone());
            if moved && stored.is_some() {
                return Err(EndpointError::ApiKeyRequired);
            }
            stored
        }
    };
    let timeout_ms = match change.timeout_ms {
        Patch::Set(ms) if TIMEOUT_MS.contains(&ms) => i32::try_from(ms).ok(),
        Patch::Set(_) => return Err(EndpointError::Timeout),
        Patch::Clear => None,
        Patch::Keep => current.and_then(|c| c.timeout_ms),
    };
    Ok(Outcome::Store(StoredEndpoint {
        base_url,
        model,
        api_key,
        timeout_ms,
    }))
}

/// The normalized URL, or why it is refused.
pub fn base_url(raw: &str, allow_private: bool) -> Result<String, EndpointError> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(EndpointError::BaseUrl("is too long"));
    }
    let url = reqwest::Url::parse(raw).map_err(|_| EndpointError::BaseUrl("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointError::BaseUrl(
            "must start with http:// or https://",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::BaseUrl(
            "must not carry credentials (send the key as api_key)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EndpointError::BaseUrl("must not have a query or fragment"));
    }
    let host = url
        .host_str()
        .ok_or(EndpointError::BaseUrl("has no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse();
    if let Ok(ip) = literal {
        if !allow_private && !is_public(ip) {
            return Err(EndpointError::NotPublic(ip));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn checked_model(raw: &str) -> Result<String, EndpointError> {
    let model = raw.trim();
    let length = model.chars().count();
    if length == 0 || length > MAX_MODEL_CHARS || model.chars().any(char::is_control) {
        return Err(EndpointError::Model);
    }
    Ok(model.to_owned())
}

fn sealed_key(key: &SecretString, secrets: &SecretBox) -> Result<Option<Vec<u8>>, EndpointError> {
    let key = key.expose_secret().trim();
    if key.is_empty() {
        return Ok(None);
    }
    // The HTTP client refuses (and async-openai would panic on) keys that cannot be a header.
    if key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(EndpointError::ApiKey);
    }
    Ok(Some(secrets.seal(key.as_bytes())))
}

/// The current tenant's endpoint, locked for update when `for_update`.
pub async fn load(
    conn: &mut PgConnection,
    for_update: bool,
) -> Result<Option<StoredEndpoint>, sqlx::Error> {
    let sql = if for_update {
        "SELECT base_url, model, api_key, timeout_ms FROM tenant_llm_endpoints \
         WHERE tenant_id = sb_tenant() FOR UPDATE"
    } else {
        "SELECT base_url, model, api_key, timeout_ms FROM tenant_llm_endpoints \
         WHERE tenant_id = sb_tenant()"
    };
    sqlx::query_as(sql).fetch_optional(conn).await
}

/// Applies `outcome` to the tenant's row.
pub async fn write(
    conn: &mut PgConnection,
    tenant: TenantId,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    match outcome {
        Outcome::Unchanged => {}
        Outcome::Remove => {
            sqlx::query("DELETE FROM tenant_llm_endpoints WHERE tenant_id = sb_tenant()")
                .execute(conn)
                .await?;
        }
        Outcome::Store(e) => {
            sqlx::query(
                "INSERT INTO tenant_llm_endpoints (tenant_id, base_url, model, api_key, timeout_ms) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET base_url = EXCLUDED.base_url, \
                   model = EXCLUDED.model, api_key = EXCLUDED.api_key, \
                   timeout_ms = EXCLUDED.timeout_ms, updated_at = now()",
            )
            .bind(tenant)
            .bind(&e.base_url)
            .bind(&e.model)
            .bind(&e.api_key)
            .bind(e.timeout_ms)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SecretBox {
        SecretBox::from_config(&SecretString::from(String::new())).expect("dev key")
    }

    fn set(url: &str, model: &str, key: Option<&str>) -> EndpointChange {
        EndpointChange {
            base_url: Patch::Set(url.into()),
            model: Patch::Set(model.into()),
            api_key: key.map_or(Patch::Keep, |k| {
                Patch::Set(SecretString::from(k.to_owned()))
            }),
            timeout_ms: Patch::Keep,
        }
    }

    fn stored(outcome: Outcome) -> StoredEndpoint {
        match outcome {
            Outcome::Store(e) => e,
            other => panic!("expected a stored endpoint, got {other:?}"),
        }
    }

    #[test]
    fn urls_are_normalized_and_checked() {
        assert_eq!(
            base_url(" HTTPS://API.OpenAI.com/v1/ ", false),
            Ok("https://api.openai.com/v1".into())
        );
        assert_eq!(
            base_url("http://10.0.0.5:8000/v1", true),
            Ok("http://10.0.0.5:8000/v1".into())
        );
        for (raw, code) in [
            ("ftp://x/v1", "invalid_llm_base_url"),
            ("not a url", "invalid_llm_base_url"),
            ("https://user:pw@api.example.com/v1", "invalid_llm_base_url"),
            (
                "https://api.example.com/v1?api-version=1",
                "invalid_llm_base_url",
            ),
            ("http://127.0.0.1:11434/v1", "llm_base_url_not_public"),
            ("http://2130706433/v1", "llm_base_url_not_public"),
            ("http://[::1]/v1", "llm_base_url_not_public"),
            ("http://169.254.169.254/latest", "llm_base_url_not_public"),
        ] {
            assert_eq!(
                base_url(raw, false).map_err(|e| e.code()),
                Err(code),
                "{raw}"
            );
        }
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL_CHARS));
        assert!(base_url(&long, true).is_err());
    }

    #[test]
    fn a_new_endpoint_needs_a_url_and_a_model_and_seals_its_key() {
        let boxed = secrets();
        let e = stored(
            merge(
                None,
                set("https://llm.example/v1", "m1", Some("sk-a")),
                false,
                &boxed,
            )
            .unwrap(),
        );
        let sealed = e.api_key.clone().expect("a key");
        assert_ne!(sealed, b"sk-a");
        assert_eq!(boxed.open(&sealed).unwrap(), b"sk-a");
        let no_model = EndpointChange {
            base_url: Patch::Set("https://llm.example/v1".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(None, no_model, false, &boxed),
            Err(EndpointError::ModelRequired)
        );
        let only_model = EndpointChange {
            model: Patch::Set("m".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(None, only_model, false, &boxed),
            Err(EndpointError::BaseUrlRequired)
        );
        assert_eq!(
            merge(None, EndpointChange::default(), false, &boxed),
            Ok(Outcome::Unchanged)
        );
    }

    #[test]
    fn omitted_fields_are_kept_and_null_clears() {
        let boxed = secrets();
        let current = stored(
            merge(
                None,
                set("https://llm.example/v1", "m1", Some("sk-a")),
                false,
                &boxed,
            )
            .unwrap(),
        );
        let new_model = EndpointChange {
            model: Patch::Set("m2".into()),
            timeout_ms: Patch::Set(1500),
            ..Default::default()
        };
        let e = stored(merge(Some(&current), new_model, false, &boxed).unwrap());
        assert_eq!((e.model.as_str(), e.timeout_ms), ("m2", Some(1500)));
        assert_eq!(e.api_key, current.api_key, "the key is kept");
        let no_key = EndpointChange {
            api_key: Patch::Clear,
            ..Default::default()
        };
        assert_eq!(
            stored(merge(Some(&current), no_key, false, &boxed).unwrap()).api_key,
            None
        );
        let clear = EndpointChange {
            base_url: Patch::Clear,
            ..Default::default()
        };
        assert_eq!(
            merge(Some(&current), clear, false, &boxed),
            Ok(Outcome::Remove)
        );
        let clear_and_set = EndpointChange {
            base_url: Patch::Clear,
            model: Patch::Set("m".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(Some(&current), clear_and_set, false, &boxed),
            Err(EndpointError::Conflicting)
        );
    }

    #[test]
    fn a_stored_key_never_follows_the_endpoint_to_another_host() {
        let boxed = secrets();
        let current = stored(
            merge(
                None,
                set("https://llm.example/v1", "m1", Some("sk-a")),
                false,
                &boxed,
            )
            .unwrap(),
        );
        let moved = EndpointChange {
            base_url: Patch::Set("https://elsewhere.example/v1".into()),
            ..Default::default()
        };
        assert_eq!(
            merge(Some(&current), moved, false, &boxed),
            Err(EndpointError::ApiKeyRequired)
        );
        let same = EndpointChange {
            base_url: Patch::Set("https://LLM.example/v1/".into()),
            ..Default::default()
        };
        assert!(
            merge(Some(&current), same, false, &boxed).is_ok(),
            "same URL, normalized"
        );
    }

    #[test]
    fn bad_models_keys_and_timeouts_are_refused_without_echoing_the_key() {
        let boxed = secrets();
        let url = "https://llm.example/v1";
        for model in ["", "  ", "bad\nmodel", &"m".repeat(MAX_MODEL_CHARS + 1)] {
            assert_eq!(
                merge(None, set(url, model, None), false, &boxed),
                Err(EndpointError::Model)
            );
        }
        let bad_key =
            merge(None, set(url, "m", Some("sk-\u{7}secret")), false, &boxed).unwrap_err();
        assert_eq!(bad_key.code(), "invalid_llm_api_key");
        assert!(!bad_key.to_string().contains("secret"));
        let empty_key = stored(merge(None, set(url, "m", Some(" ")), false, &boxed).unwrap());
        assert_eq!(empty_key.api_key, None);
        let mut slow = set(url, "m", None);
        slow.timeout_ms = Patch::Set(99);
        assert_eq!(
            merge(None, slow, false, &boxed),
            Err(EndpointError::Timeout)
        );
    }

    #[test]
    fn patches_tell_omitted_from_null() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            a: Patch<String>,
            #[serde(default)]
            b: Patch<String>,
            #[serde(default)]
            c: Patch<String>,
        }
        let body: Body = serde_json::from_str(r#"{"b": null, "c": "x"}"#).unwrap();
        assert_eq!(
            (body.a, body.b, body.c),
            (Patch::Keep, Patch::Clear, Patch::Set("x".into()))
        );
    }
}
