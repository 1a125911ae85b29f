//! Session "user config" messages: libsession-util's `ConfigMessage` as stored in swarm
//! namespaces 2 (UserProfile) and 3 (Contacts).
//!
//! On the wire a config is: [`ConfigMessage`] (bencoded) → zero bytes prepended up to
//! [`config_padded_size`] → [`encrypt_config`] under the account's Ed25519 seed and the kind's
//! [`ConfigDomain`]. [`seal_config`] and [`open_config`] do the whole stack.
//!
//! A serialized message is a bencoded dict whose keys, in order, are:
//! - `#`: the sequence number (integer);
//! - `&`: the full data dict;
//! - `<`: lagged diffs `[seqno, hash(32), diff]` of the versions this one absorbed within the
//!   last [`LAG_WINDOW`] seqnos, sorted by `(seqno, hash)` ([`LaggedDiff`]); they let any device
//!   tell which versions a message already includes and replay concurrent ones (see
//!   [`super::config_merge`]);
//! - `=`: the diff against the previous version: a changed or added scalar is `""` ("take the
//!   value from `&`"), a removed scalar `"-"`, a dict a nested diff, a set (a sorted list of
//!   scalars) `[added, removed]`;
//! - `~` (optional, never written here): a 64-byte Ed25519 signature over everything before the
//!   `1:~` key. User configs are unsigned; [`ParsedConfig::signature`] exposes it when present.
//!
//! Unknown top-level keys between the known ones are accepted and dropped (libsession keeps them);
//! keys before `#` or after `~` are rejected. A message's hash, used to break ties between equal
//! sequence numbers, is BLAKE2b-32 of its serialization ([`config_hash`]).
//!
//! Bencode is [`crate::bencode`] (canonical only; it also gives the byte offset of the signed
//! range); the data rules and diffs are in [`super::config_diff`]; [`UserProfile`] and
//! [`Contacts`], typed views of the data dict, are in [`super::config_views`]. All are
//! re-exported here.
//!
//! Not supported (see `docs/compat.md`): writing zstd-compressed (`z…`) payloads (they are read),
//! multipart (`m…`) payloads, and the legacy protobuf wrapping some clients put around the
//! ciphertext.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::bencode::{encode_bytes, encode_dict_into, Parser};
use crate::namespace::Namespace;
use crate::session::config_crypto::{
    decrypt_config, encrypt_config, ConfigCryptoError, ConfigDomain, CONFIG_ENCRYPTION_OVERHEAD,
};
use crate::session::config_diff::{diff_dicts, normalized, validate_data, validate_diff};

pub use crate::bencode::{encode_dict, BencodeError, Dict, Value, MAX_NESTING};
pub(crate) use crate::session::config_diff::scalar_order;
pub use crate::session::config_diff::{diff, prune};
pub use crate::session::config_views::{
    ContactEntry, Contacts, ExpiryMode, ProfilePictureTimes, UserProfile, PROFILE_PICTURE_KEY_LEN,
};

