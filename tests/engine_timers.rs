//! §4.1 connect timeout and §4.2 pings and idle timeouts, decided by the
//! engine from the time it is given: a fake clock, no sockets, no waiting.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Config, ConnEvent};
use lichat_tcp_server::wire::Known;

fn timed() -> Harness {
    Harness::with(Config {
        connect_timeout: 10,
        ping_interval: 60,
        idle_timeout: 120,
        ..config()
    })
}

#[test]
fn a_connection_without_connect_is_closed_at_the_connect_timeout_4_1() {
    let mut h = timed();
    h.open(1);
    assert_eq!(h.engine.next_deadline(), START, "expiry runs at once");
    h.advance_to(START);
    assert_eq!(h.engine.next_deadline(), START + 10);
    h.advance_to(START + 9);
    assert!(!h.closed.contains(&1));
    h.advance_to(START + 10);
    assert!(h.closed.contains(&1), "closed at the deadline");
    assert!(h.take(1).is_empty(), "silently");
    assert_eq!(h.engine.connection_count(), 0);
}

#[test]
fn connecting_in_time_cancels_the_connect_timeout_and_reports_established_4_1() {
    let mut h = timed();
    h.open(1);
    h.now = START + 5;
    h.send(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert_eq!(h.take_events(), [ConnEvent::Established(1)]);
    h.advance_to(START + 30);
    assert!(!h.closed.contains(&1));
    assert_eq!(h.engine.next_deadline(), START + 5 + 60, "next: the ping");
}

#[test]
fn silence_gets_one_ping_then_connection_unstable_and_disconnect_4_2() {
    let mut h = timed();
    h.login(1, "ann");
    h.advance_to(START + 59);
    assert!(h.take(1).is_empty());
    h.advance_to(START + 60);
    assert_eq!(h.classes(1), [Known::Ping]);
    h.advance_to(START + 119);
    assert!(h.take(1).is_empty(), "one ping per quiet spell");
    h.advance_to(START + 120);
    assert_eq!(h.classes(1), [Known::ConnectionUnstable, Known::Disconnect]);
    assert!(h.closed.contains(&1));
}

#[test]
fn any_update_restarts_the_quiet_spell_4_2() {
    let mut h = timed();
    h.login(1, "ann");
    h.now = START + 50;
    h.send(1, "(pong :id 5)");
    h.advance_to(START + 100);
    assert!(h.take(1).is_empty(), "50 s of silence only");
    h.advance_to(START + 110);
    assert_eq!(h.classes(1), [Known::Ping]);
    // An unreadable update is a sign of life too.
    h.now = START + 150;
    h.send_err(1, lichat_tcp_server::wire::ReadError::TooLong);
    h.take(1);
    h.advance_to(START + 229);
    assert!(!h.closed.contains(&1));
    assert_eq!(h.classes(1), [Known::Ping], "a new spell, a new ping");
    h.advance_to(START + 270);
    assert!(h.closed.contains(&1));
}

#[test]
fn a_time_jump_past_everything_fires_each_timer_once_4_2() {
    let mut h = timed();
    h.login(1, "ann");
    h.open(2);
    h.advance_to(START + 10_000);
    assert!(h.closed.contains(&1) && h.closed.contains(&2));
    assert_eq!(h.engine.connection_count(), 0);
}
