//! oxend-compatible JSON-RPC (spec §1) over `POST /json_rpc`, the devnet admin methods, and
//! [`serve`], which also produces blocks at the configured interval.
//!
//! Devnet methods (disabled → error 403 when `admin_methods` is off):
//! `devnet_register_service_node {pubkey, operator_fee_bp?, reservations:[{address,amount}],
//! operator_amount?, auth?}`, `devnet_contribute {pubkey, address, amount, auth?}`,
//! `devnet_request_unlock {pubkey, address, auth?}`, `devnet_submit_uptime_proof
//! {<heartbeat fields>, signature}`, `devnet_ledger {}`, `devnet_node_history {pubkey}`,
//! `devnet_test_targets {pubkey}`.
//!
//! Who may call what ([`Caller`]):
//! * The three stake-changing methods need, on the public listener, `auth` = `{t, nonce,
//!   signature}` by the devnet wallet of the acting address ([`crate::auth`]); without it they
//!   fail with [`UNAUTHORIZED`], a replay with [`REPLAYED`]. The admin listener
//!   ([`serve_chain_with_admin`], bearer token) takes them unsigned for any address label.
//! * `storage_server_ping` / `lokinet_ping` must carry `t` and `signature` by `pubkey_ed25519`
//!   ([`SignedPing`]), newer than the node's last ping; uptime proofs and reachability reports
//!   are signed by the node they come from ([`SignedHeartbeat`], [`SignedReport`]), must be
//!   fresh (±5 min) and newer than the sender's previous one, and a report counts only from
//!   an assigned tester ([`ChainState::assigned_testers`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use rand::seq::SliceRandom;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shallot_proto::swarm::SwarmId;
use shallot_proto::Ed25519Pub;

use crate::auth::{Auth, AuthError, StakeAction};
use crate::chain::Chain;
use crate::config::ChainConfig;
use crate::proof::{SignedHeartbeat, SignedPing, SignedReport};
use crate::state::{
    Address, ChainState, Event, EventError, LedgerKind, NodeStatus, Reservation, ServiceNode,
    HARDFORK, SNODE_REVISION,
};
use crate::store::StoreError;

/// A JSON-RPC error (§1.2 codes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    /// Error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    fn invalid_params(message: impl std::fmt::Display) -> Self {
        Self::new(-32602, format!("Invalid params: {message}"))
    }
}

/// JSON-RPC error code of a call that lacks the authentication it needs (no or a bad wallet
/// signature, a label address on the public listener, a stale timestamp, an unsigned ping, a
/// missing or wrong admin token).
pub const UNAUTHORIZED: i64 = 401;
/// JSON-RPC error code of a signed call or ping received before (replay).
pub const REPLAYED: i64 = 409;
/// JSON-RPC error code when too many signed calls arrived within the replay window.
pub const BUSY: i64 = 429;

impl From<AuthError> for RpcError {
    fn from(err: AuthError) -> Self {
        let code = match err {
            AuthError::Replayed => REPLAYED,
            AuthError::Busy => BUSY,
            _ => UNAUTHORIZED,
        };
        let prefix = if code == REPLAYED {
            "Replayed"
        } else {
            "Unauthorized"
        };
        Self::new(code, format!("{prefix}: {err}"))
    }
}

/// Which listener a call arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The public JSON-RPC listener: stake changes must be wallet-signed.
    Public,
    /// The admin listener (token checked): stake changes for any address, unsigned.
    Admin,
}

impl From<EventError> for RpcError {
    fn from(err: EventError) -> Self {
        Self::new(-1, err.to_string())
    }
}

/// Handles one JSON-RPC request body from the public listener.
pub fn handle_body(chain: &Chain, body: &[u8]) -> Value {
    handle_body_as(chain, body, Caller::Public)
}

/// Handles one JSON-RPC request body from `caller`'s listener.
pub fn handle_body_as(chain: &Chain, body: &[u8], caller: Caller) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(request) => handle_as(chain, &request, caller),
        Err(_) => envelope(&Value::Null, Err(RpcError::new(-32700, "Parse error"))),
    }
}

