//! Parses untrusted JSON into a [`serde_json::Value`] with a cap on how many values it may hold.
//!
//! A `Value` costs 32 bytes or more per element however short its text, so 10 MiB of `[0,0,0,…`
//! would become more than 160 MiB of memory. Counting values while building the tree (every
//! array element, object entry and scalar counts one) stops such a document once it holds
//! `max_values` of them, so a body of `n` bytes costs at most about `n + 100 · max_values` bytes.
//! Hand-rolled as a serde visitor (about the size of serde_json's own `Value` visitor): the
//! well-kept alternatives either allocate the whole tree first or do not produce a `Value`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Most values in a storage RPC request body: far above any real request (a 20-request batch
/// holds a few hundred; a `delete` of 10 000 hashes about 10 000) and small enough that the tree
/// stays within a few MiB.
pub const MAX_REQUEST_VALUES: usize = 100_000;

/// Most values in the routing JSON of one onion layer (a handful of keys in practice).
pub const MAX_ROUTING_VALUES: usize = 1_000;

/// Parses `bytes` as one JSON document holding at most `max_values` values (trailing
/// whitespace allowed, as [`serde_json::from_slice`]). Errors are serde_json's, including one
/// for too many values.
pub fn from_slice(bytes: &[u8], max_values: usize) -> Result<Value, serde_json::Error> {
    let budget = Cell::new(max_values);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Bounded { budget: &budget }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Builds one value, charging it and everything inside it to `budget`.
#[derive(Clone, Copy)]
struct Bounded<'b> {
    budget: &'b Cell<usize>,
}

impl Bounded<'_> {
    fn charge<E: de::Error>(self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom("too many JSON values")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge()?;
        // No capacity from a size hint: the sender chose it.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.charge()?;
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_as_serde_json() {
        for text in [
            r#"{"method":"store","params":{"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{}}}"#,
            "[]",
            "  \"s\"  ",
            r#"{"k":1,"k":2}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e400",
        ] {
            let ours = from_slice(text.as_bytes(), 100);
            let theirs = serde_json::from_slice::<Value>(text.as_bytes());
            assert_eq!(ours.ok(), theirs.ok(), "{text}");
        }
        for bad in ["", "{", "[1,]", "1 2", "{\"a\":1}x", "nul"] {
            assert!(from_slice(bad.as_bytes(), 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_every_value() {
        // Array + 3 numbers = 4; object + key + value per entry.
        assert!(from_slice(b"[1,2,3]", 4).is_ok());
        assert!(from_slice(b"[1,2,3]", 3).is_err());
        assert!(from_slice(br#"{"a":1,"b":[]}"#, 5).is_ok());
        assert!(from_slice(br#"{"a":1,"b":[]}"#, 4).is_err());
        let flood = format!("[{}0]", "0,".repeat(1_000_000));
        let error = from_slice(flood.as_bytes(), MAX_REQUEST_VALUES).unwrap_err();
        assert!(
            error.to_string().contains("too many JSON values"),
            "{error}"
        );
    }
}
