//! Swarms (spec §3.4): which nodes hold an account's messages, cached per account, resolved from
//! the pool's swarm ids or a `get_swarm` through the onion, and corrected by 421 replies.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::Value;
use shallot_directory::NodeRecord;
use shallot_proto::rpc::{Request, SwarmMembers};
use shallot_proto::{AccountId, Ed25519Pub};

use crate::error::{Error, ErrorKind};
use crate::onion_client::OnionClient;
use crate::swarm_sig::check_swarm_reply;

/// How many 421 redirects one `request_swarm` follows before giving up.
pub const MAX_REDIRECTS: usize = 2;

/// Whether a failed request says the swarm member itself failed, so that it leaves the cached
/// swarm: the hop before it could not reach it, or it answered with a server error. A path
/// failure (our guard unreachable, a relay lost, a timeout, no path at all) says nothing about
/// the member, which may never have seen the request: it stays (the next member is still
/// tried). Before, such a failure dropped it, and with our own guards failing a healthy swarm
/// emptied from the cache.
fn member_failed(e: &Error) -> bool {
    e.kind() == ErrorKind::NodeUnreachable
}

/// Cached swarm members per account (sans-I/O).
#[derive(Debug, Clone, Default)]
pub struct SwarmCache {
    swarms: HashMap<AccountId, Vec<NodeRecord>>,
}

impl SwarmCache {
    /// The cached members of `account`'s swarm, if any.
    pub fn get(&self, account: &AccountId) -> Option<&[NodeRecord]> {
        self.swarms
            .get(account)
            .map(Vec::as_slice)
            .filter(|m| !m.is_empty())
    }

    /// Replaces the cached swarm of `account`.
    pub fn set(&mut self, account: AccountId, members: Vec<NodeRecord>) {
        self.swarms.insert(account, members);
    }

    /// Removes one member from `account`'s cached swarm (it failed or redirected us).
    pub fn remove_member(&mut self, account: &AccountId, node: &Ed25519Pub) {
        if let Some(members) = self.swarms.get_mut(account) {
            members.retain(|m| &m.ed25519 != node);
        }
    }

    /// Removes a node that left the pool from every cached swarm.
    pub fn forget_node(&mut self, node: &Ed25519Pub) {
        for members in self.swarms.values_mut() {
            members.retain(|m| &m.ed25519 != node);
        }
    }
}

/// The members listed in a `get_swarm` or 421 body (`{"snodes": [...], "swarm": "<hex id>"}`);
/// malformed entries, and members without an address, are skipped.
pub fn parse_swarm(body: &Value) -> Vec<NodeRecord> {
    let Ok(members) = SwarmMembers::deserialize(body) else {
        return Vec::new();
    };
    members
        .snodes
        .into_iter()
        .filter(|m| !m.ip.is_unspecified())
        .map(|m| NodeRecord {
            pubkey_legacy: *m.pubkey_ed25519.as_bytes(),
            ed25519: m.pubkey_ed25519,
            x25519: m.pubkey_x25519,
            ip: m.ip,
            https_port: m.port_https,
            omq_port: m.port_omq,
            swarm_id: members.swarm,
        })
        .collect()
}