/// Handles one parsed JSON-RPC request from the public listener.
pub fn handle(chain: &Chain, request: &Value) -> Value {
    handle_as(chain, request, Caller::Public)
}

/// Handles one parsed JSON-RPC request from `caller`'s listener.
pub fn handle_as(chain: &Chain, request: &Value, caller: Caller) -> Value {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return envelope(&id, Err(RpcError::new(-32600, "Invalid Request")));
    };
    let params = request.get("params").filter(|p| !p.is_null());
    envelope(&id, dispatch(chain, method, params, caller))
}

/// Checks the wallet signature of a stake-changing call from `caller` (the admin listener
/// needs none) and remembers its nonce.
fn authorize(
    chain: &Chain,
    caller: Caller,
    action: &StakeAction<'_>,
    auth: Option<&Auth>,
) -> Result<(), RpcError> {
    if caller == Caller::Admin {
        return Ok(());
    }
    let Some(auth) = auth else {
        return Err(AuthError::Missing {
            method: action.method(),
            who: action
                .signer()
                .map_or_else(|| "the operator".to_owned(), |a| a.0.clone()),
        }
        .into());
    };
    let now = chain.now();
    chain.lock().nonces.check(action, auth, now)?;
    Ok(())
}

fn envelope(id: &Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": e.code, "message": e.message}}),
    }
}

fn parse<T: DeserializeOwned + Default>(params: Option<&Value>) -> Result<T, RpcError> {
    match params {
        None => Ok(T::default()),
        Some(p) => serde_json::from_value(p.clone()).map_err(RpcError::invalid_params),
    }
}

fn parse_required<T: DeserializeOwned>(params: Option<&Value>) -> Result<T, RpcError> {
    serde_json::from_value(params.cloned().unwrap_or(Value::Null)).map_err(RpcError::invalid_params)
}

