//! Who is typing to us right now: transient state (never stored), fed by typing indicators and
//! cleared by STOPPED, by their next message, or [`super::feedback::TYPING_TTL_MS`] after the
//! last STARTED.

use std::collections::HashMap;

use shallot_proto::SessionId;

/// Most people tracked as typing at once; a flood of indicators evicts the oldest.
pub const MAX_TYPING: usize = 256;

/// Typing contacts and when each indicator runs out (network time, ms).
#[derive(Debug, Default)]
pub(super) struct Typing {
    until: HashMap<SessionId, u64>,
}

impl Typing {
    /// Records that `who` is typing until `until`, or (`None`) stopped.
    pub fn set(&mut self, who: SessionId, until: Option<u64>, now_ms: u64) {
        let Some(until) = until else {
            self.until.remove(&who);
            return;
        };
        self.until.retain(|_, t| *t > now_ms);
        if self.until.len() >= MAX_TYPING && !self.until.contains_key(&who) {
            if let Some(oldest) = self.until.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                self.until.remove(&oldest);
            }
        }
        let entry = self.until.entry(who).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Whether `who` is typing at `now_ms`.
    pub fn is_typing(&self, who: &SessionId, now_ms: u64) -> bool {
        self.until.get(who).is_some_and(|t| *t > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shallot_proto::Identity;

    fn sid() -> SessionId {
        Identity::generate(&mut rand::rngs::OsRng).session_id()
    }

    #[test]
    fn typing_expires_stops_and_is_bounded() {
        let mut t = Typing::default();
        let bob = sid();
        t.set(bob, Some(20_000), 0);
        assert!(t.is_typing(&bob, 19_999));
        assert!(!t.is_typing(&bob, 20_000), "expired without a refresh");
        // An older indicator arriving late does not shorten a newer one.
        t.set(bob, Some(10_000), 0);
        assert!(t.is_typing(&bob, 15_000));
        t.set(bob, None, 0);
        assert!(!t.is_typing(&bob, 1));
        let many: Vec<_> = (0..MAX_TYPING + 10).map(|_| sid()).collect();
        for (i, who) in many.iter().enumerate() {
            t.set(*who, Some(1_000 + i as u64), 0);
        }
        assert_eq!(t.until.len(), MAX_TYPING);
        assert!(t.is_typing(many.last().unwrap_or(&bob), 0));
        assert!(!t.is_typing(&many[0], 0), "the oldest went first");
    }
}
