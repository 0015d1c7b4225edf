//! shirakumo-emotes (§3 of `shirakumo.mess`): server-side emoticons per
//! channel. The primary channel and the regular channels created by a
//! registered user hold an emotes map; `emote` adds, replaces or (with an
//! empty payload) removes one, `emotes` sends a client those it lacks.
//!
//! Each emote is kept once, as the printed `emote` update the server
//! answers `emotes` with: the base-64 text sits inside those bytes (base
//! 64 needs no escaping), and every answer queues the same shared buffer.
//! Emotes are stored in a table of their own, and every change is
//! confirmed only once committed.

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::ChanId;
use crate::engine::undo::Undo;
use crate::engine::{Change, EmoteRecord, Engine, Failure, Outbox, Request, Time, send_to};
use crate::protocol::payload::base64_len;
use crate::protocol::{NameKey, Ty, name_key, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value, print_update};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

/// §3: the `emotes` and `emote` updates (and `emote-list-full`).
pub(crate) const EXTENSION: Extension = Extension {
    // The prose spells it `shirakumo-emotes`, the sexpr file
    // `shirakumo-emote`; clients use either.
    names: &["shirakumo-emotes", "shirakumo-emote"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SEmotes,
            // Step 1: without a channel, the primary channel's.
            fields: update_fields!(opt(K::KChannel, Ty::Str), opt(K::KNames, Ty::StrList)),
            handler: emotes,
            checks: Checks::MEMBER,
            // §3: "the default permissions for emotes to anyone".
            rules: Defaults {
                primary: R::Anyone,
                regular: R::Anyone,
                anonymous: R::Anyone,
            },
        },
        ClassDef {
            class: K::SEmote,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KContentType, Ty::Str),
                req(K::KName, Ty::Str),
                req(K::KPayload, Ty::Str),
            ),
            handler: emote,
            // Step 1: not-in-channel for outsiders.
            checks: Checks::MEMBER,
            // §3: "... and emote to only the registrant".
            rules: Defaults {
                primary: R::Registrant,
                regular: R::Registrant,
                anonymous: R::Registrant,
            },
        },
    ],
};

/// §3 step 3 of `emote`: the image types an emote may have.
pub const EMOTE_TYPES: &[&str] = &["image/png", "image/gif", "image/jpeg", "image/webp"];

/// Longest emote name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// §3 one emote of a channel.
#[derive(Clone, Debug)]
pub(crate) struct Emote {
    /// Its name, as given.
    name: Box<str>,
    /// The content type of its image.
    content_type: Box<str>,
    /// When it was added.
    added: Time,
    /// The `emote` update that answers `emotes` (§3 step 5), printed.
    printed: Rc<[u8]>,
    /// Where the base-64 payload is in `printed`.
    payload: Range<usize>,
}

impl Emote {
    /// The base-64 image.
    fn payload(&self) -> &str {
        // Built from a `&str` at exactly this range (see `make`).
        std::str::from_utf8(&self.printed[self.payload.clone()]).unwrap_or_default()
    }

    fn record(&self, channel: &str) -> EmoteRecord {
        EmoteRecord {
            channel: channel.to_owned(),
            name: self.name.to_string(),
            content_type: self.content_type.to_string(),
            payload: self.payload().to_owned(),
            added: self.added,
        }
    }
}

/// §3 a channel's emotes map, by case-folded name.
#[derive(Debug, Default)]
pub(crate) struct Emotes {
    map: BTreeMap<NameKey, Emote>,
    /// Printed bytes of all of them.
    bytes: usize,
}

impl Emotes {
    fn get(&self, name: &str) -> Option<&Emote> {
        self.map.get(&name_key(name))
    }

    fn insert(&mut self, emote: Emote) -> Option<Emote> {
        self.bytes += emote.printed.len();
        let before = self.map.insert(name_key(&emote.name), emote);
        if let Some(b) = &before {
            self.bytes -= b.printed.len();
        }
        before
    }

    fn remove(&mut self, name: &str) -> Option<Emote> {
        let before = self.map.remove(&name_key(name));
        if let Some(b) = &before {
            self.bytes -= b.printed.len();
        }
        before
    }