#[allow(clippy::too_many_lines)] // One flat method table.
fn dispatch(
    chain: &Chain,
    method: &str,
    params: Option<&Value>,
    caller: Caller,
) -> Result<Value, RpcError> {
    if method.starts_with("devnet_") && !chain.config.admin_methods {
        return Err(RpcError::new(
            403,
            "Forbidden; this command is not available over public RPC",
        ));
    }
    match method {
        "get_service_nodes" | "get_n_service_nodes" | "get_all_service_nodes" => {
            let p = parse(params)?;
            chain.with_state(|s| get_service_nodes(s, &chain.config, &p))
        }
        "get_info" => Ok(chain.with_state(get_info)),
        "get_block_hash" => {
            let p: BlockHashParams = parse_required(params)?;
            chain.with_state(|s| get_block_hash(s, &p))
        }
        "get_staking_requirement" => Ok(chain.with_state(|s| {
            json!({"staking_requirement": s.rules().staking_requirement,
                "height": s.height(), "status": "OK"})
        })),
        "get_service_node_status" => {
            let p: KeyParams = parse_required(params)?;
            chain.with_state(|s| {
                let node = s.node(&p.pubkey).ok_or(EventError::UnknownNode)?;
                Ok(json!({
                    "service_node_state": node_entry(s, &chain.config, node),
                    "height": s.height(),
                    "block_hash": top_hash(s),
                    "status": "OK",
                }))
            })
        }
        "get_service_node_blacklisted_key_images" => Ok(chain.with_state(blacklist)),
        "storage_server_ping" | "lokinet_ping" => ping(chain, method, params),
        "report_peer_status" | "report_peer_storage_server_status" => {
            let report: SignedReport = parse_required(params)?;
            let received_at = chain.now();
            chain.submit(Event::PeerReport {
                report,
                received_at,
            })?;
            Ok(json!({"status": "OK"}))
        }
        "devnet_register_service_node" => {
            let p: RegisterParams = parse_required(params)?;
            let operator_amount = p
                .operator_amount
                .or_else(|| p.reservations.first().map(|r| r.amount))
                .unwrap_or(0);
            let action = StakeAction::Register {
                pubkey: &p.pubkey,
                operator_fee_bp: p.operator_fee_bp,
                reservations: &p.reservations,
                operator_amount,
            };
            authorize(chain, caller, &action, p.auth.as_ref())?;
            submitted(chain.submit(Event::Register {
                pubkey: p.pubkey,
                operator_fee_bp: p.operator_fee_bp,
                reservations: p.reservations,
                operator_amount,
            }))
        }
        "devnet_contribute" => {
            let p: ContributeParams = parse_required(params)?;
            let action = StakeAction::Contribute {
                pubkey: &p.pubkey,
                address: &p.address,
                amount: p.amount,
            };
            authorize(chain, caller, &action, p.auth.as_ref())?;
            submitted(chain.submit(Event::Contribute {
                pubkey: p.pubkey,
                address: p.address,
                amount: p.amount,
            }))
        }
        "devnet_request_unlock" => {
            let p: UnlockParams = parse_required(params)?;
            let action = StakeAction::Unlock {
                pubkey: &p.pubkey,
                address: &p.address,
            };
            authorize(chain, caller, &action, p.auth.as_ref())?;
            submitted(chain.submit(Event::RequestUnlock {
                pubkey: p.pubkey,
                address: p.address,
            }))
        }
        "devnet_submit_uptime_proof" => {
            let proof: SignedHeartbeat = parse_required(params)?;
            let received_at = chain.now();
            submitted(chain.submit(Event::UptimeProof { proof, received_at }))
        }
        "devnet_ledger" => Ok(chain.with_state(|s| {
            let h = s.height();
            let entries: Vec<Value> = s
                .ledger()
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                    let locked = matches!(e.kind, LedgerKind::Slashed { unlock_height } if h < unlock_height);
                    v["locked"] = json!(locked);
                    v
                })
                .collect();
            json!({"height": h, "ledger": entries, "status": "OK"})
        })),
        "devnet_test_targets" => {
            let p: KeyParams = parse_required(params)?;
            let targets = chain.test_targets(&p.pubkey);
            let epoch = chain.with_state(ChainState::assignment_epoch);
            Ok(json!({"epoch": epoch, "targets": targets, "status": "OK"}))
        }
        "devnet_node_history" => {
            let p: KeyParams = parse_required(params)?;
            Ok(chain.with_state(|s| {
                let history: Vec<&crate::state::HistoryEntry> =
                    s.history().iter().filter(|e| e.pubkey == p.pubkey).collect();
                json!({"pubkey": p.pubkey, "history": history, "status": "OK"})
            }))
        }
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

fn submitted(result: Result<u64, EventError>) -> Result<Value, RpcError> {
    let height = result?;
    Ok(json!({"status": "OK", "height": height}))
}

#[derive(Deserialize)]
struct KeyParams {
    pubkey: Ed25519Pub,
}

#[derive(Deserialize)]
struct RegisterParams {
    pubkey: Ed25519Pub,
    #[serde(default)]
    operator_fee_bp: u16,
    reservations: Vec<Reservation>,
    operator_amount: Option<u64>,
    #[serde(default)]
    auth: Option<Auth>,
}

#[derive(Deserialize)]
struct ContributeParams {
    pubkey: Ed25519Pub,
    address: Address,
    amount: u64,
    #[serde(default)]
    auth: Option<Auth>,
}

#[derive(Deserialize)]
struct UnlockParams {
    pubkey: Ed25519Pub,
    address: Address,
    #[serde(default)]
    auth: Option<Auth>,
}

#[derive(Deserialize)]
struct BlockHashParams {
    height: Vec<u64>,
}

