//! §5.5 server information retrieval: channels, users, user-info,
//! capabilities and server-info.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::{Known, Value};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn symbols(v: &Value) -> Vec<Known> {
    v.as_list()
        .unwrap_or(&[])
        .iter()
        .map(|s| s.as_symbol().and_then(|s| s.known()).expect("known symbol"))
        .collect()
}

/// The value of `key` in an association list `((key value) ...)`.
fn assoc(list: &Value, key: Known) -> Option<Value> {
    list.as_list()?
        .iter()
        .filter_map(Value::as_list)
        .find(|p| p.first().and_then(Value::as_symbol).and_then(|s| s.known()) == Some(key))
        .map(|p| p[1].clone())
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

// §5.5.1 channels

#[test]
fn channels_lists_every_channel_whose_rules_allow_it_with_same_id_5_5_1() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(create :id 4 :channel \"dev\")");
    h.expect_ok(1, "(create :id 5)");
    let got = h.expect_ok(3, "(channels :id 61)");
    assert_eq!(classes_of(&got), [Known::Channels]);
    assert_eq!(id(&got[0]), Some(61));
    assert_eq!(
        sorted(strings(&got[0], Known::KChannels)),
        ["Server", "dev", "lobby"],
        "anonymous channel left out; listing does not need membership"
    );
}

#[test]
fn channels_leaves_out_a_channel_that_denies_the_requester_5_5_1_1_2() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(deny :id 4 :channel \"lobby\" :target \"cat\" :update channels)",
    );
    let got = h.expect_ok(3, "(channels :id 5)");
    assert_eq!(strings(&got[0], Known::KChannels), ["Server"]);
    let got = h.expect_ok(2, "(channels :id 6)");
    assert_eq!(
        sorted(strings(&got[0], Known::KChannels)),
        ["Server", "lobby"]
    );
}

// §5.5.2 users

#[test]
fn users_of_a_channel_one_is_not_in_fails_not_in_channel_5_5_2_1() {
    let mut h = Harness::lobby();
    h.expect_failure(3, "(users :id 5 :channel \"lobby\")", Known::NotInChannel);
}

#[test]
fn users_lists_the_channels_members_with_same_id_5_5_2_2_3() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(users :id 62 :channel \"LOBBY\")");
    assert_eq!(classes_of(&got), [Known::Users]);
    assert_eq!(id(&got[0]), Some(62));
    assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
    assert_eq!(sorted(strings(&got[0], Known::KUsers)), ["ann", "bob"]);
    let got = h.expect_ok(3, "(users :id 63 :channel \"Server\")");
    assert_eq!(
        sorted(strings(&got[0], Known::KUsers)),
        ["Server", "ann", "bob", "cat"]
    );
}

// §5.5.3 user-info

#[test]
fn user_info_about_nobody_fails_no_such_user_5_5_3_1() {
    let mut h = Harness::lobby();
    h.expect_failure(1, "(user-info :id 5 :target \"nobody\")", Known::NoSuchUser);
}

#[test]
fn user_info_gives_connection_count_and_registration_with_same_id_5_5_3_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(user-info :id 64 :target \"BOB\")");
    assert_eq!(classes_of(&got), [Known::UserInfo]);
    assert_eq!(id(&got[0]), Some(64));
    assert_eq!(got[0].get_raw(Known::KRegistered), Some(&Value::NIL));
    assert_eq!(
        got[0].get(Known::KConnections).and_then(Value::as_u64),
        Some(1)
    );
    h.expect_ok(2, "(register :id 4 :password \"secret1\")");
    h.connect_with(4, "bob", "secret1");
    let got = h.expect_ok(1, "(user-info :id 65 :target \"bob\")");
    assert_eq!(got[0].get(Known::KRegistered), Some(&Value::T));
    assert_eq!(
        got[0].get(Known::KConnections).and_then(Value::as_u64),
        Some(2)
    );
}

