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
//! Bencode is handled by the small [`Value`] type here rather than `serde_bencode`: its parser
//! accepts only canonical bencode (sorted unique dict keys, no leading zeros, no `-0`, no trailing
//! bytes), keeps integers to 64 bits and stops at [`MAX_NESTING`] nested containers, so hostile
//! input cannot exhaust the stack; it also gives the byte offset needed for the signed range.
//!
//! [`UserProfile`] and [`Contacts`] are typed views of the data dict. They are applied onto an
//! existing dict and touch only the fields whose meaning changed, so fields set by other clients
//! survive a read-modify-write.
//!
//! Not supported (see `docs/compat.md`): writing zstd-compressed (`z…`) payloads (they are read),
//! multipart (`m…`) payloads, and the legacy protobuf wrapping some clients put around the
//! ciphertext.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use crate::identity::{SessionId, X25519Pub};
use crate::namespace::Namespace;
use crate::session::config_crypto::{
    decrypt_config, encrypt_config, ConfigCryptoError, ConfigDomain, CONFIG_ENCRYPTION_OVERHEAD,
};

/// Most containers (lists and dicts) that may nest inside one another in parsed bencode.
pub const MAX_NESTING: usize = 32;

/// A bencoded dict: byte-string keys in byte order, as bencode requires.
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// A bencode value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer (config data is limited to 64-bit signed integers).
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list; in config data, a set: sorted unique scalars, integers first.
    List(Vec<Value>),
    /// A dict.
    Dict(Dict),
}

/// Why bencode could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ends inside a value.
    #[error("bencode ends early")]
    UnexpectedEnd,
    /// A byte that cannot start (or continue) a value here.
    #[error("unexpected byte {byte:#04x} at offset {offset}")]
    UnexpectedByte {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// An integer that is empty, has leading zeros or is `-0`.
    #[error("invalid or non-canonical integer at offset {offset}")]
    BadInteger {
        /// Offset of the `i`.
        offset: usize,
    },
    /// An integer outside the 64-bit signed range.
    #[error("integer at offset {offset} does not fit in 64 bits")]
    IntegerOverflow {
        /// Offset of the `i`.
        offset: usize,
    },
    /// A string length that is empty, has leading zeros or is absurdly long.
    #[error("invalid or non-canonical string length at offset {offset}")]
    BadLength {
        /// Offset of the length.
        offset: usize,
    },
    /// A dict key that does not sort strictly after the previous key.
    #[error("dict key at offset {offset} is not after the previous key")]
    UnsortedKeys {
        /// Offset of the key.
        offset: usize,
    },
    /// More than [`MAX_NESTING`] nested containers.
    #[error("bencode nested deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// Bytes after the end of the value.
    #[error("{count} bytes of trailing data after the bencoded value")]
    TrailingData {
        /// How many bytes follow the value.
        count: usize,
    },
}

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

impl Value {
    /// An empty byte string: the diff marker "set from the data".
    fn changed_marker() -> Self {
        Self::Bytes(Vec::new())
    }

    /// The diff marker "removed".
    fn removed_marker() -> Self {
        Self::Bytes(b"-".to_vec())
    }

    /// The integer, if this is one.
    pub const fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Self]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dict, if this is one.
    pub const fn as_dict(&self) -> Option<&Dict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The dict, mutably, if this is one.
    pub fn as_dict_mut(&mut self) -> Option<&mut Dict> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Integers and byte strings are scalars; lists and dicts are not.
    pub const fn is_scalar(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Bytes(_))
    }

    /// The canonical bencoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical bencoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Self::Bytes(b) => encode_bytes(b, out),
            Self::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(d) => encode_dict_into(d, out),
        }
    }

    /// Parses exactly one canonical bencoded value filling all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, BencodeError> {
        let mut parser = Parser::new(bytes);
        let value = parser.value(0)?;
        parser.finish()?;
        Ok(value)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Bytes(b) => match std::str::from_utf8(b) {
                Ok(text) if !text.chars().any(char::is_control) => write!(f, "{text:?}"),
                _ => write!(f, "0x{}", hex::encode(b)),
            },
            Self::List(items) => f.debug_list().entries(items).finish(),
            Self::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (Self::Bytes(k.clone()), v)))
                .finish(),
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Self::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Self::Dict(d)
    }
}

