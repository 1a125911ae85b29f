//! The "v4" request and response to an HTTP server destination (onion-client spec §1.7): bencoded
//! lists of byte strings, encrypted with the destination layer's key and never base64-encoded.
//!
//! - request: `l <INFO_JSON> [<BODY>] e`, `INFO_JSON = {"method","endpoint","headers"}`;
//! - response: `l <META_JSON> <BODY> e`, `META_JSON = {"code","headers"}`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::cipher::{CipherError, HopKey, ResponseKey};
use crate::bencode::Parser;

/// Why a v4 request or response could not be built, encrypted, decrypted or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V4Error {
    /// Not a canonical bencoded list of byte strings.
    #[error("invalid bencoded list: {0}")]
    Bencode(String),
    /// The list has the wrong number of items.
    #[error("expected {expected} items, got {got}")]
    WrongItemCount {
        /// Accepted item counts, e.g. "1 or 2".
        expected: &'static str,
        /// Items found.
        got: usize,
    },
    /// The metadata item is not the expected UTF-8 JSON object.
    #[error("invalid metadata JSON: {0}")]
    InvalidJson(String),
    /// The HTTP method is not one this library knows.
    #[error("unsupported HTTP method")]
    UnknownMethod,
    /// The endpoint does not start with `/`.
    #[error("endpoint must start with '/'")]
    EndpointNotAbsolute,
    /// A GET or DELETE request carries a body.
    #[error("{0} requests must not carry a body")]
    BodyNotAllowed(HttpMethod),
    /// Encryption or decryption failed.
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// HTTP request methods a v4 request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET` (no body).
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE` (no body).
    Delete,
    /// `OPTIONS`.
    Options,
}

impl HttpMethod {
    /// The method name as sent (upper case).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
        }
    }

    /// Whether a request with this method may carry a body (GET and DELETE may not).
    pub const fn allows_body(self) -> bool {
        !matches!(self, Self::Get | Self::Delete)
    }
}

impl FromStr for HttpMethod {
    type Err = V4Error;
    /// Parses an upper-case method name.
    fn from_str(s: &str) -> Result<Self, V4Error> {
        Ok(match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => return Err(V4Error::UnknownMethod),
        })
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header name/value pairs, kept sorted so encodings are deterministic.
pub type Headers = BTreeMap<String, String>;

/// An HTTP request to a server, as carried inside a v4 onion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Request {
    method: HttpMethod,
    endpoint: String,
    headers: Headers,
    body: Option<Vec<u8>>,
}

/// `INFO_JSON` of a request, in the key order the reference clients emit.
#[derive(Serialize)]
struct RequestInfoOut<'a> {
    method: &'static str,
    endpoint: &'a str,
    headers: &'a Headers,
}

/// `INFO_JSON` of a request as a server reads it.
#[derive(Deserialize)]
struct RequestInfoIn {
    method: String,
    endpoint: String,
    #[serde(default)]
    headers: Headers,
}

impl V4Request {
    /// Builds a request the way libsession does: drops any `User-Agent` header and adds
    /// `Content-Type: application/json` when there is a body and no content type.
    pub fn new(
        method: HttpMethod,
        endpoint: impl Into<String>,
        mut headers: Headers,
        body: Option<Vec<u8>>,
    ) -> Result<Self, V4Error> {
        headers.retain(|name, _| !name.eq_ignore_ascii_case("user-agent"));
        if body.is_some()
            && !headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case("content-type"))
        {
            headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        }
        Self::validated(method, endpoint.into(), headers, body)
    }

    fn validated(
        method: HttpMethod,
        endpoint: String,
        headers: Headers,
        body: Option<Vec<u8>>,
    ) -> Result<Self, V4Error> {
        if !endpoint.starts_with('/') {
            return Err(V4Error::EndpointNotAbsolute);
        }
        if body.is_some() && !method.allows_body() {
            return Err(V4Error::BodyNotAllowed(method));
        }
        Ok(Self {
            method,
            endpoint,
            headers,
            body,
        })
    }

    /// The HTTP method.
    pub const fn method(&self) -> HttpMethod {
        self.method
    }

    /// The path and query, starting with `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The request headers.
    pub const fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The raw body, if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Takes the body out (a server handling a large upload need not copy it).
    pub fn into_body(self) -> Option<Vec<u8>> {
        self.body
    }

    /// The plaintext the client encrypts for the server: `l<INFO_JSON>[<BODY>]e`.
    pub fn encode(&self) -> Result<Vec<u8>, V4Error> {
        Ok(self.encoding()?.to_vec())
    }

    /// [`Self::encode`] not yet written: its length is known first, so an onion can be sized
    /// around it and the body copied once, into its place.
    pub(crate) fn encoding(&self) -> Result<Bencoded<'_>, V4Error> {
        let body = self.body.as_deref().map_or(Body::None, Body::Bytes);
        self.encoding_with(body)
    }

    /// [`Self::encoding`] with a body of `len` bytes the caller writes into place instead of
    /// this request's own (an upload built straight into its onion).
    pub(crate) fn encoding_written(&self, len: usize) -> Result<Bencoded<'_>, V4Error> {
        self.encoding_with(Body::Written(len))
    }

    fn encoding_with<'a>(&self, body: Body<'a>) -> Result<Bencoded<'a>, V4Error> {
        let info = serde_json::to_vec(&RequestInfoOut {
            method: self.method.as_str(),
            endpoint: &self.endpoint,
            headers: &self.headers,
        })
        .map_err(|e| V4Error::InvalidJson(e.to_string()))?;
        Ok(Bencoded { head: info, body })
    }

    /// Parses the decrypted plaintext on the server side (1 or 2 items; the same rules as [`Self::new`]
    /// except that headers are taken as given).
    pub fn parse(plaintext: &[u8]) -> Result<Self, V4Error> {
        Self::parse_owned(plaintext.to_vec())
    }

    /// [`Self::parse`] of an owned plaintext: the body is cut out of it, not copied.
    pub fn parse_owned(plaintext: Vec<u8>) -> Result<Self, V4Error> {
        let items = list_ranges(&plaintext)?;
        let (info, body) = match items.as_slice() {
            [info] => (info.clone(), None),
            [info, body] => (info.clone(), Some(body.clone())),
            _ => {
                return Err(V4Error::WrongItemCount {
                    expected: "1 or 2",
                    got: items.len(),
                })
            }
        };
        let info: RequestInfoIn = serde_json::from_slice(&plaintext[info])
            .map_err(|e| V4Error::InvalidJson(e.to_string()))?;
        let body = body.map(|range| cut(plaintext, range));
        Self::validated(info.method.parse()?, info.endpoint, info.headers, body)
    }
}

