//! GroupKeys messages (namespace 12, groups spec §3): the signed bencoded dicts that carry each
//! generation's symmetric group key to the admins (`K`) and to every member (`k`, padded with
//! junk to a multiple of 75 entries so the member count stays hidden), and the supplemental
//! messages (`+`) that hand existing keys to newly added members. Pure and deterministic.

use std::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::hash::{h24, h32, h56};
use super::identity::{GroupAdmin, GroupId, SeedHash};
use super::multi::{aead_open, aead_seal, decrypt_for_multiple, encrypt_for_multiple, NONCE_LEN};
use super::signed::{open_signed, sign_dict, SignedError};
use crate::bencode::{Dict, Value};
use crate::identity::{Identity, SessionId, X25519Pub};

/// Full key messages carry a multiple of this many member entries.
pub const MESSAGE_KEY_MULTIPLE: usize = 75;
/// Length of each encrypted key copy: 32-byte key + 16-byte tag.
pub const KEY_COPY_LEN: usize = 48;
/// Shortest supplement entry libsession accepts (52 + 16).
pub const MIN_SUPPLEMENT_ENTRY: usize = 68;
/// The hash key of rekey and supplement derivations.
const KEY_GEN: &[u8] = b"SessionGroupKeyGen";
/// The domain of the per-member key copies.
const MEMBER_KEY: &[u8] = b"SessionGroupKeyMemberKey";
/// The hash key of the junk-entry seed.
const JUNK: &[u8] = b"SessionGroupJunkMembers";

/// A symmetric group key (32 bytes). Secret: zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey(Zeroizing<[u8; 32]>);

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_slice().cmp(other.0.as_slice())
    }
}

impl GroupKey {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key bytes. Secret.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

/// One held key: its generation, the swarm timestamp of the message that delivered it, the key.
/// Ordered as libsession keeps them: `(generation, timestamp, key)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyEntry {
    /// The generation (0 for the group's first key).
    pub generation: u64,
    /// Storage timestamp (ms) of the message that delivered the key.
    pub timestamp_ms: i64,
    /// The key.
    pub key: GroupKey,
}

/// Why a key message could not be built, parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// The bencode or the group signature is bad: a forged or corrupted message.
    #[error(transparent)]
    Signed(#[from] SignedError),
    /// Signed by the group, but not laid out as a key message.
    #[error("invalid key message: {0}")]
    Layout(&'static str),
    /// The admin copy `K` does not open with this admin's key.
    #[error("admin key copy does not decrypt")]
    AdminCopy,
    /// A supplement's decrypted key list is malformed.
    #[error("invalid supplemental key list: {0}")]
    Supplement(&'static str),
    /// A supplement needs at least one recipient with a usable key.
    #[error("no valid supplement recipient")]
    NoRecipients,
    /// There is no key to give.
    #[error("no keys to supplement")]
    NoKeys,
}

/// A full key message (`rekey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullKeyMessage {
    /// `#`: the nonce of every copy.
    pub nonce: [u8; NONCE_LEN],
    /// `G`: the key's generation.
    pub generation: u64,
    /// `K`: the key encrypted for admins.
    pub admin_copy: [u8; KEY_COPY_LEN],
    /// `k`: member copies then junk, a multiple of [`MESSAGE_KEY_MULTIPLE`] entries.
    pub member_copies: Vec<[u8; KEY_COPY_LEN]>,
}

/// A supplemental key message (`key_supplement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplementMessage {
    /// `#`: the nonce of every entry.
    pub nonce: [u8; NONCE_LEN],
    /// `G`: the generation of the newest key included.
    pub generation: u64,
    /// `+`: one encrypted key list per recipient.
    pub copies: Vec<Vec<u8>>,
}

/// A verified namespace-12 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMessage {
    /// A new key for everyone.
    Full(FullKeyMessage),
    /// Old keys for new members.
    Supplement(SupplementMessage),
}

fn get<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    dict.get(key.as_bytes())
}

