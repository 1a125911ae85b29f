//! `swarm-and-hash.json`: swarm-space positions, nearest-swarm choice and message hashes.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test.

use serde_json::Value;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::swarm::{nearest_swarm, swarm_for, swarm_space, SwarmId};
use shallot_proto::{AccountId, Namespace};

const VECTORS: &str = include_str!("vectors/swarm-and-hash.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

#[test]
fn swarm_space_matches_vectors() {
    let v = vectors();
    let cases = v["space"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let account: AccountId = case[0].as_str().unwrap().parse().unwrap();
        let expected: u64 = case[1].as_str().unwrap().parse().unwrap();
        assert_eq!(swarm_space(&account), expected, "{account}");
    }
}

#[test]
fn nearest_swarm_matches_vectors() {
    let v = vectors();
    let ids: Vec<SwarmId> = v["nearest_swarm"]["swarm_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| SwarmId(id.as_u64().unwrap()))
        .collect();
    for case in v["nearest_swarm"]["cases_space_to_swarm"]
        .as_array()
        .unwrap()
    {
        let space = case[0].as_u64().unwrap();
        let expected = SwarmId(case[1].as_u64().unwrap());
        assert_eq!(nearest_swarm(&ids, space), Some(expected), "space {space}");
    }
}

#[test]
fn nearest_swarm_edge_cases() {
    assert_eq!(nearest_swarm(&[], 5), None);
    assert_eq!(nearest_swarm(&[SwarmId(7)], u64::MAX), Some(SwarmId(7)));
    // Two swarms: the wrap-around distance counts.
    let ids = [SwarmId(10), SwarmId(u64::MAX - 10)];
    assert_eq!(nearest_swarm(&ids, 0), Some(SwarmId(10)));
    assert_eq!(nearest_swarm(&ids, u64::MAX), Some(SwarmId(u64::MAX - 10)));
    // 03 and 05 accounts with the same key share a swarm.
    let a: AccountId = "053506f4a71324b7dd114eddbf4e311f39dde243e1f2cb97c40db1961f70ebaae8"
        .parse()
        .unwrap();
    let b: AccountId = "033506f4a71324b7dd114eddbf4e311f39dde243e1f2cb97c40db1961f70ebaae8"
        .parse()
        .unwrap();
    let ids = [SwarmId(1), SwarmId(1 << 62), SwarmId(1 << 63)];
    assert_eq!(swarm_for(&ids, &a), swarm_for(&ids, &b));
}

#[test]
fn message_hashes_match_vectors() {
    let v = vectors();
    let cases = v["message_hash"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let account: AccountId = case["pubkey"].as_str().unwrap().parse().unwrap();
        let ns = Namespace(i16::try_from(case["namespace"].as_i64().unwrap()).unwrap());
        let data = hex::decode(case["data_hex"].as_str().unwrap()).unwrap();
        let hash = MessageHash::compute(&account, ns, &data);
        let text = case["hash"].as_str().unwrap();
        assert_eq!(hash.to_string(), text);
        assert_eq!(text.parse::<MessageHash>().unwrap(), hash);
    }
}

#[test]
fn message_hash_text_is_validated() {
    let good = "IMR0YySXQK/E+Zreo7uKqLcyqiJbwIB8V3U9Keu/uXU";
    assert!(good.parse::<MessageHash>().is_ok());
    assert!(format!("{good}=").parse::<MessageHash>().is_err());
    assert!(good[..42].parse::<MessageHash>().is_err());
    assert!("!".repeat(43).parse::<MessageHash>().is_err());
    // Non-canonical trailing bits would re-encode differently: refused.
    assert!("IMR0YySXQK/E+Zreo7uKqLcyqiJbwIB8V3U9Keu/uXV"
        .parse::<MessageHash>()
        .is_err());
}