/// Why a config message could not be parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Decryption failed: wrong key or kind (domain), or corrupted ciphertext.
    #[error(transparent)]
    Decrypt(#[from] ConfigCryptoError),
    /// The plaintext is empty or nothing but padding.
    #[error("config message is empty")]
    Empty,
    /// The payload is zstd-compressed (starts with `z`): [`ConfigMessage::parse_full`] reads
    /// only the raw form; [`open_config_full`] decompresses first.
    #[error("config message is zstd-compressed; decompress it first")]
    Compressed,
    /// The compressed payload is not a valid zstd frame, or inflates beyond
    /// [`MAX_DECOMPRESSED_CONFIG`] bytes.
    #[error("compressed config message does not decompress: {0}")]
    Decompress(String),
    /// The payload is one part of a multipart config (starts with `m`), which is not supported.
    #[error("multipart config messages are not supported")]
    Multipart,
    /// The payload starts with a byte other than `d`, `z` or `m`.
    #[error("unsupported config message type byte {0:#04x}")]
    UnsupportedType(u8),
    /// Not canonical bencode.
    #[error("invalid bencode in config message: {0}")]
    Bencode(#[from] BencodeError),
    /// Valid bencode, but not laid out as a config message.
    #[error("invalid config message: {0}")]
    Layout(&'static str),
    /// The `&` data dict breaks libsession's rules (empty nested dicts, unsorted sets, …).
    #[error("invalid config data: {0}")]
    InvalidData(&'static str),
    /// The `=` diff dict holds something other than diff markers.
    #[error("invalid config diff: {0}")]
    InvalidDiff(&'static str),
}

/// How many seqnos back a message keeps the diffs it absorbed, and how far behind the newest
/// version a concurrent one may be and still be merged (libsession's "within 5" rule).
pub const LAG_WINDOW: i64 = 5;

/// One entry of a message's `<` list: the diff an earlier version made, named by its seqno and
/// [`config_hash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaggedDiff {
    /// The earlier version's seqno.
    pub seqno: i64,
    /// The earlier version's [`config_hash`].
    pub hash: [u8; 32],
    /// The `=` diff that version carried.
    pub diff: Dict,
}

impl LaggedDiff {
    /// `(seqno, hash)`, the order of the `<` list.
    pub const fn key(&self) -> (i64, [u8; 32]) {
        (self.seqno, self.hash)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(b'l');
        Value::Int(self.seqno).encode_into(out);
        encode_bytes(&self.hash, out);
        encode_dict_into(&self.diff, out);
        out.push(b'e');
    }

    fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let bad = ConfigError::Layout("a \"<\" entry must be [seqno, 32-byte hash, diff]");
        let Value::List(items) = value else {
            return Err(bad);
        };
        let [Value::Int(seqno), Value::Bytes(hash), Value::Dict(diff)] = items.as_slice() else {
            return Err(bad);
        };
        let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| bad)?;
        validate_diff(diff)?;
        Ok(Self {
            seqno: *seqno,
            hash,
            diff: diff.clone(),
        })
    }
}

/// BLAKE2b-32 of a serialized config message: with the seqno, it orders concurrent versions.
pub fn config_hash(serialized: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(serialized).into()
}

/// A config message: a sequence number, the full data dict and the diffs of the versions it
/// absorbed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMessage {
    /// The sequence number; each change pushes `previous + 1`.
    pub seqno: i64,
    /// The data (`&`).
    pub data: Dict,
    /// The lagged diffs (`<`), sorted by `(seqno, hash)`.
    pub lagged: Vec<LaggedDiff>,
}

/// The signature found under `~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSignature {
    /// The 64-byte Ed25519 signature.
    pub signature: [u8; 64],
    /// The signed bytes are the serialization's first `signed_len` bytes (up to the `1:~` key).
    pub signed_len: usize,
}

impl ConfigSignature {
    /// The part of `serialized` the signature covers.
    pub fn signed_bytes<'a>(&self, serialized: &'a [u8]) -> &'a [u8] {
        &serialized[..self.signed_len.min(serialized.len())]
    }
}

/// Everything [`ConfigMessage::parse_full`] reads from a serialized message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedConfig {
    /// Sequence number and data.
    pub message: ConfigMessage,
    /// The `=` diff against the sender's previous version (empty if absent).
    pub diff: Dict,
    /// [`config_hash`] of the serialized bytes.
    pub hash: [u8; 32],
    /// The `~` signature, if any (not verified here; user configs carry none).
    pub signature: Option<ConfigSignature>,
}

impl ParsedConfig {
    /// `(seqno, hash)`: of several versions, the greatest is the current one.
    pub const fn seqno_hash(&self) -> (i64, [u8; 32]) {
        (self.message.seqno, self.hash)
    }
}

impl ConfigMessage {
    /// A message with this sequence number and data, and no lagged diffs.
    pub const fn new(seqno: i64, data: Dict) -> Self {
        Self {
            seqno,
            data,
            lagged: Vec::new(),
        }
    }

