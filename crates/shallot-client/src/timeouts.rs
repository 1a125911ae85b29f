//! Every network timeout of the client in one place, with the reason for its value.

use std::time::Duration;

/// Testing a guard candidate with a direct `get_swarm` (spec §3.2): a guard that cannot answer a
/// trivial request within this is too slow to carry every request we send.
pub const GUARD_TEST: Duration = Duration::from_secs(10);
/// Asking a seed for the node list (directory spec §5.1): seeds are raced, so a slow one is skipped.
pub const SEED_REQUEST: Duration = Duration::from_secs(5);
/// One onion request end to end: relays allow 30 s per hop for the rest of the path, but a client
/// that waits that long looks frozen; a path this slow is counted as failed and another is used.
pub const ONION_REQUEST: Duration = Duration::from_secs(20);
/// Connecting to a guard: a dead guard is found quickly instead of after the whole request timeout.
pub const CONNECT: Duration = Duration::from_secs(5);
/// Uploading or downloading one attachment (up to 10 MB) through an onion path: desktop allows
/// 30 s, and the last hop waits at most 25 s for the file server, so longer cannot help.
pub const FILE_TRANSFER: Duration = Duration::from_secs(30);
