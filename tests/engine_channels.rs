//! §5.3 channel creation and permissions (incl. the grant/deny tables of
//! §5.3.2) and §5.4 join, leave, pull, kick and message.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Config;
use lichat_tcp_server::protocol::{Names, Rule};
use lichat_tcp_server::wire::{Known, Object};

fn users_of(h: &mut Harness, conn: usize, channel: &str) -> Vec<String> {
    let got = h.expect_ok(conn, &format!("(users :id 70 :channel \"{channel}\")"));
    let mut u = strings(&got[0], Known::KUsers);
    u.sort();
    u
}

/// Forgets what the three users received so far.
fn drain(h: &mut Harness) {
    for conn in [1, 2, 3] {
        h.take(conn);
    }
}

fn view(h: &mut Harness, conn: usize, channel: &str) -> Object {
    drain(h);
    let got = h.expect_ok(
        conn,
        &format!("(permissions :id 71 :channel \"{channel}\")"),
    );
    assert_eq!(classes_of(&got), [Known::Permissions]);
    got.into_iter().next().unwrap()
}

fn message_rule(h: &mut Harness) -> Rule {
    let p = view(h, 1, "lobby");
    rule_in(&p, Known::Message).expect("lobby has a message rule")
}

fn set_message_rule(h: &mut Harness, rule: &str) {
    drain(h);
    h.expect_ok(
        1,
        &format!("(permissions :id 72 :channel \"lobby\" :permissions ((message {rule})))"),
    );
}

/// Whether the user on `conn` (in lobby) may message lobby.
fn can_message(h: &mut Harness, conn: usize) -> bool {
    drain(h);
    let got = h.call(conn, "(message :id 73 :channel \"lobby\" :text \"m\")");
    drain(h);
    match classes_of(&got).as_slice() {
        [Known::Message] => true,
        [Known::InsufficientPermissions] => {
            assert_eq!(update_id(&got[0]), Some(73));
            false
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

fn grant(h: &mut Harness, target: &str) {
    drain(h);
    let got = h.expect_ok(
        1,
        &format!("(grant :id 74 :channel \"lobby\" :target \"{target}\" :update message)"),
    );
    assert_eq!(classes_of(&got), [Known::Grant]);
    assert_eq!(id(&got[0]), Some(74));
}

fn deny(h: &mut Harness, target: &str) {
    drain(h);
    let got = h.expect_ok(
        1,
        &format!("(deny :id 75 :channel \"lobby\" :target \"{target}\" :update message)"),
    );
    assert_eq!(classes_of(&got), [Known::Deny]);
    assert_eq!(id(&got[0]), Some(75));
}

fn names(r: &Rule) -> Vec<String> {
    let mut n = r.names().to_vec();
    n.sort();
    n
}

// §5.3.1 create

#[test]
fn create_is_checked_against_the_primary_channel_5_3_1_1() {
    let mut h = Harness::lobby();
    // A rule in another channel does not matter: the primary channel's
    // create rule (T) does.
    h.expect_ok(
        1,
        "(deny :id 5 :channel \"lobby\" :target \"bob\" :update create)",
    );
    h.expect_ok(2, "(create :id 6 :channel \"bobs\")");
}

#[test]
fn create_of_an_existing_name_fails_channelname_taken_5_3_1_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(create :id 5 :channel \"LOBBY\")",
        Known::ChannelnameTaken,
    );
    h.expect_failure(
        2,
        "(create :id 6 :channel \"Server\")",
        Known::ChannelnameTaken,
    );
    assert_eq!(users_of(&mut h, 1, "lobby"), ["ann", "bob"]);
}

#[test]
fn create_beyond_the_channel_limit_fails_too_many_channels_5_3_1_3() {
    let mut h = Harness::with(Config {
        max_channels_per_user: 2,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"one\")");
    h.expect_failure(1, "(create :id 3 :channel \"two\")", Known::TooManyChannels);
    h.expect_failure(1, "(create :id 4)", Known::TooManyChannels);
    assert!(h.engine.channel("two").is_none());
}

#[test]
fn create_without_channel_makes_an_anonymous_channel_named_at_random_5_3_1_4() {
    let mut h = Harness::lobby();
    let a = h.expect_ok(1, "(create :id 5)");
    let b = h.expect_ok(1, "(create :id 6 :channel nil)");
    let a = text(&a[0], Known::KChannel).unwrap().to_owned();
    let b = text(&b[0], Known::KChannel).unwrap().to_owned();
    for n in [&a, &b] {
        assert!(n.starts_with('@') && n.len() > 8, "{n}");
        assert!(h.engine.channel(n).is_some_and(|c| c.anonymous));
    }
    assert_ne!(a, b);
    assert!(!h.engine.channel("lobby").unwrap().anonymous);
}

#[test]
fn create_with_a_name_starting_with_at_fails_bad_name_5_3_1_4() {
    let mut h = Harness::lobby();
    h.expect_failure(1, "(create :id 5 :channel \"@mine\")", Known::BadName);
    assert!(h.engine.channel("@mine").is_none());
}

#[test]
fn creator_is_joined_and_gets_a_join_with_the_create_id_on_all_connections_5_3_1_5_6() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.expect_ok(1, "(register :id 2 :password \"secret1\")");
    h.connect_with(2, "ann", "secret1");
    h.login(3, "bob");
    h.take(1);
    h.take(2);
    let got = h.expect_ok(1, "(create :id 44 :channel \"room\")");
    assert_eq!(classes_of(&got), [Known::Join]);
    assert_eq!(id(&got[0]), Some(44));
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&got[0], Known::KChannel), Some("room"));
    let other = h.take(2);
    assert_eq!(classes_of(&other), [Known::Join]);
    assert_eq!(id(&other[0]), Some(44));
    assert!(h.take(3).is_empty());
    assert_eq!(users_of(&mut h, 1, "room"), ["ann"]);
    assert_eq!(h.engine.channel("room").unwrap().registrant, "ann");
}