/// The canonical bencoding of a dict.
pub fn encode_dict(dict: &Dict) -> Vec<u8> {
    let mut out = Vec::new();
    encode_dict_into(dict, &mut out);
    out
}

fn encode_dict_into(dict: &Dict, out: &mut Vec<u8>) {
    out.push(b'd');
    for (key, value) in dict {
        encode_bytes(key, out);
        value.encode_into(out);
    }
    out.push(b'e');
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A strict canonical bencode reader over a byte slice.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    const fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd)
    }

    fn unexpected(&self) -> BencodeError {
        match self.input.get(self.pos) {
            Some(&byte) => BencodeError::UnexpectedByte {
                offset: self.pos,
                byte,
            },
            None => BencodeError::UnexpectedEnd,
        }
    }

    /// Fails unless the whole input has been consumed.
    fn finish(&self) -> Result<(), BencodeError> {
        match self.input.len() - self.pos {
            0 => Ok(()),
            count => Err(BencodeError::TrailingData { count }),
        }
    }

    /// Skips the digits at the cursor, returning them.
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// Consumes `terminator` or fails.
    fn expect(&mut self, terminator: u8) -> Result<(), BencodeError> {
        if self.peek()? == terminator {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// One value; `depth` counts the containers around it.
    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(|b| Value::Bytes(b.to_vec())),
            b'l' => {
                if depth >= MAX_NESTING {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_NESTING {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut dict = Dict::new();
                let mut last: Option<&[u8]> = None;
                while self.peek()? != b'e' {
                    let (_, key) = self.key(last)?;
                    let value = self.value(depth + 1)?;
                    dict.insert(key.to_vec(), value);
                    last = Some(key);
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            _ => Err(self.unexpected()),
        }
    }

    /// A dict key, which must sort strictly after `last`; returns its offset and bytes.
    fn key(&mut self, last: Option<&[u8]>) -> Result<(usize, &'a [u8]), BencodeError> {
        let offset = self.pos;
        if !self.peek()?.is_ascii_digit() {
            return Err(self.unexpected());
        }
        let key = self.bytes()?;
        if last.is_some_and(|last| key <= last) {
            return Err(BencodeError::UnsortedKeys { offset });
        }
        Ok((offset, key))
    }

    /// `i<decimal>e`, canonical, within `i64`.
    fn int(&mut self) -> Result<i64, BencodeError> {
        let offset = self.pos;
        self.expect(b'i')?;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits = self.digits();
        self.expect(b'e')?;
        // No empty digits, no leading zeros, no "-0".
        let canonical = digits
            .first()
            .is_some_and(|&first| first != b'0' || (digits.len() == 1 && !negative));
        if !canonical {
            return Err(BencodeError::BadInteger { offset });
        }
        let text = &self.input[offset + 1..self.pos - 1];
        std::str::from_utf8(text)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or(BencodeError::IntegerOverflow { offset })
    }

    /// `<length>:<bytes>`, canonical.
    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let offset = self.pos;
        let digits = self.digits();
        self.expect(b':')?;
        // No empty length, no leading zeros, nothing near usize overflow.
        let canonical = digits.len() <= 19
            && digits
                .first()
                .is_some_and(|&first| first != b'0' || digits.len() == 1);
        let len = std::str::from_utf8(digits)
            .ok()
            .filter(|_| canonical)
            .and_then(|text| text.parse::<usize>().ok())
            .ok_or(BencodeError::BadLength { offset })?;
        if len > self.input.len() - self.pos {
            return Err(BencodeError::UnexpectedEnd);
        }
        let bytes = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }
}

/// Libsession's order for set members: integers (by value) before strings (by bytes).
pub(crate) fn scalar_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Int(_), _) => Ordering::Less,
        (_, Value::Int(_)) => Ordering::Greater,
        (Value::Bytes(_), _) => Ordering::Less,
        (_, Value::Bytes(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Checks a list of scalars in strictly ascending [`scalar_order`].
fn check_sorted_scalars(items: &[Value]) -> Result<(), &'static str> {
    if !items.iter().all(Value::is_scalar) {
        return Err("a set holds something other than integers and strings");
    }
    if items
        .windows(2)
        .any(|pair| scalar_order(&pair[0], &pair[1]) != Ordering::Less)
    {
        return Err("a set is unsorted or has duplicates");
    }
    Ok(())
}

/// Libsession's rules for the `&` dict: no empty nested dicts, sets non-empty and sorted.
fn validate_data(dict: &Dict, top_level: bool) -> Result<(), ConfigError> {
    if !top_level && dict.is_empty() {
        return Err(ConfigError::InvalidData("empty nested dict"));
    }
    for value in dict.values() {
        match value {
            Value::Int(_) | Value::Bytes(_) => {}
            Value::Dict(sub) => validate_data(sub, false)?,
            Value::List(set) => {
                if set.is_empty() {
                    return Err(ConfigError::InvalidData("empty set"));
                }
                check_sorted_scalars(set).map_err(ConfigError::InvalidData)?;
            }
        }
    }
    Ok(())
}

/// The `=` dict may hold only `""`, `"-"`, nested diffs and `[added, removed]` set diffs.
fn validate_diff(dict: &Dict) -> Result<(), ConfigError> {
    for value in dict.values() {
        match value {
            Value::Bytes(marker) if marker.is_empty() || marker == b"-" => {}
            Value::Bytes(_) => {
                return Err(ConfigError::InvalidDiff(
                    "scalar marker is neither \"\" nor \"-\"",
                ))
            }
            Value::Int(_) => return Err(ConfigError::InvalidDiff("integer in a diff")),
            Value::Dict(sub) => validate_diff(sub)?,
            Value::List(pair) => {
                let [Value::List(added), Value::List(removed)] = pair.as_slice() else {
                    return Err(ConfigError::InvalidDiff(
                        "set diff is not a pair of lists [added, removed]",
                    ));
                };
                check_sorted_scalars(added).map_err(ConfigError::InvalidDiff)?;
                check_sorted_scalars(removed).map_err(ConfigError::InvalidDiff)?;
            }
        }
    }
    Ok(())
}

/// Libsession's pruning: empty nested dicts and sets go; sets become sorted unique scalars.
fn normalized(dict: &Dict) -> Dict {
    dict.iter()
        .filter_map(|(key, value)| Some((key.clone(), normalized_value(value)?)))
        .collect()
}

fn normalized_value(value: &Value) -> Option<Value> {
    match value {
        Value::Int(_) | Value::Bytes(_) => Some(value.clone()),
        Value::Dict(dict) => {
            let dict = normalized(dict);
            (!dict.is_empty()).then_some(Value::Dict(dict))
        }
        Value::List(items) => {
            let mut set: Vec<Value> = items.iter().filter(|v| v.is_scalar()).cloned().collect();
            set.sort_by(scalar_order);
            set.dedup();
            (!set.is_empty()).then_some(Value::List(set))
        }
    }
}

/// The diff from `old` to `new`, as libsession's `diff_impl` computes it (both normalized).
fn diff_dicts(old: &Dict, new: &Dict) -> Dict {
    let mut diff = Dict::new();
    for (key, old_value) in old {
        if !new.contains_key(key) {
            if let Some(marker) = removal(old_value) {
                diff.insert(key.clone(), marker);
            }
        }
    }
    for (key, new_value) in new {
        let marker = match (old.get(key), new_value) {
            (Some(Value::Dict(o)), Value::Dict(n)) => {
                let sub = diff_dicts(o, n);
                (!sub.is_empty()).then_some(Value::Dict(sub))
            }
            (Some(Value::List(o)), Value::List(n)) => set_diff(o, n),
            (Some(o), n) if o.is_scalar() && n.is_scalar() => (o != n).then(Value::changed_marker),
            // New key, or its kind (scalar, dict, set) changed: both count as added.
            _ => addition(new_value),
        };
        if let Some(marker) = marker {
            diff.insert(key.clone(), marker);
        }
    }
    diff
}

/// The diff marking a whole value as removed.
fn removal(value: &Value) -> Option<Value> {
    match value {
        Value::Dict(d) => {
            let sub = diff_dicts(d, &Dict::new());
            (!sub.is_empty()).then_some(Value::Dict(sub))
        }
        Value::List(set) => set_diff(set, &[]),
        Value::Int(_) | Value::Bytes(_) => Some(Value::removed_marker()),
    }
}

/// The diff marking a whole value as added.
fn addition(value: &Value) -> Option<Value> {
    match value {
        Value::Dict(d) => {
            let sub = diff_dicts(&Dict::new(), d);
            (!sub.is_empty()).then_some(Value::Dict(sub))
        }
        Value::List(set) => set_diff(&[], set),
        Value::Int(_) | Value::Bytes(_) => Some(Value::changed_marker()),
    }
}

/// `[added, removed]` between two sorted sets, or `None` if they are equal.
fn set_diff(old: &[Value], new: &[Value]) -> Option<Value> {
    let missing_from =
        |set: &[Value], v: &Value| set.binary_search_by(|x| scalar_order(x, v)).is_err();
    let added: Vec<Value> = new
        .iter()
        .filter(|v| missing_from(old, v))
        .cloned()
        .collect();
    let removed: Vec<Value> = old
        .iter()
        .filter(|v| missing_from(new, v))
        .cloned()
        .collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    Some(Value::List(vec![Value::List(added), Value::List(removed)]))
}

/// The diff from `old` to `new` (both pruned first), in the `=` format: what a message built on
/// `old` with data `new` records as its own change.
pub fn diff(old: &Dict, new: &Dict) -> Dict {
    diff_dicts(&normalized(old), &normalized(new))
}

/// Libsession's pruning of config data: empty nested dicts and sets are dropped and lists
/// become sorted sets of unique integers and strings.
pub fn prune(data: &Dict) -> Dict {
    normalized(data)
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
    let mut plaintext = decrypt_config(ciphertext, key_base, kind.domain())?;
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

// ---------------------------------------------------------------------------------------------
// Typed views.

/// Length of a profile picture's encryption key.
pub const PROFILE_PICTURE_KEY_LEN: usize = 32;

fn get_bytes<'a>(dict: &'a Dict, key: &str) -> Option<&'a [u8]> {
    dict.get(key.as_bytes()).and_then(Value::as_bytes)
}

fn get_int(dict: &Dict, key: &str) -> Option<i64> {
    dict.get(key.as_bytes()).and_then(Value::as_int)
}

/// A non-empty string field (invalid UTF-8 is replaced, not rejected).
fn get_text(dict: &Dict, key: &str) -> Option<String> {
    get_bytes(dict, key)
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn put(dict: &mut Dict, key: &str, value: Option<Value>) {
    match value {
        Some(value) => dict.insert(key.as_bytes().to_vec(), value),
        None => dict.remove(key.as_bytes()),
    };
}

/// `Some` of a non-empty string, `None` otherwise.
fn non_empty(text: Option<&String>) -> Option<String> {
    text.filter(|t| !t.is_empty()).cloned()
}

/// A profile picture as the pair libsession requires: a non-empty URL and a 32-byte key.
type Picture = (Option<String>, Option<Vec<u8>>);

fn get_picture(dict: &Dict) -> Picture {
    let url = get_text(dict, "p");
    let key = get_bytes(dict, "q").filter(|k| k.len() == PROFILE_PICTURE_KEY_LEN);
    match (url, key) {
        (Some(url), Some(key)) => (Some(url), Some(key.to_vec())),
        _ => (None, None),
    }
}

fn wanted_picture(url: Option<&String>, key: Option<&Vec<u8>>) -> Picture {
    match (non_empty(url), key) {
        (Some(url), Some(key)) if key.len() == PROFILE_PICTURE_KEY_LEN => {
            (Some(url), Some(key.clone()))
        }
        _ => (None, None),
    }
}

fn apply_picture(dict: &mut Dict, url: Option<&String>, key: Option<&Vec<u8>>) {
    let wanted = wanted_picture(url, key);
    if get_picture(dict) != wanted {
        let (url, key) = wanted;
        put(dict, "p", url.map(Value::from));
        put(dict, "q", key.map(Value::from));
    }
}

/// Libsession's reading of a timestamp that may be in seconds, milliseconds or microseconds.
const fn to_epoch_seconds(timestamp: i64) -> i64 {
    if timestamp > 9_000_000_000_000 {
        timestamp / 1_000_000
    } else if timestamp > 9_000_000_000 {
        timestamp / 1_000
    } else {
        timestamp
    }
}

/// The user's profile (UserProfile config, namespace 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    /// Display name (`n`); empty counts as unset.
    pub name: Option<String>,
    /// Profile picture URL (`p`); only meaningful with [`picture_key`](Self::picture_key).
    pub picture_url: Option<String>,
    /// Profile picture key (`q`, 32 bytes). URL and key are read and written as a pair: both are
    /// `Some` only if the URL is non-empty and the key is 32 bytes.
    pub picture_key: Option<Vec<u8>>,
    /// Note-to-self conversation priority (`+`): 0 normal, positive pinned, negative hidden.
    pub note_to_self_priority: i64,
}

impl UserProfile {
    /// Reads the profile from a UserProfile data dict; missing or mistyped fields are defaults.
    pub fn from_data(data: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(data);
        Self {
            name: get_text(data, "n"),
            picture_url,
            picture_key,
            note_to_self_priority: get_int(data, "+").unwrap_or(0),
        }
    }

    /// Writes the profile into `data`, changing only fields that read differently and keeping
    /// every other key: applying the view read from a dict leaves it unchanged.
    pub fn apply_to(&self, data: &mut Dict) {
        let current = Self::from_data(data);
        let name = non_empty(self.name.as_ref());
        if current.name != name {
            put(data, "n", name.map(Value::from));
        }
        apply_picture(data, self.picture_url.as_ref(), self.picture_key.as_ref());
        if current.note_to_self_priority != self.note_to_self_priority {
            let priority = self.note_to_self_priority;
            put(data, "+", (priority != 0).then_some(Value::Int(priority)));
        }
    }

    /// The profile as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }
}

/// A contact's disappearing-messages setting (`e`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ExpiryMode {
    /// Messages do not disappear (`e` omitted).
    #[default]
    Off,
    /// Delete a fixed time after sending (`e` = 1).
    AfterSend,
    /// Delete a fixed time after reading (`e` = 2).
    AfterRead,
}

