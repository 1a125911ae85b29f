//! Redistribution of stored messages when swarms change (storage RPC spec §8.6): new members of
//! our swarm get everything we hold; new swarms get what now maps to them. Namespaces are kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use shallot_directory::{NetworkView, NodeRecord};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc;
use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::swarm::SwarmId;
use shallot_proto::{AccountId, Ed25519Pub};
use shallot_store::{Revocation, StoredMessage};

use crate::account_limits::PeerRejections;
use crate::node_api::{HandoffBatch, HandoffMessage, HandoffRevocation};
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

/// Carries out a plan: streams the store in batches and pushes each message, then each
/// subaccount revocation, to its targets.
pub async fn execute(node: Arc<Node>, view: Arc<NetworkView>, plan: HandoffPlan) {
    if plan.is_empty() {
        return;
    }
    let everyone: Vec<NodeRecord> = plan
        .everything_to
        .iter()
        .filter_map(|k| view.node(k).cloned())
        .collect();
    let me = node.identity.ed25519_public();
    let targets_of = |account: &AccountId| -> Vec<NodeRecord> {
        let mut targets: Vec<NodeRecord> = everyone.clone();
        if let Some(swarm) = view.swarm_for(account) {
            if plan.mapped_to_swarms.contains(&swarm) {
                targets.extend(view.members(swarm).cloned());
            }
        }
        // Only what maps to the target's swarm: anything else it would refuse.
        let owner = view.swarm_for(account);
        targets.retain(|t| t.ed25519 != me && Some(t.swarm_id) == owner);
        targets
    };
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
        let mut per_target: HashMap<Ed25519Pub, (NodeRecord, HandoffBatch)> = HashMap::new();
        for message in messages {
            for target in targets_of(&message.account) {
                per_target
                    .entry(target.ed25519)
                    .or_insert_with(|| (target, empty_batch()))
                    .1
                    .messages
                    .push(HandoffMessage::from(message.clone()));
            }
        }
        for (_, (target, batch)) in per_target {
            pushed += batch.messages.len();
            push(&node, &target, &batch).await;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut cursor = None;
    let mut revocations = 0usize;
    loop {
        let store = node.store.clone();
        let batch =
            tokio::task::spawn_blocking(move || store.export_revocations(cursor, BATCH)).await;
        let Ok(Ok((rows, next))) = batch else {
            tracing::warn!("handoff stopped: could not read the revocations");
            return;
        };
        let mut per_target: HashMap<Ed25519Pub, (NodeRecord, HandoffBatch)> = HashMap::new();
        for row in rows {
            for target in targets_of(&row.account) {
                per_target
                    .entry(target.ed25519)
                    .or_insert_with(|| (target, empty_batch()))
                    .1
                    .revocations
                    .push(HandoffRevocation::from(row));
            }
        }
        for (_, (target, batch)) in per_target {
            revocations += batch.revocations.len();
            push(&node, &target, &batch).await;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(pushed, revocations, "swarm handoff finished");
}

fn empty_batch() -> HandoffBatch {
    HandoffBatch {
        version: 1,
        messages: Vec::new(),
        revocations: Vec::new(),
    }
}

async fn push(node: &Node, target: &NodeRecord, batch: &HandoffBatch) {
    let Ok(body) = serde_json::to_vec(batch).map(Bytes::from) else {
        return;
    };
    // Retries after 1, 2, 4 and 8 s: a new member may still be starting up, or not have read
    // the new view yet (it refuses accounts that do not map to it, and senders it does not know
    // as peers); on a loaded host that can take several seconds.
    for attempt in 0..5u32 {
        match node.link.handoff(target, body.clone()).await {
            Ok(reply) if reply.status == 200 => return,
            Ok(reply) => {
                tracing::warn!(status = reply.status, peer = %target.ed25519, "handoff refused");
            }
            Err(error) => tracing::warn!(%error, peer = %target.ed25519, "handoff failed"),
        }
        if attempt < 4 {
            tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
        }
    }
    node.metrics.count_peer_failure();
}

/// Whether `sender` is a member of our swarm in the current view or in the previous one (the
/// nodes that forward client writes to us and hand us everything when we join).
pub fn is_swarm_peer(node: &Node, sender: &Ed25519Pub) -> bool {
    let same_swarm = |view: &NetworkView| {
        node.own_swarm(view).is_some_and(|ours| {
            view.node(sender)
                .is_some_and(|n| n.swarm_id == ours && n.ed25519 != node.identity.ed25519_public())
        })
    };
    same_swarm(&node.view()) || same_swarm(&node.previous_view())
}

/// Why a whole handoff batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffRefusal {
    /// This node is in no swarm, so no account is ours (yet): the sender retries.
    #[error("not in a swarm: no account maps to this node")]
    NotInSwarm,
    /// Nothing in the batch came from a node we trust for those accounts.
    #[error("{0} is not a member of this swarm, nor of the swarm that held these accounts")]
    Untrusted(Ed25519Pub),
    /// The store failed.
    #[error("handoff failed: {0}")]
    Store(String),
}

/// What a handoff batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// New messages stored.
    pub inserted: usize,
    /// Revocations recorded.
    pub revocations: usize,
    /// Items left out: forged, not ours, untrusted, over quota.
    pub refused: usize,
    /// Messages already expired (dropped quietly).
    pub expired: usize,
    /// Items refused because the sender may not hand them over (included in `refused`).
    pub untrusted: usize,
    /// Items refused because their account does not map to our swarm (included in `refused`).
    pub not_ours: usize,
}

impl From<&Received> for crate::node_api::HandoffDone {
    fn from(done: &Received) -> Self {
        Self {
            expired: done.expired,
            inserted: done.inserted,
            refused: done.refused,
            revocations: done.revocations,
        }
    }
}

/// Checks and stores a handoff batch from `sender` (already proven an active node by its TLS
/// certificate). Each item is kept only if its account maps to our swarm in the current view,
/// the sender may hand it over (a member of our current or previous swarm, or of the swarm
/// that held the account in the previous view; right after start, with no previous view, any
/// active node), its hash matches its content, its timestamp is not in the future; expiries are
/// clamped to now + 30 days (the `expire` cap) and the inbox quota applies. Forged items are
/// dropped; the valid ones of the same batch are stored.
#[allow(clippy::too_many_lines)] // One list of per-item checks.
pub async fn receive(
    node: &Arc<Node>,
    sender: Ed25519Pub,
    batch: HandoffBatch,
) -> Result<Received, HandoffRefusal> {
    let view = node.view();
    let previous = node.previous_view();
    let Some(ours) = node.own_swarm(&view) else {
        return Err(HandoffRefusal::NotInSwarm);
    };
    let now = node.clock.now_ms();
    let peer = is_swarm_peer(node, &sender);
    let fresh = previous.nodes().is_empty();
    let sender_before = previous
        .node(&sender)
        .map(|n| n.swarm_id)
        .filter(|&s| s != SwarmId::INVALID);
    let counters = &node.peer_rejections;
    let (mut untrusted, mut not_ours, mut forged, mut expired) = (0usize, 0usize, 0usize, 0usize);
    let mut admit = |account: &AccountId| -> bool {
        if view.swarm_for(account) != Some(ours) {
            not_ours += 1;
            return false;
        }
        let trusted =
            peer || fresh || sender_before.is_some_and(|s| previous.swarm_for(account) == Some(s));
        if !trusted {
            untrusted += 1;
        }
        trusted
    };
    let max_expiry = now.saturating_add(rpc::TTL_MAX_PRIVATE_MS);
    let mut messages: Vec<StoredMessage> = Vec::with_capacity(batch.messages.len());
    for m in batch.messages {
        if !admit(&m.pubkey) {
            continue;
        }
        if MessageHash::compute(&m.pubkey, m.namespace, &m.data) != m.hash
            || m.timestamp > now.saturating_add(rpc::STORE_CLOCK_TOLERANCE_MS)
            || m.data.len() > rpc::MAX_MESSAGE_DATA
        {
            forged += 1;
            continue;
        }
        if m.expiry <= now {
            expired += 1;
            continue;
        }
        let mut message = StoredMessage::from(m);
        message.expiry = message.expiry.min(max_expiry);
        messages.push(message);
    }
    let mut revocations: Vec<Revocation> = Vec::with_capacity(batch.revocations.len());
    for r in batch.revocations {
        if !admit(&r.pubkey) {
            continue;
        }
        let Ok(token) = SubaccountToken::from_text(&r.token) else {
            forged += 1;
            continue;
        };
        revocations.push(Revocation {
            account: r.pubkey,
            token,
            // A future time would pin the revocation among the newest 50.
            timestamp: r.timestamp.min(now),
        });
    }
    PeerRejections::add(&counters.untrusted_sender, untrusted);
    PeerRejections::add(&counters.not_our_account, not_ours);
    PeerRejections::add(&counters.forged, forged);
    let refused = untrusted + not_ours + forged;
    if untrusted + forged > 0 {
        tracing::warn!(
            peer = %sender,
            untrusted,
            not_ours,
            forged,
            total_refused = counters.total(),
            "handoff items refused"
        );
    }
    if messages.is_empty() && revocations.is_empty() && untrusted > 0 {
        return Err(HandoffRefusal::Untrusted(sender));
    }
    let store = node.store.clone();
    let outcome = tokio::task::spawn_blocking(move || store.import(&messages, &revocations))
        .await
        .map_err(|e| HandoffRefusal::Store(e.to_string()))?
        .map_err(|e| HandoffRefusal::Store(e.to_string()))?;
    PeerRejections::add(&counters.over_quota, outcome.over_quota);
    Ok(Received {
        inserted: outcome.inserted,
        revocations: outcome.revocations,
        refused: refused + outcome.over_quota,
        expired,
        untrusted,
        not_ours,
    })
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
