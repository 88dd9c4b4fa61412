//! `loadgen`: drives a running Switchboard over the web-chat WebSocket protocol and reports
//! throughput and latency percentiles.
//!
//! * `loadgen chat`: N concurrent visitors each hold a conversation with the bot (a booking that
//!   restarts when it ends); latency is from sending a message to the first bot reply to it.
//! * `loadgen ingest`: N connections each keep a window of messages in flight; latency is from
//!   sending to the server's `ack`, which the server sends only after the message is committed.
//!   Run the server with `SWITCHBOARD_JOBS__WORKERS=0` to measure ingest alone.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Load generator for Switchboard.
#[derive(Debug, Parser)]
#[command(name = "loadgen", about)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Public key of a web-chat channel (printed by `switchboard demo`).
    #[arg(long, global = true, default_value = "")]
    channel_key: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Visitors chatting with the bot: send → first bot reply.
    Chat {
        /// Concurrent visitors.
        #[arg(long, default_value_t = 50)]
        visitors: usize,
        /// Messages each visitor sends.
        #[arg(long, default_value_t = 20)]
        messages: usize,
        /// Pause between a reply and the next message, in milliseconds.
        #[arg(long, default_value_t = 0)]
        think_ms: u64,
    },
    /// Raw ingest: send → durable ack, with a window of messages in flight per connection.
    Ingest {
        /// Concurrent connections (each is one visitor).
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Messages per connection.
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// Messages in flight per connection.
        #[arg(long, default_value_t = 8)]
        window: usize,
    },
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SCRIPT: [&str; 5] = ["hello", "1", "Ann Smith", "ann@example.com", "tomorrow"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.channel_key.is_empty(),
        "--channel-key is required (run `switchboard demo` to get one)"
    );
    let ws_url = format!(
        "{}/webchat/v1/ws",
        args.url.replacen("http", "ws", 1).trim_end_matches('/')
    );
    match args.mode {
        Mode::Chat {
            visitors,
            messages,
            think_ms,
        } => chat(&ws_url, &args.channel_key, visitors, messages, think_ms).await,
        Mode::Ingest {
            connections,
            messages,
            window,
        } => ingest(&ws_url, &args.channel_key, connections, messages, window).await,
    }
}

async fn connect(ws_url: &str, key: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(ws_url, None, true).await?;
    let hello = json!({"type": "hello", "channel_key": key});
    ws.send(Message::Text(hello.to_string())).await?;
    loop {
        let frame = next_json(&mut ws).await?;
        match frame["type"].as_str() {
            Some("ready") => return Ok(ws),
            Some("error") => anyhow::bail!("server refused hello: {}", frame["message"]),
            _ => {}
        }
    }
}

async fn next_json(ws: &mut Socket) -> anyhow::Result<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no frame for 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
        if let Message::Text(text) = msg {
            return Ok(serde_json::from_str(&text)?);
        }
    }
}

async fn chat(
    ws_url: &str,
    key: &str,
    visitors: usize,
    messages: usize,
    think_ms: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..visitors)
        .map(|v| {
            let (url, key) = (ws_url.to_owned(), key.to_owned());
            tokio::spawn(async move { visitor(&url, &key, v, messages, think_ms).await })
        })
        .collect();
    let (latencies, failures) = gather(tasks, "visitor").await?;
    report(
        "chat: send → first bot reply",
        &latencies,
        started.elapsed(),
        failures,
    );
    Ok(())
}

async fn visitor(
    ws_url: &str,
    key: &str,
    id: usize,
    messages: usize,
    think_ms: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut ws = connect(ws_url, key).await?;
    let mut latencies = Vec::with_capacity(messages);
    for n in 0..messages {
        let client_id = format!("lg{id}-{n}-{}", std::process::id());
        let text = SCRIPT[n % SCRIPT.len()];
        let sent = Instant::now();
        let frame = json!({"type": "send", "client_id": client_id, "text": text});
        ws.send(Message::Text(frame.to_string())).await?;
        let mut acked_seq = None;
        loop {
            let frame = next_json(&mut ws).await?;
            match frame["type"].as_str() {
                Some("ack") if frame["client_id"] == client_id.as_str() => {
                    acked_seq = frame["seq"].as_i64();
                }
                Some("message") if frame["message"]["direction"] == "outbound" => {
                    let seq = frame["message"]["seq"].as_i64().unwrap_or(0);
                    if acked_seq.is_some_and(|a| seq > a) || acked_seq.is_none() {
                        latencies.push(sent.elapsed());
                        break;
                    }
                }
                Some("error") => anyhow::bail!("server error: {}", frame["message"]),
                _ => {}
            }
        }
        // Drain the rest of this turn's replies so they are not counted for the next message.
        drain(&mut ws).await;
        if think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(think_ms)).await;
        }
    }
    Ok(latencies)
}

async fn drain(ws: &mut Socket) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(2), ws.next()).await {}
}

async fn ingest(
    ws_url: &str,
    key: &str,
    connections: usize,
    messages: usize,
    window: usize,
) -> anyhow::Result<()> {
    let sockets =
        futures::future::try_join_all((0..connections).map(|_| connect(ws_url, key))).await?;
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| tokio::spawn(pump(ws, c, messages, window)))
        .collect();
    let (latencies, failures) = gather(tasks, "connection").await?;
    report(
        "ingest: send → durable ack",
        &latencies,
        started.elapsed(),
        failures,
    );
    Ok(())
}

async fn pump(
    mut ws: Socket,
    conn: usize,
    messages: usize,
    window: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut in_flight: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(messages);
    let mut sent = 0;
    while latencies.len() < messages {
        while sent < messages && in_flight.len() < window.max(1) {
            let client_id = format!("in{conn}-{sent}-{}", std::process::id());
            let frame = json!({"type": "send", "client_id": client_id, "text": "hello there"});
            ws.send(Message::Text(frame.to_string())).await?;
            in_flight.insert(client_id, Instant::now());
            sent += 1;
        }
        let frame = next_json(&mut ws).await?;
        match frame["type"].as_str() {
            Some("ack") => {
                if let Some(at) = frame["client_id"]
                    .as_str()
                    .and_then(|c| in_flight.remove(c))
                {
                    latencies.push(at.elapsed());
                }
            }
            Some("error") => anyhow::bail!("server error: {}", frame["message"]),
            _ => {}
        }
    }
    Ok(latencies)
}

/// Wait for every worker task; pool their latencies and count the ones that failed.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>>,
    what: &str,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await? {
            Ok(mut l) => latencies.append(&mut l),
            Err(e) => {
                failures += 1;
                eprintln!("{what} failed: {e:#}");
            }
        }
    }
    Ok((latencies, failures))
}

fn report(title: &str, latencies: &[Duration], elapsed: Duration, failures: usize) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let pct = |p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i].as_secs_f64() * 1000.0
    };
    println!("{title}");
    println!(
        "  completed:  {} in {:.2} s ({} failed workers)",
        sorted.len(),
        elapsed.as_secs_f64(),
        failures
    );
    println!(
        "  throughput: {:.0} messages/s",
        sorted.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "  latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
}
