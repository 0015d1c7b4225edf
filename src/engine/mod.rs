//! The protocol engine (§2–§5), sans-IO: it takes (connection, update, now)
//! and returns what to send to which connections and which to close. It
//! opens no sockets and reads no clock.

mod backlog;
mod channels;
mod connect;
mod core;
mod ext;
mod ext_data;
mod ext_state;
mod info;
mod presence;
mod profiles;
mod random;
mod registry;
mod state;
mod table;
mod timers;
mod undo;

use crate::protocol::{self, Ty, is_update};
use crate::wire::{Known, Object, ReadError, Symbol, Value, print_update};
use registry::ChannelUse;
use state::{Connection, UserId};
use std::net::IpAddr;
use std::rc::Rc;

pub use ext::emotes::emote_name_problem;
pub use ext::history::{
    HistoryRecord, MemberRecord, Query, SearchDone, SearchJob, SearchKind, Window,
};
pub use ext::link::{LinkRecord, MAX_UNSAVED_BYTES, cost as link_cost};
pub use ext::otp::{base32_decode, totp};
pub use ext_data::ExtData;
pub use profiles::{HashDone, HashJob, HashWork, Password, hash_password};
use state::Channel as ChannelState;
pub use state::{Channel, Profile, User};
pub use undo::{ConfirmId, Refusal};

/// Identifies a connection; the net layer uses its slab key.
pub type ConnId = usize;

/// Lichat time: seconds since 1900-01-01 00:00 UTC (§1).
pub type Time = u64;

/// Seconds between 1900-01-01 and 1970-01-01.
pub const UNIX_TO_UNIVERSAL: u64 = 2_208_988_800;

/// Thirty days, the default lifetime of profiles and empty channels.
pub const THIRTY_DAYS: u64 = 30 * 24 * 3600;

