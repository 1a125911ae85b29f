//! Sending requests through onion paths (spec §1.9, §3.3): builds the onion for a path the
//! [`PathManager`] chose, POSTs it to the guard, classifies what came back (transport failure on
//! the path vs. the destination's own status), feeds the outcome back to the manager, updates the
//! network clock, and retries path failures on another path a bounded number of times.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shallot_directory::capped::{read_capped, BodyError};
use shallot_directory::NodeRecord;
use shallot_proto::onion::{
    build_to_node, build_to_node_padded, build_to_server, build_to_server_writing_body,
    decode_snode_response, open_hop_error, padding, BuiltOnion, EncType, NodeKeys, ResponseKey,
    ServerDestination, SnodeBody, V4Request, V4Response, MAX_ONION_SIZE,
};
use shallot_proto::rpc::{OxendResult, Request};
use shallot_proto::{AccountId, AccountKind, Ed25519Pub};

use crate::clock::NetworkClock;
use crate::error::Error;
use crate::paths::{Effects, GuardEntry, Outcome, Path, PathConfig, PathManager};
use crate::pool::{self, Pool, PoolSnapshot, Seed};
use crate::swarm::SwarmCache;
use crate::timeouts;

tokio::task_local! {
    /// An end-to-end timeout replacing the configured one for the requests of one call (see
    /// [`OnionClient::request_node_with_timeout`]).
    static REQUEST_TIMEOUT: Duration;
}

/// Client networking policy.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Cipher for every onion layer (libsession uses xchacha20; aes-gcm is also supported).
    pub enc_type: EncType,
    /// Path policy.
    pub paths: PathConfig,
    /// Attempts per request over different paths before giving up with `PathFailed`; an attempt
    /// whose guard was unreachable is not counted (up to this many such attempts), since that
    /// guard is dropped and the next attempt goes through another.
    pub max_attempts: usize,
    /// Nodes asked for their list when refreshing the pool.
    pub refresh_sources: usize,
    /// Nodes the lists must have in common to be accepted (24 on mainnet; lower on devnets).
    pub min_refresh_agreement: usize,
    /// Timeout of the direct guard test.
    pub guard_test_timeout: Duration,
    /// Timeout of one onion request.
    pub request_timeout: Duration,
    /// Seeds to bootstrap (and re-bootstrap) from; with two or more, they must agree (see
    /// [`crate::pool`]).
    pub seeds: Vec<Seed>,
    /// Whether a node the client connects to directly (guards) must prove, in the TLS handshake,
    /// the Ed25519 key the node list gives for it (Shallot nodes do). Turn off only for networks
    /// of reference storage servers, whose certificates are not bound to their keys.
    pub verify_node_tls: bool,
    /// Pad requests to service nodes, and ask them to pad their replies, to size classes
    /// ([`padding`]: requests from 4 KiB, replies from 16 KiB, powers of two), so the guard cannot
    /// tell a send from a poll or count the messages a poll brought. Default on.
    pub padding: bool,
    /// A SOCKS5 proxy for every connection the client makes itself (seeds and guards; relays
    /// and swarm members are only reached through the guard): `socks5h://HOST:PORT` (host
    /// names of seed URLs are resolved by the proxy) or `socks5://HOST:PORT` (resolved here).
    /// Nodes are addressed by IP in any case: a pinned node name ([`shallot_tls`]) is turned
    /// into its IP here and the proxy is asked for that IP, while TLS still checks the node's
    /// key. With a proxy, direct push ([`crate::push`]) is off. `None`: connect directly.
    pub proxy: Option<String>,
    /// The local address every connection the client opens is bound to (seeds, guards, the
    /// proxy, direct push): a machine with several addresses chooses which one nodes see. Devnet
    /// audits give each client its own loopback address (127.0.200.N). `None`: the system's.
    pub source_ip: Option<std::net::IpAddr>,
    /// Timing defence: before a message to another account leaves, wait a random time drawn
    /// uniformly from zero to this ([`crate::timing`]). The message's timestamp, which the
    /// recipient's swarm reads in plaintext, is taken before the wait, so it no longer says when
    /// the onion reached the guard. Zero: send at once.
    pub send_jitter: Duration,
    /// Timing defence at no cost in latency: a message's timestamp is set a random time drawn
    /// uniformly from zero to this *before* the moment it is sent (kept increasing from one
    /// message to the next), so, as with [`Self::send_jitter`], the recipient's swarm cannot
    /// read from it when the onion reached the guard ([`crate::timing`]). Zero: the send time.
    pub backdate: Duration,
    /// Timing defence: dummy sends per minute at random (Poisson) times, once
    /// [`OnionClient::start_cover`] is called ([`crate::timing`]). Each is two padded requests
    /// over our paths, as a real send is (the message, then its sync copy). 0: none.
    pub cover_per_minute: f64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            enc_type: EncType::XChaCha20,
            paths: PathConfig::default(),
            max_attempts: 3,
            refresh_sources: 3,
            min_refresh_agreement: 24,
            guard_test_timeout: timeouts::GUARD_TEST,
            request_timeout: timeouts::ONION_REQUEST,
            seeds: Vec::new(),
            verify_node_tls: true,
            padding: true,
            proxy: None,
            source_ip: None,
            send_jitter: crate::timing::DEFAULT_SEND_JITTER,
            backdate: crate::timing::DEFAULT_BACKDATE,
            cover_per_minute: crate::timing::DEFAULT_COVER_PER_MINUTE,
        }
    }
}

/// Largest reply read from a guard: a node reads at most 10 MiB ([`MAX_ONION_SIZE`], the
/// nodes' `max_reply_bytes`) from the next hop and passes it on, so an honest reply (a 10 MB
/// attachment download included) stays under this; 64 KiB over it for a guard's own framing.
pub const MAX_GUARD_REPLY_BYTES: usize = MAX_ONION_SIZE + 64 * 1024;

/// Largest reply read from a node asked directly (a guard test, a seed's node list): as much
/// as a directory's answer ([`shallot_directory::client::MAX_ANSWER_BYTES`]).
pub const MAX_DIRECT_REPLY_BYTES: usize = shallot_directory::client::MAX_ANSWER_BYTES;

/// How many [`Route`]s [`OnionClient::recent_routes`] keeps.
pub const ROUTE_LOG_LEN: usize = 32;

