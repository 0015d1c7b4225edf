//! Durable state over real TCP: what the server confirmed survives a
//! SIGKILL, a restart keeps channels and their rules, a damaged database
//! stops start-up.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn registration_confirmed_before_sigkill_survives_restart_5_2() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    let id = ann.update("register", ":password \"hunter22\"");
    let reply = ann.recv_class("register");
    assert_eq!(int(&reply, "id"), Some(id));
    // The reply is the confirmation: kill at once, no chance to flush.
    server.kill_now();
    drop(server);

    let server = start_in(&dir, &[]);
    server.wait_log_in_past("loaded 1 profile(s)");
    let mut ann = server.login_with("ann", "hunter22");
    let id = ann.update("user-info", ":target \"ann\"");
    let info = ann.recv_class("user-info");
    assert_eq!(int(&info, "id"), Some(id));
    assert_eq!(
        field(&info, "registered").map(|v| v == &lichat_tcp_server::wire::Value::T),
        Some(true)
    );
    // And a stranger cannot take the name.
    let mut other = server.connect();
    other.send(&format!(
        "(connect :id 1 :clock {} :from \"ann\" :version \"2.0\")",
        clock()
    ));
    assert_eq!(class(&other.recv()), "username-taken");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn channel_and_changed_permissions_survive_restart_5_3_2() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    let _bob = server.login("bob");
    ann.update("create", ":channel \"den\"");
    ann.recv_class("join");
    ann.update("deny", ":channel \"den\" :target \"bob\" :update join");
    ann.recv_class("deny");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    drop(server);

    let server = start_in(&dir, &[]);
    let mut bob = server.login("bob");
    bob.update("join", ":channel \"den\"");
    assert_eq!(class(&bob.recv()), "insufficient-permissions");
    let mut cy = server.login("cy");
    cy.update("join", ":channel \"DEN\"");
    let join = cy.recv_class("join");
    assert_eq!(text(&join, "channel"), Some("den"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn damaged_database_stops_start_up_with_a_message_naming_it() {
    let dir = temp_data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("lichat.db");
    std::fs::write(
        &db,
        b"this is not an sqlite database, just some text\n".repeat(200),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .args(["--port", "0", "--hostname", "127.0.0.1", "--data-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("the server runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn updates_pipelined_behind_a_password_login_are_answered_in_order_4_1_7() {
    let dir = temp_data_dir();
    let server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    ann.update("register", ":password \"hunter22\"");
    ann.recv_class("register");
    // One write: the login, whose password is hashed off the loop, and
    // three updates that must wait for it and keep their order.
    let mut c = server.connect();
    c.name = "ann".into();
    c.send_raw(
        format!(
            "(connect :id 1 :clock {0} :from \"ann\" :password \"hunter22\" :version \"2.0\")\0\
             (create :id 2 :clock {0} :channel \"pipelined\")\0\
             (ping :id 3 :clock {0})\0\
             (users :id 4 :clock {0} :channel \"pipelined\")\0",
            clock()
        )
        .as_bytes(),
    );
    let got: Vec<_> = (0..6).map(|_| c.recv()).collect();
    let seen: Vec<(String, Option<String>)> = got
        .iter()
        .map(|o| (class(o), text(o, "channel").map(str::to_owned)))
        .collect();
    // §4.1.11–14 for the login, then the pipelined updates in order.
    let primary = Some("TestServer".to_owned());
    let expected = [
        ("connect".to_owned(), None),
        ("join".to_owned(), primary.clone()),
        ("message".to_owned(), primary),
        ("join".to_owned(), Some("pipelined".to_owned())),
        ("pong".to_owned(), None),
        ("users".to_owned(), Some("pipelined".to_owned())),
    ];
    assert_eq!(seen, expected, "{got:#?}");
    assert_eq!(int(&got[3], "id"), Some(2));
    assert_eq!(int(&got[4], "id"), Some(3));
    assert_eq!(int(&got[5], "id"), Some(4));
    let _ = std::fs::remove_dir_all(dir);
}
