//! Guards and onion paths (spec §3.2–§3.3) as a sans-I/O state machine: the [`PathManager`] picks
//! guard candidates and relays from a [`Pool`], hands out paths, and is fed the outcome of every
//! request; it never touches a socket, so thresholds, repair and exclusion rules are unit-tested
//! here and the async [`crate::OnionClient`] only does the I/O.
//!
//! Rules: every path is `[guard, relay, relay]` with a distinct guard; a node is in at most one
//! path; no two nodes of a path share an IPv4 /24 *when the pool allows it*. On a devnet where
//! every node is in 127.0.N.0/24 that is impossible, so the manager falls back to distinct nodes
//! and reports it through [`PathManager::subnet_rule_relaxed`] rather than refusing to build.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use rand::seq::SliceRandom;
use rand::Rng;
use shallot_directory::NodeRecord;
use shallot_proto::onion::NodeKeys;
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
}

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            hops: 3,
            paths: 2,
            path_failure_threshold: 3,
            node_failure_threshold: 3,
        }
    }
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
    /// Guards of an earlier run, offered first as candidates (still tested before use).
    preferred_guards: Vec<Ed25519Pub>,
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

    /// How many more guards are needed to reach the configured path count.
    pub fn guards_needed(&self) -> usize {
        self.config.paths.saturating_sub(self.guards.len())
    }

    fn usable(&self, node: &NodeRecord) -> bool {
        self.node_failures(&node.ed25519) < self.config.node_failure_threshold
    }

    fn in_any_path(&self, node: &Ed25519Pub) -> bool {
        self.paths.iter().any(|p| p.contains(node))
    }

    /// Keeps the guards of an earlier run: they are offered first as candidates (and still
    /// tested). Stable guards mean a client does not keep drawing new entry nodes, each of
    /// which could be the one that watches it.
    pub fn prefer_guards(&mut self, guards: Vec<Ed25519Pub>) {
        self.preferred_guards = guards;
    }

    /// Whether `node` was a guard of an earlier run (see [`Self::prefer_guards`]).
    pub fn is_preferred_guard(&self, node: &Ed25519Pub) -> bool {
        self.preferred_guards.contains(node)
    }

    /// Up to `count` guard candidates to test, in random order: usable pool nodes that are not
    /// already guards or hops; guards of an earlier run first, then /24s no current guard is in.
    pub fn guard_candidates<R: Rng + ?Sized>(
        &self,
        pool: &Pool,
        count: usize,
        rng: &mut R,
    ) -> Vec<NodeRecord> {
        let guard_subnets: HashSet<[u8; 3]> = self
            .guards
            .iter()
            .filter_map(|g| pool.get(g))
            .map(|n| subnet(n.ip))
            .collect();
        let mut candidates: Vec<&NodeRecord> = pool
            .nodes()
            .iter()
            .filter(|n| self.usable(n))
            .filter(|n| !self.guards.contains(&n.ed25519) && !self.in_any_path(&n.ed25519))
            .collect();
        candidates.shuffle(rng);
        // Stable sort: earlier guards, then fresh /24s; random order within each group.
        candidates.sort_by_key(|n| {
            (
                !self.preferred_guards.contains(&n.ed25519),
                guard_subnets.contains(&subnet(n.ip)),
            )
        });
        candidates.into_iter().take(count).cloned().collect()
    }

    /// Accepts a candidate that passed the guard test.
    pub fn add_guard(&mut self, guard: Ed25519Pub) {
        if !self.guards.contains(&guard) {
            self.guards.push(guard);
            self.node_failures.remove(&guard);
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
        self.preferred_guards.retain(|g| *g != node);
    }

    /// Builds a path for every guard that has none. Guards no longer in the pool are forgotten.
    pub fn build_paths<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        rng: &mut R,
    ) -> Result<Vec<PathId>, PathError> {
        self.guards.retain(|g| pool.contains(g));
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
        let taken: HashSet<[u8; 3]> = path_nodes.iter().map(|n| subnet(n.ip)).collect();
        let free: Vec<&NodeRecord> = pool
            .nodes()
            .iter()
            .filter(|n| self.usable(n))
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

    /// A random path that does not contain `destination` (a request never goes through its own
    /// destination). If every path contains it as a relay, one such path is repaired first.
    pub fn select<R: Rng + ?Sized>(
        &mut self,
        pool: &Pool,
        destination: Option<&Ed25519Pub>,
        rng: &mut R,
    ) -> Result<Path, PathError> {
        let avoiding: Vec<&Path> = self
            .paths
            .iter()
            .filter(|p| destination.is_none_or(|d| !p.contains(d)))
            .collect();
        if let Some(path) = avoiding.choose(rng) {
            return Ok((*path).clone());
        }
        let destination = destination.ok_or(PathError::NoPathAvoiding)?;
        // Replace the destination in the first path where it is only a relay.
        let index = self
            .paths
            .iter()
            .position(|p| p.guard().ed25519 != *destination)
            .ok_or(PathError::NoPathAvoiding)?;
        let hop = self.paths[index]
            .nodes
            .iter()
            .position(|n| n.ed25519 == *destination)
            .ok_or(PathError::NoPathAvoiding)?;
        let others: Vec<NodeRecord> = self.paths[index]
            .nodes
            .iter()
            .filter(|n| n.ed25519 != *destination)
            .cloned()
            .collect();
        let replacement = self
            .pick_relay(pool, &others, rng)
            .filter(|n| n.ed25519 != *destination)
            .ok_or(PathError::NoPathAvoiding)?;
        self.paths[index].nodes[hop] = replacement;
        Ok(self.paths[index].clone())
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
                    self.guards.retain(|g| *g != guard);
                    self.node_failures.remove(&guard);
                    if pool.remove(&guard) {
                        effects.dropped_nodes.push(guard);
                    }
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
        self.node_failures.remove(&node);
        if pool.remove(&node) {
            effects.dropped_nodes.push(node);
        }
        if self.guards.contains(&node) {
            self.guards.retain(|g| *g != node);
            let dropped: Vec<PathId> = self
                .paths
                .iter()
                .filter(|p| p.guard().ed25519 == node)
                .map(|p| p.id)
                .collect();
            self.paths.retain(|p| p.guard().ed25519 != node);
            effects.dropped_paths.extend(dropped);
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
        assert!(effects.dropped_nodes.contains(&guard));
        assert!(!pool.contains(&guard));
        assert!(!manager.guards().contains(&guard));
        // The relays reached their own threshold too and left the pool.
        assert!(!pool.contains(&path.nodes()[1].ed25519));
        assert_eq!(manager.paths().len(), 1);
        assert_eq!(manager.guards_needed(), 1);
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
        assert_eq!(effects.dropped_nodes, vec![path.guard().ed25519]);
        assert_eq!(manager.node_failures(&path.nodes()[1].ed25519), 0);
        assert_eq!(manager.guards_needed(), 1);
        // A new guard gets a fresh path.
        let guard = manager.guard_candidates(&pool, 1, &mut r)[0].ed25519;
        manager.add_guard(guard);
        manager.build_paths(&pool, &mut r).unwrap();
        assert_eq!(manager.paths().len(), 2);
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

        // A vanished guard takes its path with it.
        let guard = manager.paths()[1].guard().ed25519;
        let other = manager.paths()[1].id();
        let effects = manager.report(other, Outcome::NextNodeNotFound(guard), &mut pool, &mut r);
        assert_eq!(effects.dropped_paths, vec![other]);
        assert_eq!(manager.guards_needed(), 1);
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

    #[test]
    fn selection_never_uses_a_path_through_the_destination() {
        let mut pool = spread_pool(12);
        let mut r = rng();
        let mut manager = ready(&pool, &mut r);
        let first = manager.paths()[0].clone();
        for hop in first.nodes() {
            for _ in 0..10 {
                let chosen = manager.select(&pool, Some(&hop.ed25519), &mut r).unwrap();
                assert!(!chosen.contains(&hop.ed25519));
            }
        }
        // With one path whose relay is the destination, that relay is replaced.
        let second = manager.paths()[1].id();
        manager.report(
            second,
            Outcome::NextNodeNotFound(manager.paths()[1].guard().ed25519),
            &mut pool,
            &mut r,
        );
        assert_eq!(manager.paths().len(), 1);
        let relay = manager.paths()[0].nodes()[1].ed25519;
        let chosen = manager.select(&pool, Some(&relay), &mut r).unwrap();
        assert!(!chosen.contains(&relay));
        assert_eq!(chosen.nodes().len(), 3);
        // With one path whose guard is the destination, there is no path.
        let guard = manager.paths()[0].guard().ed25519;
        assert_eq!(
            manager.select(&pool, Some(&guard), &mut r),
            Err(PathError::NoPathAvoiding)
        );
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

    #[test]
    fn guards_of_an_earlier_run_are_offered_first_until_they_fail() {
        let pool = spread_pool(12);
        let earlier: Vec<Ed25519Pub> = pool.nodes()[7..9].iter().map(|n| n.ed25519).collect();
        for seed in 0..20 {
            let mut r = StdRng::seed_from_u64(seed);
            let mut manager = PathManager::new(PathConfig::default());
            manager.prefer_guards(earlier.clone());
            let offered: Vec<Ed25519Pub> = manager
                .guard_candidates(&pool, 4, &mut r)
                .iter()
                .map(|n| n.ed25519)
                .collect();
            assert_eq!(
                offered[..2].iter().collect::<HashSet<_>>(),
                earlier.iter().collect()
            );
            // One fails its test: it is not preferred (or offered) again.
            manager.reject_guard_candidate(earlier[0]);
            let offered = manager.guard_candidates(&pool, 4, &mut r);
            assert_eq!(offered[0].ed25519, earlier[1]);
            assert!(offered.iter().all(|n| n.ed25519 != earlier[0]));
        }
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