#[test]
fn anonymous_channel_is_listed_only_for_members_and_outsiders_are_refused_everything_2_4_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(create :id 5)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    let list = h.expect_ok(1, "(channels :id 6)");
    assert!(
        strings(&list[0], Known::KChannels).contains(&anon),
        "a member sees it"
    );
    let list = h.expect_ok(2, "(channels :id 6)");
    let list = strings(&list[0], Known::KChannels);
    assert!(list.contains(&"lobby".to_owned()));
    assert!(!list.contains(&anon), "an outsider does not: {list:?}");
    // An outsider learns nothing of it: whatever it sends, no such channel.
    for (id, update) in [
        (7, format!("(join :id 7 :channel \"{anon}\")")),
        (8, format!("(users :id 8 :channel \"{anon}\")")),
        (
            9,
            format!("(message :id 9 :channel \"{anon}\" :text \"x\")"),
        ),
        (10, format!("(capabilities :id 10 :channel \"{anon}\")")),
        (11, format!("(permissions :id 11 :channel \"{anon}\")")),
        (
            12,
            format!("(pull :id 12 :channel \"{anon}\" :target \"cat\")"),
        ),
    ] {
        let f = h.expect_failure(2, &update, Known::NoSuchChannel);
        assert_eq!(update_id(&f), Some(id));
    }
}

#[test]
fn anonymous_channel_members_list_users_and_talk_after_being_pulled_in_2_4_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(create :id 5)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    let users = h.expect_ok(1, &format!("(users :id 6 :channel \"{anon}\")"));
    assert_eq!(
        strings(&users[0], Known::KUsers),
        ["ann"],
        "the creator lists users"
    );
    // A member may invite: pull is allowed, and then bob may talk there.
    let got = h.expect_ok(
        1,
        &format!("(pull :id 9 :channel \"{anon}\" :target \"bob\")"),
    );
    assert_eq!(classes_of(&got), [Known::Join]);
    assert_eq!(h.classes(2), [Known::Join]);
    let users = h.expect_ok(2, &format!("(users :id 10 :channel \"{anon}\")"));
    let mut names = strings(&users[0], Known::KUsers);
    names.sort();
    assert_eq!(names, ["ann", "bob"]);
    h.expect_ok(
        2,
        &format!("(message :id 11 :channel \"{anon}\" :text \"hi\")"),
    );
    assert_eq!(h.classes(1), [Known::Message]);
}