impl OnionClient {
    /// The members of `account`'s swarm: cached, else computed from the pool's swarm ids, else
    /// asked (`get_swarm` through the onion) from a random pool node.
    pub async fn swarm(&self, account: &AccountId) -> Result<Vec<NodeRecord>, Error> {
        let (local, askable) = {
            let mut state = self.state();
            if let Some(members) = state.swarms.get(account) {
                return Ok(members.to_vec());
            }
            let local = state.pool.swarm_members(account);
            if !local.is_empty() {
                state.swarms.set(*account, local.clone());
            }
            let mut askable = state.pool.nodes().to_vec();
            askable.shuffle(&mut rand::thread_rng());
            askable.truncate(3);
            (local, askable)
        };
        if !local.is_empty() {
            return Ok(local);
        }
        let mut last = Error::SwarmUnreachable {
            tried: 0,
            last: "empty pool".into(),
        };
        for node in askable {
            match self
                .request_node(&node, &Request::GetSwarm { account: *account })
                .await
            {
                Ok((_, body)) => {
                    let members = parse_swarm(&body);
                    if !members.is_empty() {
                        self.state().swarms.set(*account, members.clone());
                        return Ok(members);
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Overrides the cached swarm of `account` (restoring a persisted cache; tests).
    pub fn set_cached_swarm(&self, account: AccountId, members: Vec<NodeRecord>) {
        self.state().swarms.set(account, members);
    }

    /// Sends `request` about `account` to members of its swarm in random order until one answers.
    /// A 421 replaces the cached swarm with the members it lists and the request goes to one of
    /// them (at most [`MAX_REDIRECTS`] times); unreachable members are skipped; a rejection or a
    /// clock error stops at once.
    ///
    /// For recursive methods (store, delete, expire, …) every member's result in the reply's
    /// `swarm` is checked against that member's Ed25519 key ([`crate::swarm_sig`]): a result with
    /// a bad or missing signature is rewritten as failed and the member dropped from the cached
    /// swarm, as an unreachable one would be; a reply without a single valid member signature
    /// counts as a failure of the node that answered, and the next member is tried.
    ///
    /// ```no_run
    /// # async fn demo(client: shallot_client::OnionClient, request: shallot_proto::rpc::Request,
    /// #               account: shallot_proto::AccountId) -> Result<(), shallot_client::Error> {
    /// use shallot_client::onion_client::decode_reply;
    /// use shallot_proto::rpc::{Stored, SwarmResults};
    /// match client.request_swarm(&account, &request).await {
    ///     Ok((_, body)) => {
    ///         let reply: SwarmResults<Stored> = decode_reply("reading a store reply", &body)?;
    ///         println!("stored on {} members", reply.succeeded());
    ///     }
    ///     Err(e) if e.kind() == shallot_client::ErrorKind::ClockSkew => eprintln!("fix the clock"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn request_swarm(
        &self,
        account: &AccountId,
        request: &Request,
    ) -> Result<(u16, Value), Error> {
        let mut tried: HashSet<Ed25519Pub> = HashSet::new();
        let mut redirects = 0;
        let mut last = String::from("no swarm members");
        'resolve: loop {
            let mut members = self.swarm(account).await?;
            let known: HashSet<Ed25519Pub> = members.iter().map(|m| m.ed25519).collect();
            members.retain(|m| !tried.contains(&m.ed25519));
            members.shuffle(&mut rand::thread_rng());
            for member in members {
                tried.insert(member.ed25519);
                match self.request_node(&member, request).await {
                    Ok((status, mut body)) => {
                        let Some(check) = check_swarm_reply(request, &mut body, &known) else {
                            return Ok((status, body));
                        };
                        if !check.forged.is_empty() || check.unknown > 0 {
                            tracing::warn!(
                                entry = %member.ed25519,
                                forged = check.forged.len(),
                                unknown = check.unknown,
                                "swarm results without a valid member signature"
                            );
                            let mut state = self.state();
                            for node in &check.forged {
                                state.swarms.remove_member(account, node);
                            }
                        }
                        if !check.valid.is_empty() {
                            return Ok((status, body));
                        }
                        last = format!(
                            "no valid member signature in the reply of {}",
                            member.ed25519
                        );
                        self.state().swarms.remove_member(account, &member.ed25519);
                    }
                    Err(Error::SwarmMoved { snodes }) => {
                        last = format!("421 from {}", member.ed25519);
                        redirects += 1;
                        let mut state = self.state();
                        if snodes.is_empty() {
                            state.swarms.remove_member(account, &member.ed25519);
                        } else {
                            state.swarms.set(*account, snodes);
                        }
                        drop(state);
                        if redirects > MAX_REDIRECTS {
                            break 'resolve;
                        }
                        continue 'resolve;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::NodeUnreachable | ErrorKind::PathFailed
                        ) =>
                    {
                        last = e.to_string();
                        if member_failed(&e) {
                            self.state().swarms.remove_member(account, &member.ed25519);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            break;
        }
        Err(Error::SwarmUnreachable {
            tried: tried.len(),
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::tests::node;
    use serde_json::json;
    use shallot_proto::swarm::SwarmId;

    #[test]
    fn only_a_member_that_failed_itself_leaves_the_cached_swarm() {
        let reached = Error::NodeUnreachable {
            destination: "ab".into(),
            reason: "status 500".into(),
        };
        assert!(member_failed(&reached));
        let ours = [
            Error::PathFailed {
                attempts: 3,
                reason: "guard unreachable".into(),
            },
            Error::NoPath("the node pool is empty".into()),
            Error::ClockSkew { status: 425 },
        ];
        for e in &ours {
            assert!(!member_failed(e), "{e}");
        }
    }

    #[test]
    fn parses_swarm_bodies_and_caches_per_account() {
        let entry = |i: u8| serde_json::to_value(node(i, 1).swarm_entry()).unwrap();
        let mut unaddressed = entry(3);
        unaddressed["ip"] = json!("0.0.0.0");
        let body = json!({"snodes": [entry(1), entry(2), {"pubkey_ed25519": "zz"}, unaddressed],
            "swarm": "7d0", "t": 1});
        let members = parse_swarm(&body);
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].https_addr(), node(1, 1).https_addr());
        assert_eq!(members[0].swarm_id, SwarmId(2000));

        let account = AccountId::new(shallot_proto::AccountKind::Session, [1; 32]);
        let mut cache = SwarmCache::default();
        assert!(cache.get(&account).is_none());
        cache.set(account, members);
        cache.remove_member(&account, &node(1, 1).ed25519);
        assert_eq!(cache.get(&account).map(<[_]>::len), Some(1));
        cache.forget_node(&node(2, 1).ed25519);
        assert!(
            cache.get(&account).is_none(),
            "an emptied swarm is a cache miss"
        );
    }
}
