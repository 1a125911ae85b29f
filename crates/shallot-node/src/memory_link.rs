//! An in-memory [`SwarmLink`]: the nodes of one process reach each other's node-to-node
//! handlers directly, the way quinn's test `Pair` joins two endpoints without sockets. For
//! tests and simulations; the checks a receiver makes are the same as over HTTPS
//! ([`crate::peer_inbound`]), with the link vouching for the sender's key as TLS does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use shallot_directory::NodeRecord;
use shallot_proto::Ed25519Pub;

use crate::exec::Reply;
use crate::observe::{Role, Seen};
use crate::peer_inbound;
use crate::peers::{PeerError, PeerReply};
use crate::state::Node;
use crate::swarm_link::SwarmLink;

/// The nodes that can reach each other, by key.
#[derive(Debug, Default)]
pub struct MemoryNet {
    nodes: Mutex<HashMap<Ed25519Pub, Weak<Node>>>,
    down: Mutex<HashSet<Ed25519Pub>>,
}

impl MemoryNet {
    /// An empty network.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The link a node with key `me` sends over (give it to [`Node::with_swarm_link`]).
    pub fn link(self: &Arc<Self>, me: Ed25519Pub) -> Arc<dyn SwarmLink> {
        Arc::new(MemoryLink {
            net: self.clone(),
            me,
        })
    }

    /// Makes `node` reachable by its key.
    pub fn attach(&self, node: &Arc<Node>) {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(node.identity.ed25519_public(), Arc::downgrade(node));
    }

    /// Makes the node with `key` unreachable (as a dead process), or reachable again.
    pub fn set_down(&self, key: Ed25519Pub, down: bool) {
        let mut set = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    /// The live node with `key`, unless it is down.
    fn reach(&self, key: &Ed25519Pub) -> Result<Arc<Node>, PeerError> {
        let unreachable = || PeerError::Unreachable(format!("{key} is not on this network"));
        if self
            .down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
        {
            return Err(unreachable());
        }
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .and_then(Weak::upgrade)
            .ok_or_else(unreachable)
    }
}

/// One node's end of a [`MemoryNet`].
struct MemoryLink {
    net: Arc<MemoryNet>,
    me: Ed25519Pub,
}

fn answer(reply: Reply) -> PeerReply {
    PeerReply {
        status: reply.status,
        body: reply.body.into_bytes(),
    }
}

impl SwarmLink for MemoryLink {
    fn forward<'a>(
        &'a self,
        peer: &'a NodeRecord,
        envelope: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        Box::pin(async move {
            let node = self.net.reach(&peer.ed25519)?;
            if let Err(refusal) = peer_inbound::check_forwarder(&node, Some(self.me)) {
                return Ok(answer(refusal));
            }
            let mut seen = Seen::new(&node, Role::Replica);
            Ok(answer(
                peer_inbound::forwarded(&node, &envelope, &mut seen).await,
            ))
        })
    }

    fn handoff<'a>(
        &'a self,
        peer: &'a NodeRecord,
        batch: Bytes,
    ) -> BoxFuture<'a, Result<PeerReply, PeerError>> {
        Box::pin(async move {
            let node = self.net.reach(&peer.ed25519)?;
            let sender = match peer_inbound::active_sender(&node, Some(self.me)) {
                Ok(sender) => sender,
                Err(refusal) => return Ok(answer(refusal)),
            };
            let mut seen = Seen::new(&node, Role::Handoff);
            Ok(answer(
                peer_inbound::handoff(&node, sender, &batch, &mut seen).await,
            ))
        })
    }
}
