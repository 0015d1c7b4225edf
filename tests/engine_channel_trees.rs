//! shirakumo-channel-trees (§5 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::Known;

#[test]
fn connect_reply_advertises_shirakumo_channel_trees_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-channel-trees".to_owned()));
}

#[test]
fn channel_trees_5_slash_only_between_two_other_characters() {
    let mut h = Harness::lobby();
    for bad in ["/lobby", "lobby/", "lobby//sub", "/"] {
        h.expect_failure(
            1,
            &format!("(create :id 5 :channel \"{bad}\")"),
            Known::BadName,
        );
        assert!(h.engine.channel(bad).is_none(), "{bad}");
    }
    h.expect_ok(1, "(create :id 6 :channel \"lobby/sub\")");
    h.expect_ok(1, "(create :id 7 :channel \"lobby/sub/deeper\")");
}

#[test]
fn channel_trees_5_3_1_missing_parent_is_no_such_parent_channel() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(create :id 5 :channel \"attic/box\")",
        Known::SNoSuchParentChannel,
    );
    h.expect_failure(
        1,
        "(create :id 6 :channel \"lobby/none/box\")",
        Known::SNoSuchParentChannel,
    );
    assert!(h.engine.channel("attic/box").is_none());
}

#[test]
fn channel_trees_5_3_1_child_is_checked_against_the_parents_create_rule() {
    let mut h = Harness::lobby();
    // Only the parent's registrant, by default.
    h.expect_failure(
        2,
        "(create :id 5 :channel \"lobby/bobs\")",
        Known::InsufficientPermissions,
    );
    let got = h.expect_ok(1, "(create :id 6 :channel \"Lobby/Anns\")");
    assert_eq!(classes_of(&got), [Known::Join]);
    assert_eq!(text(&got[0], Known::KChannel), Some("Lobby/Anns"));
    // Granted in the parent, bob may; the primary channel does not decide.
    h.expect_ok(
        1,
        "(grant :id 7 :channel \"lobby\" :target \"bob\" :update create)",
    );
    h.expect_ok(2, "(create :id 8 :channel \"lobby/bobs\")");
    // And the child's own rule decides for its children.
    h.expect_failure(
        1,
        "(create :id 9 :channel \"lobby/bobs/anns\")",
        Known::InsufficientPermissions,
    );
    // Top-level channels follow the primary channel's rule, as before.
    h.expect_ok(3, "(create :id 10 :channel \"cats\")");
}

#[test]
fn channel_trees_5_3_1_anonymous_channels_have_no_children() {
    let mut h = Harness::lobby();
    let join = h.expect_ok(1, "(create :id 5)");
    let anon = text(&join[0], Known::KChannel).unwrap().to_owned();
    h.expect_failure(
        1,
        &format!("(create :id 6 :channel \"{anon}/sub\")"),
        Known::BadName,
    );
    // To an outsider it does not exist.
    h.expect_failure(
        2,
        &format!("(create :id 7 :channel \"{anon}/sub\")"),
        Known::BadName,
    );
}

#[test]
fn channel_trees_5_5_1_channels_with_a_channel_lists_its_direct_children() {
    let mut h = Harness::lobby();
    for name in ["lobby/a", "lobby/b", "lobby/a/deep", "cats"] {
        h.expect_ok(1, &format!("(create :id 5 :channel \"{name}\")"));
    }
    let got = h.expect_ok(2, "(channels :id 6 :channel \"lobby\")");
    let mut names = strings(&got[0], Known::KChannels);
    names.sort();
    assert_eq!(names, ["lobby/a", "lobby/b"]);
    assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
    let got = h.expect_ok(2, "(channels :id 7 :channel \"lobby/a\")");
    assert_eq!(strings(&got[0], Known::KChannels), ["lobby/a/deep"]);
    let got = h.expect_ok(2, "(channels :id 8 :channel \"lobby/b\")");
    assert!(strings(&got[0], Known::KChannels).is_empty());
    // The primary channel's children are the top-level channels.
    let got = h.expect_ok(2, "(channels :id 9 :channel \"Server\")");
    let mut names = strings(&got[0], Known::KChannels);
    names.sort();
    assert_eq!(names, ["cats", "lobby"]);
    // Without a channel, every channel, as in §5.5.1.
    let got = h.expect_ok(2, "(channels :id 10)");
    assert_eq!(strings(&got[0], Known::KChannels).len(), 6);
    h.expect_failure(
        2,
        "(channels :id 11 :channel \"nowhere\")",
        Known::NoSuchChannel,
    );
}

#[test]
fn channel_trees_5_5_1_children_are_still_checked_against_their_own_rules() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(create :id 5 :channel \"lobby/open\")");
    h.expect_ok(1, "(create :id 6 :channel \"lobby/hidden\")");
    h.expect_ok(
        1,
        "(permissions :id 7 :channel \"lobby/hidden\" :permissions ((channels (+ \"ann\"))))",
    );
    let got = h.expect_ok(2, "(channels :id 8 :channel \"lobby\")");
    assert_eq!(strings(&got[0], Known::KChannels), ["lobby/open"]);
    let got = h.expect_ok(1, "(channels :id 9 :channel \"lobby\")");
    assert_eq!(strings(&got[0], Known::KChannels).len(), 2);
}