/// Engine settings; the defaults are the original server's.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server's name: its user and primary channel carry it.
    pub name: String,
    /// §4.2 flood frame length in seconds.
    pub flood_frame: u64,
    /// §4.2 updates allowed per flood frame.
    pub flood_limit: u32,
    /// §4.1.8 connections allowed per user.
    pub max_connections_per_user: usize,
    /// §5.3.1.3 / §5.4.1.2 channels a user may inhabit.
    pub max_channels_per_user: usize,
    /// Channels the server keeps at most (regular and anonymous): users
    /// could otherwise create and leave channels without end, each kept
    /// for its lifetime.
    pub max_channels: usize,
    /// Channels one registrant, and one address (an IPv6 /64), may keep
    /// alive that they created (§5.3.1); beyond it `create` fails with
    /// `too-many-channels`, so nobody can fill `max_channels` alone.
    pub max_channels_per_creator: usize,
    /// §2.4 how long an empty channel lives whose registrant has no
    /// profile, in seconds: nobody can prove to own it, so it goes soon.
    pub unregistered_channel_lifetime: u64,
    /// Registered profiles the server keeps at most (§5.2.1: beyond it
    /// registration is rejected).
    pub max_profiles: usize,
    /// §2.5 names one permission rule may list; a longer rule is refused
    /// with `invalid-permissions` (§5.3.2.1.2).
    pub max_rule_names: usize,
    /// §4.1: seconds allowed between accepting a socket and its `connect`.
    pub connect_timeout: u64,
    /// §4.2: seconds without an update before the server sends a `ping`.
    pub ping_interval: u64,
    /// §4.2: seconds without an update before the connection is dropped
    /// with `connection-unstable`.
    pub idle_timeout: u64,
    /// Server-wide salt mixed into every password hash (§5.2).
    pub salt: String,
    /// PBKDF2 iterations for new password hashes (§5.2).
    pub hash_iterations: u32,
    /// §2.3 how long an unused profile lives, in seconds.
    pub profile_lifetime: u64,
    /// §2.4 how long an empty regular channel lives, in seconds.
    pub channel_lifetime: u64,
    /// Connections one address may have open; `0` is no limit.
    pub max_connections_per_ip: usize,
    /// Server administrators: registered profiles whose connections, once
    /// logged in with the password, may send every update everywhere.
    pub admins: Vec<String>,
    /// `shirakumo.mess` §1: updates a channel keeps for `backfill`.
    pub backfill_count: usize,
    /// `shirakumo.mess` §1: bytes of updates a channel keeps for
    /// `backfill`.
    pub backfill_bytes: usize,
    /// `shirakumo.mess` §1: bytes all channels' kept updates may take
    /// together; beyond it the oldest kept anywhere go first.
    pub backfill_total_bytes: usize,
    /// `shirakumo.mess` §2: the content types `data` may carry.
    pub data_types: Vec<String>,
    /// `shirakumo.mess` §3: emotes one channel holds at most.
    pub max_emotes: usize,
    /// `shirakumo.mess` §3: the largest emote image, in decoded bytes.
    pub max_emote_size: usize,
    /// `shirakumo.mess` §3: bytes all emotes of one channel may take as
    /// printed, so that answering `emotes` fits a client's write queue.
    pub max_emotes_bytes: usize,
    /// `shirakumo.mess` §6: longest text value of a channel info key, in
    /// bytes (the icon has its own limit).
    pub max_channel_info_size: usize,
    /// `shirakumo.mess` §14: longest text value of a user info key, in
    /// bytes (the icon has its own limit).
    pub max_user_info_size: usize,
    /// `shirakumo.mess` §16: largest icon, in bytes of the image (its
    /// base 64 is a third longer).
    pub max_icon_size: usize,
    /// §5.1.2 the longest update the server sends, in bytes: `shirakumo.mess`
    /// §18 step 7 splits search results to fit it.
    pub max_update_size: usize,
    /// `shirakumo.mess` §18 step 6: results of one search page.
    pub search_page: usize,
    /// `shirakumo.mess` §1 with §18: stored messages a backfill adds at most
    /// from the history, beyond the channel's recent updates.
    pub backfill_history: usize,
    /// `shirakumo.mess` §18: days the history keeps a message; 0 keeps
    /// it for ever (the store prunes).
    pub history_days: u64,
    /// `shirakumo.mess` §12: what a shared payload's URL starts with (its
    /// name follows); empty turns links off, and `data` is distributed
    /// as it came.
    pub link_url_prefix: String,
    /// `shirakumo.mess` §12: bytes all saved payloads may take, each
    /// counted in whole 4 KiB blocks; 0 turns links off.
    pub max_link_bytes: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "Lichat".into(),
            flood_frame: 30,
            flood_limit: 40,
            max_connections_per_user: 20,
            max_channels_per_user: 50,
            max_channels: 10_000,
            max_channels_per_creator: 100,
            unregistered_channel_lifetime: 3600,
            max_profiles: 100_000,
            max_rule_names: 1000,
            connect_timeout: 10,
            ping_interval: 60,
            idle_timeout: 120,
            salt: String::new(),
            hash_iterations: profiles::DEFAULT_ITERATIONS,
            profile_lifetime: THIRTY_DAYS,
            channel_lifetime: THIRTY_DAYS,
            admins: Vec::new(),
            max_connections_per_ip: 20,
            backfill_count: 100,
            backfill_bytes: 1 << 20,
            backfill_total_bytes: 64 << 20,
            data_types: ext::DEFAULT_DATA_TYPES
                .iter()
                .map(|t| t.to_string())
                .collect(),
            max_emotes: 200,
            max_emote_size: 512 * 1024,
            max_emotes_bytes: 3 << 20,
            max_channel_info_size: 16 << 10,
            max_user_info_size: 16 << 10,
            max_icon_size: 1 << 20,
            max_update_size: 8 * 1024 * 1024,
            search_page: 50,
            backfill_history: 1000,
            history_days: 0,
            link_url_prefix: String::new(),
            max_link_bytes: 1 << 30,
        }
    }
}

/// What the engine wants done: bytes to queue on connections, connections
/// to close once their queued bytes are written.
#[derive(Default, Debug)]
pub struct Outbox {
    /// Printed updates, each for one connection; a broadcast shares one
    /// buffer among all its recipients.
    pub sends: Vec<(ConnId, Rc<[u8]>)>,
    /// Connections to close after flushing what is queued for them. The
    /// engine has already forgotten them.
    pub closes: Vec<ConnId>,
    /// Changes of durable state, in order, for the store to write through.
    pub changes: Vec<Change>,
    /// Password hashes to compute off the loop; feed each result to
    /// [`Engine::job_done`].
    pub jobs: Vec<HashJob>,
    /// `shirakumo.mess` §18 searches (and §1 backfills) of the stored
    /// history to run off the loop; feed each result to
    /// [`Engine::search_done`].
    pub searches: Vec<SearchJob>,
    /// The sends that confirm a durable change, as (index into `sends`,
    /// confirmation), in the order of `sends`; one confirmation may cover
    /// several sends (every connection of the user). Such a send must
    /// reach the wire only after the change committed, and whatever is
    /// sent to the same connection later must wait behind it. Each
    /// confirmation ends with [`Engine::settle`] once committed, or with
    /// [`Engine::fail_pending`] if the store cannot commit it. Sends not
    /// listed here need not wait.
    pub confirms: Vec<(usize, ConfirmId)>,
    /// What changed about connections, in order, for the net layer.
    pub events: Vec<ConnEvent>,
}

