//! shirakumo-emotes (§3 of shirakumo.mess): per-channel emotes, the
//! `emotes` and `emote` updates, their limits, their storage across
//! restarts and `--emotes-dir`; and emote names as reactions (§20).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Config, EmoteRecord};
use lichat_tcp_server::protocol::payload::base64_encode;
use lichat_tcp_server::store::{self, NoNotify};
use lichat_tcp_server::wire::{Known, Object};
use std::path::PathBuf;
use std::sync::Arc;

const PNG: &str = "iVBORw0KGgo=";
const GIF: &str = "R0lGODlh";

/// ann (conn 1, registered) made "gallery"; bob (conn 2) is in it; cat
/// (conn 3) is not.
fn gallery_with(config: Config) -> Harness {
    let mut h = Harness::with(config);
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h.login(2, "bob");
    h.login(3, "cat");
    h.expect_ok(1, "(create :id 3 :channel \"gallery\")");
    h.expect_ok(2, "(join :id 4 :channel \"gallery\")");
    h.take(1);
    h.take_changes();
    h
}

fn gallery() -> Harness {
    gallery_with(config())
}

fn emote(id: u64, name: &str, ty: &str, payload: &str) -> String {
    format!(
        "(emote :id {id} :channel \"gallery\" :name \"{name}\" :content-type \"{ty}\" \
         :payload \"{payload}\")"
    )
}

fn emotes_in(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "(emotes :id 50 :channel \"gallery\" :names ({}))",
        names.join(" ")
    )
}

/// The `emote` updates of a reply, by name, and the final `emotes`.
fn split(got: Vec<Object>) -> (Vec<Object>, Object) {
    let mut got = got;
    let last = got.pop().expect("an emotes reply");
    assert_eq!(class(&last), Known::SEmotes, "{last:?}");
    assert!(got.iter().all(|o| class(o) == Known::SEmote), "{got:?}");
    (got, last)
}

fn names_of(emotes: &[Object]) -> Vec<String> {
    emotes
        .iter()
        .map(|o| text(o, Known::KName).unwrap().to_owned())
        .collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lichat-emotes-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn emotes_3_are_advertised_under_both_spellings_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    let names = strings(&got[0], Known::KExtensions);
    for ext in ["shirakumo-emotes", "shirakumo-emote"] {
        assert!(names.contains(&ext.to_owned()), "{ext}: {names:?}");
    }
}

// `emote`

#[test]
fn emote_3_step6_is_distributed_to_the_channel_and_stored() {
    let mut h = gallery();
    let mine = h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    let theirs = h.take(2);
    for got in [&mine, &theirs] {
        assert_eq!(classes_of(got), [Known::SEmote]);
        assert_eq!(text(&got[0], Known::KName), Some("Kappa"));
        assert_eq!(text(&got[0], Known::KPayload), Some(PNG));
        assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    }
    assert!(h.take(3).is_empty());
    let e = h
        .engine
        .emote("gallery", "kappa")
        .expect("stored in the map");
    assert_eq!((e.name.as_str(), e.payload.as_str()), ("Kappa", PNG));
    assert_eq!(e.content_type, "image/png");
    let changes = h.take_changes();
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Emote(r) if r.name == "Kappa")),
        "{changes:?}"
    );
}

#[test]
fn emote_3_step1_outsider_gets_not_in_channel() {
    let mut h = gallery();
    // The registrant (who passes the rule, §5.1.8) after leaving.
    h.expect_ok(1, "(leave :id 4 :channel \"gallery\")");
    h.expect_failure(1, &emote(5, "Kappa", "image/png", PNG), Known::NotInChannel);
    assert!(h.engine.emote("gallery", "Kappa").is_none());
}

