//! shirakumo-history (§18) figures, bounded: the loop's added CPU per
//! recorded message; the writer's sustained recording rate with the
//! trigram index, beside the same rows written straight through SQLite
//! without it (with the table's B-tree indexes, and with none); the
//! database's size per million messages; substring searches over one
//! channel of `HISTORY_BENCH_ROWS` stored messages (default 1 000 000)
//! returning the first page, median and p99 of 100 runs each; then the
//! server binary on that database (127.0.0.1, an ephemeral port): the
//! round-trip latency of messages between two clients in the channel,
//! without searches and while 20 other clients search it continuously.
//! Takes well under a minute at the default size.

use lichat_tcp_server::engine::{
    Change, Config, Engine, HistoryRecord, Outbox, SearchJob, UNIX_TO_UNIVERSAL,
};
use lichat_tcp_server::store::history::HistoryReader;
use lichat_tcp_server::store::{self, Notify};
use lichat_tcp_server::wire::read_object;
use lichat_tcp_server::wire::{Known, Object};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    let writer_rate = rows as f64 / took.as_secs_f64();
    for (what, indexes) in [
        ("with the B-tree indexes", true),
        ("without secondary indexes", false),
    ] {
        let rate = floor(&dir, rows, indexes);
        println!(
            "writer floor: the same rows straight through SQLite, no trigram index, {what}: \
             {rate:.0} messages/s (the writer reaches {:.0}% of it)",
            writer_rate / rate * 100.0
        );
    }
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
        (
            "absent sender and common substring",
            "(:from \"nobody\" :text (\"*oscar*\"))",
        ),
        ("absent substring *zulu*", "(:text (\"*zulu*\"))"),
        ("sender only", "(:from \"user7\")"),
        ("everything", "()"),
    ] {
        let search = format!("(search :id 1 :channel \"room\" :query {query})");
        let job = job_for(&search);
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..100 {
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
    drop(reader);
    server_phase(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of [`record`] written into a table of the history's columns
/// in a database of their own, as the writer's transactions do (WAL,
/// `synchronous=FULL`, 8000 rows a commit), without the trigram index;
/// `indexes`: with the history's two B-tree indexes. Messages per second.
fn floor(dir: &Path, rows: u64, indexes: bool) -> f64 {
    let path = dir.join("floor.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL,
           sender TEXT NOT NULL, uid TEXT NOT NULL, clock INTEGER NOT NULL,
           stored INTEGER NOT NULL, text TEXT, bytes BLOB NOT NULL)",
    )
    .unwrap();
    if indexes {
        conn.execute_batch(
            "CREATE INDEX history_clock ON history (channel, clock);
             CREATE INDEX history_message ON history (channel, sender, uid);",
        )
        .unwrap();
    }
    let start = Instant::now();
    let mut row = 1;
    while row <= rows {
        let end = (row + 8000).min(rows + 1);
        let batch: Vec<Change> = (row..end).map(record).collect();
        row = end;
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO history (id, channel, sender, uid, clock, stored, text, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .unwrap();
            for change in &batch {
                let Change::History(r) = change else {
                    continue;
                };
                insert
                    .execute(rusqlite::params![
                        r.row as i64,
                        r.channel,
                        r.from,
                        r.id,
                        r.clock as i64,
                        0,
                        r.text,
                        &r.bytes[..],
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    rate
}

/// Clients searching the channel at once in the server phase.
const SEARCHERS: usize = 20;
/// Round trips timed in each half of the server phase.
const ROUND_TRIPS: usize = 400;
/// The searches the searching clients cycle through.
const SERVER_QUERIES: &[&str] = &[
    "(:text (\"*needle*\"))",
    "(:text (\"*echo*\"))",
    "(:text (\"*kilo*lima*\"))",
    "(:from \"user7\" :text (\"*oscar*\"))",
];

/// The server binary on `dir`, listening on an ephemeral port of
/// 127.0.0.1; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
            .args(["--port", "0", "--hostname", "127.0.0.1"])
            .args(["--ws-port", "0", "--tls-port", "0", "--wss-port", "0"])
            .args([
                "--max-connections-per-ip",
                "0",
                "--flood-limit",
                "1000000000",
            ])
            .args(["--ping-interval", "3600", "--idle-timeout", "7200"])
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary runs");
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("listening on ").nth(1)?.trim().parse().ok())
            .expect("the server reports its address");
        // Keep reading its log so that it never blocks on it.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("server: {line}");
                }
            }
        });
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client connection, read blocking.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    name: String,
}

impl Peer {
    /// Connects as `name` (§4.1) and joins (or, `create`, creates) "room".
    fn enter(addr: SocketAddr, name: &str, create: bool) -> Peer {
        let stream = TcpStream::connect(addr).expect("the server accepts");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut peer = Peer {
            stream,
            buf: Vec::new(),
            name: name.into(),
        };
        peer.send(&format!(
            "(connect :id 1 :from \"{name}\" :version \"2.0\")"
        ));
        peer.until(|o| o.class.known() == Some(Known::Message));
        let how = if create { "create" } else { "join" };
        peer.send(&format!("({how} :id 2 :channel \"room\")"));
        let me = name.to_owned();
        peer.until(move |o| {
            o.class.known() == Some(Known::Join)
                && o.get(Known::KFrom).and_then(|v| v.as_str()) == Some(&me)
        });
        peer
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
        self.stream.write_all(&[0]).unwrap();
    }

    /// Reads updates until one satisfies `want`.
    fn until(&mut self, want: impl Fn(&Object) -> bool) -> Object {
        let mut chunk = [0u8; 65536];
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let update = read_object(&self.buf[..end]);
                self.buf.drain(..=end);
                if let Ok(o) = update {
                    let class = o.class.name().to_ascii_lowercase();
                    assert!(!class.contains("failure"), "{}: {o:?}", self.name);
                    if want(&o) {
                        return o;
                    }
                }
            }
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
            assert!(n > 0, "{}: the server closed the connection", self.name);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Round trips between `a` and `b` in "room": one sends, the other reads
/// it; microseconds each, sorted.
fn round_trips(a: &mut Peer, b: &mut Peer, n: usize, tag: &str) -> Vec<u64> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let (from, to) = if i % 2 == 0 {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        let text = format!("{tag} {i}");
        let start = Instant::now();
        from.send(&format!(
            "(message :id {} :channel \"room\" :text \"{text}\")",
            10 + i
        ));
        to.until(|o| {
            o.class.known() == Some(Known::Message)
                && o.get(Known::KText).and_then(|v| v.as_str()) == Some(&text)
        });
        times.push(start.elapsed().as_micros() as u64);
        std::thread::sleep(Duration::from_millis(2));
    }
    times.sort_unstable();
    times
}

fn p(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// The server on the bench's database: two clients' round trips alone,
/// then while [`SEARCHERS`] clients search continuously.
fn server_phase(dir: &Path) {
    let started = Instant::now();
    let server = Server::start(dir);
    let addr = server.addr;
    println!(
        "server: started on the database in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut searchers: Vec<Peer> = (0..SEARCHERS)
        .map(|i| Peer::enter(addr, &format!("searcher{i}"), i == 0))
        .collect();
    let mut a = Peer::enter(addr, "ann", false);
    let mut b = Peer::enter(addr, "bob", false);
    // The first page of each query, once, as the searching clients get it.
    for (k, query) in SERVER_QUERIES.iter().enumerate() {
        let s = &mut searchers[0];
        s.send(&format!(
            "(search :id {} :channel \"room\" :query {query})",
            100 + k
        ));
        let id = 100 + k as u64;
        let reply = s.until(|o| {
            o.class.known() == Some(Known::SSearch)
                && o.get(Known::KId).and_then(|v| v.as_u64()) == Some(id)
        });
        let results = reply
            .get(Known::KResults)
            .and_then(|v| v.as_list())
            .map_or(0, <[_]>::len);
        println!("server: search {query}: {results} results");
    }
    let quiet = round_trips(&mut a, &mut b, ROUND_TRIPS, "quiet");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = searchers
        .into_iter()
        .enumerate()
        .map(|(i, mut peer)| {
            let stop = Arc::clone(&stop);
            let answered = Arc::clone(&answered);
            std::thread::spawn(move || {
                let mut id = 1000u64;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let query = SERVER_QUERIES[(i + id as usize) % SERVER_QUERIES.len()];
                    peer.send(&format!(
                        "(search :id {id} :channel \"room\" :query {query})"
                    ));
                    peer.until(|o| {
                        o.class.known() == Some(Known::SSearch)
                            && o.get(Known::KId).and_then(|v| v.as_u64()) == Some(id)
                    });
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Every searching client has been answered once: all are at it.
    while answered.load(Ordering::Relaxed) < SEARCHERS {
        std::thread::sleep(Duration::from_millis(5));
    }
    let from = answered.load(Ordering::Relaxed);
    let t = Instant::now();
    let busy = round_trips(&mut a, &mut b, ROUND_TRIPS, "busy");
    let searches = (answered.load(Ordering::Relaxed) - from) as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    drop(server);
    println!(
        "server: message round trip between two other clients, {ROUND_TRIPS} each: \
         p50 {:.2} ms, p99 {:.2} ms without searches; p50 {:.2} ms, p99 {:.2} ms while \
         {SEARCHERS} clients search ({searches:.0} searches/s answered); p99 ratio {:.2}",
        p(&quiet, 0.5),
        p(&quiet, 0.99),
        p(&busy, 0.5),
        p(&busy, 0.99),
        p(&busy, 0.99) / p(&quiet, 0.99)
    );
}

/// The job the engine hands out for a `search` update.
fn job_for(search: &str) -> SearchJob {
    let (mut engine, mut out) = room(true);
    let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
    engine.handle(1, read_object(search.as_bytes()), now, &mut out);
    out.searches.pop().expect("a search job")
}
