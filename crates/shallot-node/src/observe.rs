//! The observation log, for devnets and audits only: one JSON line per request this node
//! handled, holding exactly what the node could see of it — the TCP peer, the next hop it was
//! told, the accounts and node keys in plaintext. `shallot audit` reads the logs of every node to
//! check that no node links a client's address to an account.
//!
//! It writes what a node must never log otherwise (a client address next to an account), so the
//! node refuses it without devnet settings ([`crate::runtime::start`]) and it is off by default;
//! when off, a handler pays one branch. Nothing is decrypted for it beyond what the node
//! decrypts anyway.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::Response;
use serde::{Deserialize, Serialize};
use shallot_proto::rpc::Request;
use shallot_proto::{AccountId, Ed25519Pub};

use crate::server::ConnInfo;
use crate::state::Node;

/// Largest log a node writes; later records are dropped (with one warning).
pub const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;

/// What the node did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// First hop of an onion (`/onion_req/v2`): the sender connected to it; it relayed the layer.
    OnionGuard,
    /// A later onion hop that relayed the layer to another node.
    OnionRelay,
    /// The last onion hop, which ran the storage RPC inside.
    OnionExit,
    /// The last onion hop holding a waiting retrieve (private push).
    OnionWait,
    /// The last onion hop, which proxied the request to an HTTP server.
    OnionProxy,
    /// A direct `/storage_rpc/v1` request (seed lookups, guard tests).
    StorageRpc,
    /// A swarm peer's copy of a client write (replication).
    Replica,
    /// A swarm handoff batch.
    Handoff,
    /// A push subscription frame on `/monitor/v1`.
    Push,
}

/// The next hop a node was told to pass a request to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHop {
    /// A service node (by Ed25519 key).
    Node(Ed25519Pub),
    /// An HTTP server (its host).
    Server(String),
}

/// One request as one node saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When the request arrived (Unix ms).
    pub at_ms: u64,
    /// When the answer left (Unix ms): a held request's answer is visible too.
    pub done_ms: u64,
    /// The observing node.
    pub node: Ed25519Pub,
    /// What it did.
    pub role: Role,
    /// The TCP peer's address.
    pub peer_ip: IpAddr,
    /// The peer's node key, when it proved one in the TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_node: Option<Ed25519Pub>,
    /// Where it was told to pass the request on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextHop>,
    /// The storage RPC method, when it could read one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Whether the request changes stored messages (a store, delete or expire, or a batch
    /// holding one): what swarm members replicate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writes: bool,
    /// Accounts in plaintext: in the request it read, or in a reply it passed back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountId>,
    /// The plaintext `timestamp` of each message the request stores (ms): what a swarm member
    /// can compare with when a client's guard saw traffic (`shallot bench timing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_timestamps: Vec<u64>,
    /// Node keys named in plaintext in the reply it passed back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_nodes: Vec<Ed25519Pub>,
    /// The HTTP status it answered.
    pub status: u16,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Reply body bytes (0 when unknown).
    pub reply_bytes: u64,
}

/// What a handler saw of one request, filled in as it goes; [`record`] turns it into an
/// [`Observation`]. Inert (every method returns at once) when the node keeps no log.
#[derive(Debug)]
pub struct Seen {
    on: bool,
    role: Role,
    next: Option<NextHop>,
    method: Option<&'static str>,
    writes: bool,
    accounts: Vec<AccountId>,
    store_timestamps: Vec<u64>,
    reply_nodes: Vec<Ed25519Pub>,
    request_bytes: usize,
}

impl Seen {
    /// A blank record for a request handled in `role` (inert unless `node` keeps a log).
    pub fn new(node: &Node, role: Role) -> Self {
        Self {
            on: node.observations.is_some(),
            ..Self::blank(role)
        }
    }

    fn blank(role: Role) -> Self {
        Self {
            on: true,
            role,
            next: None,
            method: None,
            writes: false,
            accounts: Vec::new(),
            store_timestamps: Vec::new(),
            reply_nodes: Vec::new(),
            request_bytes: 0,
        }
    }