impl Outbox {
    /// Empties the outbox, keeping its allocations.
    pub fn clear(&mut self) {
        self.sends.clear();
        self.closes.clear();
        self.changes.clear();
        self.jobs.clear();
        self.searches.clear();
        self.confirms.clear();
        self.events.clear();
    }

    /// Gives back the room a burst left behind: once the most sends a
    /// turn held (`used`) is far below what `sends` has room for, it
    /// shrinks to twice that (at least [`OUTBOX_KEEP`]), so one turn that
    /// fanned out to every connection (the primary channel's joins of a
    /// reconnect storm) does not pin its memory while the server idles.
    /// Steady traffic keeps its room: nothing shrinks within a factor of 4.
    pub fn shrink_after_turn(&mut self, used: usize) {
        let want = used.saturating_mul(2).max(OUTBOX_KEEP);
        if self.sends.capacity() > want.saturating_mul(2) {
            self.sends.shrink_to(want);
        }
    }
}

/// Sends an [`Outbox`] keeps room for after a quiet turn (its other
/// lists stay short, and `changes` goes to the store whole each turn).
pub const OUTBOX_KEEP: usize = 1024;

/// A change in a connection's state that the net layer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// §4.1 completed: the full update size applies from now on.
    Established(ConnId),
    /// It waits for a password hash (§4.1.7, §5.2): hand it no updates
    /// until [`ConnEvent::Ready`].
    Waiting(ConnId),
    /// Its password hash is in: hand it updates again.
    Ready(ConnId),
}

/// A change of durable state (§2.3 profiles, §2.4 channels), written
/// through to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A profile was created or changed.
    Profile(Profile),
    /// A profile expired.
    DeleteProfile(String),
    /// A regular channel was created or changed.
    Channel(ChannelRecord),
    /// A regular channel expired; its emotes go with it.
    DeleteChannel(String),
    /// An item joined (`present`) or left a server-wide list
    /// (`shirakumo.mess` §7 the name blacklist, §10 the IP blacklist).
    List {
        /// The list's name.
        list: String,
        /// The item.
        item: String,
        /// Whether the item is on the list now.
        present: bool,
    },
    /// `shirakumo.mess` §3 an emote of a channel was added or replaced.
    Emote(EmoteRecord),
    /// `shirakumo.mess` §3 an emote of a channel was removed.
    DeleteEmote {
        /// The channel's name.
        channel: String,
        /// The emote's name.
        name: String,
    },
    /// `shirakumo.mess` §18 a distributed message to keep in the history;
    /// the store keeps a bounded queue of these and drops them (with a
    /// logged error) rather than grow without bound while commits fail.
    History(Box<HistoryRecord>),
    /// `shirakumo.mess` §18 an `edit` with empty text by the original
    /// sender: the stored text of the message (and of its edits) goes.
    Redact {
        /// The channel's name.
        channel: String,
        /// The sender.
        from: String,
        /// The message's `id`, printed.
        id: String,
    },
    /// `shirakumo.mess` §1 with §18: since when a profile's user is in a
    /// channel, for backfill across restarts.
    Member(MemberRecord),
    /// `shirakumo.mess` §12 a payload to save as a file, with the row that
    /// keeps it; the message carrying its URL waits for the commit.
    Link(Box<LinkRecord>),
    /// `shirakumo.mess` §12 a payload that could not be confirmed: its
    /// file and row go.
    DeleteLink(String),
    /// `shirakumo.mess` §12 a channel was removed (of any kind): every
    /// payload shared in it goes.
    DeleteLinks(String),
    /// `shirakumo.mess` §1: a profile's user left a channel.
    DeleteMember {
        /// The profile's name.
        profile: String,
        /// The channel's name.
        channel: String,
    },
}

/// `shirakumo.mess` §3 what survives of an emote across restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct EmoteRecord {
    /// The name of the channel holding it.
    pub channel: String,
    /// Its name, as given.
    pub name: String,
    /// The content type of its image.
    pub content_type: String,
    /// The image, base 64.
    pub payload: String,
    /// When it was added.
    pub added: Time,
}

/// What survives of a regular channel across restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelRecord {
    /// The channel's name.
    pub name: String,
    /// §2.5 its registrant.
    pub registrant: String,
    /// §2.5 its permission rules.
    pub rules: Vec<(Known, protocol::Rule)>,
    /// Seconds it lives once empty.
    pub lifetime: u64,
    /// When it was last in use.
    pub last_used: Time,
    /// What extensions keep on it.
    pub data: ExtData,
}

