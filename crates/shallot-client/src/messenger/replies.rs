//! Reading the replies to our retrieves and stores: which pages came back, whether the node
//! held the request or has more, and how many swarm members stored a message.

use serde::Deserialize;
use serde_json::Value;
use shallot_proto::rpc::{BatchResults, RetrievePage, Stored, SwarmResults};

use crate::error::Error;
use crate::onion_client::decode_reply;

/// Whether a retrieve batch's answer was held by its node: every retrieve succeeded and says
/// it was granted a wait (`wait_ms` > 0). A node that does not know `wait_ms` leaves it out.
pub(crate) fn was_held(pages: &[Option<RetrievePage>]) -> bool {
    !pages.is_empty()
        && pages.iter().all(|page| {
            page.as_ref()
                .and_then(|p| p.wait_ms)
                .is_some_and(|ms| ms > 0)
        })
}

/// Whether any retrieve in a batch reply says the node holds more than it returned.
pub(super) fn has_more(pages: &[Option<RetrievePage>]) -> bool {
    pages.iter().flatten().any(|page| page.more)
}

/// How many swarm members a `store` reply says stored the message (its `swarm` dict).
pub(crate) fn count_stored(body: &Value) -> u32 {
    SwarmResults::<Stored>::deserialize(body).map_or(0, |reply| {
        let ok = reply.swarm.values().filter(|r| r.ok().is_some()).count();
        u32::try_from(ok).unwrap_or(u32::MAX)
    })
}

/// The page of each of the `count` retrieves in a batch reply. The first (the inbox) must
/// succeed; a later one that failed is `None` (its cursor stays). A wrong swarm or a skewed
/// clock anywhere fails the whole reply.
pub(crate) fn retrieve_results(
    body: &Value,
    count: usize,
) -> Result<Vec<Option<RetrievePage>>, Error> {
    let batch: BatchResults = decode_reply("reading a batch reply", body)?;
    if batch.results.len() < count.max(1) {
        return Err(Error::protocol("reading a batch reply", "missing results"));
    }
    let mut out = Vec::with_capacity(count);
    for (index, result) in batch.results.iter().take(count).enumerate() {
        let error = match result.code {
            200 => match result.decode() {
                Ok(page) => {
                    out.push(Some(page));
                    continue;
                }
                Err(e) => Error::protocol("reading a retrieve reply", e),
            },
            421 => {
                return Err(Error::SwarmMoved {
                    snodes: crate::swarm::parse_swarm(&result.body),
                })
            }
            status @ (406 | 425) => return Err(Error::ClockSkew { status }),
            status => Error::Rejected {
                status,
                body: result.body.to_string(),
            },
        };
        if index == 0 {
            return Err(error);
        }
        tracing::debug!("retrieve {index} of a batch failed: {error}");
        out.push(None);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use shallot_proto::message_hash::MessageHash;
    use shallot_proto::{AccountId, Namespace};

    /// A retrieved item whose hash names its data.
    fn item(data: &[u8]) -> Value {
        let account = AccountId::new(shallot_proto::AccountKind::Session, [1; 32]);
        let hash = MessageHash::compute(&account, Namespace::DEFAULT, data);
        json!({"data": shallot_proto::b64::encode(data), "expiration": 2, "hash": hash.to_string(),
            "timestamp": 1})
    }

    fn held(body: &Value, count: usize) -> bool {
        was_held(&retrieve_results(body, count).unwrap())
    }

    #[test]
    fn a_reply_counts_as_held_only_when_every_retrieve_was_granted_a_wait() {
        let held_both = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
        ]});
        assert!(held(&held_both, 2));
        // A node that does not know `wait_ms` (Session's) leaves it out; one at its cap says 0.
        let session = json!({"results": [{"code": 200, "body": {"messages": []}}]});
        assert!(!held(&session, 1));
        let capped = json!({"results": [{"code": 200, "body": {"messages": [], "wait_ms": 0}}]});
        assert!(!held(&capped, 1));
        let partly = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 200, "body": {"messages": []}},
        ]});
        assert!(!held(&partly, 2));
        let failed = json!({"results": [
            {"code": 200, "body": {"messages": [], "wait_ms": 20000}},
            {"code": 401, "body": "no"},
        ]});
        assert!(!held(&failed, 2));
        assert!(!was_held(&[]));
        assert!(retrieve_results(&json!("text"), 1).is_err());
    }

    #[test]
    fn counts_members_that_stored() {
        let hash = MessageHash::from_bytes([3; 32]).to_string();
        let signature = shallot_proto::b64::encode([7u8; 64]);
        let body = json!({"swarm": {
            "aa": {"expiry": 2, "hash": hash, "signature": signature, "t": 1},
            "bb": {"failed": true, "timeout": true},
            "cc": {"already": true, "expiry": 2, "hash": hash, "signature": signature},
            "dd": {"failed": true, "bad_signature": true},
        }});
        assert_eq!(count_stored(&body), 2);
        assert_eq!(count_stored(&json!({"hash": hash})), 0);
    }

    #[test]
    fn batch_results_are_classified() {
        let ok = json!({"results": [{"code": 200, "body": {"messages": [item(b"x")]}}]});
        let pages = retrieve_results(&ok, 1).unwrap();
        assert_eq!(pages[0].as_ref().unwrap().messages[0].data, b"x");
        let denied = json!({"results": [{"code": 401, "body": "bad signature"}]});
        assert!(matches!(
            retrieve_results(&denied, 1),
            Err(Error::Rejected { status: 401, .. })
        ));
        assert!(retrieve_results(&json!({}), 1).is_err());
        // A later namespace failing leaves the inbox usable; a missing result does not.
        let mixed = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 401, "body": "no"},
        ]});
        let results = retrieve_results(&mixed, 2).unwrap();
        assert_eq!(results[0].as_ref().map(|p| p.messages.len()), Some(0));
        assert_eq!(results[1], None);
        assert!(retrieve_results(&mixed, 3).is_err());
        // An answer that is not a page fails that retrieve like an error status.
        let garbled = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 200, "body": {"messages": [{"hash": "x"}]}},
        ]});
        assert_eq!(retrieve_results(&garbled, 2).unwrap()[1], None);
        assert!(retrieve_results(&garbled, 1).is_ok());
        let moved = json!({"results": [
            {"code": 200, "body": {"messages": []}},
            {"code": 421, "body": {"snodes": []}},
        ]});
        assert!(matches!(
            retrieve_results(&moved, 2),
            Err(Error::SwarmMoved { .. })
        ));
        let skewed = json!({"results": [{"code": 425, "body": "Timestamp error"}]});
        assert!(matches!(
            retrieve_results(&skewed, 1),
            Err(Error::ClockSkew { status: 425 })
        ));
        assert!(!has_more(&retrieve_results(&mixed, 2).unwrap()));
        let paged = json!({"results": [{"code": 200, "body": {"messages": [], "more": true}}]});
        assert!(has_more(&retrieve_results(&paged, 1).unwrap()));
    }
}
