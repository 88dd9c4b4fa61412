//! The command line: `serve`, `migrate`, `demo`, admin commands (tenants, API keys, agents),
//! `flow validate`, `flow simulate`, and `openapi`. Errors print as one clear message and exit non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::agent::preflight;
use crate::app::App;
use crate::auth::{agents, api_keys};
use crate::config::Settings;
use crate::tenants::db as tenants_db;

/// Switchboard: a self-hostable messaging gateway and AI agent.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run the gateway with a seeded demo business and print where to click.
    Demo,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage agent logins.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Work with flow files.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Measure the embedded understanding.
    #[command(subcommand)]
    Nlu(NluCommand),
    /// Print the OpenAPI document.
    Openapi,
}

/// Understanding commands.
#[derive(Debug, Subcommand)]
pub enum NluCommand {
    /// Print accuracy on the held-out evaluation files: date/time expressions, intent sets and
    /// language identification.
    Eval {
        /// Directory with datetime.tsv, language.tsv and intents/<set>/{train,test}.tsv.
        #[arg(long, default_value = "tests/data/nlu")]
        data: PathBuf,
        /// Only these intent sets (repeatable); all by default.
        #[arg(long = "set")]
        sets: Vec<String>,
        /// List every miss.
        #[arg(long)]
        misses: bool,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        /// all-MiniLM-L6-v2 directory: also score sentence embeddings and the fused model
        /// (needs a build with `--features embeddings`).
        #[arg(long, env = "SWITCHBOARD_NLU__EMBEDDINGS_DIR")]
        embeddings_dir: Option<PathBuf>,
        /// Exit with failure when date/time accuracy (%) is below this.
        #[arg(long)]
        min_datetime: Option<f64>,
        /// Exit with failure when any set's best top-1 intent accuracy (%) is below this.
        #[arg(long)]
        min_intent: Option<f64>,
        /// Exit with failure when language identification accuracy (%, all rows) is below this.
        #[arg(long)]
        min_language: Option<f64>,
        /// Write each set's train and test embeddings to DIR/<set>.{train,test}.tsv (intent,
        /// then the vector's values) for offline analysis (needs `--embeddings-dir`).
        #[arg(long)]
        dump_embeddings: Option<PathBuf>,
        /// Instead of scoring the test files, cross-validate the embedding classifier and its
        /// fusion with the n-gram model on each set's training examples with K folds (the
        /// evidence for their constants; needs `--embeddings-dir`).
        #[arg(long, value_name = "K")]
        cv_folds: Option<usize>,
    },
}

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// URL-safe unique name.
        #[arg(long)]
        slug: String,
        /// Business name.
        #[arg(long)]
        name: String,
        /// IANA time zone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// List tenants.
    List,
}

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (shown once).
    Create {
        /// Tenant slug (omit with --admin).
        #[arg(long, required_unless_present = "admin")]
        tenant: Option<String>,
        /// Create a platform admin key instead.
        #[arg(long)]
        admin: bool,
        /// Label.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

/// Agent commands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent login (or reset its password).
    Create {
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
        /// Login email.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin or agent.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Password (prefer the SWITCHBOARD_AGENT_PASSWORD environment variable).
        #[arg(long, env = "SWITCHBOARD_AGENT_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// Flow commands.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Check a flow file and print every problem.
    Validate {
        /// The YAML file.
        file: PathBuf,
    },
    /// Run a scripted conversation through a flow file (no database) and print each turn.
    Simulate {
        /// The YAML file.
        file: PathBuf,
        /// A customer turn; repeat in order (`--turn hi --turn 1`).
        #[arg(long = "turn")]
        turns: Vec<String>,
        /// A file of further turns, one per line (read after the `--turn`s).
        #[arg(long = "turns-file")]
        turns_file: Option<PathBuf>,
        /// Business name the templates see as `business.name`.
        #[arg(long, default_value = "Demo Business")]
        business: String,
        /// Secret `http` states sign their webhook calls with (the tenant's `whsec_…`).
        #[arg(
            long,
            env = "SWITCHBOARD_WEBHOOK_SECRET",
            default_value = "",
            hide_env_values = true
        )]
        webhook_secret: String,
    },
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error with its causes after it, leaving out a cause the text before it already states
/// (an actionable message usually quotes its cause, and that cause its own).
fn describe(error: &anyhow::Error) -> String {
    let mut out = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Openapi = cli.command {
        println!("{}", crate::http::openapi::document());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Nlu(NluCommand::Eval {
        data,
        sets,
        misses,
        json,
        embeddings_dir,
        min_datetime,
        min_intent,
        min_language,
        dump_embeddings,
        cv_folds,
    }) = cli.command
    {
        let options = crate::nlu::eval::EvalOptions {
            data,
            sets,
            misses,
            json,
            embeddings_dir: embeddings_dir.filter(|d| !d.as_os_str().is_empty()),
            min_datetime,
            min_intent,
            min_language,
            dump_embeddings,
            cv_folds,
        };
        return Ok(if crate::nlu::eval::run(&options)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let settings = Settings::load()?;
    crate::telemetry::init_tracing(&settings.log);
    match cli.command {
        Command::Serve => App::build(settings).await?.run_until_stopped(true).await?,
        Command::Migrate => {
            crate::db::connect(&settings.database).await?;
            println!("migrations applied");
        }
        Command::Demo => demo(settings).await?,
        Command::Tenant(cmd) => tenant(settings, cmd).await?,
        Command::ApiKey(cmd) => api_key(settings, cmd).await?,
        Command::Agent(cmd) => agent(settings, cmd).await?,
        Command::Flow(FlowCommand::Validate { file }) => return flow_validate(&settings, &file),
        Command::Flow(FlowCommand::Simulate {
            file,
            mut turns,
            turns_file,
            business,
            webhook_secret,
        }) => {
            if let Some(path) = turns_file {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                turns.extend(text.lines().map(str::to_owned));
            }
            let run = FlowRun {
                file: &file,
                turns: &turns,
                business: &business,
                webhook_secret,
            };
            return flow_simulate(&settings, run).await;
        }
        Command::Openapi | Command::Nlu(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo(settings: Settings) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database).await?;
    let seed = crate::demo::seed(&db).await?;
    let app = App::build_with_db(settings.clone(), db).await?;
    let base = public_base(&settings, app.port());
    println!(
        "\nSwitchboard demo is running: Smile Dental (tenant '{}')\n",
        crate::demo::DEMO_SLUG
    );
    println!(
        "  Demo site with the chat widget:  {base}/demo/{}",
        seed.webchat_key
    );
    println!("  Widget embed snippet:            <script src=\"{base}/widget.js\" data-channel-key=\"{}\" async></script>", seed.webchat_key);
    println!("  API (OpenAPI document):          {base}/api/v1/openapi.json");
    println!("  Tenant API key (shown once):     {}", seed.api_key);
    println!("  Admin API key (shown once):      {}", seed.admin_key);
    println!(
        "  Agent login:                     {} / {}",
        crate::demo::DEMO_AGENT_EMAIL,
        seed.agent_password
    );
    println!(
        "  Try: curl -H 'Authorization: Bearer {}' {base}/api/v1/conversations\n",
        seed.api_key
    );
    println!("Press Ctrl-C to stop.");
    app.run_until_stopped(true).await
}

fn public_base(settings: &Settings, port: u16) -> String {
    let host = match settings.server.host.as_str() {
        "0.0.0.0" | "::" => "127.0.0.1",
        other => other,
    };
    if settings.server.port == port {
        settings.server.public_url.trim_end_matches('/').to_owned()
    } else {
        format!("http://{host}:{port}")
    }
}

async fn tenant(settings: Settings, cmd: TenantCommand) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database).await?;
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            timezone,
        } => {
            anyhow::ensure!(
                crate::tenants::api::valid_slug(&slug),
                "slug must be 2-63 characters of lowercase letters, digits and dashes"
            );
            anyhow::ensure!(
                timezone.parse::<chrono_tz::Tz>().is_ok(),
                "unknown time zone {timezone:?}"
            );
            let t = tenants_db::create(&db.system, &slug, &name, &timezone).await?;
            println!("created tenant {} ({})", t.slug, t.id);
        }
        TenantCommand::List => {
            for t in tenants_db::list(&db.system).await? {
                println!("{}\t{}\t{}\t{}", t.id, t.slug, t.timezone, t.name);
            }
        }
    }
    Ok(())
}

