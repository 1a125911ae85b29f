//! Guards and onion paths (spec §3.2–§3.3) as a sans-I/O state machine: the [`PathManager`] picks
//! guard candidates and relays from a [`Pool`], hands out paths, and is fed the outcome of every
//! request; it never touches a socket, so thresholds, repair and exclusion rules are unit-tested
//! here and the async [`crate::OnionClient`] only does the I/O.
//!
//! Rules: every path is `[guard, relay, relay]` with a distinct guard; a node is in at most one
//! path; no two nodes of a path share an IPv4 /24 *when the pool allows it*. On a devnet where
//! every node is in 127.0.N.0/24 that is impossible, so the manager falls back to distinct nodes
//! and reports it through [`PathManager::subnet_rule_relaxed`] rather than refusing to build.
//!
//! **Stable guards.** The guards are a persistent set ([`GuardEntry`], saved with the pool and
//! restored with [`PathManager::restore_guards`] *before* any path is built). While a saved guard
//! is usable, no other node is tested as a guard (a guard test is a direct connection: it shows
//! the node our IP). A saved guard is replaced only when
//! - it failed [`PathConfig::guard_failure_threshold`] times in a row (guard tests, refused
//!   connections, paths dropped after repeated failures; a success resets the count), or
//! - it left the node list (the directory no longer lists it), or
//! - its lifetime ended: each guard gets a lifetime drawn uniformly between
//!   [`PathConfig::guard_lifetime_min`] and [`PathConfig::guard_lifetime_max`] (30 to 60 days by
//!   default; random so that guards do not all rotate at once, as in Tor).
//!
//! A saved guard that fails fewer times keeps its slot: the client runs with fewer paths
//! meanwhile (it is tried again at the next start, not within a run). Only when *no* guard works
//! at all are new candidates tested (a client must connect somehow), and only one is kept: it
//! takes the slot of the failing saved guard with the most failures. Lifetimes are checked when
//! the set is restored, i.e. at start.
//!
//! **Guards outside the destination's swarm.** A request for a service node is sent over a path
//! none of whose nodes is in that node's swarm (a guard in the recipient's swarm would see our IP
//! and, milliseconds later, the replicated message). Guards are chosen from distinct swarms, so
//! with two working guards one is always outside any given swarm; see [`PathManager::select`] for
//! the fallbacks.
//!
//! **Guards outside our own and our correspondents' swarms.** A guard in our own swarm sees our
//! IP and, as a replica, every message stored for us (and our waiting requests return through it
//! the moment one arrives); a guard in a correspondent's swarm sees our IP and the message we just
//! sent them, or their sync copy as our wait returns. The client names these *private swarms*
//! ([`PathManager::set_private_swarms`]: its own account's, and those of the accounts it talks
//! to). Guard candidates, which see our IP in their test, come from outside them whenever enough
//! nodes do; and every request prefers a path whose guard is outside them, so a guard that turns
//! out to be in a new correspondent's swarm is kept (stable guards) but left idle while another
//! guard works. Found by `shallot audit`: before, a guard candidate in our own swarm saw our IP
//! and, tens of milliseconds later, our device's config message.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use shallot_directory::NodeRecord;
use shallot_proto::onion::NodeKeys;
use shallot_proto::swarm::SwarmId;
use shallot_proto::Ed25519Pub;

use crate::pool::Pool;

/// Path-building policy; the defaults are the reference clients' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathConfig {
    /// Nodes per path, guard included (3).
    pub hops: usize,
    /// Paths (and guards) to keep (2).
    pub paths: usize,
    /// Failures after which a path and its guard are dropped (3).
    pub path_failure_threshold: u8,
    /// Failures after which a node is dropped from the pool and from paths (3).
    pub node_failure_threshold: u8,
    /// Consecutive failures (failed guard tests or refused connections, across runs) after which
    /// a saved guard is replaced (3).
    pub guard_failure_threshold: u8,
    /// Shortest lifetime of a guard (30 days).
    pub guard_lifetime_min: Duration,
    /// Longest lifetime of a guard (60 days); each guard's is drawn uniformly in between.
    pub guard_lifetime_max: Duration,
}

/// Shortest default guard lifetime: 30 days.
pub const GUARD_LIFETIME_MIN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest default guard lifetime: 60 days.
pub const GUARD_LIFETIME_MAX: Duration = Duration::from_secs(60 * 24 * 3600);

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            hops: 3,
            paths: 2,
            path_failure_threshold: 3,
            node_failure_threshold: 3,
            guard_failure_threshold: 3,
            guard_lifetime_min: GUARD_LIFETIME_MIN,
            guard_lifetime_max: GUARD_LIFETIME_MAX,
        }
    }
}

/// One guard of the persistent guard set (saved between runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardEntry {
    /// The guard's Ed25519 key.
    pub ed25519: Ed25519Pub,
    /// When it became our guard (Unix seconds).
    pub added: u64,
    /// When it is replaced in any case (Unix seconds).
    pub expires: u64,
    /// Consecutive failures so far (reset by a success).
    #[serde(default)]
    pub failures: u8,
}

/// Names a path across rebuilds, so a late outcome cannot be applied to a newer path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u64);

/// One onion path: the guard first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    id: PathId,
    nodes: Vec<NodeRecord>,
    failures: u8,
}

impl Path {
    /// The path's id.
    pub fn id(&self) -> PathId {
        self.id
    }

    /// The nodes, guard first.
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// The guard (first hop), which the client connects to.
    pub fn guard(&self) -> &NodeRecord {
        &self.nodes[0]
    }

    /// Onion keys of every hop, for `build_to_node` / `build_to_server`.
    pub fn keys(&self) -> Vec<NodeKeys> {
        self.nodes
            .iter()
            .map(|n| NodeKeys {
                ed25519: n.ed25519,
                x25519: n.x25519,
            })
            .collect()
    }

    /// Whether `node` is one of the hops.
    pub fn contains(&self, node: &Ed25519Pub) -> bool {
        self.nodes.iter().any(|n| &n.ed25519 == node)
    }

    /// Failures counted against the path so far.
    pub fn failures(&self) -> u8 {
        self.failures
    }
}

/// What happened to a request sent over a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The destination answered (whatever its status): the path works.
    Success,
    /// The request died on the path: guard unreachable, timeout, or a non-200 transport status
    /// other than "Next node not found".
    PathFailure,
    /// The guard refused the connection or the TLS handshake failed: it is down, so the path
    /// and guard are dropped at once (libsession sets the guard's failures to the threshold).
    GuardUnreachable,
    /// A relay answered `Next node not found: <node>`: that node is gone from the network.
    NextNodeNotFound(Ed25519Pub),
    /// The destination node answered with a server error (5xx inside the onion reply).
    DestinationFailure(Ed25519Pub),
}

