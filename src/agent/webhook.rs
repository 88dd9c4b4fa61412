//! Calling a business webhook for an `http` state: a signed request, a per-attempt timeout,
//! retries, and a bounded JSON reply; and single signed POSTs of tenant notices to the
//! business's notification webhook ([`WebhookClient::post_signed`], retried by the job queue).
//!
//! Owns [`WebhookClient`] and the signature scheme. Invariants:
//! - only `http`/`https` URLs are called; unless private addresses are allowed (development and
//!   tests), a host that is or resolves to a loopback, private, link-local, shared, multicast or
//!   otherwise non-public address is refused — the check runs in the client's own resolver, so
//!   the address connected to is the address checked; redirects are not followed and proxies
//!   from the environment are not used;
//! - every attempt is signed afresh: `X-Switchboard-Signature: t=<unix>,v1=<hex>` where `<hex>`
//!   is HMAC-SHA256 of `"<t>.<body>"` under the tenant's webhook secret (the whole `whsec_…`
//!   string is the key), plus `X-Switchboard-Conversation: <conversation id>` on state calls;
//! - one attempt never outlives the state's `timeout_ms`; network errors, timeouts, 429 and 5xx
//!   are retried (at most `retries` times, short back-off); other statuses are not;
//! - a reply larger than [`MAX_REPLY_BYTES`] or not JSON is a failure, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

use super::effect::{HttpRequest, HttpResult};
use super::flow::HttpMethod;

/// Largest webhook reply read, in bytes (256 KiB).
pub const MAX_REPLY_BYTES: usize = 256 * 1024;
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";
/// Header carrying the conversation id.
pub const CONVERSATION_HEADER: &str = "X-Switchboard-Conversation";
/// Header carrying a notice's id (notification webhooks deduplicate on it).
pub const NOTICE_HEADER: &str = "X-Switchboard-Notice";

/// Calls webhooks. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: reqwest::Client,
    allow_private: bool,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook client: {0}")]
pub struct WebhookClientError(#[from] reqwest::Error);

/// Why an attempt failed, and whether another may help.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong, without the URL.
    pub reason: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

impl WebhookClient {
    /// A client; `allow_private` lets it call loopback and private addresses.
    pub fn new(allow_private: bool) -> Result<Self, WebhookClientError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Performs `request` for `conversation`, signed with `secret`.
    pub async fn call(
        &self,
        request: &HttpRequest,
        secret: &str,
        conversation: &str,
    ) -> HttpResult {
        if let Err(reason) = self.check_url(&request.url) {
            return HttpResult::Failed(reason);
        }
        let body = match (&request.method, &request.body) {
            (HttpMethod::Post, Some(body)) => body.to_string().into_bytes(),
            (HttpMethod::Post, None) => b"{}".to_vec(),
            (HttpMethod::Get, _) => Vec::new(),
        };
        let mut attempt: u32 = 0;
        loop {
            match self.attempt(request, &body, secret, conversation).await {
                Ok(value) => return HttpResult::Ok(value),
                Err(failure) if failure.retryable && attempt < request.retries => {
                    tracing::warn!(state = %request.state, reason = %failure.reason, attempt, "webhook attempt failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(3))).await;
                    attempt += 1;
                }
                Err(failure) => return HttpResult::Failed(failure.reason),
            }
        }
    }

    /// One signed POST of the JSON `body` to `url`, for notifications the job queue retries:
    /// any 2xx is success and its reply is not read; network errors, timeouts and other
    /// statuses are retryable (the business may fix its receiver), a refused URL is not.
    /// `headers` are added to the signature and content type.
    pub async fn post_signed(
        &self,
        url: &str,
        body: &[u8],
        secret: &str,
        headers: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<(), Failure> {
        self.check_url(url).map_err(|reason| Failure {
            reason,
            retryable: false,
        })?;
        let t = chrono::Utc::now().timestamp();
        let mut builder = self
            .client
            .post(url)
            .timeout(timeout)
            .header(SIGNATURE_HEADER, signature(secret, t, body))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let sent = tokio::time::timeout(timeout, builder.send()).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return Err(Failure {
                    reason: describe(error),
                    retryable: true,
                })
            }
            Err(_) => {
                return Err(Failure {
                    reason: format!("no reply within {} ms", timeout.as_millis()),
                    retryable: true,
                })
            }
        };
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure {
                reason: format!("status {}", status.as_u16()),
                retryable: true,
            })
        }
    }

    /// [`check_url`] under this client's policy.
    fn check_url(&self, url: &str) -> Result<(), String> {
        check_url(url, self.allow_private)
    }

    async fn attempt(
        &self,
        request: &HttpRequest,
        body: &[u8],
        secret: &str,
        conversation: &str,
    ) -> Result<serde_json::Value, Failure> {
        let limit = Duration::from_millis(request.timeout_ms.max(1));
        let t = chrono::Utc::now().timestamp();
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .timeout(limit)
            .header(SIGNATURE_HEADER, signature(secret, t, body))
            .header(CONVERSATION_HEADER, conversation)
            .header(reqwest::header::ACCEPT, "application/json");
        if request.method == HttpMethod::Post {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        match tokio::time::timeout(limit, exchange(builder)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure {
                reason: format!("no reply within {} ms", limit.as_millis()),
                retryable: true,
            }),
        }
    }
}