    /// The canonical serialization, with the `=` diff computed against `previous` (the data of
    /// the version this one replaces; `None`: every key counts as added). Lagged diffs are
    /// written sorted by `(seqno, hash)`, duplicates dropped.
    ///
    /// Data is pruned first as libsession does: empty nested dicts and sets are dropped and
    /// lists become sorted sets of unique integers and strings.
    pub fn serialize(&self, previous: Option<&Dict>) -> Vec<u8> {
        let data = normalized(&self.data);
        let diff = match previous {
            Some(previous) => diff_dicts(&normalized(previous), &data),
            None => diff_dicts(&Dict::new(), &data),
        };
        let mut out = Vec::new();
        out.push(b'd');
        encode_bytes(b"#", &mut out);
        Value::Int(self.seqno).encode_into(&mut out);
        encode_bytes(b"&", &mut out);
        encode_dict_into(&data, &mut out);
        encode_bytes(b"<", &mut out);
        let mut lagged: Vec<&LaggedDiff> = self.lagged.iter().collect();
        lagged.sort_by_key(|entry| entry.key());
        lagged.dedup_by_key(|entry| entry.key());
        out.push(b'l');
        for entry in lagged {
            entry.encode_into(&mut out);
        }
        out.push(b'e');
        encode_bytes(b"=", &mut out);
        encode_dict_into(&diff, &mut out);
        out.push(b'e');
        out
    }

    /// Parses a serialized (unpadded, decrypted) config message.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::parse_full(bytes).map(|parsed| parsed.message)
    }

    /// Parses a serialized config message, keeping its diff, hash and signature.
    pub fn parse_full(bytes: &[u8]) -> Result<ParsedConfig, ConfigError> {
        match bytes.first() {
            Some(b'd') => {}
            Some(b'z') => return Err(ConfigError::Compressed),
            Some(b'm') => return Err(ConfigError::Multipart),
            Some(&other) => return Err(ConfigError::UnsupportedType(other)),
            None => return Err(ConfigError::Empty),
        }
        let mut parser = Parser::new(bytes);
        parser.pos = 1;
        let mut seqno = None;
        let mut data = None;
        let mut diff = Dict::new();
        let mut lagged = Vec::new();
        let mut signature = None;
        let mut last: Option<&[u8]> = None;
        while parser.peek()? != b'e' {
            let (offset, key) = parser.key(last)?;
            last = Some(key);
            if signature.is_some() {
                return Err(ConfigError::Layout("key after the \"~\" signature"));
            }
            if seqno.is_none() && key != b"#" {
                return Err(ConfigError::Layout("first key must be \"#\""));
            }
            let value = parser.value(1)?;
            match key {
                b"#" => {
                    let Value::Int(n) = value else {
                        return Err(ConfigError::Layout("\"#\" must be an integer"));
                    };
                    seqno = Some(n);
                }
                b"&" => {
                    let Value::Dict(d) = value else {
                        return Err(ConfigError::Layout("\"&\" must be a dict"));
                    };
                    validate_data(&d, true)?;
                    data = Some(d);
                }
                b"<" => {
                    let Value::List(entries) = value else {
                        return Err(ConfigError::Layout("\"<\" must be a list"));
                    };
                    lagged = entries
                        .iter()
                        .map(LaggedDiff::from_value)
                        .collect::<Result<Vec<_>, _>>()?;
                    if lagged.iter().any(|entry| Some(entry.seqno) >= seqno) {
                        return Err(ConfigError::Layout(
                            "a \"<\" entry must be older than the message",
                        ));
                    }
                    if lagged.windows(2).any(|w| w[0].key() >= w[1].key()) {
                        return Err(ConfigError::Layout(
                            "\"<\" entries must be sorted by (seqno, hash) without repeats",
                        ));
                    }
                }
                b"=" => {
                    let Value::Dict(d) = value else {
                        return Err(ConfigError::Layout("\"=\" must be a dict"));
                    };
                    validate_diff(&d)?;
                    diff = d;
                }
                b"~" => {
                    let sig = value
                        .as_bytes()
                        .and_then(|b| <[u8; 64]>::try_from(b).ok())
                        .ok_or(ConfigError::Layout("\"~\" must be a 64-byte signature"))?;
                    signature = Some(ConfigSignature {
                        signature: sig,
                        signed_len: offset,
                    });
                }
                k if k > b"~".as_slice() => {
                    return Err(ConfigError::Layout("unknown key after \"~\""));
                }
                // Unknown keys between the known ones: well-formed, so skipped.
                _ => {}
            }
        }
        parser.pos += 1;
        parser.finish()?;
        let (Some(seqno), Some(data)) = (seqno, data) else {
            return Err(ConfigError::Layout("missing \"#\" or \"&\""));
        };
        Ok(ParsedConfig {
            message: Self {
                seqno,
                data,
                lagged,
            },
            diff,
            hash: config_hash(bytes),
            signature,
        })
    }
}