/// What a report changed, so the caller can update other state (swarm caches, persistence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Nodes removed from the pool.
    pub dropped_nodes: Vec<Ed25519Pub>,
    /// Paths removed (their guards are in `dropped_nodes`).
    pub dropped_paths: Vec<PathId>,
    /// Paths that had a node replaced.
    pub repaired_paths: Vec<PathId>,
}

/// Why a path could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not enough usable nodes in the pool.
    #[error("pool too small: need {needed} more usable node(s)")]
    PoolTooSmall {
        /// How many nodes were missing.
        needed: usize,
    },
    /// Every path contains the destination (or there is no path).
    #[error("no path avoids the destination")]
    NoPathAvoiding,
}

/// The guard and path state machine.
#[derive(Debug, Clone, Default)]
pub struct PathManager {
    config: PathConfig,
    guards: Vec<Ed25519Pub>,
    paths: Vec<Path>,
    node_failures: HashMap<Ed25519Pub, u8>,
    next_id: u64,
    subnet_relaxed: bool,
    /// The persistent guard set: guards of earlier runs (tested before use) and new ones.
    saved: Vec<GuardEntry>,
    /// Saved guards that failed in this run but keep their slot.
    benched: HashSet<Ed25519Pub>,
    /// Unix seconds, for guard lifetimes (set by [`Self::set_now`]).
    now: u64,
    /// Swarms a node that sees our IP should not be in (see the module doc).
    private_swarms: HashSet<SwarmId>,
}

fn subnet(ip: Ipv4Addr) -> [u8; 3] {
    let [a, b, c, _] = ip.octets();
    [a, b, c]
}

