//! Checking swarm members' signatures on recursive replies (storage RPC spec §2.8, §3.2).
//!
//! A `store`, `delete`, `delete_all`, `delete_before`, `expire`, `expire_all`, `revoke_subaccount`
//! or `unrevoke_subaccount` reply lists one result per swarm member under `swarm`, each signed by
//! that member's Ed25519 key. The entry node relays them all, so without checking, one node could
//! claim that the whole swarm stored (or deleted) something it dropped. An entry whose key is not
//! a member we know of, or whose signature is missing or wrong, is rewritten to
//! `{"failed": true, "bad_signature": true}`: it counts as a failure of that member, exactly like a
//! member that timed out.

use std::collections::HashSet;
use std::hash::BuildHasher;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::rpc::{
    Deleted, Expired, ExpiryValue, MemberFailure, MemberResult, Request, Revoked, Stored,
    Unrevoked, Updated,
};
use shallot_proto::signing::SignedResponse;
use shallot_proto::{Ed25519Pub, Signature};

/// What the member signatures of one recursive reply showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmCheck {
    /// Members whose result carried a valid signature.
    pub valid: Vec<Ed25519Pub>,
    /// Known members whose result was not `failed` but whose signature was missing or wrong.
    pub forged: Vec<Ed25519Pub>,
    /// Entries keyed by something that is not a member we know of (or not a key at all).
    pub unknown: usize,
}

/// Checks every `swarm` entry of `body`, a reply to `request`, against the member keys in
/// `members`, and rewrites the entries that do not check out as failures. `None` when `request`
/// is not a recursive method (nothing to check).
pub fn check_swarm_reply<S: BuildHasher>(
    request: &Request,
    body: &mut Value,
    members: &HashSet<Ed25519Pub, S>,
) -> Option<SwarmCheck> {
    let swarm = body.get_mut("swarm").and_then(Value::as_object_mut);
    let check = match request {
        Request::Store(store) => {
            let hash = store.hash();
            check_entries(swarm, members, |entry: &Stored| {
                // A valid signature over another hash is not one over ours.
                (entry.hash == hash).then(|| {
                    let message = SignedResponse::Store { hash: &hash }.message();
                    (message, entry.signature)
                })
            })
        }
        Request::Delete(d) => check_entries(swarm, members, |entry: &Deleted| {
            let message = SignedResponse::Delete {
                account: &d.account,
                requested: &d.messages,
                deleted: &entry.deleted.hashes(),
            };
            Some((message.message(), entry.signature))
        }),
        Request::DeleteAll(d) => check_entries(swarm, members, |entry: &Deleted| {
            let message = SignedResponse::DeleteAll {
                account: &d.account,
                timestamp: d.timestamp,
                deleted: &entry.deleted.hashes(),
            };
            Some((message.message(), entry.signature))
        }),
        Request::DeleteBefore(d) => check_entries(swarm, members, |entry: &Deleted| {
            let message = SignedResponse::DeleteBefore {
                account: &d.account,
                before: d.before,
                deleted: &entry.deleted.hashes(),
            };
            Some((message.message(), entry.signature))
        }),
        Request::ExpireAll(e) => check_entries(swarm, members, |entry: &Updated| {
            let message = SignedResponse::ExpireAll {
                account: &e.account,
                expiry: e.expiry,
                updated: &entry.updated.hashes(),
            };
            Some((message.message(), entry.signature))
        }),
        Request::Expire(e) => check_entries(swarm, members, |entry: &Expired| {
            let (single_expiry, updated) = applied_expiries(entry)?;
            let unchanged = entry.unchanged.as_ref().map_or(&[][..], |u| &u.0);
            let message = SignedResponse::Expire {
                account: &e.account,
                single_expiry,
                requested: &e.messages,
                updated: &updated,
                unchanged,
            };
            Some((message.message(), entry.signature))
        }),
        Request::RevokeSubaccount(r) => check_entries(swarm, members, |entry: &Revoked| {
            let message = SignedResponse::RevokeSubaccount {
                account: &r.account,
                timestamp: r.timestamp,
                tokens: &r.tokens,
            };
            Some((message.message(), entry.signature))
        }),
        Request::UnrevokeSubaccount(r) => check_entries(swarm, members, |entry: &Unrevoked| {
            let message = SignedResponse::UnrevokeSubaccount {
                account: &r.account,
                timestamp: r.timestamp,
                tokens: &r.tokens,
            };
            Some((message.message(), entry.signature))
        }),
        _ => return None,
    };
    Some(check)
}

