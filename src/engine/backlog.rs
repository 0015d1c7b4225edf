//! A channel's recent updates, as they went out (`shirakumo.mess` §1):
//! the printed bytes shared with the recipients, not copies, bounded in
//! number and in bytes, with when each member last joined so that a
//! member is only ever given what was distributed while it was there.

use super::Time;
use super::state::UserId;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// One distributed update.
#[derive(Debug)]
struct Entry {
    /// Its place in the channel's sequence of distributed updates.
    seq: u64,
    /// Its place among the updates all channels keep, for the server-wide
    /// budget (oldest first across channels).
    global: u64,
    /// Its `clock` field (§1 step 2 compares `since` with it).
    clock: Time,
    /// The bytes that were sent.
    bytes: Rc<[u8]>,
    /// The history's next row number when it went out (`shirakumo.mess`
    /// §18): stored rows below it went out before it.
    mark: u64,
}

/// The recent updates of one channel.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    entries: VecDeque<Entry>,
    /// Bytes held by `entries`.
    bytes: usize,
    /// The sequence number the next update gets.
    next_seq: u64,
    /// Per member, the first sequence number it may be given (the update
    /// after its own last join) and the history's next row number then.
    since: HashMap<UserId, (u64, u64)>,
    /// Every update from this sequence number on is held.
    complete_from: u64,
}

/// What one [`Backlog::record`] changed: whether the update was kept,
/// and the older updates (and their bytes) it pushed out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub kept: bool,
    pub dropped: usize,
    pub dropped_bytes: usize,
}

/// What a member may be given of the recent updates (§1 step 2).
pub(crate) struct Replay<'a> {
    /// The bytes, oldest first.
    pub updates: Vec<&'a Rc<[u8]>>,
    /// The history row number below which the stored rows went out before
    /// any of the updates the member may be given that are held.
    pub first_mark: u64,
    /// Every update since the member's join is held.
    pub complete: bool,
    /// The history's next row number at the member's join.
    pub join_mark: u64,
}

impl Backlog {
    /// Keeps an update that went out, dropping the oldest ones beyond
    /// `max_count` updates or `max_bytes` bytes. An update larger than
    /// `max_bytes` alone is not kept.
    /// `mark` is the history's next row number; `global` the update's
    /// place among all channels' kept updates.
    pub fn record(
        &mut self,
        clock: Time,
        bytes: &Rc<[u8]>,
        limits: (usize, usize),
        mark: u64,
        global: u64,
    ) -> Recorded {
        let (max_count, max_bytes) = limits;
        let mut done = Recorded::default();
        let seq = self.next_seq;
        self.next_seq += 1;
        if bytes.len() > max_bytes || max_count == 0 {
            self.complete_from = self.next_seq;
            return done;
        }
        while self.entries.len() >= max_count || self.bytes + bytes.len() > max_bytes {
            match self.drop_oldest() {
                Some(n) => {
                    done.dropped += 1;
                    done.dropped_bytes += n;
                }
                None => break,
            }
        }
        self.bytes += bytes.len();
        self.entries.push_back(Entry {
            seq,
            global,
            clock,
            bytes: bytes.clone(),
            mark,
        });
        done.kept = true;
        done
    }

    fn drop_oldest(&mut self) -> Option<usize> {
        let old = self.entries.pop_front()?;
        self.bytes -= old.bytes.len();
        self.complete_from = old.seq + 1;
        if self.entries.is_empty() && self.entries.capacity() > 64 {
            self.entries = VecDeque::new();
        }
        Some(old.bytes.len())
    }

    /// The server-wide budget drops the update `global` if it is this
    /// channel's oldest still kept; returns its bytes.
    pub fn drop_if_oldest(&mut self, global: u64) -> Option<usize> {
        if self.entries.front()?.global != global {
            return None;
        }
        self.drop_oldest()
    }

    /// Whether the update `global` is still kept.
    pub fn keeps(&self, global: u64) -> bool {
        let i = self.entries.partition_point(|e| e.global < global);
        self.entries.get(i).is_some_and(|e| e.global == global)
    }

    /// A member joined: it may be given what is distributed from now on;
    /// `mark` is the history's next row number.
    pub fn joined(&mut self, user: UserId, mark: u64) {
        self.since.insert(user, (self.next_seq, mark));
    }

