//! The running node's shared state: identity, clock, store, the current network view and the
//! services built on them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use shallot_directory::{NetworkView, NodeRecord};
use shallot_proto::onion::X25519Keypair;
use shallot_proto::swarm::SwarmId;
use shallot_proto::Identity;
use shallot_store::Store;

use crate::account_limits::{AccountLimits, PeerRejections};
use crate::clock::Clock;
use crate::connections::{ConnectionConfig, ConnectionLimiter};
use crate::metrics::Metrics;
use crate::monitor::MonitorHub;
use crate::observe::ObservationLog;
use crate::peers::PeerClient;
use crate::rate_limit::RateLimiter;
use crate::swarm_link::SwarmLink;
use crate::token_cache::TokenCache;
use crate::waiters::{WaitLimits, Waiters};

/// The storage-server version we report and implement the behaviour of (`info`, `ifelse`).
pub const STORAGE_SERVER_VERSION: [u16; 3] = [2, 6, 2];
/// Lowest hardfork at which the node serves (spec §9.4).
pub const MIN_HARDFORK: (u8, u8) = (19, 3);
/// Hardfork from which multi-expiry `expire` requests are accepted.
pub const MULTI_EXPIRY_HARDFORK: (u8, u8) = (19, 4);

/// Everything request handlers share.
pub struct Node {
    /// The node's Ed25519 identity (X25519 derived).
    pub identity: Identity,
    /// Its X25519 keypair, prepared once for the onion layers it peels.
    pub onion_keys: X25519Keypair,
    /// Wall-clock time for protocol checks.
    pub clock: Arc<dyn Clock>,
    /// The message store.
    pub store: Arc<Store>,
    /// Per-client rate limits.
    pub rate: RateLimiter,
    /// Connections to onion hops and proxied servers (and, by default, swarm peers).
    pub peers: PeerClient,
    /// Where replication and handoff traffic goes: [`PeerClient`] unless replaced
    /// ([`Node::with_swarm_link`]).
    pub link: Arc<dyn SwarmLink>,
    /// Push subscriptions.
    pub monitor: MonitorHub,
    /// Waiting retrieves (private push through onion paths).
    pub waiters: Waiters,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// Inbox quotas, subscription caps and push-connection timers.
    pub account_limits: AccountLimits,
    /// What peers pushed that was refused.
    pub peer_rejections: PeerRejections,
    /// Open connections of the HTTPS listener (counted for `/metrics`).
    pub connections: Arc<ConnectionLimiter>,
    /// What this node saw of each request, for devnet audits only (`None`: off, the default).
    pub observations: Option<ObservationLog>,
    /// Subaccount token signatures verified already.
    pub tokens: TokenCache,
    view: RwLock<Arc<NetworkView>>,
    /// The last view whose swarm membership differed from the current one: peers of our
    /// previous swarm may still forward or hand off to us while the views settle.
    previous_view: RwLock<Arc<NetworkView>>,
    shutting_down: AtomicBool,
    force_start: bool,
}

impl crate::server::Membership for Node {
    fn is_listed_ip(&self, ip: std::net::IpAddr) -> bool {
        Node::is_listed_ip(self, ip)
    }

    fn is_active_node(&self, key: &shallot_proto::Ed25519Pub) -> bool {
        self.view().node(key).is_some_and(NodeRecord::is_active)
    }
}

impl Node {
    /// Assembles a node; it is not ready until a network view including it is set.
    pub fn new(
        identity: Identity,
        clock: Arc<dyn Clock>,
        store: Arc<Store>,
        rate: RateLimiter,
        peers: PeerClient,
        force_start: bool,
    ) -> Self {
        Self {
            onion_keys: X25519Keypair::from(&identity),
            identity,
            clock,
            store,
            rate,
            link: Arc::new(peers.clone()),
            peers,
            monitor: MonitorHub::default(),
            waiters: Waiters::default(),
            metrics: Metrics::default(),
            account_limits: AccountLimits::default(),
            peer_rejections: PeerRejections::default(),
            connections: ConnectionLimiter::new(
                ConnectionConfig::default().max_connections,
                ConnectionConfig::default().max_connections_per_ip,
            ),
            observations: None,
            tokens: TokenCache::default(),
            view: RwLock::new(Arc::new(NetworkView::default())),
            previous_view: RwLock::new(Arc::new(NetworkView::default())),
            shutting_down: AtomicBool::new(false),
            force_start,
        }
    }

