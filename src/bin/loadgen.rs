//! `loadgen`: drives a running Switchboard over the web-chat WebSocket protocol and reports
//! throughput and latency percentiles.
//!
//! * `loadgen chat`: N concurrent visitors each hold a conversation with the bot (a booking that
//!   restarts when it ends); latency is from sending a message to the first bot reply to it.
//! * `loadgen ingest`: N connections each keep a window of messages in flight; latency is from
//!   sending to the server's `ack`, which the server sends only after the message is committed.
//!   Run the server with `SWITCHBOARD_JOBS__WORKERS=0` to measure ingest alone. With `--rate`,
//!   the load is open-loop instead: messages leave on a fixed schedule whatever the server does,
//!   and latency is counted from each message's scheduled send time, so a server that falls
//!   behind shows it in the percentiles rather than by slowing the generator down.
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
    /// Also print throughput and latency per interval of this many milliseconds (by send time),
    /// to see stalls and warm-up that the overall percentiles blend together (0: off).
    #[arg(long, global = true, default_value_t = 0)]
    timeline_ms: u64,
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
        /// Messages in flight per connection (closed loop; ignored with `--rate`).
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Open loop: total messages per second over all connections, sent on a fixed schedule
        /// (0: closed loop with `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
}

/// One message's send (or, open loop, due) time and how long until it was answered.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent: Instant,
    latency: Duration,
}

impl Sample {
    fn since(sent: Instant) -> Self {
        Self {
            sent,
            latency: sent.elapsed(),
        }
    }
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
    let timeline = (args.timeline_ms > 0).then(|| Duration::from_millis(args.timeline_ms));
    match args.mode {
        Mode::Chat {
            visitors,
            messages,
            think_ms,
        } => {
            let key = &args.channel_key;
            chat(&ws_url, key, visitors, messages, think_ms, timeline).await
        }
        Mode::Ingest {
            connections,
            messages,
            window,
            rate,
        } => {
            let load = if rate > 0.0 {
                Load::Rate(rate)
            } else {
                Load::Window(window)
            };
            let key = &args.channel_key;
            ingest(&ws_url, key, connections, messages, load, timeline).await
        }
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

/// The fields of a server frame the ingest modes look at, borrowed from the frame's text (no
/// JSON tree is built per frame: the generator shares the machine with what it measures).
#[derive(Debug, serde::Deserialize)]
struct ServerReply<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default, borrow)]
    client_id: Option<std::borrow::Cow<'a, str>>,
}

impl ServerReply<'_> {
    /// The frame as a failure when it is an `error` frame.
    fn error(&self, text: &str) -> anyhow::Result<()> {
        if self.kind == "error" {
            let frame: Value = serde_json::from_str(text)?;
            anyhow::bail!("server error: {}", frame["message"]);
        }
        Ok(())
    }
}

/// The next text frame, from a whole socket or its read half.
async fn next_text<S>(ws: &mut S) -> anyhow::Result<String>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no frame for 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
        if let Message::Text(text) = msg {
            return Ok(text);
        }
    }
}

/// A `send` frame for the ingest modes; `client_id` is `[A-Za-z0-9-]` only, nothing to escape.
fn send_frame(client_id: &str) -> Message {
    Message::Text(format!(
        r#"{{"type":"send","client_id":"{client_id}","text":"hello there"}}"#
    ))
}

/// The next text frame as JSON, from a whole socket or its read half.
async fn next_json<S>(ws: &mut S) -> anyhow::Result<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    Ok(serde_json::from_str(&next_text(ws).await?)?)
}

async fn chat(
    ws_url: &str,
    key: &str,
    visitors: usize,
    messages: usize,
    think_ms: u64,
    timeline: Option<Duration>,
) -> anyhow::Result<()> {
    let (started, cpu_at_start) = (Instant::now(), own_cpu());
    let tasks: Vec<_> = (0..visitors)
        .map(|v| {
            let (url, key) = (ws_url.to_owned(), key.to_owned());
            tokio::spawn(async move { visitor(&url, &key, v, messages, think_ms).await })
        })
        .collect();
    let (samples, failures) = gather(tasks, "visitor").await?;
    let run = Run {
        started,
        cpu_at_start,
        failures,
        timeline,
    };
    report("chat: send → first bot reply", &samples, &run);
    Ok(())
}

async fn visitor(
    ws_url: &str,
    key: &str,
    id: usize,
    messages: usize,
    think_ms: u64,
) -> anyhow::Result<Vec<Sample>> {
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
                        latencies.push(Sample::since(sent));
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

/// How ingest load is offered.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// Closed loop: each connection keeps this many messages in flight.
    Window(usize),
    /// Open loop: this many messages per second in all, on a fixed schedule.
    Rate(f64),
}

async fn ingest(
    ws_url: &str,
    key: &str,
    connections: usize,
    messages: usize,
    load: Load,
    timeline: Option<Duration>,
) -> anyhow::Result<()> {
    let sockets =
        futures::future::try_join_all((0..connections).map(|_| connect(ws_url, key))).await?;
    let (started, cpu_at_start) = (Instant::now(), own_cpu());
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| match load {
            Load::Window(window) => tokio::spawn(pump(ws, c, messages, window)),
            Load::Rate(rate) => {
                let schedule = Schedule::for_connection(started, rate, connections, c);
                tokio::spawn(paced(ws, c, messages, schedule))
            }
        })
        .collect();
    let (samples, failures) = gather(tasks, "connection").await?;
    let run = Run {
        started,
        cpu_at_start,
        failures,
        timeline,
    };
    let title = match load {
        Load::Window(w) => format!("ingest: send → durable ack ({connections} connections × {w} in flight)"),
        Load::Rate(r) => format!(
            "ingest: scheduled send → durable ack (open loop, {r:.0} messages/s offered over {connections} connections)"
        ),
    };
    report(&title, &samples, &run);
    Ok(())
}

