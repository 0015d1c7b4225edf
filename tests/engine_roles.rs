//! shirakumo-roles (§26 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Engine, Snapshot};
use lichat_tcp_server::wire::{Known, Object, Value};

/// The (class, granted) entries of a `permissions` field.
fn entries(o: &Object) -> Vec<(Known, bool)> {
    o.get(Known::KPermissions)
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .map(|e| {
            let e = e.as_list().expect("an entry is a list");
            let class = e[0].as_symbol().and_then(|s| s.known()).expect("a class");
            (class, !e[1].is_nil())
        })
        .collect()
}

/// `lobby` with cat in it too; inboxes cleared.
fn full_lobby() -> Harness {
    let mut h = Harness::lobby();
    h.expect_ok(3, "(join :id 4 :channel \"lobby\")");
    h.take(1);
    h.take(2);
    h.take(3);
    h
}

#[test]
fn roles_26_is_advertised() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-roles".to_owned()));
}

#[test]
fn roles_26_new_channels_get_the_default_admin_and_moderator_roles() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(1, "(roles :id 5 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::SRoles]);
    assert_eq!(strings(&got[0], Known::KRoles), ["admin", "moderator"]);
    let got = h.expect_ok(1, "(roles :id 6 :channel \"lobby\" :target \"ann\")");
    assert_eq!(strings(&got[0], Known::KRoles), ["admin"], "the creator");
    let got = h.expect_ok(1, "(role :id 7 :channel \"lobby\" :role \"admin\")");
    let admin = entries(&got[0]);
    for k in [
        Known::Kick,
        Known::Pull,
        Known::SSetChannelInfo,
        Known::SDestroy,
        Known::SQuiet,
        Known::SUnquiet,
        Known::SQuieted,
        Known::Permissions,
    ] {
        assert!(admin.contains(&(k, true)), "admin grants {k:?}: {admin:?}");
    }
    let got = h.expect_ok(1, "(role :id 8 :channel \"lobby\" :role \"moderator\")");
    let moderator = entries(&got[0]);
    assert!(moderator.contains(&(Known::Kick, true)));
    assert!(!moderator.iter().any(|(k, _)| *k == Known::SDestroy));
    assert!(!moderator.iter().any(|(k, _)| *k == Known::Permissions));
    let got = h.expect_ok(1, "(roles :id 9 :channel \"lobby\" :target \"bob\")");
    assert!(strings(&got[0], Known::KRoles).is_empty());
}

#[test]
fn roles_26_role_updates_are_moderation_for_the_registrant() {
    let mut h = Harness::lobby();
    for update in [
        "(role :id 5 :channel \"lobby\" :role \"x\" :permissions ((kick T)))",
        "(delete-role :id 6 :channel \"lobby\" :role \"moderator\")",
        "(assign-role :id 7 :channel \"lobby\" :role \"admin\" :target \"bob\")",
        "(remove-role :id 8 :channel \"lobby\" :role \"admin\" :target \"ann\")",
    ] {
        h.expect_failure(2, update, Known::InsufficientPermissions);
    }
    // Anyone in the channel may list them.
    h.expect_ok(2, "(roles :id 9 :channel \"lobby\")");
}

#[test]
fn role_26_step1_the_sender_must_be_in_the_channel() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(grant :id 5 :channel \"lobby\" :target \"cat\" :update role)",
    );
    h.expect_failure(
        3,
        "(role :id 6 :channel \"lobby\" :role \"admin\")",
        Known::NotInChannel,
    );
    h.expect_failure(3, "(roles :id 7 :channel \"lobby\")", Known::NotInChannel);
}

#[test]
fn role_26_step2_an_unknown_role_without_permissions_is_no_such_role() {
    let mut h = Harness::lobby();
    let f = h.expect_failure(
        1,
        "(role :id 5 :channel \"lobby\" :role \"greeter\")",
        Known::SNoSuchRole,
    );
    assert_eq!(text(&f, Known::KChannel), Some("lobby"));
    assert_eq!(text(&f, Known::KRole), Some("greeter"));
}

