//! The primary channel's joins and leaves (§4.1.13, §4.3.4, §5.4.1). The
//! primary channel holds every user, so each arrival is a delivery to
//! everyone: a storm of N connections costs N²/2 of them. The arrivals and
//! departures of one loop turn are therefore sent together at its end:
//! every member from before the turn gets them as one buffer, printed
//! once and shared; a member that arrived during the turn gets those after
//! its own join, one by one.

use super::state::UserId;
use super::{ConnId, Engine, Outbox, print_shared};
use crate::wire::Object;
use std::collections::HashMap;
use std::rc::Rc;

/// The primary channel's joins and leaves of the current turn.
#[derive(Default)]
pub(crate) struct Presence {
    /// Printed updates, in order.
    updates: Vec<(Object, Rc<[u8]>)>,
    /// Users that joined during the turn, with the index of the first
    /// update after their own join.
    arrived: Vec<(UserId, usize)>,
}

impl Engine {
    /// A join or leave of the primary channel, for its members at the end
    /// of the turn; `arrived` names a user whose own join this is, which
    /// it was sent already.
    pub(super) fn primary_presence(&mut self, update: Object, arrived: Option<UserId>) {
        let Some(bytes) = print_shared(&update) else {
            return;
        };
        self.presence.updates.push((update, bytes));
        if let Some(user) = arrived {
            let next = self.presence.updates.len();
            self.presence.arrived.push((user, next));
        }
    }

    /// Ends a loop turn: sends the primary channel's joins and leaves of
    /// the turn to its members (see the module's comment). The caller calls
    /// it once after handling a batch of input, before writing.
    pub fn end_turn(&mut self, out: &mut Outbox) {
        if self.presence.updates.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.presence);
        let all: Rc<[u8]> = match batch.updates.as_slice() {
            [(_, one)] => one.clone(),
            many => many.iter().flat_map(|(_, b)| b.iter().copied()).collect(),
        };
        // The latest arrival of a user id counts (ids are reused).
        let arrived: HashMap<UserId, usize> = batch.arrived.iter().copied().collect();
        let primary = self.state.primary;
        let members = &self.state.channel(primary).members;
        out.sends.reserve(members.len());
        let mut push = |conns: &[ConnId], bytes: &Rc<[u8]>| {
            for &conn in conns {
                out.sends.push((conn, bytes.clone()));
            }
        };
        for &user in members {
            let conns = &self.state.user(user).conns;
            match arrived.get(&user) {
                None => push(conns, &all),
                Some(&from) => {
                    for (_, bytes) in &batch.updates[from..] {
                        push(conns, bytes);
                    }
                }
            }
        }
        for (update, bytes) in &batch.updates {
            for hook in &super::table::hooks().distributed {
                hook(self, primary, update, bytes, out);
            }
        }
    }
}
