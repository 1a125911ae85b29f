//! Embedded devnet directory: a simulated Oxen chain (directory spec §4, §7).
//!
//! * [`state`] — the pure service-node state machine (staking, proofs, credit, decommission,
//!   deregistration, unlocks, swarms), a function of the event log.
//! * [`store`] — the event log and blocks in SQLite; state is rebuilt by replay on open.
//! * [`chain`] — the running chain: committed state, pending events, block production.
//! * [`rpc`] — oxend-compatible `POST /json_rpc` plus devnet admin methods, and [`serve`],
//!   which also produces blocks at the configured interval.

pub mod chain;
pub mod config;
/// Signed proofs and reports; their wire format lives in `shallot-directory`.
pub use shallot_directory::proof;
pub mod rpc;
pub mod state;
pub mod store;
mod swarms;

pub use chain::Chain;
pub use config::{ChainConfig, Rules, OXEN};
pub use proof::{Heartbeat, PeerReport, Sig, SignedHeartbeat, SignedReport, TestKind};
pub use rpc::{serve, serve_chain, serve_with_shutdown, RpcError, ServeError};
pub use state::{Address, Block, ChainState, Event, EventError, Reservation};
pub use store::{ChainStore, StoreError};
