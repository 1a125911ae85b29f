//! Starting and stopping a node: identity, TLS, store, listeners, and the background tasks
//! (directory sync with handoff, expiry sweep, rate-limit pruning).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shallot_directory::NetworkView;
use shallot_keys::AccountStore;
use shallot_proto::Identity;
use shallot_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::{DirectorySource, NodeConfig};
use crate::connections;
use crate::observe::ObservationLog;
use crate::oxend::{OxendClient, SignedReporter};
use crate::peers::PeerClient;
use crate::rate_limit::RateLimiter;
use crate::state::Node;
use crate::{handoff, reachability, routes, server, timeouts, tls};

/// How often the directory is polled for a new block.
pub const DIRECTORY_POLL: Duration = Duration::from_secs(1);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or key file could not be used.
    #[error(transparent)]
    Keys(#[from] shallot_keys::KeystoreError),
    /// The message store could not be opened.
    #[error("could not open the message store")]
    Store(#[from] shallot_store::StoreError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// An observation log was asked for without devnet settings.
    #[error(
        "observation_log is for devnets and audits only: it records client addresses next to \
         accounts; it needs allow_private_targets (devnet settings)"
    )]
    ObservationLogNeedsDevnet,
    /// The observation log could not be opened.
    #[error("could not open the observation log {path}")]
    ObservationLog {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A started node and the handles to stop it.
pub struct RunningNode {
    /// Shared state (for tests and the CLI's status output).
    pub node: Arc<Node>,
    /// The HTTPS address actually bound (port 0 resolves here).
    pub https_addr: SocketAddr,
    /// The admin (metrics) address actually bound, if any.
    pub admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Loads the node identity from the data directory, creating it on first start.
pub fn load_or_create_identity(
    config: &NodeConfig,
) -> Result<Identity, shallot_keys::KeystoreError> {
    let keys = AccountStore::node(&config.data_dir);
    if keys.exists() {
        return keys.load();
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
    let identity = Identity::from_seed(*seed);
    keys.save(&identity, false)?;
    Ok(identity)
}

/// Opens the message store with the configured size cap and inbox quota.
fn open_store(config: &NodeConfig) -> Result<Arc<Store>, StartError> {
    let store_config = StoreConfig {
        max_db_bytes: config.max_db_bytes,
        inbox_quota: config.account_limits.inbox_quota(),
        ..StoreConfig::default()
    };
    Ok(Arc::new(Store::open(
        config.data_dir.join("storage.db"),
        store_config,
    )?))
}

/// Starts a node: binds its listeners and spawns its tasks. Returns once it accepts connections
/// (it becomes *ready* once the directory lists it in a swarm).
pub async fn start(config: NodeConfig, clock: Arc<dyn Clock>) -> Result<RunningNode, StartError> {
    let observations = observation_log(&config)?;
    let identity = load_or_create_identity(&config)?;
    let limiter = connections::limiter_for(&config.connections);
    let store = open_store(&config)?;
    let tls = tls::server_config(&config.data_dir, &identity)?;
    let bind_ip = Some(config.bind.ip()).filter(|ip| !ip.is_unspecified());
    let peers = PeerClient::new(&identity, config.onion, bind_ip)?;
    let mut node = Node::new(
        identity,
        clock,
        store,
        RateLimiter::new(config.rate_limit),
        peers,
        config.force_start,
    )
    .with_account_limits(config.account_limits)
    .with_connection_limiter(limiter.clone())
    .with_wait_limits(config.wait);
    if let Some(log) = observations {
        node = node.with_observation_log(log);
    }
    let node = Arc::new(node);
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let https_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    tasks.spawn(server::serve(
        listener,
        tls,
        routes::router(node.clone()),
        config.connections,
        limiter,
        node.clone(),
        shutdown_rx.clone(),
    ));

    let admin_addr = match config.admin_bind {
        Some(bind) => Some(spawn_admin(&mut tasks, bind, &node, &shutdown_rx).await?),
        None => None,
    };

    if let Some(source) = config.directory.clone() {
        if let DirectorySource::Oxend { url } = &source {
            let oxend = OxendClient::new(url.clone());
            let public = std::net::SocketAddrV4::new(config.advertised_ip(), https_addr.port());
            let (assignment_tx, assignment) = watch::channel(None);
            tasks.spawn(ping_directory(
                node.clone(),
                oxend.clone(),
                public,
                assignment_tx,
                shutdown_rx.clone(),
            ));
            let reporter = SignedReporter {
                oxend,
                identity: node.identity.clone(),
                clock: node.clock.clone(),
            };
            tasks.spawn(reachability::run(
                node.clone(),
                ping_client(bind_ip)?,
                reporter,
                assignment,
                shutdown_rx.clone(),
            ));
        }
        tasks.spawn(directory_sync(node.clone(), source, shutdown_rx.clone()));
    }
    tasks.spawn(maintenance(node.clone(), shutdown_rx));

    tracing::info!(
        ed25519 = %node.identity.ed25519_public(),
        x25519 = %node.identity.x25519_public(),
        %https_addr,
        "service node listening"
    );
    Ok(RunningNode {
        node,
        https_addr,
        admin_addr,
        shutdown,
        tasks,
    })
}

/// Opens the configured observation log, refusing it outside devnets (it writes client
/// addresses next to accounts: see [`crate::observe`]).
fn observation_log(config: &NodeConfig) -> Result<Option<ObservationLog>, StartError> {
    let Some(path) = &config.observation_log else {
        return Ok(None);
    };
    if !config.onion.allow_private_targets {
        return Err(StartError::ObservationLogNeedsDevnet);
    }
    let log = ObservationLog::open(path).map_err(|source| StartError::ObservationLog {
        path: path.clone(),
        source,
    })?;
    tracing::warn!(
        path = %path.display(),
        "OBSERVATION LOG ON (devnets and audits only): every request's client address, accounts \
         and next hop are written to this file"
    );
    Ok(Some(log))
}

/// Binds the plain-HTTP admin listener (`/metrics`) and serves it until shutdown.
async fn spawn_admin(
    tasks: &mut JoinSet<()>,
    bind: SocketAddr,
    node: &Arc<Node>,
    shutdown: &watch::Receiver<bool>,
) -> Result<SocketAddr, StartError> {
    let admin = TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = admin
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let app = routes::admin_router(node.clone());
    let mut stop = shutdown.clone();
    tasks.spawn(async move {
        let _ = axum::serve(admin, app)
            .with_graceful_shutdown(async move { server::stopped(&mut stop).await })
            .await;
    });
    Ok(addr)
}

impl RunningNode {
    /// Graceful shutdown: stop being ready, stop accepting, let in-flight requests finish, then
    /// checkpoint the database.
    pub async fn stop(mut self) {
        self.node.begin_shutdown();
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        let store = self.node.store.clone();
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(_)) => tracing::info!("database checkpointed; node stopped"),
            _ => {
                tracing::warn!(
                    "database checkpoint failed; the WAL will be replayed on next start"
                );
            }
        }
    }
}

/// Applies a new directory answer: replaces the view and starts any handoff it calls for.
pub fn apply_view(node: &Arc<Node>, view: NetworkView) {
    let new = Arc::new(view.clone());
    let old = node.set_view(view);
    if old.block_hash == new.block_hash && old.nodes() == new.nodes() {
        return;
    }
    let plan = handoff::plan(&node.identity.ed25519_public(), &old, &new);
    if !plan.is_empty() {
        tokio::spawn(handoff::execute(node.clone(), new, plan));
    }
}

/// Reads the directory once; `None` when nothing changed since `known_hash`.
async fn fetch(
    source: &DirectorySource,
    oxend: Option<&OxendClient>,
    known_hash: &str,
) -> Result<Option<NetworkView>, String> {
    match (source, oxend) {
        (_, Some(oxend)) => oxend.service_nodes(Some(known_hash)).await,
        (DirectorySource::File { path }, None) => {
            let text = tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let value =
                serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| e.to_string())?;
            // A file may hold either the bare result or a full JSON-RPC reply.
            let result = value.get("result").cloned().unwrap_or(value);
            NetworkView::from_get_service_nodes(&result)
                .map(Some)
                .map_err(|e| e.to_string())
        }
        (DirectorySource::Oxend { url }, None) => {
            OxendClient::new(url.clone())
                .service_nodes(Some(known_hash))
                .await
        }
    }
}

