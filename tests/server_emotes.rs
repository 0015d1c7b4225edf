//! shirakumo-emotes (§3 of shirakumo.mess) over real TCP: `--emotes-dir`
//! at start, and an uploaded emote that was confirmed surviving a
//! SIGKILL and restart.

mod common;
use common::*;
use std::process::{Command, Stdio};

#[test]
fn emotes_dir_gives_the_primary_channel_its_emotes_3() {
    let emotes = temp_data_dir();
    std::fs::create_dir_all(&emotes).unwrap();
    std::fs::write(emotes.join("wave.png"), b"\x89PNG\r\n").unwrap();
    let emotes_arg = emotes.display().to_string();
    let server = start(&["--emotes-dir", &emotes_arg]);
    let mut ann = server.login("ann");
    // Older clients send emotes without a channel right after connect.
    let id = ann.update("emotes", ":names ()");
    let e = ann.recv_class("emote");
    assert_eq!(text(&e, "name"), Some("wave"));
    assert_eq!(text(&e, "channel"), Some("TestServer"));
    assert_eq!(text(&e, "content-type"), Some("image/png"));
    assert_eq!(text(&e, "payload"), Some("iVBORw0K"));
    let reply = ann.recv_class("emotes");
    assert_eq!(int(&reply, "id"), Some(id));
    let _ = std::fs::remove_dir_all(emotes);
}

#[test]
fn emotes_dir_with_an_unknown_file_type_names_it_and_exits_1() {
    let emotes = temp_data_dir();
    std::fs::create_dir_all(&emotes).unwrap();
    std::fs::write(emotes.join("readme.txt"), b"hi").unwrap();
    let data = temp_data_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_lichat-tcp-server"))
        .args(["--hostname", "127.0.0.1", "--port", "0", "--emotes-dir"])
        .arg(&emotes)
        .arg("--data-dir")
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readme.txt"), "{err}");
    let _ = std::fs::remove_dir_all(emotes);
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn confirmed_emote_survives_sigkill_and_restart_3() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    ann.update("register", ":password \"hunter22\"");
    ann.recv_class("register");
    ann.update("create", ":channel \"den\"");
    ann.recv_class("join");
    let id = ann.update(
        "emote",
        ":channel \"den\" :name \"Kappa\" :content-type \"image/gif\" :payload \"R0lGODlh\"",
    );
    let e = ann.recv_class("emote");
    assert_eq!(int(&e, "id"), Some(id));
    // The distributed emote is the confirmation: kill at once.
    server.kill_now();
    drop(server);

    let server = start_in(&dir, &[]);
    let mut bob = server.login("bob");
    bob.update("join", ":channel \"den\"");
    bob.recv_class("join");
    bob.update("emotes", ":channel \"den\" :names (\"other\")");
    let e = bob.recv_class("emote");
    assert_eq!(text(&e, "name"), Some("Kappa"));
    assert_eq!(text(&e, "payload"), Some("R0lGODlh"));
    assert_eq!(text(&e, "content-type"), Some("image/gif"));
    let _ = std::fs::remove_dir_all(dir);
}