/// Which path a request to a service node took, recorded when the destination answered with
/// success (for demos and privacy audits: who saw what). Read-only; holds public node records only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Increases by one per recorded route, so callers can ask for routes after a point.
    pub seq: u64,
    /// The storage RPC method sent (`"store"`, `"batch"`, `"get_swarm"`, …).
    pub method: String,
    /// The onion path's nodes, guard first.
    pub path: Vec<NodeRecord>,
    /// The node the request was for (never one of `path`).
    pub destination: NodeRecord,
    /// Bytes of the request body the guard received (what it could measure of the request).
    pub request_bytes: usize,
    /// Bytes of the reply body the guard relayed back.
    pub reply_bytes: usize,
}

/// Mutable network state, behind one lock that is never held across an await.
pub(crate) struct State {
    pub(crate) pool: Pool,
    pub(crate) paths: PathManager,
    pub(crate) swarms: SwarmCache,
    /// The last [`ROUTE_LOG_LEN`] routes, oldest first.
    pub(crate) routes: std::collections::VecDeque<Route>,
    pub(crate) next_route: u64,
    /// When the pool was last re-fetched from a seed (see [`OnionClient::reseed`]).
    pub(crate) last_reseed: Option<std::time::Instant>,
    /// Our own account and those we talk to (see [`OnionClient::set_private_accounts`]).
    pub(crate) private_accounts: Vec<AccountId>,
}

impl State {
    /// Tells the path manager the swarms of the private accounts in the current pool.
    fn update_private_swarms(&mut self) {
        let ids = self.pool.swarm_ids();
        let swarms = self
            .private_accounts
            .iter()
            .filter_map(|account| shallot_proto::swarm::swarm_for(&ids, account))
            .collect();
        self.paths.set_private_swarms(swarms);
    }
}

/// Shortest time between two re-fetches of the pool from a seed.
pub const RESEED_INTERVAL: Duration = Duration::from_secs(10);

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    clock: NetworkClock,
    state: Mutex<State>,
    /// Serialises guard selection so concurrent requests do not test guards twice.
    building: tokio::sync::Mutex<()>,
}

/// The client's handle on the network: pool, paths, swarms and network time. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), shallot_client::Error> {
/// use shallot_client::{ClientConfig, NetworkClock, OnionClient, Seed};
/// use shallot_proto::rpc::Request;
///
/// let config = ClientConfig {
///     seeds: vec![Seed::JsonRpc("https://seed1.example:4443/json_rpc".into())],
///     ..ClientConfig::default()
/// };
/// let client = OnionClient::bootstrap(config, NetworkClock::default()).await?;
/// let node = client.pool_snapshot().nodes[0].to_record();
/// let (status, info) = client.request_node(&node, &Request::Info).await?;
/// assert_eq!(status, 200);
/// let info: shallot_proto::rpc::Info = shallot_client::onion_client::decode_reply("reading an info reply", &info)?;
/// println!("network time {} (node said {})", client.clock().now_ms(), info.t);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OnionClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OnionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnionClient").finish_non_exhaustive()
    }
}

/// The HTTPS client for nodes and seeds: rustls with ring, self-signed certificates; a node
/// addressed by its pinned host name must prove its Ed25519 key ([`shallot_tls`]); every
/// connection through `proxy` if given (see [`ClientConfig::proxy`]) and from `source_ip` if given.
fn http_client(config: &ClientConfig) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(shallot_tls::client_config(shallot_tls::Unpinned::Accept))
        .dns_resolver(Arc::new(shallot_tls::PinnedResolver))
        .connect_timeout(timeouts::CONNECT)
        // Below the nodes' 20 s idle limit: a pooled connection reused just as the guard closes
        // it would fail the request and count against a healthy guard.
        .pool_idle_timeout(std::time::Duration::from_secs(10))
        .local_address(config.source_ip);
    if let Some(proxy) = &config.proxy {
        builder = builder.proxy(socks_proxy(proxy)?);
    }
    builder
        .build()
        .map_err(|e| Error::Bootstrap(format!("HTTP client: {e}")))
}

/// The proxy rule for `socks5h://HOST:PORT` or `socks5://HOST:PORT`: pinned node names always
/// go through the proxy as IPs (resolved locally by [`shallot_tls::PinnedResolver`], which
/// reads the IP out of the name without any lookup: the proxy could not resolve a `.snode`
/// name); other host names as the scheme says.
pub fn socks_proxy(proxy: &str) -> Result<reqwest::Proxy, Error> {
    let bad = |why: &str| Error::Bootstrap(format!("proxy {proxy:?}: {why}"));
    let url = reqwest::Url::parse(proxy).map_err(|e| bad(&e.to_string()))?;
    let remote_dns = match url.scheme() {
        "socks5h" => true,
        "socks5" => false,
        _ => return Err(bad("only socks5h:// and socks5:// proxies are supported")),
    };
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let port = url.port().ok_or_else(|| bad("no port"))?;
    let local: reqwest::Url = format!("socks5://{host}:{port}")
        .parse()
        .map_err(|e| bad(&format!("{e}")))?;
    let mut remote = local.clone();
    if remote_dns {
        remote = format!("socks5h://{host}:{port}")
            .parse()
            .map_err(|e| bad(&format!("{e}")))?;
    }
    Ok(reqwest::Proxy::custom(move |target| {
        let pinned = target
            .host_str()
            .and_then(shallot_tls::parse_pinned_host)
            .is_some();
        Some(if pinned {
            local.clone()
        } else {
            remote.clone()
        })
    }))
}

/// What one attempt's reply means.
#[derive(Debug)]
enum Verdict<T> {
    /// Stop with this result, after reporting the outcome (if any) to the path manager.
    Done(Result<T, Error>, Option<Outcome>),
    /// Report the outcome, then try again on another path.
    Retry(Option<Outcome>, String),
}

const NEXT_NODE_NOT_FOUND: &str = "Next node not found: ";

/// Our nodes' reply when the next hop is listed but refuses connections (an extension: Session
/// nodes answer 502 with the error text, which clients count against the whole path).
const NEXT_NODE_NOT_REACHABLE: &str = "Next node not reachable: ";