/// Durable state loaded at start-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Registered profiles.
    pub profiles: Vec<Profile>,
    /// Regular channels.
    pub channels: Vec<ChannelRecord>,
    /// The items of the server-wide lists, as (list, item).
    pub lists: Vec<(String, String)>,
    /// `shirakumo.mess` §3 the emotes of the primary and regular channels.
    pub emotes: Vec<EmoteRecord>,
    /// `shirakumo.mess` §1/§18 since when profiles are in channels.
    pub members: Vec<MemberRecord>,
    /// `shirakumo.mess` §18 the row number the next stored message gets
    /// (one above every row ever stored).
    pub history_next: u64,
    /// `shirakumo.mess` §12 per channel, what its saved payloads count
    /// against `--max-link-bytes`.
    pub links: Vec<(String, u64)>,
}

/// A handler's failure: the class of the failure update and its text.
/// The engine turns it into the spec's failure update (§3.2).
#[derive(Debug)]
pub(crate) struct Failure {
    class: Known,
    text: String,
}

impl Failure {
    fn new(class: Known, text: impl Into<String>) -> Failure {
        Failure {
            class,
            text: text.into(),
        }
    }
}

/// The update being handled, with what §5.1 established about it.
pub(crate) struct Request {
    conn: ConnId,
    user: UserId,
    update: Object,
    class: Known,
    now: Time,
}

impl Request {
    fn id(&self) -> Value {
        self.update.get(Known::KId).cloned().unwrap_or(Value::NIL)
    }

    fn str_field(&self, key: Known) -> Option<&str> {
        self.update.get(key).and_then(Value::as_str)
    }
}

/// The protocol engine: users, profiles, channels and every handler.
pub struct Engine {
    config: Config,
    state: state::State,
    next_id: u64,
    next_job: u64,
    /// Confirmed changes not yet settled, oldest first, with what undoes
    /// them if the store fails.
    undo: undo::Pending,
    /// Set while the store cannot commit: changes that need a
    /// confirmation are refused with this cause.
    store_failure: Option<String>,
    /// Suffix of the last guest name made without OS randomness.
    next_guest: u64,
    /// §4.1–§4.2 connection timers and the next expiry.
    timers: timers::Timers,
    /// The primary channel's joins and leaves of this turn.
    presence: presence::Presence,
    /// §4.2 updates dropped by flood protection, for the metrics.
    flood_drops: u64,
}

impl Engine {
    /// A new engine with the primary channel and server user in place.
    pub fn new(config: Config, now: Time) -> Engine {
        let rules = table::default_rules(registry::ChannelKind::Primary, &config.name);
        let state = state::State::new(&config, now, rules);
        Engine {
            config,
            state,
            next_id: 0,
            next_job: 0,
            undo: undo::Pending::default(),
            store_failure: None,
            next_guest: 0,
            timers: timers::Timers::new(now),
            presence: presence::Presence::default(),
            flood_drops: 0,
        }
    }

    /// Restores the profiles and channels of a snapshot (start-up).
    pub fn load(&mut self, snapshot: Snapshot) {
        for p in snapshot.profiles {
            if protocol::is_valid_name(&p.name) {
                self.state.put_profile(p);
            }
        }
        for c in snapshot.channels {
            if !protocol::is_valid_name(&c.name) || self.state.find_channel(&c.name).is_some() {
                continue;
            }
            // Rules for classes this server does not handle (written by
            // another version) would make `capabilities` disagree with
            // the rules (§5.5.4); they are dropped.
            let mut rules = c.rules;
            rules.retain(|(k, _)| table::is_ruled_class(*k));
            let chan = self.state.add_channel(ChannelState {
                name: c.name,
                registrant: c.registrant,
                rules,
                anonymous: false,
                last_used: c.last_used,
                lifetime: c.lifetime,
                members: Vec::new(),
                creator_addr: None,
                data: c.data,
                backlog: Default::default(),
                volatile: Default::default(),
                emotes: Default::default(),
                roles: None,
            });
            ext::roles::reindex(self, chan);
        }
        for (list, item) in snapshot.lists {
            self.state.lists.entry(list).or_default().push(item);
        }
        ext::emotes::load(self, snapshot.emotes);
        ext::history::load(self, snapshot.members, snapshot.history_next);
        ext::link::load(self, snapshot.links);
    }

    /// Records that a channel's durable part changed.
    fn channel_changed(&self, chan: state::ChanId, out: &mut Outbox) {
        let c = self.state.channel(chan);
        if c.anonymous || chan == self.state.primary {
            return;
        }
        out.changes.push(Change::Channel(ChannelRecord {
            name: c.name.clone(),
            registrant: c.registrant.clone(),
            rules: c.rules.clone(),
            lifetime: c.lifetime,
            last_used: c.last_used,
            data: c.data.clone(),
        }));
    }

