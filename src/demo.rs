//! The demo business: "Smile Dental", a dental clinic with a web-chat channel running the
//! `dental_demo` flow. Seeding is idempotent (re-running reuses the tenant and channel) and hands
//! out a fresh API key and agent password each time, since stored ones cannot be shown again.

use rand::{distributions::Alphanumeric, Rng};
use serde_json::json;

use crate::auth::{agents, api_keys};
use crate::channels::{db as channels_db, ChannelKind};
use crate::db::Db;
use crate::ids::TenantId;
use crate::tenants::db as tenants_db;

/// Slug of the demo tenant.
pub const DEMO_SLUG: &str = "smile-dental";
/// Email of the demo agent.
pub const DEMO_AGENT_EMAIL: &str = "agent@smile-dental.example";

/// What seeding produced.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Public key of the web-chat channel.
    pub webchat_key: String,
    /// A fresh tenant API key.
    pub api_key: String,
    /// A fresh admin API key.
    pub admin_key: String,
    /// The demo agent's password (reset on every seed).
    pub agent_password: String,
}

/// The demo flow's handoff team: the demo agent, available, on the front desk.
async fn seed_front_desk(
    conn: &mut sqlx::PgConnection,
    tenant: crate::ids::TenantId,
    agent: crate::ids::AgentId,
) -> anyhow::Result<()> {
    use crate::routing::{teams_db, Strategy};
    if teams_db::id_of(conn, DEMO_TEAM).await?.is_some() {
        return Ok(());
    }
    let team = teams_db::insert(
        conn,
        tenant,
        DEMO_TEAM,
        "Front desk",
        Strategy::LeastLoaded,
        5,
    )
    .await?;
    let member = teams_db::NewMember {
        agent_id: agent,
        skills: vec!["emergencies".into()],
        max_concurrent: None,
    };
    teams_db::replace_members(conn, tenant, team, &[member]).await?;
    teams_db::set_available(conn, agent, true).await?;
    Ok(())
}

/// Key of the demo's handoff team.
pub const DEMO_TEAM: &str = "front_desk";

/// Create (or reuse) the demo tenant, its web-chat channel and its front-desk team.
pub async fn seed(db: &Db) -> anyhow::Result<DemoSeed> {
    let tenant = match tenants_db::by_slug(&db.system, DEMO_SLUG).await? {
        Some(t) => t,
        None => tenants_db::create(&db.system, DEMO_SLUG, "Smile Dental", "Europe/London").await?,
    };
    let admin_key =
        api_keys::create(&db.system, None, "demo admin", &[api_keys::SCOPE_ADMIN]).await?;
    let mut tx = db.tenant_tx(tenant.id).await?;
    let existing = channels_db::list(&mut tx)
        .await?
        .into_iter()
        .find(|c| c.kind == ChannelKind::Webchat.as_str());
    let channel = match existing {
        Some(c) => c,
        None => {
            let settings = json!({ "flow": "dental_demo" });
            channels_db::insert(
                &mut tx,
                tenant.id,
                ChannelKind::Webchat,
                "Website chat",
                &settings,
                None,
            )
            .await?
        }
    };
    let api_key =
        api_keys::create(&mut *tx, Some(tenant.id), "demo", &[api_keys::SCOPE_TENANT]).await?;
    let agent_password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let agent = agents::upsert(
        &mut tx,
        tenant.id,
        DEMO_AGENT_EMAIL,
        "Dana (front desk)",
        &agent_password,
        "admin",
    )
    .await?;
    seed_front_desk(&mut tx, tenant.id, agent).await?;
    tx.commit().await?;
    Ok(DemoSeed {
        tenant_id: tenant.id,
        webchat_key: channel.public_key,
        api_key: api_key.plain,
        admin_key: admin_key.plain,
        agent_password,
    })
}
