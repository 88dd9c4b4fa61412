//! Each strategy choosing the expected agent across several conversations, queues when nobody
//! fits, triage below the confidence threshold, and exact capacities under concurrency.

use serde_json::json;
use sqlx::PgPool;
use switchboard::ids::AgentId;
use switchboard::routing::{route_conversation, DecisionTarget, Priority, Strategy};

use super::{agent, conversation, create_team, json_of, members, route, route_new, to_team};
use crate::common::spawn_app;

#[sqlx::test]
async fn round_robin_cycles_through_available_members(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    let b = agent(&app, tenant, "B", true).await;
    let c = agent(&app, tenant, "C", true).await;
    create_team(
        &app,
        "front",
        json!({"strategy": "round_robin", "members": members(&[a, b, c])}),
    )
    .await;

    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(route_new(&app, "front").await);
    }
    assert_eq!(got, [Some(a), Some(b), Some(c), Some(a)]);

    // B goes away: after A (the cursor) comes C.
    let resp = app
        .patch(
            &format!("/api/v1/agents/{b}"),
            &app.api_key,
            &json!({"available": false}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(route_new(&app, "front").await, Some(c));
    assert_eq!(route_new(&app, "front").await, Some(a));
}

#[sqlx::test]
async fn least_loaded_picks_the_agent_with_fewest_open_conversations(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    let b = agent(&app, tenant, "B", true).await;
    let c = agent(&app, tenant, "C", true).await;
    // Load A with two conversations and B with one, through single-member teams.
    create_team(&app, "only-a", json!({"members": members(&[a])})).await;
    create_team(&app, "only-b", json!({"members": members(&[b])})).await;
    let a_convs = [
        route_new(&app, "only-a").await,
        route_new(&app, "only-a").await,
    ];
    assert_eq!(a_convs, [Some(a), Some(a)]);
    assert_eq!(route_new(&app, "only-b").await, Some(b));
    create_team(
        &app,
        "all",
        json!({"strategy": "least_loaded", "members": members(&[a, b, c])}),
    )
    .await;

    assert_eq!(route_new(&app, "all").await, Some(c), "C had none");
    // Now A 2, B 1, C 1: B and C tie, B is listed first.
    assert_eq!(route_new(&app, "all").await, Some(b));
    // Closing A's conversations frees A.
    let mut tx = app.db.tenant_tx(tenant).await.expect("tx");
    sqlx::query("UPDATE conversations SET status = 'closed' WHERE owner_agent_id = $1")
        .bind(a)
        .execute(&mut *tx)
        .await
        .expect("close");
    tx.commit().await.expect("commit");
    assert_eq!(route_new(&app, "all").await, Some(a));

    let (_, agents) = json_of(app.get("/api/v1/agents", &app.api_key).await).await;
    let load: Vec<(String, i64)> = agents
        .as_array()
        .expect("agents")
        .iter()
        .map(|x| {
            (
                x["display_name"].as_str().unwrap_or("").to_owned(),
                x["open_conversations"].as_i64().unwrap_or(-1),
            )
        })
        .filter(|(name, _)| name.len() == 1)
        .collect();
    assert_eq!(load, [("A".into(), 1), ("B".into(), 2), ("C".into(), 1)]);
}

#[sqlx::test]
async fn skill_match_routes_to_agents_with_every_skill(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    let b = agent(&app, tenant, "B", true).await;
    let c = agent(&app, tenant, "C", true).await;
    create_team(
        &app,
        "support",
        json!({"strategy": "skill", "members": [
            {"agent_id": a, "skills": ["spanish"]},
            {"agent_id": b, "skills": ["spanish", "billing"]},
            {"agent_id": c, "skills": ["billing"]}]}),
    )
    .await;
    let mut req = to_team("support");
    req.skills = vec!["Billing".into(), "spanish".into()];
    for _ in 0..2 {
        let conv = conversation(&app, tenant).await;
        let d = route(&app, tenant, conv, &req).await;
        assert_eq!((d.agent_id, d.strategy), (Some(b), Some(Strategy::Skill)));
        assert_eq!(d.skills, ["billing", "spanish"]);
    }
    req.skills = vec!["billing".into()];
    let conv = conversation(&app, tenant).await;
    assert_eq!(
        route(&app, tenant, conv, &req).await.agent_id,
        Some(c),
        "B is busier"
    );

    req.skills = vec!["german".into()];
    let conv = conversation(&app, tenant).await;
    let d = route(&app, tenant, conv, &req).await;
    assert_eq!((d.target, d.agent_id), (DecisionTarget::Queue, None));
    assert!(
        d.detail.contains("no member has every required skill"),
        "{}",
        d.detail
    );
}

#[sqlx::test]
async fn with_nobody_available_the_conversation_waits_in_the_team_queue(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let away = agent(&app, tenant, "Away", false).await;
    let busy = agent(&app, tenant, "Busy", true).await;
    create_team(
        &app,
        "sales",
        json!({"members": [{"agent_id": away}, {"agent_id": busy, "max_concurrent": 1}]}),
    )
    .await;
    assert_eq!(route_new(&app, "sales").await, Some(busy));

    let normal = conversation(&app, tenant).await;
    let d = route(&app, tenant, normal, &to_team("sales")).await;
    assert_eq!(
        (d.target, d.team.as_deref()),
        (DecisionTarget::Queue, Some("sales"))
    );
    assert!(d.detail.contains("at capacity"), "{}", d.detail);
    let urgent = conversation(&app, tenant).await;
    let mut req = to_team("sales");
    req.priority = Some(Priority::Urgent);
    route(&app, tenant, urgent, &req).await;

    let (_, conv) = json_of(
        app.get(&format!("/api/v1/conversations/{normal}"), &app.api_key)
            .await,
    )
    .await;
    assert_eq!(
        (conv["status"].as_str(), conv["owner_kind"].as_str()),
        (Some("handoff"), Some("none"))
    );
    let (status, queue) = json_of(app.get("/api/v1/teams/sales/queue", &app.api_key).await).await;
    assert_eq!(status, 200);
    let order: Vec<&str> = queue
        .as_array()
        .expect("queue")
        .iter()
        .filter_map(|e| e["conversation_id"].as_str())
        .collect();
    assert_eq!(
        order,
        [urgent.to_string(), normal.to_string()],
        "urgent first"
    );
    assert_eq!(queue[0]["routing"]["priority"], "urgent");
    assert_eq!(queue[1]["contact_name"], "Customer");

    // A queue with conversations in it cannot be deleted out from under them.
    let (status, body) = json_of(app.delete("/api/v1/teams/sales", &app.api_key).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("team_has_queue"))
    );
}

