//! shirakumo-ip (§10 of shirakumo.mess).
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Config;
use lichat_tcp_server::wire::{Known, Value};
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn blacklist(h: &mut Harness) -> Vec<(String, String)> {
    let got = h.expect_ok(9, "(ip-blacklist :id 99)");
    assert_eq!(classes_of(&got), [Known::SIpBlacklist]);
    got[0]
        .get(Known::KTarget)
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .map(|e| {
            let l = e.as_list().unwrap();
            (
                l[0].as_str().unwrap().to_owned(),
                l[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn ip_10_server_info_shows_the_ipv6_address_of_each_connection() {
    let mut h = Harness::with_admin();
    h.login_from(1, "ann", "203.0.113.7");
    let got = h.expect_ok(9, "(server-info :id 5 :target \"ann\")");
    let got: Vec<_> = got
        .into_iter()
        .filter(|o| class(o) == Known::ServerInfo)
        .collect();
    let connections = got[0]
        .get(Known::KConnections)
        .and_then(Value::as_list)
        .unwrap();
    let attrs = connections[0].as_list().unwrap();
    let ip = attrs
        .iter()
        .filter_map(Value::as_list)
        .find(|p| p[0].as_symbol().and_then(|s| s.known()) == Some(Known::SIp))
        .map(|p| p[1].as_str().unwrap().to_owned());
    assert_eq!(ip.as_deref(), Some("::ffff:203.0.113.7"));
}

#[test]
fn ip_ban_10_is_for_admins_only() {
    let mut h = Harness::with_admin();
    h.login(1, "ann");
    h.expect_failure(
        1,
        "(ip-ban :id 5 :ip \"203.0.113.7\")",
        Known::InsufficientPermissions,
    );
}

#[test]
fn ip_ban_10_step1_a_bad_address_or_mask_is_bad_ip_format() {
    let mut h = Harness::with_admin();
    h.expect_failure(9, "(ip-ban :id 5 :ip \"300.1.2.3\")", Known::SBadIpFormat);
    h.expect_failure(
        9,
        "(ip-ban :id 6 :ip \"10.0.0.1\" :mask \"zero\")",
        Known::SBadIpFormat,
    );
    h.expect_failure(9, "(ip-unban :id 7 :ip \"::g\")", Known::SBadIpFormat);
}

#[test]
fn ip_ban_10_step3_4_adds_the_entry_and_drops_matching_connections() {
    let mut h = Harness::with_admin();
    h.login_from(1, "ann", "203.0.113.7");
    h.login_from(2, "bob", "203.0.113.8");
    h.take(9);
    let got = h.expect_ok(9, "(ip-ban :id 5 :ip \"203.0.113.7\")");
    assert_eq!(classes_of(&got)[0], Known::SIpBan);
    assert!(h.closed.contains(&1), "ann's connection is dropped");
    assert!(!h.closed.contains(&2), "bob's address differs");
    assert!(h.engine.address_banned(ip("203.0.113.7")));
    assert!(h.engine.address_banned(ip("::ffff:203.0.113.7")));
    assert!(!h.engine.address_banned(ip("203.0.113.8")));
    assert_eq!(
        blacklist(&mut h),
        [("::ffff:203.0.113.7".to_owned(), "::".to_owned())]
    );
}

#[test]
fn ip_ban_10_a_mask_bans_a_whole_network() {
    let mut h = Harness::with_admin();
    h.expect_ok(9, "(ip-ban :id 5 :ip \"198.51.100.0\" :mask \"0.0.0.255\")");
    assert!(h.engine.address_banned(ip("198.51.100.1")));
    assert!(h.engine.address_banned(ip("198.51.100.254")));
    assert!(!h.engine.address_banned(ip("198.51.101.1")));
    h.expect_ok(
        9,
        "(ip-ban :id 6 :ip \"2001:db8:1::\" :mask \"::ffff:ffff:ffff:ffff\")",
    );
    assert!(h.engine.address_banned(ip("2001:db8:1::42")));
    assert!(!h.engine.address_banned(ip("2001:db8:2::42")));
}

#[test]
fn ip_ban_10_step2_a_more_general_entry_absorbs_a_narrower_ban() {
    let mut h = Harness::with_admin();
    h.expect_ok(9, "(ip-ban :id 5 :ip \"198.51.100.0\" :mask \"0.0.0.255\")");
    h.expect_ok(9, "(ip-ban :id 6 :ip \"198.51.100.7\")");
    assert_eq!(blacklist(&mut h).len(), 1, "the narrower ban was dropped");
}

#[test]
fn ip_ban_10_step2_a_more_general_ban_replaces_narrower_entries() {
    let mut h = Harness::with_admin();
    h.expect_ok(9, "(ip-ban :id 5 :ip \"198.51.100.7\")");
    h.expect_ok(9, "(ip-ban :id 6 :ip \"198.51.100.9\")");
    h.expect_ok(9, "(ip-ban :id 7 :ip \"198.51.100.0\" :mask \"0.0.0.255\")");
    assert_eq!(
        blacklist(&mut h),
        [("::ffff:198.51.100.0".to_owned(), "::ff".to_owned())]
    );
}

#[test]
fn ip_unban_10_step1_removes_entries_at_least_as_general_as_the_mask() {
    let mut h = Harness::with_admin();
    h.expect_ok(9, "(ip-ban :id 5 :ip \"198.51.100.0\" :mask \"0.0.0.255\")");
    h.expect_ok(9, "(ip-ban :id 6 :ip \"203.0.113.7\")");
    // One address inside the network does not lift the network's ban.
    h.expect_ok(9, "(ip-unban :id 7 :ip \"198.51.100.9\")");
    assert_eq!(blacklist(&mut h).len(), 2);
    // The network under the same mask does.
    let got = h.expect_ok(
        9,
        "(ip-unban :id 8 :ip \"198.51.100.0\" :mask \"0.0.0.255\")",
    );
    assert_eq!(classes_of(&got), [Known::SIpUnban]);
    assert!(!h.engine.address_banned(ip("198.51.100.9")));
    assert!(h.engine.address_banned(ip("203.0.113.7")));
    h.expect_ok(9, "(ip-unban :id 9 :ip \"203.0.113.7\")");
    assert!(blacklist(&mut h).is_empty());
}

#[test]
fn max_connections_per_ip_counts_open_connections_per_address() {
    let mut h = Harness::with(Config {
        max_connections_per_ip: 2,
        ..config()
    });
    let a = ip("192.0.2.50");
    h.open_from(1, a);
    h.open_from(2, a);
    assert!(!h.engine.address_has_room(a));
    assert!(h.engine.address_has_room(ip("192.0.2.51")));
    h.lost(1);
    assert!(h.engine.address_has_room(a));
}
