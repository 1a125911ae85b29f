//! Requests to a group's swarm: signed by the group key (admins) or by a member's blinded
//! subaccount key (groups spec §2.1–§2.2), stored, retrieved and (un)revoked through the
//! onion paths like any other request.

use std::collections::HashMap;
use std::sync::OnceLock;

use shallot_proto::group::{AuthData, GroupAdmin, GroupId, MemberSigner};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{
    Auth, Request, Retrieve, RetrieveAuth, RetrievedMessage, Revocation, SignedToken, Store,
    StoreAuth,
};
use shallot_proto::signing::SignedRequest;
use shallot_proto::subaccount::SubaccountToken;
use shallot_proto::{Identity, Namespace};

use super::state::Hex;
use super::{Group, GroupError, GroupStatus};
use crate::messenger::{count_stored, retrieve_results, Messenger, MessengerError};

/// The kicked-notice namespace (−11): readable even with a revoked token.
pub const KICKED_NAMESPACE: Namespace = Namespace(-11);

/// What we sign group swarm requests with.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The group seed: full access.
    Admin(Box<GroupAdmin>),
    /// A member's `auth_data`: the access its flags grant, until revoked.
    Member {
        /// The credential.
        data: AuthData,
        /// What signing with it derives, once per credential: a group batch signs five
        /// retrieves, and the derivation (scalar multiplications) costs more than a signature.
        signer: Box<OnceLock<MemberSigner>>,
    },
}

impl Credential {
    /// Our credential for `group`, if we are joined and hold one (the seed wins).
    pub fn of(group: &Group) -> Result<Self, GroupError> {
        if group.record.status != super::GroupStatus::Joined {
            return Err(GroupError::NoAccess(
                "not a member (invited, removed or destroyed)",
            ));
        }
        group
            .admin()
            .map(|a| Self::Admin(Box::new(a)))
            .or_else(|| group.auth_data().map(Self::member))
            .ok_or(GroupError::NoAccess("no credential for the group swarm"))
    }

    /// A member's credential from its `auth_data`.
    pub fn member(data: AuthData) -> Self {
        Self::Member {
            data,
            signer: Box::default(),
        }
    }

    /// This credential with its member signer derived now (see [`Credential::Member`]), so
    /// that clones of it sign without deriving again.
    fn prepared(self, me: &Identity) -> Result<Self, GroupError> {
        if let Self::Member { data, signer } = &self {
            if signer.get().is_none() {
                let made = data
                    .signer(me)
                    .map_err(|e| GroupError::Invalid(format!("cannot sign as a member: {e}")))?;
                let _ = signer.set(made);
            }
        }
        Ok(self)
    }

    /// The authentication fields for a request whose signed message is `message`.
    pub fn auth(&self, me: &Identity, message: &[u8]) -> Result<Auth, GroupError> {
        match self {
            Self::Admin(admin) => Ok(Auth::new(admin.sign(message))),
            Self::Member { data, signer } => {
                let signed = if let Some(ready) = signer.get() {
                    ready.sign(message)
                } else {
                    let made = data.signer(me).map_err(|e| {
                        GroupError::Invalid(format!("cannot sign as a member: {e}"))
                    })?;
                    let signed = made.sign(message);
                    let _ = signer.set(made);
                    signed
                };
                Ok(Auth {
                    signature: signed.signature,
                    pubkey_ed25519: None,
                    subaccount: Some(SignedToken {
                        token: signed.token,
                        signature: signed.subaccount_signature,
                    }),
                })
            }
        }
    }
}

/// A group swarm write that reached it.
#[derive(Debug, Clone, Copy)]
pub struct GroupStored {
    /// The message's hash on the group swarm.
    pub hash: MessageHash,
    /// Its storage timestamp (ms).
    pub timestamp: i64,
    /// How many swarm members stored it.
    pub stored_on: u32,
}

/// Our credentials by group, each with the record fields it was made from ([`Messenger::
/// credential`]).
pub(crate) type Credentials = std::sync::Mutex<HashMap<GroupId, (CredentialSource, Credential)>>;

/// What a group's credential is made from: the record's admin seed and `auth_data`.
pub(crate) type CredentialSource = (Option<Hex>, Option<Hex>);

