//! Timers over real TCP: connect timeout, ping, idle timeout (§4.1, §4.2).

mod common;

use common::{Gone, class, start};
use std::time::{Duration, Instant};

#[test]
fn ping_after_ping_interval_without_updates_4_2() {
    let server = start(&["--ping-interval", "1", "--idle-timeout", "30"]);
    let mut c = server.login("ann");
    let quiet = Instant::now();
    c.recv_class("ping");
    assert!(quiet.elapsed() < Duration::from_secs(3));
}

#[test]
fn answering_pings_keeps_the_connection_4_2() {
    let server = start(&["--ping-interval", "1", "--idle-timeout", "3"]);
    let mut c = server.login("ann");
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(5) {
        c.recv_class("ping");
        c.update("pong", "");
    }
    let id = c.update("ping", "");
    let pong = c.recv_class("pong");
    assert_eq!(common::int(&pong, "id"), Some(id));
}

#[test]
fn idle_connection_gets_connection_unstable_and_disconnect_4_2() {
    let server = start(&["--ping-interval", "1", "--idle-timeout", "3"]);
    let mut c = server.login("ann");
    let got: Vec<String> = c.recv_until_closed().iter().map(class).collect();
    let unstable = got.iter().position(|c| c == "connection-unstable");
    let disconnect = got.iter().position(|c| c == "disconnect");
    assert!(got.contains(&"ping".to_owned()), "{got:?}");
    assert!(unstable.is_some() && disconnect.is_some(), "{got:?}");
    assert!(unstable < disconnect, "{got:?}");
}

#[test]
fn no_connect_within_connect_timeout_closes_the_connection_4_1() {
    let server = start(&["--connect-timeout", "1"]);
    let mut c = server.connect();
    let began = Instant::now();
    assert_eq!(c.try_recv(Duration::from_secs(5)).err(), Some(Gone::Closed));
    assert!(began.elapsed() < Duration::from_secs(4));
}
