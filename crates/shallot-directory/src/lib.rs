//! Service-node membership: who the nodes are, where they listen and which swarm each belongs to.
//!
//! The data comes from an oxend-compatible `get_service_nodes` answer (directory spec §1.3); this
//! crate parses it into a [`NetworkView`] that nodes and clients query (swarm of an account,
//! members of a swarm, a node by key). [`DirectoryClient`] is the JSON-RPC client that fetches it
//! and makes every other directory call.

pub mod assignment;
pub mod capped;
pub mod client;
pub mod proof;
pub mod record;
pub mod view;

pub use client::{CallError, DirectoryClient};
pub use record::{NodeRecord, RecordError};
pub use view::{NetworkView, ViewError};
