//! shirakumo-history (§18 of `shirakumo.mess`, also advertised as
//! `shirakumo-search`): every `message` (its subclasses such as `edit`
//! included, and `data` without its payload) distributed to a channel
//! whose `search` rule is not `NIL` is kept in the store's history, as the
//! bytes it was sent with; `search` looks through it.
//!
//! The engine never reads the database: a search (and the part of a
//! backfill, §1, that reaches past the channel's recent updates) is a
//! [`SearchJob`] handed out in [`Outbox::searches`], run off the loop
//! against the stored rows by [`SearchJob`]'s compiled [`Query`], and
//! fed back with [`Engine::search_done`], which sends the replies.
//!
//! Stored rows are numbered by the engine (one above every row ever
//! stored, across restarts): a channel's recent updates remember the
//! number the next row would get, and the membership records of §1 say
//! from which row on a profile's user may be given what it saw, so that
//! a backfill joins the two without a duplicate or a gap.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::{ChanId, UserId};
use crate::engine::{Change, ConnId, Engine, Failure, Outbox, Request, Time, send_to, table};
use crate::protocol::{Ty, is_a, name_key, names_equal, opt};
use crate::update_fields;
use crate::wire::{self, Integer, Known as K, Object, Symbol, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// §18: the `search` update and the hooks that record the history.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-history", "shirakumo-search"],
    hooks: Hooks {
        distributed: Some(record),
        on_join: Some(joined),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[ClassDef {
        class: K::SSearch,
        fields: update_fields!(
            opt(K::KChannel, Ty::Str),
            opt(K::KResults, Ty::List),
            opt(K::KOffset, Ty::Integer),
            opt(K::KQuery, Ty::List),
        ),
        handler: search,
        // Step 1: not-in-channel for outsiders.
        checks: Checks::MEMBER,
        // Anyone, as the most complete server has it; anonymous channels
        // keep nothing of what is said in them.
        rules: Defaults {
            primary: R::Anyone,
            regular: R::Anyone,
            anonymous: R::NoOne,
        },
    }],
};

/// Searches (and backfills) one connection may have running at once.
pub const SEARCHES_PER_CONNECTION: usize = 4;
/// Searches waiting or running server-wide at most.
pub const SEARCHES_IN_FLIGHT: usize = 1024;
/// Most match specs one `string` query value may hold.
pub const MAX_SPECS: usize = 32;
/// Longest match spec, in characters.
pub const MAX_SPEC_CHARS: usize = 256;
/// Most fields one query may name.
pub const MAX_QUERY_FIELDS: usize = 32;
/// Most trigrams of one match spec that the full-text index is asked for
/// (§18 step 3, narrowing only).
pub const TEXT_FILTER_TRIGRAMS: usize = 16;

/// §18 one stored update.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRecord {
    /// Its row number: one above every row stored before.
    pub row: u64,
    /// The channel's name.
    pub channel: String,
    /// `from`.
    pub from: String,
    /// `id`, printed.
    pub id: String,
    /// `clock`.
    pub clock: Time,
    /// `text`, if any (what the full-text index holds).
    pub text: Option<String>,
    /// The update as it was sent, without the terminating NUL (a `data`
    /// update without its payload).
    pub bytes: Box<[u8]>,
}

/// §1 with §18: since which stored row a profile's user may be given the
/// history of a channel (what it saw while it was in the channel).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberRecord {
    /// The profile's name.
    pub profile: String,
    /// The channel's name.
    pub channel: String,
    /// When the profile was registered: a record of a profile since
    /// expired and registered anew is not its.
    pub registered: Time,
    /// The first row it may be given.
    pub since: u64,
    /// The rows `[from, to)` it missed, the server having stopped and
    /// started again before it came back.
    pub gap: Option<(u64, u64)>,
    /// While it is away since a restart: the first row stored since.
    pub away: Option<u64>,
}

/// The rows of a backfill: `from <= row < below`, none in `gap`, and a
/// `clock` of at least `since` if given.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// The first row.
    pub from: u64,
    /// One past the last row.
    pub below: u64,
    /// Rows `[a, b)` left out.
    pub gap: Option<(u64, u64)>,
    /// §1 `since`.
    pub since: Option<Time>,
}

/// What a [`SearchJob`] asks for.
#[derive(Clone, Debug)]
pub enum SearchKind {
    /// §18 steps 2–6: the matching updates ordered by `clock`, `offset`
    /// dropped, at most `limit`.
    Search {
        /// The compiled query.
        query: Query,
        /// Step 5.
        offset: u64,
        /// Step 6.
        limit: usize,
    },
    /// §1 step 2 from the history: the latest `limit` rows of the window
    /// (and at most `bytes` of them), oldest first.
    Backfill {
        /// The rows.
        window: Window,
        /// Rows at most.
        limit: usize,
        /// Bytes at most.
        bytes: usize,
    },
}