    /// §3 number of emotes, for the size restriction.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// §3 true if an emote of that name (any case) is here.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// §3 what is wrong with an emote name, if anything: it must be 1 to 64
/// characters without colons (§3: clients find `:name:` in messages),
/// white space or control characters.
pub fn emote_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.chars().nth(MAX_NAME_CHARS).is_some() {
        Some("is longer than 64 characters")
    } else if name.contains(':') {
        Some("contains a colon")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains white space or control characters")
    } else {
        None
    }
}

/// True for an accepted emote content type (any case).
fn is_emote_type(ty: &str) -> bool {
    EMOTE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(ty))
}

/// §20 (reactions): true if `name` is an emote of `chan` or of the
/// primary channel.
pub(crate) fn is_emote(engine: &Engine, chan: ChanId, name: &str) -> bool {
    let s = &engine.state;
    s.channel(chan).emotes.contains(name) || s.channel(s.primary).emotes.contains(name)
}

/// Prints the `emote` update that answers `emotes` for this emote, with
/// the payload last so that its place in the bytes is known.
fn make(
    engine: &mut Engine,
    channel: &str,
    name: &str,
    content_type: &str,
    payload: String,
    added: Time,
) -> Option<Emote> {
    let len = payload.len();
    let update = engine
        .server_update(K::SEmote, added)
        .with(K::KChannel, channel)
        .with(K::KName, name)
        .with(K::KContentType, content_type)
        .with(K::KPayload, Value::String(payload));
    let mut buf = Vec::with_capacity(len + 160);
    print_update(&update, &mut buf).ok()?;
    // The print ends with `"payload")` and NUL.
    let end = buf.len().checked_sub(3)?;
    let range = end.checked_sub(len)?..end;
    let Some(Value::String(payload)) = update.get(K::KPayload) else {
        return None;
    };
    if buf.get(range.clone()) != Some(payload.as_bytes()) {
        return None;
    }
    Some(Emote {
        name: name.into(),
        content_type: content_type.into(),
        added,
        printed: Rc::from(buf),
        payload: range,
    })
}

/// §3 whether `chan` holds an emotes map: the primary channel, and the
/// non-anonymous channels whose registrant is registered (step 3).
fn holds_emotes(engine: &Engine, chan: ChanId) -> Result<(), Failure> {
    let s = &engine.state;
    let c = s.channel(chan);
    if chan == s.primary {
        return Ok(());
    }
    if c.anonymous {
        return Err(Failure::new(
            K::InsufficientPermissions,
            "Anonymous channels have no emotes.",
        ));
    }
    if s.find_profile(&c.registrant).is_none() {
        return Err(Failure::new(
            K::InsufficientPermissions,
            format!(
                "{:?} was not created by a registered user and has no emotes.",
                c.name
            ),
        ));
    }
    Ok(())
}

/// §3 `emotes`, steps 1–6.
fn emotes(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    // Step 1 (the rules of the primary channel applied already, §5.1.8).
    let chan = if req.str_field(K::KChannel).is_some() {
        engine.channel_of(req)?
    } else {
        let primary = engine.state.primary;
        let name = engine.state.channel(primary).name.clone();
        req.update.set(K::KChannel, name);
        primary
    };
    // Step 2.
    if !engine.state.in_channel(req.user, chan) {
        return Err(Failure::new(
            K::NotInChannel,
            format!("You are not in {:?}.", engine.state.channel(chan).name),
        ));
    }
    // Step 3.
    holds_emotes(engine, chan)?;
    // Step 4: what the client knows, case-folded (one pass over the list).
    let known: HashSet<NameKey> = req
        .update
        .get(K::KNames)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(name_key)
        .collect();
    // Step 5: the shared printed updates, nothing copied.
    let map = &engine.state.channel(chan).emotes.map;
    out.sends.reserve(map.len().saturating_sub(known.len()) + 1);
    for (key, e) in map {
        if !known.contains(key) {
            out.sends.push((req.conn, e.printed.clone()));
        }
    }
    // Step 6.
    let names: Vec<Value> = map.values().map(|e| Value::string(&*e.name)).collect();
    let mut reply = Engine::echo(req);
    reply.set(K::KNames, Value::List(names));
    send_to(out, req.conn, &reply);
    Ok(())
}

