//! shirakumo-ip (§10 of `shirakumo.mess`): the address of each connection
//! in `server-info`, and the IP blacklist of addresses under masks. The
//! net layer asks [`Engine::address_banned`] right after `accept`, before
//! it sets anything up for the socket, and [`Engine::address_has_room`]
//! for the per-address connection limit.
//!
//! A mask's one bits are the bits ignored: `a` and `b` are the same under
//! `m` when `a & !m == b & !m`. Without a mask an entry is one address
//! (a mask of all zeros). The section's text says "all 1s", but that
//! mask would match every address, which no ban means; the most complete
//! server also takes a missing mask as the address alone. IPv4 addresses
//! are kept as their IPv4-mapped IPv6 form, and an IPv4 mask applies to
//! the IPv4 part. Entries are stored as `IP MASK` items of the
//! `ip-blacklist` server-wide list.
//!
//! `ip-ban` step 2 is done as subsumption both ways: an entry that covers
//! the new one (its ignored bits include the new mask's, the rest of the
//! addresses agree) makes the ban needless, and entries the new one
//! covers are removed. Comparing masks as numbers, as the text does,
//! would miss a single address inside a banned network. `ip-unban`
//! follows the text: it removes the entries that match under its mask
//! whose mask is at least as large.

use crate::engine::connect::Close;
use crate::engine::core::MODERATION;
use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::{ConnId, Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};
use std::net::{IpAddr, Ipv6Addr};

/// The name of the IP blacklist among the server-wide lists.
const LIST: &str = "ip-blacklist";

/// Ruled by the primary channel only: server administration.
const SERVER_ONLY: Defaults = Defaults {
    primary: MODERATION.primary,
    regular: R::Unset,
    anonymous: R::Unset,
};

/// §10: `ip-ban`, `ip-unban`, `ip-blacklist`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-ip"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SIpBan,
            fields: update_fields!(req(K::KIp, Ty::Str), opt(K::KMask, Ty::Str)),
            handler: ip_ban,
            checks: Checks::SERVER,
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SIpUnban,
            fields: update_fields!(req(K::KIp, Ty::Str), opt(K::KMask, Ty::Str)),
            handler: ip_unban,
            checks: Checks::SERVER,
            rules: SERVER_ONLY,
        },
        ClassDef {
            class: K::SIpBlacklist,
            fields: update_fields!(opt(K::KTarget, Ty::ListList)),
            handler: ip_blacklist,
            checks: Checks::SERVER,
            rules: SERVER_ONLY,
        },
    ],
};

/// §10 the `ip` of a connection: IPv6, IPv4 mapped.
pub fn as_ipv6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// An IPv4 or IPv6 address as 128 bits, IPv4 mapped.
fn parse(text: &str) -> Option<u128> {
    text.trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| u128::from(as_ipv6(ip)))
}

/// A mask as 128 bits: an IPv4 mask covers the IPv4 part of a mapped
/// address only, so that it never strips the mapping's prefix.
fn parse_mask(text: &str) -> Option<u128> {
    match text.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(u128::from(u32::from(v4))),
        IpAddr::V6(v6) => Some(u128::from(v6)),
    }
}

/// Whether the entry (`b`, `m`) covers every address (`a`, `n`) does:
/// its ignored bits include those of `n`, and the rest agree.
fn covers(b: u128, m: u128, a: u128, n: u128) -> bool {
    n & !m == 0 && same(a, b, m)
}

/// §10 `a` is the same as `b` under mask `m`.
fn same(a: u128, b: u128, m: u128) -> bool {
    a & !m == b & !m
}

fn item(ip: u128, mask: u128) -> String {
    format!("{} {}", Ipv6Addr::from(ip), Ipv6Addr::from(mask))
}

fn entries(engine: &Engine) -> impl Iterator<Item = (u128, u128)> + '_ {
    engine.list_items(LIST).iter().filter_map(|i| {
        let (ip, mask) = i.split_once(' ')?;
        Some((parse(ip)?, parse_mask(mask)?))
    })
}