    /// The current network view (cheap: an `Arc` clone).
    pub fn view(&self) -> Arc<NetworkView> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `ip` is the address of a service node in the current view (a linear scan: asked
    /// only when the listener is full).
    pub fn is_listed_ip(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V4(v4) => v4,
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        self.view().nodes().iter().any(|n| n.ip == ip)
    }

    /// Uses `limiter` as the listener's connection limiter.
    #[must_use]
    pub fn with_connection_limiter(mut self, limiter: Arc<ConnectionLimiter>) -> Self {
        self.connections = limiter;
        self
    }

    /// Applies account limits (subscription caps take effect for new subscriptions; the store's
    /// inbox quota is set when the store is opened).
    #[must_use]
    pub fn with_account_limits(mut self, limits: AccountLimits) -> Self {
        self.monitor = MonitorHub::new(&limits);
        self.account_limits = limits;
        self
    }

    /// Records what the node sees of each request in `log` (devnets only: see
    /// [`crate::observe`]).
    #[must_use]
    pub fn with_observation_log(mut self, log: ObservationLog) -> Self {
        self.observations = Some(log);
        self
    }

    /// Sends replication and handoff traffic over `link` instead of HTTPS (in-process tests).
    #[must_use]
    pub fn with_swarm_link(mut self, link: Arc<dyn SwarmLink>) -> Self {
        self.link = link;
        self
    }

    /// Applies the caps on waiting retrieves.
    #[must_use]
    pub fn with_wait_limits(mut self, limits: WaitLimits) -> Self {
        self.waiters = Waiters::new(limits);
        self
    }

    /// Replaces the network view, returning the previous one (for handoff decisions). When swarm
    /// membership changed, the replaced view becomes [`Node::previous_view`].
    pub fn set_view(&self, view: NetworkView) -> Arc<NetworkView> {
        let mut slot = self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut *slot, Arc::new(view));
        if !same_swarms(&old, &slot) {
            *self
                .previous_view
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = old.clone();
        }
        old
    }

    /// The last view with a different swarm membership than the current one (empty at start).
    pub fn previous_view(&self) -> Arc<NetworkView> {
        self.previous_view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Our own directory entry in `view`.
    pub fn own_record<'v>(&self, view: &'v NetworkView) -> Option<&'v NodeRecord> {
        view.node(&self.identity.ed25519_public())
    }

    /// Our swarm in `view`, if we are an active member of one.
    pub fn own_swarm(&self, view: &NetworkView) -> Option<SwarmId> {
        self.own_record(view)
            .map(|record| record.swarm_id)
            .filter(|&swarm| swarm != SwarmId::INVALID)
    }

    /// Marks the node as shutting down: it stops being ready, and held waiting retrieves answer.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.waiters.close();
    }

    /// `Ok` when the node serves clients, else the reasons it does not (spec §9.5).
    pub fn readiness(&self) -> Result<(), String> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down".to_owned());
        }
        if self.force_start {
            return Ok(());
        }
        let view = self.view();
        let mut reasons = Vec::new();
        if view.hardfork < MIN_HARDFORK {
            reasons.push(format!(
                "not yet on hardfork {}.{}",
                MIN_HARDFORK.0, MIN_HARDFORK.1
            ));
        }
        if self.own_swarm(&view).is_none() {
            reasons.push("not in any swarm".to_owned());
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

/// Whether two views put the same nodes in the same swarms.
fn same_swarms(a: &NetworkView, b: &NetworkView) -> bool {
    a.nodes().len() == b.nodes().len()
        && a.nodes()
            .iter()
            .zip(b.nodes())
            .all(|(x, y)| x.ed25519 == y.ed25519 && x.swarm_id == y.swarm_id)
}