impl ExpiryMode {
    /// The value stored under `e` (0 for off, which is never stored).
    pub const fn code(self) -> i64 {
        match self {
            Self::Off => 0,
            Self::AfterSend => 1,
            Self::AfterRead => 2,
        }
    }

    /// The mode stored as `code`; unknown codes are `None`.
    pub const fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Off),
            1 => Some(Self::AfterSend),
            2 => Some(Self::AfterRead),
            _ => None,
        }
    }
}

/// One contact in the Contacts config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact's own display name (`n`; written as an empty string rather than removed, and
    /// added empty if the entry would otherwise be empty, as libsession keeps entries alive).
    pub name: Option<String>,
    /// Our nickname for the contact (`N`).
    pub nickname: Option<String>,
    /// Profile picture URL (`p`), paired with the key as in [`UserProfile`].
    pub picture_url: Option<String>,
    /// Profile picture key (`q`, 32 bytes).
    pub picture_key: Option<Vec<u8>>,
    /// We accepted the contact (`a` = 1).
    pub approved: bool,
    /// The contact accepted us (`A` = 1).
    pub approved_me: bool,
    /// Blocked (`b` = 1).
    pub blocked: bool,
    /// Conversation priority (`+`): 0 normal, positive pinned, negative hidden.
    pub priority: i64,
    /// Disappearing-messages mode (`e`); [`ExpiryMode::Off`] unless the timer is positive.
    pub expiry_mode: ExpiryMode,
    /// Disappearing-messages timer in seconds (`E`); 0 when off.
    pub expiry_timer_secs: i64,
    /// When the contact was created, unix seconds (`j`); 0 if unknown.
    pub created: i64,
}