#[test]
fn role_26_steps3_to_6_create_update_and_echo_the_permissions() {
    let mut h = Harness::lobby();
    let got = h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"greeter\" :permissions ((kick T) (pull NIL)))",
    );
    assert_eq!(classes_of(&got), [Known::SRole]);
    assert_eq!(
        entries(&got[0]),
        [(Known::Kick, true), (Known::Pull, false)]
    );
    // Step 4 replaces the permissions; a later entry wins.
    let got = h.expect_ok(
        1,
        "(role :id 6 :channel \"lobby\" :role \"GREETER\" :permissions ((message NIL) (message T)))",
    );
    assert_eq!(text(&got[0], Known::KRole), Some("greeter"));
    assert_eq!(entries(&got[0]), [(Known::Message, true)]);
    // Step 5 without a change.
    let got = h.expect_ok(1, "(role :id 7 :channel \"lobby\" :role \"greeter\")");
    assert_eq!(entries(&got[0]), [(Known::Message, true)]);
    let got = h.expect_ok(1, "(roles :id 8 :channel \"lobby\")");
    assert_eq!(
        strings(&got[0], Known::KRoles),
        ["admin", "moderator", "greeter"]
    );
}

#[test]
fn role_26_bad_permissions_and_names_are_refused() {
    let mut h = Harness::lobby();
    h.expect_failure(
        1,
        "(role :id 5 :channel \"lobby\" :role \"x\" :permissions ((nonsense T)))",
        Known::InvalidPermissions,
    );
    h.expect_failure(
        1,
        "(role :id 6 :channel \"lobby\" :role \"x\" :permissions ((kick \"yes\")))",
        Known::InvalidPermissions,
    );
    h.expect_failure(
        1,
        "(role :id 7 :channel \"lobby\" :role \"x\" :permissions ((kick)))",
        Known::InvalidPermissions,
    );
    h.expect_failure(
        1,
        "(role :id 8 :channel \"lobby\" :role \" x\" :permissions ((kick T)))",
        Known::BadName,
    );
    let got = h.expect_ok(1, "(roles :id 9 :channel \"lobby\")");
    assert_eq!(strings(&got[0], Known::KRoles), ["admin", "moderator"]);
}

#[test]
fn role_26_a_channel_holds_a_bounded_number_of_roles() {
    let mut h = Harness::lobby();
    // Two default roles and 48 more make 50.
    for i in 0..48 {
        // Within the flood limit (§4.2).
        h.now += 1;
        h.expect_ok(
            1,
            &format!(
                "(role :id {} :channel \"lobby\" :role \"r{i}\" :permissions ((kick T)))",
                10 + i
            ),
        );
    }
    h.expect_failure(
        1,
        "(role :id 99 :channel \"lobby\" :role \"one-too-many\" :permissions ((kick T)))",
        Known::UpdateFailure,
    );
}

#[test]
fn delete_role_26_steps1_to_4() {
    let mut h = Harness::lobby();
    h.expect_failure(
        3,
        "(delete-role :id 5 :channel \"lobby\" :role \"moderator\")",
        Known::InsufficientPermissions,
    );
    h.expect_failure(
        1,
        "(delete-role :id 6 :channel \"lobby\" :role \"nope\")",
        Known::SNoSuchRole,
    );
    let got = h.expect_ok(
        1,
        "(delete-role :id 7 :channel \"lobby\" :role \"Moderator\")",
    );
    assert_eq!(classes_of(&got), [Known::SDeleteRole]);
    let got = h.expect_ok(1, "(roles :id 8 :channel \"lobby\")");
    assert_eq!(strings(&got[0], Known::KRoles), ["admin"]);
    h.expect_failure(
        1,
        "(role :id 9 :channel \"lobby\" :role \"moderator\")",
        Known::SNoSuchRole,
    );
}