/// `storage_server_ping` / `lokinet_ping`: recorded in memory (not on chain), keyed by node.
/// The devnet directory is remote, so (unlike oxend, which trusts its local companion) it
/// takes only pings signed by the node, newer than its last one and within ±5 min.
fn ping(chain: &Chain, method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
    let unsigned = || {
        RpcError::new(
            UNAUTHORIZED,
            format!(
                "Unauthorized: {method} needs pubkey_ed25519, t and signature \
                 (Ed25519 by pubkey_ed25519) on a devnet directory"
            ),
        )
    };
    let has_signature = params.is_some_and(|p| p.get("signature").is_some());
    if !has_signature {
        return Err(unsigned());
    }
    let signed: SignedPing = parse_required(params)?;
    let key = signed.ping.pubkey_ed25519;
    let now = chain.now();
    let mut inner = chain.lock();
    if inner.state.node(&key).is_none() {
        return Err(EventError::UnknownNode.into());
    }
    if !signed.verify(method) {
        return Err(RpcError::new(
            UNAUTHORIZED,
            format!("Unauthorized: invalid {method} signature"),
        ));
    }
    let p = &signed.ping;
    if p.t.abs_diff(now) > inner.state.rules().clock_tolerance_secs {
        return Err(RpcError::new(
            UNAUTHORIZED,
            "Unauthorized: ping timestamp outside the clock tolerance",
        ));
    }
    let entry = inner.pings.entry(key).or_default();
    let storage = method == "storage_server_ping";
    let last_t = if storage {
        &mut entry.storage_ping_t
    } else {
        &mut entry.lokinet_ping_t
    };
    if p.t <= *last_t {
        return Err(RpcError::new(
            REPLAYED,
            "Replayed: ping is not newer than the last accepted one",
        ));
    }
    *last_t = p.t;
    let time = if p.error.is_empty() { now } else { 0 };
    if storage {
        entry.storage_version = p.version;
        entry.last_storage_ping = time;
    } else {
        entry.last_lokinet_ping = time;
    }
    Ok(json!({"status": "OK"}))
}

fn top_hash(s: &ChainState) -> String {
    s.tip().map(|t| hex::encode(t.hash)).unwrap_or_default()
}

fn get_info(s: &ChainState) -> Value {
    json!({
        "height": s.next_height(),
        "target_height": s.next_height(),
        "top_block_hash": top_hash(s),
        "immutable_height": s.height(),
        "hard_fork": HARDFORK,
        "nettype": "devnet",
        "service_node": false,
        "last_storage_server_ping": 0,
        "last_lokinet_ping": 0,
        "status": "OK",
    })
}

fn get_block_hash(s: &ChainState, p: &BlockHashParams) -> Result<Value, RpcError> {
    let &[height] = p.height.as_slice() else {
        return Err(RpcError::invalid_params("expected exactly one height"));
    };
    let hash = s.block_hash(height).ok_or_else(|| {
        RpcError::new(
            -2,
            format!(
                "Requested block height: {height} greater than current top block height: {}",
                s.height()
            ),
        )
    })?;
    Ok(json!(hex::encode(hash)))
}

fn key_image(tag: &[u8], node: &Ed25519Pub, address: &Address, index: usize) -> String {
    let mut h = Blake2b::<U32>::new();
    h.update(tag);
    h.update(node.as_bytes());
    h.update(address.0.as_bytes());
    h.update((index as u64).to_le_bytes());
    hex::encode(h.finalize())
}

/// Slashed stakes still locked, in oxend's blacklist shape (key images are synthetic).
fn blacklist(s: &ChainState) -> Value {
    let list: Vec<Value> = s
        .locked_stakes(s.height())
        .enumerate()
        .map(|(i, e)| {
            let LedgerKind::Slashed { unlock_height } = e.kind else {
                return Value::Null;
            };
            json!({"key_image": key_image(b"slashed", &e.pubkey, &e.address, i),
                "unlock_height": unlock_height, "amount": e.amount})
        })
        .collect();
    json!({"blacklist": list, "status": "OK"})
}

/// Params of `get_service_nodes` (§1.3).
#[derive(Deserialize, Default)]
struct GsnParams {
    #[serde(default)]
    service_node_pubkeys: Vec<String>,
    #[serde(default)]
    active_only: bool,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    fields: Option<Value>,
    #[serde(default)]
    poll_block_hash: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    include_json: bool,
}