// §5.3.2 permissions

#[test]
fn permissions_without_rules_shows_the_full_rule_set_with_same_id_5_3_2_2() {
    let mut h = Harness::lobby();
    let p = view(&mut h, 1, "lobby");
    assert_eq!(id(&p), Some(71));
    assert_eq!(text(&p, Known::KChannel), Some("lobby"));
    assert_eq!(rule_in(&p, Known::Message), Some(Rule::anyone()));
    assert_eq!(rule_in(&p, Known::Join), Some(Rule::anyone()));
    assert_eq!(rule_in(&p, Known::Kick), Some(Rule::only("ann")));
    assert_eq!(rule_in(&p, Known::Permissions), Some(Rule::only("ann")));
}

#[test]
fn permissions_of_a_channel_one_does_not_administer_fail_insufficient_permissions_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(permissions :id 5 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
    h.expect_failure(
        2,
        "(permissions :id 6 :channel \"lobby\" :permissions ((message nil)))",
        Known::InsufficientPermissions,
    );
    assert_eq!(message_rule(&mut h), Rule::anyone());
    h.expect_failure(
        1,
        "(permissions :id 7 :channel \"Server\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn permissions_sets_each_given_rule_and_replies_with_the_full_set_5_3_2_1_3() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(
        1,
        "(permissions :id 5 :channel \"lobby\" :permissions ((message (+ \"ann\")) (join nil)))",
    );
    assert_eq!(classes_of(&got), [Known::Permissions]);
    assert_eq!(id(&got[0]), Some(5));
    assert_eq!(rule_in(&got[0], Known::Message), Some(Rule::only("ann")));
    assert_eq!(rule_in(&got[0], Known::Join), Some(Rule::no_one()));
    assert_eq!(
        rule_in(&got[0], Known::Leave),
        Some(Rule::anyone()),
        "others kept"
    );
    assert!(!can_message(&mut h, 2));
    assert!(can_message(&mut h, 1));
    h.expect_failure(
        3,
        "(join :id 6 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn each_bad_rule_fails_invalid_permissions_while_good_ones_apply_5_3_2_1_2() {
    let mut h = Harness::lobby();
    let got = h.call(
        1,
        "(permissions :id 5 :channel \"lobby\" :permissions \
         ((frobnicate t) (message (- \"bob\")) (join 5) (leave (+ \"a  b\")) (kick) (users t t) (object t)))",
    );
    let cls = classes_of(&got);
    assert_eq!(
        cls,
        [
            Known::InvalidPermissions,
            Known::InvalidPermissions,
            Known::InvalidPermissions,
            Known::InvalidPermissions,
            Known::InvalidPermissions,
            Known::InvalidPermissions,
            Known::Permissions
        ],
        "{got:?}"
    );
    for f in &got[..6] {
        assert_eq!(update_id(f), Some(5));
        assert_eq!(text(f, Known::KFrom), Some("Server"));
    }
    let p = &got[6];
    assert_eq!(id(p), Some(5));
    assert_eq!(
        rule_in(p, Known::Message),
        Some(Rule::Exclude(Names::from_list(["bob".to_owned()])))
    );
    assert_eq!(rule_in(p, Known::Join), Some(Rule::anyone()), "disregarded");
    assert_eq!(
        rule_in(p, Known::Leave),
        Some(Rule::anyone()),
        "disregarded"
    );
    assert_eq!(
        rule_in(p, Known::Kick),
        Some(Rule::only("ann")),
        "disregarded"
    );
    assert!(!can_message(&mut h, 2));
    assert!(can_message(&mut h, 1));
}

#[test]
fn grant_or_deny_of_something_not_an_update_fails_invalid_permissions_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(grant :id 5 :channel \"lobby\" :target \"bob\" :update frobnicate)",
        Known::InvalidPermissions,
    );
    h.expect_failure(
        1,
        "(deny :id 6 :channel \"lobby\" :target \"bob\" :update object)",
        Known::InvalidPermissions,
    );
    assert_eq!(message_rule(&mut h), Rule::anyone());
}