fn fixed<const N: usize>(value: Option<&Value>, error: &'static str) -> Result<[u8; N], KeysError> {
    value
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(KeysError::Layout(error))
}

fn generation(dict: &Dict) -> Result<u64, KeysError> {
    get(dict, "G")
        .and_then(Value::as_int)
        .and_then(|g| u64::try_from(g).ok())
        .ok_or(KeysError::Layout("\"G\" must be a non-negative integer"))
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

impl KeyMessage {
    /// Verifies the group signature and reads the layout (groups spec §3.3 steps 1–3).
    pub fn parse(bytes: &[u8], group: &GroupId) -> Result<Self, KeysError> {
        let dict = open_signed(bytes, group)?;
        let nonce = fixed::<NONCE_LEN>(get(&dict, "#"), "\"#\" must be a 24-byte nonce")?;
        if let Some(plus) = get(&dict, "+") {
            let copies = plus
                .as_list()
                .ok_or(KeysError::Layout("\"+\" must be a list"))?
                .iter()
                .map(|v| {
                    v.as_bytes()
                        .filter(|b| b.len() >= MIN_SUPPLEMENT_ENTRY)
                        .map(<[u8]>::to_vec)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(KeysError::Layout("a \"+\" entry is too short"))?;
            return Ok(Self::Supplement(SupplementMessage {
                nonce,
                generation: generation(&dict)?,
                copies,
            }));
        }
        let generation = generation(&dict)?;
        let admin_copy = fixed::<KEY_COPY_LEN>(get(&dict, "K"), "\"K\" must be 48 bytes")?;
        let member_copies = get(&dict, "k")
            .and_then(Value::as_list)
            .ok_or(KeysError::Layout("\"k\" must be a list"))?
            .iter()
            .map(|v| fixed::<KEY_COPY_LEN>(Some(v), "a \"k\" entry must be 48 bytes"))
            .collect::<Result<Vec<_>, _>>()?;
        if member_copies.len() % MESSAGE_KEY_MULTIPLE != 0 {
            return Err(KeysError::Layout("\"k\" length is not a multiple of 75"));
        }
        Ok(Self::Full(FullKeyMessage {
            nonce,
            generation,
            admin_copy,
            member_copies,
        }))
    }

    /// The generation `G`.
    pub const fn generation(&self) -> u64 {
        match self {
            Self::Full(m) => m.generation,
            Self::Supplement(m) => m.generation,
        }
    }

    /// The signed serialization.
    pub fn encode(&self, admin: &GroupAdmin) -> Vec<u8> {
        let mut dict = Dict::new();
        match self {
            Self::Full(m) => {
                dict.insert(b"#".to_vec(), Value::from(m.nonce.as_slice()));
                dict.insert(b"G".to_vec(), int(m.generation));
                dict.insert(b"K".to_vec(), Value::from(m.admin_copy.as_slice()));
                let copies = m.member_copies.iter().map(|c| Value::from(c.as_slice()));
                dict.insert(b"k".to_vec(), Value::List(copies.collect()));
            }
            Self::Supplement(m) => {
                dict.insert(b"#".to_vec(), Value::from(m.nonce.as_slice()));
                dict.insert(
                    b"+".to_vec(),
                    Value::List(m.copies.iter().cloned().map(Value::Bytes).collect()),
                );
                dict.insert(b"G".to_vec(), int(m.generation));
            }
        }
        sign_dict(&dict, admin)
    }
}

/// The member-side key that opens this member's copies: `X25519(b, gx_pk)` hashed with
/// [`MEMBER_KEY`], via the multi-recipient scheme with the group as sender.
fn member_open(
    copies: impl IntoIterator<Item = impl AsRef<[u8]>>,
    nonce: &[u8; NONCE_LEN],
    member: &Identity,
    group: &GroupId,
) -> Option<Vec<u8>> {
    let sender = group.x25519().ok()?;
    let copies: Vec<_> = copies.into_iter().collect();
    decrypt_for_multiple(
        copies.iter().map(AsRef::as_ref),
        nonce,
        member.x25519_secret(),
        &sender,
        MEMBER_KEY,
    )
}

fn member_seal<'m>(
    admin: &GroupAdmin,
    recipients: &[SessionId],
    nonce: &[u8; NONCE_LEN],
    message: impl FnMut(usize) -> &'m [u8],
) -> Vec<Vec<u8>> {
    let keys: Vec<X25519Pub> = recipients.iter().map(|m| *m.x25519()).collect();
    let secret: &StaticSecret = admin.x25519_secret();
    encrypt_for_multiple(secret, &keys, nonce, MEMBER_KEY, message)
}

impl FullKeyMessage {
    /// The admin side: decrypts `K` with the admin key.
    pub fn open_admin(&self, admin: &GroupAdmin) -> Result<GroupKey, KeysError> {
        let admin_key = admin.seed_hash(SeedHash::AdminKey);
        aead_open(&admin_key, &self.nonce, &self.admin_copy)
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .map(GroupKey::from_bytes)
            .ok_or(KeysError::AdminCopy)
    }

    /// The member side: trial-decrypts every entry (real or junk); `None` if none is ours.
    pub fn open_member(&self, member: &Identity, group: &GroupId) -> Option<GroupKey> {
        let key = member_open(&self.member_copies, &self.nonce, member, group)?;
        <[u8; 32]>::try_from(key.as_slice())
            .ok()
            .map(GroupKey::from_bytes)
    }
}

/// What [`rekey`] produces: the new key and the message to store in namespace 12.
#[derive(Debug, Clone)]
pub struct Rekey {
    /// The new key's generation.
    pub generation: u64,
    /// The new key.
    pub key: GroupKey,
    /// The signed key message.
    pub message: Vec<u8>,
}

/// Builds a full key message for generation `generation` and every entry of the members config
/// (deduplicated and sorted here; removed members must be left out by the caller, ⚠ §9.5).
/// Deterministic: two admins making the same change produce the same bytes.
pub fn rekey(admin: &GroupAdmin, members: &[SessionId], generation: u64) -> Rekey {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let ids: Vec<String> = sorted.iter().map(ToString::to_string).collect();
    let key_seed = admin.seed_hash(SeedHash::KeySeed);
    let gen_text = generation.to_string();
    let mut parts: Vec<&[u8]> = ids.iter().map(String::as_bytes).collect();
    parts.push(gen_text.as_bytes());
    parts.push(key_seed.as_slice());
    let h1 = Zeroizing::new(h56(KEY_GEN, &parts));
    let mut key = [0u8; 32];
    key.copy_from_slice(&h1[..32]);
    let key = GroupKey::from_bytes(key);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&h1[32..]);

    let admin_key = admin.seed_hash(SeedHash::AdminKey);
    let admin_copy = to_copy(&aead_seal(&admin_key, &nonce, key.as_bytes()));
    let mut member_copies: Vec<[u8; KEY_COPY_LEN]> =
        member_seal(admin, &sorted, &nonce, |_| key.as_bytes())
            .iter()
            .map(|c| to_copy(c))
            .collect();
    let junk_count =
        (MESSAGE_KEY_MULTIPLE - member_copies.len() % MESSAGE_KEY_MULTIPLE) % MESSAGE_KEY_MULTIPLE;
    if junk_count > 0 {
        let sk = admin.secret_key_bytes();
        let seed = Zeroizing::new(h32(JUNK, &[h1.as_slice(), sk.as_slice()]));
        let junk = deterministic_random(&seed, junk_count * KEY_COPY_LEN);
        member_copies.extend(junk.chunks_exact(KEY_COPY_LEN).map(to_copy));
    }
    let message = KeyMessage::Full(FullKeyMessage {
        nonce,
        generation,
        admin_copy,
        member_copies,
    })
    .encode(admin);
    Rekey {
        generation,
        key,
        message,
    }
}

fn to_copy(bytes: &[u8]) -> [u8; KEY_COPY_LEN] {
    let mut out = [0u8; KEY_COPY_LEN];
    out.copy_from_slice(bytes);
    out
}

/// libsodium's `randombytes_buf_deterministic`: the ChaCha20-IETF keystream under `seed` with
/// nonce `"LibsodiumDRG"`.
fn deterministic_random(seed: &[u8; 32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut cipher = ChaCha20::new(seed.into(), b"LibsodiumDRG".into());
    cipher.apply_keystream(&mut out);
    out
}

/// The bencoded key list a supplement carries: `[{g, k, t}…]` in `(generation, timestamp, key)`
/// order.
fn encode_supplement_keys(keys: &[KeyEntry]) -> Vec<u8> {
    let mut sorted: Vec<&KeyEntry> = keys.iter().collect();
    sorted.sort();
    Value::List(
        sorted
            .into_iter()
            .map(|k| {
                let mut d = Dict::new();
                d.insert(b"g".to_vec(), int(k.generation));
                d.insert(b"k".to_vec(), Value::from(k.key.as_bytes().as_slice()));
                d.insert(b"t".to_vec(), Value::Int(k.timestamp_ms));
                Value::Dict(d)
            })
            .collect(),
    )
    .encode()
}

fn decode_supplement_keys(bytes: &[u8]) -> Result<Vec<KeyEntry>, KeysError> {
    let bad = KeysError::Supplement;
    let Value::List(items) = Value::decode(bytes).map_err(|_| bad("not bencode"))? else {
        return Err(bad("not a list"));
    };
    items
        .iter()
        .map(|item| {
            let d = item.as_dict().ok_or(bad("entry is not a dict"))?;
            let generation = get(d, "g")
                .and_then(Value::as_int)
                .and_then(|g| u64::try_from(g).ok())
                .ok_or(bad("\"g\" must be a non-negative integer"))?;
            let key = get(d, "k")
                .and_then(Value::as_bytes)
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or(bad("\"k\" must be 32 bytes"))?;
            let timestamp_ms = get(d, "t")
                .and_then(Value::as_int)
                .ok_or(bad("\"t\" must be an integer"))?;
            Ok(KeyEntry {
                generation,
                timestamp_ms,
                key: GroupKey::from_bytes(key),
            })
        })
        .collect()
}

/// Builds a supplemental key message giving `keys` to `recipients` (encrypted in the order
/// given, and the nonce hashes that order, ⚠ §9.4).
pub fn key_supplement(
    admin: &GroupAdmin,
    keys: &[KeyEntry],
    recipients: &[SessionId],
) -> Result<Vec<u8>, KeysError> {
    let generation = keys
        .iter()
        .map(|k| k.generation)
        .max()
        .ok_or(KeysError::NoKeys)?;
    let supp = Zeroizing::new(encode_supplement_keys(keys));
    let ids: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    let key_seed = admin.seed_hash(SeedHash::KeySeed);
    let mut parts: Vec<&[u8]> = ids.iter().map(String::as_bytes).collect();
    parts.push(&supp);
    parts.push(key_seed.as_slice());
    let nonce = h24(KEY_GEN, &parts);
    let copies = member_seal(admin, recipients, &nonce, |_| &supp);
    if copies.is_empty() {
        return Err(KeysError::NoRecipients);
    }
    Ok(KeyMessage::Supplement(SupplementMessage {
        nonce,
        generation,
        copies,
    })
    .encode(admin))
}

impl SupplementMessage {
    /// The member side: the keys in the entry meant for us, `Ok(None)` if none is.
    pub fn open_member(
        &self,
        member: &Identity,
        group: &GroupId,
    ) -> Result<Option<Vec<KeyEntry>>, KeysError> {
        match member_open(&self.copies, &self.nonce, member, group) {
            Some(plain) => decode_supplement_keys(&Zeroizing::new(plain)).map(Some),
            None => Ok(None),
        }
    }
}