#[test]
fn assign_role_26_steps1_to_4_grant_the_roles_permissions() {
    let mut h = full_lobby();
    h.expect_failure(
        2,
        "(kick :id 5 :channel \"lobby\" :target \"cat\")",
        Known::InsufficientPermissions,
    );
    h.expect_failure(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"nope\" :target \"bob\")",
        Known::SNoSuchRole,
    );
    h.expect_failure(
        1,
        "(assign-role :id 7 :channel \"lobby\" :role \"moderator\" :target \"nobody\")",
        Known::NoSuchUser,
    );
    let got = h.expect_ok(
        1,
        "(assign-role :id 8 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    assert_eq!(classes_of(&got), [Known::SAssignRole]);
    // Step 3: added once.
    h.expect_ok(
        1,
        "(assign-role :id 9 :channel \"lobby\" :role \"moderator\" :target \"BOB\")",
    );
    let got = h.expect_ok(1, "(roles :id 10 :channel \"lobby\" :target \"bob\")");
    assert_eq!(strings(&got[0], Known::KRoles), ["moderator"]);
    h.take(2);
    h.expect_ok(2, "(kick :id 11 :channel \"lobby\" :target \"cat\")");
    // Not what the role leaves out.
    h.expect_failure(
        2,
        "(permissions :id 12 :channel \"lobby\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn remove_role_26_steps1_to_4_take_the_permissions_away() {
    let mut h = full_lobby();
    h.expect_ok(
        1,
        "(assign-role :id 5 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    h.expect_failure(
        1,
        "(remove-role :id 6 :channel \"lobby\" :role \"nope\" :target \"bob\")",
        Known::SNoSuchRole,
    );
    let got = h.expect_ok(
        1,
        "(remove-role :id 7 :channel \"lobby\" :role \"moderator\" :target \"Bob\")",
    );
    assert_eq!(classes_of(&got), [Known::SRemoveRole]);
    // Removing a non-member is no failure.
    h.expect_ok(
        1,
        "(remove-role :id 8 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    h.expect_failure(
        2,
        "(kick :id 9 :channel \"lobby\" :target \"cat\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn roles_26_steps2_to_4_list_all_roles_or_those_of_a_target() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"greeter\" :permissions ((kick T)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"greeter\" :target \"bob\")",
    );
    h.expect_ok(
        1,
        "(assign-role :id 7 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    let got = h.expect_ok(2, "(roles :id 8 :channel \"lobby\" :target \"bob\")");
    assert_eq!(strings(&got[0], Known::KRoles), ["moderator", "greeter"]);
    let got = h.expect_ok(2, "(roles :id 9 :channel \"lobby\")");
    assert_eq!(
        strings(&got[0], Known::KRoles),
        ["admin", "moderator", "greeter"]
    );
}

#[test]
fn permissions_26_step1_a_rule_naming_the_user_overrides_its_roles() {
    let mut h = full_lobby();
    h.expect_ok(
        1,
        "(assign-role :id 5 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    // kick: anyone but bob. The rule names bob, so the role does not count.
    h.expect_ok(
        1,
        "(permissions :id 6 :channel \"lobby\" :permissions ((kick (- \"bob\"))))",
    );
    h.expect_failure(
        2,
        "(kick :id 7 :channel \"lobby\" :target \"cat\")",
        Known::InsufficientPermissions,
    );
    // And a rule that names the user as allowed beats a denying role.
    h.expect_ok(
        1,
        "(role :id 8 :channel \"lobby\" :role \"muted\" :permissions ((message NIL)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 9 :channel \"lobby\" :role \"muted\" :target \"bob\")",
    );
    h.expect_ok(
        1,
        "(permissions :id 10 :channel \"lobby\" :permissions ((message (+ \"ann\" \"bob\"))))",
    );
    h.take(2);
    h.expect_ok(
        2,
        "(message :id 11 :channel \"lobby\" :text \"still here\")",
    );
}

#[test]
fn permissions_26_step5_a_denying_role_refuses_the_update() {
    let mut h = full_lobby();
    h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"muted\" :permissions ((message NIL)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"muted\" :target \"cat\")",
    );
    h.expect_failure(
        3,
        "(message :id 7 :channel \"lobby\" :text \"hi\")",
        Known::InsufficientPermissions,
    );
    // A grant of another role does not outweigh the denial.
    h.expect_ok(
        1,
        "(role :id 8 :channel \"lobby\" :role \"speaker\" :permissions ((message T)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 9 :channel \"lobby\" :role \"speaker\" :target \"cat\")",
    );
    h.expect_failure(
        3,
        "(message :id 10 :channel \"lobby\" :text \"hi\")",
        Known::InsufficientPermissions,
    );
    // Others still speak.
    h.expect_ok(2, "(message :id 11 :channel \"lobby\" :text \"hi\")");
    // capabilities (§5.5.4) agrees.
    h.take(3);
    let got = h.expect_ok(3, "(capabilities :id 12 :channel \"lobby\")");
    let permitted = got[0]
        .get(Known::KPermitted)
        .and_then(Value::as_list)
        .unwrap()
        .iter()
        .filter_map(|v| v.as_symbol().and_then(|s| s.known()))
        .collect::<Vec<_>>();
    assert!(!permitted.contains(&Known::Message), "{permitted:?}");
}

#[test]
fn permissions_26_steps6_7_a_granting_role_permits_what_the_rule_does_not() {
    let mut h = full_lobby();
    // pull is T in regular channels; make it nobody's, then grant by role.
    h.expect_ok(
        1,
        "(permissions :id 5 :channel \"lobby\" :permissions ((pull NIL)))",
    );
    h.expect_ok(
        1,
        "(role :id 6 :channel \"lobby\" :role \"pullers\" :permissions ((pull T)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 7 :channel \"lobby\" :role \"pullers\" :target \"bob\")",
    );
    h.login(4, "dan");
    h.expect_ok(2, "(pull :id 8 :channel \"lobby\" :target \"dan\")");
    h.take(3);
    h.expect_failure(
        3,
        "(pull :id 9 :channel \"lobby\" :target \"dan\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn permissions_26_step8_without_an_entry_the_channel_rule_decides() {
    let mut h = full_lobby();
    h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"kickers\" :permissions ((kick T)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"kickers\" :target \"cat\")",
    );
    // message: the rule (T) decides; set-channel-info: the rule (+ ann).
    h.expect_ok(3, "(message :id 7 :channel \"lobby\" :text \"hi\")");
    h.expect_failure(
        3,
        "(set-channel-info :id 8 :channel \"lobby\" :key :topic :text \"x\")",
        Known::InsufficientPermissions,
    );
    // Without any roles at all, the rules alone decide.
    for (i, role) in ["admin", "moderator", "kickers"].iter().enumerate() {
        h.expect_ok(
            1,
            &format!(
                "(delete-role :id {} :channel \"lobby\" :role \"{role}\")",
                20 + i
            ),
        );
    }
    h.expect_ok(3, "(message :id 30 :channel \"lobby\" :text \"hi\")");
    h.expect_failure(
        3,
        "(kick :id 31 :channel \"lobby\" :target \"bob\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn roles_26_are_stored_with_the_channel_across_a_restart() {
    let mut h = full_lobby();
    h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"muted\" :permissions ((message NIL)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"muted\" :target \"cat\")",
    );
    h.expect_ok(
        1,
        "(assign-role :id 7 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    let record = h
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Channel(r) if r.name == "lobby" => Some(r),
            _ => None,
        })
        .last()
        .expect("the roles are written with the channel");
    let mut h2 = Harness::with(config());
    h2.engine = Engine::new(config(), h2.now);
    h2.engine.load(Snapshot {
        profiles: Vec::new(),
        channels: vec![record],
        lists: Vec::new(),
        ..Default::default()
    });
    h2.login(1, "ann");
    h2.login(2, "bob");
    h2.login(3, "cat");
    for (conn, id) in [(1, 5), (2, 6), (3, 7)] {
        h2.expect_ok(conn, &format!("(join :id {id} :channel \"lobby\")"));
    }
    h2.take(1);
    let got = h2.expect_ok(1, "(roles :id 8 :channel \"lobby\")");
    assert_eq!(
        strings(&got[0], Known::KRoles),
        ["admin", "moderator", "muted"]
    );
    let got = h2.expect_ok(1, "(role :id 9 :channel \"lobby\" :role \"muted\")");
    assert_eq!(entries(&got[0]), [(Known::Message, false)]);
    h2.expect_failure(
        3,
        "(message :id 10 :channel \"lobby\" :text \"hi\")",
        Known::InsufficientPermissions,
    );
    h2.take(2);
    h2.expect_ok(2, "(kick :id 11 :channel \"lobby\" :target \"cat\")");
}

#[test]
fn roles_26_a_change_the_store_could_not_save_stops_applying() {
    let mut h = full_lobby();
    h.keep_unsettled = true;
    h.expect_ok(
        1,
        "(assign-role :id 5 :channel \"lobby\" :role \"moderator\" :target \"bob\")",
    );
    assert_eq!(h.fail_pending("the disk is full").len(), 1);
    h.keep_unsettled = false;
    h.take(1);
    h.expect_failure(
        2,
        "(kick :id 6 :channel \"lobby\" :target \"cat\")",
        Known::InsufficientPermissions,
    );
    let got = h.expect_ok(1, "(roles :id 7 :channel \"lobby\" :target \"bob\")");
    assert!(strings(&got[0], Known::KRoles).is_empty());
}

#[test]
fn roles_26_anonymous_channels_keep_their_fixed_rules_2_4_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    let got = h.expect_ok(1, "(create :id 2)");
    let name = text(&got[0], Known::KChannel).unwrap().to_owned();
    let got = h.expect_ok(1, &format!("(roles :id 3 :channel \"{name}\")"));
    assert!(
        strings(&got[0], Known::KRoles).is_empty(),
        "no default roles"
    );
    h.expect_failure(
        1,
        &format!("(role :id 4 :channel \"{name}\" :role \"x\" :permissions ((permissions T)))"),
        Known::InsufficientPermissions,
    );
}