#[test]
fn user_info_about_a_registered_user_who_is_offline_5_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_ok(2, "(register :id 4 :password \"secret1\")");
    h.send(2, "(disconnect :id 5)");
    // bob leaves the primary channel and lobby.
    assert_eq!(h.classes(1), [Known::Leave, Known::Leave]);
    let got = h.expect_ok(1, "(user-info :id 66 :target \"bob\")");
    assert_eq!(got[0].get(Known::KRegistered), Some(&Value::T));
    assert_eq!(
        got[0].get_raw(Known::KConnections).and_then(Value::as_u64),
        Some(0)
    );
}

// §5.5.4 capabilities

#[test]
fn capabilities_of_a_channel_one_is_not_in_fails_not_in_channel_5_5_4_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(capabilities :id 5 :channel \"lobby\")",
        Known::NotInChannel,
    );
}

#[test]
fn capabilities_lists_the_update_types_the_channel_permits_with_same_id_5_5_4_2_3() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(capabilities :id 67 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Capabilities]);
    assert_eq!(id(&got[0]), Some(67));
    let ann = symbols(got[0].get(Known::KPermitted).unwrap());
    for k in [
        Known::Message,
        Known::Join,
        Known::Leave,
        Known::Kick,
        Known::Permissions,
        Known::Ping,
    ] {
        assert!(ann.contains(&k), "ann may {k:?}: {ann:?}");
    }
    assert!(!ann.contains(&Known::Connect));
    let got = h.expect_ok(2, "(capabilities :id 68 :channel \"lobby\")");
    let bob = symbols(got[0].get(Known::KPermitted).unwrap());
    assert!(bob.contains(&Known::Message) && bob.contains(&Known::Leave));
    assert!(!bob.contains(&Known::Kick), "{bob:?}");
    assert!(!bob.contains(&Known::Permissions));
    // A changed rule changes the list.
    h.expect_ok(
        1,
        "(deny :id 6 :channel \"lobby\" :target \"bob\" :update message)",
    );
    let got = h.expect_ok(2, "(capabilities :id 69 :channel \"lobby\")");
    let bob = symbols(got[0].get(Known::KPermitted).unwrap());
    assert!(!bob.contains(&Known::Message), "{bob:?}");
}

/// The classes `user` may send to `channel` by its rules, falling back to
/// the primary channel's rule where the channel has none (§2.5).
fn permitted_by_rules(h: &Harness, channel: &str, user: &str) -> Vec<Known> {
    let chan = h.engine.channel(channel).unwrap();
    let primary = h.engine.channel("Server").unwrap();
    let mut classes: Vec<Known> = chan
        .rules
        .iter()
        .chain(primary.rules.iter())
        .map(|(k, _)| *k)
        .filter(|&k| {
            chan.rule(k)
                .or_else(|| primary.rule(k))
                .is_some_and(|r| r.allows(user))
        })
        .collect();
    classes.sort();
    classes.dedup();
    classes
}

#[test]
fn capabilities_are_exactly_what_the_rules_permit_for_every_class_5_5_4_2() {
    let mut h = Harness::lobby();
    let upkeep = [Known::Ping, Known::Pong, Known::Disconnect];
    for (conn, user, channel) in [
        (1, "ann", "lobby"),
        (2, "bob", "lobby"),
        (2, "bob", "Server"),
    ] {
        let got = h.expect_ok(
            conn,
            &format!("(capabilities :id 5 :channel \"{channel}\")"),
        );
        let mut listed: Vec<Known> = got[0]
            .get(Known::KPermitted)
            .and_then(Value::as_list)
            .unwrap()
            .iter()
            .map(|v| v.as_symbol().and_then(|s| s.known()).unwrap())
            .filter(|k| !upkeep.contains(k))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            permitted_by_rules(&h, channel, user),
            "{user} in {channel}"
        );
    }
    // A rule changed by grant shows at once.
    h.expect_ok(
        1,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update kick)",
    );
    let got = h.expect_ok(2, "(capabilities :id 7 :channel \"lobby\")");
    assert!(
        got[0]
            .get(Known::KPermitted)
            .and_then(Value::as_list)
            .unwrap()
            .contains(&Value::sym(Known::Kick))
    );
    assert!(permitted_by_rules(&h, "lobby", "bob").contains(&Known::Kick));
}

