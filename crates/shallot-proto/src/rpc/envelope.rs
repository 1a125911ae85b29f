//! The outer JSON envelope of a client request (storage RPC spec §1.1 step 5):
//! `{"method": <string>, "params": <object>}`, posted to `/storage_rpc/v1` or carried as the
//! final-hop payload of an onion request.

use serde_json::Value;

use super::error::RpcError;
use super::request::Request;
use crate::json_limit::{self, MAX_REQUEST_VALUES};

/// A request envelope whose `method` is a string and whose `params` is an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The method name as sent (possibly an alias or unknown).
    pub method: String,
    /// The params object.
    pub params: Value,
}

impl Envelope {
    /// Parses a request body, with the reference's texts: `invalid json`,
    /// ``invalid json: no `method` field``, ``invalid json: no `params` field``. A leading UTF-8
    /// byte-order mark is skipped, as the reference's JSON parser does. A body of more than
    /// [`MAX_REQUEST_VALUES`] JSON values is `invalid json` too (it bounds the memory a body
    /// can make the parser allocate; see [`crate::json_limit`]).
    pub fn parse(body: &[u8]) -> Result<Self, RpcError> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let value =
            json_limit::from_slice(body, MAX_REQUEST_VALUES).map_err(|_| RpcError::InvalidJson)?;
        let Value::Object(mut map) = value else {
            return Err(RpcError::NoMethod);
        };
        let Some(Value::String(method)) = map.remove("method") else {
            return Err(RpcError::NoMethod);
        };
        match map.remove("params") {
            Some(params @ Value::Object(_)) => Ok(Self { method, params }),
            _ => Err(RpcError::NoParams),
        }
    }

    /// Parses the params for the method (`no method <name>` if unknown).
    pub fn request(&self) -> Result<Request, RpcError> {
        Request::parse(&self.method, &self.params)
    }
}

/// Parses a whole request body into a typed request: the entry point for HTTP, onion final hops
/// and fuzzing.
pub fn parse_body(body: &[u8]) -> Result<Request, RpcError> {
    Envelope::parse(body)?.request()
}
