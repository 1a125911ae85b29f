//! Canonical bencode: the [`Value`] tree, its encoder and a strict parser.
//!
//! The parser accepts only canonical bencode (sorted unique dict keys, no leading zeros, no `-0`,
//! no trailing bytes), keeps integers to 64 bits and stops at [`MAX_NESTING`] nested containers,
//! so hostile input cannot exhaust the stack. [`Parser`] also exposes byte offsets, which signed
//! formats (config messages, group keys) need for their signed ranges. Used by config messages,
//! group key messages and the onion "v4" request/response lists.

use std::collections::BTreeMap;
use std::fmt;

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

impl Value {
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

/// One top-level entry of a dict read by [`decode_dict_entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictEntry {
    /// Offset of the entry's key in the input: the bytes before it are what a signature stored
    /// under this key covers.
    pub offset: usize,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
}

/// Parses a canonical bencoded dict filling all of `bytes`, keeping each top-level key's offset
/// (for formats whose last key signs everything before it).
pub fn decode_dict_entries(bytes: &[u8]) -> Result<Vec<DictEntry>, BencodeError> {
    let mut parser = Parser::new(bytes);
    parser.expect(b'd')?;
    let mut entries: Vec<DictEntry> = Vec::new();
    while parser.peek()? != b'e' {
        let (offset, key) = parser.key(entries.last().map(|e| e.key.as_slice()))?;
        let value = parser.value(1)?;
        entries.push(DictEntry {
            offset,
            key: key.to_vec(),
            value,
        });
    }
    parser.pos += 1;
    parser.finish()?;
    Ok(entries)
}

/// The canonical bencoding of a dict.
pub fn encode_dict(dict: &Dict) -> Vec<u8> {
    let mut out = Vec::new();
    encode_dict_into(dict, &mut out);
    out
}

pub(crate) fn encode_dict_into(dict: &Dict, out: &mut Vec<u8>) {
    out.push(b'd');
    for (key, value) in dict {
        encode_bytes(key, out);
        value.encode_into(out);
    }
    out.push(b'e');
}

pub(crate) fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A strict canonical bencode reader over a byte slice.
pub(crate) struct Parser<'a> {
    input: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) const fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Result<u8, BencodeError> {
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
    pub(crate) fn finish(&self) -> Result<(), BencodeError> {
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
    pub(crate) fn expect(&mut self, terminator: u8) -> Result<(), BencodeError> {
        if self.peek()? == terminator {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// One value; `depth` counts the containers around it.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
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
    pub(crate) fn key(&mut self, last: Option<&[u8]>) -> Result<(usize, &'a [u8]), BencodeError> {
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
    pub(crate) fn int(&mut self) -> Result<i64, BencodeError> {
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
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
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

/// A dict from text keys, for unit tests.
#[cfg(test)]
pub(crate) fn test_dict<const N: usize>(entries: [(&str, Value); N]) -> Dict {
    entries
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
