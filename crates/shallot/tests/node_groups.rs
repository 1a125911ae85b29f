//! A group's swarm (groups spec §2, storage RPC spec §2.1–§2.7, §4.9, §7.4) against a real
//! three-member swarm of `shallot node` processes, with real group keys and member credentials
//! (`auth_data`, blinded tokens and member signatures from `shallot_proto::group`):
//!
//! - the admin (the `03` group key) stores, retrieves, expires and deletes in −11, 11, 12, 13, 14;
//! - nobody can store or retrieve there without a signature (the spec's status and text);
//! - a member's access follows its token's flags: Read retrieves only, Write stores into every
//!   group namespace (the server does not restrict which) and only extends, Delete deletes and
//!   shortens; tokens of another group, with edited flags, a bad signature or the wrong prefix
//!   are refused;
//! - a revocation by the admin (matched on the whole token) makes every member refuse the member's
//!   store, delete, expire and retrieve, except retrieving −11; an unrevocation restores it; a
//!   member cannot revoke;
//! - a member is pushed group messages over the monitor WebSocket with its blinded key;
//! - `05` accounts: subaccounts work only with the `05` prefix and the owner's `pubkey_ed25519`,
//!   and `pubkey_ed25519` is refused for a group.
//!
//! Each refused request shape is also shown to succeed with the right credential, so a 401 is not
//! the test's own mistake. One network serves every case.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::SinkExt;

use rand::rngs::OsRng;
use serde_json::{json, Map, Value};
use shallot_proto::group::{
    check_kicked, kicked_notice, make_auth_data, subaccount_token, AuthData, GroupAdmin,
};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::subaccount::{SubaccountFlags, SubaccountToken};
use shallot_proto::{AccountId, Ed25519Pub, Identity, Namespace, Signature};
use support::clients::{monitor_ws, next_json, Ws};
use support::{b64, now_ms, user, Net};
use tokio_tungstenite::tungstenite::Message;

const DAY_MS: u64 = 86_400_000;
/// The group namespaces: kicked notices, messages, keys, info, members.
const GROUP_NS: [i16; 5] = [-11, 11, 12, 13, 14];
/// The namespaces a revoked member loses.
const REVOCABLE_NS: [i16; 4] = [11, 12, 13, 14];
const KICKED_NS: i16 = -11;
const MEMBERS: [usize; 3] = [0, 1, 2];

const R: SubaccountFlags = SubaccountFlags::READ;
/// libsession's default member flags.
const RW: SubaccountFlags = SubaccountFlags(0x03);
const RWD: SubaccountFlags = SubaccountFlags(0x07);

/// Who signs a request, and how.
#[derive(Clone, Copy)]
enum By<'a> {
    /// The group key (admin authentication, groups spec §2.1).
    Admin(&'a GroupAdmin),
    /// A member with its `auth_data` (groups spec §2.2).
    Member(&'a Identity, &'a AuthData),
    /// A plain Ed25519 key signing as the account, optionally naming a `pubkey_ed25519`.
    Key(&'a Identity, Option<&'a Ed25519Pub>),
    /// A plain (unblinded) delegate key with a token and the owner's signature over it.
    Delegate {
        key: &'a Identity,
        token: &'a SubaccountToken,
        token_sig: Signature,
        pubkey_ed25519: Option<&'a Ed25519Pub>,
    },
    /// No signature at all.
    Nobody,
}

impl By<'_> {
    /// `params` for `account`, signed over `text`.
    fn sign(self, account: &AccountId, text: &[u8], params: Value) -> Value {
        let mut params = params;
        params["pubkey"] = account.to_hex().into();
        match self {
            By::Admin(admin) => params["signature"] = b64(admin.sign(text).to_bytes()).into(),
            By::Member(member, auth) => {
                let signed = auth.sign_request(member, text).unwrap();
                params["signature"] = b64(signed.signature.to_bytes()).into();
                params["subaccount"] = b64(signed.token.as_bytes()).into();
                params["subaccount_sig"] = b64(signed.subaccount_signature.to_bytes()).into();
            }
            By::Key(key, ed) => {
                params["signature"] = b64(key.sign(text).to_bytes()).into();
                if let Some(ed) = ed {
                    params["pubkey_ed25519"] = ed.to_hex().into();
                }
            }
            By::Delegate {
                key,
                token,
                token_sig,
                pubkey_ed25519,
            } => {
                params["signature"] = b64(key.sign(text).to_bytes()).into();
                params["subaccount"] = b64(token.as_bytes()).into();
                params["subaccount_sig"] = b64(token_sig.to_bytes()).into();
                if let Some(ed) = pubkey_ed25519 {
                    params["pubkey_ed25519"] = ed.to_hex().into();
                }
            }
            By::Nobody => {}
        }
        params
    }
}

// Request builders: each spells out its signed text from storage RPC spec §2.7.

