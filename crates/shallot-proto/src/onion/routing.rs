//! The JSON objects that follow the payload of a frame (onion-client spec §1.3–§1.7), both as the
//! client writes them and as a node reads them:
//!
//! - outer request: `{"ephemeral_key", "enc_type", "hop_no"?}`;
//! - relay to the next node: `{"destination", "ephemeral_key", "enc_type"?}`;
//! - proxy to an HTTP server: `{"host", "target", "method", "protocol"?, "port"?, …}`;
//! - final destination: `{"headers", "json"?, "base64"?}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::cipher::EncType;
use crate::identity::{Ed25519Pub, X25519Pub};

/// The target path clients use for v4 requests to HTTP servers.
pub const V4_TARGET: &str = "/oxen/v4/lsrpc";

/// Port a node proxies to when the layer names none: 443 even for `http`, as the storage server does.
pub const DEFAULT_PROXY_PORT: u16 = 443;

/// URL scheme a node may use to proxy to an HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProxyProtocol {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTPS (default port 443), the default when `protocol` is absent.
    #[default]
    Https,
}

/// The `protocol` string is neither `http` nor `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("protocol must be http or https")]
pub struct UnknownProtocol;

impl ProxyProtocol {
    /// The scheme name as sent in JSON and used in URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port used when none is given (443 for https, 80 for http).
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl FromStr for ProxyProtocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, UnknownProtocol> {
        match s {
            "http" => Ok(Self::Http),
            "https" => Ok(Self::Https),
            _ => Err(UnknownProtocol),
        }
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProxyProtocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Outer request JSON as the client writes it.
#[derive(Serialize)]
pub(crate) struct OuterOut {
    /// Client's ephemeral key for the guard's layer.
    pub ephemeral_key: X25519Pub,
    /// Cipher of the guard's layer.
    pub enc_type: EncType,
}

/// Outer request JSON as a node reads it (also what an HTTP server reads from the proxied layer).
#[derive(Deserialize)]
pub(crate) struct OuterIn {
    /// Ephemeral key, strictly 64 hex characters.
    pub ephemeral_key: X25519Pub,
    /// Cipher; aes-gcm when absent.
    #[serde(default)]
    pub enc_type: EncType,
    /// Fake starting hop number.
    #[serde(default)]
    pub hop_no: Option<i64>,
}

/// Relay routing JSON (both directions).
#[derive(Serialize, Deserialize)]
pub(crate) struct Relay {
    /// Ed25519 key of the next node.
    pub destination: Ed25519Pub,
    /// Ephemeral key the next node decrypts with.
    pub ephemeral_key: X25519Pub,
    /// Cipher of the next layer; aes-gcm when absent.
    #[serde(default)]
    pub enc_type: EncType,
}

/// Proxy routing JSON as the client writes it; the `ephemeral_key`/`enc_type` are for the server.
#[derive(Serialize)]
pub(crate) struct ProxyOut<'a> {
    pub host: &'a str,
    pub target: &'a str,
    pub method: &'static str,
    pub protocol: ProxyProtocol,
    pub port: u16,
    pub ephemeral_key: X25519Pub,
    pub enc_type: EncType,
}

/// Proxy routing JSON as the last hop reads it.
#[derive(Deserialize)]
pub(crate) struct ProxyIn {
    pub host: String,
    pub target: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// Final-destination control JSON as the client writes it (`{"headers":""}`, plus `"pad"` in a
/// padded request, see [`super::padding`]).
#[derive(Serialize)]
pub(crate) struct FinalOut {
    pub headers: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pad: Option<String>,
}

/// Final-destination control JSON as the destination reads it (the `headers` value is ignored).
#[derive(Deserialize)]
pub(crate) struct FinalIn {
    #[serde(default)]
    pub json: Option<bool>,
    #[serde(default)]
    pub base64: Option<bool>,
    /// Present (any value) in a padded request: the reply is padded too.
    #[serde(default)]
    pub pad: Option<serde::de::IgnoredAny>,
}

/// Whether `host` is a plain host name, IPv4 address or bracketed IPv6 address, so that it cannot
/// change the scheme, port, path or credentials of the URL it is placed in (and has no `..`).
pub(crate) fn is_valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 || host.contains("..") {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in ["example.org", "10.0.0.1", "[::1]", "a_b-c"] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "a:80",
            "user@host",
            "[]",
            "a b",
            "a?b",
            "a#b",
            "a..b",
            "..",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn protocols() {
        assert_eq!("http".parse(), Ok(ProxyProtocol::Http));
        assert_eq!("https".parse(), Ok(ProxyProtocol::Https));
        assert_eq!("ftp".parse::<ProxyProtocol>(), Err(UnknownProtocol));
        assert_eq!(ProxyProtocol::default().default_port(), 443);
    }
}
