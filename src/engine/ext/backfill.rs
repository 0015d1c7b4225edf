//! shirakumo-backfill (§1 of `shirakumo.mess`): a member catches up on
//! what its channel saw since it last joined. Each channel keeps the
//! bytes of its last distributed updates, the very buffers that were sent
//! (`backlog.rs`); `typing` notices are not kept, they are stale in
//! seconds (§23).

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::{ChanId, UserId};
use crate::engine::{Engine, Failure, Outbox, Request, Time, send_to};
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Object, Value};
use std::rc::Rc;

/// §1: the `backfill` update, and the hooks that keep the backlog.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-backfill"],
    hooks: Hooks {
        distributed: Some(record),
        on_join: Some(joined),
        ..Hooks::NONE
    },
    fields: &[],
    classes: &[ClassDef {
        class: K::SBackfill,
        fields: update_fields!(req(K::KChannel, Ty::Str), opt(K::KSince, Ty::Integer)),
        handler: backfill,
        // Step 1: not-in-channel for outsiders.
        checks: Checks::MEMBER,
        rules: Defaults {
            primary: R::Registrant,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};

/// Keeps an update that went out to a channel.
fn record(engine: &mut Engine, chan: ChanId, update: &Object, bytes: &Rc<[u8]>, _out: &mut Outbox) {
    let class = update.class.known();
    if class == Some(K::STyping) {
        return;
    }
    let clock = update.get(K::KClock).and_then(Value::as_u64).unwrap_or(0);
    let (count, max) = (engine.config.backfill_count, engine.config.backfill_bytes);
    // A join's `from` is the user who joined: that join, and what came
    // before it, is not for that user (step 2).
    let joiner = match class {
        Some(K::Join) => update
            .get(K::KFrom)
            .and_then(Value::as_str)
            .and_then(|name| engine.state.find_user(name)),
        _ => None,
    };
    let mark = super::history::next_row(engine);
    let backlog = &mut engine.state.channel_mut(chan).backlog;
    backlog.record(clock, bytes, count, max, mark);
    if let Some(user) = joiner {
        backlog.joined_with_last(user);
    }
}

/// A member joined: what it may be given starts now.
fn joined(engine: &mut Engine, user: UserId, chan: ChanId, _now: Time, _out: &mut Outbox) {
    let mark = super::history::next_row(engine);
    engine.state.channel_mut(chan).backlog.joined(user, mark);
}

/// §1 steps 2–3: what was distributed since the user last joined (and
/// since `since`), to this connection only, then the update itself.
fn backfill(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    // `since NIL` is no bound.
    let since = req.update.get(K::KSince).and_then(Value::as_u64);
    let next_mark = super::history::next_row(engine);
    let backlog = &engine.state.channel(chan).backlog;
    let replay = backlog.replay_with_marks(req.user, since, next_mark);
    let (from, gap) = super::history::member_window(engine, req.user, chan, replay.join_mark);
    // The stored history (`shirakumo.mess` §18) gives what the recent
    // updates no longer hold, or what came before a restart; never
    // before the member's join.
    // One backfill sends at most `--backfill-bytes`, recent updates first.
    let recent_bytes: usize = replay.updates.iter().map(|b| b.len()).sum();
    let room = engine.config.backfill_bytes.saturating_sub(recent_bytes);
    if replay.complete && from >= replay.join_mark || from >= replay.first_mark || room == 0 {
        for bytes in replay.updates {
            out.sends.push((req.conn, bytes.clone()));
        }
        send_to(out, req.conn, &Engine::echo(req));
        return Ok(());
    }
    let window = super::history::Window {
        from,
        below: replay.first_mark,
        gap,
        since,
    };
    let recent = replay.updates.into_iter().cloned().collect();
    super::history::backfill_job(engine, req, window, room, recent, Engine::echo(req), out)
}
