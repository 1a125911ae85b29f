//! One service node as the directory lists it (directory spec §1.3, storage RPC spec §8.1).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde_json::{json, Map, Value};
use shallot_proto::rpc::SwarmMember;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{Ed25519Pub, X25519Pub};

/// A service node's keys, address and swarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// Primary ("legacy") service-node key; equal to the Ed25519 key on Shallot networks.
    pub pubkey_legacy: [u8; 32],
    /// Ed25519 key: the node's identity for onion routing and response signatures.
    pub ed25519: Ed25519Pub,
    /// X25519 key: what onion layers for this node are encrypted to.
    pub x25519: X25519Pub,
    /// Public IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port of the storage server.
    pub https_port: u16,
    /// OMQ/QUIC port (reported for compatibility; Shallot nodes use HTTPS only).
    pub omq_port: u16,
    /// Swarm, or [`SwarmId::INVALID`] when decommissioned.
    pub swarm_id: SwarmId,
}

/// Why a directory entry was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A required field is missing or has the wrong type.
    #[error("service node entry: field '{0}' missing or invalid")]
    Field(&'static str),
    /// The node has not published keys or an address yet (no uptime proof).
    #[error("service node entry has no keys or address yet")]
    Incomplete,
    /// The node is not funded (not a service node yet).
    #[error("service node is not funded")]
    Unfunded,
}

fn key32(entry: &Map<String, Value>, name: &'static str) -> Result<Option<[u8; 32]>, RecordError> {
    match entry.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(s, &mut out).map_err(|_| RecordError::Field(name))?;
            Ok(Some(out))
        }
        Some(_) => Err(RecordError::Field(name)),
    }
}

fn port(entry: &Map<String, Value>, name: &'static str) -> Result<u16, RecordError> {
    entry
        .get(name)
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(RecordError::Field(name))
}

impl NodeRecord {
    /// Parses one `service_node_states` entry with the storage server's rules: unfunded nodes
    /// and nodes without keys or an address are skipped (returned as errors to count them).
    pub fn from_json(entry: &Value) -> Result<Self, RecordError> {
        let entry = entry.as_object().ok_or(RecordError::Field("entry"))?;
        if entry.get("funded").and_then(Value::as_bool) == Some(false) {
            return Err(RecordError::Unfunded);
        }
        let ed25519 = key32(entry, "pubkey_ed25519")?.ok_or(RecordError::Incomplete)?;
        let x25519 = key32(entry, "pubkey_x25519")?.ok_or(RecordError::Incomplete)?;
        let pubkey_legacy = key32(entry, "service_node_pubkey")?.unwrap_or(ed25519);
        let ip: Ipv4Addr = entry
            .get("public_ip")
            .and_then(Value::as_str)
            .ok_or(RecordError::Field("public_ip"))?
            .parse()
            .map_err(|_| RecordError::Field("public_ip"))?;
        if ip.is_unspecified() {
            return Err(RecordError::Incomplete);
        }
        let swarm_id = entry
            .get("swarm_id")
            .and_then(Value::as_u64)
            .ok_or(RecordError::Field("swarm_id"))?;
        Ok(Self {
            pubkey_legacy,
            ed25519: Ed25519Pub::from_bytes(ed25519),
            x25519: X25519Pub::from_bytes(x25519),
            ip,
            https_port: port(entry, "storage_port")?,
            omq_port: port(entry, "storage_lmq_port")?,
            swarm_id: SwarmId(swarm_id),
        })
    }

    /// Whether the node is in a swarm (not decommissioned).
    pub fn is_active(&self) -> bool {
        self.swarm_id != SwarmId::INVALID
    }

    /// The HTTPS address clients and peers connect to.
    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.https_port))
    }

    /// The node's `service_node_states` entry in a `get_service_nodes` answer (directory spec §1.3),
    /// with the fields a storage server and Session clients read.
    pub fn to_service_node_json(&self) -> Value {
        json!({
            "service_node_pubkey": hex::encode(self.pubkey_legacy),
            "pubkey_ed25519": self.ed25519.to_hex(),
            "pubkey_x25519": self.x25519.to_hex(),
            "public_ip": self.ip.to_string(),
            "storage_port": self.https_port,
            "storage_lmq_port": self.omq_port,
            "swarm_id": self.swarm_id.0,
            "swarm": format!("{:016x}", self.swarm_id.0),
            "funded": true,
            "active": self.is_active(),
            "requested_unlock_height": 0,
            "storage_server_version": [2, 6, 2],
        })
    }

    /// The node's entry in a `get_swarm` / 421 answer (storage RPC spec §4.10).
    pub fn swarm_entry(&self) -> SwarmMember {
        SwarmMember {
            address: format!("{}.snode", zbase32(&self.pubkey_legacy)),
            ip: self.ip,
            port: self.https_port,
            port_https: self.https_port,
            port_omq: self.omq_port,
            port_quic: self.omq_port,
            pubkey_ed25519: self.ed25519,
            pubkey_legacy: self.pubkey_legacy,
            pubkey_x25519: self.x25519,
        }
    }
}

/// z-base-32 (the `.snode` address alphabet) of 32 bytes: 52 characters, no padding.
fn zbase32(bytes: &[u8; 32]) -> String {
    base32::encode(base32::Alphabet::Z, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Value {
        json!({
            "service_node_pubkey": "aa".repeat(32),
            "pubkey_ed25519": "bb".repeat(32),
            "pubkey_x25519": "cc".repeat(32),
            "public_ip": "127.0.0.2",
            "storage_port": 22021,
            "storage_lmq_port": 22020,
            "swarm_id": 18_446_744_073_709_551_615_u64,
            "funded": true
        })
    }

    #[test]
    fn parses_entries_and_keeps_u64_swarm_ids_exact() {
        let record = NodeRecord::from_json(&entry()).unwrap();
        assert_eq!(record.swarm_id, SwarmId::INVALID);
        assert!(!record.is_active());
        assert_eq!(record.https_addr().to_string(), "127.0.0.2:22021");
        let swarm = serde_json::to_value(record.swarm_entry()).unwrap();
        assert_eq!(swarm["port"], "22021");
        assert_eq!(swarm["port_quic"], 22020);
        let address = swarm["address"].as_str().unwrap();
        assert_eq!(address.strip_suffix(".snode").map(str::len), Some(52));
    }

    #[test]
    fn skips_nodes_without_proof_data_or_funding() {
        let mut e = entry();
        e["pubkey_ed25519"] = json!("");
        assert_eq!(NodeRecord::from_json(&e), Err(RecordError::Incomplete));
        let mut e = entry();
        e["public_ip"] = json!("0.0.0.0");
        assert_eq!(NodeRecord::from_json(&e), Err(RecordError::Incomplete));
        let mut e = entry();
        e["funded"] = json!(false);
        assert_eq!(NodeRecord::from_json(&e), Err(RecordError::Unfunded));
        let mut e = entry();
        e["storage_port"] = json!(70000);
        assert_eq!(
            NodeRecord::from_json(&e),
            Err(RecordError::Field("storage_port"))
        );
    }

    #[test]
    fn zbase32_matches_known_encoding() {
        // z-base-32 maps 0 to 'y' and 31 to '9'; the 52nd symbol holds the last bit.
        assert_eq!(zbase32(&[0; 32]), "y".repeat(52));
        let ff = zbase32(&[0xff; 32]);
        assert_eq!(&ff[..51], "9".repeat(51));
        assert_eq!(ff.len(), 52);
    }
}