#[test]
fn grant_and_deny_need_the_channels_permission_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(deny :id 5 :channel \"lobby\" :target \"ann\" :update message)",
        Known::InsufficientPermissions,
    );
    h.expect_failure(
        2,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update kick)",
        Known::InsufficientPermissions,
    );
    assert!(can_message(&mut h, 1));
}

#[test]
fn grant_leaves_t_unchanged_5_3_2_grant_1() {
    let mut h = Harness::lobby();
    grant(&mut h, "bob");
    assert_eq!(message_rule(&mut h), Rule::anyone());
    assert!(can_message(&mut h, 2));
}

#[test]
fn grant_turns_nil_into_inclusion_of_the_user_5_3_2_grant_2() {
    let mut h = Harness::lobby();
    set_message_rule(&mut h, "nil");
    assert!(!can_message(&mut h, 2));
    grant(&mut h, "bob");
    assert_eq!(message_rule(&mut h), Rule::only("bob"));
    assert!(can_message(&mut h, 2));
    assert!(!can_message(&mut h, 1));
}

#[test]
fn grant_removes_the_user_from_an_exclusion_5_3_2_grant_3() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    set_message_rule(&mut h, "(- \"bob\" \"cat\")");
    assert!(!can_message(&mut h, 2));
    grant(&mut h, "BOB");
    let r = message_rule(&mut h);
    assert!(matches!(r, Rule::Exclude(_)), "{r:?}");
    assert_eq!(names(&r), ["cat"]);
    assert!(can_message(&mut h, 2));
    assert!(!can_message(&mut h, 3));
}

#[test]
fn grant_adds_the_user_to_an_inclusion_once_5_3_2_grant_4() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    set_message_rule(&mut h, "(+ \"ann\")");
    assert!(!can_message(&mut h, 2));
    grant(&mut h, "bob");
    grant(&mut h, "Bob");
    let r = message_rule(&mut h);
    assert!(matches!(r, Rule::Include(_)), "{r:?}");
    assert_eq!(names(&r), ["ann", "bob"]);
    assert!(can_message(&mut h, 2));
    assert!(can_message(&mut h, 1));
    assert!(!can_message(&mut h, 3));
}

#[test]
fn deny_turns_t_into_exclusion_of_the_user_5_3_2_deny_1() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    deny(&mut h, "bob");
    assert_eq!(
        message_rule(&mut h),
        Rule::Exclude(Names::from_list(["bob".to_owned()]))
    );
    assert!(!can_message(&mut h, 2));
    assert!(can_message(&mut h, 3));
}

#[test]
fn deny_leaves_nil_unchanged_5_3_2_deny_2() {
    let mut h = Harness::lobby();
    set_message_rule(&mut h, "nil");
    deny(&mut h, "bob");
    assert_eq!(message_rule(&mut h), Rule::no_one());
    assert!(!can_message(&mut h, 2));
    assert!(!can_message(&mut h, 1));
}

#[test]
fn deny_adds_the_user_to_an_exclusion_once_5_3_2_deny_3() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 5 :channel \"lobby\")");
    set_message_rule(&mut h, "(- \"cat\")");
    assert!(can_message(&mut h, 2));
    deny(&mut h, "bob");
    deny(&mut h, "BOB");
    let r = message_rule(&mut h);
    assert!(matches!(r, Rule::Exclude(_)), "{r:?}");
    assert_eq!(names(&r), ["bob", "cat"]);
    assert!(!can_message(&mut h, 2));
    assert!(!can_message(&mut h, 3));
    assert!(can_message(&mut h, 1));
}