#[sqlx::test]
async fn low_confidence_and_unknown_teams_go_to_triage(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    create_team(&app, "billing", json!({"members": members(&[a])})).await;

    let unsure = conversation(&app, tenant).await;
    let mut req = to_team("billing");
    req.category = Some("billing".into());
    req.confidence = Some(0.42);
    req.min_confidence = Some(0.6);
    let d = route(&app, tenant, unsure, &req).await;
    assert_eq!(
        (d.target, d.team.as_deref(), d.agent_id),
        (DecisionTarget::Triage, Some("triage"), None)
    );
    assert!(d.detail.contains("0.42 is below 0.6"), "{}", d.detail);

    let sure = conversation(&app, tenant).await;
    req.confidence = Some(0.9);
    assert_eq!(route(&app, tenant, sure, &req).await.agent_id, Some(a));

    let lost = conversation(&app, tenant).await;
    let d = route(&app, tenant, lost, &to_team("no-such-team")).await;
    assert_eq!(d.target, DecisionTarget::Triage);
    assert!(d.detail.contains("unknown team"), "{}", d.detail);

    let (_, queue) = json_of(app.get("/api/v1/teams/triage/queue", &app.api_key).await).await;
    let ids: Vec<&str> = queue
        .as_array()
        .expect("queue")
        .iter()
        .filter_map(|e| e["conversation_id"].as_str())
        .collect();
    assert_eq!(ids, [unsure.to_string(), lost.to_string()]);
    let (_, teams) = json_of(app.get("/api/v1/teams", &app.api_key).await).await;
    let keys: Vec<&str> = teams
        .as_array()
        .expect("teams")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["billing", "front_desk", "triage"],
        "triage created on first use, once"
    );
}

#[sqlx::test]
async fn concurrent_routings_never_exceed_an_agents_capacity(pool: PgPool) {
    let app = spawn_app(pool).await;
    let tenant = app.seed.tenant_id;
    let a = agent(&app, tenant, "A", true).await;
    let b = agent(&app, tenant, "B", true).await;
    // Four teams share both agents: capacity counts across teams, so team locks alone are not
    // enough.
    let keys = ["t0", "t1", "t2", "t3"];
    for key in keys {
        let body = json!({"max_concurrent": 2, "members": members(&[a, b])});
        create_team(&app, key, body).await;
    }
    let mut convs = Vec::new();
    for _ in 0..16 {
        convs.push(conversation(&app, tenant).await);
    }
    let routings = convs.iter().enumerate().map(|(i, &conv)| {
        let db = app.db.clone();
        let key = keys[i % keys.len()];
        async move {
            let mut tx = db.tenant_tx(tenant).await.expect("tx");
            let d = route_conversation(&mut tx, tenant, conv, &to_team(key))
                .await
                .expect("route");
            tx.commit().await.expect("commit");
            d
        }
    });
    let decisions = futures::future::join_all(routings.map(tokio::spawn)).await;
    let assigned: Vec<AgentId> = decisions
        .into_iter()
        .filter_map(|d| d.expect("task").agent_id)
        .collect();
    assert_eq!(assigned.iter().filter(|&&x| x == a).count(), 2);
    assert_eq!(assigned.iter().filter(|&&x| x == b).count(), 2);
}