    /// Whether anything is being recorded.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Sets the role once the node knows it (an onion layer's kind).
    pub fn role(&mut self, role: Role) {
        self.role = role;
    }

    /// The next hop the node was told.
    pub fn next(&mut self, next: NextHop) {
        if self.on {
            self.next = Some(next);
        }
    }

    /// The request body's size.
    pub fn request_bytes(&mut self, bytes: usize) {
        self.request_bytes = bytes;
    }

    /// The method, every account and every stored message's timestamp of a storage RPC request
    /// (sub-requests included).
    pub fn request(&mut self, request: &Request) {
        if !self.on {
            return;
        }
        self.method.get_or_insert(request.method_name());
        let mut stack = vec![request];
        while let Some(request) = stack.pop() {
            self.writes |= request.is_recursive();
            if let Some(account) = request.account() {
                self.account(*account);
            }
            match request {
                Request::Store(store) => {
                    if let Ok(timestamp) = u64::try_from(store.timestamp) {
                        self.store_timestamps.push(timestamp);
                    }
                }
                Request::Batch(subs) | Request::Sequence(subs) => stack.extend(subs),
                Request::IfElse(r) => stack.extend(r.then.iter().chain(&r.otherwise)),
                _ => {}
            }
        }
    }

    /// An account the node read.
    pub fn account(&mut self, account: AccountId) {
        if self.on && !self.accounts.contains(&account) {
            self.accounts.push(account);
        }
    }

    /// Node keys (64 hex digits) and accounts (66) named in a reply the node passed back: what
    /// a plain-text error tells every earlier hop. Encrypted replies name nothing.
    pub fn reply(&mut self, body: &[u8]) {
        if !self.on {
            return;
        }
        for run in body.split(|b| !b.is_ascii_hexdigit()) {
            let Ok(text) = std::str::from_utf8(run) else {
                continue;
            };
            match run.len() {
                64 => {
                    if let Ok(key) = text.parse::<Ed25519Pub>() {
                        if !self.reply_nodes.contains(&key) {
                            self.reply_nodes.push(key);
                        }
                    }
                }
                66 => {
                    if let Ok(account) = text.parse() {
                        self.account(account);
                    }
                }
                _ => {}
            }
        }
    }
}

/// An append-only JSON-lines file of [`Observation`]s, capped at [`MAX_LOG_BYTES`].
#[derive(Debug)]
pub struct ObservationLog {
    file: Mutex<std::fs::File>,
    written: AtomicU64,
    full: AtomicBool,
}

impl ObservationLog {
    /// Opens (creates, owner-only, or appends to) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            file: Mutex::new(file),
            written: AtomicU64::new(written),
            full: AtomicBool::new(false),
        })
    }

    /// Appends one record as one line (one write, so lines never interleave).
    pub fn append(&self, observation: &Observation) {
        let Ok(mut line) = serde_json::to_vec(observation) else {
            return;
        };
        line.push(b'\n');
        let size = line.len() as u64;
        if self.written.fetch_add(size, Ordering::Relaxed) + size > MAX_LOG_BYTES {
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!("observation log full ({MAX_LOG_BYTES} bytes): no more records");
            }
            return;
        }
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(&line) {
            tracing::warn!(%error, "could not append to the observation log");
        }
    }
}

/// Reads every record of a log file; lines that do not parse are skipped.
pub fn read_log(path: &Path) -> std::io::Result<Vec<Observation>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The address as IPv4 when it is an IPv4-mapped IPv6 address.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// What is seen of one request from its arrival until [`Recorder::finish`]; a request dropped
/// before an answer (its client went away while it was held) is recorded when dropped, with
/// status 499.
pub struct Recorder {
    node: Arc<Node>,
    conn: ConnInfo,
    at_ms: u64,
    seen: Seen,
    done: bool,
}

