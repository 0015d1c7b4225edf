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
use std::collections::VecDeque;
use std::rc::Rc;

/// What all channels' backlogs hold together, against
/// `--backfill-total-bytes`: beyond it, the oldest update kept by any
/// channel goes first.
#[derive(Default)]
struct Budget {
    /// Bytes kept by all backlogs.
    bytes: usize,
    /// Updates kept by all backlogs.
    kept: usize,
    /// The number the next kept update gets.
    next: u64,
    /// The kept updates by number, oldest first, with their channel; some
    /// may have gone since (dropped by their channel's own limits, or with
    /// their channel), and are skipped.
    order: VecDeque<(ChanId, u64)>,
}

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
    let budget = engine.state.volatile.get_or_default::<Budget>();
    let global = budget.next;
    budget.next += 1;
    let backlog = &mut engine.state.channel_mut(chan).backlog;
    let done = backlog.record(clock, bytes, (count, max), mark, global);
    if let Some(user) = joiner {
        backlog.joined_with_last(user);
    }
    let budget = engine.state.volatile.get_or_default::<Budget>();
    budget.bytes -= done.dropped_bytes;
    budget.kept -= done.dropped;
    if done.kept {
        budget.bytes += bytes.len();
        budget.kept += 1;
        budget.order.push_back((chan, global));
    }
    enforce_budget(engine);
}

/// Drops the oldest updates kept by any channel while all backlogs hold
/// more than `--backfill-total-bytes`, and forgets the numbers of updates
/// gone otherwise once they are most of what is remembered (so that the
/// order stays within twice what is kept).
fn enforce_budget(engine: &mut Engine) {
    let limit = engine.config.backfill_total_bytes;
    let mut budget = std::mem::take(engine.state.volatile.get_or_default::<Budget>());
    while budget.bytes > limit {
        let Some((chan, global)) = budget.order.pop_front() else {
            break;
        };
        let Some(c) = engine.state.channel_mut_opt(chan) else {
            continue;
        };
        if let Some(n) = c.backlog.drop_if_oldest(global) {
            budget.bytes -= n;
            budget.kept -= 1;
        }
    }
    if budget.order.len() > 2 * budget.kept + 64 {
        budget.order.retain(|&(chan, global)| {
            engine
                .state
                .channel_opt(chan)
                .is_some_and(|c| c.backlog.keeps(global))
        });
    }
    *engine.state.volatile.get_or_default::<Budget>() = budget;
}

/// A channel was removed: what its backlog held no longer counts.
pub(crate) fn channel_removed(engine: &mut Engine, channel: &crate::engine::Channel) {
    let (count, bytes) = channel.backfill_held();
    let budget = engine.state.volatile.get_or_default::<Budget>();
    budget.kept -= count;
    budget.bytes -= bytes;
}

/// Updates and bytes all backlogs hold (for the tests and metrics).
pub(crate) fn held_in_all(engine: &Engine) -> (usize, usize) {
    engine
        .state
        .volatile
        .get::<Budget>()
        .map_or((0, 0), |b| (b.kept, b.bytes))
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

#[cfg(test)]
mod tests {
    use super::Budget;
    use crate::engine::{Config, Engine, Outbox, UNIX_TO_UNIVERSAL};
    use crate::wire::read_object;

    #[test]
    fn the_budgets_order_stays_within_twice_what_is_kept() {
        let now = UNIX_TO_UNIVERSAL + 1_700_000_000;
        let config = Config {
            backfill_count: 1,
            flood_limit: u32::MAX,
            ..Config::default()
        };
        let mut engine = Engine::new(config, now);
        let mut out = Outbox::default();
        engine.open(1, std::net::Ipv4Addr::LOCALHOST.into(), now);
        for text in [
            "(connect :id 1 :from \"ann\" :version \"2.0\")",
            "(create :id 2 :channel \"room\")",
        ] {
            engine.handle(1, read_object(text.as_bytes()), now, &mut out);
        }
        for i in 0..10_000 {
            let m = format!("(message :id {} :channel \"room\" :text \"m\")", i + 3);
            engine.handle(1, read_object(m.as_bytes()), now, &mut out);
            out.clear();
        }
        let b = engine.state.volatile.get::<Budget>().expect("a budget");
        // "room" keeps its last message alone.
        assert_eq!(engine.channel("room").map(|c| c.backfill_held().0), Some(1));
        assert!(b.kept <= 2, "{}", b.kept);
        assert!(b.order.len() <= 2 * b.kept + 65, "{}", b.order.len());
    }
}
