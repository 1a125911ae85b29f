//! The members of an account's swarm, as `get_swarm` and every 421 answer list them (storage RPC
//! spec §3.3, §4.10).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::wire::{hex32, lenient_list, port_text, swarm_hex};
use super::Hardfork;
use crate::identity::{Ed25519Pub, X25519Pub};
use crate::swarm::SwarmId;

/// `{"snodes": [...], "swarm": "<hex id>", "t", "hf"}`. No swarm known: no members and swarm
/// `ffffffffffffffff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmMembers {
    /// The network's `[hardfork, snode_revision]`.
    #[serde(default)]
    pub hf: Hardfork,
    /// Every member, in the directory's order. Entries that do not read are skipped.
    #[serde(default, deserialize_with = "lenient_list::deserialize")]
    pub snodes: Vec<SwarmMember>,
    /// The swarm (lowercase hex, no leading zeros; [`SwarmId::INVALID`] if absent or not hex).
    #[serde(with = "swarm_hex", default = "swarm_hex::invalid")]
    pub swarm: SwarmId,
    /// The node's time, ms.
    #[serde(default)]
    pub t: u64,
}

/// One swarm member's keys and addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmMember {
    /// `<z-base-32 of the legacy key>.snode`.
    pub address: String,
    /// Public IPv4 address.
    pub ip: Ipv4Addr,
    /// The HTTPS port again, as a decimal string.
    #[serde(with = "port_text")]
    pub port: u16,
    /// HTTPS port of the storage server.
    pub port_https: u16,
    /// OxenMQ port.
    pub port_omq: u16,
    /// QUIC port (the reference writes the OxenMQ port here too).
    pub port_quic: u16,
    /// Ed25519 key (64 hex).
    pub pubkey_ed25519: Ed25519Pub,
    /// Primary service-node key (64 hex).
    #[serde(with = "hex32")]
    pub pubkey_legacy: [u8; 32],
    /// X25519 key (64 hex).
    pub pubkey_x25519: X25519Pub,
}
