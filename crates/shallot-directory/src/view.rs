//! A snapshot of the network at one block: every known node, grouped into swarms
//! (storage RPC spec §8.1–§8.3).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use shallot_proto::rpc::{Hardfork, SwarmMembers};
use shallot_proto::swarm::{nearest_swarm, swarm_space, SwarmId};
use shallot_proto::{AccountId, Ed25519Pub, X25519Pub};

use crate::record::{NodeRecord, RecordError};

/// Why a directory answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// A required top-level field is missing or has the wrong type.
    #[error("directory answer: field '{0}' missing or invalid")]
    Field(&'static str),
}

/// The network as of one block: nodes, swarms and lookups over them.
#[derive(Clone, Debug, Default)]
pub struct NetworkView {
    /// Block height of this snapshot.
    pub height: u64,
    /// Hex hash of the block at `height`.
    pub block_hash: String,
    /// Hard fork and snode revision (`hf` in responses).
    pub hardfork: (u8, u8),
    nodes: Vec<NodeRecord>,
    /// Swarm id → indices into `nodes`, in directory order.
    swarms: BTreeMap<SwarmId, Vec<usize>>,
    swarm_ids: Vec<SwarmId>,
    by_ed25519: HashMap<Ed25519Pub, usize>,
    by_x25519: HashMap<X25519Pub, usize>,
    /// Entries skipped because they lacked keys or an address.
    pub incomplete: usize,
}