#[test]
fn deny_removes_the_user_from_an_inclusion_5_3_2_deny_4() {
    let mut h = Harness::lobby();
    set_message_rule(&mut h, "(+ \"ann\" \"bob\")");
    assert!(can_message(&mut h, 2));
    deny(&mut h, "bob");
    let r = message_rule(&mut h);
    assert!(matches!(r, Rule::Include(_)), "{r:?}");
    assert_eq!(names(&r), ["ann"]);
    assert!(!can_message(&mut h, 2));
    assert!(can_message(&mut h, 1));
}

#[test]
fn deny_of_join_keeps_the_user_out_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(deny :id 5 :channel \"lobby\" :target \"cat\" :update join)",
    );
    h.expect_failure(
        3,
        "(join :id 6 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
    h.expect_ok(
        1,
        "(grant :id 7 :channel \"lobby\" :target \"cat\" :update join)",
    );
    h.expect_ok(3, "(join :id 8 :channel \"lobby\")");
}

// §5.4.1 join

#[test]
fn join_of_a_channel_one_is_in_fails_already_in_channel_5_4_1_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        2,
        "(join :id 5 :channel \"lobby\")",
        Known::AlreadyInChannel,
    );
    h.expect_failure(
        2,
        "(join :id 6 :channel \"Server\")",
        Known::AlreadyInChannel,
    );
    assert!(h.take(1).is_empty());
}

#[test]
fn join_beyond_the_channel_limit_fails_too_many_channels_5_4_1_2() {
    let mut h = Harness::with(Config {
        max_channels_per_user: 2,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"one\")");
    h.expect_ok(2, "(create :id 3 :channel \"two\")");
    h.expect_failure(2, "(join :id 4 :channel \"one\")", Known::TooManyChannels);
    assert!(h.take(1).is_empty());
    assert_eq!(users_of(&mut h, 1, "one"), ["ann"]);
}

#[test]
fn join_adds_the_user_and_is_distributed_to_all_members_5_4_1_3_4() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(3, "(join :id 55 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Join]);
    for conn in [1, 2] {
        let j = h.take(conn);
        assert_eq!(classes_of(&j), [Known::Join], "conn {conn}");
        assert_eq!(id(&j[0]), Some(55));
        assert_eq!(text(&j[0], Known::KFrom), Some("cat"));
        assert_eq!(text(&j[0], Known::KChannel), Some("lobby"));
    }
    assert_eq!(users_of(&mut h, 1, "lobby"), ["ann", "bob", "cat"]);
}

// §5.4.2 leave

#[test]
fn leave_of_a_channel_one_is_not_in_fails_not_in_channel_5_4_2_1() {
    let mut h = Harness::lobby();
    h.expect_failure(3, "(leave :id 5 :channel \"lobby\")", Known::NotInChannel);
    assert!(h.take(1).is_empty());
}

#[test]
fn leave_is_distributed_to_all_members_then_the_user_is_removed_5_4_2_2_3() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(leave :id 56 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Leave], "the leaver hears it too");
    assert_eq!(id(&got[0]), Some(56));
    let a = h.take(1);
    assert_eq!(classes_of(&a), [Known::Leave]);
    assert_eq!(text(&a[0], Known::KFrom), Some("bob"));
    assert_eq!(users_of(&mut h, 1, "lobby"), ["ann"]);
    h.expect_ok(1, "(message :id 6 :channel \"lobby\" :text \"x\")");
    assert!(h.take(2).is_empty());
    h.expect_failure(
        2,
        "(message :id 7 :channel \"lobby\" :text \"x\")",
        Known::NotInChannel,
    );
}

// §5.4.3 pull

#[test]
fn pull_by_a_user_not_in_the_channel_fails_not_in_channel_5_4_3_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(pull :id 5 :channel \"lobby\" :target \"cat\")",
        Known::NotInChannel,
    );
    assert!(h.take(1).is_empty());
}