    /// Records that a profile changed.
    fn profile_changed(&self, name: &str, out: &mut Outbox) {
        if let Some(p) = self.state.find_profile(name) {
            out.changes.push(Change::Profile(p.clone()));
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A socket was accepted; the connection awaits its `connect` (§4.1).
    pub fn open(&mut self, conn: ConnId, ip: IpAddr, now: Time) {
        self.state.open_connection(conn, ip, now);
        self.arm_connect_timeout(conn, now);
    }

    /// True once the connection completed §4.1.
    pub fn is_established(&self, conn: ConnId) -> bool {
        self.state
            .connection(conn)
            .is_some_and(|c| c.user.is_some())
    }

    /// Users present (§2.1), the server's own included, for the metrics.
    pub fn user_count(&self) -> usize {
        self.state.user_count()
    }

    /// `shirakumo.mess` §12 bytes shared payloads count against
    /// `--max-link-bytes`, for the metrics.
    pub fn link_bytes(&self) -> u64 {
        ext::link::stored_cost(self)
    }

    /// Whether `shirakumo.mess` §12 links are on.
    pub fn links_enabled(&self) -> bool {
        ext::link::enabled(self)
    }

    /// `shirakumo.mess` §12: sets what payload URLs start with (the server
    /// knows its ports only once bound); empty turns links off.
    pub fn set_link_url_prefix(&mut self, prefix: String) {
        self.config.link_url_prefix = prefix;
    }

    /// `shirakumo.mess` §1 updates and bytes all channels keep for
    /// `backfill`, for the metrics.
    pub fn backfill_held(&self) -> (usize, usize) {
        ext::backfill::held_in_all(self)
    }

    /// Channels that exist (§2.4), for the metrics.
    pub fn channel_count(&self) -> usize {
        self.state.channel_count()
    }

    /// §4.2 updates dropped by flood protection so far.
    pub fn flood_drops(&self) -> u64 {
        self.flood_drops
    }

    /// Number of connections the engine knows, established or not.
    pub fn connection_count(&self) -> usize {
        self.state.connection_count()
    }

    /// A fresh ID for an update the server originates.
    fn fresh_id(&mut self) -> Value {
        self.next_id += 1;
        Value::int(self.next_id)
    }

    /// An update from the server user with a fresh ID (§3).
    fn server_update(&mut self, class: Known, now: Time) -> Object {
        let id = self.fresh_id();
        Object::new(class)
            .with(Known::KId, id)
            .with(Known::KClock, now)
            .with(Known::KFrom, self.config.name.as_str())
    }

    /// A failure update (§3.2); `update_id` is given for `update-failure`s.
    fn failure(
        &mut self,
        class: Known,
        update_id: Option<Value>,
        text: impl Into<String>,
        now: Time,
    ) -> Object {
        let mut f = self
            .server_update(class, now)
            .with(Known::KText, text.into());
        if let Some(id) = update_id {
            f.push(Known::KUpdateId, id);
        }
        f
    }

    fn send_failure(
        &mut self,
        conn: ConnId,
        f: Failure,
        update_id: Value,
        now: Time,
        out: &mut Outbox,
    ) {
        // Only update-failures refer to the update (§3.2); a plain failure
        // such as too-many-connections has no update-id slot.
        let update_id = protocol::is_a(f.class, Known::UpdateFailure).then_some(update_id);
        let mut obj = self.failure(f.class, update_id, f.text, now);
        if f.class == Known::IncompatibleVersion {
            obj.push(
                Known::KCompatibleVersions,
                Value::List(
                    protocol::COMPATIBLE_VERSIONS
                        .iter()
                        .map(|v| Value::string(*v))
                        .collect(),
                ),
            );
        }
        send_to(out, conn, &obj);
    }

    /// One update read from the connection (or the reader's error).
    pub fn handle(
        &mut self,
        conn: ConnId,
        update: Result<Object, ReadError>,
        now: Time,
        out: &mut Outbox,
    ) {
        let Some(c) = self.state.connection_mut(conn) else {
            return;
        };
        // §4.2: any update, readable or not, is a sign of life.
        c.last_activity = now;
        if c.waiting.is_some() {
            // Handled in order once the password job is done. The net layer
            // stops reading meanwhile, which bounds what can pile up here.
            c.deferred.push_back(update);
            return;
        }
        let established = c.user.is_some();
        let mut flood = c.count_update(now, self.config.flood_frame, self.config.flood_limit);
        if flood == Flood::Reached && update.is_err() {
            // An unreadable update has no ID for `too-many-updates` to
            // refer to: it is answered as usual and the next update is
            // the one that reaches the limit, so that dropping never
            // starts unannounced (§4.2).
            c.flood_count -= 1;
            flood = Flood::Ok;
        }
        if flood != Flood::Ok {
            self.flood_drops += 1;
        }
        match update {
            Err(_) if flood != Flood::Ok => {}
            Err(ReadError::TooLong) => {
                // §5.1.2: the connection survives.
                let f = self.failure(Known::UpdateTooLong, None, "The update is too long.", now);
                send_to(out, conn, &f);
            }
            Err(e) => {
                // §5.1.1; before `connect` the connection is closed (§4.3).
                let f = self.failure(
                    Known::MalformedUpdate,
                    None,
                    format!("The update could not be read: {e}."),
                    now,
                );
                send_to(out, conn, &f);
                if !established {
                    self.drop_connection(conn, now, out, connect::Close::Silent);
                }
            }
            Ok(update) => match flood {
                Flood::Ok => self.dispatch(conn, established, update, now, out),
                Flood::Reached => {
                    // §4.2, as the original server does: the update that
                    // reaches the limit is answered, later ones in the same
                    // frame are dropped silently.
                    let id = update.get(Known::KId).cloned().unwrap_or(Value::NIL);
                    let f = self.failure(
                        Known::TooManyUpdates,
                        Some(id),
                        format!(
                            "More than {} updates in {} seconds; updates are dropped for now.",
                            self.config.flood_limit.saturating_sub(1),
                            self.config.flood_frame
                        ),
                        now,
                    );
                    send_to(out, conn, &f);
                }
                Flood::Over => {}
            },
        }
    }

    /// §5.1 general checks, then the handler of the update's class.
    fn dispatch(
        &mut self,
        conn: ConnId,
        established: bool,
        mut update: Object,
        now: Time,
        out: &mut Outbox,
    ) {
        // A failure needs an ID to refer to; without one the update is
        // malformed whatever its class.
        let Some(id) = update.get(Known::KId).cloned() else {
            let f = self.failure(
                Known::MalformedUpdate,
                None,
                "The update has no :id field.",
                now,
            );
            send_to(out, conn, &f);
            if !established {
                self.drop_connection(conn, now, out, connect::Close::Silent);
            }
            return;
        };
        // §5.1.3 the class must be an update the server knows.
        let class = update.class.known();
        let def = class.and_then(table::class_def);
        let (Some(class), Some(def)) = (class, def) else {
            let text = match update.class.known() {
                Some(k) if is_update(k) => {
                    format!("The server does not accept {} updates.", k.name())
                }
                _ => format!("{:?} is not an update class.", update.class),
            };
            self.send_failure(conn, Failure::new(Known::InvalidUpdate, text), id, now, out);
            if !established {
                self.drop_connection(conn, now, out, connect::Close::Silent);
            }
            return;
        };
        let fields = table::fields_of(class).unwrap_or(def.fields);
        if let Err((key, ty)) = protocol::check_fields(fields, &update) {
            let f = self.failure(
                Known::MalformedUpdate,
                None,
                malformed_text(class, key, ty, update.get_raw(key).is_some()),
                now,
            );
            send_to(out, conn, &f);
            if !established {
                self.drop_connection(conn, now, out, connect::Close::Silent);
            }
            return;
        }
        if let Err(f) = table::hooks()
            .check
            .iter()
            .try_for_each(|check| check(&update, class))
        {
            self.send_failure(conn, f, id, now, out);
            if !established {
                self.drop_connection(conn, now, out, connect::Close::Silent);
            }
            return;
        }
        if update.get(Known::KClock).is_none() {
            // §3: the server substitutes the current time.
            update.set(Known::KClock, now);
        }
        let user = match self.state.connection(conn).and_then(|c| c.user) {
            Some(user) => user,
            None if class == Known::Connect => {
                self.connect(conn, update, now, out);
                return;
            }
            None => {
                let f = Failure::new(
                    Known::InvalidUpdate,
                    "The first update on a connection must be connect.",
                );
                self.send_failure(conn, f, id, now, out);
                self.drop_connection(conn, now, out, connect::Close::Silent);
                return;
            }
        };
        let mut req = Request {
            conn,
            user,
            update,
            class,
            now,
        };
        let result = self
            .general_checks(&mut req, def.checks)
            .and_then(|()| self.refuse_if_store_fails(&req))
            .and_then(|()| (def.handler)(self, &mut req, out));
        if let Err(f) = result {
            self.send_failure(conn, f, id, now, out);
        }
    }

    /// §5.1 steps 4–8, as the class table says they apply, and the
    /// membership §5.4 asks of updates to a channel.
    fn general_checks(
        &mut self,
        req: &mut Request,
        checks: registry::Checks,
    ) -> Result<(), Failure> {
        // Step 4: names in from, channel and target.
        for key in [Known::KFrom, Known::KChannel, Known::KTarget] {
            if let Some(name) = req.str_field(key)
                && !protocol::is_valid_name(name)
            {
                return Err(Failure::new(
                    Known::BadName,
                    format!("The {} {name:?} is not a valid name.", key.name()),
                ));
            }
        }
        // Step 5: from must be the connection's user; absent, it is filled in.
        let user_name = self.state.user(req.user).name.clone();
        match req.str_field(Known::KFrom) {
            Some(from)
                if !protocol::names_equal(from, &user_name)
                    // shirakumo-shared-identity (`shirakumo.mess` §15): a
                    // name lent to the sender passes, kept as `from`; the
                    // update stays the sender's in every other respect.
                    && !ext::shared_identity::may_send_as(self, req.user, from) =>
            {
                return Err(Failure::new(
                    Known::UsernameMismatch,
                    format!("This connection belongs to {user_name:?}, not {from:?}."),
                ));
            }
            Some(from) if !protocol::names_equal(from, &user_name) => {}
            _ => req.update.set(Known::KFrom, user_name.as_str()),
        }
        if checks.upkeep {
            return Ok(());
        }
        // Step 6: the channel must exist where the update needs one.
        let channel = match (checks.channel, req.str_field(Known::KChannel)) {
            (ChannelUse::Existing | ChannelUse::Joined, Some(name)) => {
                match self.state.find_channel(name) {
                    Some(c) => Some(c),
                    None => {
                        return Err(Failure::new(
                            Known::NoSuchChannel,
                            format!("There is no channel named {name:?}."),
                        ));
                    }
                }
            }
            _ => None,
        };
        if let Some(c) = channel {
            let ch = self.state.channel(c);
            if ch.anonymous && !self.state.in_channel(req.user, c) {
                // §2.4.2: outsiders may send nothing to an anonymous
                // channel, and learn nothing of it either.
                let name = req.str_field(Known::KChannel).unwrap_or_default();
                return Err(Failure::new(
                    Known::NoSuchChannel,
                    format!("There is no channel named {name:?}."),
                ));
            }
            // Canonical spelling of the channel name in everything sent on.
            let name = ch.name.clone();
            req.update.set(Known::KChannel, name);
        }
        // Step 7: the target user must exist.
        if let Some(target) = req.str_field(Known::KTarget)
            && !checks.target_any
        {
            let active = self.state.find_user(target);
            let known = active.is_some() || self.state.find_profile(target).is_some();
            if (checks.target_active && active.is_none()) || !known {
                return Err(Failure::new(
                    Known::NoSuchUser,
                    format!("There is no user named {target:?}."),
                ));
            }
            if let Some(u) = active {
                let name = self.state.user(u).name.clone();
                req.update.set(Known::KTarget, name);
            }
        }
        // Step 8: permission on the channel, or on the primary channel.
        if checks.free_about_self
            && req
                .str_field(Known::KTarget)
                .is_some_and(|t| protocol::names_equal(t, &user_name))
        {
            return Ok(());
        }
        let chan = match (checks.channel, req.str_field(Known::KChannel)) {
            // shirakumo-channel-trees (`shirakumo.mess` §5): a new
            // channel's parent decides.
            (ChannelUse::New, Some(name)) => self.creation_parent(req.user, name)?,
            _ => channel.unwrap_or(self.state.primary),
        };
        if !self.state.permitted(chan, req.class, &user_name) && !self.is_admin(req.conn) {
            return Err(Failure::new(
                Known::InsufficientPermissions,
                format!(
                    "You may not send {} updates to {:?}.",
                    req.class.name(),
                    self.state.channel(chan).name
                ),
            ));
        }
        // §5.4: updates to a channel come from its members.
        if checks.channel == ChannelUse::Joined
            && let Some(c) = channel
            && !self.state.in_channel(req.user, c)
        {
            return Err(Failure::new(
                Known::NotInChannel,
                format!("You are not in {:?}.", self.state.channel(c).name),
            ));
        }
        Ok(())
    }

    /// §4.1.1: the bytes of a `too-many-connections` failure, sent to a
    /// socket refused before it becomes a connection.
    pub fn too_many_connections(&mut self, now: Time) -> Vec<u8> {
        let f = self.failure(
            Known::TooManyConnections,
            None,
            "The server cannot take more connections.",
            now,
        );
        let mut out = Vec::new();
        // The failure holds only known symbols and strings: it prints.
        let _ = print_update(&f, &mut out);
        out
    }

    /// The names of every channel, primary and anonymous ones included.
    pub fn channel_names(&self) -> Vec<String> {
        self.state.channels().map(|c| c.name.clone()).collect()
    }

    /// A registered profile, by name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.state.find_profile(name)
    }

    /// A channel, by name.
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.state.find_channel(name).map(|c| self.state.channel(c))
    }
}

