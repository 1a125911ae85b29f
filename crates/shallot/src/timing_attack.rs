//! The timing-correlation adversary of `shallot bench timing`: nodes that see when each client's
//! guard receives a request (and from which address) and when a swarm member receives a store
//! (and for which account) try to tell, for each message, who sent it.
//!
//! The rule, for a store for account R that arrives at the first member of R's swarm at time `t`
//! and carries the plaintext timestamp `T` (every store does; Session needs it):
//! 1. candidates are the requests guards received from clients at times `g` that were answered
//!    within the longest a send's request took (held waiting retrieves are not sends);
//! 2. each is scored by how typical its delays are: `f1(t − g)` (guard to store) alone — the
//!    "arrival" rule — or `f1(t − g) · f2(g − T)` (also timestamp to guard) — the "joint" rule —
//!    where `f1`, `f2` are densities of the true delays (kernel estimates), which an adversary
//!    learns by sending messages of its own; requests outside `f1`'s range are not candidates;
//! 3. a client's score is its best candidate's; the guess is the client with the highest score
//!    (ties: each tied client counts as a fraction of a guess); no candidate at all is a guess at
//!    random (1/K).
//!
//! Densities are cross-fitted: learned from the even-numbered messages and applied to the odd
//! ones, and the other way round, so no message is scored with a density that saw it.

/// A request a guard received from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardSeen {
    /// The client (its address identifies it to the guard).
    pub client: usize,
    /// When the guard received it (ms).
    pub at_ms: u64,
    /// When the guard answered it (ms).
    pub done_ms: u64,
}

/// A message of the workload, as the experiment knows it (the ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Who sent it.
    pub sender: usize,
    /// To whom.
    pub recipient: usize,
    /// The timestamp in the store (ms): what the swarm member reads in plaintext.
    pub timestamp_ms: u64,
    /// When the send started at the sender (ms).
    pub start_ms: u64,
}

/// A store for a client's account arriving at the first swarm member that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSeen {
    /// Whose account.
    pub recipient: usize,
    /// When (ms).
    pub at_ms: u64,
    /// The timestamp the store carries (ms).
    pub timestamp_ms: u64,
}

/// What the adversary achieved.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    /// Messages scored (matched to their store).
    pub messages: usize,
    /// Messages left out: no store seen with their recipient and timestamp, or another message
    /// with both.
    pub unmatched: usize,
    /// Fraction guessed right by the arrival rule.
    pub arrival: f64,
    /// Fraction guessed right by the joint rule.
    pub joint: f64,
    /// Mean number of clients with a candidate for a message (joint rule): the anonymity set the
    /// adversary faced.
    pub candidates: f64,
}

/// A message matched to its store, with the sender's request at its guard.
#[derive(Debug, Clone, Copy)]
struct Case {
    sent: Sent,
    store_ms: u64,
    /// The sender's request that carried it (its latest one before the store).
    guard_ms: Option<u64>,
    guard_duration: Option<u64>,
}

/// Matches each message to the earliest store with its recipient and timestamp (the same store
/// reaches every member of the swarm; the first is the one the onion brought). Two messages
/// with the same recipient and timestamp are left out.
fn cases(guards: &[GuardSeen], sent: &[Sent], stores: &[StoreSeen]) -> (Vec<Case>, usize) {
    let mut out = Vec::new();
    let mut unmatched = 0;
    for (i, m) in sent.iter().enumerate() {
        let twin = sent
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.recipient == m.recipient && o.timestamp_ms == m.timestamp_ms);
        let store = stores
            .iter()
            .filter(|s| s.recipient == m.recipient && s.timestamp_ms == m.timestamp_ms)
            .map(|s| s.at_ms)
            .min();
        let Some(store_ms) = store.filter(|_| !twin) else {
            unmatched += 1;
            continue;
        };
        let carrier = guards
            .iter()
            .filter(|g| g.client == m.sender && (m.start_ms..=store_ms).contains(&g.at_ms))
            .max_by_key(|g| g.at_ms);
        out.push(Case {
            sent: *m,
            store_ms,
            guard_ms: carrier.map(|g| g.at_ms),
            guard_duration: carrier.map(|g| g.done_ms.saturating_sub(g.at_ms)),
        });
    }
    (out, unmatched)
}

/// A density of delays (ms) estimated from samples with a Gaussian kernel (bandwidth by
/// Silverman's rule, at least 1 ms), so a delay a little outside the samples seen still scores.
#[derive(Debug, Clone)]
struct Density {
    samples: Vec<f64>,
    bandwidth: f64,
}

