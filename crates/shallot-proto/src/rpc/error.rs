//! Errors of the client RPC parser (storage RPC spec §1.1 steps 5–6, §2.3, §4). Their `Display`
//! is the exact body text the reference node answers with, so nodes can send it as is.

use std::fmt;

/// Why a request body or its params were rejected. Every variant is answered with HTTP 400 and
/// the `Display` text as body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The body is not JSON.
    #[error("invalid json")]
    InvalidJson,
    /// The body has no string `method` (or is not a JSON object).
    #[error("invalid json: no `method` field")]
    NoMethod,
    /// The body has no object `params`.
    #[error("invalid json: no `params` field")]
    NoParams,
    /// The method is not one the storage server serves.
    #[error("no method {0}")]
    UnknownMethod(String),
    /// The params do not parse for the method.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] ParamError),
}

impl RpcError {
    /// The HTTP status the node answers this error with (400 for every parse error).
    pub const fn status(&self) -> u16 {
        400
    }
}

/// What a field was expected to be, as worded in "expected …" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A JSON boolean.
    Boolean,
    /// A non-negative integer.
    PositiveInteger,
    /// Any integer.
    Integer,
    /// An integer or the string `"all"`.
    IntegerOrAll,
    /// A 16-bit integer (namespace).
    Integer16,
    /// A non-negative integer in milliseconds.
    Timestamp,
    /// A string or an array of strings.
    StringArray,
    /// An integer or an array of integers.
    IntegerArray,
    /// A non-negative integer or an array of them.
    TimestampArray,
    /// A string.
    String,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Boolean => "boolean",
            Self::PositiveInteger => "positive integer",
            Self::Integer => "integer",
            Self::IntegerOrAll => "integer or \"all\"",
            Self::Integer16 => "16-bit integer",
            Self::Timestamp => "integer timestamp (in milliseconds)",
            Self::StringArray => "string array",
            Self::IntegerArray => "integer array",
            Self::TimestampArray => "timestamp array",
            Self::String => "string",
        })
    }
}

/// Which `then`/`else` branch of an `ifelse` request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// The `then` branch.
    Then,
    /// The `else` branch.
    Else,
}

impl Branch {
    /// The params key of the branch.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Then => "then",
            Self::Else => "else",
        }
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Which token list of a (un)revoke request an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenList {
    /// `revoke_subaccount`'s `revoke`.
    Revoke,
    /// `unrevoke_subaccount`'s `unrevoke`.
    Unrevoke,
}

impl fmt::Display for TokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Revoke => "revoke",
            Self::Unrevoke => "unrevoke",
        })
    }
}

