//! Which LLM reads a tenant's conversations: [`TenantLlms`] holds the server's `[llm]` (if any)
//! and one [`LlmAgent`] per tenant that brought its own endpoint (see [`super::llm_endpoint`]).
//!
//! Invariants:
//! - a tenant with the LLM switched off gets none; with its own endpoint, that one (even when the
//!   server has none); otherwise the server's, when one is configured;
//! - a tenant's agent is built once per configuration (a fingerprint of the stored row) and
//!   reused across turns, so its circuit breaker and connection pool persist; it is rebuilt only
//!   when the row changes. Each tenant endpoint has its own breaker, so one tenant's dead
//!   endpoint never opens another's;
//! - tenants' agents use the server's retries, back-off, breaker tuning, prices and default
//!   quota, with the tenant's timeout when it set one, and connect only to public addresses
//!   unless `agent.http_allow_private` is on (checked in the client's resolver);
//! - an endpoint that cannot be built (its key does not open with the configured secrets key,
//!   or the address policy refuses it) gives no LLM — the embedded understanding answers, never
//!   the server's LLM at the operator's expense — and is logged once per configuration;
//! - the lookup runs when the agent refreshes its tenant cache, never per turn.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgConnection;

use super::llm_endpoint::{self, StoredEndpoint};
use super::turns::LlmAgent;
use super::webhook::is_public;
use crate::config::LlmConfig;
use crate::ids::TenantId;
use crate::llm::{BreakerSettings, LlmClient, LlmError, LlmSettings, PriceTable};
use crate::tenants::secrets::SecretBox;

/// The server's LLM and the tenants' own, built on demand.
#[derive(Debug)]
pub struct TenantLlms {
    server: Option<Arc<LlmAgent>>,
    template: Template,
    secrets: SecretBox,
    /// Per tenant with its own endpoint: what was built for it.
    built: Mutex<HashMap<TenantId, Built>>,
}

/// The fingerprint of the row an agent was built from, and the agent (None when it could not be
/// built).
type Built = (u64, Option<Arc<LlmAgent>>);

/// What every agent shares with the server's configuration.
#[derive(Debug, Clone)]
struct Template {
    timeout: Duration,
    max_retries: u32,
    breaker: BreakerSettings,
    monthly_quota: u32,
    allow_private: bool,
}

impl TenantLlms {
    /// From the server's `[llm]` settings; `allow_private` lets tenants' endpoints be on
    /// loopback and private addresses.
    pub fn from_config(
        cfg: &LlmConfig,
        allow_private: bool,
        secrets: SecretBox,
    ) -> Result<Self, LlmError> {
        let template = Template {
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            max_retries: cfg.max_retries,
            breaker: BreakerSettings {
                failure_threshold: cfg.breaker_failures.max(1),
                cool_down: Duration::from_secs(cfg.breaker_cooldown_secs),
            },
            monthly_quota: cfg.monthly_quota,
            allow_private,
        };
        let server = if cfg.enabled() {
            let settings = template.settings(&cfg.base_url, cfg.api_key.clone(), &cfg.model, None);
            let agent = template.agent(settings)?;
            tracing::info!(base_url = %cfg.base_url, model = %cfg.model, "LLM configured; the embedded understanding is the fallback");
            Some(Arc::new(agent))
        } else {
            None
        };
        Ok(Self {
            server,
            template,
            secrets,
            built: Mutex::new(HashMap::new()),
        })
    }

    /// The server's LLM, when one is configured.
    pub fn server(&self) -> Option<&Arc<LlmAgent>> {
        self.server.as_ref()
    }

    /// The LLM for the current tenant (its transaction is `conn`): none when `enabled` is
    /// false, else its own endpoint's, else the server's.
    pub async fn for_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        enabled: bool,
    ) -> Result<Option<Arc<LlmAgent>>, sqlx::Error> {
        if !enabled {
            self.forget(tenant);
            return Ok(None);
        }
        let own = llm_endpoint::load(conn, false).await?;
        Ok(self.resolve(tenant, own.as_ref()))
    }

    /// The tenant's LLM given its stored endpoint (reusing the agent built for the same row).
    pub fn resolve(&self, tenant: TenantId, own: Option<&StoredEndpoint>) -> Option<Arc<LlmAgent>> {
        let Some(own) = own else {
            self.forget(tenant);
            return self.server.clone();
        };
        let fp = fingerprint(own);
        if let Some(hit) = self.cached(tenant, fp) {
            return hit;
        }
        let agent = match self.build(own) {
            Ok(agent) => {
                tracing::info!(%tenant, base_url = %own.base_url, model = %own.model, "tenant LLM endpoint ready");
                Some(Arc::new(agent))
            }
            Err(error) => {
                tracing::warn!(%tenant, base_url = %own.base_url, %error, "tenant LLM endpoint unusable; the embedded understanding answers");
                None
            }
        };
        if let Ok(mut built) = self.built.lock() {
            built.insert(tenant, (fp, agent.clone()));
        }
        agent
    }

    fn cached(&self, tenant: TenantId, fp: u64) -> Option<Option<Arc<LlmAgent>>> {
        let built = self.built.lock().ok()?;
        built
            .get(&tenant)
            .filter(|(at, _)| *at == fp)
            .map(|(_, agent)| agent.clone())
    }

    fn forget(&self, tenant: TenantId) {
        if let Ok(mut built) = self.built.lock() {
            built.remove(&tenant);
        }
    }

    fn build(&self, own: &StoredEndpoint) -> Result<LlmAgent, String> {
        let key = match &own.api_key {
            Some(sealed) => {
                let plain = self.secrets.open(sealed).map_err(|e| e.to_string())?;
                String::from_utf8(plain)
                    .map_err(|_| "the stored API key is not text".to_string())?
            }
            None => String::new(),
        };
        let timeout = own
            .timeout_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
        let mut settings =
            self.template
                .settings(&own.base_url, SecretString::from(key), &own.model, timeout);
        if !self.template.allow_private {
            settings.address_filter = Some(is_public);
        }
        self.template.agent(settings).map_err(|e| e.to_string())
    }
}

