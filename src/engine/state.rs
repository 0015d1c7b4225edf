//! §2 server objects: connections, users, profiles and channels, with the
//! indexes that find them by name.

use super::{Config, ConnId, Time};
use crate::protocol::{NameKey, Rule, name_key};
use crate::wire::Known;
use slab::Slab;
use std::collections::HashMap;
use std::net::IpAddr;

/// Index of a user in the user slab.
pub(crate) type UserId = usize;
/// Index of a channel in the channel slab.
pub(crate) type ChanId = usize;

/// §2.1 a connection: tied to a user once `connect` succeeded.
#[derive(Debug)]
pub(crate) struct Connection {
    pub user: Option<UserId>,
    /// It logged in with its profile's password (§4.1.7), which server
    /// administrators (`--admin`) need for their rights.
    pub authenticated: bool,
    pub ip: IpAddr,
    pub opened: Time,
    pub flood_frame: u64,
    pub flood_count: u32,
    /// The password job this connection waits for, if any.
    pub waiting: Option<Waiting>,
    /// §4.2 when its last update arrived.
    pub last_activity: Time,
    /// `last_activity` when the last ping went out: one per quiet spell.
    pub pinged_for: Option<Time>,
    /// Its one timer (§4.1 connect timeout, §4.2 activity).
    pub timer: Option<crate::timer::TimerId>,
    /// Updates that arrived while waiting, handled once the job is done.
    pub deferred: std::collections::VecDeque<Result<crate::wire::Object, crate::wire::ReadError>>,
}

/// What a connection waits for: a password job and the update that
/// continues when it is done (§4.1.7, §5.2).
#[derive(Debug)]
pub(crate) struct Waiting {
    pub job: u64,
    pub update: crate::wire::Object,
}

/// §2.2 a user: a unique name, its connections and the channels it is in.
#[derive(Debug)]
pub struct User {
    /// The name as the user chose it.
    pub name: String,
    pub(crate) conns: Vec<ConnId>,
    pub(crate) channels: Vec<ChanId>,
}

/// §2.3 a registered profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The user name it secures.
    pub name: String,
    /// The stored password hash.
    pub password: super::Password,
    /// When it was registered.
    pub registered_on: Time,
    /// When its user last existed on the server.
    pub last_used: Time,
    /// What extensions keep on it.
    pub data: super::ExtData,
}

/// §2.4 a channel and its permission rules.
#[derive(Debug)]
pub struct Channel {
    /// The name as created.
    pub name: String,
    /// The user who created it (§2.5 "registrant").
    pub registrant: String,
    /// §2.5 rules, one per update class.
    pub rules: Vec<(Known, Rule)>,
    /// True for `@` channels (§2.4.2).
    pub anonymous: bool,
    /// When it last became empty or was created.
    pub last_used: Time,
    /// How long it lives once empty.
    pub lifetime: u64,
    pub(crate) members: Vec<UserId>,
    /// The address it was created from, for the per-address creation
    /// quota; unknown for channels loaded at start-up.
    pub(crate) creator_addr: Option<AddrKey>,
    /// What extensions keep on it (stored with regular channels).
    pub data: super::ExtData,
    /// Its recent updates as they went out (backfill).
    pub(crate) backlog: super::backlog::Backlog,
    /// What extensions keep on it while the server runs.
    pub(crate) volatile: super::ext_state::ExtState,
    /// `shirakumo.mess` §3 its emotes (primary and regular channels).
    pub(crate) emotes: super::ext::emotes::Emotes,
    /// `shirakumo.mess` §26 its roles as the permission check reads
    /// them; `None` when it has none.
    pub(crate) roles: Option<Box<super::ext::roles::Roles>>,
}

/// An address as the creation quota counts it: an IPv4 address, or the
/// /64 network of an IPv6 address (one site's share of addresses).
pub(crate) type AddrKey = u128;

/// The quota key of an address.
pub(crate) fn addr_key(ip: IpAddr) -> AddrKey {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => u128::from(v6) & !((1u128 << 64) - 1),
        },
    }
}

impl Channel {
    /// The rule for an update class, if the channel has one.
    pub fn rule(&self, class: Known) -> Option<&Rule> {
        self.rules.iter().find(|(k, _)| *k == class).map(|(_, r)| r)
    }

    /// Sets the rule for an update class.
    pub fn set_rule(&mut self, class: Known, rule: Rule) {
        match self.rules.iter_mut().find(|(k, _)| *k == class) {
            Some(slot) => slot.1 = rule,
            None => self.rules.push((class, rule)),
        }
    }

