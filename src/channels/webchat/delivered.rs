//! Which of a conversation's messages one widget connection has already been sent.
//!
//! Messages reach a session twice over (history replay and live events, in either order), so it
//! sends each sequence number at most once. Everything up to a watermark is known to be sent;
//! only numbers above it are kept individually, and the watermark moves up as the gaps fill, so
//! the set stays small however long the conversation runs and a replay after falling behind
//! starts where the connection really is, not at the beginning.

use std::collections::BTreeSet;

/// Sequence numbers sent on one connection.
#[derive(Debug, Default)]
pub(super) struct Delivered {
    /// Every seq `<= through` was sent (or was already seen before this connection).
    through: i64,
    /// Sent seqs above `through`, not contiguous with it yet.
    above: BTreeSet<i64>,
}

impl Delivered {
    /// Start with everything up to `through` counted as sent.
    pub(super) fn after(through: i64) -> Self {
        Self {
            through: through.max(0),
            above: BTreeSet::new(),
        }
    }

    /// Highest seq such that it and everything below it were sent.
    pub(super) fn through(&self) -> i64 {
        self.through
    }

    /// Record `seq` as sent. False when it already was.
    pub(super) fn mark(&mut self, seq: i64) -> bool {
        if seq <= self.through {
            return false;
        }
        // The usual case, the next message in order: no set to touch.
        if self.above.is_empty() && Some(seq) == self.through.checked_add(1) {
            self.through = seq;
            return true;
        }
        if !self.above.insert(seq) {
            return false;
        }
        while let Some(next) = self.through.checked_add(1) {
            if self.above.first() != Some(&next) {
                break;
            }
            self.above.pop_first();
            self.through = next;
        }
        true
    }

    /// Numbers kept individually (above the watermark).
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.above.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seq_is_sent_once() {
        let mut d = Delivered::after(0);
        assert!(d.mark(1));
        assert!(!d.mark(1));
        assert!(d.mark(3));
        assert!(!d.mark(3));
        assert!(!d.mark(0), "at or below the starting point counts as sent");
    }

    #[test]
    fn the_watermark_moves_up_as_gaps_fill() {
        let mut d = Delivered::after(5);
        assert!(d.mark(7));
        assert!(d.mark(8));
        assert_eq!(d.through(), 5, "6 is still missing");
        assert_eq!(d.pending(), 2);
        assert!(d.mark(6));
        assert_eq!(d.through(), 8);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn an_in_order_stream_keeps_nothing_individually() {
        let mut d = Delivered::after(0);
        for seq in 1..=10_000 {
            assert!(d.mark(seq));
        }
        assert_eq!(d.through(), 10_000);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn a_start_at_the_largest_seq_counts_everything_as_sent() {
        let mut d = Delivered::after(i64::MAX);
        assert!(!d.mark(i64::MAX));
        assert!(!d.mark(1));
        assert_eq!(d.through(), i64::MAX);
    }

    #[test]
    fn a_negative_start_is_treated_as_nothing_sent() {
        let d = Delivered::after(-4);
        assert_eq!(d.through(), 0);
    }
}