async fn directory_sync(node: Arc<Node>, source: DirectorySource, mut stop: watch::Receiver<bool>) {
    let oxend = match &source {
        DirectorySource::Oxend { url } => Some(OxendClient::new(url.clone())),
        DirectorySource::File { .. } => None,
    };
    let mut last_error: Option<String> = None;
    loop {
        let known = node.view().block_hash.clone();
        match fetch(&source, oxend.as_ref(), &known).await {
            Ok(update) => {
                last_error = None;
                if let Some(view) = update {
                    apply_view(&node, view);
                }
            }
            Err(error) => {
                if last_error.as_ref() != Some(&error) {
                    tracing::warn!(%error, "could not read the directory");
                }
                last_error = Some(error);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DIRECTORY_POLL) => {}
            () = server::stopped(&mut stop) => return,
        }
    }
}

/// An HTTPS client for reachability pings: a tested node must prove the key the directory lists
/// for it in the TLS handshake (see [`crate::peer_tls`]). Connects from `local` like the peer
/// client.
fn ping_client(local: Option<std::net::IpAddr>) -> Result<reqwest::Client, StartError> {
    tls::install_crypto_provider();
    reqwest::Client::builder()
        .use_preconfigured_tls(crate::peer_tls::pinned_client_config())
        .dns_resolver(Arc::new(crate::peer_tls::PinnedResolver))
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local)
        .pool_idle_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| {
            StartError::Tls(tls::TlsError::Io {
                action: "configure reachability client",
                path: e.to_string(),
                source: std::io::Error::other("reqwest"),
            })
        })
}