/// §18 a search of one channel's stored history, to run off the loop.
#[derive(Clone, Debug)]
pub struct SearchJob {
    /// Tells the results apart; given back in [`SearchDone`].
    pub id: u64,
    /// The channel's name key (as the store keys rows).
    pub channel: String,
    /// What to find.
    pub kind: SearchKind,
}

/// The outcome of a [`SearchJob`].
#[derive(Clone, Debug, Default)]
pub struct SearchDone {
    /// The job's id.
    pub id: u64,
    /// The updates found, as stored (no NUL), in the order to send.
    pub results: Vec<Box<[u8]>>,
    /// Why the search could not be made, if it failed.
    pub error: Option<String>,
}

impl SearchDone {
    /// No results: what a server without a store answers.
    pub fn empty(job: &SearchJob) -> SearchDone {
        SearchDone {
            id: job.id,
            ..SearchDone::default()
        }
    }
}

/// The row counter and the searches under way.
#[derive(Default)]
struct HistoryState {
    /// The row number the next stored update gets.
    next_row: u64,
    next_job: u64,
    pending: HashMap<u64, Pending>,
    per_conn: HashMap<ConnId, usize>,
}

struct Pending {
    conn: ConnId,
    user: String,
    what: PendingKind,
}

enum PendingKind {
    /// The `search` update as echoed, without results.
    Search(Object),
    /// The recent updates to send after the stored ones, then the echo.
    Backfill(Vec<Rc<[u8]>>, Object),
}

/// The membership records of one channel, by profile name key.
#[derive(Default)]
struct Members(HashMap<Box<str>, MemberRecord>);

/// §18 the row number the next stored update gets: what a channel's
/// recent updates remember of the history.
pub(crate) fn next_row(engine: &mut Engine) -> u64 {
    engine.state.volatile.get_or_default::<HistoryState>().next_row
}

/// Start-up: the row counter and the membership records.
pub(crate) fn load(engine: &mut Engine, members: Vec<MemberRecord>, history_next: u64) {
    let state = engine.state.volatile.get_or_default::<HistoryState>();
    state.next_row = state.next_row.max(history_next).max(1);
    let next = state.next_row;
    for mut m in members {
        let Some(chan) = engine.state.find_channel(&m.channel) else {
            continue;
        };
        // Everyone is away after a restart until they come back.
        m.away = Some(m.away.unwrap_or(next).min(next));
        let key = name_key(&m.profile);
        engine
            .state
            .channel_mut(chan)
            .volatile
            .get_or_default::<Members>()
            .0
            .insert(key, m);
    }
}

/// Whether a channel keeps its history: not an anonymous one, and its
/// `search` rule (or the primary channel's) is not `NIL`.
fn recorded(engine: &Engine, chan: ChanId) -> bool {
    let c = engine.state.channel(chan);
    if c.anonymous {
        return false;
    }
    let rule = c
        .rule(K::SSearch)
        .or_else(|| engine.state.channel(engine.state.primary).rule(K::SSearch));
    rule.is_some_and(|r| *r != crate::protocol::Rule::no_one())
}

/// Whether updates of this class are kept.
fn kept_class(class: Option<K>) -> bool {
    class.is_some_and(|k| is_a(k, K::Message) || k == K::SData)
}

/// The distributed hook: keeps messages, ends the membership of a user
/// that left.
fn record(engine: &mut Engine, chan: ChanId, update: &Object, bytes: &Rc<[u8]>, out: &mut Outbox) {
    let class = update.class.known();
    if class == Some(K::Leave) {
        left(engine, chan, update, out);
        return;
    }
    if !kept_class(class) || !recorded(engine, chan) {
        return;
    }
    let stored: Box<[u8]> = if class == Some(K::SData) {
        let mut copy = update.clone();
        copy.remove(K::KPayload);
        let mut buf = Vec::with_capacity(bytes.len().min(512));
        if wire::print_object(&copy, &mut buf).is_err() {
            return;
        }
        buf.into()
    } else {
        // The very bytes sent, without the NUL.
        bytes[..bytes.len().saturating_sub(1)].into()
    };
    let mut id = Vec::new();
    if let Some(v) = update.get(K::KId)
        && wire::print_value(v, &mut id).is_err()
    {
        return;
    }
    let from = update
        .get(K::KFrom)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let text = update.get(K::KText).and_then(Value::as_str);
    let state = engine.state.volatile.get_or_default::<HistoryState>();
    let row = state.next_row;
    state.next_row += 1;
    let channel = engine.state.channel(chan).name.clone();
    let id = String::from_utf8(id).unwrap_or_default();
    if class == Some(K::SEdit) && text == Some("") {
        // An edit that empties a message removes what it said from the
        // history; the edit itself is kept, with its empty text.
        out.changes.push(Change::Redact {
            channel: channel.clone(),
            from: from.clone(),
            id: id.clone(),
        });
    }
    out.changes.push(Change::History(Box::new(HistoryRecord {
        row,
        channel,
        from,
        id,
        clock: update.get(K::KClock).and_then(Value::as_u64).unwrap_or(0),
        text: text.map(str::to_owned),
        bytes: stored,
    })));
}