#[test]
fn pull_of_user_already_in_channel_fails_already_in_channel_5_4_3_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(pull :id 5 :channel \"lobby\" :target \"BOB\")",
        Known::AlreadyInChannel,
    );
    assert!(h.take(2).is_empty());
}

#[test]
fn pull_of_a_user_at_the_channel_limit_fails_too_many_channels_5_4_3_3() {
    let mut h = Harness::with(Config {
        max_channels_per_user: 2,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"one\")");
    h.expect_ok(2, "(create :id 3 :channel \"two\")");
    h.expect_failure(
        1,
        "(pull :id 4 :channel \"one\" :target \"bob\")",
        Known::TooManyChannels,
    );
    assert!(h.take(2).is_empty());
}

#[test]
fn pull_adds_the_target_and_distributes_its_join_with_the_pull_id_5_4_3_4_5() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(pull :id 57 :channel \"lobby\" :target \"cat\")");
    assert_eq!(classes_of(&got), [Known::Join]);
    for conn in [1, 2, 3] {
        let j = if conn == 2 { got.clone() } else { h.take(conn) };
        assert_eq!(classes_of(&j), [Known::Join], "conn {conn}");
        assert_eq!(id(&j[0]), Some(57));
        assert_eq!(text(&j[0], Known::KFrom), Some("cat"));
        assert_eq!(text(&j[0], Known::KChannel), Some("lobby"));
    }
    assert_eq!(users_of(&mut h, 3, "lobby"), ["ann", "bob", "cat"]);
}

#[test]
fn pull_into_the_primary_channel_fails_insufficient_permissions_5_4_3() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(pull :id 5 :channel \"Server\" :target \"bob\")",
        Known::InsufficientPermissions,
    );
}

// §5.4.4 kick

#[test]
fn kick_by_a_user_not_in_the_channel_fails_not_in_channel_5_4_4_1() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(leave :id 5 :channel \"lobby\")");
    h.take(2);
    h.expect_failure(
        1,
        "(kick :id 6 :channel \"lobby\" :target \"bob\")",
        Known::NotInChannel,
    );
    assert!(h.take(2).is_empty());
    assert_eq!(users_of(&mut h, 2, "lobby"), ["bob"]);
}

#[test]
fn kick_of_a_user_not_in_the_channel_fails_not_in_channel_5_4_4_2() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(kick :id 5 :channel \"lobby\" :target \"cat\")",
        Known::NotInChannel,
    );
    assert!(h.take(2).is_empty() && h.take(3).is_empty());
}

#[test]
fn kick_is_distributed_then_the_targets_leave_then_it_is_removed_5_4_4_3_to_5() {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 4 :channel \"lobby\")");
    h.take(1);
    h.take(2);
    let got = h.expect_ok(1, "(kick :id 58 :channel \"lobby\" :target \"bob\")");
    for (conn, got) in [(1, got), (2, h.take(2)), (3, h.take(3))] {
        assert_eq!(classes_of(&got), [Known::Kick, Known::Leave], "conn {conn}");
        assert_eq!(id(&got[0]), Some(58));
        assert_eq!(text(&got[0], Known::KTarget), Some("bob"));
        assert_eq!(text(&got[1], Known::KFrom), Some("bob"));
        assert_eq!(text(&got[1], Known::KChannel), Some("lobby"));
    }
    assert_eq!(users_of(&mut h, 1, "lobby"), ["ann", "cat"]);
    h.expect_ok(1, "(message :id 6 :channel \"lobby\" :text \"x\")");
    assert!(h.take(2).is_empty());
}

// §5.4.5 message

#[test]
fn message_to_a_channel_one_is_not_in_fails_not_in_channel_5_4_5_1() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(message :id 5 :channel \"lobby\" :text \"x\")",
        Known::NotInChannel,
    );
    assert!(h.take(1).is_empty() && h.take(2).is_empty());
}

