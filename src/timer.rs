//! A hashed timer wheel: O(1) insert and cancel, one slot per tick.
//!
//! Time is counted in integer ticks; the caller converts its clock to ticks
//! in one place. A timer due more than one revolution ahead stays in its
//! slot and is skipped until its tick comes. Each timer carries a
//! generation number, so a handle kept after its timer fired or was
//! cancelled cancels nothing, even when the storage slot has been reused.

use slab::Slab;

/// Names one scheduled timer; stale handles are harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    key: usize,
    generation: u64,
}

#[derive(Debug)]
struct Entry<T> {
    at: u64,
    generation: u64,
    value: T,
}

/// A hashed timer wheel holding values of type `T`, each due at a tick.
#[derive(Debug)]
pub struct Wheel<T> {
    slots: Vec<Vec<(usize, u64)>>,
    entries: Slab<Entry<T>>,
    now: u64,
    next_generation: u64,
}

impl<T> Wheel<T> {
    /// A wheel of `slots` slots (rounded up to a power of two, at least 1)
    /// whose current tick is `now`: everything at or before it is past.
    pub fn new(slots: usize, now: u64) -> Wheel<T> {
        let slots = slots.max(1).next_power_of_two();
        Wheel {
            slots: (0..slots).map(|_| Vec::new()).collect(),
            entries: Slab::new(),
            now,
            next_generation: 0,
        }
    }

    /// The last tick processed by [`Wheel::advance`].
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Number of timers scheduled.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no timer is scheduled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn slot_of(&self, tick: u64) -> usize {
        // The slot count is a power of two, so the mask keeps the low bits;
        // the result is below the slot count and fits a usize.
        (tick & (self.slots.len() as u64 - 1)) as usize
    }

    /// Schedules `value` for tick `at`; a tick already past fires at the
    /// next advance.
    pub fn insert(&mut self, at: u64, value: T) -> TimerId {
        let at = at.max(self.now + 1);
        let generation = self.next_generation;
        self.next_generation += 1;
        let key = self.entries.insert(Entry {
            at,
            generation,
            value,
        });
        let slot = self.slot_of(at);
        self.slots[slot].push((key, generation));
        TimerId { key, generation }
    }

