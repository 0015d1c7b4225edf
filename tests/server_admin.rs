//! Server administrators over real TCP: the profile registered offline
//! with `--register`, the rights given by `--admin` (shirakumo.mess §7).

mod common;

use common::{class, start_in, temp_data_dir, text};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `lichat-tcp-server --data-dir DIR --register NAME` with
/// `password` and a newline on standard input.
fn register_offline(dir: &Path, name: &str, password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--register", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A refused run may exit before reading.
    let _ = writeln!(stdin, "{password}");
    drop(stdin);
    child.wait_with_output().expect("it exits")
}

#[test]
fn offline_registration_then_admin_login_may_kill_7() {
    let dir = temp_data_dir();
    let out = register_offline(&dir, "root", "rootpass");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("\"root\" is registered"), "{said}");

    let server = start_in(&dir, &["--admin", "root"]);
    // While it runs, the database is not opened twice.
    let out = register_offline(&dir, "eve", "evepass1");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("stop the server"), "{said}");

    // The name is taken: without the password nobody gets it.
    let mut squatter = server.connect();
    squatter.send(&format!(
        "(connect :id 1 :clock {} :from \"root\" :version \"2.0\")",
        common::clock()
    ));
    assert_eq!(class(&squatter.recv()), "username-taken");

    let mut root = server.login_with("root", "rootpass");
    let mut bob = server.login("bob");
    let id = root.update("kill", ":target \"bob\"");
    let reply = root.recv_class("kill");
    assert_eq!(common::int(&reply, "id"), Some(id));
    let last = bob.recv_until_closed();
    assert!(
        last.iter().any(|u| class(u) == "disconnect"),
        "bob is disconnected: {last:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn offline_registration_refuses_a_short_password_5_2() {
    let dir = temp_data_dir();
    let out = register_offline(&dir, "root", "short");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("at least 6 characters"), "{said}");
    let server = start_in(&dir, &["--admin", "root"]);
    let mut root = server.login("root");
    root.update("kill", ":target \"root\"");
    let f = root.recv_class("insufficient-permissions");
    assert!(text(&f, "text").is_some());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
