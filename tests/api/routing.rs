//! Intake routing: teams and agents over the API, decisions and hand-back to the bot visible
//! through the API, and refused requests; the strategies and tenant isolation are in the
//! submodules. Routing is driven through `route_conversation` in a tenant transaction, as the
//! flow engine will call it.

use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::ids::{AgentId, ChannelId, ContactId, ConversationId, TenantId};
use switchboard::routing::{
    route_conversation, DecisionTarget, Priority, RouteRequest, RouteTarget, RoutingDecision,
    RoutingError, Strategy,
};

use crate::common::{spawn_app, TestApp};

mod isolation;
mod strategies;

/// An agent of `tenant`, available or not.
async fn agent(app: &TestApp, tenant: TenantId, name: &str, available: bool) -> AgentId {
    let id = AgentId::new();
    let mut tx = app.db.tenant_tx(tenant).await.expect("tx");
    sqlx::query(
        "INSERT INTO agents (id, tenant_id, email, display_name, password_hash, available) \
         VALUES ($1, $2, $3, $4, 'x', $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(format!("{}@example.test", name.to_lowercase()))
    .bind(name)
    .bind(available)
    .execute(&mut *tx)
    .await
    .expect("insert agent");
    tx.commit().await.expect("commit");
    id
}

/// A fresh open conversation of `tenant` on its first channel, owned by the bot.
async fn conversation(app: &TestApp, tenant: TenantId) -> ConversationId {
    let mut tx = app.db.tenant_tx(tenant).await.expect("tx");
    let channel: ChannelId =
        sqlx::query_scalar("SELECT id FROM channels ORDER BY created_at LIMIT 1")
            .fetch_one(&mut *tx)
            .await
            .expect("channel");
    let contact = ContactId::new();
    let id = ConversationId::new();
    sqlx::query("INSERT INTO contacts (id, tenant_id, display_name) VALUES ($1, $2, 'Customer')")
        .bind(contact)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .expect("contact");
    sqlx::query(
        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(tenant)
    .bind(channel)
    .bind(contact)
    .execute(&mut *tx)
    .await
    .expect("conversation");
    tx.commit().await.expect("commit");
    id
}

async fn try_route(
    app: &TestApp,
    tenant: TenantId,
    conv: ConversationId,
    req: &RouteRequest,
) -> Result<RoutingDecision, RoutingError> {
    let mut tx = app.db.tenant_tx(tenant).await.expect("tx");
    let decision = route_conversation(&mut tx, tenant, conv, req).await?;
    tx.commit().await.expect("commit");
    Ok(decision)
}

async fn route(
    app: &TestApp,
    tenant: TenantId,
    conv: ConversationId,
    req: &RouteRequest,
) -> RoutingDecision {
    try_route(app, tenant, conv, req).await.expect("routed")
}

fn to_team(key: &str) -> RouteRequest {
    RouteRequest::new(RouteTarget::Team(key.into()), "test")
}

/// Route a fresh conversation to `key`; the agent it got, if any.
async fn route_new(app: &TestApp, key: &str) -> Option<AgentId> {
    let tenant = app.seed.tenant_id;
    let conv = conversation(app, tenant).await;
    route(app, tenant, conv, &to_team(key)).await.agent_id
}

async fn create_team(app: &TestApp, key: &str, body: Value) -> Value {
    let mut body = body;
    body["key"] = json!(key);
    body["name"] = json!(format!("Team {key}"));
    let resp = app.post("/api/v1/teams", &app.api_key, &body).await;
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    resp.json().await.expect("json")
}

fn members(agents: &[AgentId]) -> Value {
    json!(agents
        .iter()
        .map(|a| json!({"agent_id": a}))
        .collect::<Vec<_>>())
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

#[sqlx::test]
async fn teams_are_created_listed_updated_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let (ana, ben) = (
        agent(&app, tenant, "Ana", true).await,
        agent(&app, tenant, "Ben", false).await,
    );
    let team = create_team(
        &app,
        "sales",
        json!({"max_concurrent": 3, "members": [
            {"agent_id": ben, "skills": ["Spanish ", "VIP"], "max_concurrent": 1},
            {"agent_id": ana}]}),
    )
    .await;
    assert_eq!(team["strategy"], "least_loaded");
    assert_eq!(team["max_concurrent"], 3);
    assert_eq!(
        team["members"][0]["agent_id"],
        json!(ben),
        "member order kept"
    );
    assert_eq!(team["members"][0]["skills"], json!(["spanish", "vip"]));
    assert_eq!(team["members"][0]["display_name"], "Ben");
    assert_eq!(team["members"][0]["available"], false);
    assert_eq!(team["members"][1]["max_concurrent"], Value::Null);

    let again = app
        .post(
            "/api/v1/teams",
            &app.api_key,
            &json!({"key": "sales", "name": "Again"}),
        )
        .await;
    assert_eq!(json_of(again).await.1["error"]["code"], "team_exists");
    let bad_key = app
        .post(
            "/api/v1/teams",
            &app.api_key,
            &json!({"key": "Sales Team", "name": "x"}),
        )
        .await;
    let (status, body) = json_of(bad_key).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_key"))
    );
    let stranger = AgentId::new();
    let (status, body) = json_of(
        app.post(
            "/api/v1/teams",
            &app.api_key,
            &json!({"key": "support", "name": "Support", "members": [{"agent_id": stranger}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("unknown_agent"))
    );
    assert_eq!(body["error"]["details"]["agent_ids"], json!([stranger]));
    assert_eq!(
        app.get("/api/v1/teams/support", &app.api_key)
            .await
            .status(),
        404,
        "nothing half-created"
    );

    let updated = app
        .patch(
            "/api/v1/teams/sales",
            &app.api_key,
            &json!({"strategy": "round_robin", "members": [{"agent_id": ana, "skills": ["billing"]}]}),
        )
        .await;
    let (status, updated) = json_of(updated).await;
    assert_eq!(status, 200);
    assert_eq!(updated["strategy"], "round_robin");
    assert_eq!(updated["name"], "Team sales", "omitted fields stay");
    assert_eq!(updated["members"].as_array().map(Vec::len), Some(1));
    let (_, list) = json_of(app.get("/api/v1/teams", &app.api_key).await).await;
    let sales: Vec<&Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["key"] != "front_desk") // the demo seed's team
        .collect();
    assert_eq!(sales.len(), 1, "{list}");
    assert_eq!(sales[0]["members"][0]["skills"], json!(["billing"]));

    assert_eq!(
        app.delete("/api/v1/teams/sales", &app.api_key)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.get("/api/v1/teams/sales", &app.api_key).await.status(),
        404
    );
    assert_eq!(
        app.delete("/api/v1/teams/sales", &app.api_key)
            .await
            .status(),
        404
    );
}

#[sqlx::test]
async fn the_decision_is_visible_on_the_conversation_and_in_its_history(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    create_team(
        &app,
        "es",
        json!({"members": [{"agent_id": a, "skills": ["spanish"]}]}),
    )
    .await;
    let conv = conversation(&app, tenant).await;
    let req = RouteRequest {
        target: RouteTarget::Team("es".into()),
        strategy: Some(Strategy::Skill),
        skills: vec!["spanish".into()],
        category: Some("booking".into()),
        priority: Some(Priority::High),
        language: Some("es".into()),
        confidence: Some(0.87),
        min_confidence: Some(0.5),
        reason: "customer wrote in Spanish".into(),
    };
    route(&app, tenant, conv, &req).await;

    let (status, body) = json_of(
        app.get(&format!("/api/v1/conversations/{conv}"), &app.api_key)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["owner_kind"], "human");
    assert_eq!(body["owner_agent_id"], json!(a));
    assert_eq!(body["status"], "handoff");
    let r = &body["routing"];
    assert_eq!(
        (
            r["target"].as_str(),
            r["team"].as_str(),
            r["strategy"].as_str()
        ),
        (Some("agent"), Some("es"), Some("skill"))
    );
    assert_eq!(
        (
            r["category"].as_str(),
            r["priority"].as_str(),
            r["language"].as_str()
        ),
        (Some("booking"), Some("high"), Some("es"))
    );
    assert_eq!(
        r["confidence"].as_f64().map(|c| (c * 100.0).round()),
        Some(87.0)
    );
    assert_eq!(r["reason"], "customer wrote in Spanish");
    let lease: Option<bool> = sqlx::query_scalar(
        "SELECT owner_lease_until > now() + interval '20 minutes' FROM conversations WHERE id = $1",
    )
    .bind(conv)
    .fetch_one(&app.db.system)
    .await
    .expect("lease");
    assert_eq!(lease, Some(true), "a human owner holds a lease");

    // Back to the bot.
    let back = route(
        &app,
        tenant,
        conv,
        &RouteRequest::new(RouteTarget::Bot, "agent handed back"),
    )
    .await;
    assert_eq!(
        (back.target, back.agent_id, back.team),
        (DecisionTarget::Bot, None, None)
    );
    let (_, body) = json_of(
        app.get(&format!("/api/v1/conversations/{conv}"), &app.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (body["owner_kind"].as_str(), body["status"].as_str()),
        (Some("bot"), Some("open"))
    );
    assert_eq!(body["owner_agent_id"], Value::Null);
    assert_eq!(body["routing"]["target"], "bot");

    let (status, history) = json_of(
        app.get(
            &format!("/api/v1/conversations/{conv}/routing"),
            &app.api_key,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let targets: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|d| d["target"].as_str())
        .collect();
    assert_eq!(targets, ["agent", "bot"]);
    assert_eq!(
        history[1], body["routing"],
        "the conversation carries the latest decision"
    );
    assert_eq!(history[1]["reason"], "agent handed back");
    assert_eq!(history[0]["agent_id"], json!(a));
    let missing = ConversationId::new();
    assert_eq!(
        app.get(
            &format!("/api/v1/conversations/{missing}/routing"),
            &app.api_key
        )
        .await
        .status(),
        404
    );
}

#[sqlx::test]
async fn closed_unknown_or_malformed_requests_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let conv = conversation(&app, tenant).await;
    let mut bad = to_team("x");
    bad.confidence = Some(1.5);
    assert!(matches!(
        try_route(&app, tenant, conv, &bad).await,
        Err(RoutingError::InvalidRequest(_))
    ));
    let missing = ConversationId::new();
    assert!(matches!(
        try_route(&app, tenant, missing, &to_team("x")).await,
        Err(RoutingError::ConversationNotFound)
    ));
    sqlx::query("UPDATE conversations SET status = 'closed' WHERE id = $1")
        .bind(conv)
        .execute(&app.db.system)
        .await
        .expect("close");
    assert!(matches!(
        try_route(&app, tenant, conv, &to_team("x")).await,
        Err(RoutingError::ConversationClosed)
    ));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM routing_decisions")
        .fetch_one(&app.db.system)
        .await
        .expect("count");
    assert_eq!(stored, 0, "refusals write nothing");
}

#[sqlx::test]
async fn agent_availability_is_set_through_the_api(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", false).await;
    let (status, body) = json_of(
        app.patch(
            &format!("/api/v1/agents/{a}"),
            &app.api_key,
            &json!({"available": true}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            status,
            body["available"].as_bool(),
            body["open_conversations"].as_i64()
        ),
        (200, Some(true), Some(0))
    );
    let (_, list) = json_of(app.get("/api/v1/agents", &app.api_key).await).await;
    assert!(list
        .as_array()
        .expect("agents")
        .iter()
        .any(|x| x["id"] == json!(a) && x["available"] == true));
    let missing = AgentId::new();
    assert_eq!(
        app.patch(
            &format!("/api/v1/agents/{missing}"),
            &app.api_key,
            &json!({"available": true})
        )
        .await
        .status(),
        404
    );
    let (status, body) = json_of(
        app.patch(
            &format!("/api/v1/agents/{a}"),
            &app.api_key,
            &json!({"available": "yes"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );
}