#[test]
fn emote_3_step2_full_map_gets_emote_list_full_but_replacing_works() {
    let mut h = gallery_with(Config {
        max_emotes: 2,
        ..config()
    });
    h.expect_ok(1, &emote(5, "a", "image/png", PNG));
    h.expect_ok(1, &emote(6, "b", "image/png", PNG));
    h.expect_failure(1, &emote(7, "c", "image/png", PNG), Known::SEmoteListFull);
    assert!(h.engine.emote("gallery", "c").is_none());
    // A name already there is no new entry.
    h.expect_ok(1, &emote(8, "B", "image/gif", GIF));
    assert_eq!(h.engine.emote_names("gallery").unwrap(), ["a", "B"]);
}

#[test]
fn emote_3_step2_bytes_of_all_emotes_are_limited_too() {
    let mut h = gallery_with(Config {
        max_emotes_bytes: 600,
        ..config()
    });
    let big = base64_encode(&[7u8; 240]);
    h.expect_ok(1, &emote(5, "a", "image/png", &big));
    let f = h.expect_failure(1, &emote(6, "b", "image/png", &big), Known::SEmoteListFull);
    assert!(text(&f, Known::KText).unwrap().contains("bytes"));
    // Replacing the one there counts its old size out.
    h.expect_ok(1, &emote(7, "a", "image/png", &big));
}

#[test]
fn emote_3_step3_non_image_gets_bad_content_type_listing_the_accepted() {
    let mut h = gallery();
    let f = h.expect_failure(1, &emote(5, "a", "text/html", PNG), Known::SBadContentType);
    assert_eq!(
        strings(&f, Known::KAllowedContentTypes),
        ["image/png", "image/gif", "image/jpeg", "image/webp"]
    );
    assert!(text(&f, Known::KText).unwrap().contains("image/webp"));
    assert!(h.take(2).is_empty());
}

#[test]
fn emote_3_step4_payload_over_max_emote_size_gets_update_too_long() {
    let mut h = gallery_with(Config {
        max_emote_size: 30,
        ..config()
    });
    // The limit counts decoded bytes: 30 bytes are 40 base-64 characters.
    h.expect_ok(1, &emote(5, "fits", "image/png", &base64_encode(&[1; 30])));
    let got = h.call(1, &emote(6, "big", "image/png", &base64_encode(&[1; 31])));
    assert_eq!(classes_of(&got), [Known::UpdateTooLong]);
    assert!(text(&got[0], Known::KText).unwrap().contains("31 bytes"));
    assert!(h.engine.emote("gallery", "big").is_none());
    let got = h.call(1, &emote(7, "bad", "image/png", "not base 64"));
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
}

#[test]
fn emote_3_step5_empty_payload_removes_the_emote() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.take(2);
    h.take_changes();
    let got = h.expect_ok(1, &emote(6, "KAPPA", "image/png", ""));
    assert_eq!(classes_of(&got), [Known::SEmote]);
    assert_eq!(
        classes_of(&h.take(2)),
        [Known::SEmote],
        "removal is distributed"
    );
    assert!(h.engine.emote("gallery", "kappa").is_none());
    assert_eq!(
        h.take_changes(),
        [Change::DeleteEmote {
            channel: "gallery".into(),
            name: "KAPPA".into()
        }]
    );
}

#[test]
fn emote_3_names_are_case_insensitive_and_printed_as_given() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "PogChamp", "image/png", PNG));
    h.expect_ok(1, &emote(6, "pogchamp", "image/gif", GIF));
    assert_eq!(h.engine.emote_names("gallery").unwrap(), ["pogchamp"]);
    assert_eq!(h.engine.emote("gallery", "POGCHAMP").unwrap().payload, GIF);
}

#[test]
fn emote_3_bad_names_are_malformed() {
    let mut h = gallery();
    for bad in ["", "a:b", "two words", &"x".repeat(65)] {
        let got = h.call(1, &emote(5, bad, "image/png", PNG));
        assert_eq!(classes_of(&got), [Known::MalformedUpdate], "{bad:?}");
    }
}