/// The size libsession pads a `len`-byte payload to, so that `size + overhead` is a multiple of
/// 256 (below 5120 bytes), 1024 (below 20480), 2048 (below 40960) or 5120.
pub const fn config_padded_size(len: usize, overhead: usize) -> usize {
    let total = len.saturating_add(overhead);
    let chunk = if total < 5120 {
        256
    } else if total < 20480 {
        1024
    } else if total < 40960 {
        2048
    } else {
        5120
    };
    total
        .div_ceil(chunk)
        .saturating_mul(chunk)
        .saturating_sub(overhead)
}

/// Prepends zero bytes up to [`config_padded_size`] with the config-encryption overhead.
pub fn pad_config(message: &[u8]) -> Vec<u8> {
    let target = config_padded_size(message.len(), CONFIG_ENCRYPTION_OVERHEAD);
    let mut out = vec![0u8; target.saturating_sub(message.len())];
    out.extend_from_slice(message);
    out
}

/// Removes leading zero bytes (the padding; a message itself never starts with zero).
pub fn strip_config_padding(padded: &[u8]) -> &[u8] {
    let start = padded.iter().position(|&b| b != 0).unwrap_or(padded.len());
    &padded[start..]
}

/// The user config types, each with its own namespace and encryption domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigKind {
    /// The user's own profile (namespace 2).
    UserProfile,
    /// The contact list (namespace 3).
    Contacts,
    /// Per-conversation read state (namespace 4; carried, but its data is not interpreted here).
    ConvoInfoVolatile,
    /// Groups and communities (namespace 5; carried, but its data is not interpreted here).
    UserGroups,
}

impl ConfigKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::UserProfile,
        Self::Contacts,
        Self::ConvoInfoVolatile,
        Self::UserGroups,
    ];

    /// The swarm namespace the kind is stored in.
    pub const fn namespace(self) -> Namespace {
        match self {
            Self::UserProfile => Namespace::USER_PROFILE,
            Self::Contacts => Namespace::CONTACTS,
            Self::ConvoInfoVolatile => Namespace::CONVO_INFO_VOLATILE,
            Self::UserGroups => Namespace::USER_GROUPS,
        }
    }

    /// The encryption domain.
    pub const fn domain(self) -> ConfigDomain<'static> {
        match self {
            Self::UserProfile => ConfigDomain::USER_PROFILE,
            Self::Contacts => ConfigDomain::CONTACTS,
            Self::ConvoInfoVolatile => ConfigDomain::CONVO_INFO_VOLATILE,
            Self::UserGroups => ConfigDomain::USER_GROUPS,
        }
    }

    /// The kind stored in `namespace`, if any.
    pub fn from_namespace(namespace: Namespace) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.namespace() == namespace)
    }
}

/// Serializes (diffing against `previous`), pads and encrypts a config message for storage in
/// `kind.namespace()`; `key_base` is the account's Ed25519 seed.
pub fn seal_config(
    message: &ConfigMessage,
    previous: Option<&Dict>,
    key_base: &[u8; 32],
    kind: ConfigKind,
) -> Vec<u8> {
    let padded = pad_config(&message.serialize(previous));
    encrypt_config(&padded, key_base, kind.domain())
        .expect("the fixed domains are valid and configs are far below the AEAD size limit")
}

/// A decrypted config message together with its exact unpadded serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedConfig {
    /// The serialized message (padding removed), which the hash and signature cover.
    pub plaintext: Vec<u8>,
    /// The parsed message.
    pub parsed: ParsedConfig,
}

/// Decrypts, unpads and parses stored config data.
pub fn open_config(
    ciphertext: &[u8],
    key_base: &[u8; 32],
    kind: ConfigKind,
) -> Result<ConfigMessage, ConfigError> {
    open_config_full(ciphertext, key_base, kind).map(|opened| opened.parsed.message)
}

/// [`open_config`], keeping the plaintext, diff, hash and signature.
pub fn open_config_full(
    ciphertext: &[u8],
    key_base: &[u8; 32],
    kind: ConfigKind,
) -> Result<OpenedConfig, ConfigError> {
    open_decrypted(decrypt_config(ciphertext, key_base, kind.domain())?)
}