    /// The update just recorded was `user`'s own join: it is not given
    /// back to that user (§1 step 2), nor anything before it.
    pub fn joined_with_last(&mut self, user: UserId) {
        if let Some((since, _)) = self.since.get_mut(&user) {
            *since = (*since).max(self.next_seq);
        }
    }

    /// A member left.
    pub fn parted(&mut self, user: UserId) {
        self.since.remove(&user);
    }

    /// The bytes of the updates `user` may be given, oldest first: those
    /// since its last join, and with a `clock` of at least `since`.
    pub fn replay(&self, user: UserId, since: Option<Time>) -> impl Iterator<Item = &Rc<[u8]>> {
        let first = self.since.get(&user).map_or(self.next_seq, |s| s.0);
        let start = self.entries.partition_point(|e| e.seq < first);
        self.entries
            .range(start..)
            .filter(move |e| since.is_none_or(|s| e.clock >= s))
            .map(|e| &e.bytes)
    }

    /// [`Backlog::replay`] with what joins it to the stored history;
    /// `next_mark` is the history's next row number now.
    pub fn replay_with_marks(
        &self,
        user: UserId,
        since: Option<Time>,
        next_mark: u64,
    ) -> Replay<'_> {
        let (first, join_mark) = self
            .since
            .get(&user)
            .copied()
            .unwrap_or((self.next_seq, next_mark));
        let start = self.entries.partition_point(|e| e.seq < first);
        let first_mark = self.entries.get(start).map_or(next_mark, |e| e.mark);
        Replay {
            updates: self.replay(user, since).collect(),
            first_mark,
            complete: first >= self.complete_from,
            join_mark,
        }
    }

    /// Updates and bytes held.
    pub fn held(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Rc<[u8]> {
        vec![b'x'; n].into()
    }

    #[test]
    fn backlog_drops_oldest_beyond_count_and_bytes() {
        let mut log = Backlog::default();
        log.joined(1, 0);
        for i in 0..10 {
            log.record(i, &bytes(10), (4, 1000), 0, i);
        }
        assert_eq!(log.held(), (4, 40));
        for i in 10..20 {
            log.record(i, &bytes(100), (100, 250), 0, i);
        }
        assert_eq!(log.held(), (2, 200));
        log.record(20, &bytes(251), (100, 250), 0, 20);
        assert_eq!(log.held(), (2, 200), "too large alone: not kept");
    }

    #[test]
    fn backlog_replays_only_since_the_members_last_join_and_since() {
        let mut log = Backlog::default();
        log.record(1, &bytes(1), (100, 1000), 0, 1);
        log.joined(7, 0);
        log.record(2, &bytes(2), (100, 1000), 0, 2);
        log.joined_with_last(7);
        log.record(3, &bytes(3), (100, 1000), 0, 3);
        log.record(4, &bytes(4), (100, 1000), 0, 4);
        let lens = |log: &Backlog, since| log.replay(7, since).map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(lens(&log, None), vec![3, 4]);
        assert_eq!(lens(&log, Some(4)), vec![4]);
        log.parted(7);
        assert_eq!(lens(&log, None), Vec::<usize>::new());
        log.joined(7, 0);
        log.record(5, &bytes(5), (100, 1000), 0, 5);
        assert_eq!(lens(&log, None), vec![5]);
    }

    #[test]
    fn backlog_reports_what_it_kept_and_dropped_and_gives_up_its_oldest_on_demand() {
        let mut log = Backlog::default();
        assert!(log.record(0, &bytes(10), (2, 1000), 0, 5).kept);
        log.record(1, &bytes(20), (2, 1000), 0, 7);
        let r = log.record(2, &bytes(30), (2, 1000), 0, 9);
        assert_eq!((r.kept, r.dropped, r.dropped_bytes), (true, 1, 10));
        assert!(!log.record(3, &bytes(2000), (2, 1000), 0, 11).kept);
        assert!(log.keeps(7) && log.keeps(9) && !log.keeps(5));
        assert_eq!(log.drop_if_oldest(9), None, "not the oldest");
        assert_eq!(log.drop_if_oldest(7), Some(20));
        assert_eq!(log.held(), (1, 30));
    }

    #[test]
    fn backlog_shares_the_sent_buffer() {
        let mut log = Backlog::default();
        log.joined(0, 0);
        let sent = bytes(3);
        log.record(0, &sent, (10, 100), 0, 0);
        assert!(Rc::ptr_eq(log.replay(0, None).next().unwrap(), &sent));
    }
}
