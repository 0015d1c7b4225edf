//! shirakumo-history (§18) figures, bounded, no network: the loop's added
//! CPU per recorded message, the writer's sustained recording rate with
//! the trigram index, substring searches over one channel of
//! `HISTORY_BENCH_ROWS` stored messages (default 1 000 000) returning
//! the first page, and the database's size per million messages.

use lichat_tcp_server::engine::{
    Change, Config, Engine, HistoryRecord, Outbox, SearchJob, UNIX_TO_UNIVERSAL,
};
use lichat_tcp_server::store::history::HistoryReader;
use lichat_tcp_server::store::{self, Notify};
use lichat_tcp_server::wire::read_object;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

struct Wake(std::sync::Mutex<Sender<()>>);

impl Notify for Wake {
    fn notify(&self) {
        if let Ok(s) = self.0.lock() {
            let _ = s.send(());
        }
    }
}

/// An engine with two users in "room"; `recorded` sets the search rule.
fn room(recorded: bool) -> (Engine, Outbox) {
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    let config = Config {
        flood_limit: u32::MAX,
        ..Config::default()
    };
    let mut engine = Engine::new(config, now);
    let mut out = Outbox::default();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for conn in 0..2 {
        engine.open(conn, ip, now);
        let connect = format!("(connect :id 1 :from \"user{conn}\" :version \"2.0\")");
        engine.handle(conn, read_object(connect.as_bytes()), now, &mut out);
        let enter = if conn == 0 {
            "(create :id 2 :channel \"room\")"
        } else {
            "(join :id 2 :channel \"room\")"
        };
        engine.handle(conn, read_object(enter.as_bytes()), now, &mut out);
    }
    if !recorded {
        let p = "(permissions :id 3 :channel \"room\" :permissions ((shirakumo:search nil)))";
        engine.handle(0, read_object(p.as_bytes()), now, &mut out);
    }
    out.clear();
    (engine, out)
}

fn loop_cost(recorded: bool, n: usize) -> Duration {
    let (mut engine, mut out) = room(recorded);
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    let updates: Vec<_> = (0..1000)
        .map(|i| {
            format!("(message :id {i} :channel \"room\" :text \"a message of an ordinary length, number {i}\")")
        })
        .collect();
    let start = Instant::now();
    for i in 0..n {
        let u = read_object(updates[i % updates.len()].as_bytes());
        engine.handle(0, u, now, &mut out);
        if out.sends.len() > 1000 {
            out.clear();
        }
    }
    start.elapsed()
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
];

fn record(row: u64) -> Change {
    let mut text = String::new();
    let mut x = row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..8 {
        text.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
        text.push(' ');
        x /= WORDS.len() as u64;
        x = x.wrapping_mul(6364136223846793005).wrapping_add(row);
    }
    if row % 100_000 == 7 {
        text.push_str("needle");
    }
    let bytes = format!(
        "(message :id {row} :clock {} :from \"user{}\" :channel \"room\" :text \"{text}\")",
        3_900_000_000u64 + row,
        row % 50
    );
    Change::History(Box::new(HistoryRecord {
        row,
        channel: "room".into(),
        from: format!("user{}", row % 50),
        id: row.to_string(),
        clock: 3_900_000_000 + row,
        text: Some(text),
        bytes: bytes.into_bytes().into(),
    }))
}

fn main() {
    let n = 200_000;
    let with = loop_cost(true, n);
    let without = loop_cost(false, n);
    let added = (with.as_nanos() as f64 - without.as_nanos() as f64) / n as f64;
    println!(
        "loop: {:.2} µs per message recorded, {:.2} µs not recorded: {:.2} µs added per recorded message",
        with.as_nanos() as f64 / n as f64 / 1000.0,
        without.as_nanos() as f64 / n as f64 / 1000.0,
        added / 1000.0
    );

    let rows: u64 = std::env::var("HISTORY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("lichat-history-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (tx, woken) = channel();
    let (mut store, _) = store::open(&dir, Arc::new(Wake(std::sync::Mutex::new(tx)))).unwrap();
    // Turns of the loop hand over 1000 messages each.
    let start = Instant::now();
    let mut row = 1;
    let mut last = 0;
    while row <= rows {
        let batch: Vec<Change> = (row..(row + 1000).min(rows + 1)).map(record).collect();
        row += batch.len() as u64;
        last = store.submit(batch);
        // Keep at most a few batches in flight, as a steady load would.
        while store.committed() + 8 < last {
            let _ = woken.recv_timeout(Duration::from_secs(10));
        }
    }
    while store.committed() < last {
        let _ = woken.recv_timeout(Duration::from_secs(10));
    }
    let took = start.elapsed();
    println!(
        "writer: {rows} messages recorded in {:.2} s: {:.0} messages/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    store.close();
    let conn = rusqlite::Connection::open(dir.join(store::FILE_NAME)).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let size = std::fs::metadata(dir.join(store::FILE_NAME)).unwrap().len();
    println!(
        "size: {:.1} MB for {rows} messages: {:.1} MB per million",
        size as f64 / 1e6,
        size as f64 / 1e6 * 1e6 / rows as f64
    );

    let mut reader = HistoryReader::open(&dir).unwrap();
    for (name, query) in [
        ("rare substring *needle*", "(:text (\"*needle*\"))"),
        ("common substring *echo*", "(:text (\"*echo*\"))"),
        ("two substrings *kilo*lima*", "(:text (\"*kilo*lima*\"))"),
        (
            "sender and substring",
            "(:from \"user7\" :text (\"*oscar*\"))",
        ),
        ("no index: *e_o*", "(:text (\"*e_o*\"))"),
    ] {
        let search = format!("(search :id 1 :channel \"room\" :query {query})");
        let job = job_for(&search);
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..50 {
            let t = Instant::now();
            let done = reader.run(&job);
            times.push(t.elapsed());
            found = done.results.len();
        }
        times.sort();
        println!(
            "search {name}: {found} results, median {:.1} ms, p99 {:.1} ms",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() * 99 / 100].as_secs_f64() * 1000.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The job the engine hands out for a `search` update.
fn job_for(search: &str) -> SearchJob {
    let (mut engine, mut out) = room(true);
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    engine.handle(1, read_object(search.as_bytes()), now, &mut out);
    out.searches.pop().expect("a search job")
}