impl ContactEntry {
    /// Reads a contact from its dict; missing or mistyped fields are defaults.
    pub fn from_dict(dict: &Dict) -> Self {
        let (picture_url, picture_key) = get_picture(dict);
        let (expiry_mode, expiry_timer_secs) = Self::normalized_expiry(
            get_int(dict, "e")
                .and_then(ExpiryMode::from_code)
                .unwrap_or_default(),
            get_int(dict, "E").unwrap_or(0),
        );
        Self {
            name: get_text(dict, "n"),
            nickname: get_text(dict, "N"),
            picture_url,
            picture_key,
            approved: get_int(dict, "a").is_some_and(|v| v != 0),
            approved_me: get_int(dict, "A").is_some_and(|v| v != 0),
            blocked: get_int(dict, "b").is_some_and(|v| v != 0),
            priority: get_int(dict, "+").unwrap_or(0),
            expiry_mode,
            expiry_timer_secs,
            created: to_epoch_seconds(get_int(dict, "j").unwrap_or(0)).max(0),
        }
    }

    /// A mode only counts with a positive timer, and a timer only with a mode.
    fn normalized_expiry(mode: ExpiryMode, secs: i64) -> (ExpiryMode, i64) {
        if mode == ExpiryMode::Off || secs <= 0 {
            (ExpiryMode::Off, 0)
        } else {
            (mode, secs)
        }
    }