/// The node a relay says it could not find or reach, if the body says so.
fn next_node_not_found(body: &[u8]) -> Option<Ed25519Pub> {
    let text = std::str::from_utf8(body).ok()?;
    // QUIC-style replies prefix "<code> <reason>\n\n".
    let text = text.rsplit("\n\n").next().unwrap_or(text);
    text.strip_prefix(NEXT_NODE_NOT_FOUND)
        .or_else(|| text.strip_prefix(NEXT_NODE_NOT_REACHABLE))?
        .trim()
        .parse()
        .ok()
}

/// Opens an error that a hop after the guard encrypted to its layer key (our nodes never let the
/// guard read which node or server a later hop failed to reach), giving the plain text the rest
/// of the classification reads. The text is believed only about the node that follows the hop
/// that produced it (the next hop of the path, or `destination` after the last hop): a hop may
/// report its own successor lost, nobody else. Anything else is returned unchanged (a plain
/// error, e.g. from the guard or a Session node; or tampered bytes, which are a path failure).
fn open_error(
    status: u16,
    bytes: Vec<u8>,
    path: &[NodeRecord],
    hop_keys: &[ResponseKey],
    destination: Option<&Ed25519Pub>,
) -> Vec<u8> {
    if status == 200 {
        return bytes;
    }
    let Some((hop, reply)) = open_hop_error(hop_keys, &bytes) else {
        return bytes;
    };
    let text = match reply.body {
        SnodeBody::Text(text) => text,
        SnodeBody::Json(value) => value.to_string(),
    };
    let successor = path.get(hop + 1).map(|node| &node.ed25519).or(destination);
    match next_node_not_found(text.as_bytes()) {
        Some(named) if Some(&named) != successor => {
            tracing::debug!(hop, "a hop blamed a node that does not follow it");
            format!("hop {hop} error").into_bytes()
        }
        _ => text.into_bytes(),
    }
}

/// Classifies a non-200 transport status (the path's, not the destination's; spec §1.9).
fn classify_transport<T>(status: u16, body: &[u8], destination: Option<&Ed25519Pub>) -> Verdict<T> {
    if status == 406 || status == 425 {
        return Verdict::Done(Err(Error::ClockSkew { status }), None);
    }
    if let Some(node) = next_node_not_found(body) {
        let outcome = Some(Outcome::NextNodeNotFound(node));
        if destination == Some(&node) {
            let reason = "unknown to the relays".to_owned();
            return Verdict::Done(
                Err(Error::NodeUnreachable {
                    destination: node.to_hex(),
                    reason,
                }),
                outcome,
            );
        }
        return Verdict::Retry(outcome, format!("relay lost node {node}"));
    }
    if body == b"Oxen Server error" {
        return Verdict::Done(
            Err(Error::PathFailed {
                attempts: 1,
                reason: "Oxen Server error".into(),
            }),
            Some(Outcome::PathFailure),
        );
    }
    Verdict::Retry(
        Some(Outcome::PathFailure),
        format!("path answered {status}"),
    )
}

/// Classifies a decoded snode reply: its inner status is the destination's (spec §3.3).
fn classify_snode(status: u16, body: Value, destination: &NodeRecord) -> Verdict<(u16, Value)> {
    let ok = Some(Outcome::Success);
    match status {
        200..=299 => Verdict::Done(Ok((status, body)), ok),
        406 | 425 => Verdict::Done(Err(Error::ClockSkew { status }), ok),
        421 => Verdict::Done(
            Err(Error::SwarmMoved {
                snodes: crate::swarm::parse_swarm(&body),
            }),
            ok,
        ),
        400..=499 => Verdict::Done(
            Err(Error::Rejected {
                status,
                body: body_text(&body),
            }),
            ok,
        ),
        _ => {
            let text = body_text(&body);
            let outcome = match next_node_not_found(text.as_bytes()) {
                Some(node) => Outcome::NextNodeNotFound(node),
                None => Outcome::DestinationFailure(destination.ed25519),
            };
            Verdict::Done(
                Err(Error::NodeUnreachable {
                    destination: destination.ed25519.to_hex(),
                    reason: format!("status {status}"),
                }),
                Some(outcome),
            )
        }
    }
}

/// Reads a reply body as a method's typed answer; `what` names the reading in the error
/// ("reading a retrieve reply") if the body is not one.
pub fn decode_reply<T: DeserializeOwned>(what: &'static str, body: &Value) -> Result<T, Error> {
    T::deserialize(body).map_err(|e| Error::protocol(what, e))
}

fn body_text(body: &Value) -> String {
    match body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn node_keys(node: &NodeRecord) -> NodeKeys {
    NodeKeys {
        ed25519: node.ed25519,
        x25519: node.x25519,
    }
}

/// The tries of one request ([`ClientConfig::max_attempts`] of them). A try that found its guard
/// unreachable is not counted: the guard is dropped at once, so the next try goes through another
/// guard or a newly tested one. Otherwise the client's own dead guards use up a request meant for
/// a live node: with both guards gone (and a stale connection to one of them costing a try of
/// its own) every try failed before a new path was built, and the swarm member was given up.
/// Uncounted tries are bounded by `max_attempts` too.
#[derive(Debug, Clone, Copy)]
struct Tries {
    max: usize,
    counted: usize,
    uncounted: usize,
}

impl Tries {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            counted: 0,
            uncounted: 0,
        }
    }

    /// The number of the try about to be made (from 1), or `None` once the tries are used up.
    fn start(&self) -> Option<usize> {
        (self.counted < self.max).then(|| self.made() + 1)
    }

    /// Records a failed try and what it said about the path.
    fn failed(&mut self, outcome: Option<Outcome>) {
        if outcome == Some(Outcome::GuardUnreachable) && self.uncounted < self.max {
            self.uncounted += 1;
        } else {
            self.counted += 1;
        }
    }

    /// Tries failed so far.
    fn made(&self) -> usize {
        self.counted + self.uncounted
    }
}

/// A random account id for guard tests, so a guard (which sees our IP) learns nothing about which
/// account we serve. (Desktop sends its own Session ID here.)
fn throwaway_account() -> AccountId {
    AccountId::new(AccountKind::Session, rand::random())
}