/// `storage_server_ping` every 30 s (spec §9.2) and, for devnet directories, a signed uptime
/// proof every few seconds; logs only changes of outcome.
async fn ping_directory(
    node: Arc<Node>,
    oxend: OxendClient,
    public: std::net::SocketAddrV4,
    assignment: watch::Sender<Option<TestTargets>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    let mut proofs = true;
    let mut targets = true;
    let mut last_ping: Option<Instant> = None;
    loop {
        if last_ping.is_none_or(|t| t.elapsed() >= crate::oxend::PING_INTERVAL) {
            last_ping = Some(Instant::now());
            match signed_ping(&oxend, &node, public.port()).await {
                Ok(()) if failing => {
                    tracing::info!("directory accepts our pings again");
                    failing = false;
                }
                Err(error) if !failing => {
                    tracing::warn!(%error, "storage_server_ping failed");
                    failing = true;
                }
                _ => {}
            }
        }
        if proofs {
            let now_s = node.clock.now_ms() / 1000;
            match oxend
                .submit_uptime_proof(&node.identity, *public.ip(), public.port(), now_s)
                .await
            {
                Ok(true) => {}
                Ok(false) => proofs = false,
                Err(error) => tracing::debug!(%error, "uptime proof not accepted"),
            }
        }
        if targets {
            targets = refresh_test_targets(&oxend, &node, &assignment).await;
        }
        tokio::select! {
            () = tokio::time::sleep(crate::oxend::HEARTBEAT_INTERVAL) => {}
            () = server::stopped(&mut stop) => return,
        }
    }
}

/// The nodes this node is assigned to test (reachability), as a devnet directory says.
type TestTargets = std::collections::HashSet<shallot_proto::Ed25519Pub>;

/// Asks a devnet directory which nodes this one is assigned to test (`devnet_test_targets`)
/// and publishes the answer to the reachability tester; `false` once the directory says it has
/// no such method (an oxend: every node stays a candidate).
async fn refresh_test_targets(
    oxend: &OxendClient,
    node: &Node,
    assignment: &watch::Sender<Option<TestTargets>>,
) -> bool {
    let params = serde_json::json!({"pubkey": node.identity.ed25519_public()});
    match oxend.call("devnet_test_targets", params).await {
        Ok(result) => {
            let parsed = result
                .get("targets")
                .cloned()
                .map(serde_json::from_value::<TestTargets>);
            if let Some(Ok(set)) = parsed {
                assignment.send_replace(Some(set));
            }
            true
        }
        Err(crate::oxend::CallError::Rpc { code, .. }) if code == -32601 || code == 403 => {
            assignment.send_replace(None);
            false
        }
        Err(error) => {
            tracing::debug!(%error, "devnet_test_targets failed");
            true
        }
    }
}

/// `storage_server_ping`, signed by the node's key with a timestamp: a devnet directory is
/// remote and takes only signed, fresh, never-seen pings (an oxend ignores the extra fields).
async fn signed_ping(
    oxend: &OxendClient,
    node: &Node,
    https_port: u16,
) -> Result<(), crate::oxend::CallError> {
    const METHOD: &str = "storage_server_ping";
    let ping = shallot_directory::proof::Ping {
        version: crate::state::STORAGE_SERVER_VERSION,
        pubkey_ed25519: node.identity.ed25519_public(),
        error: String::new(),
        https_port,
        omq_port: 0,
        t: node.clock.now_ms() / 1000,
    }
    .sign(METHOD, node.identity.signing_key());
    let params = serde_json::to_value(&ping)
        .map_err(|e| crate::oxend::CallError::Transport(e.to_string()))?;
    oxend.call(METHOD, params).await.map(|_| ())
}

async fn maintenance(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(timeouts::EXPIRY_SWEEP);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = server::stopped(&mut stop) => return,
        }
        let now = node.clock.now_ms();
        let store = node.store.clone();
        match tokio::task::spawn_blocking(move || store.sweep_expired(now)).await {
            Ok(Ok(swept)) if swept > 0 => tracing::debug!(swept, "expired messages removed"),
            Ok(Err(error)) => tracing::warn!(%error, "expiry sweep failed"),
            _ => {}
        }
        node.rate.prune(Instant::now());
    }
}
