//! Benchmarks of language identification and of the embedded understanding that includes it.
//!
//! The language profiles are trained before the timed loops (as `NluModel::train` does when a
//! flow is compiled); each loop reads one message: a short one, a long one, one rejected early
//! (`ok 👍`), and the dental demo flow's whole n-gram understanding of a message; plus the
//! one-off training of the profiles from the compiled-in corpora.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use switchboard::agent::parse_flow;
use switchboard::nlu::datetime::TimeContext;
use switchboard::nlu::{language, NluModel};

const SHORT: &str = "hola, tienen hora para mañana por la tarde?";
const LONG: &str = "Guten Abend, ich habe letzte Woche bei Ihnen ein Sofa bestellt und heute \
    eine Mail bekommen, dass die Lieferung sich um zwei Wochen verschiebt. Können Sie mir sagen, \
    ob ich die Bestellung noch kostenlos stornieren kann, oder ob es eine Alternative gibt?";
const REJECTED: &str = "ok 👍";

fn benches(c: &mut Criterion) {
    language::warm_up();
    assert_eq!(language::identify(SHORT).map(|l| l.code), Some("es"));
    assert_eq!(language::identify(LONG).map(|l| l.code), Some("de"));
    assert_eq!(language::identify(REJECTED), None);

    c.bench_function("language_short", |b| {
        b.iter(|| language::identify(black_box(SHORT)))
    });
    c.bench_function("language_long", |b| {
        b.iter(|| language::identify(black_box(LONG)))
    });
    c.bench_function("language_rejected", |b| {
        b.iter(|| language::identify(black_box(REJECTED)))
    });

    c.bench_function("language_train", |b| {
        b.iter(|| language::Profiles::train(black_box(language::CORPORA)))
    });

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("flows/dental_demo.yaml"))
        .expect("read flows/dental_demo.yaml");
    let flow = parse_flow(&yaml).expect("parse flows/dental_demo.yaml");
    let nlu = NluModel::train(&flow.understanding.intents, flow.understanding.threshold)
        .expect("train the demo flow's intents");
    let now = Utc
        .with_ymd_and_hms(2026, 3, 10, 9, 0, 0)
        .single()
        .expect("valid fixed date");
    let time = TimeContext::from_utc(now, chrono_tz::UTC);
    let text = "Hi, can I book a cleaning next Thursday afternoon?";
    c.bench_function("understand_dental", |b| {
        b.iter(|| nlu.understand(black_box(text), &time, "44", None))
    });
}

criterion_group! {
    name = language_id;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(language_id);