async fn api_key(settings: Settings, cmd: ApiKeyCommand) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database).await?;
    let ApiKeyCommand::Create {
        tenant,
        admin,
        name,
    } = cmd;
    let key = if admin {
        api_keys::create(&db.system, None, &name, &[api_keys::SCOPE_ADMIN]).await?
    } else {
        let slug = tenant.unwrap_or_default();
        let t = tenants_db::by_slug(&db.system, &slug)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no tenant with slug {slug:?}"))?;
        let mut tx = db.tenant_tx(t.id).await?;
        let key = api_keys::create(&mut *tx, Some(t.id), &name, &[api_keys::SCOPE_TENANT]).await?;
        tx.commit().await?;
        key
    };
    println!("{}", key.plain);
    eprintln!("(store this key now: it is not shown again)");
    Ok(())
}

async fn agent(settings: Settings, cmd: AgentCommand) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database).await?;
    let AgentCommand::Create {
        tenant,
        email,
        name,
        role,
        password,
    } = cmd;
    anyhow::ensure!(
        role == "admin" || role == "agent",
        "role must be admin or agent"
    );
    let t = tenants_db::by_slug(&db.system, &tenant)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant with slug {tenant:?}"))?;
    let mut tx = db.tenant_tx(t.id).await?;
    let id = agents::upsert(&mut tx, t.id, &email, &name, &password, &role).await?;
    tx.commit().await?;
    println!("agent {email} ready ({id})");
    Ok(())
}