#[test]
fn message_is_distributed_to_all_members_including_the_sender_5_4_5_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(2, "(message :id 59 :channel \"lobby\" :text \"hello\")");
    assert_eq!(classes_of(&got), [Known::Message]);
    let a = h.take(1);
    assert_eq!(classes_of(&a), [Known::Message]);
    assert_eq!(id(&a[0]), Some(59));
    assert_eq!(text(&a[0], Known::KFrom), Some("bob"));
    assert_eq!(text(&a[0], Known::KText), Some("hello"));
    assert!(h.take(3).is_empty(), "cat is not in lobby");
}

#[test]
fn anonymous_channel_rules_admit_no_permissions_update_even_by_its_creator_2_4_2() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(create :id 5)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_failure(
        1,
        &format!("(permissions :id 6 :channel \"{anon}\" :permissions ((join t)))"),
        Known::InsufficientPermissions,
    );
    // Joining by oneself is not possible for members either: they are
    // pulled in. An outsider is told there is no such channel.
    h.expect_failure(
        2,
        &format!("(join :id 7 :channel \"{anon}\")"),
        Known::NoSuchChannel,
    );
}

#[test]
fn grant_and_deny_are_sent_back_to_every_connection_of_the_user_5_3_2() {
    let mut h = Harness::lobby();
    h.expect_ok(1, "(register :id 4 :password \"secret1\")");
    h.connect_with(4, "ann", "secret1");
    let got = h.expect_ok(
        1,
        "(deny :id 5 :channel \"lobby\" :target \"bob\" :update message)",
    );
    assert_eq!(classes_of(&got), [Known::Deny]);
    let other = h.take(4);
    assert_eq!(classes_of(&other), [Known::Deny]);
    assert_eq!(id(&other[0]), Some(5));
    h.expect_ok(
        1,
        "(grant :id 6 :channel \"lobby\" :target \"bob\" :update message)",
    );
    assert_eq!(h.classes(4), [Known::Grant]);
    assert!(h.take(2).is_empty(), "only the user who sent it");
}

