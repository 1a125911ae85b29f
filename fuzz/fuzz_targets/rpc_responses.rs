//! The typed storage RPC responses (`shallot_proto::rpc`) a client decodes from node replies:
//! any bytes either fail to decode or decode to a value that encodes and decodes back to itself.
//! Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shallot_proto::rpc::{
    BatchResults, Deleted, Expired, Expiries, IfElseResult, Info, MonitorReply, Notification,
    OxendResult, RetrievePage, Revoked, Stored, SwarmMembers, SwarmResults, Unrevoked, Updated,
};

/// Decodes `data` as `T`; a decoded value must survive its own encoding.
fn check<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_vec(&value).expect("a decoded value encodes");
        let again: T = serde_json::from_slice(&text).expect("our encoding decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<SwarmResults<Stored>>(data);
    check::<SwarmResults<Deleted>>(data);
    check::<SwarmResults<Expired>>(data);
    check::<SwarmResults<Updated>>(data);
    check::<SwarmResults<Revoked>>(data);
    check::<SwarmResults<Unrevoked>>(data);
    check::<RetrievePage>(data);
    check::<Expiries>(data);
    check::<SwarmMembers>(data);
    check::<Info>(data);
    check::<OxendResult>(data);
    check::<BatchResults>(data);
    check::<IfElseResult>(data);
    check::<MonitorReply>(data);
    check::<Notification>(data);
});