impl NetworkView {
    /// Builds a view from node records.
    pub fn new(
        height: u64,
        block_hash: String,
        hardfork: (u8, u8),
        nodes: Vec<NodeRecord>,
    ) -> Self {
        let mut swarms: BTreeMap<SwarmId, Vec<usize>> = BTreeMap::new();
        let mut by_ed25519 = HashMap::with_capacity(nodes.len());
        let mut by_x25519 = HashMap::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            by_ed25519.insert(node.ed25519, index);
            by_x25519.insert(node.x25519, index);
            if node.is_active() {
                swarms.entry(node.swarm_id).or_default().push(index);
            }
        }
        let swarm_ids = swarms.keys().copied().collect();
        Self {
            height,
            block_hash,
            hardfork,
            nodes,
            swarms,
            swarm_ids,
            by_ed25519,
            by_x25519,
            incomplete: 0,
        }
    }

    /// Parses the `result` of `get_service_nodes` (fields of directory spec §1.4's storage-server
    /// row). Unfunded and incomplete entries are skipped; incomplete ones are counted.
    pub fn from_get_service_nodes(result: &Value) -> Result<Self, ViewError> {
        let height = result
            .get("height")
            .and_then(Value::as_u64)
            .ok_or(ViewError::Field("height"))?;
        let block_hash = result
            .get("block_hash")
            .and_then(Value::as_str)
            .ok_or(ViewError::Field("block_hash"))?
            .to_owned();
        let hardfork = result
            .get("hardfork")
            .and_then(Value::as_u64)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or(ViewError::Field("hardfork"))?;
        let revision = result
            .get("snode_revision")
            .and_then(Value::as_u64)
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(0);
        let states = result
            .get("service_node_states")
            .and_then(Value::as_array)
            .ok_or(ViewError::Field("service_node_states"))?;
        let mut nodes = Vec::with_capacity(states.len());
        let mut incomplete = 0;
        for entry in states {
            match NodeRecord::from_json(entry) {
                Ok(node) => nodes.push(node),
                Err(RecordError::Unfunded) => {}
                Err(_) => incomplete += 1,
            }
        }
        let mut view = Self::new(height, block_hash, (hardfork, revision), nodes);
        view.incomplete = incomplete;
        Ok(view)
    }

    /// Every known node, including decommissioned ones (they still relay onion requests).
    pub fn nodes(&self) -> &[NodeRecord] {
        &self.nodes
    }

    /// Swarm ids in ascending order.
    pub fn swarm_ids(&self) -> &[SwarmId] {
        &self.swarm_ids
    }

    /// The swarm responsible for an account, if any swarm exists.
    pub fn swarm_for(&self, account: &AccountId) -> Option<SwarmId> {
        nearest_swarm(&self.swarm_ids, swarm_space(account))
    }

    /// Members of a swarm, in directory order.
    pub fn members(&self, swarm: SwarmId) -> impl Iterator<Item = &NodeRecord> + '_ {
        self.swarms
            .get(&swarm)
            .into_iter()
            .flatten()
            .map(|&index| &self.nodes[index])
    }

    /// A node by its Ed25519 key.
    pub fn node(&self, ed25519: &Ed25519Pub) -> Option<&NodeRecord> {
        self.by_ed25519.get(ed25519).map(|&i| &self.nodes[i])
    }

    /// A node by its X25519 key.
    pub fn node_by_x25519(&self, x25519: &X25519Pub) -> Option<&NodeRecord> {
        self.by_x25519.get(x25519).map(|&i| &self.nodes[i])
    }

    /// This view as a `get_service_nodes` result, honouring the request's `active_only` and
    /// `fields` (object or list form) params, as oxend does for `oxend_request` callers.
    pub fn to_get_service_nodes(&self, params: Option<&Value>) -> Value {
        let active_only = params
            .and_then(|p| p.get("active_only"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let fields: Option<Vec<&str>> =
            params.and_then(|p| p.get("fields")).and_then(|f| match f {
                Value::Object(map) if map.get("all") != Some(&Value::Bool(true)) => Some(
                    map.iter()
                        .filter(|(_, v)| v.as_bool() == Some(true))
                        .map(|(k, _)| k.as_str())
                        .collect(),
                ),
                Value::Array(list) => Some(list.iter().filter_map(Value::as_str).collect()),
                _ => None,
            });
        let keep = |key: &str| fields.as_ref().is_none_or(|f| f.contains(&key));
        let states: Vec<Value> = self
            .nodes
            .iter()
            .filter(|node| !active_only || node.is_active())
            .map(|node| {
                let mut entry = node.to_service_node_json();
                if let Value::Object(map) = &mut entry {
                    map.retain(|key, _| keep(key));
                }
                entry
            })
            .collect();
        let mut result = serde_json::Map::new();
        for (key, value) in [
            ("height", json!(self.height)),
            ("block_hash", json!(self.block_hash)),
            ("hardfork", json!(self.hardfork.0)),
            ("snode_revision", json!(self.hardfork.1)),
        ] {
            if keep(key) {
                result.insert(key.to_owned(), value);
            }
        }
        result.insert("service_node_states".into(), Value::Array(states));
        result.insert("status".into(), json!("OK"));
        Value::Object(result)
    }

    /// `[hardfork, snode_revision]`, as answers carry it in `hf`.
    pub fn hf(&self) -> Hardfork {
        [u16::from(self.hardfork.0), u16::from(self.hardfork.1)]
    }

    /// The `get_swarm` / 421 body for an account, at node time `t` (ms).
    pub fn swarm_members(&self, account: &AccountId, t: u64) -> SwarmMembers {
        let (swarm, snodes) = match self.swarm_for(account) {
            Some(swarm) => (
                swarm,
                self.members(swarm).map(NodeRecord::swarm_entry).collect(),
            ),
            None => (SwarmId::INVALID, Vec::new()),
        };
        SwarmMembers {
            hf: self.hf(),
            snodes,
            swarm,
            t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8, swarm: u64) -> Value {
        json!({
            "pubkey_ed25519": hex::encode([i; 32]),
            "pubkey_x25519": hex::encode([i + 100; 32]),
            "public_ip": format!("127.0.0.{}", i),
            "storage_port": 20000 + u16::from(i),
            "storage_lmq_port": 0,
            "swarm_id": swarm,
            "funded": true,
        })
    }

    #[test]
    fn groups_nodes_into_sorted_swarms() {
        let answer = json!({
            "height": 10, "block_hash": "ab".repeat(32), "hardfork": 19, "snode_revision": 3,
            "service_node_states": [node(1, 500), node(2, 100), node(3, 500), node(4, u64::MAX),
                {"pubkey_ed25519": "", "funded": true}, {"funded": false}]
        });
        let view = NetworkView::from_get_service_nodes(&answer).unwrap();
        assert_eq!(view.swarm_ids(), &[SwarmId(100), SwarmId(500)]);
        assert_eq!(view.nodes().len(), 4);
        assert_eq!(view.incomplete, 1);
        assert_eq!(view.hardfork, (19, 3));
        let members: Vec<u8> = view
            .members(SwarmId(500))
            .map(|n| n.ed25519.as_bytes()[0])
            .collect();
        assert_eq!(members, vec![1, 3]);
        // Decommissioned nodes stay known for relaying.
        assert!(view.node(&Ed25519Pub::from_bytes([4; 32])).is_some());
        assert!(view
            .node_by_x25519(&X25519Pub::from_bytes([104; 32]))
            .is_some());

        let account = AccountId::new(shallot_proto::AccountKind::Session, [0; 32]);
        assert_eq!(view.swarm_for(&account), Some(SwarmId(100)));
        let body = serde_json::to_value(view.swarm_members(&account, 7)).unwrap();
        assert_eq!(body["swarm"], "64");
        assert_eq!(body["snodes"].as_array().unwrap().len(), 1);
        assert_eq!((&body["hf"], &body["t"]), (&json!([19, 3]), &json!(7)));
    }

    #[test]
    fn get_service_nodes_round_trips_and_filters() {
        let answer = json!({
            "height": 10, "block_hash": "ab".repeat(32), "hardfork": 19, "snode_revision": 4,
            "service_node_states": [node(1, 500), node(2, u64::MAX)]
        });
        let view = NetworkView::from_get_service_nodes(&answer).unwrap();
        let all = view.to_get_service_nodes(None);
        let again = NetworkView::from_get_service_nodes(&all).unwrap();
        assert_eq!(again.nodes(), view.nodes());
        assert_eq!(again.hardfork, (19, 4));

        let params =
            json!({"active_only": true, "fields": {"public_ip": true, "pubkey_ed25519": true}});
        let filtered = view.to_get_service_nodes(Some(&params));
        let states = filtered["service_node_states"].as_array().unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].as_object().unwrap().len(), 2);
        assert!(filtered.get("height").is_none());
    }

    #[test]
    fn missing_top_level_fields_are_errors() {
        assert_eq!(
            NetworkView::from_get_service_nodes(&json!({"height": 1})).unwrap_err(),
            ViewError::Field("block_hash")
        );
        let empty = NetworkView::from_get_service_nodes(&json!({
            "height": 1, "block_hash": "", "hardfork": 19, "service_node_states": []
        }))
        .unwrap();
        let account = AccountId::new(shallot_proto::AccountKind::Session, [0; 32]);
        let body = serde_json::to_value(empty.swarm_members(&account, 0)).unwrap();
        assert_eq!(body["swarm"], "ffffffffffffffff");
        assert_eq!(body["snodes"], json!([]));
    }
}