#[test]
fn emote_3_default_rule_is_only_the_registrant_2_5() {
    let mut h = gallery();
    h.expect_failure(
        2,
        &emote(5, "a", "image/png", PNG),
        Known::InsufficientPermissions,
    );
    // In the primary channel its registrant is the server.
    h.expect_failure(
        1,
        &format!(
            "(emote :id 6 :channel \"Server\" :name \"a\" :content-type \"image/png\" \
             :payload \"{PNG}\")"
        ),
        Known::InsufficientPermissions,
    );
    // The registrant can hand it on.
    h.expect_ok(
        1,
        "(grant :id 7 :channel \"gallery\" :target \"bob\" :update emote)",
    );
    h.expect_ok(2, &emote(8, "a", "image/png", PNG));
}

#[test]
fn emote_3_channels_of_unregistered_users_and_anonymous_ones_hold_none() {
    let mut h = Harness::lobby(); // ann is not registered
    let f = h.expect_failure(
        1,
        "(emote :id 5 :channel \"lobby\" :name \"a\" :content-type \"image/png\" \
         :payload \"iVBORw0KGgo=\")",
        Known::InsufficientPermissions,
    );
    assert!(text(&f, Known::KText).unwrap().contains("registered"));
    let got = h.expect_ok(1, "(create :id 6)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_failure(
        1,
        &format!(
            "(emote :id 7 :channel \"{anon}\" :name \"a\" :content-type \"image/png\" \
             :payload \"{PNG}\")"
        ),
        Known::InsufficientPermissions,
    );
}

// `emotes`

#[test]
fn emotes_3_steps4_to_6_send_the_missing_emotes_then_all_names() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.expect_ok(1, &emote(6, "Lul", "image/gif", GIF));
    h.expect_ok(1, &emote(7, "ok", "image/png", PNG));
    h.take(2);
    // Step 4: names compare without case; unknown names are ignored.
    let (sent, reply) = split(h.expect_ok(2, &emotes_in(&["kappa", "OK", "other"])));
    // Step 5.
    assert_eq!(names_of(&sent), ["Lul"]);
    let e = &sent[0];
    assert_eq!(text(e, Known::KChannel), Some("gallery"));
    assert_eq!(text(e, Known::KContentType), Some("image/gif"));
    assert_eq!(text(e, Known::KPayload), Some(GIF));
    assert_eq!(text(e, Known::KFrom), Some("Server"));
    // Step 6: the update back, with every name.
    assert_eq!(id(&reply), Some(50));
    assert_eq!(text(&reply, Known::KChannel), Some("gallery"));
    let mut all = strings(&reply, Known::KNames);
    all.sort();
    assert_eq!(all, ["Kappa", "Lul", "ok"]);
    // Without names the client gets every emote.
    let (sent, _) = split(h.expect_ok(2, "(emotes :id 51 :channel \"gallery\")"));
    assert_eq!(sent.len(), 3);
    assert!(
        h.take(1).is_empty(),
        "only the asking connection is answered"
    );
}

#[test]
fn emotes_3_step1_without_channel_answers_for_the_primary_channel() {
    let mut h = Harness::new();
    h.engine
        .add_primary_emotes(vec![EmoteRecord {
            channel: "Server".into(),
            name: "wave".into(),
            content_type: "image/png".into(),
            payload: PNG.into(),
            added: START,
        }])
        .unwrap();
    h.login(1, "ann");
    let (sent, reply) = split(h.expect_ok(1, "(emotes :id 5)"));
    assert_eq!(names_of(&sent), ["wave"]);
    assert_eq!(text(&sent[0], Known::KChannel), Some("Server"));
    assert_eq!(text(&reply, Known::KChannel), Some("Server"));
    assert_eq!(strings(&reply, Known::KNames), ["wave"]);
    // Those known are not sent again.
    let (sent, _) = split(h.expect_ok(1, "(emotes :id 6 :names (\"WAVE\"))"));
    assert!(sent.is_empty());
}