/// Refuses non-http(s) URLs and (unless `allow_private`) literal non-public addresses; names
/// are checked by the resolver when a request is made.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "refused: the URL scheme {:?} is not http(s)",
            parsed.scheme()
        ));
    }
    let host = parsed.host_str().ok_or("invalid URL: no host")?;
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    match literal {
        Some(ip) if !allow_private && !is_public(ip) => {
            Err(format!("refused: {ip} is not a public address"))
        }
        _ => Ok(()),
    }
}

/// Sends the request and reads a bounded JSON reply.
async fn exchange(builder: reqwest::RequestBuilder) -> Result<serde_json::Value, Failure> {
    let mut response = builder.send().await.map_err(|e| Failure {
        reason: describe(e),
        retryable: true,
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Failure {
            reason: format!("status {}", status.as_u16()),
            retryable: status.as_u16() == 429 || status.is_server_error(),
        });
    }
    let too_large = || Failure {
        reason: format!("reply larger than {} KiB", MAX_REPLY_BYTES / 1024),
        retryable: false,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure {
        reason: describe(e),
        retryable: true,
    })? {
        if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| Failure {
        reason: format!("reply is not JSON: {e}"),
        retryable: false,
    })
}

/// An error with its causes, e.g. "error sending request: … refused: 10.0.0.1 is not public";
/// without the URL, whose query may carry customer data into logs and handoff reasons.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The signature header value for `body` sent at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(sign(secret, t, body)))
}

/// HMAC-SHA256 of `"<t>.<body>"` under `secret`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Resolves names with the system resolver, refusing names with any non-public address.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !allow_private && !is_public(a.ip())) {
                let message = format!(
                    "refused: {host} resolves to {}, not a public address",
                    bad.ip()
                );
                return Err(message.into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10 (carrier-grade NAT)
    let reserved = a >= 240 || a == 0; // 240.0.0.0/4, 0.0.0.0/8
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || shared
        || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    let nat64 = ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]; // 64:ff9b::/96
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || nat64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        // RFC 4231 test case 2 style check: a known key and message.
        let mac = sign("key", 1, b"msg");
        let mut expected = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        expected.update(b"1.msg");
        assert_eq!(mac, expected.finalize().into_bytes().to_vec());
        let header = signature("key", 1, b"msg");
        assert_eq!(header, format!("t=1,v1={}", hex::encode(mac)));
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let strict = WebhookClient::new(false).unwrap();
        assert!(strict.check_url("ftp://example.com/").is_err());
        assert!(strict.check_url("http://127.0.0.1:9/x").is_err());
        assert!(strict.check_url("http://[::1]/x").is_err());
        assert!(strict.check_url("https://example.com/x").is_ok());
        let lax = WebhookClient::new(true).unwrap();
        assert!(lax.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(lax.check_url("file:///etc/passwd").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let strict = WebhookClient::new(false).unwrap();
        let request = HttpRequest {
            state: "s".into(),
            method: HttpMethod::Get,
            url: "http://localhost:9/x".into(),
            body: None,
            timeout_ms: 1000,
            retries: 0,
        };
        let HttpResult::Failed(reason) = strict.call(&request, "k", "c").await else {
            panic!("localhost must be refused");
        };
        assert!(reason.contains("not a public address"), "{reason}");
    }
}