/// Unpads, decompresses and parses a decrypted config message.
pub fn open_decrypted(mut plaintext: Vec<u8>) -> Result<OpenedConfig, ConfigError> {
    let padding = plaintext.len() - strip_config_padding(&plaintext).len();
    plaintext.drain(..padding);
    if plaintext.first() == Some(&b'z') {
        plaintext = decompress_config(&plaintext[1..])?;
    }
    let parsed = ConfigMessage::parse_full(&plaintext)?;
    Ok(OpenedConfig { plaintext, parsed })
}

/// Largest decompressed config we accept: far above any real one (the compressed form must fit
/// a 76,800-byte message), low enough that a crafted frame cannot exhaust memory.
pub const MAX_DECOMPRESSED_CONFIG: usize = 4 << 20;

/// Inflates the zstd frame after libsession's `z` prefix, refusing output beyond
/// [`MAX_DECOMPRESSED_CONFIG`].
fn decompress_config(frame: &[u8]) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read as _;
    let mut source = frame;
    let decoder = ruzstd::decoding::StreamingDecoder::new(&mut source)
        .map_err(|e| ConfigError::Decompress(e.to_string()))?;
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_DECOMPRESSED_CONFIG).unwrap_or(u64::MAX) + 1;
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ConfigError::Decompress(e.to_string()))?;
    if out.len() > MAX_DECOMPRESSED_CONFIG {
        return Err(ConfigError::Decompress(format!(
            "more than {MAX_DECOMPRESSED_CONFIG} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::test_dict as dict;

    #[test]
    fn known_message_bytes() {
        let message = ConfigMessage::new(5, dict([("n", "Alice".into())]));
        let bytes = message.serialize(None);
        assert_eq!(bytes, b"d1:#i5e1:&d1:n5:Alicee1:<le1:=d1:n0:ee");
        assert_eq!(ConfigMessage::parse(&bytes).unwrap(), message);
    }

    #[test]
    fn empty_default_message() {
        assert_eq!(
            ConfigMessage::default().serialize(None),
            b"d1:#i0e1:&de1:<le1:=dee"
        );
    }

    #[test]
    fn serialize_prunes_and_sorts() {
        let data = dict([
            ("empty", Value::Dict(Dict::new())),
            (
                "set",
                Value::List(vec!["b".into(), 3.into(), "b".into(), 1.into()]),
            ),
            ("none", Value::List(vec![])),
        ]);
        let bytes = ConfigMessage::new(1, data).serialize(None);
        assert_eq!(
            bytes,
            b"d1:#i1e1:&d3:setli1ei3e1:bee1:<le1:=d3:setlli1ei3e1:beleeee"
        );
        ConfigMessage::parse(&bytes).unwrap();
    }

    #[test]
    fn padding_sizes() {
        let o = CONFIG_ENCRYPTION_OVERHEAD;
        assert_eq!(config_padded_size(0, o), 216);
        assert_eq!(config_padded_size(100, o), 216);
        assert_eq!(config_padded_size(216, o), 216);
        assert_eq!(config_padded_size(217, o), 472);
        assert_eq!(config_padded_size(5079, o), 5080);
        assert_eq!(config_padded_size(5080, o), 5080);
        assert_eq!(config_padded_size(5081, o), 6104);
        assert_eq!(config_padded_size(20440, o), 20440);
        assert_eq!(config_padded_size(20441, o), 22488);
        assert_eq!(config_padded_size(40920, o), 40920);
        assert_eq!(config_padded_size(40921, o), 46040);
        assert_eq!(config_padded_size(usize::MAX, o), usize::MAX - o);
        let padded = pad_config(b"d1:#i0ee");
        assert_eq!(padded.len(), 216);
        assert_eq!(strip_config_padding(&padded), b"d1:#i0ee");
    }

    #[test]
    fn layout_rules() {
        let parse = |b: &[u8]| ConfigMessage::parse(b);
        assert_eq!(
            parse(b"d1:&dee"),
            Err(ConfigError::Layout("first key must be \"#\""))
        );
        assert_eq!(
            parse(b"d1:#i1ee"),
            Err(ConfigError::Layout("missing \"#\" or \"&\""))
        );
        assert_eq!(
            parse(b"d1:#i1e1:&le"),
            Err(ConfigError::Layout("\"&\" must be a dict"))
        );
        assert!(matches!(
            parse(b"d1:#i1e1:&de1:=de1:<lee"),
            Err(ConfigError::Bencode(BencodeError::UnsortedKeys { .. }))
        ));
        assert_eq!(
            parse(b"d1:#i1e1:&d1:adeee"),
            Err(ConfigError::InvalidData("empty nested dict"))
        );
        assert_eq!(
            parse(b"d1:#i1e1:&de1:=d1:a1:xee"),
            Err(ConfigError::InvalidDiff(
                "scalar marker is neither \"\" nor \"-\""
            ))
        );
        assert_eq!(
            parse(b"d1:#i1e1:&de1:~0:e"),
            Err(ConfigError::Layout("\"~\" must be a 64-byte signature"))
        );
        assert_eq!(
            parse(b"d1:#i1e1:&de1:\x7f0:e"),
            Err(ConfigError::Layout("unknown key after \"~\""))
        );
        assert_eq!(parse(b"z..."), Err(ConfigError::Compressed));
        assert_eq!(parse(b"m..."), Err(ConfigError::Multipart));
        assert_eq!(parse(b"\x01"), Err(ConfigError::UnsupportedType(1)));
        assert!(matches!(
            parse(b"d1:#i1e1:&dee "),
            Err(ConfigError::Bencode(BencodeError::TrailingData {
                count: 1
            }))
        ));
        // Unknown keys are accepted and dropped; lagged diffs are read.
        let bytes = b"d1:#i7e1:%i3e1:&d1:ai1ee\
              1:<lli6e32:01234567890123456789012345678901d1:a0:eee\
              1:=d1:a0:e1:@0:e";
        let m = parse(bytes).unwrap();
        let lagged = LaggedDiff {
            seqno: 6,
            hash: *b"01234567890123456789012345678901",
            diff: dict([("a", Value::Bytes(Vec::new()))]),
        };
        let mut expected = ConfigMessage::new(7, dict([("a", 1.into())]));
        expected.lagged = vec![lagged];
        assert_eq!(m, expected);
        // Written back in the same form (minus the unknown keys).
        assert_eq!(
            m.serialize(Some(&Dict::new())),
            b"d1:#i7e1:&d1:ai1ee\
              1:<lli6e32:01234567890123456789012345678901d1:a0:eee\
              1:=d1:a0:ee"
        );

        let h = "32:01234567890123456789012345678901";
        let with_lagged = |entries: &str| {
            let text = format!("d1:#i7e1:&de1:<l{entries}e1:=dee");
            parse(text.as_bytes())
        };
        let entry_shape = ConfigError::Layout("a \"<\" entry must be [seqno, 32-byte hash, diff]");
        assert_eq!(with_lagged("i6e"), Err(entry_shape.clone()));
        assert_eq!(with_lagged("li6e3:abcdee"), Err(entry_shape.clone()));
        assert_eq!(with_lagged(&format!("li6e{h}lee")), Err(entry_shape));
        assert_eq!(
            with_lagged(&format!("li6e{h}d1:ai1eee")),
            Err(ConfigError::InvalidDiff("integer in a diff"))
        );
        assert_eq!(
            with_lagged(&format!("li7e{h}dee")),
            Err(ConfigError::Layout(
                "a \"<\" entry must be older than the message"
            ))
        );
        assert_eq!(
            with_lagged(&format!("li5e{h}deeli4e{h}dee")),
            Err(ConfigError::Layout(
                "\"<\" entries must be sorted by (seqno, hash) without repeats"
            ))
        );
        assert!(with_lagged(&format!("li4e{h}deeli5e{h}dee")).is_ok());
    }

    #[test]
    fn signature_range() {
        let mut bytes = b"d1:#i1e1:&de1:<le1:=de".to_vec();
        let signed_len = bytes.len();
        bytes.extend_from_slice(b"1:~64:");
        bytes.extend_from_slice(&[7u8; 64]);
        bytes.push(b'e');
        let parsed = ConfigMessage::parse_full(&bytes).unwrap();
        let sig = parsed.signature.unwrap();
        assert_eq!(sig.signature, [7u8; 64]);
        assert_eq!(sig.signed_len, signed_len);
        assert_eq!(sig.signed_bytes(&bytes), b"d1:#i1e1:&de1:<le1:=de");
        assert_eq!(parsed.hash, config_hash(&bytes));
    }
}
