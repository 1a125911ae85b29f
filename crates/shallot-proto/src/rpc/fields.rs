//! Typed access to JSON params fields with the reference's rules and error texts (storage RPC spec
//! §2.3): null ≡ absent, unknown keys ignored, timestamps in ms, arrays that may be single values.
//!
//! Method parsers read their fields in ascending key order before checking anything else, because
//! the reference does and the first type error wins.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde_json::{Map, Value};

use super::error::{Expected, ParamError};
use super::MIN_TIMESTAMP_MS;
use crate::identity::{AccountId, Ed25519Pub, Signature};
use crate::message_hash::RequestedHash;
use crate::namespace::{Namespace, NamespaceSelector};

/// Largest timestamp the reference can represent (it reads timestamps as signed 64-bit).
const MAX_TIMESTAMP_MS: u64 = i64::MAX as u64;

/// A method's params. A non-object value reads as an empty object, as in the reference.
#[derive(Clone, Copy)]
pub(crate) struct Params<'a>(Option<&'a Map<String, Value>>);

type Field<T> = Result<Option<T>, ParamError>;

fn wrong(field: &'static str, expected: Expected) -> ParamError {
    ParamError::WrongType { field, expected }
}

/// Any JSON integer as i64; integers above `i64::MAX` saturate.
fn as_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX))
}

/// A single timestamp value: non-negative integer, ≥ 10⁹ and representable as signed 64-bit.
fn timestamp_value(field: &'static str, value: &Value) -> Result<u64, ParamError> {
    let ms = value.as_u64().ok_or(wrong(field, Expected::Timestamp))?;
    if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ms) {
        return Err(ParamError::NotMilliseconds(field));
    }
    Ok(ms)
}

fn namespace_value(field: &'static str, value: &Value) -> Option<Result<Namespace, ParamError>> {
    if let Some(n) = value.as_i64() {
        return Some(
            i16::try_from(n)
                .map(Namespace)
                .map_err(|_| ParamError::OutOfRange(field)),
        );
    }
    if value.is_u64() {
        return Some(Err(ParamError::OutOfRange(field)));
    }
    None
}

impl<'a> Params<'a> {
    /// Wraps a params value.
    pub(crate) fn new(value: &'a Value) -> Self {
        Self(value.as_object())
    }

    /// The raw value under `name`, including an explicit null.
    pub(crate) fn raw(self, name: &str) -> Option<&'a Value> {
        self.0?.get(name)
    }

    /// The value under `name`; null reads as absent.
    fn get(self, name: &str) -> Option<&'a Value> {
        self.raw(name).filter(|v| !v.is_null())
    }

    /// A string field.
    pub(crate) fn string(self, name: &'static str) -> Field<&'a str> {
        self.get(name)
            .map(|v| v.as_str().ok_or(wrong(name, Expected::String)))
            .transpose()
    }

    /// A boolean field.
    pub(crate) fn boolean(self, name: &'static str) -> Field<bool> {
        self.get(name)
            .map(|v| v.as_bool().ok_or(wrong(name, Expected::Boolean)))
            .transpose()
    }

    /// An integer field (values above `i64::MAX` saturate).
    pub(crate) fn integer(self, name: &'static str) -> Field<i64> {
        self.get(name)
            .map(|v| as_integer(v).ok_or(wrong(name, Expected::Integer)))
            .transpose()
    }

    /// A timestamp field: non-negative integer ms, at least 10⁹.
    pub(crate) fn timestamp(self, name: &'static str) -> Field<u64> {
        self.get(name).map(|v| timestamp_value(name, v)).transpose()
    }

    /// A namespace field: a 16-bit integer.
    pub(crate) fn namespace(self, name: &'static str) -> Field<Namespace> {
        self.get(name)
            .map(|v| namespace_value(name, v).unwrap_or(Err(wrong(name, Expected::Integer16))))
            .transpose()
    }

    /// A namespace field of the `*_all` methods: a 16-bit integer or `"all"`.
    pub(crate) fn namespace_selector(self, name: &'static str) -> Field<NamespaceSelector> {
        self.get(name)
            .map(|v| {
                if let Some(ns) = namespace_value(name, v) {
                    return ns.map(NamespaceSelector::One);
                }
                match v.as_str() {
                    Some("all") => Ok(NamespaceSelector::All),
                    _ => Err(wrong(name, Expected::IntegerOrAll)),
                }
            })
            .transpose()
    }

    /// A string or array of strings (a single string is a one-element list).
    pub(crate) fn string_array(self, name: &'static str) -> Field<Vec<&'a str>> {
        self.get(name)
            .map(|v| match v {
                Value::String(s) => Ok(vec![s.as_str()]),
                Value::Array(items) => items
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<Vec<_>>>()
                    .ok_or(wrong(name, Expected::StringArray)),
                _ => Err(wrong(name, Expected::StringArray)),
            })
            .transpose()
    }

    /// An integer or array of integers (values above `i64::MAX` saturate).
    pub(crate) fn integer_array(self, name: &'static str) -> Field<Vec<i64>> {
        self.get(name)
            .map(|v| {
                let values = match v {
                    Value::Array(items) => items.iter().map(as_integer).collect(),
                    single => as_integer(single).map(|n| vec![n]),
                };
                values.ok_or(wrong(name, Expected::IntegerArray))
            })
            .transpose()
    }

    /// A non-negative integer or array of them, in ms (no magnitude check, unlike single
    /// timestamps; values above `i64::MAX` are rejected).
    pub(crate) fn timestamp_array(self, name: &'static str) -> Field<Vec<u64>> {
        let one = |v: &Value| v.as_u64().filter(|&ms| ms <= MAX_TIMESTAMP_MS);
        self.get(name)
            .map(|v| {
                let values = match v {
                    Value::Array(items) => items.iter().map(one).collect(),
                    single => one(single).map(|ms| vec![ms]),
                };
                values.ok_or(wrong(name, Expected::TimestampArray))
            })
            .transpose()
    }

    /// Store's `timestamp`: a signed integer or a decimal string of one.
    pub(crate) fn stringified_i64(self, name: &'static str) -> Field<i64> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        if let Value::String(text) = value {
            return parse_decimal(text, true)
                .and_then(|(negative, magnitude)| {
                    if negative {
                        0i64.checked_sub_unsigned(magnitude)
                    } else {
                        i64::try_from(magnitude).ok()
                    }
                })
                .map(Some)
                .ok_or_else(|| not_numeric(name, value));
        }
        value
            .as_i64()
            .map(Some)
            .ok_or(wrong(name, Expected::Integer))
    }

    /// Store's `ttl`: a non-negative integer or a decimal string of one.
    pub(crate) fn stringified_u64(self, name: &'static str) -> Field<u64> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        if let Value::String(text) = value {
            return parse_decimal(text, false)
                .map(|(_, magnitude)| Some(magnitude))
                .ok_or_else(|| not_numeric(name, value));
        }
        value
            .as_u64()
            .map(Some)
            .ok_or(wrong(name, Expected::PositiveInteger))
    }
}