/// An HTTP server's answer, as carried back in a v4 onion response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Response {
    /// HTTP status code (errors keep the same shape with a text body).
    pub code: u16,
    /// Response headers (servers send lower-case names and no `content-length`).
    pub headers: Headers,
    /// The raw response body.
    pub body: Vec<u8>,
}

/// `META_JSON` of a response as a server writes it.
#[derive(Serialize)]
struct ResponseMetaOut<'a> {
    code: u16,
    headers: &'a Headers,
}

/// `META_JSON` of a response as a client reads it.
#[derive(Deserialize)]
struct ResponseMetaIn {
    code: u16,
    #[serde(default)]
    headers: Headers,
}

impl V4Response {
    /// The plaintext a server encrypts: `l<META_JSON><BODY>e`.
    pub fn encode(&self) -> Result<Vec<u8>, V4Error> {
        Ok(self.encoding()?.to_vec())
    }

    fn encoding(&self) -> Result<Bencoded<'_>, V4Error> {
        let meta = serde_json::to_vec(&ResponseMetaOut {
            code: self.code,
            headers: &self.headers,
        })
        .map_err(|e| V4Error::InvalidJson(e.to_string()))?;
        Ok(Bencoded {
            head: meta,
            body: Body::Bytes(&self.body),
        })
    }

    /// Parses a decrypted response: exactly 2 items, the first a `{"code","headers"}` object.
    pub fn parse(plaintext: &[u8]) -> Result<Self, V4Error> {
        Self::parse_owned(plaintext.to_vec())
    }

    /// [`Self::parse`] of an owned plaintext: the body is cut out of it, not copied.
    pub fn parse_owned(plaintext: Vec<u8>) -> Result<Self, V4Error> {
        let items = list_ranges(&plaintext)?;
        let [meta, body]: [Range<usize>; 2] =
            items
                .try_into()
                .map_err(|items: Vec<Range<usize>>| V4Error::WrongItemCount {
                    expected: "2",
                    got: items.len(),
                })?;
        let meta: ResponseMetaIn = serde_json::from_slice(&plaintext[meta])
            .map_err(|e| V4Error::InvalidJson(e.to_string()))?;
        Ok(Self {
            code: meta.code,
            headers: meta.headers,
            body: cut(plaintext, body),
        })
    }

    /// Server side: encodes and encrypts with the request layer's key (raw bytes, no base64),
    /// writing the body once, into the buffer that is sent.
    pub fn seal<R: CryptoRngCore + ?Sized>(
        &self,
        key: &HopKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, V4Error> {
        let encoding = self.encoding()?;
        let enc_type = key.enc_type();
        let nonce_len = enc_type.nonce_len();
        let mut sealed = vec![0u8; enc_type.ciphertext_len(encoding.len())];
        encoding.write(&mut sealed[nonce_len..nonce_len + encoding.len()]);
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce[..nonce_len]);
        key.seal_in_place(&nonce[..nonce_len], &mut sealed, encoding.len())?;
        Ok(sealed)
    }

    /// Client side: decrypts the HTTP body relayed back through the path and parses it.
    pub fn open(key: &ResponseKey, http_body: &[u8]) -> Result<Self, V4Error> {
        Self::open_owned(key, http_body.to_vec())
    }

    /// [`Self::open`] of an owned HTTP body: decrypted where it lies and the body cut out of
    /// it, so a 10 MB download is held once.
    pub fn open_owned(key: &ResponseKey, mut http_body: Vec<u8>) -> Result<Self, V4Error> {
        let plaintext = key.open_in_place(&mut http_body)?;
        Self::parse_owned(cut(http_body, plaintext))
    }
}