/// Reads each entry of `swarm` as a member result of type `T` and checks the non-failed ones:
/// `signed` gives the bytes the member signs for its result and the signature it carries, or
/// `None` if the result contradicts the request. Entries that do not check out are rewritten as
/// `{"failed": true, "bad_signature": true}`.
fn check_entries<T: DeserializeOwned, S: BuildHasher>(
    swarm: Option<&mut Map<String, Value>>,
    members: &HashSet<Ed25519Pub, S>,
    signed: impl Fn(&T) -> Option<(Vec<u8>, Signature)>,
) -> SwarmCheck {
    let mut check = SwarmCheck::default();
    let Some(swarm) = swarm else {
        return check;
    };
    let bad_signature =
        || serde_json::to_value(MemberFailure::bad_signature()).unwrap_or(Value::Null);
    for (key, entry) in swarm.iter_mut() {
        let result = MemberResult::<T>::deserialize(&*entry)
            .unwrap_or(MemberResult::Unrecognised(Value::Null));
        if result.is_failed() {
            continue;
        }
        let node = key
            .parse::<Ed25519Pub>()
            .ok()
            .filter(|k| members.contains(k));
        let Some(node) = node else {
            check.unknown += 1;
            *entry = bad_signature();
            continue;
        };
        let valid = result
            .ok()
            .and_then(&signed)
            .is_some_and(|(message, signature)| node.verify(&message, &signature));
        if valid {
            check.valid.push(node);
        } else {
            check.forged.push(node);
            *entry = bad_signature();
        }
    }
    check
}

/// The single applied expiry (if one), and each updated hash with its applied expiry.
type Applied = (Option<u64>, Vec<(MessageHash, u64)>);

