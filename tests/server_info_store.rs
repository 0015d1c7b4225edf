//! Channel info (§6), user info (§14) and icons (§16 of shirakumo.mess)
//! over real TCP: what the server confirmed survives a SIGKILL and a
//! restart, stored with the channel and the profile.

mod common;
use common::*;
use lichat_tcp_server::protocol::payload::base64_encode;
use lichat_tcp_server::wire::{Object, Value};

/// A PNG header followed by filler, `len` bytes in all.
fn png(len: usize) -> String {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    format!("image/png {}", base64_encode(&bytes))
}

fn key_name(o: &Object) -> String {
    field(o, "key")
        .and_then(Value::as_symbol)
        .map(|s| s.name().to_ascii_lowercase())
        .unwrap_or_default()
}

#[test]
fn channel_info_user_info_and_icons_survive_sigkill_and_restart_6_14_16() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let channel_icon = png(1 << 20);
    let user_icon = png(5000);
    let mut ann = server.login("ann");
    ann.update("register", ":password \"hunter22\"");
    ann.recv_class("register");
    ann.update("create", ":channel \"den\"");
    ann.recv_class("join");
    ann.update(
        "set-channel-info",
        ":channel \"den\" :key :topic :text \"Lair\"",
    );
    ann.recv_class("set-channel-info");
    ann.update(
        "set-channel-info",
        &format!(":channel \"den\" :key :icon :text \"{channel_icon}\""),
    );
    let reply = ann.recv_class("set-channel-info");
    assert_eq!(text(&reply, "text"), Some(channel_icon.as_str()));
    ann.update("set-user-info", ":key :status :text \"away\"");
    ann.recv_class("set-user-info");
    ann.update(
        "set-user-info",
        &format!(":key :icon :text \"{user_icon}\""),
    );
    ann.recv_class("set-user-info");
    let _bob = server.login("bob");
    // A grant changes the channel's row again after the icon was set.
    ann.update(
        "grant",
        ":channel \"den\" :target \"bob\" :update set-channel-info",
    );
    ann.recv_class("grant");
    // The replies were the confirmations: kill at once.
    server.kill_now();
    drop(server);

    let server = start_in(&dir, &[]);
    server.wait_log_in_past("loaded 1 profile(s)");
    let mut bob = server.login("bob");
    let id = bob.update(
        "channel-info",
        ":channel \"den\" :keys (:topic :icon :title)",
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        let o = bob.recv_class("set-channel-info");
        assert_eq!(int(&o, "id"), Some(id));
        got.push((key_name(&o), text(&o, "text").unwrap_or("").to_owned()));
    }
    assert_eq!(
        got,
        [
            ("topic".to_owned(), "Lair".to_owned()),
            ("icon".to_owned(), channel_icon),
            ("title".to_owned(), String::new()),
        ]
    );
    bob.update("user-info", ":target \"ann\"");
    let info = bob.recv_class("user-info");
    let pairs: Vec<(String, String)> = field(&info, "info")
        .and_then(Value::as_list)
        .expect("an info field")
        .iter()
        .map(|p| {
            let p = p.as_list().unwrap();
            (
                p[0].as_symbol().unwrap().name().to_ascii_lowercase(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("status".to_owned(), "away".to_owned()),
            ("icon".to_owned(), user_icon)
        ]
    );
    // The grant survived with it: bob may set the info now.
    bob.update(
        "set-channel-info",
        ":channel \"den\" :key :title :text \"Den\"",
    );
    assert_eq!(class(&bob.recv()), "set-channel-info");
    let _ = std::fs::remove_dir_all(dir);
}