    /// Writes the contact into its dict, changing only fields that read differently and keeping
    /// every other key: applying the view read from a dict leaves it unchanged.
    pub fn apply_to(&self, dict: &mut Dict) {
        let current = Self::from_dict(dict);
        let name = non_empty(self.name.as_ref());
        if current.name != name {
            // Libsession writes an empty name rather than removing the key.
            put(dict, "n", Some(Value::from(name.unwrap_or_default())));
        }
        let nickname = non_empty(self.nickname.as_ref());
        if current.nickname != nickname {
            put(dict, "N", nickname.map(Value::from));
        }
        apply_picture(dict, self.picture_url.as_ref(), self.picture_key.as_ref());
        for (key, was, wanted) in [
            ("a", current.approved, self.approved),
            ("A", current.approved_me, self.approved_me),
            ("b", current.blocked, self.blocked),
        ] {
            if was != wanted {
                put(dict, key, wanted.then_some(Value::Int(1)));
            }
        }
        if current.priority != self.priority {
            put(
                dict,
                "+",
                (self.priority != 0).then_some(Value::Int(self.priority)),
            );
        }
        let expiry = Self::normalized_expiry(self.expiry_mode, self.expiry_timer_secs);
        if (current.expiry_mode, current.expiry_timer_secs) != expiry {
            let (mode, secs) = expiry;
            let on = mode != ExpiryMode::Off;
            put(dict, "e", on.then_some(Value::Int(mode.code())));
            put(dict, "E", on.then_some(Value::Int(secs)));
        }
        let created = self.created.max(0);
        if current.created != created {
            put(dict, "j", (created > 0).then_some(Value::Int(created)));
        }
        if dict.is_empty() {
            // An empty dict would be pruned, dropping the contact: keep an empty name, as
            // libsession does.
            put(dict, "n", Some(Value::from("")));
        }
    }
}