/// A bencoded list of one or two byte strings (`l<HEAD>[<BODY>]e`) not yet written.
pub(crate) struct Bencoded<'a> {
    head: Vec<u8>,
    body: Body<'a>,
}

/// The second item of a [`Bencoded`] list.
enum Body<'a> {
    None,
    /// Bytes to copy.
    Bytes(&'a [u8]),
    /// This many bytes the caller writes into place (see [`Bencoded::write`]).
    Written(usize),
}

impl Bencoded<'_> {
    fn body_len(&self) -> Option<usize> {
        match self.body {
            Body::None => None,
            Body::Bytes(bytes) => Some(bytes.len()),
            Body::Written(len) => Some(len),
        }
    }

    /// Length of the encoding.
    pub(crate) fn len(&self) -> usize {
        let item = |len: usize| len.to_string().len() + 1 + len;
        2 + item(self.head.len()) + self.body_len().map_or(0, item)
    }

    /// Writes the encoding into `out`, which is exactly [`Self::len`] bytes long; the body's
    /// range in `out` (a [`Body::Written`] body is left for the caller to write there).
    pub(crate) fn write(&self, out: &mut [u8]) -> Range<usize> {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(b"l");
        put(self.head.len().to_string().as_bytes());
        put(b":");
        put(&self.head);
        if let Some(len) = self.body_len() {
            put(len.to_string().as_bytes());
            put(b":");
        }
        let body = at..at + self.body_len().unwrap_or(0);
        if let Body::Bytes(bytes) = self.body {
            out[body.clone()].copy_from_slice(bytes);
        }
        out[body.end] = b'e';
        body
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len()];
        self.write(&mut out);
        out
    }
}

/// `bytes[range]` in `bytes`' own allocation (the tail dropped, the head moved out).
fn cut(mut bytes: Vec<u8>, range: Range<usize>) -> Vec<u8> {
    bytes.truncate(range.end);
    bytes.drain(..range.start);
    bytes
}