impl PathManager {
    /// An empty manager (no guards, no paths).
    pub fn new(config: PathConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The policy in use.
    pub fn config(&self) -> &PathConfig {
        &self.config
    }

    /// The current guards' keys.
    pub fn guards(&self) -> &[Ed25519Pub] {
        &self.guards
    }

    /// The current paths.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// Failures counted against a node.
    pub fn node_failures(&self, node: &Ed25519Pub) -> u8 {
        self.node_failures.get(node).copied().unwrap_or(0)
    }

    /// Whether some path had to put two nodes of one /24 together (small or single-subnet pool).
    pub fn subnet_rule_relaxed(&self) -> bool {
        self.subnet_relaxed
    }

    /// How many more guards are needed to reach the configured path count. Saved guards that
    /// failed in this run keep their slots, unless no guard works at all.
    pub fn guards_needed(&self) -> usize {
        let held = if self.guards.is_empty() {
            0
        } else {
            self.benched.len()
        };
        self.config.paths.saturating_sub(self.guards.len() + held)
    }

    /// How many guard candidates' worth of guards to look for now: [`Self::guards_needed`], or
    /// one when every working guard is in a private swarm and a usable node outside them is
    /// free: that guard is then replaced by one outside them ([`Self::accept_tested`]), since
    /// it would see our IP and, as we wait or send, our correspondents' messages.
    pub fn guards_to_find(&self, pool: &Pool) -> usize {
        let needed = self.guards_needed();
        if needed > 0 || !self.private_replacement_needed(pool) {
            return needed;
        }
        1
    }

    /// Whether every working guard is in a private swarm while a free usable node is not.
    fn private_replacement_needed(&self, pool: &Pool) -> bool {
        let private_guard = |g: &Ed25519Pub| pool.get(g).is_some_and(|n| self.is_private(n));
        !self.guards.is_empty()
            && self.guards.iter().all(private_guard)
            && pool.nodes().iter().any(|n| {
                self.usable(n)
                    && !self.is_private(n)
                    && !self.guards.contains(&n.ed25519)
                    && !self.in_any_path(&n.ed25519)
            })
    }

    /// Stops using a working guard in a private swarm, for good: its paths go and it leaves the
    /// saved set (it stays in the pool, usable as a relay).
    fn retire_private_guard(&mut self, pool: &Pool) {
        let private = self
            .guards
            .iter()
            .copied()
            .find(|g| pool.get(g).is_some_and(|n| self.is_private(n)));
        if let Some(guard) = private {
            tracing::debug!(%guard, "replacing a guard in a private swarm");
            self.guards.retain(|g| *g != guard);
            self.paths.retain(|p| p.guard().ed25519 != guard);
            self.saved.retain(|e| e.ed25519 != guard);
        }
    }

    /// Whether `node` may be a guard candidate or relay now: not at the failure threshold, and
    /// not a saved guard benched for this run (a node list from a seed forgives failure counts,
    /// but a guard that failed stays out until the next run, or it would fail again as a relay
    /// and lose its slot within the run).
    fn usable(&self, node: &NodeRecord) -> bool {
        !self.benched.contains(&node.ed25519)
            && self.node_failures(&node.ed25519) < self.config.node_failure_threshold
    }

    fn in_any_path(&self, node: &Ed25519Pub) -> bool {
        self.paths.iter().any(|p| p.contains(node))
    }

    /// Sets the swarms of our own account and of the accounts we talk to: guard candidates come
    /// from outside them when possible, and paths through a guard outside them are preferred.
    pub fn set_private_swarms(&mut self, swarms: HashSet<SwarmId>) {
        self.private_swarms = swarms;
    }

    /// Whether `node` is in one of the private swarms.
    fn is_private(&self, node: &NodeRecord) -> bool {
        node.is_active() && self.private_swarms.contains(&node.swarm_id)
    }

    /// Sets the wall-clock time (Unix seconds) used for guard lifetimes.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// Restores the guard set of an earlier run (call before building any path): expired
    /// entries are dropped, at most [`PathConfig::paths`] are kept. The guards are still tested
    /// before use, and no other node is tested while one of them is usable.
    pub fn restore_guards(&mut self, entries: Vec<GuardEntry>) {
        let now = self.now;
        let mut seen = HashSet::new();
        self.saved = entries
            .into_iter()
            .filter(|e| e.expires > now && seen.insert(e.ed25519))
            .take(self.config.paths)
            .collect();
        self.benched.retain(|g| seen.contains(g));
    }

    /// The guard set to persist (see [`Self::restore_guards`]).
    pub fn guard_entries(&self) -> &[GuardEntry] {
        &self.saved
    }

    /// Whether `node` is in the persistent guard set.
    pub fn is_saved_guard(&self, node: &Ed25519Pub) -> bool {
        self.saved.iter().any(|e| &e.ed25519 == node)
    }

    /// Up to `count` guard candidates to test, in random order: usable pool nodes that are not
    /// already guards or hops. While saved guards remain untested this run, only they are
    /// offered; new candidates only when the saved guards cannot fill the slots. New candidates
    /// come from outside the private swarms when at least `count` nodes are, and from swarms
    /// and /24s no current guard is in, when possible.
    pub fn guard_candidates<R: Rng + ?Sized>(
        &self,
        pool: &Pool,
        count: usize,
        rng: &mut R,
    ) -> Vec<NodeRecord> {
        let fresh = |n: &&NodeRecord| {
            self.usable(n) && !self.guards.contains(&n.ed25519) && !self.in_any_path(&n.ed25519)
        };
        let saved: Vec<NodeRecord> = self
            .saved
            .iter()
            .filter(|e| !self.benched.contains(&e.ed25519))
            .filter_map(|e| pool.get(&e.ed25519))
            .filter(fresh)
            .take(count)
            .cloned()
            .collect();
        if !saved.is_empty() {
            return saved;
        }
        let guard_nodes: Vec<&NodeRecord> =
            self.guards.iter().filter_map(|g| pool.get(g)).collect();
        let mut candidates: Vec<&NodeRecord> = pool.nodes().iter().filter(fresh).collect();
        if candidates.iter().filter(|n| !self.is_private(n)).count() >= count {
            candidates.retain(|n| !self.is_private(n));
        }
        candidates.shuffle(rng);
        // Stable sort: outside the private swarms, then swarms and /24s no guard is in first;
        // random order within each group.
        candidates.sort_by_key(|n| {
            (
                self.is_private(n),
                guard_nodes.iter().any(|g| g.swarm_id == n.swarm_id),
                guard_nodes.iter().any(|g| subnet(g.ip) == subnet(n.ip)),
            )
        });
        // Spread the picks over swarms too, so two new guards rarely share one.
        let mut picked: Vec<&NodeRecord> = Vec::new();
        for pass in 0..2 {
            for n in &candidates {
                if picked.len() == count {
                    break;
                }
                let taken = picked.iter().any(|p| p.ed25519 == n.ed25519);
                let same_swarm = picked.iter().any(|p| p.swarm_id == n.swarm_id);
                if !taken && (pass == 1 || !same_swarm) {
                    picked.push(n);
                }
            }
        }
        picked.into_iter().cloned().collect()
    }

    /// Applies the results of guard tests (`(node, passed)`): passing saved guards are accepted
    /// (their failure count reset), then passing new candidates, preferring one outside the
    /// private swarms, then one whose swarm no guard is in; failing ones are rejected
    /// ([`Self::reject_guard_candidate`]). When the candidates were tested to replace a guard in
    /// a private swarm ([`Self::guards_to_find`]), one outside them takes its place.
    pub fn accept_tested(&mut self, pool: &Pool, mut results: Vec<(Ed25519Pub, bool)>) {
        let swarm = |n: &Ed25519Pub| pool.get(n).map(|r| r.swarm_id);
        results.sort_by_key(|(node, _)| !self.is_saved_guard(node));
        for (node, good) in &results {
            if !good {
                tracing::debug!(%node, "guard candidate failed its test");
                self.reject_guard_candidate(*node);
            }
        }
        let mut good: Vec<Ed25519Pub> = results
            .into_iter()
            .filter(|(_, good)| *good)
            .map(|(n, _)| n)
            .collect();
        while !good.is_empty() {
            let replace = self.guards_needed() == 0;
            if replace && !self.private_replacement_needed(pool) {
                break;
            }
            let guard_swarms: Vec<Option<SwarmId>> = self.guards.iter().map(swarm).collect();
            let private = |n: &Ed25519Pub| pool.get(n).is_some_and(|r| self.is_private(r));
            let index = good
                .iter()
                .position(|n| self.is_saved_guard(n))
                .or_else(|| {
                    good.iter()
                        .position(|n| !private(n) && !guard_swarms.contains(&swarm(n)))
                })
                .or_else(|| good.iter().position(|n| !private(n)))
                .or_else(|| good.iter().position(|n| !guard_swarms.contains(&swarm(n))))
                .unwrap_or(0);
            if replace {
                if private(&good[index]) {
                    break;
                }
                self.retire_private_guard(pool);
            }
            let node = good.remove(index);
            self.add_guard(node);
        }
    }

    /// Accepts a node (that passed the guard test) as a guard; a new guard enters the saved set
    /// with a fresh random lifetime, taking the slot of the failing saved guard with the most
    /// failures if the set is full.
    pub fn add_guard(&mut self, guard: Ed25519Pub) {
        if self.guards.contains(&guard) {
            return;
        }
        self.guards.push(guard);
        self.node_failures.remove(&guard);
        self.benched.remove(&guard);
        if let Some(entry) = self.saved.iter_mut().find(|e| e.ed25519 == guard) {
            entry.failures = 0;
            return;
        }
        if self.saved.len() >= self.config.paths {
            let active = &self.guards;
            let worst = self
                .saved
                .iter()
                .enumerate()
                .filter(|(_, e)| !active.contains(&e.ed25519))
                .max_by_key(|(_, e)| e.failures)
                .map(|(i, _)| i);
            if let Some(i) = worst {
                let gone = self.saved.remove(i);
                self.benched.remove(&gone.ed25519);
            }
        }
        let (min, max) = (
            self.config.guard_lifetime_min.as_secs(),
            self.config.guard_lifetime_max.as_secs(),
        );
        let lifetime = if max > min {
            rand::thread_rng().gen_range(min..=max)
        } else {
            min
        };
        self.saved.push(GuardEntry {
            ed25519: guard,
            added: self.now,
            expires: self.now.saturating_add(lifetime),
            failures: 0,
        });
    }

    /// Counts a failure against a saved guard: it leaves the set at the threshold, otherwise it
    /// keeps its slot but is not used again in this run. Returns whether it left the set.
    fn saved_guard_failed(&mut self, node: Ed25519Pub) -> bool {
        let threshold = self.config.guard_failure_threshold;
        let Some(index) = self.saved.iter().position(|e| e.ed25519 == node) else {
            return true;
        };
        let entry = &mut self.saved[index];
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= threshold {
            self.saved.remove(index);
            self.benched.remove(&node);
            true
        } else {
            self.benched.insert(node);
            false
        }
    }

    /// Forgets every node's failure count (after a fresh node list from a seed: nodes it still
    /// lists get another chance, and guard candidates are tested again before use).
    pub fn forgive_failures(&mut self) {
        self.node_failures.clear();
    }

    /// Records that a candidate failed the guard test: it is not offered again (its failure
    /// count is set to the threshold, as libsession does) but stays in the pool as a relay-less
    /// node until the next refresh.
    pub fn reject_guard_candidate(&mut self, node: Ed25519Pub) {
        self.node_failures
            .insert(node, self.config.node_failure_threshold);
        if self.is_saved_guard(&node) {
            self.saved_guard_failed(node);
        }
    }

    /// Builds a path for every guard that has none. Guards no longer in the pool are forgotten.
    pub fn build_paths<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        rng: &mut R,
    ) -> Result<Vec<PathId>, PathError> {
        self.guards.retain(|g| pool.contains(g));
        // A saved guard the node list no longer has left the network.
        self.saved.retain(|e| pool.contains(&e.ed25519));
        let mut built = Vec::new();
        let pending: Vec<Ed25519Pub> = self
            .guards
            .iter()
            .filter(|g| !self.paths.iter().any(|p| &p.guard().ed25519 == *g))
            .copied()
            .collect();
        for guard in pending {
            let Some(guard_node) = pool.get(&guard).cloned() else {
                continue;
            };
            let mut nodes = vec![guard_node];
            while nodes.len() < self.config.hops {
                let relay = self
                    .pick_relay(pool, &nodes, rng)
                    .ok_or(PathError::PoolTooSmall {
                        needed: self.config.hops - nodes.len(),
                    })?;
                nodes.push(relay);
            }
            let id = PathId(self.next_id);
            self.next_id += 1;
            self.paths.push(Path {
                id,
                nodes,
                failures: 0,
            });
            built.push(id);
        }
        Ok(built)
    }

