//! shirakumo-ip (§10 of shirakumo.mess) over real TCP: a banned address
//! is closed before any `connect` is answered; the per-address limit.

mod common;

use common::{Gone, class, start_in, temp_data_dir};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_banned_address_is_closed_without_a_connect_reply_10() {
    let dir = temp_data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["--register", "root"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    writeln!(child.stdin.take().unwrap(), "rootpass").unwrap();
    assert!(child.wait().unwrap().success());

    let server = start_in(&dir, &["--admin", "root"]);
    let mut root = server.login_with("root", "rootpass");
    let mut other = server.login("bob");
    root.update("ip-ban", ":ip \"127.0.0.1\"");
    root.recv_class("ip-ban");
    // Live connections from the address go (the sender's own stays).
    let last = other.recv_until_closed();
    assert!(last.iter().any(|u| class(u) == "disconnect"), "{last:?}");
    // A new one is closed before it can say anything.
    let mut c = server.connect();
    c.send(&format!(
        "(connect :id 1 :clock {} :from \"carl\" :version \"2.0\")",
        common::clock()
    ));
    match c.try_recv(Duration::from_secs(5)) {
        Err(Gone::Closed) => {}
        got => panic!("expected the connection closed without a reply, got {got:?}"),
    }
    root.update("ip-unban", ":ip \"127.0.0.1\"");
    root.recv_class("ip-unban");
    server.login("carl");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_connection_over_the_per_address_limit_gets_too_many_connections() {
    let server = common::start(&["--max-connections-per-ip", "2"]);
    let _a = server.login("ann");
    let _b = server.login("bob");
    let mut c = server.connect();
    let got = c.recv();
    assert_eq!(class(&got), "too-many-connections", "{got:?}");
    match c.try_recv(Duration::from_secs(5)) {
        Err(Gone::Closed) => {}
        got => panic!("expected the connection closed, got {got:?}"),
    }
}