fn store(account: &AccountId, by: By, ns: i16, data: &[u8]) -> Value {
    let t = now_ms();
    by.sign(
        account,
        format!("store{ns}{t}").as_bytes(),
        json!({"namespace": ns, "timestamp": t, "ttl": DAY_MS, "data": b64(data)}),
    )
}

fn retrieve(account: &AccountId, by: By, ns: i16) -> Value {
    let t = now_ms();
    let mut params = json!({"namespace": ns});
    if !matches!(by, By::Nobody) {
        params["timestamp"] = t.into();
    }
    by.sign(account, format!("retrieve{ns}{t}").as_bytes(), params)
}

fn delete(account: &AccountId, by: By, hashes: &[&str]) -> Value {
    by.sign(
        account,
        format!("delete{}", hashes.concat()).as_bytes(),
        json!({"messages": hashes}),
    )
}

/// `mode` is `""`, `"shorten"` or `"extend"`.
fn expire(account: &AccountId, by: By, hashes: &[&str], expiry: u64, mode: &str) -> Value {
    let mut params = json!({"messages": hashes, "expiry": expiry});
    if !mode.is_empty() {
        params[mode] = true.into();
    }
    by.sign(
        account,
        format!("expire{mode}{expiry}{}", hashes.concat()).as_bytes(),
        params,
    )
}

/// `delete_all` (`field` = `timestamp`), `delete_before` (`before`) or `expire_all` (`expiry`)
/// in one namespace, at `time`.
fn by_namespace(account: &AccountId, by: By, method: &str, ns: i16, time: u64) -> Value {
    let field = match method {
        "delete_all" => "timestamp",
        "delete_before" => "before",
        _ => "expiry",
    };
    let mut params = json!({"namespace": ns});
    params[field] = time.into();
    by.sign(account, format!("{method}{ns}{time}").as_bytes(), params)
}

fn get_expiries(account: &AccountId, by: By, hashes: &[&str]) -> Value {
    let t = now_ms();
    by.sign(
        account,
        format!("get_expiries{t}{}", hashes.concat()).as_bytes(),
        json!({"messages": hashes, "timestamp": t}),
    )
}

/// `method` is `revoke_subaccount` or `unrevoke_subaccount`.
fn revocation(account: &AccountId, by: By, method: &str, tokens: &[SubaccountToken]) -> Value {
    let t = now_ms();
    let mut text = format!("{method}{t}").into_bytes();
    for token in tokens {
        text.extend_from_slice(token.as_bytes());
    }
    let list: Vec<String> = tokens.iter().map(|t| b64(t.as_bytes())).collect();
    let key = method.trim_end_matches("_subaccount");
    by.sign(account, &text, json!({key: list, "timestamp": t}))
}

fn hash(account: &AccountId, ns: i16, data: &[u8]) -> String {
    MessageHash::compute(account, Namespace(ns), data).to_string()
}

fn refused(status: u16, text: &str) -> (u16, Value) {
    (status, json!(text))
}

/// Checks a member's base64 signature over `message` with its key `node_hex`.
fn assert_node_sig(node_hex: &str, message: &[u8], signature: &Value) {
    let key: Ed25519Pub = node_hex.parse().unwrap();
    let bytes = shallot_proto::b64::decode(signature.as_str().unwrap()).unwrap();
    let sig = Signature::from_slice(&bytes).unwrap();
    assert!(key.verify(message, &sig), "bad signature from {node_hex}");
}

/// The `swarm` of a recursive answer: one successful entry from each of the three members.
fn every_member_ok(net: &Net, (status, body): &(u16, Value)) -> Map<String, Value> {
    assert_eq!(*status, 200, "{body}");
    let swarm = body["swarm"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    let keys: BTreeSet<&String> = swarm.keys().collect();
    let members: Vec<String> = MEMBERS
        .iter()
        .map(|&i| net.nodes[i].ed25519_hex())
        .collect();
    assert_eq!(keys, members.iter().collect(), "{body}");
    for (key, entry) in swarm {
        assert!(entry.get("failed").is_none(), "{key}: {entry}");
    }
    swarm.clone()
}

/// A member: its Session identity and the `auth_data` an admin issued it.
struct Member {
    id: Identity,
    auth: AuthData,
}

impl Member {
    /// A new member of `admin`'s group with `flags`, checked as a client checks an invite.
    fn new(admin: &GroupAdmin, flags: SubaccountFlags) -> Self {
        let id = user();
        let auth = make_auth_data(admin, &id.session_id(), flags).unwrap();
        auth.verify(&admin.id(), &id, flags).unwrap();
        Self { id, auth }
    }

    fn by(&self) -> By<'_> {
        By::Member(&self.id, &self.auth)
    }

    /// This member's credential with its first four bytes replaced by `head`, re-signed by
    /// `admin` (or keeping the old signature when `admin` is `None`).
    fn edited(&self, head: [u8; 4], admin: Option<&GroupAdmin>) -> AuthData {
        let mut bytes = *self.auth.as_bytes();
        bytes[..4].copy_from_slice(&head);
        let out = AuthData::from_bytes(&bytes).unwrap();
        let Some(admin) = admin else { return out };
        let token = out.token(&self.id.ed25519_public()).unwrap();
        bytes[36..].copy_from_slice(&admin.sign(token.as_bytes()).to_bytes());
        AuthData::from_bytes(&bytes).unwrap()
    }
}

