//! What a node does with node-to-node requests (docs/node-protocol.md), whatever carried them:
//! the HTTPS routes of [`crate::routes`] or the in-memory link of [`crate::memory_link`].

use std::sync::Arc;

use shallot_proto::rpc::{Envelope, Refusal, RpcError};
use shallot_proto::Ed25519Pub;

use crate::account_limits::PeerRejections;
use crate::exec::{Origin, Reply};
use crate::handoff::HandoffRefusal;
use crate::node_api::{HandoffBatch, HandoffDone};
use crate::observe::Seen;
use crate::state::Node;

/// The key of `sender` if it proved (in its TLS handshake, or by the link it came over) the key
/// of an active node of the current view; else the 403 answer.
pub fn active_sender(node: &Node, sender: Option<Ed25519Pub>) -> Result<Ed25519Pub, Reply> {
    let Some(key) = sender else {
        return Err(Reply::text(403, "node-to-node route: no node certificate"));
    };
    match node.view().node(&key) {
        Some(record) if record.is_active() => Ok(key),
        _ => Err(Reply::text(
            403,
            format!("node-to-node route: {key} is not an active service node"),
        )),
    }
}

/// Checks the sender of a forwarded request: an active node, and a member of our current or
/// previous swarm (only they replicate client writes to us).
pub fn check_forwarder(node: &Node, sender: Option<Ed25519Pub>) -> Result<(), Reply> {
    let key = active_sender(node, sender)?;
    if crate::handoff::is_swarm_peer(node, &key) {
        return Ok(());
    }
    PeerRejections::add(&node.peer_rejections.untrusted_sender, 1);
    Err(Reply::text(
        403,
        format!("node-to-node route: {key} is not a member of this swarm"),
    ))
}

/// Runs a forwarded recursive request (its JSON envelope) from a checked swarm peer: this
/// node's own result, no further replication.
pub async fn forwarded(node: &Arc<Node>, body: &[u8], seen: &mut Seen) -> Reply {
    seen.request_bytes(body.len());
    match Envelope::parse(body).and_then(|envelope| envelope.request()) {
        Ok(request) if request.is_recursive() => {
            seen.request(&request);
            node.execute(request, Origin::Peer).await
        }
        Ok(_) => Refusal::NotForwardable.into(),
        Err(error @ RpcError::InvalidRequest(_)) => Reply::text(400, error.to_string()),
        Err(error) => Reply::text(error.status(), error.to_string()),
    }
}

/// Stores a handoff batch (JSON [`HandoffBatch`]) from active node `sender` and answers how it
/// went.
pub async fn handoff(node: &Arc<Node>, sender: Ed25519Pub, body: &[u8], seen: &mut Seen) -> Reply {
    let batch: HandoffBatch = match serde_json::from_slice(body) {
        Ok(batch) => batch,
        Err(error) => return Reply::text(400, format!("invalid handoff batch: {error}")),
    };
    if batch.version != 1 {
        return Reply::text(
            400,
            format!("unsupported handoff version {}", batch.version),
        );
    }
    if seen.is_on() {
        seen.request_bytes(body.len());
        let accounts = batch.messages.iter().map(|m| m.pubkey);
        for account in accounts.chain(batch.revocations.iter().map(|r| r.pubkey)) {
            seen.account(account);
        }
    }
    match crate::handoff::receive(node, sender, batch).await {
        // Partly refused: the valid items are stored; a non-200 makes the sender retry once
        // views have settled (a lagging view is the usual cause).
        Ok(done) if done.untrusted > 0 => Reply::text(
            403,
            format!(
                "{} handoff items refused: {sender} may not hand them over",
                done.untrusted
            ),
        ),
        Ok(done) if done.not_ours > 0 => Reply::text(
            421,
            format!(
                "{} handoff items refused: not this swarm's accounts",
                done.not_ours
            ),
        ),
        Ok(done) => Reply::json(200, &HandoffDone::from(&done)),
        Err(refusal @ HandoffRefusal::NotInSwarm) => Reply::text(503, refusal.to_string()),
        Err(refusal @ HandoffRefusal::Untrusted(_)) => Reply::text(403, refusal.to_string()),
        Err(refusal @ HandoffRefusal::Store(_)) => Reply::text(500, refusal.to_string()),
    }
}