/// A user left (`leave`, a kick, its last connection closing): the
/// membership of its profile ends.
fn left(engine: &mut Engine, chan: ChanId, update: &Object, out: &mut Outbox) {
    let Some(name) = update.get(K::KFrom).and_then(Value::as_str) else {
        return;
    };
    let c = engine.state.channel_mut(chan);
    let Some(members) = c.volatile.get_mut_opt::<Members>() else {
        return;
    };
    if let Some(m) = members.0.remove(&name_key(name)) {
        out.changes.push(Change::DeleteMember {
            profile: m.profile,
            channel: m.channel,
        });
    }
}

/// §1 with §18: a profile's user joined: its membership starts now, or
/// goes on after a restart (what was stored while it was away left out).
fn joined(engine: &mut Engine, user: UserId, chan: ChanId, _now: Time, out: &mut Outbox) {
    if engine.state.channel(chan).anonymous {
        return;
    }
    let name = engine.state.user(user).name.clone();
    let Some(registered) = engine.state.find_profile(&name).map(|p| p.registered_on) else {
        return;
    };
    let next = next_row(engine);
    let channel = engine.state.channel(chan).name.clone();
    let members = engine
        .state
        .channel_mut(chan)
        .volatile
        .get_or_default::<Members>();
    let key = name_key(&name);
    let record = match members.0.get(&key) {
        Some(m) if m.registered == registered && m.away.is_none() => return,
        Some(m) if m.registered == registered => {
            let away = m.away.unwrap_or(next);
            MemberRecord {
                // Only the latest gap is kept: the rows before an earlier
                // one are given up.
                since: m.gap.map_or(m.since, |(_, to)| to),
                gap: Some((away, next)),
                away: None,
                ..m.clone()
            }
        }
        _ => MemberRecord {
            profile: name,
            channel,
            registered,
            since: next,
            gap: None,
            away: None,
        },
    };
    members.0.insert(key, record.clone());
    out.changes.push(Change::Member(record));
}

/// §1: the history window of `user` in `chan`: the first row it may be
/// given and the rows it missed, from its profile's membership if it has
/// one that goes back further than `join_row` (its join in this run).
pub(crate) fn member_window(
    engine: &Engine,
    user: UserId,
    chan: ChanId,
    join_row: u64,
) -> (u64, Option<(u64, u64)>) {
    let name = &engine.state.user(user).name;
    let registered = engine.state.find_profile(name).map(|p| p.registered_on);
    let record = engine
        .state
        .channel(chan)
        .volatile
        .get::<Members>()
        .and_then(|m| m.0.get(&name_key(name)))
        .filter(|m| Some(m.registered) == registered && m.away.is_none());
    match record {
        Some(m) if m.since < join_row => (m.since, m.gap),
        _ => (join_row, None),
    }
}

/// Hands out a job for `conn`, or refuses it when too many run.
fn start_job(
    engine: &mut Engine,
    req: &Request,
    channel: &str,
    kind: SearchKind,
    what: PendingKind,
    out: &mut Outbox,
) -> Result<(), Failure> {
    let user = engine.state.user(req.user).name.clone();
    let state = engine.state.volatile.get_or_default::<HistoryState>();
    let mine = state.per_conn.get(&req.conn).copied().unwrap_or(0);
    if mine >= SEARCHES_PER_CONNECTION || state.pending.len() >= SEARCHES_IN_FLIGHT {
        return Err(Failure::new(
            K::UpdateFailure,
            format!(
                "Too many searches are under way{}; try again when they are answered.",
                if mine >= SEARCHES_PER_CONNECTION {
                    " for this connection"
                } else {
                    ""
                }
            ),
        ));
    }
    state.next_job += 1;
    let id = state.next_job;
    *state.per_conn.entry(req.conn).or_default() += 1;
    state.pending.insert(
        id,
        Pending {
            conn: req.conn,
            user,
            what,
        },
    );
    out.searches.push(SearchJob {
        id,
        channel: name_key(channel).into(),
        kind,
    });
    Ok(())
}

/// §1 step 2 from the history: a job for the rows of `window` (at most
/// `bytes` of them, counted without their NUL), after which the recent
/// updates `recent` and the echo go out.
pub(crate) fn backfill_job(
    engine: &mut Engine,
    req: &Request,
    window: Window,
    bytes: usize,
    recent: Vec<Rc<[u8]>>,
    echo: Object,
    out: &mut Outbox,
) -> Result<(), Failure> {
    let channel = req.str_field(K::KChannel).unwrap_or_default().to_owned();
    let kind = SearchKind::Backfill {
        window,
        limit: engine.config.backfill_history,
        bytes,
    };
    start_job(
        engine,
        req,
        &channel,
        kind,
        PendingKind::Backfill(recent, echo),
        out,
    )
}

