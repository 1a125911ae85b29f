//! The node-to-node calls of replication and handoff, behind a trait: over HTTPS to real peers
//! ([`PeerClient`]), or in memory between nodes of one process ([`crate::memory_link`]), so the
//! executor, replication and handoff can be tested without sockets.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use shallot_directory::NodeRecord;

use crate::peers::{PeerClient, PeerError, PeerReply};

/// Sends this node's swarm traffic to a peer and returns the peer's answer as it came.
pub trait SwarmLink: Send + Sync + 'static {
    /// Forwards a recursive client request (its JSON envelope) to a swarm peer
    /// (`/snode/v1/forward`).
    fn forward<'a>(
        &'a self,
        peer: &'a NodeRecord,
        envelope: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>>;

    /// Hands a batch of stored messages and revocations (a JSON
    /// [`crate::node_api::HandoffBatch`]) to a peer (`/snode/v1/handoff`).
    fn handoff<'a>(
        &'a self,
        peer: &'a NodeRecord,
        batch: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>>;
}

impl SwarmLink for PeerClient {
    fn forward<'a>(
        &'a self,
        peer: &'a NodeRecord,
        envelope: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        Box::pin(PeerClient::forward(self, peer, envelope))
    }

    fn handoff<'a>(
        &'a self,
        peer: &'a NodeRecord,
        batch: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        Box::pin(self.push_messages(peer, batch))
    }
}