#[test]
fn rules_for_classes_the_server_does_not_handle_are_refused_5_3_2_1_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update channel-update)",
        Known::InvalidPermissions,
    );
    let got = h.call(
        1,
        "(permissions :id 7 :channel \"lobby\" :permissions ((channel-update t) (join t)))",
    );
    assert_eq!(
        classes_of(&got),
        [Known::InvalidPermissions, Known::Permissions],
        "{got:?}"
    );
    assert!(
        h.engine
            .channel("lobby")
            .unwrap()
            .rule(Known::ChannelUpdate)
            .is_none()
    );
}

#[test]
fn capabilities_in_the_primary_channel_follow_its_rules_5_5_4_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(capabilities :id 5 :channel \"Server\")");
    let bob = symbols(got[0].get(Known::KPermitted).unwrap());
    assert!(bob.contains(&Known::Create) && bob.contains(&Known::Join));
    for k in [Known::Message, Known::Leave, Known::Pull, Known::ServerInfo] {
        assert!(!bob.contains(&k), "{k:?}: {bob:?}");
    }
}

// §5.5.5 server-info

#[test]
fn server_info_about_nobody_fails_no_such_user_5_5_5_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(server-info :id 5 :target \"nobody\")",
        Known::NoSuchUser,
    );
}

#[test]
fn server_info_about_another_user_needs_the_primary_channels_rule_5_5_5() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(server-info :id 5 :target \"ann\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn server_info_about_oneself_gives_channels_registration_and_connections_5_5_5_2() {
    let mut h = Harness::new();
    let opened = h.now;
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.now += 100;
    let got = h.expect_ok(1, "(server-info :id 80 :target \"ann\")");
    assert_eq!(classes_of(&got), [Known::ServerInfo]);
    assert_eq!(id(&got[0]), Some(80));
    let attrs = got[0].get(Known::KAttributes).unwrap();
    let channels = assoc(attrs, Known::Channels).expect("channels attribute");
    assert_eq!(sorted(str_list(&channels)), ["Server", "lobby"]);
    let reg = got[0]
        .get(Known::KAttributes)
        .and_then(Value::as_list)
        .unwrap()
        .iter()
        .filter_map(Value::as_list)
        .find(|p| p[0].as_symbol().and_then(|s| s.known()) == Some(Known::RegisteredOn))
        .map(|p| p[1].clone());
    assert_eq!(
        reg,
        Some(Value::NIL),
        "registered-on is NIL before register"
    );
    let conns = got[0].get(Known::KConnections).unwrap().as_list().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        assoc(&conns[0], Known::ConnectedOn).and_then(|v| v.as_u64()),
        Some(opened)
    );
    assert_eq!(
        assoc(&conns[0], Known::Ip).and_then(|v| v.as_str().map(str::to_owned)),
        Some("192.0.2.7".to_owned())
    );

    let registered = h.now;
    h.expect_ok(1, "(register :id 3 :password \"secret1\")");
    h.now += 50;
    h.connect_with(2, "ann", "secret1");
    let got = h.expect_ok(1, "(server-info :id 81 :target \"ANN\")");
    let attrs = got[0].get(Known::KAttributes).unwrap();
    assert_eq!(
        assoc(attrs, Known::RegisteredOn).and_then(|v| v.as_u64()),
        Some(registered)
    );
    let conns = got[0].get(Known::KConnections).unwrap().as_list().unwrap();
    let mut times: Vec<_> = conns
        .iter()
        .map(|c| {
            assoc(c, Known::ConnectedOn)
                .and_then(|v| v.as_u64())
                .unwrap()
        })
        .collect();
    times.sort();
    assert_eq!(times, [opened, h.now]);
}