impl Density {
    /// Learns from `samples`; `None` when there are none.
    #[allow(clippy::cast_precision_loss)]
    fn learn(samples: &[i64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let sd = (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let quartile = |q: f64| sorted[crate::bench_stats::quantile_index(sorted.len(), q)];
        let iqr = (quartile(0.75) - quartile(0.25)) / 1.34;
        let spread = if iqr > 0.0 { sd.min(iqr) } else { sd };
        let bandwidth = (0.9 * spread * n.powf(-0.2)).max(1.0);
        Some(Self {
            samples: sorted,
            bandwidth,
        })
    }

    /// The density at `x` (up to a constant factor, which no comparison needs).
    #[allow(clippy::cast_precision_loss)]
    fn at(&self, x: i64) -> f64 {
        let x = x as f64;
        self.samples
            .iter()
            .map(|s| (-0.5 * ((x - s) / self.bandwidth).powi(2)).exp())
            .sum::<f64>()
            / self.samples.len() as f64
    }

    /// The largest delay worth considering: the largest sample plus four bandwidths.
    #[allow(clippy::cast_possible_truncation)]
    fn high(&self) -> i64 {
        (self.samples.last().copied().unwrap_or(0.0) + 4.0 * self.bandwidth).ceil() as i64
    }

    /// The smallest delay worth considering: the smallest sample minus four bandwidths.
    #[allow(clippy::cast_possible_truncation)]
    fn low(&self) -> i64 {
        (self.samples.first().copied().unwrap_or(0.0) - 4.0 * self.bandwidth).floor() as i64
    }
}

#[allow(clippy::cast_possible_wrap)] // Unix ms fit an i64 for 292 million years.
fn delay(later: u64, earlier: u64) -> i64 {
    later as i64 - earlier as i64
}

/// What the adversary learned from a set of messages.
struct Model {
    guard_to_store: Density,
    stamp_to_guard: Density,
    /// Longest a send's request is held at its guard (ms): twice the longest seen, plus 1 s.
    max_duration: u64,
}

impl Model {
    fn learn(cases: &[&Case]) -> Option<Self> {
        let with_guard: Vec<(&Case, u64)> = cases
            .iter()
            .filter_map(|c| Some((*c, c.guard_ms?)))
            .collect();
        let f1: Vec<i64> = with_guard
            .iter()
            .map(|(c, g)| delay(c.store_ms, *g))
            .collect();
        let f2: Vec<i64> = with_guard
            .iter()
            .map(|(c, g)| delay(*g, c.sent.timestamp_ms))
            .collect();
        let max_duration = cases.iter().filter_map(|c| c.guard_duration).max()? * 2 + 1000;
        Some(Self {
            guard_to_store: Density::learn(&f1)?,
            stamp_to_guard: Density::learn(&f2)?,
            max_duration,
        })
    }

    /// The credit of a guess by each rule for `case` (1, a share of a tie, 0, or 1/K without any
    /// candidate) and the number of clients with a candidate (joint rule).
    fn guess(&self, case: &Case, guards: &[GuardSeen], clients: usize) -> (f64, f64, usize) {
        let mut arrival = vec![0.0f64; clients];
        let mut joint = vec![0.0f64; clients];
        let window = |density: &Density| {
            (
                case.store_ms
                    .saturating_sub(u64::try_from(density.high()).unwrap_or(0)),
                case.store_ms
                    .saturating_sub(u64::try_from(density.low()).unwrap_or(0)),
            )
        };
        let (earliest, latest) = window(&self.guard_to_store);
        for g in guards {
            if g.at_ms < earliest
                || g.at_ms > latest
                || g.done_ms.saturating_sub(g.at_ms) > self.max_duration
                || g.client >= clients
            {
                continue;
            }
            let f1 = self.guard_to_store.at(delay(case.store_ms, g.at_ms));
            let f2 = self
                .stamp_to_guard
                .at(delay(g.at_ms, case.sent.timestamp_ms));
            arrival[g.client] = arrival[g.client].max(f1);
            joint[g.client] = joint[g.client].max(f1 * f2);
        }
        let credit = |scores: &[f64]| {
            let best = scores.iter().copied().fold(0.0, f64::max);
            if best <= 0.0 {
                #[allow(clippy::cast_precision_loss)]
                return 1.0 / clients as f64;
            }
            #[allow(clippy::float_cmp)] // Ties are requests at the same times.
            let tied = scores.iter().filter(|&&s| s == best).count();
            #[allow(clippy::float_cmp, clippy::cast_precision_loss)]
            if scores[case.sent.sender] == best {
                1.0 / tied as f64
            } else {
                0.0
            }
        };
        let candidates = joint.iter().filter(|&&s| s > 0.0).count();
        (credit(&arrival), credit(&joint), candidates)
    }
}

/// Runs the adversary over one experiment: `guards` (every client request any guard received),
/// `stores` (every store for a client's account at the first swarm member that got it), `sent`
/// (the ground truth) among `clients` clients.
pub fn attack(guards: &[GuardSeen], sent: &[Sent], stores: &[StoreSeen], clients: usize) -> Score {
    let (cases, unmatched) = cases(guards, sent, stores);
    let mut score = Score {
        messages: cases.len(),
        unmatched,
        ..Score::default()
    };
    if cases.is_empty() || clients == 0 {
        return score;
    }
    let (mut arrival, mut joint, mut candidates) = (0.0, 0.0, 0usize);
    for parity in [0, 1] {
        let train: Vec<&Case> = cases.iter().skip(parity).step_by(2).collect();
        let test: Vec<&Case> = cases.iter().skip(1 - parity).step_by(2).collect();
        let Some(model) = Model::learn(&train) else {
            // Nothing to learn from: every guess is at random.
            #[allow(clippy::cast_precision_loss)]
            let random = test.len() as f64 / clients as f64;
            arrival += random;
            joint += random;
            continue;
        };
        for case in test {
            let (a, j, c) = model.guess(case, guards, clients);
            arrival += a;
            joint += j;
            candidates += c;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let n = cases.len() as f64;
    score.arrival = arrival / n;
    score.joint = joint / n;
    #[allow(clippy::cast_precision_loss)]
    let mean_candidates = candidates as f64 / n;
    score.candidates = mean_candidates;
    score
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A synthetic run: `clients` clients, one message every `gap_ms` on average from a random
    /// sender; each message leaves `jitter(rng)` after its timestamp, reaches the swarm
    /// `relay(rng)` after the guard; every client also has a waiting retrieve held at its guard
    /// and, with `cover`, dummy requests every `cover` ms on average.
    fn run(
        clients: usize,
        messages: usize,
        gap_ms: u64,
        (jitter, relay, cover): (u64, u64, Option<u64>),
        seed: u64,
    ) -> Score {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut guards, mut sent, mut stores) = (Vec::new(), Vec::new(), Vec::new());
        let mut now = 1_000_000u64;
        for _ in 0..messages {
            now += rng.gen_range(0..=2 * gap_ms);
            let sender = rng.gen_range(0..clients);
            let recipient = (sender + rng.gen_range(1..clients)) % clients;
            let leaves = now + 2 + rng.gen_range(0..=jitter);
            let stored = leaves + 5 + rng.gen_range(0..=3) + rng.gen_range(0..=relay);
            guards.push(GuardSeen {
                client: sender,
                at_ms: leaves,
                done_ms: stored + 5,
            });
            stores.push(StoreSeen {
                recipient,
                at_ms: stored,
                timestamp_ms: now,
            });
            // The replica at another member comes later.
            stores.push(StoreSeen {
                recipient,
                at_ms: stored + 4,
                timestamp_ms: now,
            });
            sent.push(Sent {
                sender,
                recipient,
                timestamp_ms: now,
                start_ms: now,
            });
        }
        for client in 0..clients {
            // A held wait: never a candidate.
            guards.push(GuardSeen {
                client,
                at_ms: 1_000_000,
                done_ms: now + 20_000,
            });
            if let Some(every) = cover {
                let mut t = 1_000_000;
                while t < now {
                    t += rng.gen_range(0..=2 * every);
                    guards.push(GuardSeen {
                        client,
                        at_ms: t,
                        done_ms: t + 8,
                    });
                }
            }
        }
        attack(&guards, &sent, &stores, clients)
    }

    #[test]
    fn without_defences_timing_gives_the_sender_away() {
        let score = run(20, 400, 500, (0, 0, None), 1);
        assert!(score.messages > 390, "{score:?}");
        assert!(score.arrival > 0.9, "{score:?}");
        assert!(score.joint > 0.9, "{score:?}");
    }

    #[test]
    fn relay_delays_alone_are_undone_by_the_timestamp() {
        let score = run(20, 400, 500, (0, 1500, None), 2);
        assert!(score.arrival < 0.7, "{score:?}");
        assert!(score.joint > 0.9, "{score:?}");
        // Jitter too: both clues blur.
        let both = run(20, 400, 500, (3000, 1500, None), 2);
        assert!(both.joint < 0.6, "{both:?}");
        assert!(both.candidates > score.candidates);
    }

    #[test]
    fn cover_traffic_adds_candidates() {
        let plain = run(20, 400, 500, (3000, 1500, None), 3);
        let covered = run(20, 400, 500, (3000, 1500, Some(500)), 3);
        assert!(
            covered.candidates > plain.candidates + 2.0,
            "{plain:?} {covered:?}"
        );
        assert!(covered.joint < plain.joint, "{plain:?} {covered:?}");
    }

    #[test]
    fn no_candidate_is_a_random_guess() {
        let sent = [Sent {
            sender: 0,
            recipient: 1,
            timestamp_ms: 10,
            start_ms: 10,
        }];
        let stores = [StoreSeen {
            recipient: 1,
            at_ms: 30,
            timestamp_ms: 10,
        }];
        let score = attack(&[], &sent, &stores, 4);
        assert_eq!(score.messages, 1);
        assert!((score.joint - 0.25).abs() < 1e-9, "{score:?}");
        // A store with another timestamp matches nothing.
        let other = [StoreSeen {
            recipient: 1,
            at_ms: 30,
            timestamp_ms: 11,
        }];
        assert_eq!(attack(&[], &sent, &other, 4).unmatched, 1);
    }
}
