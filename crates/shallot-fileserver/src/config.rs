//! File server settings. Defaults admit a full 10 MB attachment in every scheme and keep files
//! for three weeks, longer than the 12 days after which clients re-upload profile pictures.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use shallot_proto::onion::MAX_ONION_SIZE;

use crate::timeouts;

/// Largest blob accepted by default: 10 MiB, above the largest blob a current client uploads
/// (10,223,616 bytes, an S-scheme 10 MB file) and the same as the onion request cap.
pub const DEFAULT_MAX_FILE_SIZE: usize = MAX_ONION_SIZE;
/// Default lifetime of an upload: 21 days (session-file-server's `FILE_EXPIRY`).
pub const DEFAULT_TTL_SECS: u64 = 21 * 24 * 3600;
/// Default longest lifetime a client may ask for with `X-FS-TTL`: 30 days (the server schema's
/// default).
pub const DEFAULT_MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct FileServerConfig {
    /// Holds the key, the database and the blobs.
    pub data_dir: PathBuf,
    /// Plain-HTTP listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Base URL clients use (`http://host[:port]`); default `http://` + the bound address.
    pub public_url: Option<String>,
    /// Largest blob accepted, in bytes.
    pub max_file_size: usize,
    /// Lifetime of an upload without `X-FS-TTL`, seconds.
    pub default_ttl_secs: u64,
    /// Largest `X-FS-TTL` accepted, seconds; larger values are refused with 400.
    pub max_ttl_secs: u64,
    /// Total bytes of blobs kept; an upload past it gets 507 (as does a full disk).
    pub max_total_bytes: Option<u64>,
    /// Connection caps and timeouts.
    pub limits: Limits,
}

impl FileServerConfig {
    /// Defaults, storing in `data_dir` and listening on `127.0.0.1:0`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_url: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            default_ttl_secs: DEFAULT_TTL_SECS,
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
            max_total_bytes: None,
            limits: Limits::default(),
        }
    }
}

/// What one listener allows, so that hostile clients cannot exhaust memory, sockets or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at once; more are closed on accept.
    pub max_connections: usize,
    /// Request bodies being received at once (each may be 10 MB in memory); more get 503.
    pub max_concurrent_bodies: usize,
    /// See [`timeouts::HEADER_READ`].
    pub header_read: Duration,
    /// See [`timeouts::BODY_READ`].
    pub body_read: Duration,
    /// See [`timeouts::HANDLE`].
    pub handle: Duration,
    /// See [`timeouts::CONNECTION_LIFETIME`].
    pub connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_concurrent_bodies: 16,
            header_read: timeouts::HEADER_READ,
            body_read: timeouts::BODY_READ,
            handle: timeouts::HANDLE,
            connection_lifetime: timeouts::CONNECTION_LIFETIME,
        }
    }
}