impl Engine {
    /// Whether the connection is a server administrator's: its user is
    /// named by `--admin` and it logged in with the profile's password.
    pub(crate) fn is_admin(&self, conn: ConnId) -> bool {
        let Some(c) = self.state.connection(conn) else {
            return false;
        };
        c.authenticated
            && c.user.is_some_and(|u| {
                let name = &self.state.user(u).name;
                self.config
                    .admins
                    .iter()
                    .any(|a| protocol::names_equal(a, name))
            })
    }

    /// The channel of a request whose `channel` field §5.1.6 checked.
    fn channel_of(&self, req: &Request) -> Result<state::ChanId, Failure> {
        req.str_field(Known::KChannel)
            .and_then(|n| self.state.find_channel(n))
            .ok_or_else(|| Failure::new(Known::NoSuchChannel, "The update names no channel."))
    }
}

fn malformed_text(class: Known, key: Known, ty: Ty, present: bool) -> String {
    if present {
        format!(
            "The field :{} of {} must be {}.",
            key.name(),
            class.name(),
            ty.describe()
        )
    } else {
        format!("The field :{} of {} is missing.", key.name(), class.name())
    }
}

/// Prints an update and returns the shared buffer all recipients get.
fn print_shared(update: &Object) -> Option<Rc<[u8]>> {
    let mut buf = Vec::with_capacity(128);
    match print_update(update, &mut buf) {
        Ok(()) => Some(Rc::from(buf)),
        Err(e) => {
            log::warn!("dropping an update that cannot be printed: {e}");
            None
        }
    }
}

