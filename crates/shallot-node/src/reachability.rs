//! Reachability testing of other nodes (storage RPC spec §10): every ~10 s a random node is
//! pinged over HTTPS; failing nodes are retested with backoff; every result goes to the
//! directory with `report_peer_status`, which feeds its decommission decisions.
//!
//! A devnet directory counts a report only from the target's assigned testers (directory
//! spec §4.6 as this devnet implements it); when it says which nodes this one is assigned
//! ([`Assignment`]), only those are tested. Without it (an oxend), every node is a candidate.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use shallot_directory::NodeRecord;
use shallot_proto::Ed25519Pub;
use tokio::sync::watch;

use crate::server;
use crate::state::Node;
use crate::timeouts;

/// How often the schedule is checked.
const TICK: Duration = Duration::from_millis(200);
/// Most failing nodes retested per tick.
const MAX_RETESTS_PER_TICK: usize = 4;
/// Cap on the retest delay of a failing node.
const MAX_RETEST_DELAY: Duration = Duration::from_secs(120);

/// Draws from N(10 s, 3 s), clamped to be positive: the gap between random tests.
fn gap<R: Rng>(rng: &mut R) -> Duration {
    // Box–Muller on two uniform draws.
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    Duration::from_secs_f64((10.0 + 3.0 * normal).max(0.5))
}

/// Pings a node's `/ping_test/v1` and checks it answers with its own key (with a client made
/// by the node runtime, the TLS handshake already proved that key: the URL names the node's
/// pinned host, see [`crate::peer_tls`]).
pub async fn test_node(http: &reqwest::Client, node: &NodeRecord) -> bool {
    let host = crate::peer_tls::pinned_host(node.ip, &node.ed25519);
    let url = format!("https://{host}:{}/ping_test/v1", node.https_port);
    let Ok(response) = http.post(url).timeout(timeouts::PING).send().await else {
        return false;
    };
    if response.status() != 200 {
        return false;
    }
    response
        .headers()
        .get("x-oxen-snode-pubkey")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| shallot_proto::b64::decode(v).ok())
        .is_some_and(|key| key == node.pubkey_legacy || key == node.ed25519.as_bytes())
}

/// Where test results go (the directory's `report_peer_status`).
pub trait Reporter: Send + Sync + 'static {
    /// Records that `node` passed or failed a test.
    fn report(
        &self,
        node: &NodeRecord,
        passed: bool,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// The nodes this node is assigned to test, if the directory says (`None`: test anyone).
pub type Assignment = watch::Receiver<Option<HashSet<Ed25519Pub>>>;

struct Failing {
    failures: u32,
    retest_at: Instant,
}

/// Runs the test schedule until shutdown.
pub async fn run<R: Reporter>(
    node: Arc<Node>,
    http: reqwest::Client,
    reporter: R,
    assignment: Assignment,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing: HashMap<Ed25519Pub, Failing> = HashMap::new();
    let mut queue: Vec<NodeRecord> = Vec::new();
    let mut next_random = Instant::now() + gap(&mut rand::thread_rng());
    let me = node.identity.ed25519_public();
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = server::stopped(&mut stop) => return,
        }
        let view = node.view();
        // Decommissioned nodes test nobody (they are not judged on it either).
        if node.own_swarm(&view).is_none() {
            continue;
        }
        let now = Instant::now();
        let assigned = assignment.borrow().clone();
        let wanted = |key: &Ed25519Pub| assigned.as_ref().is_none_or(|set| set.contains(key));
        // A node no longer assigned to us is not retested: our reports on it would not count.
        failing.retain(|key, _| wanted(key));
        let mut due: Vec<NodeRecord> = failing
            .iter()
            .filter(|(_, f)| f.retest_at <= now)
            .filter_map(|(key, _)| view.node(key).cloned())
            .take(MAX_RETESTS_PER_TICK)
            .collect();
        if now >= next_random {
            next_random = now + gap(&mut rand::thread_rng());
            if queue.is_empty() {
                queue = view
                    .nodes()
                    .iter()
                    .filter(|n| {
                        n.ed25519 != me
                            && !n.ip.is_unspecified()
                            && !failing.contains_key(&n.ed25519)
                            && wanted(&n.ed25519)
                    })
                    .cloned()
                    .collect();
                queue.shuffle(&mut rand::thread_rng());
            }
            if let Some(next) = queue.pop() {
                due.push(next);
            }
        }
        for target in due {
            let passed = test_node(&http, &target).await;
            reporter.report(&target, passed).await;
            tracing::debug!(peer = %target.ed25519, passed, "reachability test reported");
            if passed {
                failing.remove(&target.ed25519);
            } else {
                let entry = failing.entry(target.ed25519).or_insert(Failing {
                    failures: 0,
                    retest_at: now,
                });
                entry.failures += 1;
                let delay = Duration::from_secs(10) * entry.failures + gap(&mut rand::thread_rng());
                entry.retest_at = Instant::now() + delay.min(MAX_RETEST_DELAY);
                tracing::debug!(peer = %target.ed25519, failures = entry.failures, "reachability test failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_around_ten_seconds() {
        let mut rng = rand::thread_rng();
        let gaps: Vec<f64> = (0..2000).map(|_| gap(&mut rng).as_secs_f64()).collect();
        #[allow(clippy::cast_precision_loss)]
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((9.5..10.5).contains(&mean), "mean {mean}");
        assert!(gaps.iter().all(|&g| g >= 0.5));
    }
}
