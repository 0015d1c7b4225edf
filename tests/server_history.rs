//! shirakumo-history (§18 of `shirakumo.mess`) over real TCP: messages
//! sent to a channel are found by a `search` with a `:text` pattern, in
//! `clock` order, and still after a restart.

mod common;
use common::*;
use lichat_tcp_server::wire::{Object, Value};
use std::time::Duration;

/// Sends a `search` in `channel` for `pattern` and returns the texts of
/// its results, checking that the reply is the search itself (same id,
/// same channel) carrying them (§18 step 8).
fn search_texts(client: &mut Client, channel: &str, pattern: &str) -> Vec<String> {
    let id = client.update(
        "search",
        &format!(":channel \"{channel}\" :query (:text (\"{pattern}\"))"),
    );
    let reply = client.recv_class("search");
    assert_eq!(int(&reply, "id"), Some(id), "{reply:?}");
    assert_eq!(text(&reply, "channel"), Some(channel));
    field(&reply, "results")
        .and_then(Value::as_list)
        .expect("the reply holds results")
        .iter()
        .map(|v| {
            let update = Object::from_value(v.clone()).expect("each result is an update");
            assert_eq!(class(&update), "message");
            assert_eq!(text(&update, "channel"), Some(channel));
            text(&update, "text").unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn search_finds_messages_by_text_pattern_and_after_a_restart_18() {
    let dir = temp_data_dir();
    let mut server = start_in(&dir, &[]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"den\"");
    ann.recv_in("join", "den");
    bob.update("join", ":channel \"den\"");
    bob.recv_in("join", "den");
    for text in [
        "the haystack",
        "a needle in it",
        "NEEDLE shouted",
        "another needle",
    ] {
        ann.message("den", text);
        bob.recv_in("message", "den");
    }
    // Recording rides on the writer's commits, in order: once a later
    // `create` is confirmed (its reply waits for its commit), the
    // messages are stored.
    ann.update("create", ":channel \"marker\"");
    ann.recv_in("join", "marker");
    let want = ["a needle in it", "another needle"];
    let found = search_texts(&mut bob, "den", "*needle*");
    assert_eq!(found, want);
    assert_eq!(search_texts(&mut bob, "den", "*stack"), ["the haystack"]);
    assert_eq!(
        search_texts(&mut bob, "den", "*nothing*"),
        Vec::<String>::new()
    );

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    drop(server);

    let server = start_in(&dir, &[]);
    let mut cy = server.login("cy");
    cy.update("join", ":channel \"den\"");
    cy.recv_in("join", "den");
    assert_eq!(search_texts(&mut cy, "den", "*needle*"), want);
    assert_eq!(search_texts(&mut cy, "den", "NEEDLE*"), ["NEEDLE shouted"]);
    let _ = std::fs::remove_dir_all(dir);
}