impl Recorder {
    /// Starts recording a request from `conn`, handled in `role`.
    pub fn new(node: &Arc<Node>, conn: ConnInfo, role: Role) -> Self {
        Self {
            at_ms: node.clock.now_ms(),
            seen: Seen::new(node, role),
            node: node.clone(),
            conn,
            done: false,
        }
    }

    /// What the handler fills in.
    pub fn seen(&mut self) -> &mut Seen {
        &mut self.seen
    }

    /// Records the request with its answer.
    pub fn finish(mut self, response: &Response) {
        self.done = true;
        let seen = std::mem::replace(&mut self.seen, Seen::blank(Role::StorageRpc));
        record_response(&self.node, &self.conn, self.at_ms, seen, response);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.done {
            let seen = std::mem::replace(&mut self.seen, Seen::blank(Role::StorageRpc));
            record(&self.node, &self.conn, self.at_ms, seen, 499, 0);
        }
    }
}

/// Appends what `seen` holds for a request from `conn` that arrived at `at_ms` and got
/// `response`, if the node keeps a log.
pub fn record_response(node: &Node, conn: &ConnInfo, at_ms: u64, seen: Seen, response: &Response) {
    if node.observations.is_none() {
        return;
    }
    let reply_bytes = http_body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    record(
        node,
        conn,
        at_ms,
        seen,
        response.status().as_u16(),
        reply_bytes,
    );
}

/// Appends what `seen` holds for a request from `conn` that arrived at `at_ms` and was answered
/// now with `status`, if the node keeps a log.
pub fn record(node: &Node, conn: &ConnInfo, at_ms: u64, seen: Seen, status: u16, reply_bytes: u64) {
    let Some(log) = &node.observations else {
        return;
    };
    log.append(&Observation {
        at_ms,
        done_ms: node.clock.now_ms(),
        node: node.identity.ed25519_public(),
        role: seen.role,
        peer_ip: plain_ip(conn.remote.ip()),
        peer_node: conn.node,
        next: seen.next,
        method: seen.method.map(str::to_owned),
        writes: seen.writes,
        accounts: seen.accounts,
        store_timestamps: seen.store_timestamps,
        reply_nodes: seen.reply_nodes,
        status,
        request_bytes: seen.request_bytes as u64,
        reply_bytes,
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seen() -> Seen {
        Seen::blank(Role::OnionGuard)
    }

    #[test]
    fn plain_replies_name_keys_and_accounts_and_ciphertext_names_nothing() {
        let key = "ab".repeat(32);
        let account = format!("05{}", "cd".repeat(32));
        let mut s = seen();
        s.reply(format!("502 Next node not reachable: {key}; for {account}").as_bytes());
        assert_eq!(s.reply_nodes, vec![key.parse().unwrap()]);
        assert_eq!(s.accounts, vec![account.parse().unwrap()]);
        let mut s = seen();
        s.reply(&[0x9f; 200]);
        s.reply(format!("{key}0").as_bytes());
        assert!(s.reply_nodes.is_empty() && s.accounts.is_empty());
    }

    #[test]
    fn records_round_trip_through_a_capped_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("observations.jsonl");
        let log = ObservationLog::open(&path).unwrap();
        let record = Observation {
            at_ms: 1,
            done_ms: 2,
            node: Ed25519Pub::from_bytes([1; 32]),
            role: Role::Replica,
            peer_ip: "127.0.0.1".parse().unwrap(),
            peer_node: Some(Ed25519Pub::from_bytes([2; 32])),
            next: Some(NextHop::Server("example.org".into())),
            method: Some("store".into()),
            writes: true,
            accounts: vec![format!("05{}", "cd".repeat(32)).parse().unwrap()],
            store_timestamps: vec![1_700_000_000_000],
            reply_nodes: Vec::new(),
            status: 200,
            request_bytes: 10,
            reply_bytes: 20,
        };
        log.append(&record);
        log.append(&record);
        assert_eq!(read_log(&path).unwrap(), vec![record.clone(), record]);
    }
}
