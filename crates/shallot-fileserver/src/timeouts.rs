//! The file server's fixed deadlines, with the reason for each. The configurable caps are in
//! [`crate::config::Limits`].

use std::time::Duration;

/// How often expired files are deleted (reads already refuse them at once).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default for reading request headers, and for the next request on a kept-alive connection:
/// a client that has not sent them by then is stalling or idle.
pub const HEADER_READ: Duration = Duration::from_secs(10);
/// Default for receiving a whole request body: 10 MB in 120 s is about 85 kB/s, slower than
/// any client that could finish within its own 30 s timeout anyway.
pub const BODY_READ: Duration = Duration::from_secs(120);
/// Default for handling a request once read (disk and database work); a service node gives up
/// on a proxied request after 25 s.
pub const HANDLE: Duration = Duration::from_secs(25);
/// Default longest life of one connection, kept alive or not: a node's proxy reconnects.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
