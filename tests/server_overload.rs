//! Overload over real TCP: out of file descriptors, storms of connections.
//! The server stays responsive, does not spin, and its log stays readable:
//! lines a peer can cause at any rate are written once per 10 s with a
//! count of the rest.

mod common;

use common::{int, start, start_with_fd_limit};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Longer than the 10 s a rate-limited line covers.
const SUMMARY_WAIT: Duration = Duration::from_secs(15);

/// The count in a summary line "...: N more suppressed in the last 10 s".
fn suppressed(line: &str) -> Option<u64> {
    let (head, _) = line.split_once(" more suppressed")?;
    head.rsplit(' ').next()?.parse().ok()
}

#[test]
fn accept_failures_at_the_descriptor_limit_are_logged_at_a_bounded_rate_without_spinning() {
    // 32 descriptors: about 20 left for connections once the server runs.
    let mut server =
        start_with_fd_limit(32, &["--connect-timeout", "60", "--flood-limit", "1000000"]);
    let mut ann = server.login("ann");
    let mut waiting: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(server.addr).expect("the kernel queues the connection"))
        .collect();
    let first = server.wait_log("accept failed");
    assert!(first.contains("WARN"), "{first}");
    // Ordinary traffic goes on (each update is a loop turn: 20 a second)
    // and more connections arrive (each a listener event: 2 a second, far
    // below the listen backlog) while the descriptors stay used up, until
    // the first window's summary is written.
    let cpu_before = server.cpu_time();
    let begin = Instant::now();
    let mut full_lines = 0;
    let mut summary = None;
    let mut next_ping = begin;
    let mut pings = 0u64;
    while summary.is_none() {
        assert!(
            begin.elapsed() < SUMMARY_WAIT,
            "no summary of accept failures; {full_lines} more lines in full; log: {:#?}",
            server.log()
        );
        let until_ping = next_ping.saturating_duration_since(Instant::now());
        if let Some(line) = server.next_log(until_ping) {
            if line.contains("accept failed") {
                match suppressed(&line) {
                    Some(n) => summary = Some(n),
                    None => full_lines += 1,
                }
            }
            continue;
        }
        let id = ann.update("ping", "");
        assert_eq!(int(&ann.recv_class("pong"), "id"), Some(id));
        pings += 1;
        next_ping += Duration::from_millis(50);
        if pings.is_multiple_of(10) {
            waiting.push(TcpStream::connect(server.addr).expect("queued"));
        }
    }
    let elapsed = begin.elapsed();
    let cpu = server.cpu_time().saturating_sub(cpu_before);
    assert!(
        full_lines == 0,
        "{full_lines} more lines in full within the window"
    );
    assert!(summary.is_some_and(|n| n > 0), "{summary:?}");
    // Property, not speed: a spinning loop would use all of a CPU.
    assert!(
        cpu < elapsed / 10,
        "server used {cpu:?} of CPU in {elapsed:?} at the descriptor limit"
    );
}

#[test]
fn refused_connections_are_logged_at_a_bounded_rate_with_a_count_4_1_1() {
    let mut server = start(&["--connection-limit", "5"]);
    let _held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    server.wait_log("connection 4 opened");
    const STORM: u64 = 300;
    let storm: Vec<TcpStream> = (0..STORM)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let begin = Instant::now();
    let (mut full_lines, mut counted) = (0u64, 0u64);
    while full_lines + counted < STORM {
        assert!(
            begin.elapsed() < SUMMARY_WAIT,
            "{full_lines} refusals logged and {counted} counted of {STORM}; log: {:#?}",
            server.log()
        );
        let Some(line) = server.next_log(Duration::from_millis(500)) else {
            continue;
        };
        if !line.contains("refused") {
            continue;
        }
        match suppressed(&line) {
            Some(n) => counted += n,
            None => full_lines += 1,
        }
    }
    assert_eq!(full_lines + counted, STORM);
    assert!(full_lines <= 2, "{full_lines} refusals logged one by one");
    drop(storm);
}
