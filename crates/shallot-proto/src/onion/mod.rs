//! Onion requests (onion-client spec §1–§2): the framing of every layer, hop encryption, building
//! an onion on the client, peeling a layer on a node, and the reply formats.
//!
//! A client [`build_to_node`]s or [`build_to_server`]s and POSTs [`BuiltOnion::body`] to its
//! guard. Each node calls [`parse_onion_request`] (guard) or [`decrypt_layer`] (later hops), then
//! [`DecryptedLayer::classify`] to learn whether to relay, proxy or execute. The destination
//! answers with [`encode_snode_response`] or [`V4Response::seal`], using the layer's reply key,
//! and the client opens the answer with [`decode_snode_response`] or [`V4Response::open`].
//!
//! One wire format per file:
//! - [`framing`]: `LE32(N) || PAYLOAD || JSON`, the shape of every layer and of the outer request.
//! - [`routing`]: the JSON objects in those frames (outer, relay, proxy, final).
//! - [`cipher`]: `enc_type`s, per-layer key derivation and the three ciphertext layouts.
//! - [`response`]: the v3 reply of a service node.
//! - [`v4`]: the bencoded v4 request and reply of an HTTP server.
//! - [`padding`]: size classes for padded requests and replies.
//! - [`builder`] (client) and [`peel`] (node) put these together.

pub mod builder;
pub mod cipher;
pub mod framing;
pub mod padding;
pub mod peel;
pub mod response;
pub mod routing;
pub mod v4;

pub use builder::{
    build_to_node, build_to_node_padded, build_to_server, build_to_server_writing_body, BuildError,
    BuiltOnion, NodeKeys, ServerDestination, MAX_ONION_HOPS,
};
pub use cipher::{shared_secret, CipherError, EncType, HopKey, ResponseKey, Role, X25519Keypair};
pub use framing::{encode_frame, parse_frame, Frame, FramingError, MAX_ONION_SIZE};
pub use peel::{
    classify_layer, classify_peeled, decrypt_layer, is_proxy_target_allowed, parse_onion_request,
    DecryptedLayer, ErrorReply, FinalRequest, Layer, OnionRequest, PeelError, ProxyRequest,
    RelayRequest, RequestError,
};
pub use response::{
    decode_snode_response, encode_hop_error, encode_snode_response, open_hop_error, ReplyBody,
    ReplyFormat, ResponseError, SnodeBody, SnodeResponse,
};
pub use routing::{ProxyProtocol, UnknownProtocol, DEFAULT_PROXY_PORT, V4_TARGET};
pub use v4::{Headers, HttpMethod, V4Error, V4Request, V4Response};