#[test]
fn emotes_3_step2_outsider_gets_not_in_channel() {
    let mut h = gallery();
    h.expect_failure(3, &emotes_in(&[]), Known::NotInChannel);
}

#[test]
fn emotes_3_step3_anonymous_or_unregistered_channel_gets_insufficient_permissions() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(emotes :id 5 :channel \"lobby\" :names ())",
        Known::InsufficientPermissions,
    );
    let got = h.expect_ok(1, "(create :id 6)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_failure(
        1,
        &format!("(emotes :id 7 :channel \"{anon}\")"),
        Known::InsufficientPermissions,
    );
}

#[test]
fn emotes_3_default_rule_is_anyone_2_5() {
    let mut h = gallery();
    // bob is not the registrant of gallery, nor of the primary channel.
    h.expect_ok(2, &emotes_in(&[]));
    h.expect_ok(2, "(emotes :id 6 :channel \"Server\")");
}

#[test]
fn emotes_3_answers_share_one_printed_update_per_emote() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.take(2);
    let (a, _) = split(h.expect_ok(1, &emotes_in(&[])));
    let (b, _) = split(h.expect_ok(2, &emotes_in(&[])));
    // The same bytes: the same id, not a new update per request.
    assert_eq!(a, b);
}

// Durability

#[test]
fn emote_3_unsaved_upload_is_undone_and_the_old_emote_restored() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.keep_unsettled = true;
    h.expect_ok(1, &emote(6, "Kappa", "image/gif", GIF));
    h.expect_ok(1, &emote(7, "New", "image/png", PNG));
    // Every copy of the distribution waits for the commit.
    let confirmed: Vec<_> = h.confirmations.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(
        confirmed,
        [
            (1, Known::SEmote),
            (2, Known::SEmote),
            (1, Known::SEmote),
            (2, Known::SEmote)
        ]
    );
    h.take_changes();
    let refused = h.fail_pending("the disk is full");
    assert_eq!(refused.len(), 2);
    assert_eq!(h.engine.emote("gallery", "Kappa").unwrap().payload, PNG);
    assert!(h.engine.emote("gallery", "New").is_none());
    let changes = h.take_changes();
    assert!(changes.contains(&Change::DeleteEmote {
        channel: "gallery".into(),
        name: "New".into()
    }));
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Emote(r) if r.payload == PNG))
    );
}

#[test]
fn emote_3_is_refused_while_the_store_fails() {
    let mut h = gallery();
    h.engine.set_store_failure(Some("the disk is full".into()));
    let f = h.expect_failure(1, &emote(5, "a", "image/png", PNG), Known::UpdateFailure);
    assert!(text(&f, Known::KText).unwrap().contains("disk is full"));
    assert!(h.engine.emote("gallery", "a").is_none());
    assert!(h.take(2).is_empty());
}

