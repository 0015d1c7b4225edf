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

/// Reads until `who`'s join of `channel` arrives (skipping the primary
/// channel's joins of other users, and the like).
fn recv_join_of(client: &mut Client, who: &str, channel: &str) {
    loop {
        let u = client.recv_class("join");
        if text(&u, "from") == Some(who) && text(&u, "channel") == Some(channel) {
            return;
        }
    }
}

/// ann (registrant of "lobby") and bob in "lobby", with the store's test
/// hook reading `faults`; every reply so far is read.
fn lobby_with_faults(faults: &Faults, extra: &[&str]) -> (Server, Client, Client) {
    let server = start_with_faults(&temp_data_dir(), extra, faults);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    recv_join_of(&mut ann, "ann", "lobby");
    bob.update("join", ":channel \"lobby\"");
    recv_join_of(&mut bob, "bob", "lobby");
    recv_join_of(&mut ann, "bob", "lobby");
    (server, ann, bob)
}

#[test]
fn create_waiting_for_its_commit_does_not_delay_messages_to_others_5_3_1() {
    let faults = Faults::new();
    let (_server, mut ann, mut bob) = lobby_with_faults(&faults, &[]);
    faults.set("hold");
    // One write, one read on the server: a create, whose join waits for
    // its commit, and a message to another channel, which need not wait.
    ann.send_raw(
        format!(
            "(create :id 50 :clock {0} :channel \"den\")\0\
             (message :id 51 :clock {0} :channel \"lobby\" :text \"not held\")\0",
            clock()
        )
        .as_bytes(),
    );
    let m = bob.recv_class("message");
    assert_eq!(text(&m, "text"), Some("not held"));
    // ann's own replies wait for the commit, her echo behind her join.
    assert_eq!(
        ann.try_recv(Duration::from_millis(200)).err(),
        Some(Gone::Timeout)
    );
    faults.set("");
    let join = ann.recv();
    assert_eq!(
        (class(&join), int(&join, "id")),
        ("join".to_owned(), Some(50))
    );
    let echo = ann.recv();
    assert_eq!(
        (class(&echo), int(&echo, "id")),
        ("message".to_owned(), Some(51))
    );
}

#[test]
fn held_replies_and_what_waits_behind_them_count_against_the_write_queue_limit() {
    let faults = Faults::new();
    let (mut server, mut ann, mut bob) = lobby_with_faults(
        &faults,
        &["--max-write-queue", "4096", "--flood-limit", "1000000"],
    );
    faults.set("hold");
    // ann's create waits for its commit; her echoes pile up behind it.
    // She reads nothing; bob reads everything.
    let mut burst = format!("(create :id 50 :clock {} :channel \"den\")\0", clock());
    let text = "x".repeat(200);
    for id in 100..200 {
        burst.push_str(&format!(
            "(message :id {id} :clock {} :channel \"lobby\" :text \"{text}\")\0",
            clock()
        ));
    }
    // The server may drop ann before it has read all of it.
    let _ = std::io::Write::write_all(&mut ann.stream, burst.as_bytes());
    let mut messages = 0;
    loop {
        let u = bob.recv();
        match class(&u).as_str() {
            "message" => messages += 1,
            "leave" if common::text(&u, "from") == Some("ann") => break,
            _ => {}
        }
        assert!(messages <= 100, "ann was never dropped");
    }
    let line = server.wait_log("over the limit");
    assert!(line.contains("held for a commit"), "{line}");
    // bob is still served.
    bob.message("lobby", "still here");
    assert_eq!(text_of(&bob.recv_class("message")), Some("still here"));
}

fn text_of(o: &lichat_tcp_server::wire::Object) -> Option<&str> {
    text(o, "text")
}