impl Template {
    fn settings(
        &self,
        base_url: &str,
        api_key: SecretString,
        model: &str,
        timeout: Option<Duration>,
    ) -> LlmSettings {
        let mut settings = LlmSettings::new(base_url, api_key, model);
        settings.timeout = timeout.unwrap_or(self.timeout);
        settings.max_retries = self.max_retries;
        settings.breaker = self.breaker;
        settings
    }

    fn agent(&self, settings: LlmSettings) -> Result<LlmAgent, LlmError> {
        Ok(LlmAgent {
            client: LlmClient::new(settings)?,
            prices: PriceTable::default(),
            monthly_quota: self.monthly_quota,
        })
    }
}

/// A fingerprint of a stored row (the sealed key included: a new key has a new nonce).
fn fingerprint(own: &StoredEndpoint) -> u64 {
    let mut h = DefaultHasher::new();
    own.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> LlmConfig {
        let mut cfg = crate::config::Settings::defaults().expect("defaults").llm;
        cfg.base_url = base_url.into();
        cfg.model = if base_url.is_empty() {
            String::new()
        } else {
            "server-model".into()
        };
        cfg
    }

    fn secrets() -> SecretBox {
        SecretBox::from_config(&SecretString::from(String::new())).expect("dev key")
    }

    fn own(secrets: &SecretBox, url: &str, model: &str, key: &str) -> StoredEndpoint {
        StoredEndpoint {
            base_url: url.into(),
            model: model.into(),
            api_key: Some(secrets.seal(key.as_bytes())),
            timeout_ms: Some(1500),
        }
    }

    #[test]
    fn a_tenant_without_an_endpoint_uses_the_servers_llm_or_none() {
        let tenant = TenantId::new();
        let with =
            TenantLlms::from_config(&config("http://127.0.0.1:9/v1"), true, secrets()).unwrap();
        let server = with.resolve(tenant, None).expect("the server's");
        assert!(Arc::ptr_eq(&server, with.server().unwrap()));
        let without = TenantLlms::from_config(&config(""), true, secrets()).unwrap();
        assert!(without.resolve(tenant, None).is_none());
    }

    #[test]
    fn a_tenants_agent_is_reused_until_its_row_changes() {
        let boxed = secrets();
        let llms = TenantLlms::from_config(&config(""), true, boxed.clone()).unwrap();
        let (a, b) = (TenantId::new(), TenantId::new());
        let row = own(&boxed, "http://127.0.0.1:9/v1", "model-a", "sk-a");
        let first = llms
            .resolve(a, Some(&row))
            .expect("own endpoint without a server LLM");
        assert_eq!(first.client.model(), "model-a");
        assert!(
            Arc::ptr_eq(&first, &llms.resolve(a, Some(&row)).unwrap()),
            "reused"
        );
        let other = llms.resolve(b, Some(&row)).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "one agent (and breaker) per tenant"
        );
        let changed = StoredEndpoint {
            model: "model-b".into(),
            ..row.clone()
        };
        let second = llms.resolve(a, Some(&changed)).unwrap();
        assert_eq!(second.client.model(), "model-b");
        assert!(
            llms.resolve(a, None).is_none(),
            "cleared: no server LLM here"
        );
    }

    #[test]
    fn unusable_endpoints_give_no_llm_rather_than_the_servers() {
        let llms =
            TenantLlms::from_config(&config("http://127.0.0.1:9/v1"), false, secrets()).unwrap();
        let tenant = TenantId::new();
        let other_key = SecretBox::from_config(&SecretString::from(
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".to_owned(),
        ))
        .unwrap();
        let sealed_elsewhere = own(&other_key, "https://llm.example/v1", "m", "sk");
        assert!(llms.resolve(tenant, Some(&sealed_elsewhere)).is_none());
        let private = own(&secrets(), "http://10.1.2.3:8000/v1", "m", "sk");
        assert!(
            llms.resolve(tenant, Some(&private)).is_none(),
            "address policy"
        );
        let public = own(&secrets(), "https://llm.example/v1", "m", "sk");
        assert!(llms.resolve(tenant, Some(&public)).is_some());
    }
}