/// The network, the group, its members and the messages the scenario keeps.
struct Fixture {
    net: Net,
    admin: GroupAdmin,
    group: AccountId,
    reader: Member,
    writer: Member,
    deleter: Member,
    /// One admin message per group namespace (in `GROUP_NS` order); −11 holds a kicked notice
    /// for the deleter.
    kept: Vec<String>,
    /// One writer message per group namespace.
    written: Vec<String>,
}

impl Fixture {
    async fn start() -> Self {
        let admin = GroupAdmin::generate(&mut OsRng);
        let f = Self {
            net: Net::start(&[3]).await,
            group: admin.id().account(),
            reader: Member::new(&admin, R),
            writer: Member::new(&admin, RW),
            deleter: Member::new(&admin, RWD),
            admin,
            kept: Vec::new(),
            written: Vec::new(),
        };
        assert_eq!(f.group.to_hex()[..2], *"03");
        assert_eq!(f.net.swarm_of(&f.group), MEMBERS);
        f
    }

    fn by_admin(&self) -> By<'_> {
        By::Admin(&self.admin)
    }

    /// Sends `params` to member `i`.
    async fn rpc(&self, i: usize, method: &str, params: Value) -> (u16, Value) {
        self.net.rpc(i, method, params).await
    }

    /// Stores `data` in `ns` through member `via`; every member must store and sign it.
    async fn stored(&self, via: usize, by: By<'_>, ns: i16, data: &[u8]) -> String {
        let answer = self
            .rpc(via, "store", store(&self.group, by, ns, data))
            .await;
        let h = hash(&self.group, ns, data);
        for (key, entry) in every_member_ok(&self.net, &answer) {
            assert_eq!(entry["hash"], h, "{key}: {entry}");
            assert_node_sig(&key, h.as_bytes(), &entry["signature"]);
        }
        h
    }

    /// What member `i` holds in `ns` (admin-signed retrieve): (hash, expiry), sorted.
    async fn held(&self, i: usize, ns: i16) -> Vec<(String, u64)> {
        let (status, body) = self
            .rpc(i, "retrieve", retrieve(&self.group, self.by_admin(), ns))
            .await;
        assert_eq!(status, 200, "member {i}, ns {ns}: {body}");
        let mut held: Vec<(String, u64)> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let h = m["hash"].as_str().unwrap().to_owned();
                (h, m["expiration"].as_u64().unwrap())
            })
            .collect();
        held.sort();
        held
    }

    /// Every member's holdings in every group namespace.
    async fn snapshot(&self) -> Vec<Vec<(String, u64)>> {
        let mut all = Vec::new();
        for i in MEMBERS {
            for ns in GROUP_NS {
                all.push(self.held(i, ns).await);
            }
        }
        all
    }

    /// The hashes `by` reads from `ns` at member `i` (sorted), or the refusal.
    async fn reads(&self, i: usize, by: By<'_>, ns: i16) -> Result<Vec<String>, (u16, Value)> {
        let (status, body) = self.rpc(i, "retrieve", retrieve(&self.group, by, ns)).await;
        if status != 200 {
            return Err((status, body));
        }
        let mut hashes: Vec<String> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["hash"].as_str().unwrap().to_owned())
            .collect();
        hashes.sort();
        Ok(hashes)
    }

    /// The admin's and the writer's messages in the `k`th group namespace, sorted.
    fn both(&self, k: usize) -> Vec<String> {
        let mut both = vec![self.kept[k].clone(), self.written[k].clone()];
        both.sort();
        both
    }
}

/// 1. The admin stores, retrieves, expires (set, then shorten) and deletes in every group
///    namespace, through a different member each time; every member applies each change.
async fn admin_uses_every_namespace(f: &Fixture) {
    let (net, group, by_admin) = (&f.net, &f.group, f.by_admin());
    for (k, ns) in GROUP_NS.into_iter().enumerate() {
        let via = k % 3;
        let data = format!("admin's short-lived message in {ns}");
        let h = f.stored(via, by_admin, ns, data.as_bytes()).await;
        for i in MEMBERS {
            assert_eq!(f.reads(i, by_admin, ns).await, Ok(vec![h.clone()]), "{i}");
        }
        for (mode, expiry) in [("", now_ms() + 2 * DAY_MS), ("shorten", now_ms() + DAY_MS)] {
            let answer = f
                .rpc(via, "expire", expire(group, by_admin, &[&h], expiry, mode))
                .await;
            for (key, entry) in every_member_ok(net, &answer) {
                assert_eq!(entry["updated"], json!([h]), "{key}: {entry}");
            }
            for i in MEMBERS {
                assert_eq!(f.held(i, ns).await, [(h.clone(), expiry)], "member {i}");
            }
        }
        let answer = f
            .rpc((via + 1) % 3, "delete", delete(group, by_admin, &[&h]))
            .await;
        for (key, entry) in every_member_ok(net, &answer) {
            assert_eq!(entry["deleted"], json!([h]), "{key}: {entry}");
        }
        for i in MEMBERS {
            assert_eq!(f.held(i, ns).await, [], "member {i}, ns {ns}");
        }
    }
}

