//! A Session-compatible file server (attachments spec §3, §7): clients upload encrypted blobs,
//! which are stored on disk under the hash of their bytes with SQLite metadata, fetched by id,
//! and expire unless extended. Reached over plain HTTP (bots) and through onion v4 requests that
//! a service node proxies to `/oxen/v4/lsrpc`, encrypted end to end to the server's X25519 key.
//!
//! [`FileServer::start`] binds, opens the store and returns a [`FileServerHandle`] with the URL
//! and keys clients pin. The server never sees plaintext, senders or recipients.
//!
//! - [`config`]: settings and their defaults.
//! - [`keys`]: the server's key, generated once and kept in the data directory.
//! - [`store`]: blobs on disk, metadata in SQLite, expiry.
//! - [`dispatch`]: what each route does; shared by both transports.
//! - [`onion`]: unwrapping a v4 onion request and sealing its reply.
//! - [`server`]: the listener, its caps and timeouts, and the running server's handle.
//! - [`timeouts`]: every fixed deadline with its reason.
#![forbid(unsafe_code)]

pub mod config;
pub mod dispatch;
pub mod keys;
pub mod onion;
pub mod server;
pub mod store;
pub mod timeouts;

pub use config::{FileServerConfig, Limits};
pub use server::{FileServer, FileServerHandle, StartError};
pub use shallot_clock::{Clock, ManualClock, SystemClock};