/// §3 `emote`, steps 2–6 (step 1 was §5.1).
fn emote(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    holds_emotes(engine, chan)?;
    let name = req.str_field(K::KName).unwrap_or_default();
    if let Some(problem) = emote_name_problem(name) {
        return Err(Failure::new(
            K::MalformedUpdate,
            format!("The emote name {name:?} {problem}."),
        ));
    }
    let channel = &engine.state.channel(chan);
    let existing = channel.emotes.get(name);
    // Step 2.
    let max = engine.config.max_emotes;
    if existing.is_none() && channel.emotes.len() >= max {
        return Err(Failure::new(
            K::SEmoteListFull,
            format!(
                "{:?} holds its maximum of {max} emotes; remove one first.",
                channel.name
            ),
        ));
    }
    // Step 3.
    let ty = req.str_field(K::KContentType).unwrap_or_default();
    if !is_emote_type(ty) {
        let allowed: Vec<String> = EMOTE_TYPES.iter().map(|t| t.to_string()).collect();
        let ty = ty.to_owned();
        super::data::send_bad_content_type(engine, req, &ty, &allowed, out);
        return Ok(());
    }
    // Step 4.
    let payload = req.str_field(K::KPayload).unwrap_or_default();
    let Some(size) = base64_len(payload) else {
        return Err(Failure::new(
            K::MalformedUpdate,
            "The :payload of emote must be base-64 text (RFC 4648, padded, no white space).",
        ));
    };
    let max_size = engine.config.max_emote_size;
    if size > max_size {
        return Err(Failure::new(
            K::UpdateTooLong,
            format!("The emote image has {size} bytes, more than the {max_size} allowed."),
        ));
    }
    engine.refuse_while_store_fails()?;
    // Step 5.
    let chan_name = engine.state.channel(chan).name.clone();
    let name = name.to_owned();
    let change;
    let before;
    if payload.is_empty() {
        before = engine.state.channel_mut(chan).emotes.remove(&name);
        change = before.as_ref().map(|_| Change::DeleteEmote {
            channel: chan_name.clone(),
            name: name.clone(),
        });
    } else {
        let ty = ty.to_ascii_lowercase();
        let payload = payload.to_owned();
        let Some(e) = make(engine, &chan_name, &name, &ty, payload, req.now) else {
            return Err(Failure::new(
                K::UpdateFailure,
                "The emote could not be prepared for sending.",
            ));
        };
        let emotes = &engine.state.channel(chan).emotes;
        let old = emotes.get(&name).map_or(0, |e| e.printed.len());
        let total = emotes.bytes - old + e.printed.len();
        let budget = engine.config.max_emotes_bytes;
        if total > budget {
            return Err(Failure::new(
                K::SEmoteListFull,
                format!(
                    "The emotes of {chan_name:?} would take {total} bytes, more than the \
                     {budget} allowed; remove some first."
                ),
            ));
        }
        change = Some(Change::Emote(e.record(&chan_name)));
        before = engine.state.channel_mut(chan).emotes.insert(e);
    }
    // Step 6, confirmed once the change is committed.
    let first = out.sends.len();
    engine.distribute(req, out)?;
    if let Some(change) = change {
        out.changes.push(change);
        let undo = Undo::Emote {
            channel: chan_name,
            name,
            before,
        };
        engine.confirm(out, first, req.conn, req.id(), undo);
    }
    Ok(())
}

/// §3 undoes an emote change the store could not save: `before` is put
/// back (or the emote removed), and that is recorded for the store.
pub(crate) fn restore(
    engine: &mut Engine,
    channel: &str,
    name: &str,
    before: Option<Emote>,
    out: &mut Outbox,
) {
    let Some(chan) = engine.state.find_channel(channel) else {
        return;
    };
    let channel = engine.state.channel(chan).name.clone();
    let emotes = &mut engine.state.channel_mut(chan).emotes;
    match before {
        Some(e) => {
            out.changes.push(Change::Emote(e.record(&channel)));
            emotes.insert(e);
        }
        None => {
            emotes.remove(name);
            out.changes.push(Change::DeleteEmote {
                channel,
                name: name.to_owned(),
            });
        }
    }
}