#[test]
fn emotes_3_go_with_their_channel_when_it_expires_2_4() {
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.expect_ok(1, "(leave :id 6 :channel \"gallery\")");
    h.expect_ok(2, "(leave :id 7 :channel \"gallery\")");
    h.take_changes();
    h.now += lichat_tcp_server::engine::THIRTY_DAYS + 1;
    h.login(4, "dan");
    h.expire();
    assert!(h.engine.channel("gallery").is_none());
    assert!(
        h.take_changes()
            .contains(&Change::DeleteChannel("gallery".into()))
    );
    // A new channel of that name starts without them.
    h.expect_ok(1, "(create :id 8 :channel \"gallery\")");
    assert_eq!(
        h.engine.emote_names("gallery").unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn emotes_3_survive_a_restart_and_leave_the_store_with_their_channel() {
    let dir = temp_dir("restart");
    let mut h = gallery();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.expect_ok(1, &emote(6, "Gone", "image/png", PNG));
    h.expect_ok(1, &emote(7, "gone", "image/png", ""));
    let mut changes = h.take_changes();
    // The channel row was written when it was created.
    changes.insert(
        0,
        Change::Channel(lichat_tcp_server::engine::ChannelRecord {
            name: "gallery".into(),
            registrant: "ann".into(),
            rules: Vec::new(),
            lifetime: lichat_tcp_server::engine::THIRTY_DAYS,
            last_used: START,
            data: Default::default(),
        }),
    );
    let profile = h.engine.profile("ann").unwrap().clone();
    changes.insert(0, Change::Profile(profile));
    let (mut s, _) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    s.submit(changes);
    s.close();

    let (s, snapshot) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    s.close();
    assert_eq!(snapshot.emotes.len(), 1, "{:?}", snapshot.emotes);
    let mut h = Harness::new();
    h.engine.load(snapshot);
    h.login(1, "bob");
    h.expect_ok(1, "(join :id 2 :channel \"gallery\")");
    let (sent, _) = split(h.expect_ok(1, &emotes_in(&[])));
    assert_eq!(names_of(&sent), ["Kappa"]);
    assert_eq!(text(&sent[0], Known::KPayload), Some(PNG));

    // The channel's deletion takes its emotes along.
    let (mut s, _) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    s.submit(vec![Change::DeleteChannel("gallery".into())]);
    s.close();
    let snapshot = store::read_snapshot(&dir).unwrap();
    assert!(snapshot.emotes.is_empty(), "{:?}", snapshot.emotes);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn emotes_3_deleted_channel_remade_in_one_batch_keeps_only_new_emotes() {
    let dir = temp_dir("remade");
    let record = |name: &str| {
        Change::Emote(EmoteRecord {
            channel: "den".into(),
            name: name.into(),
            content_type: "image/png".into(),
            payload: PNG.into(),
            added: START,
        })
    };
    let (mut s, _) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    s.submit(vec![record("old")]);
    s.submit(vec![
        record("older"),
        Change::DeleteChannel("den".into()),
        record("new"),
    ]);
    s.close();
    let snapshot = store::read_snapshot(&dir).unwrap();
    let names: Vec<&str> = snapshot.emotes.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["new"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_database_of_schema_1_loads_and_gains_the_emotes_table() {
    let dir = temp_dir("schema1");
    {
        let conn = rusqlite::Connection::open(dir.join(store::FILE_NAME)).unwrap();
        conn.execute_batch(
            "CREATE TABLE profiles (key TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT NULL,
               iterations INTEGER NOT NULL, hash BLOB NOT NULL, registered_on INTEGER NOT NULL,
               last_used INTEGER NOT NULL, data TEXT NOT NULL DEFAULT '()');
             CREATE TABLE channels (key TEXT PRIMARY KEY, name TEXT NOT NULL,
               registrant TEXT NOT NULL, rules TEXT NOT NULL, lifetime INTEGER NOT NULL,
               last_used INTEGER NOT NULL, data TEXT NOT NULL DEFAULT '()');
             CREATE TABLE lists (list TEXT NOT NULL, item TEXT NOT NULL,
               PRIMARY KEY (list, item));
             INSERT INTO channels VALUES ('den', 'den', 'ann', '()', 100, 5, '()');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let (mut s, snapshot) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    assert_eq!(snapshot.channels.len(), 1);
    assert!(snapshot.emotes.is_empty());
    s.submit(vec![Change::Emote(EmoteRecord {
        channel: "den".into(),
        name: "a".into(),
        content_type: "image/png".into(),
        payload: PNG.into(),
        added: START,
    })]);
    s.close();
    assert_eq!(store::read_snapshot(&dir).unwrap().emotes.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

// --emotes-dir

#[test]
fn emotes_dir_loads_the_primary_channels_emotes_by_file_name() {
    let dir = temp_dir("dir");
    std::fs::write(dir.join("wave.png"), b"\x89PNG").unwrap();
    std::fs::write(dir.join("Dance.GIF"), b"GIF89a").unwrap();
    std::fs::write(dir.join("cat.jpeg"), b"\xff\xd8").unwrap();
    std::fs::write(dir.join(".hidden"), b"x").unwrap();
    let records = store::read_emote_dir(&dir, "Server", 1024, START).unwrap();
    let mut h = Harness::new();
    h.engine.add_primary_emotes(records).unwrap();
    let names = h.engine.emote_names("Server").unwrap();
    assert_eq!(names, ["cat", "Dance", "wave"]);
    let e = h.engine.emote("Server", "dance").unwrap();
    assert_eq!(e.content_type, "image/gif");
    assert_eq!(e.payload, base64_encode(b"GIF89a"));
    assert_eq!(
        h.engine.emote("Server", "cat").unwrap().content_type,
        "image/jpeg"
    );
    // Stored emotes of the primary channel do not replace the directory's.
    h.engine.load(lichat_tcp_server::engine::Snapshot {
        emotes: vec![EmoteRecord {
            channel: "Server".into(),
            name: "WAVE".into(),
            content_type: "image/gif".into(),
            payload: GIF.into(),
            added: START,
        }],
        ..Default::default()
    });
    assert_eq!(h.engine.emote("Server", "wave").unwrap().name, "wave");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn emotes_dir_errors_name_the_file() {
    let dir = temp_dir("dir-bad");
    std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
    let e = store::read_emote_dir(&dir, "Server", 1024, START).unwrap_err();
    assert!(e.contains("notes.txt") && e.contains("unknown"), "{e}");
    std::fs::remove_file(dir.join("notes.txt")).unwrap();
    std::fs::write(dir.join("huge.png"), vec![0u8; 2000]).unwrap();
    let e = store::read_emote_dir(&dir, "Server", 1024, START).unwrap_err();
    assert!(
        e.contains("huge.png") && e.contains("--max-emote-size"),
        "{e}"
    );
    std::fs::remove_file(dir.join("huge.png")).unwrap();
    std::fs::write(dir.join("a:b.png"), b"x").unwrap();
    let e = store::read_emote_dir(&dir, "Server", 1024, START).unwrap_err();
    assert!(e.contains("a:b.png") && e.contains("colon"), "{e}");
    let e = store::read_emote_dir(&dir.join("missing"), "Server", 1024, START).unwrap_err();
    assert!(e.contains("missing"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn emotes_dir_respects_max_emotes() {
    let records: Vec<EmoteRecord> = ["a", "b", "c"]
        .iter()
        .map(|n| EmoteRecord {
            channel: "Server".into(),
            name: (*n).into(),
            content_type: "image/png".into(),
            payload: PNG.into(),
            added: START,
        })
        .collect();
    let mut h = Harness::with(Config {
        max_emotes: 2,
        ..config()
    });
    let e = h.engine.add_primary_emotes(records).unwrap_err();
    assert!(e.contains("--max-emotes"), "{e}");
}

// §20 reactions with emotes

#[test]
fn reactions_20_step2_accept_emotes_of_the_channel_or_the_primary_channel() {
    let mut h = gallery();
    h.engine
        .add_primary_emotes(vec![EmoteRecord {
            channel: "Server".into(),
            name: "wave".into(),
            content_type: "image/png".into(),
            payload: PNG.into(),
            added: START,
        }])
        .unwrap();
    h.expect_ok(1, &emote(5, "Kappa", "image/png", PNG));
    h.take(2);
    let react = |e: &str| {
        format!("(react :id 9 :channel \"gallery\" :target \"ann\" :update-id 5 :emote \"{e}\")")
    };
    for ok in ["Kappa", "kappa", "wave", "👍"] {
        h.expect_ok(2, &react(ok));
        assert_eq!(classes_of(&h.take(1)), [Known::SReact], "{ok}");
    }
    let got = h.call(2, &react("nope"));
    assert_eq!(classes_of(&got), [Known::MalformedUpdate]);
    assert!(h.take(1).is_empty());
}