#[test]
fn create_beyond_the_server_channel_limit_fails_too_many_channels_5_3_1_3() {
    let mut h = Harness::with(Config {
        max_channels: 3, // the primary channel counts
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"one\")");
    h.expect_ok(1, "(leave :id 3 :channel \"one\")");
    h.expect_ok(1, "(create :id 4)");
    let f = h.expect_failure(1, "(create :id 5 :channel \"two\")", Known::TooManyChannels);
    assert!(text(&f, Known::KText).unwrap().contains("server"));
    // Room again once a channel is gone.
    h.login(2, "bob");
    let anon = h
        .engine
        .channel_names()
        .into_iter()
        .find(|n| n.starts_with('@'))
        .unwrap();
    h.expect_ok(1, &format!("(leave :id 6 :channel \"{anon}\")"));
    h.expect_ok(2, "(create :id 7 :channel \"two\")");
}

#[test]
fn a_rule_listing_more_names_than_the_limit_fails_invalid_permissions_5_3_2_1_2() {
    let mut h = Harness::lobby();
    let names: String = (0..1001).map(|i| format!(" \"user{i}\"")).collect();
    let got = h.call(
        1,
        &format!("(permissions :id 9 :channel \"lobby\" :permissions ((message (+{names})) (join (- \"cat\"))))"),
    );
    assert_eq!(
        classes_of(&got),
        [Known::InvalidPermissions, Known::Permissions],
        "{got:?}"
    );
    assert_eq!(update_id(&got[0]), Some(9));
    assert!(text(&got[0], Known::KText).unwrap().contains("1000"));
    // That rule is disregarded, the other one applies (§5.3.2.1.2).
    assert_eq!(rule_in(&got[1], Known::Message), Some(Rule::anyone()));
    assert!(!rule_in(&got[1], Known::Join).unwrap().allows("cat"));
    // The same names, each several times, fit: duplicates count once.
    let dupes: String = (0..3000)
        .map(|i| format!(" \"user{}\"", i % 1000))
        .collect();
    let got = h.expect_ok(
        1,
        &format!("(permissions :id 10 :channel \"lobby\" :permissions ((message (+{dupes}))))"),
    );
    assert_eq!(
        rule_in(&got[0], Known::Message).unwrap().names().len(),
        1000
    );
}

#[test]
fn grant_past_the_name_limit_fails_invalid_permissions_5_3_2() {
    let mut h = Harness::with(Config {
        max_rule_names: 2,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(
        1,
        "(grant :id 3 :channel \"lobby\" :target \"ann\" :update kick)",
    );
    h.login(2, "bob");
    h.login(3, "cat");
    h.expect_ok(
        1,
        "(grant :id 4 :channel \"lobby\" :target \"bob\" :update kick)",
    );
    h.expect_failure(
        1,
        "(grant :id 5 :channel \"lobby\" :target \"cat\" :update kick)",
        Known::InvalidPermissions,
    );
    let rule = h
        .engine
        .channel("lobby")
        .unwrap()
        .rule(Known::Kick)
        .unwrap()
        .clone();
    assert!(rule.allows("bob") && !rule.allows("cat"));
}

#[test]
fn one_user_or_address_cannot_fill_the_servers_channel_table_5_3_1_3() {
    let mut h = Harness::with(Config {
        max_channels: 20,
        max_channels_per_creator: 5,
        ..config()
    });
    h.login_from(1, "ann", "192.0.2.1");
    for i in 0..5 {
        h.expect_ok(1, &format!("(create :id {i} :channel \"c{i}\")"));
        h.expect_ok(1, &format!("(leave :id {i}0 :channel \"c{i}\")"));
    }
    let f = h.expect_failure(1, "(create :id 9 :channel \"c9\")", Known::TooManyChannels);
    assert!(text(&f, Known::KText).unwrap().contains('5'));
    // A new name from the same address does not help, nor an anonymous one.
    h.login_from(2, "ann2", "192.0.2.1");
    h.expect_failure(2, "(create :id 10 :channel \"d\")", Known::TooManyChannels);
    h.expect_failure(2, "(create :id 11)", Known::TooManyChannels);
    // The same /64 of IPv6 counts as one address; another network does not.
    h.login_from(3, "bea", "2001:db8:1:1::1");
    for i in 0..5 {
        h.expect_ok(3, &format!("(create :id {i} :channel \"e{i}\")"));
    }
    h.login_from(4, "bea2", "2001:db8:1:1::ffff");
    h.expect_failure(4, "(create :id 12 :channel \"f\")", Known::TooManyChannels);
    h.login_from(5, "cid", "2001:db8:1:2::1");
    h.expect_ok(5, "(create :id 13 :channel \"g\")");
    // Ten channels of the twenty are left for everyone else.
    assert_eq!(h.engine.channel_names().len(), 1 + 5 + 5 + 1);
}

#[test]
fn expired_channels_give_their_creator_quota_back_5_3_1_3() {
    let mut h = Harness::with(Config {
        max_channels_per_creator: 1,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 1 :channel \"one\")");
    h.expect_ok(1, "(leave :id 2 :channel \"one\")");
    h.expect_failure(1, "(create :id 3 :channel \"two\")", Known::TooManyChannels);
    h.now += 3600;
    h.expire();
    assert!(h.engine.channel("one").is_none());
    h.expect_ok(1, "(create :id 4 :channel \"two\")");
}

#[test]
fn empty_channels_of_creators_without_profile_expire_after_an_hour_2_4() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(2, "(register :id 1 :password \"secret1\")");
    h.expect_ok(1, "(create :id 2 :channel \"anns\")");
    h.expect_ok(1, "(leave :id 3 :channel \"anns\")");
    h.expect_ok(2, "(create :id 4 :channel \"bobs\")");
    h.expect_ok(2, "(leave :id 5 :channel \"bobs\")");
    h.now += 3599;
    h.expire();
    assert!(h.engine.channel("anns").is_some(), "not yet an hour");
    h.now += 1;
    h.expire();
    assert!(h.engine.channel("anns").is_none(), "ann has no profile");
    assert!(
        h.engine.channel("bobs").is_some(),
        "bob's lives its 30 days"
    );
}
