//! The classic DM layering on the receiving side.
//!
//! Raw mode (any input not starting with [`TAMPER_MODE`]): the bytes go through
//! `unwrap_incoming` for a fixed recipient, `decrypt_incoming`, the prost decoders of
//! `WebSocketMessage`/`Envelope`/`Content`, and `pad`/`unpad`/`unpad_lenient`. Nothing may panic;
//! decoders must round-trip, padding must obey its layout, and error kinds must match the layer
//! that failed.
//!
//! Tamper mode: a real message from a fixed sender is wrapped for the recipient, then some of its
//! bytes are flipped. Untouched, it must open to exactly the content sent; touched, it may fail,
//! but if it still opens, the signed content, sender and (signed) timestamp must be unchanged.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shallot_proto::session::{
    decrypt_incoming, pad, padded_len, unpad, unpad_lenient, unwrap_incoming, wrap_for_recipient,
    Content, DecryptError, Envelope, PaddingError, UnwrapError, WebSocketMessage,
    ENCRYPTION_OVERHEAD, PADDING_BLOCK,
};
use shallot_proto::{Identity, SessionId};

/// First byte that switches to tamper mode.
const TAMPER_MODE: u8 = 0xA5;

static RECIPIENT: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed([0x11; 32]));
static SENDER: LazyLock<Identity> = LazyLock::new(|| Identity::from_seed([0x22; 32]));

#[derive(Debug, Arbitrary)]
struct Tamper {
    /// Decoded as a `Content` (or the default one) to get varied message shapes.
    content: Vec<u8>,
    timestamp: u64,
    sign_timestamp: bool,
    seed: u64,
    flips: Vec<(u16, u8)>,
    truncate: Option<u16>,
}

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&TAMPER_MODE) {
        if let Ok(input) = Tamper::arbitrary_take_rest(Unstructured::new(&data[1..])) {
            tamper(&input);
        }
        return;
    }
    decoders(data);
    padding(data);
    decrypt(data);
    unwrap(data);
});

/// `decode(encode(decode(bytes))) == decode(bytes)` for each message type.
fn decoders(data: &[u8]) {
    fn round_trip<M: Message + Default + PartialEq>(data: &[u8]) {
        if let Ok(message) = M::decode(data) {
            let again = M::decode(message.encode_to_vec().as_slice()).expect("re-decodes");
            assert!(again == message, "prost round trip changed the message");
        }
    }
    round_trip::<WebSocketMessage>(data);
    round_trip::<Envelope>(data);
    round_trip::<Content>(data);
}

fn padding(data: &[u8]) {
    let padded = pad(data);
    assert_eq!(padded.len(), padded_len(data.len()));
    assert_eq!(padded.len() % PADDING_BLOCK, PADDING_BLOCK - 1);
    assert!(padded.len() > data.len());
    assert_eq!(unpad(&padded), Ok(data));
    assert_eq!(unpad_lenient(&padded), Ok(data));

    match unpad(data) {
        Ok(inner) => {
            assert_eq!(data[inner.len()], 0x80);
            assert!(data[inner.len() + 1..].iter().all(|&b| b == 0));
            assert_eq!(unpad_lenient(data), Ok(inner));
        }
        Err(PaddingError::MissingMarker) => {
            assert!(data.iter().all(|&b| b == 0));
            assert_eq!(unpad_lenient(data), Err(PaddingError::MissingMarker));
        }
        Err(PaddingError::BadMarker { found }) => {
            let last = data.iter().rposition(|&b| b != 0).unwrap();
            assert_eq!(data[last], found);
            assert_ne!(found, 0x80);
            assert_eq!(unpad_lenient(data), Ok(data));
        }
    }
}

fn decrypt(data: &[u8]) {
    match decrypt_incoming(&RECIPIENT, data) {
        Err(DecryptError::TooShort { len }) => {
            assert_eq!(len, data.len());
            assert!(len < ENCRYPTION_OVERHEAD);
        }
        Err(_) => assert!(data.len() >= ENCRYPTION_OVERHEAD),
        Ok(opened) => {
            // Only reachable with a genuine ciphertext; still, it must be self-consistent.
            assert_eq!(opened.plaintext.len() + ENCRYPTION_OVERHEAD, data.len());
            assert_eq!(
                opened.sender,
                SessionId::from_x25519(opened.sender_ed25519.to_x25519().unwrap())
            );
        }
    }
}

fn unwrap(data: &[u8]) {
    let result = unwrap_incoming(&RECIPIENT, data);
    let outer = WebSocketMessage::decode(data);
    match &result {
        Err(UnwrapError::MalformedWebSocketMessage(_)) => assert!(outer.is_err()),
        _ => assert!(outer.is_ok()),
    }
    if let Ok(message) = result {
        assert_eq!(
            message.sender,
            SessionId::from_x25519(message.sender_ed25519.to_x25519().unwrap())
        );
        if let Some(signed) = message.content.sig_timestamp {
            assert_eq!(signed, message.envelope_timestamp);
        }
    }
}

fn tamper(input: &Tamper) {
    let mut content = Content::decode(input.content.as_slice()).unwrap_or_default();
    content.sig_timestamp = input.sign_timestamp.then_some(input.timestamp);
    let mut rng = StdRng::seed_from_u64(input.seed);
    let mut wire = wrap_for_recipient(
        &SENDER,
        &RECIPIENT.session_id(),
        &content,
        input.timestamp,
        &mut rng,
    )
    .expect("wrapping a valid content succeeds");

    let untouched = input.flips.iter().all(|&(_, mask)| mask == 0) && input.truncate.is_none();
    for &(index, mask) in &input.flips {
        let at = usize::from(index) % wire.len();
        wire[at] ^= mask;
    }
    if let Some(len) = input.truncate {
        wire.truncate(usize::from(len) % wire.len());
    }

    match unwrap_incoming(&RECIPIENT, &wire) {
        Ok(message) => {
            assert_eq!(message.content, content, "signed content changed");
            assert_eq!(message.sender, SENDER.session_id());
            assert_eq!(message.sender_ed25519, SENDER.ed25519_public());
            if input.sign_timestamp || untouched {
                assert_eq!(message.envelope_timestamp, input.timestamp);
            }
        }
        Err(err) => assert!(!untouched, "an untouched message failed to open: {err:?}"),
    }
}