/// §18 steps 2–8: compiles the query and hands the search out.
fn search(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let query = Query::compile(req.update.get(K::KQuery))?;
    let offset = match req.update.get(K::KOffset) {
        Some(Value::Integer(Integer::Small(n))) => *n,
        Some(Value::Integer(Integer::Big(_))) => u64::MAX,
        _ => 0,
    };
    let mut echo = Engine::echo(req);
    echo.remove(K::KResults);
    let channel = engine.state.channel(chan).name.clone();
    let kind = SearchKind::Search {
        query,
        offset,
        limit: engine.config.search_page.max(50),
    };
    start_job(engine, req, &channel, kind, PendingKind::Search(echo), out)
}

impl Engine {
    /// `shirakumo.mess` §18 a search (or the history part of a §1
    /// backfill) finished: step 7–8, the results go to the connection that
    /// asked, split so that each reply fits the update size limit. A
    /// result for a connection that has gone (or now belongs to another
    /// user) is dropped.
    pub fn search_done(&mut self, done: SearchDone, now: Time, out: &mut Outbox) {
        let state = self.state.volatile.get_or_default::<HistoryState>();
        let Some(pending) = state.pending.remove(&done.id) else {
            return;
        };
        if let Some(n) = state.per_conn.get_mut(&pending.conn) {
            *n -= 1;
            if *n == 0 {
                state.per_conn.remove(&pending.conn);
            }
        }
        let conn = pending.conn;
        let same_user = self
            .state
            .connection(conn)
            .and_then(|c| c.user)
            .is_some_and(|u| names_equal(&self.state.user(u).name, &pending.user));
        if !same_user {
            return;
        }
        if let Some(error) = &done.error {
            let id = match &pending.what {
                PendingKind::Search(echo) | PendingKind::Backfill(_, echo) => {
                    echo.get(K::KId).cloned().unwrap_or(Value::NIL)
                }
            };
            let f = self.failure(
                K::UpdateFailure,
                Some(id),
                format!("The history cannot be read: {error}."),
                now,
            );
            send_to(out, conn, &f);
            return;
        }
        match pending.what {
            PendingKind::Search(echo) => {
                for reply in split_results(&echo, &done.results, self.config.max_update_size) {
                    out.sends.push((conn, reply));
                }
            }
            PendingKind::Backfill(recent, echo) => {
                for row in &done.results {
                    let mut bytes = Vec::with_capacity(row.len() + 1);
                    bytes.extend_from_slice(row);
                    bytes.push(0);
                    out.sends.push((conn, bytes.into()));
                }
                for bytes in recent {
                    out.sends.push((conn, bytes));
                }
                send_to(out, conn, &echo);
            }
        }
    }
}

/// §18 steps 7–8: the `search` update with `results` holding the found
/// updates, as many replies as it takes for each to be at most `max`
/// bytes (NUL included). An update too large to fit any reply alone is
/// left out. No results make one reply with an empty list.
pub(crate) fn split_results(echo: &Object, results: &[Box<[u8]>], max: usize) -> Vec<Rc<[u8]>> {
    let mut head = Vec::with_capacity(256);
    if wire::print_object(echo, &mut head).is_err() {
        return Vec::new();
    }
    head.pop(); // The closing parenthesis.
    head.extend_from_slice(b" :results (");
    // ")" ")" NUL.
    let tail = 3;
    let mut replies = Vec::new();
    let mut current = head.clone();
    let mut count = 0;
    for row in results {
        let extra = row.len() + usize::from(count > 0);
        if current.len() + extra + tail > max {
            if count == 0 {
                continue;
            }
            current.extend_from_slice(b"))\0");
            replies.push(Rc::from(std::mem::replace(&mut current, head.clone())));
            count = 0;
            if current.len() + row.len() + tail > max {
                continue;
            }
        }
        if count > 0 {
            current.push(b' ');
        }
        current.extend_from_slice(row);
        count += 1;
    }
    if count > 0 || replies.is_empty() {
        current.extend_from_slice(b"))\0");
        replies.push(Rc::from(current));
    }
    replies
}

/// §18 step 3.1: how one query field is compared, by the field's type.
#[derive(Clone, Debug, PartialEq)]
enum Matcher {
    /// `time`: inclusive bounds, `None` for `T`.
    Time(Option<Value>, Option<Value>),
    /// `number`: numeric equality.
    Number(Value),
    /// `symbol`: the same symbol.
    Symbol(Symbol),
    /// `list`: every element appears in the candidate.
    List(Vec<Value>),
    /// `string`: any of the specs matches.
    Strings(Vec<Spec>),
    /// No stored update has this field: nothing matches.
    Never,
}

/// A compiled `search` query (§18 step 3): the fields to compare and
/// what the store may use to narrow the rows before the exact test.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    fields: Vec<(Symbol, Matcher)>,
}

