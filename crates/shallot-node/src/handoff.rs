//! Redistribution of stored messages when swarms change (storage RPC spec §8.6): new members of
//! our swarm get everything we hold; new swarms get what now maps to them. Namespaces are kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use shallot_directory::{NetworkView, NodeRecord};
use shallot_proto::swarm::SwarmId;
use shallot_proto::Ed25519Pub;

use crate::node_api::{HandoffBatch, HandoffMessage};
use crate::state::Node;

/// Messages per handoff request (keeps each request well under the 10 MiB body cap:
/// at most 76 800 bytes of data each, base64-encoded).
const BATCH: usize = 64;

/// Who should receive what after a membership change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HandoffPlan {
    /// Nodes that get every message we hold (new members of our swarm).
    pub everything_to: Vec<Ed25519Pub>,
    /// Swarms that get the messages that now map to them (new swarms, or all swarms when ours
    /// dissolved).
    pub mapped_to_swarms: HashSet<SwarmId>,
}

impl HandoffPlan {
    /// Whether nothing needs to move.
    pub fn is_empty(&self) -> bool {
        self.everything_to.is_empty() && self.mapped_to_swarms.is_empty()
    }
}

/// Decides what to push when the view changes from `old` to `new` for node `me`.
pub fn plan(me: &Ed25519Pub, old: &NetworkView, new: &NetworkView) -> HandoffPlan {
    let swarm_of = |view: &NetworkView| {
        view.node(me)
            .map(|n| n.swarm_id)
            .filter(|&s| s != SwarmId::INVALID)
    };
    let (Some(old_swarm), Some(new_swarm)) = (swarm_of(old), swarm_of(new)) else {
        // Not in a swarm before: a new node waits to be pushed to. Not in one now: nothing to serve.
        return HandoffPlan::default();
    };
    let mut plan = HandoffPlan::default();
    let old_ids: HashSet<SwarmId> = old.swarm_ids().iter().copied().collect();
    if old_swarm != new_swarm && !new.swarm_ids().contains(&old_swarm) {
        // Our swarm dissolved: every message goes to whichever swarm it maps to now.
        plan.mapped_to_swarms = new.swarm_ids().iter().copied().collect();
        return plan;
    }
    let old_members: HashSet<Ed25519Pub> = old.members(old_swarm).map(|n| n.ed25519).collect();
    plan.everything_to = new
        .members(new_swarm)
        .map(|n| n.ed25519)
        .filter(|k| k != me && !old_members.contains(k))
        .collect();
    plan.mapped_to_swarms = new
        .swarm_ids()
        .iter()
        .copied()
        .filter(|id| !old_ids.contains(id))
        .collect();
    plan
}

/// Carries out a plan: streams the store in batches and pushes each message to its targets.
pub async fn execute(node: Arc<Node>, view: Arc<NetworkView>, plan: HandoffPlan) {
    if plan.is_empty() {
        return;
    }
    let everyone: Vec<NodeRecord> = plan
        .everything_to
        .iter()
        .filter_map(|k| view.node(k).cloned())
        .collect();
    let mut cursor = None;
    let mut pushed = 0usize;
    loop {
        let store = node.store.clone();
        let batch = tokio::task::spawn_blocking(move || store.export_batch(cursor, BATCH)).await;
        let Ok(Ok((messages, next))) = batch else {
            tracing::warn!("handoff stopped: could not read the store");
            return;
        };
        if messages.is_empty() {
            break;
        }
        let mut per_target: HashMap<Ed25519Pub, (NodeRecord, Vec<HandoffMessage>)> = HashMap::new();
        for message in messages {
            let mut targets: Vec<&NodeRecord> = everyone.iter().collect();
            if let Some(swarm) = view.swarm_for(&message.account) {
                if plan.mapped_to_swarms.contains(&swarm) {
                    targets.extend(view.members(swarm));
                }
            }
            for target in targets {
                if target.ed25519 == node.identity.ed25519_public() {
                    continue;
                }
                per_target
                    .entry(target.ed25519)
                    .or_insert_with(|| (target.clone(), Vec::new()))
                    .1
                    .push(HandoffMessage::from(message.clone()));
            }
        }
        for (_, (target, messages)) in per_target {
            pushed += messages.len();
            push(&node, &target, messages).await;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(pushed, "swarm handoff finished");
}

async fn push(node: &Node, target: &NodeRecord, messages: Vec<HandoffMessage>) {
    let batch = HandoffBatch {
        version: 1,
        messages,
    };
    let Ok(body) = serde_json::to_vec(&batch) else {
        return;
    };
    // One retry: a new member may still be starting up when the block lands.
    for attempt in 0..2 {
        match node
            .peers
            .push_messages(target, Bytes::from(body.clone()))
            .await
        {
            Ok(reply) if reply.status == 200 => return,
            Ok(reply) => {
                tracing::warn!(status = reply.status, peer = %target.ed25519, "handoff refused");
            }
            Err(error) => tracing::warn!(%error, peer = %target.ed25519, "handoff failed"),
        }
        if attempt == 0 {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }
    node.metrics.count_peer_failure();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(nodes: &[(u8, u64)]) -> NetworkView {
        let states: Vec<_> = nodes
            .iter()
            .map(|&(i, swarm)| {
                json!({"pubkey_ed25519": hex::encode([i; 32]), "pubkey_x25519": hex::encode([i; 32]),
                       "public_ip": "127.0.0.1", "storage_port": 1, "storage_lmq_port": 1, "swarm_id": swarm})
            })
            .collect();
        NetworkView::from_get_service_nodes(&json!({"height": 1, "block_hash": "", "hardfork": 19,
            "service_node_states": states}))
        .unwrap()
    }

    #[test]
    fn plans_follow_the_reference_rules() {
        let me = Ed25519Pub::from_bytes([1; 32]);
        let before = view(&[(1, 10), (2, 10), (3, 20)]);
        // A new member joins our swarm, and a new swarm appears.
        let after = view(&[(1, 10), (2, 10), (4, 10), (3, 20), (5, 30)]);
        let p = plan(&me, &before, &after);
        assert_eq!(p.everything_to, vec![Ed25519Pub::from_bytes([4; 32])]);
        assert_eq!(p.mapped_to_swarms, HashSet::from([SwarmId(30)]));

        // Nothing changes: nothing moves.
        assert!(plan(&me, &before, &before).is_empty());
        // We were not in a swarm: we wait to be pushed to.
        assert!(plan(&me, &view(&[(2, 10)]), &before).is_empty());
        // Our swarm dissolved: everything goes where it maps now.
        let dissolved = view(&[(1, 20), (3, 20), (2, 40)]);
        let p = plan(&me, &before, &dissolved);
        assert_eq!(
            p.mapped_to_swarms,
            HashSet::from([SwarmId(20), SwarmId(40)])
        );
    }
}
