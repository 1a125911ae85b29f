//! serde helpers for the response field encodings of the storage RPC (storage RPC spec §3, §4):
//! base64 bytes and signatures, flags that peers may send as `1`, ports as decimal strings,
//! swarm ids as bare hex, and lists whose malformed entries are skipped.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Error, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

use crate::identity::Signature;
use crate::swarm::SwarmId;

/// `skip_serializing_if` for flags that are written only when set.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes fields by reference.
pub(crate) fn is_false(flag: &bool) -> bool {
    !*flag
}

/// A flag as written by our nodes (`true`) or relayed from a reference node's bt answer (`1`):
/// `false` and `0` are false; any other value present is true.
pub(crate) mod flag {
    use super::{Deserialize, Deserializer, Value};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => b,
            Value::Number(n) => n.as_i64() != Some(0),
            Value::Null => false,
            _ => true,
        })
    }
}

/// Bytes as padded standard base64; either padding accepted on input.
pub(crate) mod b64_bytes {
    use super::{Deserialize, Deserializer, Error, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::b64::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::b64::decode(text.as_bytes()).map_err(D::Error::custom)
    }
}

/// An Ed25519 signature as padded base64 (88 characters).
pub(crate) mod b64_signature {
    use super::{b64_bytes, Deserializer, Error, Serializer, Signature};

    pub(crate) fn serialize<S: Serializer>(signature: &Signature, s: S) -> Result<S::Ok, S::Error> {
        b64_bytes::serialize(&signature.to_bytes(), s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let bytes = b64_bytes::deserialize(d)?;
        Signature::from_slice(&bytes).map_err(D::Error::custom)
    }
}

/// A port as a decimal string (`get_swarm`'s `"port"`).
pub(crate) mod port_text {
    use super::{Deserialize, Deserializer, Error, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde passes fields by reference.
    pub(crate) fn serialize<S: Serializer>(port: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&port.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// 32 bytes as 64 lowercase hex digits.
pub(crate) mod hex32 {
    use super::{Deserialize, Deserializer, Error, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0; 32];
        hex::decode_to_slice(text.as_bytes(), &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// A swarm id as lowercase hex without leading zeros; an id that is not hex reads as
/// [`SwarmId::INVALID`], as does an absent one (through `default`).
pub(crate) mod swarm_hex {
    use super::{Deserialize, Deserializer, Serializer, SwarmId, Value};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde passes fields by reference.
    pub(crate) fn serialize<S: Serializer>(id: &SwarmId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:x}", id.0))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SwarmId, D::Error> {
        let id = match Value::deserialize(d)? {
            Value::String(text) => u64::from_str_radix(&text, 16).ok(),
            _ => None,
        };
        Ok(id.map_or(SwarmId::INVALID, SwarmId))
    }

    pub(crate) fn invalid() -> SwarmId {
        SwarmId::INVALID
    }
}

/// A list whose entries that do not decode are skipped (a node's list of members, where one
/// bad entry should not hide the others).
pub(crate) mod lenient_list {
    use super::{fmt, DeserializeOwned, Deserializer, PhantomData, SeqAccess, Value, Visitor};

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        struct Entries<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Entries<T> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = seq.next_element::<Value>()? {
                    if let Ok(entry) = serde_json::from_value(entry) {
                        out.push(entry);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Entries(PhantomData))
    }
}

/// Optional bytes as padded standard base64, for a field that is absent when `None`.
pub(crate) mod opt_b64_bytes {
    use super::{b64_bytes, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde passes fields by reference.
    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => b64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        b64_bytes::deserialize(d).map(Some)
    }
}

/// A flag written as `1` (monitor's `d`), read from `1`/`true` like [`flag`].
pub(crate) mod one {
    use super::Serializer;

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde passes fields by reference.
    pub(crate) fn serialize<S: Serializer>(flag: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(*flag))
    }
}