fn send_to(out: &mut Outbox, conn: ConnId, update: &Object) {
    if let Some(bytes) = print_shared(update) {
        out.sends.push((conn, bytes));
    }
}

/// §4.2 flood state of a connection after counting one more update.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flood {
    /// Within the limit.
    Ok,
    /// This update reached the limit: answer `too-many-updates`.
    Reached,
    /// Past the limit: drop silently.
    Over,
}

impl Connection {
    fn count_update(&mut self, now: Time, frame_len: u64, limit: u32) -> Flood {
        let frame = now / frame_len.max(1);
        if frame != self.flood_frame {
            self.flood_frame = frame;
            self.flood_count = 0;
        }
        self.flood_count = self.flood_count.saturating_add(1);
        match self.flood_count.cmp(&limit) {
            std::cmp::Ordering::Less => Flood::Ok,
            std::cmp::Ordering::Equal => Flood::Reached,
            std::cmp::Ordering::Greater => Flood::Over,
        }
    }
}

/// Keeps the fields a distributed update may carry: those of its class,
/// the extensions' included; drops the rest (§6).
fn retain_known_fields(update: &mut Object, class: Known) {
    let fields = table::fields_of(class).unwrap_or(&[]);
    update.fields.retain(|(k, _)| match k {
        Symbol::Known(k) => fields.iter().any(|f| f.key == *k),
        Symbol::Other(_) => false,
    });
}

#[cfg(test)]
mod outbox_tests {
    use super::*;

    fn turn(out: &mut Outbox, sends: usize) -> usize {
        let bytes: Rc<[u8]> = Rc::from(&b"(message)\0"[..]);
        out.sends.extend((0..sends).map(|i| (i, bytes.clone())));
        let used = out.sends.len();
        out.sends.clear();
        out.shrink_after_turn(used);
        out.sends.capacity()
    }

    #[test]
    fn a_bursts_room_is_given_back_after_a_quiet_turn_but_steady_turns_keep_theirs() {
        let mut out = Outbox::default();
        let burst = turn(&mut out, 100_000);
        assert!(burst >= 100_000, "the burst's own turn keeps its room");
        let quiet = turn(&mut out, 0);
        assert!(
            quiet <= 2 * OUTBOX_KEEP,
            "a quiet turn gives it back: {quiet}"
        );
        let first = turn(&mut out, 5000);
        for _ in 0..10 {
            assert_eq!(turn(&mut out, 5000), first, "steady fan-out never shrinks");
        }
    }
}