/// A string match spec (§18): literal grapheme clusters, `_` and `*`.
#[derive(Clone, Debug, PartialEq)]
struct Spec(Vec<Tok>);

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Lit(String),
    Any,
    Star,
}

/// The type a stored update's field has, from the classes kept.
fn field_type(key: &Symbol) -> Option<Ty> {
    let k = key.known()?;
    if k == K::KClock {
        return Some(Ty::Integer);
    }
    [K::Message, K::SEdit, K::SData]
        .into_iter()
        .chain(
            crate::wire::Known::ALL
                .iter()
                .copied()
                .filter(|&c| is_a(c, K::Message)),
        )
        .filter_map(table::fields_of)
        .flat_map(|f| f.iter())
        .find(|f| f.key == k)
        .map(|f| f.ty)
}

fn malformed(text: impl Into<String>) -> Failure {
    Failure::new(K::MalformedUpdate, text)
}

impl Query {
    /// §18 step 3: checks the `query` initargs and compiles each value by
    /// its field's type; a value of the wrong shape is `malformed-update`.
    pub(crate) fn compile(query: Option<&Value>) -> Result<Query, Failure> {
        let items = match query {
            None => return Ok(Query::default()),
            Some(v) => v
                .as_list()
                .ok_or_else(|| malformed("The :query of search must be a list of initargs."))?,
        };
        if items.len() % 2 != 0 {
            return Err(malformed(
                "The :query of search must alternate field keywords and values.",
            ));
        }
        if items.len() / 2 > MAX_QUERY_FIELDS {
            return Err(malformed(format!(
                "A query may name at most {MAX_QUERY_FIELDS} fields."
            )));
        }
        let mut fields = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks(2) {
            let Some(key) = pair[0].as_symbol().filter(|s| s.is_keyword()) else {
                return Err(malformed(
                    "The :query of search must alternate field keywords and values.",
                ));
            };
            let value = &pair[1];
            let name = key.name().to_owned();
            let bad = |what: &str| malformed(format!("The query value for :{name} must be {what}."));
            let matcher = match (key.known(), field_type(key)) {
                (Some(K::KClock), _) => time_range(value).ok_or_else(|| {
                    bad("a list of two elements, each T or a time")
                })?,
                (_, None) => Matcher::Never,
                (_, Some(Ty::Integer)) => match value {
                    Value::Integer(_) | Value::Float(_) => Matcher::Number(value.clone()),
                    _ => time_range(value).ok_or_else(|| bad("a number"))?,
                },
                (_, Some(Ty::Str)) => strings(value).ok_or_else(|| bad("a list of strings"))??,
                (_, Some(Ty::Id)) => match value {
                    Value::Integer(_) | Value::Float(_) => Matcher::Number(value.clone()),
                    Value::Symbol(s) => Matcher::Symbol(s.clone()),
                    _ => strings(value).ok_or_else(|| bad("a number or a list of strings"))??,
                },
                (_, Some(Ty::Symbol | Ty::Boolean)) => match value {
                    Value::Symbol(s) => Matcher::Symbol(s.clone()),
                    _ => return Err(bad("a symbol")),
                },
                (_, Some(Ty::StrList | Ty::SymList | Ty::ListList | Ty::List)) => match value {
                    Value::List(l) => Matcher::List(l.clone()),
                    v if v.is_nil() => Matcher::List(Vec::new()),
                    _ => return Err(bad("a list")),
                },
            };
            fields.push((key.clone(), matcher));
        }
        Ok(Query { fields })
    }

