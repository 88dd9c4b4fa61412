//! Tenant isolation of routing: tenant B cannot see, staff or route with tenant A's teams,
//! agents, conversations or decisions, through the API or under row-level security.

use serde_json::{json, Value};
use sqlx::PgPool;
use switchboard::ids::TenantId;
use switchboard::routing::{DecisionTarget, RoutingError};

use super::{agent, conversation, create_team, json_of, members, route, to_team, try_route};
use crate::common::spawn_app;

#[sqlx::test]
async fn tenant_b_cannot_see_or_staff_tenant_a_teams_and_agents(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant_a = app.seed.tenant_id;
    let a_agent = agent(&app, tenant_a, "A", true).await;
    create_team(&app, "sales", json!({"members": members(&[a_agent])})).await;
    let a_conv = conversation(&app, tenant_a).await;
    route(&app, tenant_a, a_conv, &to_team("sales")).await;

    let created: Value = app
        .post(
            "/api/v1/tenants",
            &app.admin_key,
            &json!({"slug": "other-shop", "name": "Other Shop"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let b_key = created["api_key"].as_str().expect("key").to_owned();
    let tenant_b: TenantId = created["tenant"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    app.post(
        "/api/v1/channels",
        &b_key,
        &json!({"kind": "webchat", "name": "B site"}),
    )
    .await;

    let (_, teams) = json_of(app.get("/api/v1/teams", &b_key).await).await;
    assert_eq!(teams, json!([]));
    for path in ["/api/v1/teams/sales", "/api/v1/teams/sales/queue"] {
        assert_eq!(app.get(path, &b_key).await.status(), 404, "{path}");
    }
    assert_eq!(
        app.get(&format!("/api/v1/conversations/{a_conv}/routing"), &b_key)
            .await
            .status(),
        404
    );
    let (_, agents) = json_of(app.get("/api/v1/agents", &b_key).await).await;
    assert_eq!(agents, json!([]));
    let patch = app
        .patch(
            &format!("/api/v1/agents/{a_agent}"),
            &b_key,
            &json!({"available": false}),
        )
        .await;
    assert_eq!(patch.status(), 404);
    let (status, body) = json_of(
        app.post(
            "/api/v1/teams",
            &b_key,
            &json!({"key": "sales", "name": "B sales", "members": [{"agent_id": a_agent}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_agent"))
    );

    // Routing in B to "sales" never reaches A's team or agent: B has no such team.
    let b_conv = conversation(&app, tenant_b).await;
    let d = route(&app, tenant_b, b_conv, &to_team("sales")).await;
    assert_eq!((d.target, d.agent_id), (DecisionTarget::Triage, None));
    // And A's conversation cannot be routed from B's transaction.
    assert!(matches!(
        try_route(&app, tenant_b, a_conv, &to_team("sales")).await,
        Err(RoutingError::ConversationNotFound)
    ));
    // Under B's tenant, only B's routing rows exist.
    let mut tx = app.db.tenant_tx(tenant_b).await.expect("tx");
    let seen: Vec<TenantId> = sqlx::query_scalar(
        "SELECT tenant_id FROM routing_decisions UNION SELECT tenant_id FROM teams UNION SELECT tenant_id FROM team_members",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("select");
    assert_eq!(seen, [tenant_b]);
    let (_, a_still) = json_of(app.get("/api/v1/agents", &app.api_key).await).await;
    assert!(a_still
        .as_array()
        .expect("agents")
        .iter()
        .any(|x| x["id"] == json!(a_agent) && x["available"] == true));
}