    /// A random relay for a path holding `path_nodes`: a usable pool node that is not a guard and
    /// not in any path, in a /24 none of `path_nodes` is in; failing that (single-subnet devnet),
    /// any such node regardless of /24.
    fn pick_relay<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        path_nodes: &[NodeRecord],
        rng: &mut R,
    ) -> Option<NodeRecord> {
        self.pick_relay_avoiding(pool, path_nodes, &HashSet::new(), rng)
    }

    /// The nodes a request for `destination` should not pass through: the destination and the
    /// other members of its swarm (pool nodes with its swarm id, when it has one).
    pub fn swarm_of(pool: &Pool, destination: &NodeRecord) -> HashSet<Ed25519Pub> {
        let mut members: HashSet<Ed25519Pub> = HashSet::from([destination.ed25519]);
        if destination.is_active() {
            members.extend(
                pool.nodes()
                    .iter()
                    .filter(|n| n.swarm_id == destination.swarm_id)
                    .map(|n| n.ed25519),
            );
        }
        members
    }

    /// A path for a request to `destination` (`None`: a request to a server).
    ///
    /// In order of preference:
    /// 1. a random path with no node in the destination's swarm ([`Self::swarm_of`]) whose
    ///    guard is outside the private swarms ([`Self::set_private_swarms`]);
    /// 2. a path whose guard is outside both, its relays in the destination's swarm replaced by
    ///    relays outside it (relays never see our IP, so changing them costs nothing);
    /// 3. the same through a guard in a private swarm (no other guard works);
    /// 4. only if every guard is in the destination's swarm (one guard left, or swarms changed
    ///    after the guards were chosen): a path through such a guard that does not contain the
    ///    destination itself. We accept that this guard, which sees our IP, also receives
    ///    the replicated message, rather than connect to a new node: testing one would show our
    ///    IP to one more node for every such contact, and over many contacts to most of the
    ///    network, which is what stable guards prevent. Guards are chosen in distinct swarms
    ///    so that this case needs two failing guards or a swarm reshuffle.
    pub fn select<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        destination: Option<&NodeRecord>,
        rng: &mut R,
    ) -> Result<Path, PathError> {
        let mut order: Vec<usize> = (0..self.paths.len()).collect();
        order.shuffle(rng);
        let Some(destination) = destination else {
            order.sort_by_key(|&i| self.is_private(self.paths[i].guard()));
            return order
                .first()
                .map(|&i| self.paths[i].clone())
                .ok_or(PathError::NoPathAvoiding);
        };
        let swarm = Self::swarm_of(pool, destination);
        order.retain(|&i| self.paths[i].guard().ed25519 != destination.ed25519);
        // Guards outside the destination's swarm first, then outside the private swarms; within
        // each group, a path already clear of the swarm before one whose relays must change.
        order.sort_by_key(|&i| {
            let path = &self.paths[i];
            (
                swarm.contains(&path.guard().ed25519),
                self.is_private(path.guard()),
                path.nodes.iter().any(|n| swarm.contains(&n.ed25519)),
            )
        });
        for &index in &order {
            if self.replace_relays(index, pool, &swarm, rng) {
                return Ok(self.paths[index].clone());
            }
        }
        // Too few nodes outside the swarm for relays: only the destination itself is avoided.
        let only_dest = HashSet::from([destination.ed25519]);
        for &index in &order {
            if self.replace_relays(index, pool, &only_dest, rng) {
                return Ok(self.paths[index].clone());
            }
        }
        Err(PathError::NoPathAvoiding)
    }

    /// Replaces every relay of path `index` that is in `avoid` by a free relay outside it;
    /// `false` (path unchanged) if there are not enough such relays.
    fn replace_relays<R: Rng + ?Sized>(
        &mut self,
        index: usize,
        pool: &Pool,
        avoid: &HashSet<Ed25519Pub>,
        rng: &mut R,
    ) -> bool {
        let mut nodes = self.paths[index].nodes.clone();
        for hop in 1..nodes.len() {
            if !avoid.contains(&nodes[hop].ed25519) {
                continue;
            }
            let others: Vec<NodeRecord> = nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != hop)
                .map(|(_, n)| n.clone())
                .collect();
            let relaxed = self.subnet_relaxed;
            let pick = self.pick_relay_avoiding(pool, &others, avoid, rng);
            let Some(replacement) = pick else {
                self.subnet_relaxed = relaxed;
                return false;
            };
            nodes[hop] = replacement;
        }
        self.paths[index].nodes = nodes;
        true
    }

    /// [`Self::pick_relay`] restricted to nodes outside `avoid`.
    fn pick_relay_avoiding<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        path_nodes: &[NodeRecord],
        avoid: &HashSet<Ed25519Pub>,
        rng: &mut R,
    ) -> Option<NodeRecord> {
        let taken: HashSet<[u8; 3]> = path_nodes.iter().map(|n| subnet(n.ip)).collect();
        let free: Vec<&NodeRecord> = pool
            .nodes()
            .iter()
            .filter(|n| {
                self.usable(n) && !avoid.contains(&n.ed25519) && !self.is_saved_guard(&n.ed25519)
            })
            .filter(|n| !self.guards.contains(&n.ed25519) && !self.in_any_path(&n.ed25519))
            .filter(|n| !path_nodes.iter().any(|p| p.ed25519 == n.ed25519))
            .collect();
        let distinct: Vec<&&NodeRecord> = free
            .iter()
            .filter(|n| !taken.contains(&subnet(n.ip)))
            .collect();
        if let Some(node) = distinct.choose(rng) {
            return Some((**node).clone());
        }
        let node = free.choose(rng)?;
        self.subnet_relaxed = true;
        Some((*node).clone())
    }

    /// Feeds the outcome of a request sent over `path`; applies spec §3.3's reactions and drops
    /// nodes from `pool` as needed.
    pub fn report<R: Rng + ?Sized>(
        &mut self,
        path: PathId,
        outcome: Outcome,
        pool: &mut Pool,
        rng: &mut R,
    ) -> Effects {
        let mut effects = Effects::default();
        match outcome {
            Outcome::Success => {
                if let Some(p) = self.paths.iter_mut().find(|p| p.id == path) {
                    p.failures = 0;
                }
            }
            Outcome::PathFailure => {
                let Some(index) = self.paths.iter().position(|p| p.id == path) else {
                    return effects;
                };
                self.paths[index].failures += 1;
                let relays: Vec<Ed25519Pub> = self.paths[index].nodes[1..]
                    .iter()
                    .map(|n| n.ed25519)
                    .collect();
                if self.paths[index].failures >= self.config.path_failure_threshold {
                    let guard = self.paths[index].guard().ed25519;
                    self.paths.remove(index);
                    effects.dropped_paths.push(path);
                    self.retire_guard(guard, pool, &mut effects);
                }
                for relay in relays {
                    self.count_node_failure(relay, pool, rng, &mut effects);
                }
            }
            Outcome::GuardUnreachable => {
                if let Some(p) = self.paths.iter().find(|p| p.id == path) {
                    let guard = p.guard().ed25519;
                    self.drop_node(guard, pool, rng, &mut effects);
                }
            }
            Outcome::NextNodeNotFound(node) => self.drop_node(node, pool, rng, &mut effects),
            Outcome::DestinationFailure(node) => {
                self.count_node_failure(node, pool, rng, &mut effects);
            }
        }
        effects
    }

    fn count_node_failure<R: Rng + ?Sized>(
        &mut self,
        node: Ed25519Pub,
        pool: &mut Pool,
        rng: &mut R,
        effects: &mut Effects,
    ) {
        let count = self.node_failures.entry(node).or_insert(0);
        *count = count.saturating_add(1);
        if *count >= self.config.node_failure_threshold {
            self.drop_node(node, pool, rng, effects);
        }
    }

    /// Removes `node` from the pool and from every path: a path whose guard it was is dropped
    /// (with the guard); a path where it was a relay gets a replacement (not tested, so as not to
    /// reveal our address to it).
    pub fn remove_node<R: Rng + ?Sized>(
        &mut self,
        node: Ed25519Pub,
        pool: &mut Pool,
        rng: &mut R,
    ) -> Effects {
        let mut effects = Effects::default();
        self.drop_node(node, pool, rng, &mut effects);
        effects
    }

    fn drop_node<R: Rng + ?Sized>(
        &mut self,
        node: Ed25519Pub,
        pool: &mut Pool,
        rng: &mut R,
        effects: &mut Effects,
    ) {
        if self.guards.contains(&node) || self.is_saved_guard(&node) {
            let dropped: Vec<PathId> = self
                .paths
                .iter()
                .filter(|p| p.guard().ed25519 == node)
                .map(|p| p.id)
                .collect();
            self.paths.retain(|p| p.guard().ed25519 != node);
            effects.dropped_paths.extend(dropped);
            self.retire_guard(node, pool, effects);
        } else {
            self.node_failures.remove(&node);
            if pool.remove(&node) {
                effects.dropped_nodes.push(node);
            }
        }
        for index in 0..self.paths.len() {
            let Some(hop) = self.paths[index]
                .nodes
                .iter()
                .position(|n| n.ed25519 == node)
            else {
                continue;
            };
            let others: Vec<NodeRecord> = self.paths[index]
                .nodes
                .iter()
                .filter(|n| n.ed25519 != node)
                .cloned()
                .collect();
            let id = self.paths[index].id;
            if let Some(replacement) = self.pick_relay(pool, &others, rng) {
                self.paths[index].nodes[hop] = replacement;
                effects.repaired_paths.push(id);
            } else {
                // Nothing to repair with: drop the path; its guard stays for a later rebuild.
                self.paths.remove(index);
                effects.dropped_paths.push(id);
                break;
            }
        }
    }

    /// Stops using `guard` (its paths are already gone). A saved guard below
    /// [`PathConfig::guard_failure_threshold`] keeps its slot and its place in the pool (so the
    /// next run tries it again) but is used neither as guard nor as relay in this run; any other
    /// guard leaves the pool.
    fn retire_guard(&mut self, guard: Ed25519Pub, pool: &mut Pool, effects: &mut Effects) {
        self.guards.retain(|g| *g != guard);
        if !pool.contains(&guard) {
            self.saved.retain(|e| e.ed25519 != guard);
            self.benched.remove(&guard);
        } else if self.is_saved_guard(&guard) && !self.saved_guard_failed(guard) {
            self.node_failures
                .insert(guard, self.config.node_failure_threshold);
            return;
        }
        self.node_failures.remove(&guard);
        if pool.remove(&guard) {
            effects.dropped_nodes.push(guard);
        }
    }

    /// Forgets nodes that left the pool (after a refresh): their paths are repaired or dropped.
    pub fn prune<R: Rng + ?Sized>(&mut self, pool: &mut Pool, rng: &mut R) -> Effects {
        let gone: Vec<Ed25519Pub> = self
            .paths
            .iter()
            .flat_map(|p| p.nodes.iter().map(|n| n.ed25519))
            .chain(self.guards.iter().copied())
            .filter(|n| !pool.contains(n))
            .collect();
        let mut effects = Effects::default();
        for node in gone {
            self.drop_node(node, pool, rng, &mut effects);
        }
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::node;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use shallot_proto::swarm::SwarmId;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    /// A pool of `n` nodes, each in its own /24.
    fn spread_pool(n: u8) -> Pool {
        Pool::new((1..=n).map(|i| node(i, i)))
    }

    fn ready(pool: &Pool, rng: &mut StdRng) -> PathManager {
        let mut manager = PathManager::new(PathConfig::default());
        for guard in manager.guard_candidates(pool, 2, rng) {
            manager.add_guard(guard.ed25519);
        }
        manager.build_paths(pool, rng).unwrap();
        manager
    }

    #[test]
    fn builds_disjoint_three_hop_paths_with_distinct_guards() {
        let pool = spread_pool(12);
        let manager = ready(&pool, &mut rng());
        assert_eq!(manager.paths().len(), 2);
        let mut seen = HashSet::new();
        for path in manager.paths() {
            assert_eq!(path.nodes().len(), 3);
            for n in path.nodes() {
                assert!(seen.insert(n.ed25519), "node reused across paths");
            }
        }
        assert_ne!(
            manager.paths()[0].guard().ed25519,
            manager.paths()[1].guard().ed25519
        );
        assert!(!manager.subnet_rule_relaxed());
    }

    #[test]
    fn no_two_hops_share_a_subnet_when_the_pool_allows() {
        // Nodes 1-6 in 10.0.1.0/24, 7-12 each in their own /24: every path needs 2 relays outside
        // its guard's /24, and there are enough.
        let pool = Pool::new((1..=12).map(|i| node(i, if i <= 6 { 1 } else { i })));
        for seed in 0..20 {
            let mut r = StdRng::seed_from_u64(seed);
            let manager = ready(&pool, &mut r);
            for path in manager.paths() {
                let subnets: HashSet<_> = path.nodes().iter().map(|n| subnet(n.ip)).collect();
                assert_eq!(subnets.len(), 3, "seed {seed}: {:?}", path.nodes());
            }
            assert!(!manager.subnet_rule_relaxed());
        }
    }

    #[test]
    fn single_subnet_pool_falls_back_and_says_so() {
        let pool = Pool::new((1..=8).map(|i| node(i, 1)));
        let manager = ready(&pool, &mut rng());
        assert_eq!(manager.paths().len(), 2);
        assert!(manager.subnet_rule_relaxed());
    }

    #[test]
    fn pool_too_small_is_an_error() {
        let pool = spread_pool(4);
        let mut r = rng();
        let mut manager = PathManager::new(PathConfig::default());
        for guard in manager.guard_candidates(&pool, 2, &mut r) {
            manager.add_guard(guard.ed25519);
        }
        assert!(matches!(
            manager.build_paths(&pool, &mut r),
            Err(PathError::PoolTooSmall { .. })
        ));
    }

    #[test]
    fn three_path_failures_drop_path_and_guard() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let path = manager.paths()[0].clone();
        let guard = path.guard().ed25519;
        for _ in 0..2 {
            let effects = manager.report(path.id(), Outcome::PathFailure, &mut pool, &mut r);
            assert!(effects.dropped_paths.is_empty());
        }
        assert_eq!(manager.paths()[0].failures(), 2);
        assert_eq!(manager.node_failures(&path.nodes()[1].ed25519), 2);
        let effects = manager.report(path.id(), Outcome::PathFailure, &mut pool, &mut r);
        assert_eq!(effects.dropped_paths, vec![path.id()]);
        // The guard is not used again in this run but keeps its slot (one failure of three).
        assert!(!effects.dropped_nodes.contains(&guard));
        assert!(pool.contains(&guard));
        assert!(!manager.guards().contains(&guard));
        assert_eq!(manager.guard_entries()[0].failures, 1);
        // The relays reached their own threshold too and left the pool.
        assert!(!pool.contains(&path.nodes()[1].ed25519));
        assert_eq!(manager.paths().len(), 1);
        assert_eq!(manager.guards_needed(), 0);
        // A late report about the dropped path changes nothing.
        let effects = manager.report(path.id(), Outcome::PathFailure, &mut pool, &mut r);
        assert_eq!(effects, Effects::default());
    }

    #[test]
    fn unreachable_guard_drops_its_path_at_once() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let path = manager.paths()[0].clone();
        let effects = manager.report(path.id(), Outcome::GuardUnreachable, &mut pool, &mut r);
        assert_eq!(effects.dropped_paths, vec![path.id()]);
        assert_eq!(manager.node_failures(&path.nodes()[1].ed25519), 0);
        // A saved guard keeps its slot until it failed three times in a row.
        assert!(effects.dropped_nodes.is_empty());
        assert_eq!(manager.guards_needed(), 0);
        // When the other guard fails too, no guard works: new ones are needed.
        let other = manager.paths()[0].id();
        manager.report(other, Outcome::GuardUnreachable, &mut pool, &mut r);
        assert_eq!(manager.guards_needed(), 2);
        let guard = manager.guard_candidates(&pool, 1, &mut r)[0].ed25519;
        manager.add_guard(guard);
        manager.build_paths(&pool, &mut r).unwrap();
        assert_eq!(manager.paths().len(), 1);
        assert_eq!(
            manager.guard_entries().len(),
            2,
            "the new guard took a slot"
        );
        assert!(manager.is_saved_guard(&guard));
    }

    #[test]
    fn success_resets_the_path_failure_count() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let id = manager.paths()[0].id();
        manager.report(id, Outcome::PathFailure, &mut pool, &mut r);
        manager.report(id, Outcome::PathFailure, &mut pool, &mut r);
        manager.report(id, Outcome::Success, &mut pool, &mut r);
        manager.report(id, Outcome::PathFailure, &mut pool, &mut r);
        assert_eq!(
            manager
                .paths()
                .iter()
                .find(|p| p.id() == id)
                .map(Path::failures),
            Some(1)
        );
    }

    #[test]
    fn next_node_not_found_drops_the_node_and_repairs() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let path = manager.paths()[0].clone();
        let relay = path.nodes()[2].ed25519;
        let effects = manager.report(
            path.id(),
            Outcome::NextNodeNotFound(relay),
            &mut pool,
            &mut r,
        );
        assert_eq!(effects.dropped_nodes, vec![relay]);
        assert_eq!(effects.repaired_paths, vec![path.id()]);
        assert!(!pool.contains(&relay));
        let repaired = manager
            .paths()
            .iter()
            .find(|p| p.id() == path.id())
            .unwrap();
        assert_eq!(repaired.nodes().len(), 3);
        assert!(!repaired.contains(&relay));
        assert_eq!(repaired.guard(), path.guard());
        assert_eq!(
            repaired.failures(),
            0,
            "a vanished node is not the path's fault"
        );

        // A vanished guard takes its path with it (and keeps its slot for now).
        let guard = manager.paths()[1].guard().ed25519;
        let other = manager.paths()[1].id();
        let effects = manager.report(other, Outcome::NextNodeNotFound(guard), &mut pool, &mut r);
        assert_eq!(effects.dropped_paths, vec![other]);
        assert_eq!(manager.guards_needed(), 0);
    }

    #[test]
    fn destination_failures_drop_it_after_three() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let id = manager.paths()[0].id();
        let dest = pool
            .nodes()
            .iter()
            .map(|n| n.ed25519)
            .find(|n| !manager.paths().iter().any(|p| p.contains(n)))
            .unwrap();
        manager.report(id, Outcome::DestinationFailure(dest), &mut pool, &mut r);
        manager.report(id, Outcome::DestinationFailure(dest), &mut pool, &mut r);
        assert!(pool.contains(&dest));
        let effects = manager.report(id, Outcome::DestinationFailure(dest), &mut pool, &mut r);
        assert_eq!(effects.dropped_nodes, vec![dest]);
        assert_eq!(
            manager.paths()[0].failures(),
            0,
            "the path is not penalised"
        );
    }

    /// Every hop of `path` is outside `destination`'s swarm.
    fn outside_swarm(path: &Path, destination: &NodeRecord) -> bool {
        path.nodes()
            .iter()
            .all(|n| n.swarm_id != destination.swarm_id)
    }

    #[test]
    fn guards_come_from_distinct_swarms() {
        let pool = spread_pool(12);
        for seed in 0..50 {
            let manager = ready(&pool, &mut StdRng::seed_from_u64(seed));
            let swarms: HashSet<_> = manager
                .guards()
                .iter()
                .map(|g| pool.get(g).unwrap().swarm_id)
                .collect();
            assert_eq!(swarms.len(), 2, "seed {seed}");
        }
    }

    #[test]
    fn selection_avoids_every_node_of_the_destinations_swarm() {
        let pool = spread_pool(12);
        for seed in 0..20 {
            let mut r = StdRng::seed_from_u64(seed);
            let mut manager = ready(&pool, &mut r);
            let guards = manager.guards().to_vec();
            for destination in pool.nodes() {
                for _ in 0..5 {
                    let chosen = manager.select(&pool, Some(destination), &mut r).unwrap();
                    assert!(
                        outside_swarm(&chosen, destination),
                        "seed {seed}: {:?} for {:?}",
                        chosen.nodes(),
                        destination.swarm_id
                    );
                    assert_eq!(chosen.nodes().len(), 3);
                }
            }
            // Only relays were changed: the guards are the same.
            assert_eq!(manager.guards(), &guards[..]);
            let mut seen = HashSet::new();
            for path in manager.paths() {
                assert!(path.nodes().iter().all(|n| seen.insert(n.ed25519)));
            }
        }
    }

    #[test]
    fn with_every_guard_in_the_swarm_the_guard_is_kept_but_never_the_destination() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        // Lose one path (its guard keeps a slot but is not used): one guard left.
        let lost = manager.paths()[1].clone();
        manager.report(lost.id(), Outcome::GuardUnreachable, &mut pool, &mut r);
        assert_eq!(manager.paths().len(), 1);
        let guard = manager.paths()[0].guard().clone();
        let guards_before = manager.guard_entries().to_vec();
        // A destination in the guard's swarm, other than the guard itself.
        let destination = pool
            .nodes()
            .iter()
            .find(|n| n.swarm_id == guard.swarm_id && n.ed25519 != guard.ed25519)
            .unwrap()
            .clone();
        for _ in 0..10 {
            let chosen = manager.select(&pool, Some(&destination), &mut r).unwrap();
            assert_eq!(chosen.guard(), &guard, "no new guard is taken");
            assert!(!chosen.contains(&destination.ed25519));
            // The relays are still outside the swarm.
            assert!(chosen.nodes()[1..]
                .iter()
                .all(|n| n.swarm_id != destination.swarm_id));
        }
        assert_eq!(manager.guard_entries(), &guards_before[..]);
        // The guard itself as destination: no path.
        assert_eq!(
            manager.select(&pool, Some(&guard), &mut r),
            Err(PathError::NoPathAvoiding)
        );
    }

    #[test]
    fn a_relay_that_is_the_destination_is_replaced() {
        // One swarm for everything: only the destination itself can be avoided.
        let mut nodes: Vec<NodeRecord> = (1..=12).map(|i| node(i, i)).collect();
        for n in &mut nodes {
            n.swarm_id = SwarmId(0);
        }
        let pool = Pool::new(nodes);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let first = manager.paths()[0].clone();
        for hop in &first.nodes()[1..] {
            for _ in 0..10 {
                let chosen = manager.select(&pool, Some(hop), &mut r).unwrap();
                assert!(!chosen.contains(&hop.ed25519));
            }
        }
    }

    /// 16 nodes in four swarms (`i % 4`), each in its own /24.
    fn four_swarm_pool() -> Pool {
        Pool::new((1..=16).map(|i| {
            let mut n = node(i, i);
            n.swarm_id = SwarmId(u64::from(i % 4) * 1000);
            n
        }))
    }

    #[test]
    fn nodes_that_see_our_ip_stay_out_of_private_swarms() {
        let pool = four_swarm_pool();
        let swarm = |key: &Ed25519Pub| pool.get(key).unwrap().swarm_id;
        let private: HashSet<SwarmId> = [SwarmId(0), SwarmId(1000)].into();
        for seed in 0..30 {
            let mut r = StdRng::seed_from_u64(seed);
            let mut manager = PathManager::new(PathConfig::default());
            manager.set_private_swarms(private.clone());
            // Guard candidates see our IP in their test: none from a private swarm.
            let candidates = manager.guard_candidates(&pool, 4, &mut r);
            assert_eq!(candidates.len(), 4);
            assert!(candidates.iter().all(|n| !private.contains(&n.swarm_id)));
            let results = candidates.iter().map(|c| (c.ed25519, true)).collect();
            manager.accept_tested(&pool, results);
            manager.build_paths(&pool, &mut r).unwrap();
            let guards = manager.guards().to_vec();
            assert_eq!(guards.len(), 2);
            assert_ne!(swarm(&guards[0]), swarm(&guards[1]));
            // A new correspondent lives in the first guard's swarm: the guard stays, idle
            // while the other one can carry the request.
            let mut more = private.clone();
            more.insert(swarm(&guards[0]));
            manager.set_private_swarms(more);
            for destination in pool.nodes() {
                if guards.contains(&destination.ed25519) {
                    continue;
                }
                let path = manager.select(&pool, Some(destination), &mut r).unwrap();
                if swarm(&guards[1]) != destination.swarm_id {
                    assert_eq!(path.guard().ed25519, guards[1]);
                }
            }
            assert_eq!(
                manager.select(&pool, None, &mut r).unwrap().guard().ed25519,
                guards[1]
            );
            assert_eq!(
                manager.guards_to_find(&pool),
                0,
                "a guard outside works: no new one"
            );
        }
    }

    #[test]
    fn a_guard_in_a_private_swarm_is_replaced_when_no_other_guard_works() {
        let pool = four_swarm_pool();
        let now = 1_000 * DAY;
        let mut r = rng();
        let (first, _) = run(&pool, Vec::new(), now, &|_| true, &mut r);
        let saved = first.guard_entries().to_vec();
        let (kept, lost) = (saved[0].ed25519, saved[1].ed25519);
        // Next run the second guard is down: it keeps its slot, benched for the run.
        let (mut manager, _) = run(&pool, saved, now, &|n| *n != lost, &mut r);
        assert_eq!(manager.guards(), &[kept]);
        assert_eq!(manager.guards_to_find(&pool), 0);
        // Then the working guard turns out to be in a correspondent's swarm.
        let private = pool.get(&kept).unwrap().swarm_id;
        manager.set_private_swarms(HashSet::from([private]));
        assert_eq!(manager.guards_to_find(&pool), 1);
        let candidates = manager.guard_candidates(&pool, 2, &mut r);
        assert!(candidates.iter().all(|n| n.swarm_id != private));
        let results = candidates.iter().map(|c| (c.ed25519, true)).collect();
        manager.accept_tested(&pool, results);
        manager.build_paths(&pool, &mut r).unwrap();
        assert_eq!(manager.guards().len(), 1);
        let new = manager.guards()[0];
        assert_ne!(pool.get(&new).unwrap().swarm_id, private);
        assert!(
            !manager.is_saved_guard(&kept),
            "the private guard left the saved set"
        );
        assert!(
            manager.is_saved_guard(&lost),
            "the benched guard keeps its slot"
        );
        assert!(manager.paths().iter().all(|p| p.guard().ed25519 == new));
        assert_eq!(manager.guards_to_find(&pool), 0);
    }

    #[test]
    fn rejected_guard_candidates_are_not_offered_again() {
        let pool = spread_pool(5);
        let mut r = rng();
        let mut manager = PathManager::new(PathConfig::default());
        let first = manager.guard_candidates(&pool, 5, &mut r);
        assert_eq!(first.len(), 5);
        manager.reject_guard_candidate(first[0].ed25519);
        let again = manager.guard_candidates(&pool, 5, &mut r);
        assert_eq!(again.len(), 4);
        assert!(again.iter().all(|n| n.ed25519 != first[0].ed25519));
    }

    const DAY: u64 = 24 * 3600;

    fn entry(node: &NodeRecord, now: u64) -> GuardEntry {
        GuardEntry {
            ed25519: node.ed25519,
            added: now - DAY,
            expires: now + 10 * DAY,
            failures: 0,
        }
    }

    /// One run: restore `saved`, test candidates with `passes`, build paths; the saved set after.
    fn run(
        pool: &Pool,
        saved: Vec<GuardEntry>,
        now: u64,
        passes: &dyn Fn(&Ed25519Pub) -> bool,
        r: &mut StdRng,
    ) -> (PathManager, Vec<Ed25519Pub>) {
        let mut manager = PathManager::new(PathConfig::default());
        manager.set_now(now);
        manager.restore_guards(saved);
        let mut tested = Vec::new();
        for _ in 0..6 {
            let needed = manager.guards_needed();
            if needed == 0 {
                break;
            }
            let candidates = manager.guard_candidates(pool, 2 * needed, r);
            if candidates.is_empty() {
                break;
            }
            let results = candidates
                .iter()
                .map(|c| (c.ed25519, passes(&c.ed25519)))
                .collect();
            tested.extend(candidates.iter().map(|c| c.ed25519));
            manager.accept_tested(pool, results);
        }
        let _ = manager.build_paths(pool, r);
        (manager, tested)
    }

    #[test]
    fn saved_guards_are_the_only_nodes_tested_and_stay_across_runs() {
        let pool = spread_pool(12);
        let now = 1_000 * DAY;
        let mut r = rng();
        let (first, _) = run(&pool, Vec::new(), now, &|_| true, &mut r);
        let saved = first.guard_entries().to_vec();
        assert_eq!(saved.len(), 2);
        for e in &saved {
            let life = e.expires - e.added;
            assert!((30 * DAY..=60 * DAY).contains(&life), "{life}");
        }
        let mut state = saved.clone();
        for day in 1..20 {
            let (manager, tested) = run(&pool, state, now + day * DAY, &|_| true, &mut r);
            assert_eq!(tested.len(), 2, "only the saved guards are contacted");
            assert_eq!(manager.guard_entries(), &saved[..]);
            assert_eq!(manager.paths().len(), 2);
            state = manager.guard_entries().to_vec();
        }
    }

    #[test]
    fn a_saved_guard_is_replaced_after_three_failed_runs_only() {
        let pool = spread_pool(12);
        let now = 1_000 * DAY;
        let mut r = rng();
        let saved = vec![entry(&pool.nodes()[0], now), entry(&pool.nodes()[1], now)];
        let down = pool.nodes()[0].ed25519;
        let mut state = saved.clone();
        for failed_runs in 1..=2u8 {
            let (manager, tested) = run(&pool, state, now, &|n| *n != down, &mut r);
            assert_eq!(
                tested.len(),
                2,
                "no new node is tested while a guard is only down"
            );
            assert_eq!(manager.paths().len(), 1);
            assert_eq!(manager.guard_entries()[0].failures, failed_runs);
            state = manager.guard_entries().to_vec();
        }
        // It comes back: the count resets.
        let (manager, _) = run(&pool, state.clone(), now, &|_| true, &mut r);
        assert_eq!(manager.guard_entries()[0].failures, 0);
        assert_eq!(manager.paths().len(), 2);
        // Three failed runs in a row: replaced by a node of another swarm than the other guard.
        let mut state = manager.guard_entries().to_vec();
        for _ in 0..3 {
            let (manager, _) = run(&pool, state, now, &|n| *n != down, &mut r);
            state = manager.guard_entries().to_vec();
        }
        assert_eq!(state.len(), 2);
        assert!(state.iter().all(|e| e.ed25519 != down));
        assert_eq!(
            state[0].ed25519, saved[1].ed25519,
            "the working guard stays"
        );
        let swarm = |k: &Ed25519Pub| pool.get(k).unwrap().swarm_id;
        assert_ne!(swarm(&state[0].ed25519), swarm(&state[1].ed25519));
    }

    #[test]
    fn guards_expire_or_leave_with_the_node_list() {
        let pool = spread_pool(12);
        let now = 1_000 * DAY;
        let mut r = rng();
        let mut expired = entry(&pool.nodes()[0], now);
        expired.expires = now - 1;
        let gone = GuardEntry {
            ed25519: Ed25519Pub::from_bytes([99; 32]),
            ..entry(&pool.nodes()[1], now)
        };
        let kept = entry(&pool.nodes()[2], now);
        let (manager, tested) = run(
            &pool,
            vec![expired.clone(), gone, kept.clone()],
            now,
            &|_| true,
            &mut r,
        );
        let keys: Vec<Ed25519Pub> = manager.guard_entries().iter().map(|e| e.ed25519).collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], kept.ed25519);
        assert!(!keys.contains(&expired.ed25519));
        assert_eq!(tested[0], kept.ed25519, "the kept guard is tested first");
    }

    #[test]
    fn when_no_saved_guard_works_new_ones_take_their_slots() {
        let pool = spread_pool(12);
        let now = 1_000 * DAY;
        let mut r = rng();
        let saved = vec![entry(&pool.nodes()[0], now), entry(&pool.nodes()[1], now)];
        let (manager, _) = run(
            &pool,
            saved.clone(),
            now,
            &|n| !saved.iter().any(|e| e.ed25519 == *n),
            &mut r,
        );
        // One new guard, just enough to connect; the other slot stays with a failing guard.
        assert_eq!(manager.paths().len(), 1);
        let entries = manager.guard_entries();
        assert_eq!(entries.len(), 2);
        let new: Vec<_> = entries
            .iter()
            .filter(|e| !saved.iter().any(|s| s.ed25519 == e.ed25519))
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].ed25519, manager.guards()[0]);
        // Offline (nothing passes): the saved guards are kept, one failure each.
        let (manager, _) = run(&pool, saved.clone(), now, &|_| false, &mut r);
        assert!(manager.paths().is_empty());
        let keys: Vec<_> = manager
            .guard_entries()
            .iter()
            .map(|e| (e.ed25519, e.failures))
            .collect();
        assert_eq!(keys, vec![(saved[0].ed25519, 1), (saved[1].ed25519, 1)]);
    }

    #[test]
    fn prune_repairs_paths_after_a_refresh() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let relay = manager.paths()[0].nodes()[1].ed25519;
        pool.remove(&relay);
        let effects = manager.prune(&mut pool, &mut r);
        assert_eq!(effects.repaired_paths.len(), 1);
        assert!(manager.paths().iter().all(|p| !p.contains(&relay)));
    }
}