    /// §18 step 3: whether a stored update matches every field.
    pub fn matches(&self, update: &Object) -> bool {
        self.fields.iter().all(|(key, m)| {
            let value = update
                .fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v);
            let Some(value) = value else {
                return false;
            };
            m.matches(value)
        })
    }

    /// The `clock` bounds the rows must lie in, inclusive, for the store
    /// to narrow by its (channel, clock) index.
    pub fn clock_bounds(&self) -> (u64, u64) {
        let (mut lo, mut hi) = (0u64, u64::MAX);
        for (key, m) in &self.fields {
            if key.known() != Some(K::KClock) {
                continue;
            }
            match m {
                Matcher::Time(a, b) => {
                    match a.as_ref().map(as_bound) {
                        Some(Bound::At(n)) => lo = lo.max(n),
                        Some(Bound::Above) => lo = u64::MAX,
                        _ => {}
                    }
                    match b.as_ref().map(as_bound) {
                        Some(Bound::At(n)) => hi = hi.min(n),
                        Some(Bound::Above) | None => {}
                    }
                }
                Matcher::Number(v) => match as_bound(v) {
                    Bound::At(n) => {
                        lo = lo.max(n);
                        hi = hi.min(n.saturating_add(1));
                    }
                    Bound::Above => lo = u64::MAX,
                },
                _ => {}
            }
        }
        (lo, hi)
    }

    /// Senders the rows must have, when `from` is matched by specs
    /// without wildcards: exact names.
    pub fn exact_senders(&self) -> Option<Vec<String>> {
        let mut found = None;
        for (key, m) in &self.fields {
            if key.known() != Some(K::KFrom) {
                continue;
            }
            let Matcher::Strings(specs) = m else {
                continue;
            };
            let names: Option<Vec<String>> = specs.iter().map(Spec::literal).collect();
            if let Some(names) = names {
                found = Some(names);
            }
        }
        found
    }

    /// A full-text (FTS5 trigram) query whose matches are a superset of
    /// the rows whose `text` matches: per spec, trigrams of its literal
    /// runs of three characters or more, all of them (the index keeps no
    /// positions, so each trigram is a term of its own); the specs joined
    /// by `OR`. At most [`TEXT_FILTER_TRIGRAMS`] trigrams per spec, spread
    /// over its runs: fewer terms still narrow to a superset. `None` when a
    /// spec has no such run, so the index cannot narrow.
    pub fn text_filter(&self) -> Option<String> {
        let (_, m) = self
            .fields
            .iter()
            .find(|(k, _)| k.known() == Some(K::KText))?;
        let Matcher::Strings(specs) = m else {
            return None;
        };
        if specs.is_empty() {
            return None;
        }
        let mut alternatives = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut seen = std::collections::HashSet::new();
            let mut grams: Vec<String> = Vec::new();
            for run in spec.runs() {
                let chars: Vec<char> = run.chars().collect();
                for w in chars.windows(3) {
                    let gram: String = w.iter().collect();
                    if seen.insert(gram.clone()) {
                        grams.push(gram);
                    }
                }
            }
            if grams.is_empty() {
                return None;
            }
            let n = grams.len();
            let k = n.min(TEXT_FILTER_TRIGRAMS);
            let terms: Vec<String> = (0..k)
                .map(|i| format!("\"{}\"", grams[i * n / k].replace('"', "\"\"")))
                .collect();
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        Some(alternatives.join(" OR "))
    }

    /// Whether no stored update can match (a field no kept class has).
    pub fn matches_nothing(&self) -> bool {
        self.fields.iter().any(|(_, m)| *m == Matcher::Never)
    }
}

enum Bound {
    At(u64),
    /// Larger than any stored clock.
    Above,
}

fn as_bound(v: &Value) -> Bound {
    match v {
        Value::Integer(Integer::Small(n)) => Bound::At(*n),
        Value::Float(f) if *f < u64::MAX as f64 => Bound::At(f.floor() as u64),
        _ => Bound::Above,
    }
}

/// `time`: `(low high)`, each `T` or a time.
fn time_range(value: &Value) -> Option<Matcher> {
    let items = value.as_list()?;
    let [lo, hi] = items else {
        return None;
    };
    let bound = |v: &Value| -> Option<Option<Value>> {
        match v {
            Value::Symbol(s) if s.is_t() => Some(None),
            Value::Integer(_) | Value::Float(_) => Some(Some(v.clone())),
            _ => None,
        }
    };
    Some(Matcher::Time(bound(lo)?, bound(hi)?))
}