/// Which fields to return: all, a set, or all minus a set.
enum Fields {
    All,
    Only(BTreeSet<String>),
    Except(BTreeSet<String>),
}

impl Fields {
    fn parse(value: Option<&Value>) -> Result<Self, RpcError> {
        match value {
            None | Some(Value::Null) => Ok(Self::All),
            Some(Value::Object(map)) => {
                if map.get("all").and_then(Value::as_bool) == Some(true) {
                    return Ok(Self::All);
                }
                let mut set = BTreeSet::new();
                for (k, v) in map {
                    match v {
                        Value::Bool(true) => {
                            set.insert(k.clone());
                        }
                        Value::Bool(false) => {}
                        _ => return Err(RpcError::invalid_params("fields values must be bool")),
                    }
                }
                Ok(Self::Only(set))
            }
            Some(Value::Array(list)) => {
                let mut add = BTreeSet::new();
                let mut remove = BTreeSet::new();
                let mut all = false;
                for item in list {
                    let name = item
                        .as_str()
                        .ok_or_else(|| RpcError::invalid_params("fields must be strings"))?;
                    if let Some(name) = name.strip_prefix('-') {
                        remove.insert(name.to_owned());
                    } else if name == "all" {
                        all = true;
                    } else {
                        add.insert(name.to_owned());
                    }
                }
                if all || add.is_empty() {
                    Ok(Self::Except(remove))
                } else {
                    Ok(Self::Only(&add - &remove))
                }
            }
            Some(_) => Err(RpcError::invalid_params(
                "fields must be an object or a list",
            )),
        }
    }

    fn keep(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(name),
            Self::Except(set) => !set.contains(name),
        }
    }
}

fn get_service_nodes(
    s: &ChainState,
    config: &ChainConfig,
    p: &GsnParams,
) -> Result<Value, RpcError> {
    let fields = Fields::parse(p.fields.as_ref())?;
    let mut wanted = Vec::with_capacity(p.service_node_pubkeys.len());
    for text in &p.service_node_pubkeys {
        let key: Ed25519Pub = text
            .parse()
            .map_err(|_| RpcError::new(-1, format!("invalid pubkey: {text}")))?;
        wanted.push(key);
    }
    let mut result = Map::new();
    let top = top_hash(s);
    for (key, value) in [
        ("height", json!(s.height())),
        ("target_height", json!(s.height())),
        ("block_hash", json!(top)),
        ("hardfork", json!(HARDFORK)),
        ("snode_revision", json!(SNODE_REVISION)),
    ] {
        if fields.keep(key) {
            result.insert(key.to_owned(), value);
        }
    }
    result.insert("status".into(), json!("OK"));
    if let Some(poll) = &p.poll_block_hash {
        result.insert("block_hash".into(), json!(top));
        if poll.eq_ignore_ascii_case(&top) {
            result.insert("unchanged".into(), json!(true));
            return Ok(Value::Object(result));
        }
        result.insert("unchanged".into(), json!(false));
    }
    let selected: Vec<&ServiceNode> = if wanted.is_empty() {
        s.nodes().values().collect()
    } else {
        wanted.iter().filter_map(|k| s.node(k)).collect()
    };
    let mut states: Vec<Value> = selected
        .into_iter()
        .filter(|n| !p.active_only || n.active())
        .map(|n| {
            let mut entry = node_entry(s, config, n);
            if let Value::Object(map) = &mut entry {
                map.retain(|k, _| fields.keep(k));
            }
            entry
        })
        .collect();
    if p.limit != 0 {
        states.shuffle(&mut rand::thread_rng());
        if let Ok(limit) = usize::try_from(p.limit) {
            states.truncate(limit);
        }
    }
    result.insert("service_node_states".into(), Value::Array(states));
    Ok(Value::Object(result))
}