/// The admin's messages that stay: one per namespace, a real kicked notice in −11.
async fn admin_keeps_one_each(f: &Fixture) -> Vec<String> {
    let notice = kicked_notice(&f.admin, &[f.deleter.id.session_id()], 0, &mut OsRng);
    let mut kept = Vec::new();
    for (k, ns) in GROUP_NS.into_iter().enumerate() {
        let data = if ns == KICKED_NS {
            notice.clone()
        } else {
            format!("admin's message in {ns}").into_bytes()
        };
        kept.push(f.stored(k % 3, f.by_admin(), ns, &data).await);
    }
    kept
}

/// 2. Without a signature, store and retrieve are refused in every group namespace at every
///    member with the spec's status and text; delete and expire need one at parse time.
async fn unsigned_is_refused(f: &Fixture) {
    let (group, kept) = (&f.group, &f.kept[1]);
    let missing = refused(400, "invalid request: Required field 'signature' missing");
    for i in MEMBERS {
        for ns in GROUP_NS {
            assert_eq!(
                f.rpc(i, "store", store(group, By::Nobody, ns, b"anonymous"))
                    .await,
                refused(
                    401,
                    &format!("store: signature required to store to namespace {ns}")
                ),
                "member {i}, ns {ns}"
            );
            assert_eq!(
                f.rpc(i, "retrieve", retrieve(group, By::Nobody, ns)).await,
                missing,
                "member {i}, ns {ns}"
            );
        }
        let params = delete(group, By::Nobody, &[kept]);
        assert_eq!(f.rpc(i, "delete", params).await, missing);
        let params = expire(group, By::Nobody, &[kept], now_ms() + DAY_MS, "");
        assert_eq!(f.rpc(i, "expire", params).await, missing);
    }
}

