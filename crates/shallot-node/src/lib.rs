//! The Shallot service node: a storage server wire-compatible with Session's, with swarm
//! replication, onion relaying and push notifications.
#![forbid(unsafe_code)]

pub mod account_limits;
pub mod clock;
pub mod config;
pub mod connections;
pub mod exec;
pub mod handoff;
pub mod memory_link;
pub mod metrics;
pub mod monitor;
pub mod node_api;
pub mod observe;
pub mod onion;
pub mod onion_limits;
pub mod oxend;
pub mod peer_inbound;
pub mod peer_tls;
pub mod peers;
pub mod rate_limit;
pub mod reachability;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod ssrf;
pub mod state;
pub mod swarm_link;
pub mod timeouts;
pub mod tls;
pub mod token_cache;
pub mod waiters;