/// One `service_node_states` entry with every §1.3 field.
#[allow(clippy::too_many_lines, clippy::many_single_char_names)] // One flat field list.
pub fn node_entry(s: &ChainState, config: &ChainConfig, n: &ServiceNode) -> Value {
    let h = s.height();
    let now = s.tip().map_or(0, |t| t.timestamp);
    let rules = s.rules();
    let contributors: Vec<Value> = n
        .contributors
        .iter()
        .map(|c| {
            let locked: Vec<Value> = c
                .contributions
                .iter()
                .enumerate()
                .map(|(i, amount)| {
                    json!({
                        "key_image": key_image(b"ki", &n.pubkey, &c.address, i),
                        "key_image_pub_key": key_image(b"kipk", &n.pubkey, &c.address, i),
                        "amount": amount,
                    })
                })
                .collect();
            json!({"amount": c.amount(), "reserved": c.reserved, "address": c.address,
                "locked_contributions": locked})
        })
        .collect();
    let state_height = match n.status {
        NodeStatus::Unfunded => n.state_height,
        NodeStatus::Active { since } => since,
        NodeStatus::Decommissioned { at, .. } => at,
    };
    let portions = u64::try_from(
        u128::from(n.operator_fee_bp) * u128::from(0xffff_ffff_ffff_fffc_u64) / 10_000,
    )
    .unwrap_or(u64::MAX);
    let swarm = if n.active() {
        n.swarm_id
    } else {
        SwarmId::INVALID
    };
    let mut e = json!({
        "service_node_pubkey": n.pubkey,
        "registration_height": n.registration_height,
        "registration_hf_version": HARDFORK,
        "requested_unlock_height": n.requested_unlock_height,
        "last_reward_block_height": n.last_reward_block_height,
        "last_reward_transaction_index": n.last_reward_transaction_index,
        "active": n.active(),
        "funded": n.funded(),
        "state_height": state_height,
        "decommission_count": n.decommission_count,
        "last_decommission_reason_consensus_all": n.last_decommission_reason,
        "last_decommission_reason_consensus_any": n.last_decommission_reason,
        "earned_downtime_blocks": s.credit(n, h),
        "contributors": contributors,
        "total_contributed": n.total_contributed(),
        "total_reserved": n.total_reserved(),
        "staking_requirement": n.staking_requirement,
        "portions_for_operator": portions,
        "operator_address": n.contributors.first().map(|c| c.address.0.clone()).unwrap_or_default(),
        "swarm_id": swarm.0,
        "swarm": format!("{:016x}", swarm.0),
        "last_uptime_proof": n.last_proof_time,
        "storage_server_reachable": !n.storage.failing(now, rules),
        "storage_server_first_unreachable": n.storage.first_unreachable,
        "storage_server_last_unreachable": n.storage.last_unreachable,
        "storage_server_last_reachable": n.storage.last_reachable,
        "lokinet_reachable": !n.lokinet.failing(now, rules),
        "lokinet_first_unreachable": n.lokinet.first_unreachable,
        "lokinet_last_unreachable": n.lokinet.last_unreachable,
        "lokinet_last_reachable": n.lokinet.last_reachable,
        "checkpoint_participation": [],
        "pulse_participation": [],
        "timestamp_participation": [],
        "timesync_status": [],
    });
    let proof_fields = match &n.proof {
        Some(p) => {
            let hb = &p.heartbeat;
            let x25519 = hb.pke.to_x25519().map(|x| x.to_hex()).unwrap_or_default();
            Some(json!({
                "service_node_version": hb.v,
                "lokinet_version": hb.lv,
                "storage_server_version": hb.sv,
                "public_ip": hb.ip.to_string(),
                "storage_port": hb.shp,
                "storage_lmq_port": hb.sop,
                "quorumnet_port": hb.q,
                "pubkey_ed25519": hb.pke,
                "pubkey_x25519": x25519,
            }))
        }
        None if config.omit_missing_proof_fields => None,
        None => Some(json!({
            "service_node_version": [0, 0, 0],
            "lokinet_version": [0, 0, 0],
            "storage_server_version": [0, 0, 0],
            "public_ip": "",
            "storage_port": 0,
            "storage_lmq_port": 0,
            "quorumnet_port": 0,
            "pubkey_ed25519": "",
            "pubkey_x25519": "",
        })),
    };
    if let (Some(Value::Object(extra)), Value::Object(map)) = (proof_fields, &mut e) {
        map.extend(extra);
    }
    e
}

