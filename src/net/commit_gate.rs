//! The commit gate: a reply confirming a durable change reaches the wire
//! only once the store committed the change (§5.2, §5.3), and whatever is
//! sent to the same connection after it waits behind it. When commits
//! keep failing, the waiting confirmations are withdrawn and the engine
//! undoes their changes.

use super::{STORE_FAILURE_GRACE, Server};
use crate::engine::{ConfirmId, Time};
use crate::store::Store;
use log::{info, warn};
use std::collections::VecDeque;
use std::time::Duration;

impl Server {
    /// Hands this turn's durable changes to the store (one batch, one
    /// ticket), settles the confirmations whose commit has completed and
    /// releases the replies behind them. Once commits have failed for
    /// [`STORE_FAILURE_GRACE`], the confirmations still waiting are
    /// withdrawn: the engine undoes their changes and each reply is
    /// replaced by a failure naming the cause.
    pub(super) fn commit_and_release(&mut self, now: Time, tick: u64) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        // A confirmation always waits for a batch that is submitted, even
        // if that batch turned out empty.
        let unsubmitted = self
            .confirming
            .back()
            .is_some_and(|c| c.1 >= store.next_ticket());
        if !self.outbox.changes.is_empty() || unsubmitted {
            let ticket = store.submit(std::mem::take(&mut self.outbox.changes));
            if let Some(m) = self.metrics.as_deref_mut() {
                m.submitted(ticket);
            }
        }
        let committed = store.committed();
        if let Some(m) = self.metrics.as_deref_mut() {
            m.committed(committed);
        }
        let mut settled = None;
        while let Some(&(id, ticket)) = self.confirming.front()
            && ticket <= committed
        {
            settled = Some(id);
            self.confirming.pop_front();
        }
        if let Some(id) = settled {
            self.engine.settle(id);
        }
        let down = store
            .failing_for()
            .is_some_and(|d| d >= STORE_FAILURE_GRACE);
        if down != self.store_down {
            self.store_down = down;
            let cause = if down { store.failure() } else { None };
            match &cause {
                Some(c) => warn!(
                    "database {}: commits have failed for {} s ({c}); changes that need a \
                     confirmation are refused until commits succeed",
                    store.path().display(),
                    STORE_FAILURE_GRACE.as_secs()
                ),
                None => info!(
                    "database {}: commits succeed again; changes are accepted",
                    store.path().display()
                ),
            }
            self.engine.set_store_failure(cause);
        }
        if down && !self.confirming.is_empty() {
            self.withdraw_confirmations(now, tick);
        }
        self.release();
    }

    /// Moves held buffers whose confirmation is settled (and those behind
    /// them that only kept their place) to the write queues.
    pub(super) fn release(&mut self) {
        if self.held_conns.is_empty() {
            return;
        }
        let oldest = self.confirming.front().map_or(ConfirmId::MAX, |c| c.0);
        let mut waiting = std::mem::take(&mut self.held_conns);
        waiting.retain(|&key| {
            let Some(conn) = self.conns.get_mut(key) else {
                return false;
            };
            let mut moved = false;
            while conn
                .held
                .front()
                .is_some_and(|h| h.confirm == 0 || h.confirm < oldest)
            {
                if let Some(h) = conn.held.pop_front() {
                    conn.held_bytes -= h.bytes.len();
                    conn.queue.push(h.bytes);
                    moved = true;
                }
            }
            if moved && !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
            if conn.held.is_empty() {
                conn.held = VecDeque::new();
                false
            } else {
                true
            }
        });
        self.held_conns = waiting;
    }

    /// The store cannot commit: every unsettled confirmation is withdrawn.
    /// On the connection that asked, the held reply becomes the failure
    /// (keeping its place); its copies on the user's other connections
    /// are dropped. The engine's undo (its `leave`s and durable changes)
    /// is queued like any other output.
    pub(super) fn withdraw_confirmations(&mut self, now: Time, tick: u64) {
        let cause = self
            .store
            .as_ref()
            .and_then(Store::failure)
            .unwrap_or_else(|| "the database cannot be written".to_owned());
        let first = self.confirming.front().map_or(ConfirmId::MAX, |c| c.0);
        self.confirming.clear();
        let refusals = self.engine.fail_pending(&cause, now, &mut self.outbox);
        for &key in &self.held_conns {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let mut bytes = conn.held_bytes;
            conn.held.retain_mut(|h| {
                if h.confirm < first {
                    return true;
                }
                bytes -= h.bytes.len();
                match refusals.binary_search_by_key(&h.confirm, |r| r.id) {
                    Ok(i) if refusals[i].conn == key => {
                        h.bytes = refusals[i].failure.clone();
                        h.confirm = 0;
                        bytes += h.bytes.len();
                        true
                    }
                    _ => false,
                }
            });
            conn.held_bytes = bytes;
        }
        self.apply_outbox(tick);
    }

    /// Writes the last changes and waits at most `limit` for the writer to
    /// commit them (it gives up at once while commits fail, logging what
    /// was not saved).
    pub(super) fn close_store(&mut self, limit: Duration) {
        if let Some(mut store) = self.store.take() {
            if !self.outbox.changes.is_empty() {
                store.submit(std::mem::take(&mut self.outbox.changes));
            }
            store.close_within(limit);
        }
    }
}
