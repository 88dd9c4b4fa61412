//! Two gateway nodes on one PostgreSQL and one Redis: events committed on one node reach sockets
//! on the other through Redis pub/sub.

use sqlx::PgPool;

use crate::common::{spawn_app_with, Visitor};

const REDIS: &str = "redis://127.0.0.1:6379";

#[sqlx::test]
async fn a_reply_produced_on_node_a_reaches_a_socket_on_node_b(pool: PgPool) {
    // Node A runs the workers; node B only serves sockets, so the reply must cross nodes.
    let a = spawn_app_with(pool.clone(), |s| s.redis.url = REDIS.to_owned().into()).await;
    let b = spawn_app_with(pool.clone(), |s| {
        s.redis.url = REDIS.to_owned().into();
        s.jobs.workers = 0;
    })
    .await;
    // Both nodes seeded the same demo tenant; use one channel key.
    let key = a.webchat_key.clone();
    let mut on_b = Visitor::connect(&b.ws_url, &key, None, None).await;
    on_b.say("n1", "hello").await;
    on_b.next_of("ack").await;
    let replies = on_b.outbound(2).await;
    assert_eq!(replies[0]["author"], "bot");

    // A second tab of the same visitor on node A sees the next exchange live as well.
    let mut on_a = Visitor::connect(&a.ws_url, &key, Some(&on_b.token.clone()), Some(3)).await;
    on_b.say("n2", "Talk to a person").await;
    let seen_on_a = on_a.outbound(1).await;
    let seen_on_b = on_b.outbound(1).await;
    assert_eq!(seen_on_a[0]["id"], seen_on_b[0]["id"]);
}
