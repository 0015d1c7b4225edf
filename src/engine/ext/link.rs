//! shirakumo-link (§12 of `shirakumo.mess`): instead of distributing a
//! `data` update (§2 step 3), the server saves its payload where HTTP
//! serves it under an unguessable name and distributes a `message` whose
//! text is the payload's URL and whose `link` field is its content type.
//!
//! The engine decides and accounts; the store writes the file and its
//! row ([`Change::Link`]), and the message goes out once that is
//! committed, like any confirmed change: nobody is sent a URL that does
//! not serve yet. Payloads go with their channel.

use crate::engine::random::random_hex;
use crate::engine::registry::{Extension, Hooks};
use crate::engine::state::{ChanId, Channel};
use crate::engine::undo::Undo;
use crate::engine::{Change, Engine, Failure, Outbox, Request, Time};
use crate::protocol::payload::base64_decode;
use crate::protocol::{Ty, opt};
use crate::wire::{Known as K, Object};

/// §12: the `link` field of `message`. Advertised only while links are
/// on (see [`enabled`]).
pub(crate) const EXTENSION: Extension = Extension {
    names: &[NAME],
    hooks: Hooks::NONE,
    fields: &[(K::Message, opt(K::KLink, Ty::Str))],
    classes: &[],
};

/// The name §12 is advertised under.
pub(crate) const NAME: &str = "shirakumo-link";

/// The longest file name kept for a payload's `Content-Disposition`, in
/// bytes; a longer one is cut at a character boundary.
pub const MAX_FILENAME: usize = 255;

/// Bytes of payloads the engine lets wait for the store at once: beyond
/// it, a `data` update is refused until some are saved. This bounds the
/// memory payloads take while commits are slow or failing.
pub const MAX_UNSAVED_BYTES: u64 = 64 << 20;

/// A payload counts against `--max-link-bytes` with its size rounded up
/// to this, what a file takes on disk at least.
pub const BLOCK: u64 = 4096;

/// What a payload counts against `--max-link-bytes`.
pub fn cost(size: u64) -> u64 {
    size.div_ceil(BLOCK).max(1) * BLOCK
}

/// `shirakumo.mess` §12 a payload to save: the file the store writes
/// (under the data directory's `links/`) and the row that keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkRecord {
    /// The unguessable name: 32 lower-case hex digits (128 random bits),
    /// the last part of its URL and its file's name.
    pub name: String,
    /// The channel it was shared in.
    pub channel: String,
    /// False for an anonymous channel (§2.4.2), whose payloads do not
    /// outlive a restart, since the channel does not.
    pub durable: bool,
    /// Its content type, as served.
    pub content_type: String,
    /// The file name the sender gave, if any, for `Content-Disposition`.
    pub filename: Option<String>,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// When it was shared.
    pub created: Time,
}

/// What one channel's payloads take, as counted against the cap.
#[derive(Default)]
struct ChannelLinks {
    cost: u64,
}

/// What all payloads take, kept on the engine's state.
#[derive(Default)]
struct Links {
    /// Counted against `--max-link-bytes`, saved or not.
    cost: u64,
    /// Bytes of payloads not yet confirmed saved.
    unsaved: u64,
}

/// §12 is on: the server has a URL to give payloads and room for them.
pub(crate) fn enabled(engine: &Engine) -> bool {
    !engine.config.link_url_prefix.is_empty() && engine.config.max_link_bytes > 0
}

