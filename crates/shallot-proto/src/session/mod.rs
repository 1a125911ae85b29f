//! Session protocol message crypto (onion-client spec §4).
//!
//! A plain-text DM travels as a [`Content`] protobuf → [`pad`] → [`encrypt_for_recipient`]
//! (sign, then seal to the recipient) → [`Envelope`] → [`WebSocketMessage`]; [`envelope`] does
//! the whole stack both ways. Config messages use the separate deterministic symmetric scheme in
//! [`config_crypto`].
//!
//! - [`encrypt`]: sign-then-seal encryption and its deterministic variant (§4.2).
//! - [`padding`]: the `160·k − 1` padding (§4.5).
//! - [`protos`]: the protobuf messages (§4.5), generated from our own `proto/session.proto`.
//! - [`envelope`]: wrapping and unwrapping a DM (§4.5).
//! - [`config_crypto`]: config-message encryption (§4.4).
//! - [`config_message`]: user config messages (profile, contacts): layout, padding, compression,
//!   sealed with [`config_crypto`].
//! - [`config_diff`]: the config data rules, pruning and the diff between versions.
//! - [`config_views`]: typed views of config data (profile, contacts).
//! - [`config_merge`]: which config versions are current, and merging concurrent ones.

pub mod config_crypto;
pub mod config_diff;
pub mod config_merge;
pub mod config_message;
pub mod config_views;
pub mod encrypt;
pub mod envelope;
pub mod padding;
pub mod protos;

pub use config_crypto::{
    decrypt_config, encrypt_config, ConfigCryptoError, ConfigDomain, CONFIG_ENCRYPTION_OVERHEAD,
};
pub use config_merge::{apply_diff, current_versions, next_base, NextBase};
pub use config_message::{
    config_hash, config_padded_size, open_config, open_config_full, pad_config, seal_config,
    strip_config_padding, BencodeError, ConfigError, ConfigKind, ConfigMessage, ConfigSignature,
    ContactEntry, Contacts, Dict, ExpiryMode, LaggedDiff, OpenedConfig, ParsedConfig,
    ProfilePictureTimes, UserProfile, Value, LAG_WINDOW, MAX_DECOMPRESSED_CONFIG,
};
pub use encrypt::{
    decrypt_incoming, encrypt_for_recipient, encrypt_for_recipient_deterministic, DecryptError,
    Decrypted, EncryptError, ENCRYPTION_OVERHEAD,
};
pub use envelope::{
    unwrap_incoming, wrap_for_recipient, IncomingMessage, UnwrapError, WrapError, MESSAGE_PATH,
    MESSAGE_VERB,
};
pub use padding::{pad, padded_len, unpad, unpad_lenient, PaddingError, PADDING_BLOCK};
pub use protos::{Content, Envelope, EnvelopeType, WebSocketMessage};