/// The public HTTP routes: `POST /json_rpc` and the legacy `/get_info`.
pub fn router(chain: Arc<Chain>) -> Router {
    Router::new()
        .route("/json_rpc", post(json_rpc))
        .route("/get_info", get(legacy_get_info).post(legacy_get_info))
        .with_state(chain)
}

async fn json_rpc(State(chain): State<Arc<Chain>>, body: Bytes) -> Json<Value> {
    Json(handle_body(&chain, &body))
}

async fn legacy_get_info(State(chain): State<Arc<Chain>>) -> Json<Value> {
    Json(chain.with_state(get_info))
}

/// The admin listener's state: the chain and the token callers must present.
#[derive(Clone)]
struct AdminState {
    chain: Arc<Chain>,
    token: Arc<str>,
}

/// The admin HTTP routes: `POST /json_rpc` with `Authorization: Bearer <token>`; every method,
/// stake changes unsigned. Without the right token: HTTP 401 and JSON-RPC error
/// [`UNAUTHORIZED`].
pub fn admin_router(chain: Arc<Chain>, token: &str) -> Router {
    Router::new()
        .route("/json_rpc", post(admin_json_rpc))
        .with_state(AdminState {
            chain,
            token: Arc::from(token),
        })
}

async fn admin_json_rpc(
    State(admin): State<AdminState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, Json<Value>) {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !crate::auth::token_matches(&admin.token, presented.trim()) {
        let error = RpcError::new(
            UNAUTHORIZED,
            "Unauthorized: the admin listener needs `Authorization: Bearer <token>` with the \
             token from the directory's admin.token file",
        );
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(envelope(&Value::Null, Err(error))),
        );
    }
    (
        axum::http::StatusCode::OK,
        Json(handle_body_as(&admin.chain, &body, Caller::Admin)),
    )
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The chain database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP server failed.
    #[error("directory server: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the chain, produces a block every `block_time` and serves JSON-RPC on `listener`
/// until `shutdown` resolves.
pub async fn serve_with_shutdown(
    config: ChainConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let chain = Arc::new(Chain::open(config)?);
    serve_chain(chain, listener, shutdown).await
}

/// Runs forever: [`serve_with_shutdown`] without a shutdown signal.
pub async fn serve(
    config: ChainConfig,
    listener: tokio::net::TcpListener,
) -> Result<(), ServeError> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Like [`serve_with_shutdown`] for an already opened chain (tests, embedding).
pub async fn serve_chain(
    chain: Arc<Chain>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_chain_with_admin(chain, listener, None, shutdown).await
}

/// The admin listener: where it listens and the token it requires.
#[derive(Debug)]
pub struct AdminListener {
    /// The bound socket (keep it on loopback or a private interface).
    pub listener: tokio::net::TcpListener,
    /// The bearer token (see [`crate::auth::load_or_create_admin_token`]).
    pub token: String,
}

/// Like [`serve_chain`], plus the admin listener if given. Both stop at `shutdown`.
pub async fn serve_chain_with_admin(
    chain: Arc<Chain>,
    listener: tokio::net::TcpListener,
    admin: Option<AdminListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let producer_chain = chain.clone();
    let block_time = chain.config.block_time;
    let producer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(block_time);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = producer_chain.produce_block() {
                tracing::error!(%err, "block production failed");
            }
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin_task = admin.map(|admin| {
        let routes = admin_router(chain.clone(), &admin.token);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(admin.listener, routes)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    });
    let result = axum::serve(listener, router(chain))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    producer.abort();
    if let Some(task) = admin_task {
        if let Ok(Err(err)) = task.await {
            tracing::warn!(%err, "admin listener failed");
        }
    }
    Ok(result?)
}