fn not_numeric(field: &'static str, value: &Value) -> ParamError {
    ParamError::NotNumeric {
        field,
        raw: value.to_string(),
    }
}

/// Parses `-?[0-9]+` (the minus only if `signed`) that fits in 64 bits, like C++ `from_chars`
/// consuming the whole string: no `+`, no spaces. Returns the sign and magnitude.
fn parse_decimal(text: &str, signed: bool) -> Option<(bool, u64)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: u64 = digits.parse().ok()?;
    Some((negative, magnitude))
}

/// Fails with "Required field '<name>' missing" if absent.
pub(crate) fn require<T>(name: &'static str, value: Option<T>) -> Result<T, ParamError> {
    value.ok_or(ParamError::Missing(name))
}

/// Resolves a field given under its name or a JSON alias (`pubkey`/`pubKey`): exactly one.
pub(crate) fn aliased<T>(
    name: &'static str,
    value: Option<T>,
    alias: &'static str,
    alias_value: Option<T>,
) -> Result<T, ParamError> {
    match (value, alias_value) {
        (Some(_), Some(_)) => Err(ParamError::Both(name, alias)),
        (Some(v), None) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ParamError::Missing(name)),
    }
}

/// Base64 as the reference's `is_base64` accepts it: standard alphabet, optional padding that
/// completes a multiple of 4 (at most two `=`), never a length of 4n+1.
pub(crate) fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return false;
    }
    let mut body = bytes;
    if !body.is_empty() && body.len() % 4 == 0 {
        for _ in 0..2 {
            if let Some(rest) = body.strip_suffix(b"=") {
                body = rest;
            }
        }
    }
    body.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Unpadded standard base64 that, like the reference, ignores non-zero trailing bits.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Decodes text that passed [`is_base64`].
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    LENIENT.decode(text.trim_end_matches('=')).ok()
}

/// Decodes a JSON signature: 86 base64 characters, or 88 ending in `==`.
pub(crate) fn parse_signature(text: &str, error: ParamError) -> Result<Signature, ParamError> {
    let shape_ok = text.len() == 86 || (text.len() == 88 && text.ends_with("=="));
    if !shape_ok || !is_base64(text) {
        return Err(error);
    }
    let bytes = decode_base64(text).ok_or(error.clone())?;
    let bytes = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| error)?;
    Ok(Signature::from_bytes(&bytes))
}

/// An account pubkey: 66 hex characters, or a 33-byte string taken as raw bytes.
pub(crate) fn parse_account(text: &str) -> Option<AccountId> {
    if text.len() == 66 {
        if let Ok(account) = text.parse() {
            return Some(account);
        }
    }
    if text.len() == 33 {
        return AccountId::from_bytes(text.as_bytes()).ok();
    }
    None
}

/// `pubkey_ed25519`: 64 hex characters or a 32-byte string taken as raw bytes.
pub(crate) fn parse_ed25519(text: &str) -> Result<Ed25519Pub, ParamError> {
    match text.len() {
        64 => text.parse().map_err(|_| ParamError::Ed25519NotHex),
        32 => Ed25519Pub::from_slice(text.as_bytes()).map_err(|_| ParamError::Ed25519Length),
        _ => Err(ParamError::Ed25519Length),
    }
}

/// A `delete`/`expire` message hash: exactly 43 base64 characters. A non-canonical spelling
/// (non-zero trailing bits) is accepted, as the reference does, and names no message.
pub(crate) fn parse_hash(text: &str) -> Result<RequestedHash, ParamError> {
    text.parse()
        .map_err(|_| ParamError::MessageHash(text.to_owned()))
}