    /// Cancels a timer and returns its value; `None` if it already fired or
    /// was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        match self.entries.get(id.key) {
            Some(e) if e.generation == id.generation => {
                // The slot keeps a stale (key, generation) pair; it is
                // dropped when the wheel next passes that slot.
                Some(self.entries.remove(id.key).value)
            }
            _ => None,
        }
    }

    /// The earliest tick a timer is due at, if any is scheduled.
    pub fn next_due(&self) -> Option<u64> {
        let live = |&(key, generation): &(usize, u64)| {
            self.entries
                .get(key)
                .filter(|e| e.generation == generation)
                .map(|e| e.at)
        };
        // One revolution ahead, tick by tick: the first tick with a timer
        // due at it is the earliest.
        for step in 1..=self.slots.len() as u64 {
            let tick = self.now + step;
            if self.slots[self.slot_of(tick)]
                .iter()
                .filter_map(live)
                .any(|at| at == tick)
            {
                return Some(tick);
            }
        }
        // Everything is further out than one revolution.
        self.entries.iter().map(|(_, e)| e.at).min()
    }

    /// Moves the wheel to tick `to`, appending the value of every timer due
    /// at or before it to `fired`, in no particular order.
    pub fn advance(&mut self, to: u64, fired: &mut Vec<T>) {
        if to <= self.now {
            return;
        }
        let span = to - self.now;
        let count = if span >= self.slots.len() as u64 {
            self.slots.len() as u64
        } else {
            span
        };
        for step in 1..=count {
            let slot = self.slot_of(self.now + step);
            let entries = &mut self.entries;
            self.slots[slot].retain(|&(key, generation)| match entries.get(key) {
                Some(e) if e.generation == generation => {
                    if e.at <= to {
                        fired.push(entries.remove(key).value);
                        false
                    } else {
                        true
                    }
                }
                _ => false,
            });
        }
        self.now = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance(w: &mut Wheel<u32>, to: u64) -> Vec<u32> {
        let mut fired = Vec::new();
        w.advance(to, &mut fired);
        fired.sort_unstable();
        fired
    }

    #[test]
    fn next_due_is_the_earliest_live_timer_even_a_revolution_out() {
        let mut w = Wheel::new(8, 100);
        assert_eq!(w.next_due(), None);
        let far = w.insert(100 + 8 + 3, 1);
        assert_eq!(w.next_due(), Some(111), "same slot as 103, a revolution on");
        w.insert(105, 2);
        assert_eq!(w.next_due(), Some(105));
        let near = w.insert(101, 3);
        assert_eq!(w.next_due(), Some(101));
        w.cancel(near);
        assert_eq!(w.next_due(), Some(105));
        assert_eq!(advance(&mut w, 105), [2]);
        assert_eq!(w.next_due(), Some(111));
        w.cancel(far);
        assert_eq!(w.next_due(), None);
    }

    #[test]
    fn slot_count_is_rounded_to_a_power_of_two() {
        let w: Wheel<u32> = Wheel::new(100, 0);
        assert_eq!(w.slots.len(), 128);
        assert_eq!(w.slot_of(127), 127);
        assert_eq!(w.slot_of(128), 0);
        assert_eq!(w.slot_of(130), 2);
    }

    #[test]
    fn timer_fires_at_its_tick_not_before() {
        let mut w = Wheel::new(8, 0);
        w.insert(3, 1);
        assert!(advance(&mut w, 2).is_empty());
        assert_eq!(advance(&mut w, 3), vec![1]);
        assert!(w.is_empty());
    }

    #[test]
    fn two_timers_exactly_one_revolution_apart_fire_a_revolution_apart() {
        let mut w = Wheel::new(8, 0);
        w.insert(5, 1);
        w.insert(13, 2);
        assert_eq!(w.slot_of(5), w.slot_of(13));
        assert_eq!(advance(&mut w, 5), vec![1]);
        assert!(advance(&mut w, 12).is_empty());
        assert_eq!(advance(&mut w, 13), vec![2]);
    }

    #[test]
    fn a_jump_longer_than_a_revolution_fires_everything_due() {
        let mut w = Wheel::new(8, 0);
        for at in 1..=20 {
            w.insert(at, at as u32);
        }
        assert_eq!(advance(&mut w, 17), (1..=17).collect::<Vec<_>>());
        assert_eq!(w.len(), 3);
        assert_eq!(advance(&mut w, 100), vec![18, 19, 20]);
    }

    #[test]
    fn past_tick_fires_on_next_advance() {
        let mut w = Wheel::new(8, 10);
        w.insert(3, 7);
        assert_eq!(advance(&mut w, 11), vec![7]);
    }

    #[test]
    fn cancel_returns_value_and_timer_does_not_fire() {
        let mut w = Wheel::new(8, 0);
        let id = w.insert(2, 1);
        assert_eq!(w.cancel(id), Some(1));
        assert!(advance(&mut w, 5).is_empty());
        assert_eq!(w.cancel(id), None);
    }

    #[test]
    fn stale_handle_cancels_nothing_after_storage_reuse() {
        let mut w = Wheel::new(8, 0);
        let old = w.insert(2, 1);
        assert_eq!(advance(&mut w, 2), vec![1]);
        let new = w.insert(4, 2);
        // The storage slot is reused, but the generation differs.
        assert_eq!(old.key, new.key);
        assert_eq!(w.cancel(old), None);
        assert_eq!(advance(&mut w, 4), vec![2]);
    }

    #[test]
    fn stale_slot_entry_of_a_cancelled_timer_does_not_fire_its_successor_early() {
        let mut w = Wheel::new(8, 0);
        let id = w.insert(3, 1);
        w.cancel(id);
        // Same storage key, due a revolution later, shares nothing with the
        // stale entry left in slot 3.
        w.insert(11, 2);
        assert!(advance(&mut w, 3).is_empty());
        assert_eq!(advance(&mut w, 11), vec![2]);
    }
}
