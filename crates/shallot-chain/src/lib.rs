//! Embedded devnet directory: a simulated Oxen chain (directory spec §4, §7).
//!
//! * [`state`] — the pure service-node state machine (staking, proofs, credit, decommission,
//!   deregistration, unlocks, swarms), a function of the event log.
//! * [`store`] — the event log and blocks in SQLite; state is rebuilt by replay on open.
//! * [`chain`] — the running chain: committed state, pending events, block production.
//! * [`auth`] — who may change stakes: devnet wallet signatures, replay window, admin token.
//! * [`rpc`] — oxend-compatible `POST /json_rpc` plus devnet admin methods, and [`serve`],
//!   which also produces blocks at the configured interval.

pub mod auth;
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
pub use rpc::{
    serve, serve_chain, serve_chain_with_admin, serve_with_shutdown, AdminListener, Caller,
    RpcError, ServeError,
};
pub use state::{Address, Block, ChainState, Event, EventError, Reservation};
pub use store::{ChainStore, StoreError};
