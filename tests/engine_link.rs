//! shirakumo-link (§12 of shirakumo.mess) in the engine: a `data` update
//! becomes a saved payload and a `message` carrying its URL, confirmed
//! like any durable change; the room payloads take is bounded, and they
//! go with their channel.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Config, LinkRecord, MAX_UNSAVED_BYTES, Snapshot};
use lichat_tcp_server::protocol::payload::base64_encode;
use lichat_tcp_server::wire::Known;

const PREFIX: &str = "https://chat.example/link/";

fn linking(max_link_bytes: u64) -> Config {
    Config {
        link_url_prefix: PREFIX.into(),
        max_link_bytes,
        ..config()
    }
}

/// ann (1) and bob (2) in "lobby", cat (3) outside, links on.
fn lobby(max_link_bytes: u64) -> Harness {
    let mut h = Harness::with(linking(max_link_bytes));
    h.login(1, "ann");
    h.login(2, "bob");
    h.login(3, "cat");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(1);
    h
}

fn data(id: u64, channel: &str, ty: &str, filename: &str, payload: &[u8]) -> String {
    format!(
        "(data :id {id} :channel \"{channel}\" :content-type \"{ty}\" :filename \"{filename}\" \
         :payload \"{}\")",
        base64_encode(payload)
    )
}

fn links(changes: &[Change]) -> Vec<&LinkRecord> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Link(r) => Some(&**r),
            _ => None,
        })
        .collect()
}

#[test]
fn link_12_is_advertised_only_when_links_are_on_4_1_11() {
    for (config, on) in [
        (linking(1 << 20), true),
        (linking(0), false),
        (config(), false),
    ] {
        let mut h = Harness::with(config);
        h.open(1);
        let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
        let names = strings(&got[0], Known::KExtensions);
        assert_eq!(
            names.contains(&"shirakumo-link".to_owned()),
            on,
            "{names:?}"
        );
        assert!(names.contains(&"shirakumo-data".to_owned()));
    }
}

#[test]
fn link_12_steps1_to_4_save_the_payload_and_distribute_a_message_with_its_url() {
    let mut h = lobby(1 << 20);
    h.take_changes();
    let mine = h.expect_ok(
        1,
        &data(7, "lobby", "image/png; x=y", "cat.png", b"\x89PNG..."),
    );
    let theirs = h.take(2);
    let changes = h.take_changes();
    let saved = links(&changes);
    assert_eq!(saved.len(), 1, "{changes:?}");
    let r = saved[0];
    assert_eq!(r.name.len(), 32);
    assert!(r.name.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(r.channel, "lobby");
    assert!(r.durable);
    assert_eq!(r.content_type, "image/png");
    assert_eq!(r.filename.as_deref(), Some("cat.png"));
    assert_eq!(r.payload, b"\x89PNG...");
    for got in [&mine, &theirs] {
        assert_eq!(
            classes_of(got),
            [Known::Message],
            "step 4: no data goes out"
        );
        let m = &got[0];
        assert_eq!(id(m), Some(7));
        assert_eq!(text(m, Known::KFrom), Some("ann"));
        assert_eq!(text(m, Known::KChannel), Some("lobby"));
        assert_eq!(
            text(m, Known::KText),
            Some(format!("{PREFIX}{}", r.name).as_str())
        );
        assert_eq!(text(m, Known::KLink), Some("image/png"));
    }
    assert!(h.take(3).is_empty(), "cat is not in lobby");
    // Another share gets another name.
    h.expect_ok(1, &data(8, "lobby", "image/png", "cat.png", b"\x89PNG..."));
    let changes = h.take_changes();
    assert_ne!(links(&changes)[0].name, r.name);
}

#[test]
fn link_12_message_waits_for_the_commit_and_is_withdrawn_if_it_fails() {
    let mut h = lobby(8192);
    h.keep_unsettled = true;
    h.take_changes();
    h.call(1, &data(7, "lobby", "text/plain", "a.txt", &[b'x'; 5000]));
    h.take(2);
    let confirming: Vec<_> = h.confirmations.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(confirming, [(1, Known::Message), (2, Known::Message)]);
    let name = links(&h.take_changes())[0].name.clone();
    // The cap is taken while it waits.
    h.expect_failure(
        1,
        &data(8, "lobby", "text/plain", "b.txt", b"y"),
        Known::UpdateFailure,
    );
    let refused = h.fail_pending("the disk is full");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].conn, 1);
    assert!(
        h.take_changes().contains(&Change::DeleteLink(name)),
        "the store forgets the payload"
    );
    // Its room is free again.
    h.confirmations.clear();
    h.expect_ok(1, &data(9, "lobby", "text/plain", "c.txt", &[b'z'; 8000]));
}

