//! The audit trail's reads at scale (a measurement, not a test): an embedded store is filled
//! with 10,000 made-up events over 30 days, then with 1,000,000, and each time a page of every
//! event, a deep page, a page of one token's, one actor's and one tenant's events is read 30
//! times. Each read is served from its own index (a count per day, then the days it shows), so
//! its time follows the page, not the log. Prints a Markdown table of the median milliseconds.
//! `cargo bench -p m2m-shared --bench audits` (about 1.5 GB of temporary disk).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use m2m_shared::adapters::EmbeddedStore;
use m2m_shared::domain::audit::{
    Action, Actor, Attribution, AuditEvent, AuditQuery, Scope, Severity, Target,
};
use m2m_shared::domain::{ClientId, TenantId, Timestamp};
use m2m_shared::ports::AuditStore;

const DAYS: i64 = 30;
const TENANTS: usize = 1_000;
const TOKENS: usize = 10_000;
const ACTORS: usize = 100;
const SIZES: [usize; 2] = [10_000, 1_000_000];
const RUNS: usize = 30;
/// Events written per transaction while filling.
const CHUNK: usize = 20_000;

/// The `n`th made-up event of `total`, spread evenly over the last [`DAYS`] days.
fn event(n: usize, total: usize, now: Timestamp, tokens: &[ClientId]) -> AuditEvent {
    let span = DAYS * 86_400_000;
    let back = span - span * i64::try_from(n).unwrap() / i64::try_from(total).unwrap();
    let at = Timestamp::from_millis(now.millis() - back);
    let token = &tokens[n % TOKENS];
    let tenant = TenantId::parse(&format!("tenant-{}", n % TENANTS)).unwrap();
    let actor = Actor::Vendor {
        id: format!("vendor-{}", n % ACTORS),
    };
    let by = Attribution::new(actor, Some([10, 0, 0, 1].into()), Some("bench/1.0"));
    let action = Action {
        name: ["apiToken.created", "apiToken.rotated", "apiToken.changed"][n % 3],
        severity: Severity::Info,
        target: Target::new("apiToken", token),
        tenant_id: Some(tenant),
    };
    AuditEvent::of(action, &by, at, 365)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The median time of reading `query`'s page, and what the search finds in all.
async fn timed(store: &EmbeddedStore, query: &AuditQuery, now: Timestamp) -> (f64, u64) {
    let mut samples = Vec::new();
    let mut total = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let page = store.audits(query, now).await.unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.events.len(), query.count.min(page.total as usize));
        total = page.total;
    }
    (median(samples), total)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("tokens.redb")).unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    let tokens: Vec<ClientId> = (0..TOKENS).map(|_| ClientId::generate()).collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut filled = 0;
    let mut fill_seconds = 0.0;
    for (column, size) in SIZES.into_iter().enumerate() {
        // A fresh trail of `size` events (the earlier one is left as it is, and counted).
        let started = Instant::now();
        for start in (0..size).step_by(CHUNK) {
            let events = (start..(start + CHUNK).min(size))
                .map(|n| event(n, size, now, &tokens))
                .collect();
            store.import_events(events).await.unwrap();
        }
        fill_seconds = started.elapsed().as_secs_f64();
        filled += size;
        let queries = queries(&tokens[7], filled);
        for (row, (name, query)) in queries.iter().enumerate() {
            let (ms, total) = timed(&store, query, now).await;
            if column == 0 {
                rows.push(((*name).to_owned(), Vec::new()));
            }
            rows[row].1.push(format!("{ms:.2} ms of {total}"));
        }
    }
    report(&rows, filled, fill_seconds);
}

/// The reads measured on a trail of `filled` events.
fn queries(token: &ClientId, filled: usize) -> [(&'static str, AuditQuery); 5] {
    let token = token.to_string();
    let page = |scope: Scope, offset: u64| AuditQuery {
        scope,
        offset,
        count: 20,
        oldest_first: false,
    };
    [
        ("every event, newest 20", page(Scope::All, 0)),
        (
            "every event, 20 from the middle",
            page(Scope::All, filled as u64 / 2),
        ),
        (
            "one token's (by clientId), newest 20",
            page(Scope::Target(None, token), 0),
        ),
        (
            "one actor's (by actorId), newest 20",
            page(Scope::Actor(None, "vendor-7".into()), 0),
        ),
        (
            "one tenant's, newest 20",
            page(Scope::Tenant(TenantId::parse("tenant-7").unwrap()), 0),
        ),
    ]
}

fn report(rows: &[(String, Vec<String>)], filled: usize, fill_seconds: f64) {
    println!(
        "| read (embedded store, one core) | {} events | {} events |",
        SIZES[0], filled
    );
    println!("|---|---|---|");
    for (name, cells) in rows {
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!(
        "\nFilling the last {} events took {fill_seconds:.0} s ({:.0} events/s, in transactions of {CHUNK}).",
        SIZES[1],
        SIZES[1] as f64 / fill_seconds
    );
}