/// An `expire` result's applied expiries: the single one, or one per updated hash (`None` if
/// their count does not match).
fn applied_expiries(entry: &Expired) -> Option<Applied> {
    match &entry.expiry {
        ExpiryValue::Single(expiry) => Some((
            Some(*expiry),
            entry.updated.iter().map(|h| (*h, *expiry)).collect(),
        )),
        ExpiryValue::Each(expiries) if expiries.len() == entry.updated.len() => Some((
            None,
            entry
                .updated
                .iter()
                .copied()
                .zip(expiries.iter().copied())
                .collect(),
        )),
        ExpiryValue::Each(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shallot_proto::rpc::{Delete, Store};
    use shallot_proto::signing::ExpireMode;
    use shallot_proto::{AccountId, AccountKind, Identity};

    fn store_request() -> Store {
        Store {
            account: AccountId::new(AccountKind::Session, [7; 32]),
            namespace: shallot_proto::Namespace(0),
            timestamp: 1_700_000_000_000,
            expiry: 1_700_000_060_000,
            data: b"hello".to_vec(),
            auth: None,
        }
    }

    fn sig(identity: &Identity, message: &[u8]) -> String {
        shallot_proto::b64::encode(identity.sign(message).to_bytes())
    }

    #[test]
    fn store_entries_with_bad_missing_or_foreign_signatures_become_failures() {
        let store = store_request();
        let hash = store.hash().to_string();
        let nodes: Vec<Identity> = (1..=5).map(|i| Identity::from_seed([i; 32])).collect();
        let members: HashSet<Ed25519Pub> =
            nodes[..4].iter().map(Identity::ed25519_public).collect();
        let key = |i: usize| nodes[i].ed25519_public().to_hex();
        let mut body = json!({"swarm": {
            key(0): {"hash": hash, "signature": sig(&nodes[0], hash.as_bytes())},
            // Signed by another member's key.
            key(1): {"hash": hash, "signature": sig(&nodes[0], hash.as_bytes())},
            // No signature at all.
            key(2): {"hash": hash},
            key(3): {"failed": true, "timeout": true},
            // Not a member we know: its own valid signature does not count.
            key(4): {"hash": hash, "signature": sig(&nodes[4], hash.as_bytes())},
            "zz": {"hash": hash},
        }});
        let check = check_swarm_reply(&Request::Store(store.clone()), &mut body, &members).unwrap();
        assert_eq!(check.valid, vec![nodes[0].ed25519_public()]);
        let mut forged = check.forged.clone();
        forged.sort();
        let mut expected = vec![nodes[1].ed25519_public(), nodes[2].ed25519_public()];
        expected.sort();
        assert_eq!(forged, expected);
        assert_eq!(check.unknown, 2);
        assert_eq!(body["swarm"][key(1)]["bad_signature"], json!(true));
        assert_eq!(body["swarm"][key(4)]["failed"], json!(true));
        assert!(body["swarm"][key(0)].get("failed").is_none());

        // A valid signature over a different hash is not a signature over ours.
        let other = "a".repeat(43);
        let mut body = json!({"swarm": {
            key(0): {"hash": other, "signature": sig(&nodes[0], other.as_bytes())},
        }});
        let check = check_swarm_reply(&Request::Store(store), &mut body, &members).unwrap();
        assert!(check.valid.is_empty());
        assert!(check_swarm_reply(&Request::Info, &mut body, &members).is_none());
    }

    #[test]
    fn delete_entries_are_checked_against_requested_and_deleted_hashes() {
        let node = Identity::from_seed([9; 32]);
        let members: HashSet<Ed25519Pub> = [node.ed25519_public()].into();
        let account = AccountId::new(AccountKind::Session, [1; 32]);
        let h1 = MessageHash::from_bytes([0xb1; 32]);
        let h2 = MessageHash::from_bytes([0xc2; 32]);
        let request = Request::Delete(Delete {
            account,
            auth: shallot_proto::rpc::Auth {
                signature: node.sign(b"x"),
                pubkey_ed25519: None,
                subaccount: None,
            },
            messages: vec![h2.into(), h1.into()],
            required: false,
        });
        let signed = SignedResponse::Delete {
            account: &account,
            requested: &[h2.into(), h1.into()],
            deleted: &[h1],
        }
        .message();
        let key = node.ed25519_public().to_hex();
        let mut good = json!({"swarm": {key.clone(): {"deleted": [h1.to_string()],
            "signature": sig(&node, &signed)}}});
        assert_eq!(
            check_swarm_reply(&request, &mut good, &members)
                .unwrap()
                .valid
                .len(),
            1
        );
        // Claiming it deleted more than it signed for.
        let mut lying = json!({"swarm": {key: {"deleted": [h1.to_string(), h2.to_string()],
            "signature": sig(&node, &signed)}}});
        assert_eq!(
            check_swarm_reply(&request, &mut lying, &members)
                .unwrap()
                .forged
                .len(),
            1
        );
    }

    #[test]
    fn expire_entries_are_checked_with_their_applied_expiries_and_unchanged_hashes() {
        let node = Identity::from_seed([9; 32]);
        let members: HashSet<Ed25519Pub> = [node.ed25519_public()].into();
        let account = AccountId::new(AccountKind::Session, [1; 32]);
        let (h1, h2) = (
            MessageHash::from_bytes([0xb1; 32]),
            MessageHash::from_bytes([0xc2; 32]),
        );
        let request = Request::Expire(shallot_proto::rpc::Expire {
            account,
            auth: shallot_proto::rpc::Auth {
                signature: node.sign(b"x"),
                pubkey_ed25519: None,
                subaccount: None,
            },
            messages: vec![h1.into(), h2.into()],
            expiries: vec![1_700_000_500_000, 1_700_000_600_000],
            mode: ExpireMode::Extend,
        });
        let signed = SignedResponse::Expire {
            account: &account,
            single_expiry: None,
            requested: &[h1.into(), h2.into()],
            updated: &[(h1, 1_700_000_500_000)],
            unchanged: &[(h2, 1_700_000_900_000)],
        }
        .message();
        let entry = Expired {
            expiry: ExpiryValue::Each(vec![1_700_000_500_000]),
            signature: node.sign(&signed),
            unchanged: Some(shallot_proto::rpc::Unchanged(vec![(h2, 1_700_000_900_000)])),
            updated: vec![h1],
        };
        let key = node.ed25519_public().to_hex();
        let mut body = json!({"swarm": {key.clone(): entry.clone()}});
        assert_eq!(
            check_swarm_reply(&request, &mut body, &members)
                .unwrap()
                .valid,
            vec![node.ed25519_public()]
        );
        // Hiding that a hash kept its expiry, or a count of expiries that does not match.
        for lie in [
            Expired {
                unchanged: None,
                ..entry.clone()
            },
            Expired {
                expiry: ExpiryValue::Each(vec![]),
                ..entry
            },
        ] {
            let mut body = json!({"swarm": {key.clone(): lie}});
            let check = check_swarm_reply(&request, &mut body, &members).unwrap();
            assert_eq!(check.forged.len(), 1);
            assert_eq!(
                body["swarm"][&key],
                json!({"failed": true, "bad_signature": true})
            );
        }
    }

    #[test]
    fn delete_all_entries_per_namespace_and_relayed_flags_are_read() {
        let node = Identity::from_seed([9; 32]);
        let members: HashSet<Ed25519Pub> = [node.ed25519_public()].into();
        let account = AccountId::new(AccountKind::Session, [1; 32]);
        let (h1, h2) = (
            MessageHash::from_bytes([0xb1; 32]),
            MessageHash::from_bytes([0xc2; 32]),
        );
        let request = Request::DeleteAll(shallot_proto::rpc::DeleteAll {
            account,
            auth: shallot_proto::rpc::Auth {
                signature: node.sign(b"x"),
                pubkey_ed25519: None,
                subaccount: None,
            },
            namespace: shallot_proto::namespace::NamespaceSelector::All,
            timestamp: 1_700_000_000_000,
        });
        let signed = SignedResponse::DeleteAll {
            account: &account,
            timestamp: 1_700_000_000_000,
            deleted: &[h1, h2],
        }
        .message();
        let key = node.ed25519_public().to_hex();
        let mut body = json!({"swarm": {key.clone(): {
            "deleted": {"-10": [h2.to_string()], "0": [h1.to_string()]},
            "signature": sig(&node, &signed)}}});
        assert_eq!(
            check_swarm_reply(&request, &mut body, &members)
                .unwrap()
                .valid
                .len(),
            1
        );

        // A store result relayed from a reference node's bt answer says `"already": 1`.
        let store = store_request();
        let hash = store.hash().to_string();
        let mut body = json!({"swarm": {key.clone(): {"already": 1, "expiry": 5, "hash": hash,
            "signature": sig(&node, hash.as_bytes())}, "ab": {"failed": 1, "timeout": 1}}});
        let check = check_swarm_reply(&Request::Store(store), &mut body, &members).unwrap();
        assert_eq!((check.valid.len(), check.unknown), (1, 0));
        assert_eq!(
            body["swarm"][&key]["already"],
            json!(1),
            "valid entries stay as sent"
        );
    }
}