impl Messenger {
    /// Our credential for `group`, as [`Credential::of`], kept while the group record holds
    /// the same seed and `auth_data`: a member's signer is then derived once, not at every
    /// wait (a group batch is signed after every answer, and the derivation costs more than
    /// the five signatures).
    pub(crate) fn credential(&self, group: &Group) -> Result<Credential, GroupError> {
        let source = (
            group.record.admin_seed.clone(),
            group.record.auth_data.clone(),
        );
        let mut kept = self
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if group.record.status == GroupStatus::Joined {
            if let Some((from, credential)) = kept.get(&group.id) {
                if *from == source {
                    return Ok(credential.clone());
                }
            }
        }
        let credential = Credential::of(group)?.prepared(&self.identity)?;
        kept.insert(group.id, (source, credential.clone()));
        Ok(credential)
    }

    /// A signed retrieve of `namespace` of `group` after `last_hash`.
    pub(crate) fn group_retrieve(
        &self,
        group: &GroupId,
        credential: &Credential,
        namespace: Namespace,
        last_hash: Option<MessageHash>,
    ) -> Result<Request, GroupError> {
        let timestamp = self.client.clock().now_ms();
        let auth = credential.auth(
            &self.identity,
            &SignedRequest::Retrieve {
                namespace,
                timestamp,
            }
            .message(),
        )?;
        Ok(Request::Retrieve(Retrieve {
            account: group.account(),
            namespace,
            auth: Some(RetrieveAuth { timestamp, auth }),
            last_hash,
            max_count: None,
            max_size: Some(-5),
            wait_ms: None,
        }))
    }

    /// The first page of what `namespace` of `group`'s swarm stores, raw, as a swarm member
    /// returns it to our credential: what the swarm itself holds (for audits and the demo).
    pub async fn group_stored(
        &self,
        group: &GroupId,
        namespace: Namespace,
    ) -> Result<Vec<RetrievedMessage>, MessengerError> {
        let credential = self.credential(&self.load_group(group).await?)?;
        let retrieve = self.group_retrieve(group, &credential, namespace, None)?;
        let (_, body) = self
            .client
            .request_swarm(&group.account(), &Request::Batch(vec![retrieve]))
            .await?;
        Ok(retrieve_results(&body, 1)?
            .into_iter()
            .flatten()
            .flat_map(|page| page.messages)
            .collect())
    }

    /// The signed `store` of `data` into `namespace` of `group`, living `ttl_ms`.
    pub(crate) fn group_store_request(
        &self,
        group: &GroupId,
        credential: &Credential,
        namespace: Namespace,
        data: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<Store, GroupError> {
        let now = self.client.clock().now_ms();
        let ts = i64::try_from(now).unwrap_or(i64::MAX);
        let auth = credential.auth(
            &self.identity,
            &SignedRequest::Store {
                namespace,
                sig_timestamp: now,
            }
            .message(),
        )?;
        Ok(Store {
            account: group.account(),
            namespace,
            timestamp: ts,
            expiry: ts.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            data,
            auth: Some(StoreAuth {
                sig_timestamp: ts,
                auth,
            }),
        })
    }

    /// Stores `data` into `namespace` of `group`; fails unless a swarm member stored it.
    pub(crate) async fn group_store(
        &self,
        group: &GroupId,
        credential: &Credential,
        namespace: Namespace,
        data: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<GroupStored, MessengerError> {
        let store = self.group_store_request(group, credential, namespace, data, ttl_ms)?;
        let (hash, timestamp) = (store.hash(), store.timestamp);
        let (_, body) = self
            .client
            .request_swarm(&group.account(), &Request::Store(store))
            .await?;
        let stored_on = count_stored(&body);
        if stored_on == 0 {
            return Err(crate::Error::Rejected {
                status: 0,
                body: "no member of the group swarm stored it".into(),
            }
            .into());
        }
        Ok(GroupStored {
            hash,
            timestamp,
            stored_on,
        })
    }

    /// Revokes (`revoke`) or restores the given member tokens on the group swarm (admins).
    pub(crate) async fn group_revocation(
        &self,
        admin: &GroupAdmin,
        tokens: Vec<SubaccountToken>,
        revoke: bool,
    ) -> Result<(), MessengerError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let timestamp = self.client.clock().now_ms();
        let message = if revoke {
            SignedRequest::RevokeSubaccount {
                timestamp,
                tokens: &tokens,
            }
        } else {
            SignedRequest::UnrevokeSubaccount {
                timestamp,
                tokens: &tokens,
            }
        }
        .message();
        let revocation = Revocation {
            account: admin.id().account(),
            signature: admin.sign(&message),
            pubkey_ed25519: None,
            timestamp,
            tokens,
        };
        let request = if revoke {
            Request::RevokeSubaccount(revocation)
        } else {
            Request::UnrevokeSubaccount(revocation)
        };
        self.client
            .request_swarm(&admin.id().account(), &request)
            .await?;
        Ok(())
    }
}
