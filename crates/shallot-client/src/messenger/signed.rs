//! The requests we sign with our own key for our own swarm: retrieves, and the deletes and
//! expires that follow from processing what they brought.

use std::collections::BTreeMap;

use shallot_proto::message_hash::{MessageHash, RequestedHash};
use shallot_proto::rpc::{Auth, Delete, Expire, Request, Retrieve, RetrieveAuth};
use shallot_proto::signing::{ExpireMode, SignedRequest};
use shallot_proto::Namespace;

use super::apply::FollowUp;
use super::Messenger;

/// `max_size` of the namespace-0 retrieve (half the network maximum, as desktop).
const RETRIEVE_MAX_SIZE: i64 = -2;

/// `max_size` of each config namespace's retrieve (desktop: −2 × the number of them).
const CONFIG_RETRIEVE_MAX_SIZE: i64 = -8;

impl Messenger {
    /// The signature fields for a request we sign with our own key.
    pub(super) fn auth(&self, message: &[u8]) -> Auth {
        Auth {
            signature: self.identity.sign(message),
            pubkey_ed25519: Some(self.identity.ed25519_public()),
            subaccount: None,
        }
    }

    /// The authenticated retrieve of `namespace` of our account after `last_hash` (`None`:
    /// everything stored).
    pub(super) fn signed_retrieve(
        &self,
        namespace: Namespace,
        last_hash: Option<MessageHash>,
    ) -> Request {
        let timestamp = self.client.clock().now_ms();
        let auth = self.auth(
            &SignedRequest::Retrieve {
                namespace,
                timestamp,
            }
            .message(),
        );
        let max_size = if namespace == Namespace::DEFAULT {
            RETRIEVE_MAX_SIZE
        } else {
            CONFIG_RETRIEVE_MAX_SIZE
        };
        Request::Retrieve(Retrieve {
            account: self.account(),
            namespace,
            auth: Some(RetrieveAuth { timestamp, auth }),
            last_hash,
            max_count: None,
            max_size: Some(max_size),
            wait_ms: None,
        })
    }

    /// A signed `delete` of `hashes` from our swarm (`None` when there are none).
    pub(super) fn delete_request(&self, hashes: &[MessageHash]) -> Option<Request> {
        if hashes.is_empty() {
            return None;
        }
        let messages: Vec<RequestedHash> = hashes.iter().copied().map(Into::into).collect();
        let auth = self.auth(
            &SignedRequest::Delete {
                messages: &messages,
            }
            .message(),
        );
        Some(Request::Delete(Delete {
            account: self.account(),
            auth,
            messages,
            required: false,
        }))
    }

    /// A signed `expire` (shorten only) of `hashes` in our swarm to `expiry`.
    fn expire_request(&self, hashes: &[MessageHash], expiry: u64) -> Option<Request> {
        if hashes.is_empty() {
            return None;
        }
        let messages: Vec<RequestedHash> = hashes.iter().copied().map(Into::into).collect();
        let expiries = vec![expiry];
        let auth = self.auth(
            &SignedRequest::Expire {
                mode: ExpireMode::Shorten,
                expiries: &expiries,
                messages: &messages,
            }
            .message(),
        );
        Some(Request::Expire(Expire {
            account: self.account(),
            auth,
            messages,
            expiries,
            mode: ExpireMode::Shorten,
        }))
    }

    /// The expires (one per expiry time) and the delete a [`FollowUp`] asks for.
    pub(super) fn follow_up_requests(&self, follow: FollowUp) -> Vec<Request> {
        let mut by_expiry = BTreeMap::<u64, Vec<MessageHash>>::new();
        for (hash, expiry) in follow.expire {
            by_expiry.entry(expiry).or_default().push(hash);
        }
        let mut requests: Vec<Request> = by_expiry
            .into_iter()
            .filter_map(|(expiry, hashes)| self.expire_request(&hashes, expiry))
            .collect();
        requests.extend(self.delete_request(&follow.delete));
        requests
    }

    /// Sends the expires and deletes processing asked for; failures are logged only.
    pub(super) async fn follow_up(&self, follow: FollowUp) {
        for request in self.follow_up_requests(follow) {
            if let Err(e) = self.client.request_swarm(&self.account(), &request).await {
                tracing::warn!("could not update our swarm copies: {e}");
            }
        }
    }
}