/// When one connection's messages are due: evenly spaced, connections staggered so the
/// whole load is smooth rather than arriving in bursts.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    first: Instant,
    every: Duration,
}

impl Schedule {
    fn for_connection(start: Instant, rate: f64, connections: usize, conn: usize) -> Self {
        let per_connection = rate / connections.max(1) as f64;
        let every = Duration::from_secs_f64(1.0 / per_connection);
        let stagger = every.mul_f64(conn as f64 / connections.max(1) as f64);
        Self {
            first: start + stagger,
            every,
        }
    }

    fn due(&self, n: usize) -> Instant {
        self.first + self.every.mul_f64(n as f64)
    }
}

/// Open-loop sender: message `n` leaves at `schedule.due(n)` whether or not earlier ones were
/// acknowledged; its latency runs from that due time (so time spent queued behind a slow server,
/// including in this process, counts).
async fn paced(
    ws: Socket,
    conn: usize,
    messages: usize,
    schedule: Schedule,
) -> anyhow::Result<Vec<Sample>> {
    let (mut sink, mut stream) = ws.split();
    let prefix = format!("in{conn}-{}-", std::process::id());
    let sender = {
        let prefix = prefix.clone();
        tokio::spawn(async move {
            for n in 0..messages {
                tokio::time::sleep_until(schedule.due(n).into()).await;
                sink.send(send_frame(&format!("{prefix}{n}"))).await?;
            }
            anyhow::Ok(sink)
        })
    };
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let text = next_text(&mut stream).await?;
        let reply: ServerReply = serde_json::from_str(&text)?;
        reply.error(&text)?;
        if reply.kind == "ack" {
            let n = reply
                .client_id
                .as_deref()
                .and_then(|c| c.strip_prefix(prefix.as_str()))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(n) = n {
                latencies.push(Sample::since(schedule.due(n)));
            }
        }
    }
    let _sink = sender.await??;
    Ok(latencies)
}

async fn pump(
    mut ws: Socket,
    conn: usize,
    messages: usize,
    window: usize,
) -> anyhow::Result<Vec<Sample>> {
    let mut in_flight: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(messages);
    let mut sent = 0;
    while latencies.len() < messages {
        while sent < messages && in_flight.len() < window.max(1) {
            let client_id = format!("in{conn}-{sent}-{}", std::process::id());
            ws.send(send_frame(&client_id)).await?;
            in_flight.insert(client_id, Instant::now());
            sent += 1;
        }
        let text = next_text(&mut ws).await?;
        let reply: ServerReply = serde_json::from_str(&text)?;
        reply.error(&text)?;
        if reply.kind == "ack" {
            if let Some(at) = reply.client_id.and_then(|c| in_flight.remove(c.as_ref())) {
                latencies.push(Sample::since(at));
            }
        }
    }
    Ok(latencies)
}

/// Wait for every worker task; pool their latencies and count the ones that failed.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Sample>>>>,
    what: &str,
) -> anyhow::Result<(Vec<Sample>, usize)> {
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

/// CPU time this process has used so far (user + system), from `/proc/self/stat`; None where
/// that is not available. `/proc` counts in USER_HZ ticks, 100 per second on Linux.
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// How a run went as a whole.
struct Run {
    started: Instant,
    /// This process's CPU time when the run started.
    cpu_at_start: Option<Duration>,
    failures: usize,
    /// Interval of the per-interval breakdown (None: overall figures only).
    timeline: Option<Duration>,
}

fn report(title: &str, samples: &[Sample], run: &Run) {
    let elapsed = run.started.elapsed();
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    println!("{title}");
    println!(
        "  completed:  {} in {:.2} s ({} failed workers)",
        latencies.len(),
        elapsed.as_secs_f64(),
        run.failures
    );
    println!(
        "  throughput: {:.0} messages/s",
        latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!("  latency ms: {}", percentiles(&mut latencies));
    if let (Some(start), Some(now)) = (run.cpu_at_start, own_cpu()) {
        let per = now.saturating_sub(start).as_secs_f64() * 1e6 / latencies.len().max(1) as f64;
        println!("  load generator's own CPU: {per:.1} µs per message (it shares the machine)");
    }
    if let Some(step) = run.timeline {
        timeline(samples, run.started, step);
    }
}

/// p50/p95/p99/max of `latencies`, in milliseconds.
fn percentiles(latencies: &mut [Duration]) -> String {
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    )
}

/// Messages sent in each interval of `step` after `started`, with their latency percentiles.
fn timeline(samples: &[Sample], started: Instant, step: Duration) {
    let step_ms = step.as_millis().max(1);
    let mut buckets: std::collections::BTreeMap<u128, Vec<Duration>> = Default::default();
    for s in samples {
        let at = s.sent.saturating_duration_since(started).as_millis() / step_ms;
        buckets.entry(at).or_default().push(s.latency);
    }
    println!("  timeline (by send time):");
    for (bucket, mut latencies) in buckets {
        let from = (bucket * step_ms) as f64 / 1000.0;
        let rate = latencies.len() as f64 * 1000.0 / step_ms as f64;
        println!(
            "    t+{from:>7.2}s  {rate:>8.0}/s  {}",
            percentiles(&mut latencies)
        );
    }
}