/// Where the items of a canonical bencoded list of byte strings lie in `bytes` (trailing data
/// and non-canonical forms such as "+3:" or "03:" are rejected by [`crate::bencode`]).
fn list_ranges(bytes: &[u8]) -> Result<Vec<Range<usize>>, V4Error> {
    let bencode = |e: crate::bencode::BencodeError| V4Error::Bencode(e.to_string());
    let mut parser = Parser::new(bytes);
    parser.expect(b'l').map_err(bencode)?;
    let mut items = Vec::new();
    while parser.peek().map_err(bencode)? != b'e' {
        if !parser.peek().map_err(bencode)?.is_ascii_digit() {
            return Err(V4Error::Bencode(
                "list item is not a byte string".to_owned(),
            ));
        }
        let len = parser.bytes().map_err(bencode)?.len();
        items.push(parser.pos - len..parser.pos);
    }
    parser.expect(b'e').map_err(bencode)?;
    parser.finish().map_err(bencode)?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_exact_bytes() {
        let headers = Headers::from([("Some-Header".to_owned(), "12345".to_owned())]);
        let req = V4Request::new(HttpMethod::Get, "/room/some-room", headers, None).unwrap();
        let encoded = req.encode().unwrap();
        assert_eq!(
            encoded,
            br#"l79:{"method":"GET","endpoint":"/room/some-room","headers":{"Some-Header":"12345"}}e"#
        );
        assert_eq!(V4Request::parse(&encoded).unwrap(), req);
    }

    #[test]
    fn request_with_body() {
        let headers = Headers::from([("User-Agent".to_owned(), "x".to_owned())]);
        let req = V4Request::new(HttpMethod::Post, "/a", headers, Some(b"{}".to_vec())).unwrap();
        assert_eq!(
            req.encode().unwrap(),
            br#"l79:{"method":"POST","endpoint":"/a","headers":{"Content-Type":"application/json"}}2:{}e"#
        );
    }

    #[test]
    fn request_validation() {
        let none = Headers::new;
        assert_eq!(
            V4Request::new(HttpMethod::Get, "room", none(), None),
            Err(V4Error::EndpointNotAbsolute)
        );
        assert_eq!(
            V4Request::new(HttpMethod::Delete, "/x", none(), Some(vec![])),
            Err(V4Error::BodyNotAllowed(HttpMethod::Delete))
        );
        assert!(V4Request::parse(b"le").is_err());
        assert!(V4Request::parse(b"l2:{}e").is_err());
        assert!(V4Request::parse(br#"l32:{"method":"GET","endpoint":"/x"}e"#).is_ok());
        assert!(V4Request::parse(br#"l32:{"method":"GET","endpoint":"/x"}0:e"#).is_err());
        assert!(V4Request::parse(br#"l32:{"method":"GET","endpoint":"/x"}e "#).is_err());
        assert!(V4Request::parse(br#"l+32:{"method":"GET","endpoint":"/x"}e"#).is_err());
        assert!(V4Request::parse(br#"l32:{"method":"get","endpoint":"/x"}e"#).is_err());
    }

    #[test]
    fn response_exact_bytes() {
        let resp = V4Response {
            code: 200,
            headers: Headers::from([("content-type".to_owned(), "text/plain".to_owned())]),
            body: b"hi".to_vec(),
        };
        let encoded = resp.encode().unwrap();
        assert_eq!(
            encoded,
            br#"l52:{"code":200,"headers":{"content-type":"text/plain"}}2:hie"#
        );
        assert_eq!(V4Response::parse(&encoded).unwrap(), resp);
        assert_eq!(
            V4Response::parse(b"l10:{\"code\":1}e"),
            Err(V4Error::WrongItemCount {
                expected: "2",
                got: 1
            })
        );
        assert!(V4Response::parse(b"l10:{\"code\":1}0:i1ee").is_err());
        assert!(V4Response::parse(b"l12:{\"code\":1e3}0:e").is_err());
    }
}