#[test]
fn create_the_disk_refuses_fails_naming_the_cause_and_leaves_no_channel_5_3_1() {
    let faults = Faults::new();
    let dir = temp_data_dir();
    let mut server = start_with_faults(&dir, &[], &faults);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    let mut cy = server.login("cy");
    ann.update("create", ":channel \"lobby\"");
    recv_join_of(&mut ann, "ann", "lobby");
    for c in [&mut bob, &mut cy] {
        c.update("join", ":channel \"lobby\"");
        let who = c.name.clone();
        recv_join_of(c, &who, "lobby");
        recv_join_of(&mut ann, &who, "lobby");
    }
    faults.set("full");
    let id = ann.update("create", ":channel \"den\"");
    // The others keep talking meanwhile.
    bob.message("lobby", "meanwhile");
    assert_eq!(text_of(&cy.recv_class("message")), Some("meanwhile"));
    bob.recv_class("message");
    // After a bounded wait the creator learns the change was not saved:
    // the failure takes the place of the join.
    let f = ann
        .try_recv(Duration::from_secs(10))
        .expect("a failure within 10 s");
    assert_eq!(class(&f), "update-failure", "{f:?}");
    assert_eq!(int(&f, "update-id"), Some(id));
    let why = text_of(&f).unwrap_or_default();
    assert!(
        why.contains("could not save") && why.contains("the disk is full"),
        "{why}"
    );
    // Undone, not half-applied: there is no such channel.
    bob.update("join", ":channel \"den\"");
    assert_eq!(class(&bob.recv()), "no-such-channel");
    // While commits keep failing, such a change is refused at once.
    let id2 = ann.update("create", ":channel \"den2\"");
    let f2 = ann.recv_class("update-failure");
    assert_eq!(int(&f2, "update-id"), Some(id2));
    // Once the disk takes commits again, changes are accepted, and what
    // was undone stays undone after a restart.
    faults.set("");
    server.wait_log("changes are accepted");
    let id3 = ann.update("create", ":channel \"den3\"");
    assert_eq!(int(&ann.recv_class("join"), "id"), Some(id3));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    drop(server);

    let server = start_in(&dir, &[]);
    let mut bob = server.login("bob");
    for (name, expected) in [
        ("den", "no-such-channel"),
        ("den2", "no-such-channel"),
        ("den3", "join"),
    ] {
        bob.update("join", &format!(":channel \"{name}\""));
        assert_eq!(class(&bob.recv()), expected, "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn create_while_a_commit_does_not_return_fails_after_a_bounded_wait_and_stays_undone_5_3_1() {
    let faults = Faults::new();
    let dir = temp_data_dir();
    let mut server = start_with_faults(&dir, &[], &faults);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    recv_join_of(&mut ann, "bob", "TestServer");
    faults.set("hold");
    let id = ann.update("create", ":channel \"den\"");
    let f = ann
        .try_recv(Duration::from_secs(10))
        .expect("a failure within 10 s");
    assert_eq!(class(&f), "update-failure", "{f:?}");
    assert_eq!(int(&f, "update-id"), Some(id));
    let why = text_of(&f).unwrap_or_default();
    assert!(why.contains("has not answered"), "{why}");
    bob.update("join", ":channel \"den\"");
    assert_eq!(class(&bob.recv()), "no-such-channel");
    // The commit returns at last, and the undo is written after it: once
    // a later change is confirmed, both are on disk.
    faults.set("");
    server.wait_log("changes are accepted");
    let id2 = ann.update("create", ":channel \"den2\"");
    assert_eq!(int(&ann.recv_class("join"), "id"), Some(id2));
    server.kill_now();
    drop(server);

    let server = start_in(&dir, &[]);
    let mut bob = server.login("bob");
    for (name, expected) in [("den", "no-such-channel"), ("den2", "join")] {
        bob.update("join", &format!(":channel \"{name}\""));
        assert_eq!(class(&bob.recv()), expected, "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_while_commits_keep_failing_exits_within_a_second_4_3() {
    let faults = Faults::new();
    let (mut server, mut ann, _bob) = lobby_with_faults(&faults, &[]);
    faults.set("full");
    ann.update("create", ":channel \"den\"");
    server.wait_log("commit failed");
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(1));
    assert!(status.success(), "{status:?}");
    let line = server.wait_log("not saved");
    assert!(line.contains("\"den\""), "{line}");
}

#[test]
fn sigterm_while_a_commit_does_not_return_exits_within_a_second_4_3() {
    let faults = Faults::new();
    let (mut server, mut ann, _bob) = lobby_with_faults(&faults, &[]);
    faults.set("hold");
    ann.update("create", ":channel \"den\"");
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(1));
    assert!(status.success(), "{status:?}");
    server.wait_log("may not be saved");
}

#[test]
fn start_up_on_a_full_disk_says_the_disk_is_full_naming_the_file() {
    let faults = Faults::new();
    faults.set("full");
    let dir = temp_data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .args(["--port", "0", "--hostname", "127.0.0.1", "--data-dir"])
        .arg(&dir)
        .env("LICHAT_TEST_STORE_FAULTS", faults.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server runs");
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    let db = dir.join("lichat.db");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(!stderr.contains("disk I/O error"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