impl OnionClient {
    /// A client over an existing pool (e.g. restored from a [`PoolSnapshot`]).
    pub fn new(config: ClientConfig, pool: Pool, clock: NetworkClock) -> Result<Self, Error> {
        let paths = PathManager::new(config.paths);
        Ok(Self {
            inner: Arc::new(Inner {
                http: http_client(&config)?,
                config,
                clock,
                state: Mutex::new(State {
                    pool,
                    paths,
                    swarms: SwarmCache::default(),
                    routes: std::collections::VecDeque::new(),
                    next_route: 0,
                    last_reseed: None,
                    private_accounts: Vec::new(),
                }),
                building: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// A client whose pool comes from the configured seeds (all raced, first answer wins).
    pub async fn bootstrap(config: ClientConfig, clock: NetworkClock) -> Result<Self, Error> {
        let http = http_client(&config)?;
        let pool = Pool::bootstrap(&http, &config.seeds).await?;
        Self::new(config, pool, clock)
    }

    /// Network time, corrected from the nodes' replies.
    pub fn clock(&self) -> &NetworkClock {
        &self.inner.clock
    }

    /// The policy in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The pool as a serialisable snapshot (to persist it).
    pub fn pool_snapshot(&self) -> PoolSnapshot {
        self.state().pool.snapshot()
    }

    /// Network time in Unix seconds, for guard lifetimes.
    fn unix_now(&self) -> u64 {
        self.inner.clock.now_ms() / 1000
    }

    /// The current (tested, in use) guards' keys.
    pub fn guards(&self) -> Vec<Ed25519Pub> {
        self.state().paths.guards().to_vec()
    }

    /// The persistent guard set, to save between runs (see [`Self::restore_guards`]).
    pub fn guard_entries(&self) -> Vec<GuardEntry> {
        self.state().paths.guard_entries().to_vec()
    }

    /// Restores the guard set of an earlier run. Call it before the first request or
    /// [`Self::ensure_paths`]: once paths exist, the guards in use stay. Each saved guard is
    /// still tested, and while one is usable no other node is tested as a guard (see
    /// [`crate::paths`] for when a guard is replaced).
    pub fn restore_guards(&self, entries: Vec<GuardEntry>) {
        let mut state = self.state();
        state.paths.set_now(self.unix_now());
        state.paths.restore_guards(entries);
    }

    /// Names our own account and the accounts we exchange messages with: nodes that see our IP
    /// (guard candidates, and guards when another is available) are kept out of their swarms
    /// (see [`crate::paths`]). The [`crate::Messenger`] keeps this up to date; call it before
    /// the first [`Self::ensure_paths`] so the first guards are chosen with it.
    pub fn set_private_accounts(&self, accounts: Vec<AccountId>) {
        let mut state = self.state();
        if state.private_accounts != accounts {
            state.private_accounts = accounts;
            state.update_private_swarms();
        }
    }

    /// Number of nodes in the pool.
    pub fn pool_len(&self) -> usize {
        self.state().pool.len()
    }

    /// A copy of the current paths (guard first), for status displays and tests.
    pub fn paths(&self) -> Vec<Path> {
        self.state().paths.paths().to_vec()
    }

    /// The routes of the last [`ROUTE_LOG_LEN`] node requests that succeeded, oldest first: which onion path carried each and which node it was for.
    pub fn recent_routes(&self) -> Vec<Route> {
        self.state().routes.iter().cloned().collect()
    }

    /// The route of the last node request that succeeded, if any.
    pub fn last_route(&self) -> Option<Route> {
        self.state().routes.back().cloned()
    }

    /// The `seq` the next recorded route will get: pass it to [`Route`] filters to see only
    /// the routes of requests made from now on.
    pub fn next_route_seq(&self) -> u64 {
        self.state().next_route
    }

    fn record_route(
        &self,
        method: &str,
        path: &Path,
        destination: &NodeRecord,
        (request_bytes, reply_bytes): (usize, usize),
    ) {
        let mut state = self.state();
        let seq = state.next_route;
        state.next_route += 1;
        if state.routes.len() >= ROUTE_LOG_LEN {
            state.routes.pop_front();
        }
        state.routes.push_back(Route {
            seq,
            method: method.to_owned(),
            path: path.nodes().to_vec(),
            destination: destination.clone(),
            request_bytes,
            reply_bytes,
        });
    }

    /// Whether the /24 rule had to be relaxed (single-subnet devnet).
    pub fn subnet_rule_relaxed(&self) -> bool {
        self.state().paths.subnet_rule_relaxed()
    }

    /// The URL of `path` on `node` for a direct connection: its pinned host name when node
    /// certificates are verified, else its IP address.
    fn node_url(&self, node: &NodeRecord, path: &str) -> String {
        if self.inner.config.verify_node_tls {
            let host = shallot_tls::pinned_host(node.ip, &node.ed25519);
            format!("https://{host}:{}{path}", node.https_port)
        } else {
            format!("https://{}{path}", node.https_addr())
        }
    }

    /// Sends a storage RPC directly (not onion-routed) to a node; used for guard tests and
    /// seed-node bootstrap only, since it reveals our address to the node.
    pub async fn direct_request(
        &self,
        node: &NodeRecord,
        request: &Request,
        timeout: Duration,
    ) -> Result<(u16, Value), Error> {
        let response = self
            .inner
            .http
            .post(self.node_url(node, "/storage_rpc/v1"))
            .timeout(timeout)
            .json(&request.to_envelope())
            .send()
            .await
            .map_err(|e| Error::NodeUnreachable {
                destination: node.ed25519.to_hex(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let bytes = read_capped(response, MAX_DIRECT_REPLY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => Error::protocol("reading a node's reply", e),
                BodyError::Transport(reason) => Error::NodeUnreachable {
                    destination: node.ed25519.to_hex(),
                    reason,
                },
            })?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        self.inner.clock.observe_body(node.ed25519, &body);
        Ok((status, body))
    }

    /// Makes sure enough tested guards and built paths exist: tests candidates (the saved guards
    /// alone while any is usable, else two new ones per missing guard at a time, up to 6 rounds), then builds the missing paths. If the pool has shrunk
    /// too far for that (nodes dropped after failures), it is fetched again from the seeds
    /// ([`Self::reseed`]) and the build retried once.
    pub async fn ensure_paths(&self) -> Result<(), Error> {
        let _building = self.inner.building.lock().await;
        match self.build_paths_once().await {
            Err(Error::NoPath(why)) if self.may_reseed() => {
                tracing::info!("cannot build onion paths ({why}); fetching the node list again");
                self.reseed().await?;
                self.build_paths_once().await
            }
            other => other,
        }
    }

    /// Whether a re-fetch from a seed is possible now (seeds configured, none recently).
    fn may_reseed(&self) -> bool {
        !self.inner.config.seeds.is_empty()
            && self
                .state()
                .last_reseed
                .is_none_or(|at| at.elapsed() >= RESEED_INTERVAL)
    }

    /// Replaces the pool with a fresh node list from the configured seeds (as at bootstrap, so
    /// the seed sees our address) and forgives past node failures: used when failures have
    /// left too few usable nodes. Returns the new pool size.
    pub async fn reseed(&self) -> Result<usize, Error> {
        self.state().last_reseed = Some(std::time::Instant::now());
        let fresh = Pool::bootstrap(&self.inner.http, &self.inner.config.seeds).await?;
        Ok(self.install_pool(fresh, true))
    }

    /// Replaces the pool, repairs the paths through nodes that left and forgets those nodes in
    /// swarm caches (and, if `forgive`, every node's failure count). Returns the pool size.
    fn install_pool(&self, fresh: Pool, forgive: bool) -> usize {
        let mut state = self.state();
        let State {
            pool,
            paths,
            swarms,
            ..
        } = &mut *state;
        *pool = fresh;
        if forgive {
            paths.forgive_failures();
        }
        let effects = paths.prune(pool, &mut rand::thread_rng());
        for node in &effects.dropped_nodes {
            swarms.forget_node(node);
        }
        let len = pool.len();
        state.update_private_swarms();
        len
    }

    /// One round of [`Self::ensure_paths`]: guard tests, then path building.
    async fn build_paths_once(&self) -> Result<(), Error> {
        for _ in 0..6 {
            let candidates = {
                let mut state = self.state();
                let needed = state.paths.guards_to_find(&state.pool);
                state.paths.set_now(self.unix_now());
                if needed == 0 {
                    break;
                }
                state
                    .paths
                    // Saved guards alone while any is usable; otherwise two new candidates per
                    // missing guard (their replies also give the clock its quorum sooner).
                    .guard_candidates(&state.pool, 2 * needed, &mut rand::thread_rng())
            };
            if candidates.is_empty() {
                break;
            }
            let mut tests = tokio::task::JoinSet::new();
            for candidate in candidates {
                let client = self.clone();
                tests.spawn(async move {
                    let request = Request::GetSwarm {
                        account: throwaway_account(),
                    };
                    let timeout = client.inner.config.guard_test_timeout;
                    let good = matches!(
                        client.direct_request(&candidate, &request, timeout).await,
                        Ok((200..=299, _))
                    );
                    (candidate.ed25519, good)
                });
            }
            let mut results = Vec::new();
            while let Some(joined) = tests.join_next().await {
                if let Ok(result) = joined {
                    results.push(result);
                }
            }
            let mut state = self.state();
            let State { pool, paths, .. } = &mut *state;
            paths.accept_tested(pool, results);
        }
        let mut state = self.state();
        let State { pool, paths, .. } = &mut *state;
        paths
            .build_paths(pool, &mut rand::thread_rng())
            .map_err(|e| Error::NoPath(e.to_string()))?;
        if paths.paths().is_empty() {
            return Err(Error::NoPath("no guard passed its test".into()));
        }
        Ok(())
    }

    /// Reports an outcome to the path manager and forgets dropped nodes in swarm caches.
    fn report(&self, path: &Path, outcome: Outcome) -> Effects {
        let mut state = self.state();
        let State {
            pool,
            paths,
            swarms,
            ..
        } = &mut *state;
        let effects = paths.report(path.id(), outcome, pool, &mut rand::thread_rng());
        for node in &effects.dropped_nodes {
            swarms.forget_node(node);
        }
        if !effects.dropped_paths.is_empty() {
            tracing::debug!(paths = effects.dropped_paths.len(), "dropped onion path(s)");
        }
        effects
    }

    /// POSTs an onion to the guard; a transport error says whether the guard itself was
    /// unreachable (connection refused, TLS failure) or the request failed later (timeout).
    async fn post_onion(
        &self,
        guard: &NodeRecord,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), (Outcome, String)> {
        let response = self
            .inner
            .http
            .post(self.node_url(guard, "/onion_req/v2"))
            .timeout(
                REQUEST_TIMEOUT
                    .try_with(|t| *t)
                    .unwrap_or(self.inner.config.request_timeout),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    (Outcome::GuardUnreachable, format!("guard unreachable: {e}"))
                } else {
                    (Outcome::PathFailure, format!("onion request failed: {e}"))
                }
            })?;
        let status = response.status().as_u16();
        // A guard sending more than any honest reply breaks the protocol: it is dropped like an
        // unreachable one, and the request tried on another path.
        let bytes = read_capped(response, MAX_GUARD_REPLY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => (Outcome::GuardUnreachable, format!("guard {e}")),
                BodyError::Transport(_) => (
                    Outcome::PathFailure,
                    format!("reading the guard's reply: {e}"),
                ),
            })?;
        Ok((status, bytes))
    }

    /// The generic attempt loop: pick a path avoiding `avoid` and its swarm, build, send, classify, report.
    /// `route` (method, destination) is recorded in the route log when the destination answered.
    async fn attempt_loop<T, B, C>(
        &self,
        avoid: Option<&NodeRecord>,
        route: Option<(&str, &NodeRecord)>,
        build: B,
        classify: C,
    ) -> Result<T, Error>
    where
        B: Fn(&Path) -> Result<BuiltOnion, Error>,
        C: Fn(u16, Vec<u8>, &ResponseKey) -> Verdict<T>,
    {
        let mut tries = Tries::new(self.inner.config.max_attempts);
        let mut reason = String::new();
        while let Some(attempt) = tries.start() {
            self.ensure_paths().await?;
            let path = {
                let mut state = self.state();
                let State { pool, paths, .. } = &mut *state;
                paths
                    .select(pool, avoid, &mut rand::thread_rng())
                    .map_err(|e| Error::NoPath(e.to_string()))?
            };
            let onion = build(&path)?;
            let request_bytes = onion.body.len();
            let mut reply_bytes = 0;
            let verdict = match self.post_onion(path.guard(), onion.body).await {
                Err((outcome, e)) => Verdict::Retry(Some(outcome), e),
                Ok((status, bytes)) => {
                    reply_bytes = bytes.len();
                    let bytes = open_error(
                        status,
                        bytes,
                        path.nodes(),
                        &onion.hop_keys,
                        avoid.map(|n| &n.ed25519),
                    );
                    classify(status, bytes, &onion.response_key)
                }
            };
            match verdict {
                Verdict::Done(result, outcome) => {
                    if let (true, Some((method, destination))) = (result.is_ok(), route) {
                        self.record_route(method, &path, destination, (request_bytes, reply_bytes));
                    }
                    if let Some(outcome) = outcome {
                        self.report(&path, outcome);
                    }
                    return result.map_err(|e| match e {
                        Error::PathFailed { reason, .. } => Error::PathFailed {
                            attempts: attempt,
                            reason,
                        },
                        other => other,
                    });
                }
                Verdict::Retry(outcome, why) => {
                    tracing::debug!(attempt, "onion attempt failed: {why}");
                    tries.failed(outcome);
                    if let Some(outcome) = outcome {
                        self.report(&path, outcome);
                    }
                    reason = why;
                }
            }
        }
        Err(Error::PathFailed {
            attempts: tries.made(),
            reason,
        })
    }

    /// Sends a storage RPC `request` to the service node `destination` through an onion path
    /// that does not contain it. Returns the destination's 2xx status and JSON body (a text body
    /// comes back as a JSON string); any other status is an [`Error`] whose kind says what to do.
    ///
    /// ```no_run
    /// # async fn demo(client: shallot_client::OnionClient, node: shallot_directory::NodeRecord,
    /// #               account: shallot_proto::AccountId) -> Result<(), shallot_client::Error> {
    /// use shallot_client::onion_client::decode_reply;
    /// use shallot_proto::rpc::{Request, SwarmMembers};
    /// let (_, body) = client.request_node(&node, &Request::GetSwarm { account }).await?;
    /// let swarm: SwarmMembers = decode_reply("reading a get_swarm reply", &body)?;
    /// println!("{} members", swarm.snodes.len());
    /// # Ok(()) }
    /// ```
    pub async fn request_node(
        &self,
        destination: &NodeRecord,
        request: &Request,
    ) -> Result<(u16, Value), Error> {
        let pad = self.inner.config.padding;
        self.node_request(destination, request, true, pad).await
    }

    /// One dummy request of cover traffic ([`crate::timing`]): an `info` to a random pool node
    /// over one of our paths, always padded, so that its guard sees the sizes of a real send.
    /// Not recorded in [`Self::recent_routes`].
    pub async fn send_dummy(&self) -> Result<(), Error> {
        let destination = self
            .state()
            .pool
            .nodes()
            .choose(&mut rand::thread_rng())
            .cloned()
            .ok_or_else(|| Error::NoPath("the node pool is empty".into()))?;
        self.node_request(&destination, &Request::Info, false, true)
            .await
            .map(|_| ())
    }

    /// [`Self::request_node`], recording the route if `record`, padded if `pad`.
    async fn node_request(
        &self,
        destination: &NodeRecord,
        request: &Request,
        record: bool,
        pad: bool,
    ) -> Result<(u16, Value), Error> {
        let payload = serde_json::to_vec(&request.to_envelope())
            .map_err(|e| Error::protocol("encoding a request", e))?;
        let enc_type = self.inner.config.enc_type;
        let dest_keys = node_keys(destination);
        let clock = &self.inner.clock;
        self.attempt_loop(
            Some(destination),
            record.then(|| (request.method_name(), destination)),
            |path| {
                let keys = path.keys();
                let onion = if pad {
                    build_to_node_padded(
                        &keys,
                        &dest_keys,
                        &payload,
                        enc_type,
                        padding::MIN_REQUEST_CLASS,
                        &mut OsRng,
                    )
                } else {
                    build_to_node(&keys, &dest_keys, &payload, enc_type, &mut OsRng)
                };
                onion.map_err(|e| Error::protocol("building an onion", e))
            },
            |status, bytes, key| {
                if status != 200 {
                    return classify_transport(status, &bytes, Some(&destination.ed25519));
                }
                match decode_snode_response(key, &bytes) {
                    // Undecodable reply: retried on another path without penalty (spec §3.3).
                    Err(e) => Verdict::Retry(None, format!("undecodable reply: {e}")),
                    Ok(reply) => {
                        let body = match reply.body {
                            SnodeBody::Text(text) => {
                                serde_json::from_str(&text).unwrap_or(Value::String(text))
                            }
                            SnodeBody::Json(value) => value,
                        };
                        clock.observe_body(destination.ed25519, &body);
                        classify_snode(reply.status, body, destination)
                    }
                }
            },
        )
        .await
    }

    /// [`Self::request_node`] with its own end-to-end timeout, for a request the destination may
    /// hold open (a waiting retrieve): `timeout` must exceed the wait it asks for.
    pub async fn request_node_with_timeout(
        &self,
        destination: &NodeRecord,
        request: &Request,
        timeout: Duration,
    ) -> Result<(u16, Value), Error> {
        REQUEST_TIMEOUT
            .scope(timeout, self.request_node(destination, request))
            .await
    }

    /// Sends a v4 request to an HTTP server through an onion path (the last hop proxies it).
    /// The server's own status, whatever it is, comes back in the [`V4Response`]; errors are
    /// failures to reach it, and 425 (clock skew).
    pub async fn request_server(
        &self,
        destination: &ServerDestination,
        request: &V4Request,
    ) -> Result<V4Response, Error> {
        let enc_type = self.inner.config.enc_type;
        self.server_attempts(destination, |path: &Path| {
            build_to_server(&path.keys(), destination, request, enc_type, &mut OsRng)
                .map_err(|e| Error::protocol("building an onion", e))
        })
        .await
    }

    /// Sends the onions `build` makes for paths to `destination` until one gets an answer.
    async fn server_attempts(
        &self,
        destination: &ServerDestination,
        build: impl Fn(&Path) -> Result<BuiltOnion, Error>,
    ) -> Result<V4Response, Error> {
        self.attempt_loop(None, None, build, |status, bytes, key| match status {
            // Opened where it lies: a 10 MB download is held once.
            200 => match V4Response::open_owned(key, bytes) {
                Ok(response) if response.code == 425 || response.code == 406 => Verdict::Done(
                    Err(Error::ClockSkew {
                        status: response.code,
                    }),
                    Some(Outcome::Success),
                ),
                Ok(response) => Verdict::Done(Ok(response), Some(Outcome::Success)),
                // No decryptable reply: the request never reached the server.
                Err(e) => Verdict::Retry(
                    Some(Outcome::PathFailure),
                    format!("undecodable reply: {e}"),
                ),
            },
            502 | 504 if next_node_not_found(&bytes).is_none() => Verdict::Done(
                Err(Error::NodeUnreachable {
                    destination: destination.host.clone(),
                    reason: format!("last hop could not reach the server ({status})"),
                }),
                None,
            ),
            _ => classify_transport(status, &bytes, None),
        })
        .await
    }

    /// [`Self::request_server_with_timeout`] for a body too large to hold apart from its onion
    /// (a 10 MB upload): `request` gives the method, endpoint and headers, and every attempt's
    /// onion is built around `body_len` bytes that `write_body` writes where they lie (an
    /// upload encrypts its file straight into the onion, again for a retry on another path,
    /// instead of keeping a copy). A `write_body` error ends the request.
    pub async fn request_server_writing_body(
        &self,
        destination: &ServerDestination,
        (request, body_len): (&V4Request, usize),
        write_body: impl Fn(&mut [u8]) -> Result<(), String>,
        timeout: Duration,
    ) -> Result<V4Response, Error> {
        let enc_type = self.inner.config.enc_type;
        let build = |path: &Path| {
            let mut failed = None;
            let built = build_to_server_writing_body(
                &path.keys(),
                destination,
                (request, body_len),
                |out| failed = write_body(out).err(),
                enc_type,
                &mut OsRng,
            )
            .map_err(|e| Error::protocol("building an onion", e))?;
            match failed {
                Some(detail) => Err(Error::protocol("writing the request body", detail)),
                None => Ok(built),
            }
        };
        REQUEST_TIMEOUT
            .scope(timeout, self.server_attempts(destination, build))
            .await
    }

    /// [`Self::request_server`] with its own end-to-end timeout, for a large body (a 10 MB
    /// attachment) that needs longer than an ordinary request.
    pub async fn request_server_with_timeout(
        &self,
        destination: &ServerDestination,
        request: &V4Request,
        timeout: Duration,
    ) -> Result<V4Response, Error> {
        REQUEST_TIMEOUT
            .scope(timeout, self.request_server(destination, request))
            .await
    }

    /// Refreshes the pool from `refresh_sources` random pool nodes (through onion paths), keeping
    /// only the nodes all of them list (at least `min_refresh_agreement`). Paths through nodes
    /// that left are repaired. Returns the new pool size.
    pub async fn refresh_pool(&self) -> Result<usize, Error> {
        let sources: Vec<NodeRecord> = {
            let state = self.state();
            state
                .pool
                .nodes()
                .choose_multiple(&mut rand::thread_rng(), self.inner.config.refresh_sources)
                .cloned()
                .collect()
        };
        let mut answers = Vec::with_capacity(sources.len());
        for source in &sources {
            let (_, body) = self
                .request_node(source, &pool::service_nodes_request())
                .await?;
            let reply: OxendResult = decode_reply("refreshing the pool", &body)?;
            answers.push(pool::parse_service_nodes(&reply.result)?);
        }
        let common = pool::intersect(&answers, self.inner.config.min_refresh_agreement)?;
        Ok(self.install_pool(Pool::new(common), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::node;
    use serde_json::json;

    #[test]
    fn dead_guards_do_not_use_up_the_tries_of_a_request() {
        // The flaky dead-guards run: a stale connection to the first dead guard, then both
        // refuse. Before, that was all three tries and the live member was given up.
        let mut tries = Tries::new(3);
        let mut made = Vec::new();
        for outcome in [
            Outcome::PathFailure,
            Outcome::GuardUnreachable,
            Outcome::GuardUnreachable,
        ] {
            made.push(tries.start().unwrap());
            tries.failed(Some(outcome));
        }
        assert_eq!(made, [1, 2, 3]);
        assert_eq!(tries.start(), Some(4), "a try is left for the new path");
        tries.failed(Some(Outcome::PathFailure));
        assert_eq!(tries.start(), Some(5));
        tries.failed(None);
        assert_eq!(
            tries.start(),
            None,
            "three counted failures end the request"
        );
        assert_eq!(tries.made(), 5);
        // Unreachable guards alone are bounded too: max counted plus max uncounted.
        let mut tries = Tries::new(3);
        while tries.start().is_some() {
            tries.failed(Some(Outcome::GuardUnreachable));
        }
        assert_eq!(tries.made(), 6);
    }

    fn done_err<T: std::fmt::Debug>(v: Verdict<T>) -> (crate::ErrorKind, Option<Outcome>) {
        match v {
            Verdict::Done(Err(e), outcome) => (e.kind(), outcome),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn only_socks5_proxies_with_host_and_port_are_accepted() {
        for good in ["socks5h://127.0.0.1:9050", "socks5://localhost:1080"] {
            assert!(socks_proxy(good).is_ok(), "{good}");
            let config = ClientConfig {
                proxy: Some(good.to_owned()),
                ..ClientConfig::default()
            };
            assert!(http_client(&config).is_ok(), "{good}");
        }
        for bad in [
            "http://127.0.0.1:8080",
            "socks4://127.0.0.1:1080",
            "socks5h://127.0.0.1",
            "127.0.0.1:9050",
        ] {
            assert!(socks_proxy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clock_skew_is_surfaced_without_penalty() {
        let dest = node(1, 1);
        let (kind, outcome) = done_err(classify_snode(
            406,
            json!(shallot_proto::rpc::Refusal::StoreClock.to_string()),
            &dest,
        ));
        assert_eq!(kind, crate::ErrorKind::ClockSkew);
        assert_eq!(outcome, Some(Outcome::Success));
        let (kind, outcome) = done_err(classify_transport::<()>(425, b"", None));
        assert_eq!(kind, crate::ErrorKind::ClockSkew);
        assert_eq!(outcome, None);
    }

    #[test]
    fn destination_statuses_are_classified() {
        let dest = node(1, 1);
        assert!(matches!(
            classify_snode(200, json!({"t": 1}), &dest),
            Verdict::Done(Ok(_), Some(Outcome::Success))
        ));
        let (kind, _) = done_err(classify_snode(401, json!("bad sig"), &dest));
        assert_eq!(kind, crate::ErrorKind::Rejected { status: 401 });
        let (kind, outcome) = done_err(classify_snode(500, json!("request failed"), &dest));
        assert_eq!(kind, crate::ErrorKind::NodeUnreachable);
        assert_eq!(outcome, Some(Outcome::DestinationFailure(dest.ed25519)));
        let moved = serde_json::to_value(shallot_proto::rpc::SwarmMembers {
            hf: [19, 3],
            snodes: vec![node(2, 2).swarm_entry()],
            swarm: shallot_proto::swarm::SwarmId(1000),
            t: 1,
        })
        .unwrap();
        match classify_snode(421, moved, &dest) {
            Verdict::Done(Err(Error::SwarmMoved { snodes }), _) => {
                assert_eq!(snodes.len(), 1);
                assert_eq!(snodes[0].ed25519, node(2, 2).ed25519);
                assert_eq!(snodes[0].swarm_id.0, 1000);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Errors a later hop encrypted: opened with that hop's key, believed only about the node
    /// that follows it; plain or tampered bodies pass through unchanged.
    #[test]
    fn encrypted_hop_errors_name_only_the_hops_successor() {
        use shallot_proto::onion::{
            classify_layer, decrypt_layer, encode_hop_error, parse_onion_request, Layer,
            X25519Keypair,
        };
        let mut rng = OsRng;
        let pairs: Vec<X25519Keypair> = (0..4).map(|_| X25519Keypair::generate(&mut rng)).collect();
        let records: Vec<NodeRecord> = pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                let mut record = node(u8::try_from(i).unwrap() + 1, 1);
                record.x25519 = *pair.public();
                record
            })
            .collect();
        let (path, destination) = (&records[..3], &records[3]);
        let keys: Vec<NodeKeys> = path.iter().map(node_keys).collect();
        let onion = build_to_node_padded(
            &keys,
            &node_keys(destination),
            b"{}",
            EncType::XChaCha20,
            4096,
            &mut rng,
        )
        .unwrap();
        // Peel as the nodes do, keeping each hop's layer key.
        let mut layers = vec![parse_onion_request(&onion.body)
            .unwrap()
            .decrypt(&pairs[0])
            .unwrap()];
        for pair in &pairs[1..3] {
            let next = match classify_layer(layers.last().unwrap().plaintext()).unwrap() {
                Layer::Relay(r) => {
                    decrypt_layer(pair, r.ciphertext, &r.ephemeral_key, r.enc_type).unwrap()
                }
                other => panic!("{other:?}"),
            };
            layers.push(next);
        }
        let mut open = |hop: usize, named: &NodeRecord| {
            let text = format!("{NEXT_NODE_NOT_REACHABLE}{}", named.ed25519);
            let body = encode_hop_error(layers[hop].reply_key(), 502, &text, &mut rng).unwrap();
            assert!(!String::from_utf8_lossy(&body).contains(&named.ed25519.to_hex()));
            open_error(502, body, path, &onion.hop_keys, Some(&destination.ed25519))
        };
        // The middle hop lost the last hop; the last hop lost the destination.
        let lost = next_node_not_found(&open(1, &path[2]));
        assert_eq!(lost, Some(path[2].ed25519));
        match classify_transport::<()>(502, &open(2, destination), Some(&destination.ed25519)) {
            Verdict::Done(
                Err(Error::NodeUnreachable { .. }),
                Some(Outcome::NextNodeNotFound(n)),
            ) => {
                assert_eq!(n, destination.ed25519);
            }
            other => panic!("{other:?}"),
        }
        // A hop blaming a node that does not follow it: a path failure, nobody dropped.
        for (hop, named) in [(1, &path[0]), (2, &path[1]), (0, destination)] {
            assert!(matches!(
                classify_transport::<()>(502, &open(hop, named), Some(&destination.ed25519)),
                Verdict::Retry(Some(Outcome::PathFailure), _)
            ));
        }
        // Plain texts (the guard's, a Session node's) pass through as before.
        let plain = format!("{NEXT_NODE_NOT_FOUND}{}", path[1].ed25519).into_bytes();
        assert_eq!(
            open_error(502, plain.clone(), path, &onion.hop_keys, None),
            plain
        );
    }

    #[test]
    fn transport_failures_penalise_the_path_or_the_lost_node() {
        let lost = node(9, 9).ed25519;
        let body = format!("{NEXT_NODE_NOT_FOUND}{}", lost.to_hex());
        match classify_transport::<()>(502, body.as_bytes(), None) {
            Verdict::Retry(Some(Outcome::NextNodeNotFound(n)), _) => assert_eq!(n, lost),
            other => panic!("{other:?}"),
        }
        let quic = format!("502 Bad Gateway\n\n{body}");
        assert_eq!(next_node_not_found(quic.as_bytes()), Some(lost));
        // Our relays name a next hop that refused the connection the same way.
        let refused = format!("{NEXT_NODE_NOT_REACHABLE}{}", lost.to_hex());
        match classify_transport::<()>(502, refused.as_bytes(), None) {
            Verdict::Retry(Some(Outcome::NextNodeNotFound(n)), _) => assert_eq!(n, lost),
            other => panic!("{other:?}"),
        }
        // The destination itself is unknown: no point retrying it.
        let (kind, _) = done_err(classify_transport::<()>(502, body.as_bytes(), Some(&lost)));
        assert_eq!(kind, crate::ErrorKind::NodeUnreachable);
        for status in [400, 502, 503, 504] {
            assert!(matches!(
                classify_transport::<()>(status, b"Snode not ready", None),
                Verdict::Retry(Some(Outcome::PathFailure), _)
            ));
        }
        let (kind, outcome) = done_err(classify_transport::<()>(500, b"Oxen Server error", None));
        assert_eq!(kind, crate::ErrorKind::PathFailed);
        assert_eq!(outcome, Some(Outcome::PathFailure));
    }
}
