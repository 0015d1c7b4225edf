//! Process lifecycle: signals (§4.3 on shutdown), start-up errors, closure
//! by the client or by a vanished peer.

mod common;

use common::{class, start, text};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn sigterm_sends_disconnect_to_every_connection_and_exits_0_4_3() {
    let mut server = start(&[]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    server.signal("TERM");
    for c in [&mut ann, &mut bob] {
        let got: Vec<String> = c.recv_until_closed().iter().map(class).collect();
        assert!(got.contains(&"disconnect".to_owned()), "{got:?}");
    }
    let status = server.wait_exit(Duration::from_secs(1));
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigint_exits_0_within_a_second() {
    let mut server = start(&[]);
    let _idle = server.connect();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(1));
    assert!(status.success(), "{status:?}");
}

#[test]
fn port_already_in_use_is_reported_and_exits_1() {
    let server = start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .args(["--hostname", "127.0.0.1", "--port"])
        .arg(server.addr.port().to_string())
        .args([
            "--data-dir",
            &std::env::temp_dir()
                .join("lichat-test-inuse")
                .display()
                .to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
}

#[test]
fn bad_option_value_prints_one_line_naming_it_and_exits_2() {
    for (option, value) in [
        ("--ping-interval", "soon"),
        ("--port", "70000"),
        ("--log-level", "loud"),
        ("--connection-limit", "-1"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
            .args([option, value])
            .stdin(Stdio::null())
            .output()
            .expect("the server binary runs");
        assert_eq!(out.status.code(), Some(2), "{option} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(option), "{err}");
    }
}

#[test]
fn disconnect_update_gets_disconnect_and_close_4_3() {
    let server = start(&[]);
    let mut ann = server.login("ann");
    ann.update("disconnect", "");
    let got: Vec<String> = ann.recv_until_closed().iter().map(class).collect();
    assert!(got.contains(&"disconnect".to_owned()), "{got:?}");
}

#[test]
fn vanished_peer_leaves_its_channels_4_3() {
    let server = start(&[]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_class("join");
    bob.update("join", ":channel \"lobby\"");
    bob.recv_class("join");
    ann.recv_class("join");
    drop(bob);
    let leave = ann.recv_class("leave");
    assert_eq!(text(&leave, "from"), Some("bob"));
}

#[test]
fn half_closed_client_still_gets_the_replies_to_what_it_sent_4_3() {
    let server = start(&[]);
    let mut ann = server.login("ann");
    let id = ann.update("ping", "");
    ann.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let got = ann.recv_until_closed();
    assert!(
        got.iter()
            .any(|u| class(u) == "pong" && common::int(u, "id") == Some(id)),
        "{got:?}"
    );
}

#[test]
fn sigterm_with_a_stalled_client_still_exits_within_a_second_4_3() {
    let mut server = start(&[
        "--max-write-queue",
        "67108864",
        "--flood-limit",
        "1000000",
        "--max-update-size",
        "200000",
    ]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_class("join");
    bob.update("join", ":channel \"lobby\"");
    bob.recv_class("join");
    // Bob stops reading while megabytes pile up for him in the server.
    let big = "z".repeat(50_000);
    for _ in 0..300 {
        ann.message("lobby", &big);
        ann.recv_class("message");
    }
    server.signal("TERM");
    let got: Vec<String> = ann.recv_until_closed().iter().map(class).collect();
    assert!(got.contains(&"disconnect".to_owned()), "{got:?}");
    // The server gives up on bob after its shutdown grace (under a
    // second); the wait here has room for a loaded machine, and the log
    // shows that bob's queue was given up rather than drained.
    let status = server.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    server.wait_log("shut down; 1 connection(s) not fully flushed");
    drop(bob);
}
