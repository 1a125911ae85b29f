//! Every parser of the groups protocol on the receiving side, fed the same bytes.
//!
//! - `KeyMessage::parse` (namespace 12): never panics; whatever parses was signed by the fixed
//!   group, so it is one of its own encodings, and a member's trial decryption never panics.
//! - `MultiContainer::parse`, `check_kicked` (namespace −11): re-encode to the input.
//! - `decrypt_group_message` (namespace 11) and `open_group_config` (13/14) under fixed keys:
//!   errors only (arbitrary bytes never authenticate).
//! - `AuthData` verification and request signing for a fixed member; GroupUpdateMessage decoding
//!   round-trips.
//! - `unwrap_group_content` (the envelope reader a member runs on what a group key opened; any
//!   member can seal any bytes): never panics, and what it reads re-wraps to the same
//!   timestamp and content.
//! - The bytes as a plaintext: encrypt_for_group → decrypt gives them back with the sender, and
//!   the envelope reader gives the same answer as on the bytes themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use shallot_proto::group::keys::KeyMessage;
use shallot_proto::group::message::encrypt_for_group_with_nonce;
use shallot_proto::group::{
    check_kicked, decrypt_group_message, open_group_config, unwrap_group_content,
    wrap_group_content, AuthData, GroupAdmin, GroupConfigKind, GroupKey, GroupUpdateMessage,
    MultiContainer,
};
use shallot_proto::subaccount::SubaccountFlags;
use shallot_proto::Identity;

fuzz_target!(|data: &[u8]| {
    let admin = GroupAdmin::from_seed([0x42; 32]);
    let group = admin.id();
    let member = Identity::from_seed([0x24; 32]);
    let key = GroupKey::from_bytes([0x11; 32]);

    if let Ok(message) = KeyMessage::parse(data, &group) {
        // Only the group key signs: arbitrary input cannot verify.
        panic!("forged key message accepted: {message:?}");
    }
    if let Ok(container) = MultiContainer::parse(data) {
        assert_eq!(container.encode(), data);
    }
    let _ = check_kicked(data, &member, &group, Some(0));
    assert!(decrypt_group_message([&key], &group, data).is_err());
    assert!(open_group_config(data, [&key], &group, GroupConfigKind::Info).is_err());
    if let Ok(auth) = AuthData::from_bytes(data) {
        let _ = auth.verify(&group, &member, SubaccountFlags::default());
        if let Ok(signed) = auth.sign_request(&member, b"retrieve11") {
            assert!(signed.token.subaccount_key().verify(b"retrieve11", &signed.signature));
        }
    }
    if let Ok(update) = GroupUpdateMessage::decode(data) {
        let again = GroupUpdateMessage::decode(update.encode_to_vec().as_slice()).unwrap();
        assert_eq!(again, update);
    }
    let unwrapped = unwrap_group_content(data).map_err(|e| e.to_string());
    if let Ok((timestamp, content)) = &unwrapped {
        let again = unwrap_group_content(&wrap_group_content(content, *timestamp)).unwrap();
        assert_eq!(&again, &(*timestamp, content.clone()));
    }
    if !data.is_empty() && data.len() <= 4096 {
        let sent = encrypt_for_group_with_nonce(&member, &group, &key, data, true, 256, &[7; 24])
            .unwrap();
        let opened = decrypt_group_message([&key], &group, &sent).unwrap();
        assert_eq!(opened.plaintext, data);
        assert_eq!(opened.sender, member.session_id());
        let read = unwrap_group_content(&opened.plaintext).map_err(|e| e.to_string());
        assert_eq!(read, unwrapped);
    }
});