/// The contact list (Contacts config, namespace 3): data key `c`, a dict keyed by the 33-byte
/// binary Session ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    /// Every contact, by Session ID.
    pub contacts: BTreeMap<SessionId, ContactEntry>,
}

/// The Session ID a `c` key names, if it is 33 bytes starting with `05`.
fn contact_id(key: &[u8]) -> Option<SessionId> {
    let (&prefix, rest) = key.split_first()?;
    let bytes = <[u8; 32]>::try_from(rest).ok()?;
    (prefix == 0x05).then(|| SessionId::from_x25519(X25519Pub::from_bytes(bytes)))
}

impl Contacts {
    /// Reads the contacts from a Contacts data dict, skipping keys that are not 05-prefixed
    /// 33-byte Session IDs and entries that are not dicts.
    pub fn from_data(data: &Dict) -> Self {
        let contacts = data
            .get(b"c".as_slice())
            .and_then(Value::as_dict)
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                Some((contact_id(key)?, ContactEntry::from_dict(value.as_dict()?)))
            })
            .collect();
        Self { contacts }
    }

    /// Makes `data` hold exactly these contacts: entries of contacts not listed are removed,
    /// listed ones are updated in place (keeping their unknown fields) or created. Keys that are
    /// not Session IDs, and all other data keys, are left alone; a `c` that is not a dict is
    /// replaced only if there are contacts to write.
    pub fn apply_to(&self, data: &mut Dict) {
        let has_dict = matches!(data.get(b"c".as_slice()), Some(Value::Dict(_)));
        if self.contacts.is_empty() && !has_dict {
            return;
        }
        let slot = data
            .entry(b"c".to_vec())
            .or_insert_with(|| Value::Dict(Dict::new()));
        if !matches!(slot, Value::Dict(_)) {
            *slot = Value::Dict(Dict::new());
        }
        let Value::Dict(all) = slot else {
            return;
        };
        all.retain(|key, value| match (contact_id(key), value) {
            (Some(id), Value::Dict(_)) => self.contacts.contains_key(&id),
            _ => true,
        });
        for (id, contact) in &self.contacts {
            let entry = all
                .entry(id.account().to_bytes().to_vec())
                .or_insert_with(|| Value::Dict(Dict::new()));
            if !matches!(entry, Value::Dict(_)) {
                *entry = Value::Dict(Dict::new());
            }
            if let Value::Dict(dict) = entry {
                contact.apply_to(dict);
            }
        }
        if all.is_empty() {
            data.remove(b"c".as_slice());
        }
    }

    /// The contacts as a fresh data dict.
    pub fn to_data(&self) -> Dict {
        let mut data = Dict::new();
        self.apply_to(&mut data);
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict<const N: usize>(entries: [(&str, Value); N]) -> Dict {
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect()
    }

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
    fn canonical_bencode_only() {
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"ie",
            b"i-e",
            b"i1",
            b"01:a",
            b"2:a",
            b"d1:b0:1:a0:e",
            b"d1:a0:1:a0:e",
            b"di1e0:e",
            b"le ",
            b"l",
            b"x",
            b"",
            b"i9223372036854775808e",
            b"99999999999999999999:",
        ] {
            assert!(
                Value::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [
            &b"i0e"[..],
            b"i-1e",
            b"i9223372036854775807e",
            b"i-9223372036854775808e",
            b"0:",
            b"d1:a0:1:b0:e",
            b"lli1eee",
        ] {
            assert_eq!(Value::decode(good).unwrap().encode(), good);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = [b"l".repeat(MAX_NESTING), b"e".repeat(MAX_NESTING)].concat();
        assert!(Value::decode(&ok).is_ok());
        let deep = [b"l".repeat(MAX_NESTING + 1), b"e".repeat(MAX_NESTING + 1)].concat();
        assert_eq!(Value::decode(&deep), Err(BencodeError::TooDeep));
        let huge = b"l".repeat(1_000_000);
        assert_eq!(Value::decode(&huge), Err(BencodeError::TooDeep));
    }

    #[test]
    fn diff_markers() {
        let old = dict([
            ("a", 1.into()),
            ("b", "keep".into()),
            ("c", "gone".into()),
            ("d", Value::Dict(dict([("x", 1.into()), ("y", 2.into())]))),
            ("e", Value::Dict(dict([("z", 1.into())]))),
            ("s", Value::List(vec![1.into(), "a".into()])),
        ]);
        let new = dict([
            ("a", 2.into()),
            ("b", "keep".into()),
            ("d", Value::Dict(dict([("x", 1.into()), ("y", 3.into())]))),
            ("e", "now a string".into()),
            ("f", Value::Dict(dict([("g", "new".into())]))),
            ("s", Value::List(vec![2.into(), "a".into()])),
        ]);
        let diff = diff_dicts(&old, &new);
        assert_eq!(
            encode_dict(&diff),
            b"d1:a0:1:c1:-1:dd1:y0:e1:e0:1:fd1:g0:e1:sll\
              i2eeli1eeee"
                .to_vec()
        );
        // Removing a dict marks each of its keys removed.
        let diff = diff_dicts(&old, &Dict::new());
        assert_eq!(
            diff.get(b"d".as_slice()),
            Some(&Value::Dict(dict([
                ("x", Value::removed_marker()),
                ("y", Value::removed_marker())
            ])))
        );
        assert!(diff_dicts(&new, &new).is_empty());
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