/// §12 steps 1–4, for a `data` update that passed §2 steps 1–2 (its
/// content type is accepted, its payload is base 64).
pub(crate) fn share(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let payload = base64_decode(req.str_field(K::KPayload).unwrap_or_default()).ok_or_else(|| {
        Failure::new(
            K::MalformedUpdate,
            "The :payload of data must be base-64 text (RFC 4648, padded, no white space).",
        )
    })?;
    engine.refuse_while_store_fails()?;
    let size = payload.len() as u64;
    let cost = cost(size);
    let max = engine.config.max_link_bytes;
    let links = engine.state.volatile.get_or_default::<Links>();
    if links.cost + cost > max {
        return Err(Failure::new(
            K::UpdateFailure,
            format!(
                "The server's room for shared files is full ({} of {max} bytes taken); this \
                 file of {size} bytes was not shared.",
                links.cost
            ),
        ));
    }
    if links.unsaved + size > MAX_UNSAVED_BYTES {
        return Err(Failure::new(
            K::UpdateFailure,
            "The server is still saving other shared files; send this one again in a moment.",
        ));
    }
    let Some(name) = random_hex(16) else {
        return Err(Failure::new(
            K::UpdateFailure,
            "The server has no randomness to name the file with; it was not shared.",
        ));
    };
    let c = engine.state.channel(chan);
    let channel = c.name.clone();
    let durable = !c.anonymous;
    // Served as its media type alone, which §2 step 2 matched against
    // the accepted ones: parameters are free text, and would go into an
    // HTTP header.
    let content_type = req
        .str_field(K::KContentType)
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let filename = req.str_field(K::KFilename).map(short_filename);
    // Step 2: the message, with the data update's id, sender and clock,
    // so that the sender knows it for the answer to its update.
    let mut message = Object::new(K::Message);
    for key in [K::KId, K::KClock, K::KFrom] {
        if let Some(v) = req.update.get(key) {
            message.push(key, v.clone());
        }
    }
    message.push(K::KChannel, channel.as_str());
    let url = format!("{}{name}", engine.config.link_url_prefix);
    message.push(K::KText, url);
    message.push(K::KLink, content_type.as_str());
    req.update = message;
    req.class = K::Message;
    // Step 3, confirmed once the payload is saved; step 4: the data
    // update goes no further.
    let first = out.sends.len();
    engine.distribute(req, out)?;
    out.changes.push(Change::Link(Box::new(LinkRecord {
        name: name.clone(),
        channel,
        durable,
        content_type,
        filename,
        payload,
        created: req.now,
    })));
    let links = engine.state.volatile.get_or_default::<Links>();
    links.cost += cost;
    links.unsaved += size;
    channel_links(engine, chan).cost += cost;
    let undo = Undo::Link {
        name,
        channel: engine.state.channel(chan).name.clone(),
        size,
    };
    engine.confirm(out, first, req.conn, req.id(), undo);
    Ok(())
}

/// A file name cut to [`MAX_FILENAME`] bytes at a character boundary.
fn short_filename(name: &str) -> String {
    let mut end = name.len().min(MAX_FILENAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// A payload's change was committed: it is saved.
pub(crate) fn saved(engine: &mut Engine, size: u64) {
    let links = engine.state.volatile.get_or_default::<Links>();
    links.unsaved = links.unsaved.saturating_sub(size);
}

/// Undoes sharing a payload the store could not save: it no longer
/// counts, and the store forgets it (the message carrying its URL is
/// withdrawn by the caller).
pub(crate) fn unshare(engine: &mut Engine, name: String, channel: &str, size: u64, out: &mut Outbox) {
    let cost = cost(size);
    let links = engine.state.volatile.get_or_default::<Links>();
    links.cost = links.cost.saturating_sub(cost);
    links.unsaved = links.unsaved.saturating_sub(size);
    if let Some(chan) = engine.state.find_channel(channel)
        && let Some(c) = engine
            .state
            .channel_mut(chan)
            .volatile
            .get_mut_opt::<ChannelLinks>()
    {
        c.cost = c.cost.saturating_sub(cost);
    }
    out.changes.push(Change::DeleteLink(name));
}

/// §12 "The server must delete all data payloads if a channel is
/// deleted": called with every channel removed (emptied anonymous,
/// expired, destroyed, or never saved).
pub(crate) fn channel_removed(engine: &mut Engine, channel: &Channel, out: &mut Outbox) {
    let Some(c) = channel.volatile.get::<ChannelLinks>() else {
        return;
    };
    let links = engine.state.volatile.get_or_default::<Links>();
    links.cost = links.cost.saturating_sub(c.cost);
    out.changes.push(Change::DeleteLinks(channel.name.clone()));
}

/// Start-up: what the stored payloads take, per channel (`(channel,
/// cost)`); payloads of a channel that no longer exists still count, as
/// their files are there.
pub(crate) fn load(engine: &mut Engine, stored: Vec<(String, u64)>) {
    for (channel, cost) in stored {
        engine.state.volatile.get_or_default::<Links>().cost += cost;
        if let Some(chan) = engine.state.find_channel(&channel) {
            channel_links(engine, chan).cost += cost;
        }
    }
}

fn channel_links(engine: &mut Engine, chan: ChanId) -> &mut ChannelLinks {
    engine
        .state
        .channel_mut(chan)
        .volatile
        .get_or_default::<ChannelLinks>()
}

/// Bytes counted against `--max-link-bytes` now (for the metrics and
/// tests).
pub(crate) fn stored_cost(engine: &Engine) -> u64 {
    engine.state.volatile.get::<Links>().map_or(0, |l| l.cost)
}