/// `string`: a list of match specs (a lone string is taken as one).
fn strings(value: &Value) -> Option<Result<Matcher, Failure>> {
    let items: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::List(l) => l.iter().map(Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    if items.len() > MAX_SPECS {
        return Some(Err(malformed(format!(
            "A query value may hold at most {MAX_SPECS} match strings."
        ))));
    }
    if let Some(long) = items.iter().find(|s| s.chars().count() > MAX_SPEC_CHARS) {
        return Some(Err(malformed(format!(
            "A match string may have at most {MAX_SPEC_CHARS} characters, not {}.",
            long.chars().count()
        ))));
    }
    Some(Ok(Matcher::Strings(
        items.into_iter().map(Spec::parse).collect(),
    )))
}

impl Matcher {
    fn matches(&self, v: &Value) -> bool {
        match self {
            Matcher::Time(lo, hi) => {
                if !matches!(v, Value::Integer(_) | Value::Float(_)) {
                    return false;
                }
                lo.as_ref()
                    .is_none_or(|lo| num_cmp(lo, v) != Some(std::cmp::Ordering::Greater))
                    && hi
                        .as_ref()
                        .is_none_or(|hi| num_cmp(v, hi) != Some(std::cmp::Ordering::Greater))
            }
            Matcher::Number(n) => num_cmp(n, v) == Some(std::cmp::Ordering::Equal),
            Matcher::Symbol(s) => match v {
                Value::Symbol(c) => c == s,
                // NIL and the empty list are one.
                Value::List(l) => l.is_empty() && s.is_nil(),
                _ => false,
            },
            Matcher::List(items) => match v {
                Value::List(c) => items.iter().all(|q| c.iter().any(|e| element_matches(q, e))),
                v if v.is_nil() => items.is_empty(),
                _ => false,
            },
            Matcher::Strings(specs) => match v {
                Value::String(s) => {
                    let clusters = clusters(s);
                    specs.iter().any(|spec| spec.matches(&clusters))
                }
                _ => false,
            },
            Matcher::Never => false,
        }
    }
}

/// §18 `list`: elements compare recursively: a list by containment,
/// numbers by value, the rest by equality.
fn element_matches(query: &Value, candidate: &Value) -> bool {
    match (query, candidate) {
        (Value::List(q), Value::List(c)) => {
            q.iter().all(|qe| c.iter().any(|ce| element_matches(qe, ce)))
        }
        (Value::Integer(_) | Value::Float(_), _) => {
            num_cmp(query, candidate) == Some(std::cmp::Ordering::Equal)
        }
        _ => query == candidate,
    }
}

/// Compares two numbers; `None` unless both are.
fn num_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    fn int_cmp(a: &Integer, b: &Integer) -> Ordering {
        match (a, b) {
            (Integer::Small(x), Integer::Small(y)) => x.cmp(y),
            (Integer::Small(_), Integer::Big(_)) => Ordering::Less,
            (Integer::Big(_), Integer::Small(_)) => Ordering::Greater,
            (Integer::Big(x), Integer::Big(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        }
    }
    fn float(i: &Integer) -> f64 {
        match i {
            Integer::Small(n) => *n as f64,
            Integer::Big(d) => d.parse().unwrap_or(f64::INFINITY),
        }
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => Some(int_cmp(x, y)),
        (Value::Integer(x), Value::Float(y)) => float(x).partial_cmp(y),
        (Value::Float(x), Value::Integer(y)) => x.partial_cmp(&float(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

/// Whether a character continues the cluster before it: combining marks,
/// variation selectors, emoji modifiers, the joiner and what it joins.
fn extends(c: char) -> bool {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    matches!(
        get_general_category(c),
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark
    ) || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
        || c == '\u{200D}'
}

fn is_regional(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// A text cut into user-perceived characters, which `_` matches one of
/// at a time (§18: "the Unicode Collation Algorithm rules"): a base
/// character with the marks that combine with it, an emoji sequence
/// joined by ZWJ, a pair of regional indicators (a flag), CR LF.
fn clusters(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut regional_run = 0;
    for (i, c) in s.char_indices() {
        let join = match prev {
            None => false,
            Some('\u{200D}') => true,
            Some('\r') => c == '\n',
            Some(p) if is_regional(p) && is_regional(c) => regional_run % 2 == 1,
            Some(_) => extends(c),
        };
        if !join && i > 0 {
            out.push(&s[start..i]);
            start = i;
        }
        regional_run = if is_regional(c) { regional_run + 1 } else { 0 };
        prev = Some(c);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

impl Spec {
    /// `MATCH ::= CHAR*`: `\` escapes the next character, `_` is any one
    /// character, `*` any number of them.
    fn parse(text: &str) -> Spec {
        let mut toks = Vec::new();
        let mut literal = String::new();
        let flush = |literal: &mut String, toks: &mut Vec<Tok>| {
            for c in clusters(literal) {
                toks.push(Tok::Lit(c.to_owned()));
            }
            literal.clear();
        };
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    // A trailing backslash stands for itself.
                    literal.push(chars.next().unwrap_or('\\'));
                }
                '_' | '*' => {
                    flush(&mut literal, &mut toks);
                    toks.push(if c == '_' { Tok::Any } else { Tok::Star });
                }
                c => literal.push(c),
            }
        }
        flush(&mut literal, &mut toks);
        Spec(toks)
    }

    /// The spec's text when it has no wildcard.
    fn literal(&self) -> Option<String> {
        self.0
            .iter()
            .map(|t| match t {
                Tok::Lit(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Its runs of literal text between wildcards.
    fn runs(&self) -> Vec<String> {
        let mut runs = vec![String::new()];
        for t in &self.0 {
            match t {
                Tok::Lit(s) => runs.last_mut().expect("never empty").push_str(s),
                _ => runs.push(String::new()),
            }
        }
        runs.retain(|r| !r.is_empty());
        runs
    }

    /// Matches the whole of `text` (cut into clusters): the usual
    /// wildcard walk, going back only to the last `*`, so at most
    /// spec × text steps.
    fn matches(&self, text: &[&str]) -> bool {
        let p = &self.0;
        let (mut i, mut j) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while j < text.len() {
            match p.get(i) {
                Some(Tok::Star) => {
                    star = Some((i, j));
                    i += 1;
                    continue;
                }
                Some(Tok::Any) => {
                    i += 1;
                    j += 1;
                    continue;
                }
                Some(Tok::Lit(l)) if *l == text[j] => {
                    i += 1;
                    j += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            }
        }
        p[i.min(p.len())..].iter().all(|t| *t == Tok::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(spec: &str, text: &str) -> bool {
        Spec::parse(spec).matches(&clusters(text))
    }

    #[test]
    fn match_specs_follow_the_grammar_18() {
        assert!(m("hello", "hello"));
        assert!(!m("hello", "hello there"), "a spec matches the whole text");
        assert!(m("hel*", "hello there"));
        assert!(m("*there", "hello there"));
        assert!(m("*llo th*", "hello there"));
        assert!(m("h_llo", "hallo"));
        assert!(!m("h_llo", "hllo"));
        assert!(m("*", ""));
        assert!(!m("_", ""));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\_b", "a_b"));
        assert!(!m("a\\_b", "axb"));
        assert!(m("a\\\\b", "a\\b"));
        assert!(m("*a*a*a*", "banana!a"));
        assert!(!m("*a*a*a*a*", "banana"));
    }

    #[test]
    fn any_matches_one_user_perceived_character_18() {
        // e + combining acute accent is one character.
        assert!(m("caf_", "cafe\u{301}"));
        assert!(!m("caf__", "cafe\u{301}"));
        // A flag (two regional indicators) and a ZWJ family are one each.
        assert!(m("_", "\u{1F1EF}\u{1F1F5}"));
        assert!(m("_", "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"));
        assert!(m("__", "\u{1F1EF}\u{1F1F5}\u{1F1EB}\u{1F1F7}"));
    }

    #[test]
    fn symbols_match_the_same_symbol_and_lists_recurse_18_3() {
        let sym = Matcher::Symbol(Symbol::Known(K::T));
        assert!(sym.matches(&Value::T));
        assert!(!sym.matches(&Value::NIL));
        assert!(!sym.matches(&Value::string("t")));
        let nil = Matcher::Symbol(Symbol::Known(K::Nil));
        assert!(nil.matches(&Value::List(Vec::new())), "NIL is the empty list");
        let list = Matcher::List(vec![Value::List(vec![Value::int(1)]), Value::sym(K::T)]);
        let candidate = Value::List(vec![
            Value::sym(K::T),
            Value::List(vec![Value::int(2), Value::Float(1.0)]),
        ]);
        assert!(list.matches(&candidate), "nested lists by containment, numbers by value");
        assert!(!list.matches(&Value::List(vec![Value::sym(K::T)])));
    }

    #[test]
    fn text_filter_takes_trigrams_of_literal_runs_of_three_or_more_18() {
        let q = Query::compile(Some(&Value::List(vec![
            Value::sym(K::KText),
            Value::List(vec![Value::string("*hello*wor*"), Value::string("a\"bc_d")]),
        ])))
        .unwrap();
        assert_eq!(
            q.text_filter().as_deref(),
            Some(
                "(\"hel\" AND \"ell\" AND \"llo\" AND \"wor\") OR (\"a\"\"b\" AND \"\"\"bc\")"
            )
        );
        let q = Query::compile(Some(&Value::List(vec![
            Value::sym(K::KText),
            Value::List(vec![Value::string("*hello*"), Value::string("ab*")]),
        ])))
        .unwrap();
        assert_eq!(q.text_filter(), None, "ab* has no run the index can use");
        let long = "x".repeat(10) + &"abcdefghijklmnopqrstuvwxyz".repeat(4);
        let q = Query::compile(Some(&Value::List(vec![
            Value::sym(K::KText),
            Value::List(vec![Value::string(long.as_str())]),
        ])))
        .unwrap();
        let filter = q.text_filter().unwrap();
        assert_eq!(
            filter.matches(" AND ").count() + 1,
            TEXT_FILTER_TRIGRAMS,
            "a long run gives a bounded number of distinct trigrams: {filter}"
        );
        assert!(filter.starts_with("(\"xxx\""), "{filter}");
    }

    #[test]
    fn results_are_split_to_fit_the_update_size_limit_18_7() {
        let echo = Object::new(K::SSearch).with(K::KId, 1u64);
        let rows: Vec<Box<[u8]>> = (0..10)
            .map(|i| format!("(message :id {i} :text \"xxxxxxxxxx\")").into_bytes().into())
            .collect();
        let all = split_results(&echo, &rows, 1 << 20);
        assert_eq!(all.len(), 1);
        let parts = split_results(&echo, &rows, 120);
        assert!(parts.len() > 1);
        let mut seen = 0;
        for p in &parts {
            assert!(p.len() <= 120);
            let o = wire::read_object(&p[..p.len() - 1]).unwrap();
            seen += o.get(K::KResults).and_then(Value::as_list).unwrap().len();
        }
        assert_eq!(seen, 10);
        let none = split_results(&echo, &[], 100);
        assert_eq!(none.len(), 1);
        let o = wire::read_object(&none[0][..none[0].len() - 1]).unwrap();
        assert!(o.get_raw(K::KResults).is_some());
    }
}