impl Engine {
    /// §10 the step before all of §4.1: whether a connection from `ip` is
    /// to be dropped at once.
    pub fn address_banned(&self, ip: IpAddr) -> bool {
        let a = u128::from(as_ipv6(ip));
        entries(self).any(|(b, m)| same(a, b, m))
    }

    /// Whether `ip` may open one more connection (`--max-connections-per-ip`).
    pub fn address_has_room(&self, ip: IpAddr) -> bool {
        let max = self.config.max_connections_per_ip;
        max == 0 || (self.state.connections_from(ip) as usize) < max
    }
}

/// Step 1 of both: the `ip` and `mask` fields as bits.
fn fields(req: &Request) -> Result<(u128, u128), Failure> {
    let ip_text = req.str_field(K::KIp).unwrap_or_default();
    let ip = parse(ip_text).ok_or_else(|| {
        Failure::new(
            K::SBadIpFormat,
            format!("{ip_text:?} is not an IPv4 or IPv6 address."),
        )
    })?;
    let mask = match req.str_field(K::KMask) {
        None => 0,
        Some(text) => parse_mask(text).ok_or_else(|| {
            Failure::new(
                K::SBadIpFormat,
                format!("The mask {text:?} is not an IPv4 or IPv6 address."),
            )
        })?,
    };
    Ok((ip & !mask, mask))
}

/// §10 `ip-ban` steps 1–5.
fn ip_ban(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let (ip, mask) = fields(req)?;
    // Step 2, as subsumption: an entry that already covers the new one
    // makes it needless, and entries the new one covers go.
    let mut removed = Vec::new();
    for (b, m) in entries(engine) {
        if covers(b, m, ip, mask) {
            send_to(out, req.conn, &Engine::echo(req));
            return Ok(());
        }
        if covers(ip, mask, b, m) {
            removed.push(item(b, m));
        }
    }
    engine.refuse_while_store_fails()?;
    for old in &removed {
        engine.set_list_item(LIST, old, false, out);
    }
    // Step 3.
    let new = item(ip, mask);
    let before = engine.set_list_item(LIST, &new, true, out);
    let first = out.sends.len();
    send_to(out, req.conn, &Engine::echo(req));
    if !before {
        engine.confirm_list_item(out, first, req, LIST, &new, before);
    }
    // Step 4: connections from a matching address go (not the sender's).
    let matching: Vec<ConnId> = engine
        .state
        .connection_ids()
        .filter(|&c| c != req.conn)
        .filter(|&c| {
            engine
                .state
                .connection(c)
                .is_some_and(|c| same(u128::from(as_ipv6(c.ip)), ip, mask))
        })
        .collect();
    for conn in matching {
        engine.drop_connection(conn, req.now, out, Close::WithDisconnect);
    }
    Ok(())
}

/// §10 `ip-unban` steps 1–2.
fn ip_unban(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let (ip, mask) = fields(req)?;
    let removed: Vec<String> = entries(engine)
        .filter(|&(b, m)| same(b, ip, mask) && m >= mask)
        .map(|(b, m)| item(b, m))
        .collect();
    if !removed.is_empty() {
        engine.refuse_while_store_fails()?;
    }
    for old in &removed {
        engine.set_list_item(LIST, old, false, out);
    }
    send_to(out, req.conn, &Engine::echo(req));
    Ok(())
}

/// §10 `ip-blacklist` steps 1–2: `((ip mask) ...)`.
fn ip_blacklist(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let target = entries(engine)
        .map(|(ip, mask)| {
            Value::List(vec![
                Value::string(Ipv6Addr::from(ip).to_string()),
                Value::string(Ipv6Addr::from(mask).to_string()),
            ])
        })
        .collect();
    let mut reply = Engine::echo(req);
    reply.set(K::KTarget, Value::List(target));
    send_to(out, req.conn, &reply);
    Ok(())
}