/// A parameter error; `Display` is the message after `invalid request: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A required field is absent or null.
    #[error("Required field '{0}' missing")]
    Missing(&'static str),
    /// Neither of two alternative fields is given.
    #[error("Required field '{0}' or '{1}' missing")]
    MissingEither(&'static str, &'static str),
    /// Two mutually exclusive fields are both given.
    #[error("Cannot specify both '{0}' and '{1}'")]
    Both(&'static str, &'static str),
    /// A field has the wrong JSON type.
    #[error("Invalid value given for '{field}': expected {expected}")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// What it should have been.
        expected: Expected,
    },
    /// A namespace outside −32768…32767.
    #[error("Invalid value given for '{0}': value out of range")]
    OutOfRange(&'static str),
    /// A timestamp below 10⁹ ms (most likely given in seconds).
    #[error("Invalid timestamp for '{0}': timestamp must be in milliseconds")]
    NotMilliseconds(&'static str),
    /// A store `timestamp`/`ttl` string that is not a decimal integer; holds the JSON text given.
    #[error("Invalid value given for '{field}': {raw}")]
    NotNumeric {
        /// Field name.
        field: &'static str,
        /// The value as JSON text (quoted).
        raw: String,
    },
    /// `pubkey` is not 66 hex digits or 33 bytes.
    #[error("Pubkey must be 66 hex digits (33 bytes) long")]
    Pubkey,
    /// `get_swarm`'s wording of [`ParamError::Pubkey`].
    #[error("Pubkey must be 66 hex digits/33 bytes long")]
    SwarmPubkey,
    /// `pubkey_ed25519` given for an account whose type byte is not `05`.
    #[error("pubkey_ed25519 is only permitted for 05[...] pubkeys")]
    Ed25519NotPermitted,
    /// `pubkey_ed25519` has 64 characters that are not all hex.
    #[error("invalid pubkey_ed25519: value is not hex")]
    Ed25519NotHex,
    /// `pubkey_ed25519` is neither 64 hex characters nor 32 bytes.
    #[error("Invalid pubkey_ed25519: expected 64 hex char or 32 byte pubkey")]
    Ed25519Length,
    /// `signature` is not 86 (or 88 padded) base64 characters.
    #[error("invalid signature: expected base64 encoded Ed25519 signature")]
    Signature,
    /// `subaccount_sig` is not 86 (or 88 padded) base64 characters.
    #[error("invalid subaccount signature: expected base64 encoded Ed25519 signature")]
    SubaccountSignature,
    /// `subaccount` is not a 48-char base64 or 72-char hex token.
    #[error("invalid subaccount: expected base64 or hex-encoded subaccount token")]
    Subaccount,
    /// `subaccount` given without `subaccount_sig`.
    #[error("invalid subaccount: subaccount_sig is required when using subaccount")]
    SubaccountSigRequired,
    /// A `messages` entry that is not a 43-character base64 hash.
    #[error("invalid message hash: {0}")]
    MessageHash(String),
    /// An empty `messages` list.
    #[error("messages does not contain any message hashes")]
    NoMessages,
    /// Store `data` that is not base64.
    #[error("Invalid 'data' value: not base64 encoded")]
    DataNotBase64,
    /// Store `data` longer than 102 400 base64 characters.
    #[error("Message body exceeds maximum allowed length of 76800 bytes")]
    DataTooLong,
    /// A 43-character `last_hash` that is not base64.
    #[error("Invalid last_hash: not base64")]
    LastHashNotBase64,
    /// A `last_hash` of another length than 43.
    #[error("Invalid last_hash: expected base64 (43 chars)")]
    LastHashLength,
    /// An empty `expiry` array in `expire`.
    #[error("'expiry' does not contain any expiration timestamps")]
    NoExpiries,
    /// An `expire` `expiry` array whose length is neither 1 nor that of `messages`.
    #[error("'expiry' must be a single expiry, or the same length as 'messages'")]
    ExpiryCount,
    /// `expire` with both `shorten` and `extend` true.
    #[error("cannot specify both 'shorten' and 'extend'")]
    ShortenAndExtend,
    /// A (un)revoke entry that is not a 48-char base64 or 72-char hex token.
    #[error("invalid {0}: expected base64 or hex-encoded subaccount tag")]
    Token(TokenList),
    /// More than 50 tokens in one `revoke`.
    #[error("invalid revoke: cannot revoke more than 50 subaccounts at once")]
    TooManyRevocations,
    /// An `oxend_request` endpoint outside the whitelist.
    #[error("Invalid oxend endpoint '{0}'")]
    OxendEndpoint(String),
    /// `batch`/`sequence` without a non-empty `requests` array.
    #[error("Invalid batch request: no valid \"requests\" field")]
    BatchNoRequests,
    /// More than 20 subrequests.
    #[error("Invalid batch request: subrequest limit exceeded")]
    BatchLimit,
    /// A subrequest that is not a JSON object.
    #[error("Invalid batch request: requests must be objects")]
    BatchNotObject,
    /// A subrequest without string `method` and object `params`.
    #[error("Invalid batch request: subrequests must have method/params keys")]
    BatchKeys,
    /// A subrequest naming an unknown method.
    #[error("Invalid batch subrequest: invalid method \"{0}\"")]
    BatchMethod(String),
    /// A `batch`, `sequence` or `ifelse` inside a batch or sequence.
    #[error("Invalid batch subrequest: subrequests may not contain meta-requests")]
    BatchMeta,
    /// `ifelse` without an object `if`.
    #[error("Invalid ifelse request: no valid \"if\" field")]
    IfMissing,
    /// An `if` object without any condition.
    #[error("Invalid ifelse request: must specify at least one \"if\" condition")]
    IfNoCondition,
    /// A `then`/`else` value that is not an object.
    #[error("Invalid ifelse request: {0} must be an object")]
    BranchNotObject(Branch),
    /// A `then`/`else` object without string `method` or without `params`.
    #[error("Invalid ifelse request: {0} must have method/params keys")]
    BranchKeys(Branch),
    /// A `then`/`else` naming an unknown method (the reference prints the key, not the method).
    #[error("Invalid ifelse request method \"{0}\"")]
    BranchMethod(Branch),
    /// Neither `then` nor `else` given.
    #[error("Invalid ifelse request: at least one of \"then\"/\"else\" required")]
    NoBranch,
}