#[test]
fn link_12_a_full_room_refuses_data_with_update_failure() {
    let mut h = lobby(3 * 4096);
    // Each payload counts in whole 4 KiB blocks.
    h.expect_ok(1, &data(1, "lobby", "text/plain", "", b"a"));
    h.expect_ok(1, &data(2, "lobby", "text/plain", "", &[b'b'; 4097]));
    let f = h.expect_failure(
        1,
        &data(3, "lobby", "text/plain", "", b"c"),
        Known::UpdateFailure,
    );
    assert!(text(&f, Known::KText).is_some_and(|t| t.contains("full")));
    assert_eq!(h.engine.link_bytes(), 3 * 4096);
}

#[test]
fn link_12_unsaved_payloads_are_bounded_while_commits_wait() {
    let mut h = lobby(u64::MAX);
    h.keep_unsettled = true;
    let chunk = vec![0u8; 5 << 20];
    let mut accepted = 0u64;
    for i in 0..20 {
        let got = h.call(1, &data(100 + i, "lobby", "video/mp4", "v.mp4", &chunk));
        h.take(2);
        h.take_changes();
        if class(&got[0]) == Known::UpdateFailure {
            let why = text(&got[0], Known::KText).unwrap_or("");
            assert!(why.contains("still saving"), "{why}");
            break;
        }
        accepted += chunk.len() as u64;
    }
    assert!(accepted <= MAX_UNSAVED_BYTES, "{accepted}");
    assert!(
        accepted + chunk.len() as u64 > MAX_UNSAVED_BYTES,
        "{accepted}"
    );
    // Once committed, more can come.
    h.engine.settle(u64::MAX);
    let got = h.call(1, &data(200, "lobby", "video/mp4", "v.mp4", &chunk));
    assert_eq!(classes_of(&got), [Known::Message]);
}

#[test]
fn link_12_payloads_go_with_their_channel_and_free_their_room() {
    let mut h = lobby(2 * 4096);
    h.login(4, "dan");
    let anon = h.expect_ok(4, "(create :id 2)");
    let channel = text(&anon[0], Known::KChannel).unwrap().to_owned();
    h.expect_ok(4, &data(3, &channel, "text/plain", "", b"secret"));
    h.expect_ok(1, &data(4, "lobby", "text/plain", "", b"public"));
    let changes = h.take_changes();
    let saved = links(&changes);
    assert!(
        !saved[0].durable,
        "an anonymous channel's payload ends with a restart"
    );
    assert!(saved[1].durable);
    // Full now; the anonymous channel goes when dan leaves it (§2.4.2).
    h.expect_failure(
        1,
        &data(5, "lobby", "text/plain", "", b"more"),
        Known::UpdateFailure,
    );
    h.expect_ok(4, &format!("(leave :id 6 :channel \"{channel}\")"));
    assert!(h.take_changes().contains(&Change::DeleteLinks(channel)));
    h.expect_ok(1, &data(7, "lobby", "text/plain", "", b"more"));
}

#[test]
fn link_12_long_file_names_are_cut_at_a_character_boundary() {
    let mut h = lobby(1 << 20);
    h.take_changes();
    let long = "é".repeat(200);
    h.expect_ok(1, &data(1, "lobby", "text/plain", &long, b"x"));
    let changes = h.take_changes();
    let name = links(&changes)[0].filename.clone().unwrap_or_default();
    assert_eq!(name.len(), 254, "127 two-byte characters");
    assert!(long.starts_with(&name));
}

#[test]
fn link_12_what_stored_payloads_take_counts_after_a_restart() {
    let snapshot = Snapshot {
        links: vec![("lobby".into(), 4096), ("gone".into(), 4096)],
        ..Snapshot::default()
    };
    let mut h = Harness::with(linking(3 * 4096));
    h.engine.load(snapshot);
    assert_eq!(h.engine.link_bytes(), 2 * 4096);
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"den\")");
    h.expect_ok(1, &data(3, "den", "text/plain", "", b"fits"));
    h.expect_failure(
        1,
        &data(4, "den", "text/plain", "", b"full"),
        Known::UpdateFailure,
    );
}

#[test]
fn link_12_still_checks_data_2_steps_first() {
    let mut h = lobby(1 << 20);
    h.expect_failure(
        3,
        &data(1, "lobby", "image/png", "", b"x"),
        Known::NotInChannel,
    );
    h.expect_failure(
        1,
        &data(2, "lobby", "application/x-msdownload", "", b"x"),
        Known::SBadContentType,
    );
    assert!(links(&h.take_changes()).is_empty());
}
