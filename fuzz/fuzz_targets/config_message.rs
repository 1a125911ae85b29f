//! User config messages (namespaces 2 and 3) on the receiving side.
//!
//! - The bytes as bencode (`Value::decode`): never panics, and whatever parses re-encodes to the
//!   same bytes (the parser accepts only canonical bencode).
//! - The bytes as a serialized config message (`ConfigMessage::parse_full`): errors match the
//!   first byte, the hash is BLAKE2b-32 of the input, a signature's signed range ends just before
//!   `1:~`, and the message re-serializes to something that parses back equal with an empty diff
//!   against itself. As the only current version it is the base of the next one; two
//!   serializations with different diffs conflict and merge back to the same data.
//! - The bytes as a data dict (any bencoded dict, wrapped in a message and re-parsed so it is
//!   pruned like received data): applying the `UserProfile`/`ProfilePictureTimes`/`Contacts` views read from it changes
//!   nothing, changed views read back as written, and sealing then opening gives the message back.
//! - The bytes as ciphertext (`open_config` under a fixed key) and as a payload to pad.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shallot_proto::session::{
    apply_diff, config_hash, current_versions, next_base, config_padded_size, open_config, pad_config, seal_config, strip_config_padding,
    ConfigError, ConfigKind, ConfigMessage, Contacts, Dict, ExpiryMode, ProfilePictureTimes, UserProfile, Value,
    CONFIG_ENCRYPTION_OVERHEAD,
};
use shallot_proto::{SessionId, X25519Pub};

const KEY: [u8; 32] = [0x42; 32];

fuzz_target!(|data: &[u8]| {
    bencode(data);
    message(data);
    if let Ok(Value::Dict(dict)) = Value::decode(data) {
        views(dict);
    }
    ciphertext(data);
    padding(data);
});

fn bencode(data: &[u8]) {
    if let Ok(value) = Value::decode(data) {
        assert_eq!(value.encode(), data, "accepted non-canonical bencode");
    }
}

fn message(data: &[u8]) {
    match ConfigMessage::parse_full(data) {
        Err(ConfigError::Empty) => assert!(data.is_empty()),
        Err(ConfigError::Compressed) => assert_eq!(data[0], b'z'),
        Err(ConfigError::Multipart) => assert_eq!(data[0], b'm'),
        Err(ConfigError::UnsupportedType(byte)) => assert_eq!(data[0], byte),
        Err(ConfigError::Decrypt(_)) => panic!("parsing cannot fail to decrypt"),
        Err(_) => assert_eq!(data[0], b'd'),
        Ok(parsed) => {
            assert_eq!(parsed.hash, config_hash(data));
            if let Some(sig) = parsed.signature {
                assert!(data[sig.signed_len..].starts_with(b"1:~64:"));
                assert_eq!(data.len(), sig.signed_len + 6 + 64 + 1);
            }
            let message = parsed.message;
            let again = ConfigMessage::parse_full(&message.serialize(None)).expect("re-parses");
            assert_eq!(again.message, message);
            let same = ConfigMessage::parse_full(&message.serialize(Some(&message.data)))
                .expect("re-parses");
            assert!(same.diff.is_empty(), "diff against itself: {:?}", same.diff);

            let mut replayed = message.data.clone();
            apply_diff(&mut replayed, &parsed.diff, &message.data);
            let current = current_versions([again.clone(), again.clone()]);
            assert_eq!(current.len(), 1, "the same version twice is one version");
            let base = next_base(&current);
            assert_eq!(base.seqno, message.seqno.saturating_add(1));
            assert_eq!(base.data, message.data);
            // Two versions with the same data but different diffs conflict; merging them
            // replays both diffs and must land on that same data.
            let distinct = again.hash != same.hash;
            let both = current_versions([again, same]);
            assert_eq!(both.len(), if distinct { 2 } else { 1 });
            assert_eq!(next_base(&both).data, message.data);
        }
    }
}

fn views(dict: Dict) {
    // Received data is valid libsession data: get there through a serialization.
    let bytes = ConfigMessage::new(1, dict).serialize(None);
    let data = ConfigMessage::parse(&bytes)
        .expect("serialized data parses")
        .data;

    let profile = UserProfile::from_data(&data);
    let mut applied = data.clone();
    profile.apply_to(&mut applied);
    assert_eq!(
        applied, data,
        "applying the unchanged profile changed the data"
    );
    let times = ProfilePictureTimes::from_data(&data);
    ProfilePictureTimes::apply_set_at(&mut applied, times.set_at);
    ProfilePictureTimes::apply_reupload(
        &mut applied,
        times.reupload.0.as_ref(),
        times.reupload.1.as_ref(),
        times.reupload_at,
    );
    assert_eq!(
        applied, data,
        "applying the unchanged picture times changed the data"
    );
    let contacts = Contacts::from_data(&data);
    contacts.apply_to(&mut applied);
    assert_eq!(
        applied, data,
        "applying the unchanged contacts changed the data"
    );

    // Change every field, apply, seal, open: the views read back as written.
    let changed_profile = UserProfile {
        name: Some(format!("{}!", profile.name.unwrap_or_default())),
        picture_url: Some("http://example.invalid/p".to_owned()),
        picture_key: Some(vec![7; 32]),
        note_to_self_priority: profile.note_to_self_priority.wrapping_add(1),
    };
    let mut changed_contacts = contacts.clone();
    for entry in changed_contacts.contacts.values_mut() {
        entry.blocked = !entry.blocked;
        entry.expiry_mode = ExpiryMode::AfterRead;
        entry.expiry_timer_secs = 60;
    }
    changed_contacts
        .contacts
        .remove(&SessionId::from_x25519(X25519Pub::from_bytes([0; 32])));
    changed_contacts
        .contacts
        .entry(SessionId::from_x25519(X25519Pub::from_bytes([1; 32])))
        .or_default()
        .approved = true;
    let mut changed = data.clone();
    changed_profile.apply_to(&mut changed);
    changed_contacts.apply_to(&mut changed);

    let message = ConfigMessage::new(2, changed);
    for kind in [ConfigKind::UserProfile, ConfigKind::Contacts] {
        let sealed = seal_config(&message, Some(&data), &KEY, kind);
        assert_eq!((sealed.len()) % 256, 0, "{} bytes", sealed.len());
        let opened = open_config(&sealed, &KEY, kind).expect("sealed config opens");
        assert_eq!(UserProfile::from_data(&opened.data), changed_profile);
        assert_eq!(Contacts::from_data(&opened.data), changed_contacts);
    }
}

fn ciphertext(data: &[u8]) {
    match open_config(data, &KEY, ConfigKind::Contacts) {
        Err(ConfigError::Decrypt(_)) => {}
        // Only reachable with a genuine ciphertext for KEY.
        Ok(_) | Err(_) => assert!(data.len() >= CONFIG_ENCRYPTION_OVERHEAD),
    }
}

fn padding(data: &[u8]) {
    let padded = pad_config(data);
    assert_eq!(
        padded.len(),
        config_padded_size(data.len(), CONFIG_ENCRYPTION_OVERHEAD).max(data.len())
    );
    assert!(padded.ends_with(data));
    let stripped = strip_config_padding(&padded);
    assert!(data.ends_with(stripped));
    if data.first().is_some_and(|&b| b != 0) {
        assert_eq!(stripped, data);
    }
}