/// §3 puts stored emotes into their channels (start-up); records for channels
/// that do not exist, or that are not valid, are left out. An emote of
/// the primary channel already there (from `--emotes-dir`) stays.
pub(crate) fn load(engine: &mut Engine, records: Vec<EmoteRecord>) {
    for r in records {
        let Some(chan) = engine.state.find_channel(&r.channel) else {
            continue;
        };
        let c = engine.state.channel(chan);
        if c.anonymous || c.emotes.contains(&r.name) {
            continue;
        }
        if emote_name_problem(&r.name).is_some()
            || !is_emote_type(&r.content_type)
            || base64_len(&r.payload).is_none_or(|n| n == 0)
        {
            log::warn!(
                "stored emote {:?} of {:?} is not valid; left out",
                r.name,
                r.channel
            );
            continue;
        }
        let name = engine.state.channel(chan).name.clone();
        if let Some(e) = make(engine, &name, &r.name, &r.content_type, r.payload, r.added) {
            engine.state.channel_mut(chan).emotes.insert(e);
        }
    }
}

impl Engine {
    /// `--emotes-dir`: adds emotes to the primary channel at start-up,
    /// each checked as an `emote` update would be (§3 steps 2–4); the
    /// error names the emote and what is wrong.
    pub fn add_primary_emotes(&mut self, records: Vec<EmoteRecord>) -> Result<(), String> {
        let primary = self.state.primary;
        let channel = self.state.channel(primary).name.clone();
        for r in records {
            if let Some(problem) = emote_name_problem(&r.name) {
                return Err(format!("the emote name {:?} {problem}", r.name));
            }
            if !is_emote_type(&r.content_type) {
                return Err(format!(
                    "the emote {:?} has the content type {:?}, not one of {}",
                    r.name,
                    r.content_type,
                    EMOTE_TYPES.join(", ")
                ));
            }
            let size = base64_len(&r.payload)
                .ok_or_else(|| format!("the emote {:?} is not base 64", r.name))?;
            if size > self.config.max_emote_size {
                return Err(format!(
                    "the emote {:?} has {size} bytes, more than --max-emote-size {}",
                    r.name, self.config.max_emote_size
                ));
            }
            let emotes = &self.state.channel(primary).emotes;
            if emotes.contains(&r.name) {
                return Err(format!(
                    "the emote {:?} is there twice (names ignore case)",
                    r.name
                ));
            }
            if emotes.len() >= self.config.max_emotes {
                return Err(format!(
                    "more than --max-emotes {} emotes",
                    self.config.max_emotes
                ));
            }
            let e = make(
                self,
                &channel,
                &r.name,
                &r.content_type,
                r.payload,
                r.added,
            )
            .ok_or_else(|| format!("the emote {:?} cannot be printed", r.name))?;
            let emotes = &mut self.state.channel_mut(primary).emotes;
            emotes.insert(e);
            if emotes.bytes > self.config.max_emotes_bytes {
                return Err(format!(
                    "the emotes take more than --max-emotes-bytes {}",
                    self.config.max_emotes_bytes
                ));
            }
        }
        Ok(())
    }

    /// §3 the emote names of a channel, as given, in case-folded order;
    /// `None` if there is no such channel.
    pub fn emote_names(&self, channel: &str) -> Option<Vec<String>> {
        let chan = self.state.find_channel(channel)?;
        Some(
            self.state
                .channel(chan)
                .emotes
                .map
                .values()
                .map(|e| e.name.to_string())
                .collect(),
        )
    }

    /// §3 one emote of a channel as its stored record.
    pub fn emote(&self, channel: &str, name: &str) -> Option<EmoteRecord> {
        let chan = self.state.find_channel(channel)?;
        let c = self.state.channel(chan);
        c.emotes.get(name).map(|e| e.record(&c.name))
    }
}