    /// Number of users in the channel.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// `shirakumo.mess` §1: updates and bytes kept for `backfill`.
    pub fn backfill_held(&self) -> (usize, usize) {
        self.backlog.held()
    }
}

/// All server objects.
pub(crate) struct State {
    conns: Vec<Option<Connection>>,
    conn_count: usize,
    users: Slab<User>,
    user_index: HashMap<NameKey, UserId>,
    profiles: HashMap<NameKey, Profile>,
    channels: Slab<Channel>,
    channel_index: HashMap<NameKey, ChanId>,
    /// Channels alive per registrant, for the creation quota.
    created_by_name: HashMap<NameKey, usize>,
    /// Channels alive per creating address, for the creation quota.
    created_by_addr: HashMap<AddrKey, usize>,
    /// §2.4.1 the primary channel.
    pub primary: ChanId,
    /// §2.2 the server's own user.
    pub server_user: UserId,
    /// What extensions keep server-wide while the server runs.
    pub(crate) volatile: super::ext_state::ExtState,
    /// Connections open per address (`max_connections_per_ip`).
    per_ip: HashMap<IpAddr, u32>,
    /// The server-wide lists, stored item by item (`shirakumo.mess` §7
    /// the name blacklist, §10 the IP blacklist).
    pub(crate) lists: HashMap<String, Vec<String>>,
}

impl State {
    /// The server user and the primary channel (§2.4.1) with `rules`.
    pub fn new(config: &Config, now: Time, rules: Vec<(Known, Rule)>) -> State {
        let mut s = State {
            conns: Vec::new(),
            conn_count: 0,
            users: Slab::new(),
            volatile: Default::default(),
            lists: HashMap::new(),
            per_ip: HashMap::new(),
            user_index: HashMap::new(),
            profiles: HashMap::new(),
            channels: Slab::new(),
            channel_index: HashMap::new(),
            created_by_name: HashMap::new(),
            created_by_addr: HashMap::new(),
            primary: 0,
            server_user: 0,
        };
        s.server_user = s.add_user(&config.name);
        s.primary = s.add_channel(Channel {
            name: config.name.clone(),
            registrant: config.name.clone(),
            rules,
            anonymous: false,
            last_used: now,
            lifetime: u64::MAX,
            members: Vec::new(),
            creator_addr: None,
            data: Default::default(),
            backlog: Default::default(),
            volatile: Default::default(),
            emotes: Default::default(),
            roles: None,
        });
        s.join(s.server_user, s.primary);
        s
    }

    // Connections

    pub fn open_connection(&mut self, conn: ConnId, ip: IpAddr, now: Time) {
        if self.conns.len() <= conn {
            self.conns.resize_with(conn + 1, || None);
        }
        if let Some(old) = self.conns[conn].take() {
            self.release_ip(old.ip);
        } else {
            self.conn_count += 1;
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.conns[conn] = Some(Connection {
            user: None,
            authenticated: false,
            ip,
            opened: now,
            flood_frame: 0,
            flood_count: 0,
            waiting: None,
            last_activity: now,
            pinged_for: None,
            timer: None,
            deferred: std::collections::VecDeque::new(),
        });
    }

    pub fn connection(&self, conn: ConnId) -> Option<&Connection> {
        self.conns.get(conn).and_then(Option::as_ref)
    }

    pub fn connection_mut(&mut self, conn: ConnId) -> Option<&mut Connection> {
        self.conns.get_mut(conn).and_then(Option::as_mut)
    }

    pub fn remove_connection(&mut self, conn: ConnId) -> Option<Connection> {
        let c = self.conns.get_mut(conn).and_then(Option::take);
        if let Some(c) = &c {
            self.release_ip(c.ip);
            self.conn_count -= 1;
            // Keep the table from pinning memory after a burst.
            while matches!(self.conns.last(), Some(None)) {
                self.conns.pop();
            }
        }
        c
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Connections open from `ip`.
    pub fn connections_from(&self, ip: IpAddr) -> u32 {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub fn connection_count(&self) -> usize {
        self.conn_count
    }

    pub fn connection_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|_| i))
    }

    // Users