fn flow_validate(settings: &Settings, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let base = crate::agent::prompts::Prompts::from_dir(&settings.agent.prompts_dir)?;
    let mut checked = preflight::check_source(&source, &base);
    if let Some(flow) = &checked.flow {
        // Subflows resolve against the built-in flows (there is no tenant here).
        let builtin = builtin_callees(settings)?;
        let resolve = |key: &str| builtin.get(key).map(|c| c.flow.clone());
        checked
            .problems
            .extend(crate::agent::subflow::check_calls(flow, &resolve));
    }
    if checked.problems.is_empty() {
        println!("{}: ok", file.display());
    }
    for p in &checked.problems {
        println!("{}: {p}", file.display());
    }
    Ok(if preflight::has_errors(&checked.problems) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The built-in flows, which subflows in a flow file may call.
fn builtin_callees(settings: &Settings) -> anyhow::Result<crate::agent::Callees> {
    let registry =
        crate::agent::FlowRegistry::load(&settings.agent.flows_dir, &settings.agent.prompts_dir)?;
    Ok(registry.builtin_callees())
}

/// What `flow simulate` runs.
struct FlowRun<'a> {
    file: &'a std::path::Path,
    turns: &'a [String],
    business: &'a str,
    webhook_secret: String,
}

async fn flow_simulate(settings: &Settings, run: FlowRun<'_>) -> anyhow::Result<ExitCode> {
    use crate::agent::simulate;
    let FlowRun {
        file,
        turns,
        business,
        webhook_secret,
    } = run;
    let source = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let base = crate::agent::prompts::Prompts::from_dir(&settings.agent.prompts_dir)?;
    let prepared = match preflight::prepare(&source, &base) {
        Ok(prepared) => prepared,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    for p in &prepared.warnings {
        eprintln!("{}: {p}", file.display());
    }
    let vars = serde_json::json!({"business": {"name": business, "timezone": "UTC"}});
    let now = chrono::Utc::now();
    let callees = builtin_callees(settings)?;
    let runnable = simulate::Runnable {
        flow: &prepared.flow,
        prompts: &prepared.prompts,
        nlu: &prepared.nlu,
        callees: &callees,
    };
    let webhooks = crate::agent::webhook::WebhookClient::new(settings.agent.http_allow_private)?;
    let mut performer = simulate::SimPerformer::new(webhooks, webhook_secret);
    let run = simulate::simulate(runnable, &vars, now, turns, &mut performer).await;
    let results = match run {
        Ok(results) => results,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    for (i, turn) in results.iter().enumerate() {
        println!("#{} > {}", i + 1, turn.input);
        for reply in &turn.replies {
            for line in reply.text.lines() {
                println!("  < {line}");
            }
            for (n, option) in reply.options.iter().enumerate() {
                println!("    {}. {} [{}]", n + 1, option.label, option.id);
            }
        }
        let status = serde_json::to_value(turn.status)?;
        let status = status.as_str().unwrap_or("active");
        for effect in &turn.effects {
            println!("  ~ {effect}");
        }
        println!("  state: {} ({status})", turn.state);
        println!("  slots: {}", serde_json::Value::Object(turn.slots.clone()));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the database ({source}); start one")]
    struct Unreachable {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(Unreachable { source: io });
        assert_eq!(
            describe(&error),
            "cannot reach the database (refused); start one"
        );
    }

    #[test]
    fn causes_not_yet_stated_follow_the_message() {
        let error = anyhow::anyhow!("refused")
            .context("connecting")
            .context("starting");
        assert_eq!(describe(&error), "starting: connecting: refused");
    }
}
