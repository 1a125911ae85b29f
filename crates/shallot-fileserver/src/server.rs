//! The plain-HTTP listener and the running server: one router for the direct routes and the
//! onion endpoint, a cap on open connections and on bodies held in memory, and a deadline on
//! every phase (headers, body, handling, connection lifetime).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use shallot_proto::attachment::server_api::{Route, TTL_HEADER};
use shallot_proto::attachment::FileId;
use shallot_proto::onion::{HttpMethod, MAX_ONION_SIZE};
use shallot_proto::{Ed25519Pub, X25519Pub};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{FileServerConfig, Limits};
use crate::dispatch::{too_large, Reply, Service};
use crate::keys::{KeyError, ServerKeys};
use crate::onion::{handle_onion, OnionReply, ONION_PATHS};
use crate::store::{Store, StoreError};
use crate::timeouts;
use shallot_clock::{Clock, SystemClock};

/// Largest body of a request that is neither an upload nor an onion request.
const SMALL_BODY: usize = 64 * 1024;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("creating {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Starts file servers.
pub struct FileServer;

impl FileServer {
    /// Opens the key and store in `config.data_dir`, binds `config.listen` and serves until the
    /// handle is shut down.
    pub async fn start(config: FileServerConfig) -> Result<FileServerHandle, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Self::start`] with a given clock (tests move time instead of sleeping).
    pub async fn start_with_clock(
        config: FileServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<FileServerHandle, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let keys = ServerKeys::load_or_create(&config.data_dir)?;
        let store = Arc::new(Store::open(&config.data_dir, config.max_total_bytes)?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let (ed25519, x25519) = (keys.ed25519(), keys.x25519());
        let service = Arc::new(Service {
            store: store.clone(),
            clock: clock.clone(),
            max_file_size: config.max_file_size,
            default_ttl_secs: config.default_ttl_secs,
            max_ttl_secs: config.max_ttl_secs,
        });
        let shared = Arc::new(Shared {
            service,
            keys,
            bodies: Arc::new(Semaphore::new(config.limits.max_concurrent_bodies)),
            limits: config.limits.clone(),
            max_file_size: config.max_file_size,
        });
        let (shutdown, stop) = watch::channel(false);
        let purge = tokio::spawn(purge_loop(store.clone(), clock.clone(), stop.clone()));
        let app = Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            serve(listener, app, config.limits, stop).await;
            let _ = purge.await;
        });
        tracing::info!(%url, %ed25519, "file server listening");
        Ok(FileServerHandle {
            addr,
            url,
            ed25519,
            x25519,
            store,
            clock,
            shutdown,
            task,
        })
    }
}

/// A running file server.
pub struct FileServerHandle {
    addr: SocketAddr,
    url: String,
    ed25519: Ed25519Pub,
    x25519: X25519Pub,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FileServerHandle {
    /// The base URL clients use, `http://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's Ed25519 key (what a file URL's `#p=` carries).
    pub const fn ed25519(&self) -> Ed25519Pub {
        self.ed25519
    }

    /// The X25519 key onion requests are encrypted to.
    pub const fn x25519(&self) -> X25519Pub {
        self.x25519
    }

    /// The download URL of a file, naming this server by its key.
    pub fn file_url(&self, id: &FileId) -> String {
        format!("{}/file/{id}#p={}", self.url, self.ed25519)
    }

    /// Deletes expired files now (the server also does it every minute).
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let (store, now) = (self.store.clone(), self.clock.now_ms());
        tokio::task::spawn_blocking(move || store.purge_expired(now))
            .await
            .unwrap_or(Err(StoreError::Poisoned))
    }

    /// Stops accepting, lets requests in flight finish (up to [`timeouts::SHUTDOWN_GRACE`]) and
    /// returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// What every request handler shares.
struct Shared {
    service: Arc<Service>,
    keys: ServerKeys,
    /// Bodies held in memory at once.
    bodies: Arc<Semaphore>,
    limits: Limits,
    max_file_size: usize,
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(32)
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    loop {
        let (tcp, _remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::debug!("connection refused: too many open connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (builder, app, watcher) = (builder.clone(), app.clone(), graceful.watcher());
        let lifetime = limits.connection_lifetime;
        tokio::spawn(async move {
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(app))
                .into_owned();
            let _ = tokio::time::timeout(lifetime, watcher.watch(connection)).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts::SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("file server connections still open after the shutdown grace period");
    }
}

async fn purge_loop(store: Arc<Store>, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(timeouts::PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopped(&mut stop) => return,
        }
        let (store, now) = (store.clone(), clock.now_ms());
        match tokio::task::spawn_blocking(move || store.purge_expired(now)).await {
            Ok(Ok(purged)) if purged > 0 => tracing::debug!(purged, "expired files deleted"),
            Ok(Err(error)) => tracing::warn!(%error, "purging expired files failed"),
            _ => {}
        }
    }
}

/// Every request: the onion endpoint, or a direct route.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let handle_deadline = shared.limits.handle;
    if ONION_PATHS.contains(&uri.path()) {
        if method != Method::POST {
            return to_response(Reply::error(405, None));
        }
        let (body, _permit) = match read_body(&shared, body, &headers, MAX_ONION_SIZE).await {
            Ok(read) => read,
            Err(reply) => return to_response(reply),
        };
        let work = handle_onion(&shared.service, &shared.keys, &body);
        return match tokio::time::timeout(handle_deadline, work).await {
            Ok(OnionReply::Sealed(bytes)) => (
                StatusCode::OK,
                [("content-type", "application/octet-stream")],
                bytes,
            )
                .into_response(),
            Ok(OnionReply::Plain { status, text }) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                text,
            )
                .into_response(),
            Err(_) => (StatusCode::GATEWAY_TIMEOUT, "Request timed out").into_response(),
        };
    }
    let Ok(method) = HttpMethod::from_str(method.as_str()) else {
        return to_response(Reply::error(405, None));
    };
    let endpoint = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let route = Route::parse(method, endpoint);
    let limit = if route == Ok(Route::Upload) {
        shared.max_file_size
    } else {
        SMALL_BODY
    };
    let (body, _permit) = match read_body(&shared, body, &headers, limit).await {
        Ok(read) => read,
        Err(reply) => return to_response(reply),
    };
    // A TTL header that is not text is as invalid as one that is not a number.
    let ttl = headers
        .get(TTL_HEADER)
        .map(|value| value.to_str().unwrap_or("invalid"));
    match tokio::time::timeout(handle_deadline, shared.service.handle(route, ttl, body)).await {
        Ok(reply) => to_response(reply),
        Err(_) => to_response(Reply::error(504, "request timed out".to_owned())),
    }
}

/// Reads a body of at most `limit` bytes within the body deadline, holding one of the
/// in-memory body slots until the returned permit is dropped.
async fn read_body(
    shared: &Shared,
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Reply> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared {
        if declared > limit as u64 {
            return Err(Reply::error(
                413,
                too_large(usize::try_from(declared).unwrap_or(usize::MAX), limit),
            ));
        }
    }
    // Bodies declared small need no slot; others wait for none either: a full house is 503.
    let permit = if limit > SMALL_BODY && declared.is_none_or(|len| len > SMALL_BODY as u64) {
        Some(
            shared
                .bodies
                .clone()
                .try_acquire_owned()
                .map_err(|_| Reply::error(503, "too many uploads in progress".to_owned()))?,
        )
    } else {
        None
    };
    let collected =
        tokio::time::timeout(shared.limits.body_read, Limited::new(body, limit).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok((collected.to_bytes(), permit)),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(Reply::error(
            413,
            format!("file too large: this server accepts at most {limit} bytes"),
        )),
        Ok(Err(_)) => Err(Reply::error(
            400,
            "could not read the request body".to_owned(),
        )),
        Err(_) => Err(Reply::error(408, "request body too slow".to_owned())),
    }
}

fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
