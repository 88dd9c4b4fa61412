//! The flow registry: compiled flows (with their prompt templates) cached per tenant, key and
//! version. Built-in flows come from the `flows/` directory (version 0); a tenant's published
//! flows come from the `flows` table and win over the built-in of the same key. Published versions
//! are immutable, so a compiled version is cached for the life of the process.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use sqlx::PgConnection;

use super::flow::{parse_flow, Flow};
use super::machine::Call;
use super::preflight::prepare;
use super::prompts::Prompts;
use super::subflow::{called_keys, check_calls, Callees};
use super::validate::{FlowProblem, Severity};
use crate::ids::TenantId;
use crate::nlu::NluModel;

/// A flow ready to run.
#[derive(Debug)]
pub struct CompiledFlow {
    /// The flow.
    pub flow: Flow,
    /// Templates: the defaults plus the flow's inline texts.
    pub prompts: Prompts,
    /// Key it is stored under.
    pub key: String,
    /// Version (0 = built-in file).
    pub version: i32,
    /// The flow's trained understanding.
    pub nlu: NluModel,
}

/// Why a flow could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A flow is invalid.
    #[error("flow {key}: {message}")]
    Invalid {
        /// Flow key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No flow with this key exists for the tenant.
    #[error("no flow named {0:?}")]
    Unknown(String),
    /// Database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Compiled flows by (tenant, key, version); built-ins under tenant None.
pub struct FlowRegistry {
    base_prompts: Prompts,
    builtin: HashMap<String, Arc<CompiledFlow>>,
    cache: RwLock<HashMap<(TenantId, String, i32), Arc<CompiledFlow>>>,
    #[cfg(feature = "embeddings")]
    embedder: Option<Arc<crate::nlu::embed::Embedder>>,
}

impl std::fmt::Debug for FlowRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRegistry")
            .field("builtin", &self.builtin.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FlowRegistry {
    /// Load prompts and built-in flows from disk; every built-in must validate.
    pub fn load(flows_dir: &Path, prompts_dir: &Path) -> Result<Self, RegistryError> {
        let base_prompts = Prompts::from_dir(prompts_dir).map_err(|e| RegistryError::Invalid {
            key: prompts_dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut builtin = HashMap::new();
        let entries = std::fs::read_dir(flows_dir).map_err(|source| RegistryError::Io {
            path: flows_dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(|source| RegistryError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let compiled = compile(&base_prompts, &source, 0)?;
            builtin.insert(compiled.key.clone(), Arc::new(compiled));
        }
        check_builtin_calls(&builtin)?;
        Ok(Self {
            base_prompts,
            builtin,
            cache: RwLock::new(HashMap::new()),
            #[cfg(feature = "embeddings")]
            embedder: None,
        })
    }

    /// The same registry training every flow's intents on sentence embeddings too (built-ins
    /// are retrained now, tenants' flows as they are loaded).
    #[cfg(feature = "embeddings")]
    pub fn with_embeddings(
        mut self,
        embedder: Arc<crate::nlu::embed::Embedder>,
    ) -> Result<Self, RegistryError> {
        let mut builtin = HashMap::new();
        for (key, compiled) in std::mem::take(&mut self.builtin) {
            let nlu = embed_intents(&compiled, &embedder)?;
            let compiled = CompiledFlow {
                flow: compiled.flow.clone(),
                prompts: compiled.prompts.clone(),
                key: compiled.key.clone(),
                version: compiled.version,
                nlu,
            };
            builtin.insert(key, Arc::new(compiled));
        }
        self.builtin = builtin;
        self.embedder = Some(embedder);
        Ok(self)
    }

    /// Names of the built-in flows.
    pub fn builtin_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.builtin.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The default prompt templates (the prompts directory).
    pub fn base_prompts(&self) -> &Prompts {
        &self.base_prompts
    }

    /// Source-independent compile of a YAML flow against the default prompts.
    pub fn compile(&self, source: &str, version: i32) -> Result<CompiledFlow, RegistryError> {
        compile(&self.base_prompts, source, version)
    }

    /// The flow a new conversation should start on: the tenant's latest published version of
    /// `key`, else the built-in.
    pub async fn current(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        key: &str,
    ) -> Result<Arc<CompiledFlow>, RegistryError> {
        let version: Option<i32> = sqlx::query_scalar(
            "SELECT max(version) FROM flows WHERE flow_key = $1 AND status = 'published'",
        )
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
        match version {
            Some(v) => self.version(conn, tenant, key, v).await,
            None => self
                .builtin
                .get(key)
                .cloned()
                .ok_or_else(|| RegistryError::Unknown(key.into())),
        }
    }

    /// A specific version (0 = built-in).
    pub async fn version(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        key: &str,
        version: i32,
    ) -> Result<Arc<CompiledFlow>, RegistryError> {
        if version == 0 {
            return self
                .builtin
                .get(key)
                .cloned()
                .ok_or_else(|| RegistryError::Unknown(key.into()));
        }
        let cache_key = (tenant, key.to_owned(), version);
        if let Some(hit) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
        {
            return Ok(hit);
        }
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM flows WHERE flow_key = $1 AND version = $2")
                .bind(key)
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
        let source = source.ok_or_else(|| RegistryError::Unknown(format!("{key} v{version}")))?;
        let compiled = self.compile(&source, version)?;
        #[cfg(feature = "embeddings")]
        let compiled = match &self.embedder {
            Some(embedder) => CompiledFlow {
                nlu: embed_intents(&compiled, embedder)?,
                ..compiled
            },
            None => compiled,
        };
        let compiled = Arc::new(compiled);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(cache_key, compiled.clone());
        }
        Ok(compiled)
    }
}

/// A compiled flow's understanding with an embedding classifier trained on its examples.
#[cfg(feature = "embeddings")]
fn embed_intents(
    compiled: &CompiledFlow,
    embedder: &crate::nlu::embed::Embedder,
) -> Result<NluModel, RegistryError> {
    compiled
        .nlu
        .clone()
        .with_embeddings(&compiled.flow.understanding.intents, embedder)
        .map_err(|e| RegistryError::Invalid {
            key: compiled.key.clone(),
            message: e.to_string(),
        })
}

/// Most flows one conversation's subflows may reach.
pub const MAX_CALLEES: usize = 16;

impl FlowRegistry {
    /// The flows `root`'s subflows may call, transitively: the version each call in progress
    /// runs (kept until it returns), else the tenant's latest published version or the
    /// built-in. Keys that resolve to nothing are left out: calling one hands the conversation
    /// over. No query at all for a flow without subflows.
    pub async fn callees(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        root: &Flow,
        calls: &[Call],
    ) -> Result<Callees, RegistryError> {
        let mut callees = Callees::new();
        let mut tried: Vec<String> = vec![root.id.clone()];
        for call in calls {
            if tried.contains(&call.flow) {
                continue;
            }
            tried.push(call.flow.clone());
            match self.version(conn, tenant, &call.flow, call.version).await {
                Ok(compiled) => callees.insert(compiled),
                Err(RegistryError::Database(e)) => return Err(e.into()),
                Err(_) => {}
            }
        }
        let mut pending: Vec<String> = called_keys(root).into_iter().map(str::to_string).collect();
        while let Some(key) = pending.pop() {
            if tried.contains(&key) || tried.len() > MAX_CALLEES {
                continue;
            }
            tried.push(key.clone());
            match self.current(conn, tenant, &key).await {
                Ok(compiled) => {
                    pending.extend(called_keys(&compiled.flow).into_iter().map(str::to_string));
                    callees.insert(compiled);
                }
                Err(RegistryError::Database(e)) => return Err(e.into()),
                Err(_) => {}
            }
        }
        Ok(callees)
    }

    /// Problems of `flow`'s subflow calls against the flows they would run for `tenant`
    /// (unknown keys, loops, nesting too deep).
    pub async fn call_problems(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        flow: &Flow,
    ) -> Result<Vec<FlowProblem>, RegistryError> {
        if called_keys(flow).is_empty() {
            return Ok(Vec::new());
        }
        let callees = self.callees(conn, tenant, flow, &[]).await?;
        Ok(check_calls(flow, &|key| {
            callees.get(key).map(|c| c.flow.clone())
        }))
    }

    /// The built-in flows a built-in's subflows reach (no tenant, no database).
    pub fn builtin_callees(&self) -> Callees {
        self.builtin
            .values()
            .fold(Callees::new(), |c, compiled| c.with(compiled.clone()))
    }
}

/// Checks every built-in flow's calls against the other built-ins.
fn check_builtin_calls(builtin: &HashMap<String, Arc<CompiledFlow>>) -> Result<(), RegistryError> {
    for compiled in builtin.values() {
        let problems = check_calls(&compiled.flow, &|key| {
            builtin.get(key).map(|c| c.flow.clone())
        });
        if let Some(problem) = problems.first() {
            return Err(RegistryError::Invalid {
                key: compiled.key.clone(),
                message: problem.to_string(),
            });
        }
    }
    Ok(())
}

fn compile(base: &Prompts, source: &str, version: i32) -> Result<CompiledFlow, RegistryError> {
    let prepared = prepare(source, base).map_err(|problems| RegistryError::Invalid {
        key: parse_flow(source).map_or_else(|_| "(unparsed)".into(), |f| f.id),
        message: problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })?;
    Ok(CompiledFlow {
        key: prepared.flow.id.clone(),
        flow: prepared.flow,
        prompts: prepared.prompts,
        version,
        nlu: prepared.nlu,
    })
}