    /// Users present, the server's own included.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn add_user(&mut self, name: &str) -> UserId {
        let id = self.users.insert(User {
            name: name.to_owned(),
            conns: Vec::new(),
            channels: Vec::new(),
        });
        self.user_index.insert(name_key(name), id);
        id
    }

    pub fn remove_user(&mut self, user: UserId) {
        if let Some(u) = self.users.try_remove(user) {
            self.user_index.remove(&name_key(&u.name));
        }
    }

    pub fn user(&self, user: UserId) -> &User {
        &self.users[user]
    }

    pub fn user_mut(&mut self, user: UserId) -> &mut User {
        &mut self.users[user]
    }

    pub fn find_user(&self, name: &str) -> Option<UserId> {
        self.user_index.get(&name_key(name)).copied()
    }

    // Profiles

    pub fn find_profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(&name_key(name))
    }

    pub fn find_profile_mut(&mut self, name: &str) -> Option<&mut Profile> {
        self.profiles.get_mut(&name_key(name))
    }

    pub fn put_profile(&mut self, profile: Profile) {
        self.profiles.insert(name_key(&profile.name), profile);
    }

    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn remove_profile(&mut self, name: &str) -> Option<Profile> {
        self.profiles.remove(&name_key(name))
    }

    // Channels

    pub fn add_channel(&mut self, channel: Channel) -> ChanId {
        let key = name_key(&channel.name);
        *self
            .created_by_name
            .entry(name_key(&channel.registrant))
            .or_default() += 1;
        if let Some(addr) = channel.creator_addr {
            *self.created_by_addr.entry(addr).or_default() += 1;
        }
        let id = self.channels.insert(channel);
        self.channel_index.insert(key, id);
        id
    }

    pub fn remove_channel(&mut self, chan: ChanId) -> Option<Channel> {
        let c = self.channels.try_remove(chan)?;
        self.channel_index.remove(&name_key(&c.name));
        fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
        release(&mut self.created_by_name, name_key(&c.registrant));
        if let Some(addr) = c.creator_addr {
            release(&mut self.created_by_addr, addr);
        }
        Some(c)
    }

    /// Channels alive that `registrant` created.
    pub fn created_by(&self, registrant: &str) -> usize {
        self.created_by_name
            .get(&name_key(registrant))
            .copied()
            .unwrap_or(0)
    }

    /// Channels alive created from `addr`.
    pub fn created_from(&self, addr: AddrKey) -> usize {
        self.created_by_addr.get(&addr).copied().unwrap_or(0)
    }

    pub fn channel(&self, chan: ChanId) -> &Channel {
        &self.channels[chan]
    }

    pub fn channel_mut(&mut self, chan: ChanId) -> &mut Channel {
        &mut self.channels[chan]
    }

    /// The channel `chan`, if it still exists.
    pub fn channel_opt(&self, chan: ChanId) -> Option<&Channel> {
        self.channels.get(chan)
    }

    /// The channel `chan`, mutably, if it still exists.
    pub fn channel_mut_opt(&mut self, chan: ChanId) -> Option<&mut Channel> {
        self.channels.get_mut(chan)
    }

    pub fn find_channel(&self, name: &str) -> Option<ChanId> {
        self.channel_index.get(&name_key(name)).copied()
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter().map(|(_, c)| c)
    }

    pub fn channel_ids(&self) -> impl Iterator<Item = ChanId> + '_ {
        self.channels.iter().map(|(i, _)| i)
    }

    // Membership

    pub fn in_channel(&self, user: UserId, chan: ChanId) -> bool {
        self.users[user].channels.contains(&chan)
    }

    pub fn join(&mut self, user: UserId, chan: ChanId) {
        self.users[user].channels.push(chan);
        self.channels[chan].members.push(user);
    }

    pub fn part(&mut self, user: UserId, chan: ChanId, now: Time) {
        self.users[user].channels.retain(|&c| c != chan);
        let c = &mut self.channels[chan];
        if let Some(pos) = c.members.iter().position(|&u| u == user) {
            c.members.swap_remove(pos);
        }
        c.backlog.parted(user);
        if c.members.is_empty() {
            c.last_used = now;
        }
    }

    /// §2.5 whether `user` may send `class` to `chan`; a class without a
    /// rule in the channel falls back to the primary channel's rule, and
    /// is denied when that has none either. `shirakumo.mess` §26: unless
    /// the rule names the user, the channel's roles decide where one of
    /// the user's roles has an entry for the class.
    pub fn permitted(&self, chan: ChanId, class: Known, user: &str) -> bool {
        let c = &self.channels[chan];
        let rule = c
            .rule(class)
            .or_else(|| self.channels[self.primary].rule(class));
        if let Some(roles) = &c.roles
            && let Some(granted) = roles.verdict(class, user)
            && !rule.is_some_and(|r| r.names().contains(user))
        {
            return granted;
        }
        rule.is_some_and(|r| r.allows(user))
    }
}