/// 3. Read only: retrieves every group namespace everywhere; cannot store, expire or delete.
async fn read_only(f: &Fixture) {
    let (group, by_reader, kept) = (&f.group, f.reader.by(), &f.kept[1]);
    for i in MEMBERS {
        for (ns, h) in GROUP_NS.into_iter().zip(&f.kept) {
            assert_eq!(f.reads(i, by_reader, ns).await, Ok(vec![h.clone()]));
        }
        let (status, body) = f
            .rpc(i, "get_expiries", get_expiries(group, by_reader, &[kept]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["expiries"][kept].is_u64(), "{body}");
        for ns in GROUP_NS {
            assert_eq!(
                f.rpc(i, "store", store(group, by_reader, ns, b"by a reader"))
                    .await,
                refused(401, "store signature verification failed"),
            );
        }
        let params = expire(group, by_reader, &[kept], now_ms() + 3 * DAY_MS, "");
        assert_eq!(
            f.rpc(i, "expire", params).await,
            refused(401, "expire: signature verification failed")
        );
        assert_eq!(
            f.rpc(i, "delete", delete(group, by_reader, &[kept])).await,
            refused(401, "delete_msgs signature verification failed")
        );
    }
}

/// Subscribes `member` to every group namespace (with data) on node `i`'s push WebSocket; the
/// socket and the answer.
async fn subscribe(f: &Fixture, i: usize, id: &Identity, auth: &AuthData) -> (Ws, Value) {
    let mut ws = monitor_ws(f.net.nodes[i].addr, None).await;
    let t = now_ms() / 1000;
    let text = format!("MONITOR{}{t}1-11,11,12,13,14", f.group.to_hex());
    let signed = auth.sign_request(id, text.as_bytes()).unwrap();
    let request = json!({"p": f.group.to_hex(), "n": GROUP_NS, "d": 1, "t": t,
        "s": b64(signed.signature.to_bytes()), "S": b64(signed.subaccount_signature.to_bytes()),
        "T": b64(signed.token.as_bytes())});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let answer = next_json(&mut ws, Duration::from_secs(10)).await;
    (ws, answer.expect("an answer to the subscription"))
}

/// 3 (cont.). Push (storage RPC spec §6): a member subscribes to the group's namespaces with its
/// blinded key and is pushed what the admin stores through another member; another group's
/// member is refused.
async fn members_are_pushed(f: &Fixture) {
    let (mut ws, answer) = subscribe(f, 2, &f.reader.id, &f.reader.auth).await;
    assert_eq!(answer, json!({"success": 1}));
    let outsider = Member::new(&GroupAdmin::generate(&mut OsRng), RW);
    let (_, answer) = subscribe(f, 2, &outsider.id, &outsider.auth).await;
    assert_eq!(answer["errcode"], 5, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.starts_with("Subaccount verification failed: "),
        "{answer}"
    );

    let data = b"admin's pushed info";
    let t = now_ms();
    let params = f.by_admin().sign(
        &f.group,
        format!("store13{t}").as_bytes(),
        json!({"namespace": 13, "timestamp": t, "ttl": DAY_MS, "data": b64(data)}),
    );
    every_member_ok(&f.net, &f.rpc(0, "store", params).await);
    let h = hash(&f.group, 13, data);
    let note = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(
        note,
        Some(
            json!({"@": f.group.to_hex(), "h": h, "n": 13, "t": t, "z": t + DAY_MS,
            "~": b64(data)})
        )
    );
    let params = delete(&f.group, f.by_admin(), &[&h]);
    every_member_ok(&f.net, &f.rpc(1, "delete", params).await);
}

/// 4. Read | Write (libsession's default): stores into every group namespace, not only 11
///    (groups spec §2: the server does not restrict which). Returns the writer's messages.
async fn writer_stores_everywhere(f: &Fixture) -> Vec<String> {
    let mut written = Vec::new();
    for (k, ns) in GROUP_NS.into_iter().enumerate() {
        let data = format!("a member's message in {ns}");
        written.push(f.stored(k % 3, f.writer.by(), ns, data.as_bytes()).await);
    }
    written
}

/// 4 (cont.). Everyone reads both messages; the writer extends but never shortens and cannot
/// delete. Then Read | Write | Delete shortens and deletes everywhere, also namespace-wide.
async fn write_and_delete_flags(f: &Fixture) {
    let (net, group, by_writer, by_deleter) = (&f.net, &f.group, f.writer.by(), f.deleter.by());
    for i in MEMBERS {
        for (k, ns) in GROUP_NS.into_iter().enumerate() {
            assert_eq!(f.reads(i, by_writer, ns).await, Ok(f.both(k)), "{i} {ns}");
        }
    }
    let msg = f.written[1].as_str();
    let extended = now_ms() + 3 * DAY_MS;
    let answer = f
        .rpc(0, "expire", expire(group, by_writer, &[msg], extended, ""))
        .await;
    for (key, entry) in every_member_ok(net, &answer) {
        assert_eq!(entry["updated"], json!([msg]), "{key}: {entry}");
    }
    // An earlier expiry without `shorten` is applied as extend-only: nothing changes.
    let earlier = extended - DAY_MS;
    let answer = f
        .rpc(1, "expire", expire(group, by_writer, &[msg], earlier, ""))
        .await;
    for (key, entry) in every_member_ok(net, &answer) {
        assert_eq!(entry["updated"], json!([]), "{key}: {entry}");
    }
    for i in MEMBERS {
        assert!(f.held(i, 11).await.contains(&(msg.to_owned(), extended)));
        let params = expire(group, by_writer, &[msg], earlier, "shorten");
        assert_eq!(
            f.rpc(i, "expire", params).await,
            refused(
                400,
                "expire: shorten parameter cannot be used with this subaccount token (missing \
                 delete access)"
            )
        );
        assert_eq!(
            f.rpc(i, "delete", delete(group, by_writer, &[msg])).await,
            refused(401, "delete_msgs signature verification failed")
        );
    }

    // Read | Write | Delete.
    let answer = f
        .rpc(
            2,
            "expire",
            expire(group, by_deleter, &[msg], earlier, "shorten"),
        )
        .await;
    for (key, entry) in every_member_ok(net, &answer) {
        assert_eq!(entry["updated"], json!([msg]), "{key}: {entry}");
    }
    for i in MEMBERS {
        assert!(f.held(i, 11).await.contains(&(msg.to_owned(), earlier)));
    }
    let answer = f.rpc(1, "delete", delete(group, by_deleter, &[msg])).await;
    for (key, entry) in every_member_ok(net, &answer) {
        assert_eq!(entry["deleted"], json!([msg]), "{key}: {entry}");
    }
    for i in MEMBERS {
        let left: Vec<String> = f.held(i, 11).await.into_iter().map(|(h, _)| h).collect();
        assert_eq!(left, [f.kept[1].clone()], "member {i}");
    }
    // The namespace-wide methods need Delete too (storage RPC spec §2.6).
    for (method, time) in namespace_wide() {
        for i in MEMBERS {
            assert_eq!(
                f.rpc(i, method, by_namespace(group, by_writer, method, 14, time))
                    .await,
                refused(401, &format!("{method} signature verification failed")),
                "member {i}"
            );
        }
    }
    let params = by_namespace(group, by_deleter, "delete_all", 14, now_ms());
    let answer = f.rpc(0, "delete_all", params).await;
    for (key, entry) in every_member_ok(net, &answer) {
        assert_eq!(entry["deleted"], json!(f.both(4)), "{key}: {entry}");
    }
    for i in MEMBERS {
        assert_eq!(f.held(i, 14).await, [], "member {i}");
    }
}

/// `delete_all`, `delete_before` and `expire_all` with a valid time for each.
fn namespace_wide() -> [(&'static str, u64); 3] {
    [
        ("delete_all", now_ms()),
        ("delete_before", now_ms()),
        ("expire_all", now_ms() + DAY_MS / 2),
    ]
}

/// 5. Forged or misdirected credentials change nothing and get the spec's texts.
async fn forgeries_are_refused(f: &Fixture) {
    let (group, admin, writer) = (&f.group, &f.admin, &f.writer);
    let before = f.snapshot().await;
    let other_admin = GroupAdmin::generate(&mut OsRng);
    let outsider = Member::new(&other_admin, RWD);
    // Read | Write issued, Delete claimed without the group's signature.
    let upstart = Member::new(admin, RW);
    let claimed = upstart.edited([0x03, 0x07, 0, 0], None);
    // The group's signature with one bit flipped.
    let mut bad_sig = *writer.auth.as_bytes();
    bad_sig[99] ^= 0x01;
    let bad_sig = AuthData::from_bytes(&bad_sig).unwrap();
    // A token for `05` accounts, signed by the group.
    let wrong_prefix = writer.edited([0x05, 0x07, 0, 0], Some(admin));
    let forgeries = [
        (
            "another group's member",
            By::Member(&outsider.id, &outsider.auth),
        ),
        ("flags not granted", By::Member(&upstart.id, &claimed)),
        ("bad token signature", By::Member(&writer.id, &bad_sig)),
        ("a 05 token", By::Member(&writer.id, &wrong_prefix)),
        ("another group's admin", By::Admin(&other_admin)),
        ("a member's own key as the group", By::Key(&writer.id, None)),
    ];
    for (what, by) in forgeries {
        for i in MEMBERS {
            assert_eq!(
                f.rpc(i, "store", store(group, by, 11, what.as_bytes()))
                    .await,
                refused(401, "store signature verification failed"),
                "{what} at {i}"
            );
            assert_eq!(
                f.reads(i, by, 11).await,
                Err(refused(401, "retrieve signature verification failed")),
                "{what} at {i}"
            );
            assert_eq!(
                f.rpc(i, "delete", delete(group, by, &[&f.kept[1]])).await,
                refused(401, "delete_msgs signature verification failed"),
                "{what} at {i}"
            );
        }
    }
    // A member's request signature over another text (namespace 12, sent as 11).
    let mut params = retrieve(group, writer.by(), 12);
    params["namespace"] = 11.into();
    assert_eq!(
        f.rpc(0, "retrieve", params).await,
        refused(401, "retrieve signature verification failed")
    );
    // The token's other spellings and parse rules (storage RPC spec §2.3): 72 hex characters
    // work; an empty token counts as absent (the member's signature is then checked against the
    // group key); a token without `subaccount_sig` is a parse error.
    let mut params = retrieve(group, writer.by(), 11);
    let token = writer.auth.token(&writer.id.ed25519_public()).unwrap();
    params["subaccount"] = hex::encode(token.as_bytes()).into();
    assert_eq!(f.rpc(0, "retrieve", params.clone()).await.0, 200);
    params["subaccount"] = "".into();
    assert_eq!(
        f.rpc(0, "retrieve", params.clone()).await,
        refused(401, "retrieve signature verification failed")
    );
    params["subaccount"] = hex::encode(token.as_bytes()).into();
    params.as_object_mut().unwrap().remove("subaccount_sig");
    assert_eq!(
        f.rpc(0, "retrieve", params).await,
        refused(
            400,
            "invalid request: invalid subaccount: subaccount_sig is required when using subaccount"
        )
    );
    // `pubkey_ed25519` is for `05` accounts only.
    let writer_ed = writer.id.ed25519_public();
    assert_eq!(
        f.reads(0, By::Key(&writer.id, Some(&writer_ed)), 11).await,
        Err(refused(
            400,
            "invalid request: pubkey_ed25519 is only permitted for 05[...] pubkeys"
        ))
    );
    // The spec's any-prefix flag (never set by libsession) does let a `05` token in.
    let any_prefix = writer.edited([0x05, 0x0b, 0, 0], Some(admin));
    assert_eq!(
        f.reads(1, By::Member(&writer.id, &any_prefix), KICKED_NS)
            .await,
        Ok(f.both(0))
    );
    assert_eq!(f.snapshot().await, before, "forgeries changed something");
}

/// 6. Only the admin revokes: members' revocations (with their subaccount, which revocations
///    ignore, or with their own key) are refused everywhere. A revocation with other flags than
///    were issued revokes nothing: the server matches whole tokens (groups spec §2.3, ⚠ §9.6).
async fn only_whole_admin_revocations_count(f: &Fixture, deleter_token: SubaccountToken) {
    let (group, by_deleter) = (&f.group, f.deleter.by());
    for i in MEMBERS {
        for by in [f.writer.by(), by_deleter, By::Key(&f.writer.id, None)] {
            let params = revocation(group, by, "revoke_subaccount", &[deleter_token]);
            assert_eq!(
                f.rpc(i, "revoke_subaccount", params).await,
                refused(401, "revoke_subaccount signature verification failed")
            );
        }
    }
    let not_issued = subaccount_token(&f.admin, &f.deleter.id.session_id(), RW).unwrap();
    let params = revocation(group, f.by_admin(), "revoke_subaccount", &[not_issued]);
    every_member_ok(&f.net, &f.rpc(0, "revoke_subaccount", params).await);
    for i in MEMBERS {
        let held: Vec<String> = f.held(i, 11).await.into_iter().map(|(h, _)| h).collect();
        assert_eq!(f.reads(i, by_deleter, 11).await, Ok(held), "member {i}");
    }
}

/// 7. Revoked through one member, the deleter is refused by every member for everything but
///    retrieving −11, where its kicked notice waits; nothing changes; other members keep access.
async fn revoked_member_reads_only_kicked(f: &Fixture, deleter_token: SubaccountToken) {
    let (group, by_deleter) = (&f.group, f.deleter.by());
    let params = revocation(group, f.by_admin(), "revoke_subaccount", &[deleter_token]);
    let mut signed = format!("{}{}", group.to_hex(), params["timestamp"]).into_bytes();
    signed.extend_from_slice(deleter_token.as_bytes());
    // The entry member answers after every member applied it; each signs it.
    let answer = f.rpc(1, "revoke_subaccount", params).await;
    for (key, entry) in every_member_ok(&f.net, &answer) {
        assert_eq!(entry.as_object().unwrap().len(), 1, "{key}: {entry}");
        assert_node_sig(&key, &signed, &entry["signature"]);
    }
    let before = f.snapshot().await;
    let fresh = f.written[2].as_str();
    for i in MEMBERS {
        for ns in GROUP_NS {
            assert_eq!(
                f.rpc(i, "store", store(group, by_deleter, ns, b"revoked"))
                    .await,
                refused(401, "store signature verification failed"),
                "member {i}, ns {ns}"
            );
        }
        assert_eq!(
            f.rpc(i, "delete", delete(group, by_deleter, &[fresh]))
                .await,
            refused(401, "delete_msgs signature verification failed"),
            "member {i}"
        );
        for mode in ["", "shorten", "extend"] {
            let params = expire(group, by_deleter, &[fresh], now_ms() + DAY_MS / 2, mode);
            assert_eq!(
                f.rpc(i, "expire", params).await,
                refused(401, "expire: signature verification failed"),
                "member {i}, {mode:?}"
            );
        }
        assert_eq!(
            f.rpc(i, "get_expiries", get_expiries(group, by_deleter, &[fresh]))
                .await,
            refused(401, "get_expiries signature verification failed"),
        );
        for (method, time) in namespace_wide() {
            assert_eq!(
                f.rpc(i, method, by_namespace(group, by_deleter, method, 12, time))
                    .await,
                refused(401, &format!("{method} signature verification failed")),
                "member {i}"
            );
        }
        for ns in REVOCABLE_NS {
            assert_eq!(
                f.reads(i, by_deleter, ns).await,
                Err(refused(401, "retrieve signature verification failed")),
                "member {i}, ns {ns}"
            );
        }
        let (status, body) = f
            .rpc(i, "retrieve", retrieve(group, by_deleter, KICKED_NS))
            .await;
        assert_eq!(status, 200, "member {i}: {body}");
        let messages = body["messages"].as_array().unwrap();
        let notice = messages
            .iter()
            .find(|m| m["hash"] == f.kept[0])
            .unwrap_or_else(|| panic!("{body}"));
        let data = shallot_proto::b64::decode(notice["data"].as_str().unwrap()).unwrap();
        check_kicked(&data, &f.deleter.id, &f.admin.id(), Some(0)).unwrap();
        assert!(f.reads(i, f.writer.by(), 11).await.is_ok(), "member {i}");
    }
    // A kicked client's poll, one batch in desktop's order: only −11 answers.
    let requests: Vec<Value> = [-11, 11, 13, 14, 12]
        .into_iter()
        .map(|ns| json!({"method": "retrieve", "params": retrieve(group, by_deleter, ns)}))
        .collect();
    let (status, body) = f.rpc(0, "batch", json!({"requests": requests})).await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["code"])
        .collect();
    assert_eq!(codes, [200, 401, 401, 401, 401], "{body}");
    assert_eq!(
        f.snapshot().await,
        before,
        "a revoked member changed something"
    );
}

/// 8. Unrevoked through another member: every member serves the deleter again.
async fn unrevoked_member_is_back(f: &Fixture, deleter_token: SubaccountToken) {
    let (group, by_deleter) = (&f.group, f.deleter.by());
    let params = revocation(group, f.by_admin(), "unrevoke_subaccount", &[deleter_token]);
    let answer = f.rpc(2, "unrevoke_subaccount", params).await;
    for (key, entry) in every_member_ok(&f.net, &answer) {
        assert_eq!(entry["count"], 1, "{key}: {entry}");
    }
    for i in MEMBERS {
        assert!(f.reads(i, by_deleter, 12).await.is_ok(), "member {i}");
    }
    let back = f
        .stored(0, by_deleter, 11, b"back after unrevocation")
        .await;
    let answer = f
        .rpc(2, "delete", delete(group, by_deleter, &[&back]))
        .await;
    every_member_ok(&f.net, &answer);
}

/// 9. `05` accounts (storage RPC spec §2.1, §2.5): a subaccount needs the owner's
///    `pubkey_ed25519` (the account bytes are an X25519 key) and a `05` token; a member's group
///    credential does not open its own account; only the owner revokes. (Namespace 11 is just a
///    private namespace to the server, whatever the account.)
async fn session_accounts(f: &Fixture) {
    let owner = user();
    let account: AccountId = owner.session_id().into();
    let owner_ed = owner.ed25519_public();
    let delegate = user();
    let token_05 = SubaccountToken::new(0x05, RWD, &delegate.ed25519_public());
    let token_03 = SubaccountToken::new(0x03, RWD, &delegate.ed25519_public());
    let as_delegate = |token: &'static str, with_ed: bool| {
        let token = if token == "05" { &token_05 } else { &token_03 };
        By::Delegate {
            key: &delegate,
            token,
            token_sig: token.sign(&owner),
            pubkey_ed25519: with_ed.then_some(&owner_ed),
        }
    };
    let data = b"delegated";
    let params = store(&account, as_delegate("05", true), 11, data);
    every_member_ok(&f.net, &f.rpc(0, "store", params).await);
    let mine = hash(&account, 11, data);
    let (status, body) = f
        .rpc(
            1,
            "retrieve",
            retrieve(&account, as_delegate("05", true), 11),
        )
        .await;
    assert_eq!((status, &body["messages"][0]["hash"]), (200, &json!(mine)));
    let group_auth = make_auth_data(&f.admin, &owner.session_id(), RWD).unwrap();
    for (by, what) in [
        (as_delegate("03", true), "a 03 token"),
        (as_delegate("05", false), "no pubkey_ed25519"),
        (
            By::Member(&owner, &group_auth),
            "the owner's group credential",
        ),
    ] {
        for i in MEMBERS {
            assert_eq!(
                f.rpc(i, "store", store(&account, by, 11, what.as_bytes()))
                    .await,
                refused(401, "store signature verification failed"),
                "{what} at {i}"
            );
            assert_eq!(
                f.rpc(i, "retrieve", retrieve(&account, by, 11)).await,
                refused(401, "retrieve signature verification failed"),
                "{what} at {i}"
            );
        }
    }
    let params = revocation(
        &account,
        as_delegate("05", true),
        "revoke_subaccount",
        &[token_05],
    );
    assert_eq!(
        f.rpc(0, "revoke_subaccount", params).await,
        refused(401, "revoke_subaccount signature verification failed")
    );
    let by_owner = By::Key(&owner, Some(&owner_ed));
    let params = revocation(&account, by_owner, "revoke_subaccount", &[token_05]);
    every_member_ok(&f.net, &f.rpc(0, "revoke_subaccount", params).await);
    for i in MEMBERS {
        assert_eq!(
            f.rpc(
                i,
                "retrieve",
                retrieve(&account, as_delegate("05", true), 11)
            )
            .await,
            refused(401, "retrieve signature verification failed"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_swarm_auth_follows_the_spec() {
    let started = Instant::now();
    let mut f = Fixture::start().await;
    admin_uses_every_namespace(&f).await;
    f.kept = admin_keeps_one_each(&f).await;
    unsigned_is_refused(&f).await;
    read_only(&f).await;
    members_are_pushed(&f).await;
    f.written = writer_stores_everywhere(&f).await;
    write_and_delete_flags(&f).await;
    forgeries_are_refused(&f).await;

    // The admin recomputes the deleter's token without the deleter's help.
    let deleter_token = subaccount_token(&f.admin, &f.deleter.id.session_id(), RWD).unwrap();
    let issued = f.deleter.auth.token(&f.deleter.id.ed25519_public());
    assert_eq!(Ok(deleter_token), issued);
    only_whole_admin_revocations_count(&f, deleter_token).await;
    revoked_member_reads_only_kicked(&f, deleter_token).await;
    unrevoked_member_is_back(&f, deleter_token).await;
    session_accounts(&f).await;
    eprintln!("group swarm scenario: {:?}", started.elapsed());
}
