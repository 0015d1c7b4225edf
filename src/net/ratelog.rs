//! Log lines that a peer can cause at any rate (refused connections,
//! failed accepts) are written at a bounded rate: the first of a kind is
//! logged in full, the others in the next [`WINDOW`] seconds are counted
//! and reported in one line when the window ends.

use log::Level;

/// Seconds one logged line covers.
pub const WINDOW: u64 = 10;

/// One kind of line, e.g. "refused: connection limit reached".
pub struct RateLog {
    level: Level,
    what: &'static str,
    /// The tick at which the open window ends; `None` when no window is
    /// open (the next event is logged in full).
    until: Option<u64>,
    suppressed: u64,
}

impl RateLog {
    /// A logger for lines of `level`; `what` names them in the summary.
    pub const fn new(level: Level, what: &'static str) -> RateLog {
        RateLog {
            level,
            what,
            until: None,
            suppressed: 0,
        }
    }

    /// Counts one event at `tick` (seconds); true when it is to be logged
    /// in full, false when it only goes into the next summary.
    pub fn event(&mut self, tick: u64) -> bool {
        self.summarize(tick);
        if self.until.is_some() {
            self.suppressed += 1;
            return false;
        }
        self.until = Some(tick + WINDOW);
        true
    }

    /// At the end of a window, logs how many events it suppressed and opens
    /// the next window; a window without any closes. Cheap when nothing is
    /// due: called once per loop turn.
    pub fn summarize(&mut self, tick: u64) {
        let Some(until) = self.until else {
            return;
        };
        if tick < until {
            return;
        }
        if let Some(n) = self.take_due(tick) {
            log::log!(
                self.level,
                "{}: {n} more suppressed in the last {WINDOW} s",
                self.what
            );
        }
    }

    /// The summary count due at `tick`, if any, and the window moved on.
    fn take_due(&mut self, tick: u64) -> Option<u64> {
        let until = self.until?;
        if tick < until {
            return None;
        }
        if self.suppressed == 0 {
            self.until = None;
            return None;
        }
        // The next window follows on, unless it too has passed unseen.
        self.until = (tick < until + WINDOW).then_some(until + WINDOW);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_is_logged_then_counted_until_the_window_ends() {
        let mut r = RateLog::new(Level::Info, "refused");
        assert!(r.event(5));
        for t in 5..5 + WINDOW {
            assert!(!r.event(t));
        }
        assert_eq!(r.take_due(5 + WINDOW - 1), None);
        assert_eq!(r.take_due(5 + WINDOW), Some(WINDOW));
        // A storm that goes on is summarized once per window, no line in
        // full in between.
        assert!(!r.event(5 + WINDOW + 1));
        assert_eq!(r.take_due(5 + 2 * WINDOW), Some(1));
        // A quiet window closes it; the next event is logged in full.
        assert_eq!(r.take_due(5 + 3 * WINDOW), None);
        assert!(r.event(5 + 3 * WINDOW + 4));
    }

    #[test]
    fn event_after_windows_ended_unseen_summarizes_then_is_logged() {
        let mut r = RateLog::new(Level::Warn, "accept failed");
        assert!(r.event(0));
        assert!(!r.event(1));
        // Nobody summarized at tick 10 or 20: the event at 30 reports the
        // one suppressed first, then is logged in full in a new window.
        assert!(r.event(30));
        assert_eq!(r.suppressed, 0);
        assert_eq!(r.until, Some(30 + WINDOW));
        // Summarized late but within the next window: it follows on.
        assert!(!r.event(31));
        assert_eq!(r.take_due(45), Some(1));
        assert_eq!(r.until, Some(30 + 2 * WINDOW));
    }
}
