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

use serde_json::{json, Map, Value};
use shallot_proto::rpc::Request;
use shallot_proto::signing::SignedResponse;
use shallot_proto::{Ed25519Pub, Signature};

use shallot_proto::message_hash::MessageHash;

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
pub fn check_swarm_reply<S: std::hash::BuildHasher>(
    request: &Request,
    body: &mut Value,
    members: &HashSet<Ed25519Pub, S>,
) -> Option<SwarmCheck> {
    if !is_recursive(request) {
        return None;
    }
    let mut check = SwarmCheck::default();
    let Some(swarm) = body.get_mut("swarm").and_then(Value::as_object_mut) else {
        return Some(check);
    };
    for (key, entry) in swarm.iter_mut() {
        if entry.get("failed").is_some() {
            continue;
        }
        let node = key
            .parse::<Ed25519Pub>()
            .ok()
            .filter(|k| members.contains(k));
        let Some(node) = node else {
            check.unknown += 1;
            *entry = json!({"failed": true, "bad_signature": true});
            continue;
        };
        if verify_entry(request, &node, entry) {
            check.valid.push(node);
        } else {
            check.forged.push(node);
            *entry = json!({"failed": true, "bad_signature": true});
        }
    }
    Some(check)
}

fn is_recursive(request: &Request) -> bool {
    matches!(
        request,
        Request::Store(_)
            | Request::Delete(_)
            | Request::DeleteAll(_)
            | Request::DeleteBefore(_)
            | Request::ExpireAll(_)
            | Request::Expire(_)
            | Request::RevokeSubaccount(_)
            | Request::UnrevokeSubaccount(_)
    )
}

/// Whether `entry` (one member's result) is signed by `node` for `request`.
fn verify_entry(request: &Request, node: &Ed25519Pub, entry: &Value) -> bool {
    let Some(signature) = entry
        .get("signature")
        .and_then(Value::as_str)
        .and_then(|s| shallot_proto::b64::decode(s).ok())
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
    else {
        return false;
    };
    signed_message(request, entry).is_some_and(|message| node.verify(&message, &signature))
}

/// The bytes a member signs for `request` given what its `entry` says it did; `None` if the entry
/// is malformed (or, for `store`, names another hash).
fn signed_message(request: &Request, entry: &Value) -> Option<Vec<u8>> {
    let message = match request {
        Request::Store(store) => {
            let hash = store.hash();
            if entry.get("hash").and_then(Value::as_str)? != hash.to_string() {
                return None;
            }
            SignedResponse::Store { hash: &hash }.message()
        }
        Request::Delete(d) => SignedResponse::Delete {
            account: &d.account,
            requested: &d.messages,
            deleted: &hashes(entry.get("deleted")?)?,
        }
        .message(),
        Request::DeleteAll(d) => SignedResponse::DeleteAll {
            account: &d.account,
            timestamp: d.timestamp,
            deleted: &hashes(entry.get("deleted")?)?,
        }
        .message(),
        Request::DeleteBefore(d) => SignedResponse::DeleteBefore {
            account: &d.account,
            before: d.before,
            deleted: &hashes(entry.get("deleted")?)?,
        }
        .message(),
        Request::ExpireAll(e) => SignedResponse::ExpireAll {
            account: &e.account,
            expiry: e.expiry,
            updated: &hashes(entry.get("updated")?)?,
        }
        .message(),
        Request::Expire(e) => {
            let updated = hashes(entry.get("updated")?)?;
            let (single_expiry, updated): (Option<u64>, Vec<(MessageHash, u64)>) = match entry
                .get("expiry")?
            {
                Value::Array(expiries) => {
                    if expiries.len() != updated.len() {
                        return None;
                    }
                    let expiries: Option<Vec<u64>> = expiries.iter().map(Value::as_u64).collect();
                    (None, updated.into_iter().zip(expiries?).collect())
                }
                single => {
                    let expiry = single.as_u64()?;
                    (
                        Some(expiry),
                        updated.into_iter().map(|h| (h, expiry)).collect(),
                    )
                }
            };
            let unchanged = match entry.get("unchanged") {
                None => Vec::new(),
                Some(map) => unchanged(map.as_object()?)?,
            };
            SignedResponse::Expire {
                account: &e.account,
                single_expiry,
                requested: &e.messages,
                updated: &updated,
                unchanged: &unchanged,
            }
            .message()
        }
        Request::RevokeSubaccount(r) => SignedResponse::RevokeSubaccount {
            account: &r.account,
            timestamp: r.timestamp,
            tokens: &r.tokens,
        }
        .message(),
        Request::UnrevokeSubaccount(r) => SignedResponse::UnrevokeSubaccount {
            account: &r.account,
            timestamp: r.timestamp,
            tokens: &r.tokens,
        }
        .message(),
        _ => return None,
    };
    Some(message)
}

/// A list of hashes, or (for namespace `"all"`) an object of per-namespace lists, flattened.
fn hashes(value: &Value) -> Option<Vec<MessageHash>> {
    let parse = |list: &Vec<Value>| -> Option<Vec<MessageHash>> {
        list.iter().map(|h| h.as_str()?.parse().ok()).collect()
    };
    match value {
        Value::Array(list) => parse(list),
        Value::Object(by_namespace) => {
            let mut all = Vec::new();
            for list in by_namespace.values() {
                all.extend(parse(list.as_array()?)?);
            }
            Some(all)
        }
        _ => None,
    }
}

fn unchanged(map: &Map<String, Value>) -> Option<Vec<(MessageHash, u64)>> {
    map.iter()
        .map(|(hash, expiry)| Some((hash.parse().ok()?, expiry.as_u64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shallot_proto::rpc::{Delete, Store};
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
            messages: vec![h2, h1],
            required: false,
        });
        let signed = SignedResponse::Delete {
            account: &account,
            requested: &[h2, h1],
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
}
