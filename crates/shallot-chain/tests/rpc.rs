//! JSON-RPC tests: a golden `get_service_nodes` answer from a fixed event log, error handling
//! without state change, and a real socket round trip with block production.

#![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use shallot_chain::auth::{wallet_address, StakeAction};
use shallot_chain::proof::Ping;
use shallot_chain::rpc::{handle, handle_as, BUSY, REPLAYED, UNAUTHORIZED};
use shallot_chain::{
    Address, Caller, Chain, ChainConfig, Heartbeat, PeerReport, Reservation, TestKind, OXEN,
};
use shallot_proto::Ed25519Pub;

const T0: u64 = 1_700_000_000;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn pk(i: u8) -> Ed25519Pub {
    Ed25519Pub::from_bytes(key(i).verifying_key().to_bytes())
}

fn config() -> ChainConfig {
    ChainConfig {
        block_time: Duration::from_secs(2),
        time_scale: 60,
        ..ChainConfig::default()
    }
}

/// A chain with a manual clock.
fn chain_at(config: ChainConfig) -> (Chain, Arc<AtomicU64>) {
    let clock = Arc::new(AtomicU64::new(T0));
    let c = clock.clone();
    let chain = Chain::open_with_clock(config, Box::new(move || c.load(Ordering::SeqCst))).unwrap();
    (chain, clock)
}

fn call(chain: &Chain, method: &str, params: Value) -> Value {
    handle(
        chain,
        &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
    )
}

/// A call on the admin listener (token already checked by the HTTP layer).
fn admin_ok(chain: &Chain, method: &str, params: Value) -> Value {
    let reply = handle_as(
        chain,
        &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        Caller::Admin,
    );
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

fn ok(chain: &Chain, method: &str, params: Value) -> Value {
    let reply = call(chain, method, params);
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

fn err_code(chain: &Chain, method: &str, params: Value) -> i64 {
    let reply = call(chain, method, params);
    assert_eq!(reply["id"], 7);
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("{method}: no error: {reply}"))
}

fn heartbeat(i: u8, t: u64) -> Value {
    let hb = Heartbeat {
        ip: Ipv4Addr::new(127, 0, 0, i),
        lv: [0, 9, 11],
        pke: pk(i),
        q: 38_000 + u16::from(i),
        shp: 22_000 + u16::from(i),
        sop: 22_100 + u16::from(i),
        sv: [2, 8, 0],
        t,
        v: [10, 6, 0],
    };
    serde_json::to_value(hb.sign(&key(i))).unwrap()
}

fn advance(chain: &Chain, clock: &AtomicU64) {
    clock.fetch_add(2, Ordering::SeqCst);
    chain.produce_block().unwrap();
}

/// Node 1 fully staked by its operator + a proof; node 2 registered with a partial stake and
/// two contributors (one reserved spot still open).
fn golden_chain() -> Chain {
    let (chain, clock) = chain_at(config());
    admin_ok(
        &chain,
        "devnet_register_service_node",
        json!({
            "pubkey": pk(1), "operator_fee_bp": 500,
            "reservations": [{"address": "T6op1", "amount": 100 * OXEN}]
        }),
    );
    admin_ok(
        &chain,
        "devnet_register_service_node",
        json!({
            "pubkey": pk(2),
            "reservations": [{"address": "T6op2", "amount": 30 * OXEN},
                             {"address": "T6res", "amount": 20 * OXEN}]
        }),
    );
    advance(&chain, &clock);
    admin_ok(
        &chain,
        "devnet_contribute",
        json!({"pubkey": pk(2), "address": "T6free", "amount": 10 * OXEN}),
    );
    ok(&chain, "devnet_submit_uptime_proof", heartbeat(1, T0 + 2));
    advance(&chain, &clock);
    advance(&chain, &clock);
    chain
}

#[test]
fn get_service_nodes_matches_golden() {
    let chain = golden_chain();
    let result = ok(&chain, "get_service_nodes", json!({}));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/get_service_nodes.json"
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Entries are in pubkey order here; oxend's order is unspecified but ours is stable.
    assert_eq!(result, golden);
    // The existing parser accepts it: the unfunded node is skipped.
    let view = shallot_directory::NetworkView::from_get_service_nodes(&result).unwrap();
    assert_eq!(view.nodes().len(), 1);
    assert_eq!(view.hardfork, (19, 4));
}

#[test]
fn fields_filters_and_polling() {
    let chain = golden_chain();
    let r = ok(
        &chain,
        "get_n_service_nodes",
        json!({
            "active_only": true, "fields": {"public_ip": true, "swarm_id": true, "height": true}
        }),
    );
    assert_eq!(r["height"], 3);
    assert!(r.get("block_hash").is_none());
    let states = r["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0], json!({"public_ip": "127.0.0.1", "swarm_id": 0}));

    let r = ok(
        &chain,
        "get_all_service_nodes",
        json!({"fields": ["-contributors", "all"]}),
    );
    let entry = &r["service_node_states"][1];
    assert!(entry.get("contributors").is_none() && entry.get("swarm").is_some());
    assert!(r.get("hardfork").is_some());
    let r = ok(
        &chain,
        "get_service_nodes",
        json!({"fields": ["swarm", "-swarm_id"]}),
    );
    assert_eq!(
        r["service_node_states"][0],
        json!({"swarm": "ffffffffffffffff"})
    );

    let r = ok(
        &chain,
        "get_service_nodes",
        json!({"service_node_pubkeys": [pk(2), pk(9)]}),
    );
    assert_eq!(r["service_node_states"].as_array().unwrap().len(), 1);
    assert_eq!(r["service_node_states"][0]["funded"], false);

    let r = ok(&chain, "get_service_nodes", json!({"limit": 1}));
    assert_eq!(r["service_node_states"].as_array().unwrap().len(), 1);

    let top = r["block_hash"].as_str().unwrap().to_owned();
    let r = ok(&chain, "get_service_nodes", json!({"poll_block_hash": top}));
    assert_eq!(r["unchanged"], true);
    assert!(r.get("service_node_states").is_none());
    let r = ok(
        &chain,
        "get_service_nodes",
        json!({"poll_block_hash": "00".repeat(32)}),
    );
    assert_eq!(r["unchanged"], false);
    assert_eq!(r["service_node_states"].as_array().unwrap().len(), 2);

    assert_eq!(
        ok(&chain, "get_block_hash", json!({"height": [3]})),
        json!(top)
    );
    let info = ok(&chain, "get_info", json!(null));
    assert_eq!(
        (info["height"].clone(), info["top_block_hash"].clone()),
        (json!(4), json!(top))
    );
    let req = ok(&chain, "get_staking_requirement", json!({}));
    assert_eq!(req["staking_requirement"], 100 * OXEN);
    let status = ok(&chain, "get_service_node_status", json!({"pubkey": pk(1)}));
    assert_eq!(status["service_node_state"]["active"], true);
}

#[test]
fn bad_requests_are_errors_and_change_nothing() {
    let chain = golden_chain();
    let snapshot = || ok(&chain, "get_service_nodes", json!({}));
    let before = snapshot();
    let bad = |method: &str, params: Value| err_code(&chain, method, params);

    assert_eq!(bad("no_such_method", json!({})), -32601);
    assert_eq!(
        handle(&chain, &json!({"jsonrpc": "2.0", "id": 1}))["error"]["code"],
        -32600
    );
    assert_eq!(
        shallot_chain::rpc::handle_body(&chain, b"{not json")["error"]["code"],
        -32700
    );
    assert_eq!(
        bad("get_service_nodes", json!({"active_only": "yes"})),
        -32602
    );
    assert_eq!(bad("get_service_nodes", json!({"fields": 3})), -32602);
    assert_eq!(
        bad("get_service_nodes", json!({"service_node_pubkeys": ["zz"]})),
        -1
    );
    assert_eq!(bad("get_block_hash", json!({"height": [99]})), -2);
    assert_eq!(bad("get_block_hash", json!({"height": "x"})), -32602);
    assert_eq!(
        bad(
            "devnet_contribute",
            json!({"pubkey": pk(2), "address": "x", "amount": -5})
        ),
        -32602
    );

    // Forged proof (signed by another key), stale proof, replayed proof.
    let mut forged = heartbeat(1, T0 + 4);
    forged["signature"] = heartbeat(3, T0 + 4)["signature"].clone();
    assert_eq!(bad("devnet_submit_uptime_proof", forged), -1);
    assert_eq!(
        bad("devnet_submit_uptime_proof", heartbeat(1, T0 - 1000)),
        -1
    );
    assert_eq!(bad("devnet_submit_uptime_proof", heartbeat(1, T0 + 2)), -1);
    // A heartbeat accepted into the pending block cannot be replayed before it is mined.
    ok(&chain, "devnet_submit_uptime_proof", heartbeat(1, T0 + 5));
    let reply = call(&chain, "devnet_submit_uptime_proof", heartbeat(1, T0 + 5));
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("replay"));

    // Reports: from a non-member, unsigned by the reporter, about an unknown node.
    let report = |reporter: u8, signer: u8, target: u8| {
        let r = PeerReport {
            kind: TestKind::Storage,
            pubkey: pk(target),
            passed: false,
            reporter: pk(reporter),
            t: T0 + 4,
        };
        serde_json::to_value(r.sign(&key(signer))).unwrap()
    };
    let reply = call(&chain, "report_peer_status", report(2, 2, 1));
    assert_eq!(reply["error"]["code"], -1);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an active"));
    assert_eq!(bad("report_peer_status", report(1, 3, 2)), -1);
    let reply = call(&chain, "report_peer_status", report(1, 1, 9));
    assert_eq!(reply["error"]["message"], "Pubkey not found");
    assert_eq!(
        bad("report_peer_status", json!({"type": "storage"})),
        -32602
    );
    // Contribution rule violations (on the admin listener, where labels are allowed).
    let admin_bad = |method: &str, params: Value| {
        handle_as(
            &chain,
            &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
            Caller::Admin,
        )["error"]["code"]
            .clone()
    };
    assert_eq!(
        admin_bad(
            "devnet_contribute",
            json!({"pubkey": pk(1), "address": "x", "amount": OXEN})
        ),
        -1
    );
    assert_eq!(
        admin_bad(
            "devnet_register_service_node",
            json!({"pubkey": pk(4),
        "reservations": [{"address": "a", "amount": OXEN}]})
        ),
        -1
    );
    // The same calls unsigned on the public listener are refused before any rule check.
    assert_eq!(
        bad(
            "devnet_contribute",
            json!({"pubkey": pk(1), "address": "x", "amount": OXEN})
        ),
        UNAUTHORIZED
    );

    // The one accepted proof aside, nothing changed.
    assert_eq!(snapshot(), before);
    // A valid report from the active node is accepted.
    ok(&chain, "report_peer_status", report(1, 1, 2));
}

#[test]
fn admin_methods_can_be_disabled() {
    let (chain, _clock) = chain_at(ChainConfig {
        admin_methods: false,
        ..config()
    });
    assert_eq!(err_code(&chain, "devnet_ledger", json!({})), 403);
    ok(&chain, "get_info", json!({}));
}

#[test]
fn ledger_and_history_views() {
    let chain = golden_chain();
    let ledger = ok(&chain, "devnet_ledger", json!({}));
    let entries = ledger["ledger"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["kind"], "staked");
    let history = ok(&chain, "devnet_node_history", json!({"pubkey": pk(1)}));
    let changes: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["registered", "activated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_a_socket_and_produces_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChainConfig {
        block_time: Duration::from_millis(50),
        data_dir: Some(dir.path().to_owned()),
        ..ChainConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/json_rpc", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shallot_chain::serve_with_shutdown(
        config.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let post = |body: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let resp = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "application/json");
            resp.json::<Value>().await.unwrap()
        }
    };
    let wallet = key(40);
    let operator = wallet_address(&wallet);
    let reservations = vec![Reservation {
        address: operator.clone(),
        amount: 100 * OXEN,
    }];
    let auth = StakeAction::Register {
        pubkey: &pk(1),
        operator_fee_bp: 0,
        reservations: &reservations,
        operator_amount: 100 * OXEN,
    }
    .sign(&wallet, shallot_chain::chain::system_clock());
    let reply = post(
        json!({"jsonrpc": "2.0", "id": "a", "method": "devnet_register_service_node",
        "params": {"pubkey": pk(1), "reservations": reservations, "auth": auth}}),
    )
    .await;
    assert_eq!(reply["id"], "a");
    assert_eq!(reply["result"]["status"], "OK");
    // Desktop's seed request (no id) sees the node once a block has been produced.
    let mut states = Vec::new();
    for _ in 0..100 {
        let reply = post(json!({"jsonrpc": "2.0", "method": "get_n_service_nodes",
            "params": {"active_only": true, "fields": {"public_ip": true, "height": true}}}))
        .await;
        states = reply["result"]["service_node_states"]
            .as_array()
            .unwrap()
            .clone();
        if !states.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(states, vec![json!({"public_ip": ""})]);
    let reply = post(json!({"jsonrpc": "2.0", "id": 1, "method": "nope"})).await;
    assert_eq!(reply["error"]["code"], -32601);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    // Restart on the same data dir: the node is still there.
    let chain = Chain::open(config).unwrap();
    assert!(chain.with_state(|s| s
        .node(&pk(1))
        .is_some_and(shallot_chain::state::ServiceNode::active)));
}

/// Registers `n` nodes (keys 1..=n) with full stakes from labels, via the admin listener,
/// and produces a block so they are active.
fn chain_with_active_nodes(n: u8) -> (Chain, Arc<AtomicU64>) {
    let (chain, clock) = chain_at(config());
    for i in 1..=n {
        admin_ok(
            &chain,
            "devnet_register_service_node",
            json!({"pubkey": pk(i), "reservations": [{"address": format!("op{i}"), "amount": 100 * OXEN}]}),
        );
    }
    advance(&chain, &clock);
    (chain, clock)
}

fn ledger_len(chain: &Chain) -> usize {
    ok(chain, "devnet_ledger", json!({}))["ledger"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn stake_changes_need_the_wallet_signature_and_cannot_be_replayed() {
    let (chain, clock) = chain_at(config());
    let now = || clock.load(Ordering::SeqCst);
    let wallet = key(50);
    let me = wallet_address(&wallet);
    let reservations = vec![Reservation {
        address: me.clone(),
        amount: 100 * OXEN,
    }];
    let register = StakeAction::Register {
        pubkey: &pk(1),
        operator_fee_bp: 0,
        reservations: &reservations,
        operator_amount: 100 * OXEN,
    };
    let params = |auth: Option<shallot_chain::auth::Auth>| {
        let mut p = json!({"pubkey": pk(1), "reservations": reservations});
        if let Some(auth) = auth {
            p["auth"] = serde_json::to_value(auth).unwrap();
        }
        p
    };
    let refused = |method: &str, params: Value| {
        let reply = call(&chain, method, params);
        (
            reply["error"]["code"].as_i64().unwrap(),
            reply["error"]["message"].as_str().unwrap().to_owned(),
        )
    };
    // Unsigned, signed by another wallet, signed for other params: refused.
    let (code, message) = refused("devnet_register_service_node", params(None));
    assert_eq!(code, UNAUTHORIZED);
    assert!(message.contains("needs params.auth"), "{message}");
    let forged = register.sign(&key(51), now());
    assert_eq!(
        refused("devnet_register_service_node", params(Some(forged))).0,
        UNAUTHORIZED
    );
    let mut cheap = params(Some(register.sign(&wallet, now())));
    cheap["operator_fee_bp"] = json!(9000);
    assert_eq!(
        refused("devnet_register_service_node", cheap).0,
        UNAUTHORIZED
    );
    // Too old.
    let old = register.sign(&wallet, now() - 301);
    assert_eq!(
        refused("devnet_register_service_node", params(Some(old))).0,
        UNAUTHORIZED
    );
    advance(&chain, &clock);
    assert_eq!(ledger_len(&chain), 0);

    // Signed by the operator's wallet: accepted once; the same signed call again is a replay.
    let signed = params(Some(register.sign(&wallet, now())));
    ok(&chain, "devnet_register_service_node", signed.clone());
    let (code, message) = refused("devnet_register_service_node", signed);
    assert_eq!(code, REPLAYED);
    assert!(message.starts_with("Replayed"), "{message}");
    advance(&chain, &clock);
    assert_eq!(ledger_len(&chain), 1);

    // Unlock: a stranger who knows the public operator address cannot; the wallet can, once.
    let unlock = StakeAction::Unlock {
        pubkey: &pk(1),
        address: &me,
    };
    let body = |auth: Option<shallot_chain::auth::Auth>| {
        let mut p = json!({"pubkey": pk(1), "address": me});
        if let Some(auth) = auth {
            p["auth"] = serde_json::to_value(auth).unwrap();
        }
        p
    };
    assert_eq!(refused("devnet_request_unlock", body(None)).0, UNAUTHORIZED);
    assert_eq!(
        refused(
            "devnet_request_unlock",
            body(Some(unlock.sign(&key(52), now())))
        )
        .0,
        UNAUTHORIZED
    );
    // A label address (admin-only) cannot be acted for on the public listener at all.
    let label = Address("op-label".into());
    let labelled = StakeAction::Contribute {
        pubkey: &pk(1),
        address: &label,
        amount: OXEN,
    };
    let (code, message) = refused(
        "devnet_contribute",
        json!({"pubkey": pk(1), "address": "op-label", "amount": OXEN,
            "auth": labelled.sign(&wallet, now())}),
    );
    assert_eq!(code, UNAUTHORIZED);
    assert!(message.contains("not a devnet wallet address"), "{message}");
    advance(&chain, &clock);
    let status = ok(&chain, "get_service_node_status", json!({"pubkey": pk(1)}));
    assert_eq!(status["service_node_state"]["requested_unlock_height"], 0);

    let signed = body(Some(unlock.sign(&wallet, now())));
    ok(&chain, "devnet_request_unlock", signed.clone());
    advance(&chain, &clock);
    let status = ok(&chain, "get_service_node_status", json!({"pubkey": pk(1)}));
    assert_ne!(status["service_node_state"]["requested_unlock_height"], 0);
    assert_eq!(refused("devnet_request_unlock", signed).0, REPLAYED);
    assert_ne!(BUSY, REPLAYED);
}

fn report_from(reporter: u8, target: u8, passed: bool, t: u64) -> Value {
    let r = PeerReport {
        kind: TestKind::Storage,
        pubkey: pk(target),
        passed,
        reporter: pk(reporter),
        t,
    };
    serde_json::to_value(r.sign(&key(reporter))).unwrap()
}

#[test]
fn only_assigned_testers_count_and_reports_are_not_counted_twice() {
    // 14 active nodes: each node has 10 assigned testers, so 3 others are not assigned.
    let (chain, clock) = chain_with_active_nodes(14);
    let now = clock.load(Ordering::SeqCst);
    let target = pk(1);
    let assigned = chain.with_state(|s| s.assigned_testers(&target, s.assignment_epoch()));
    assert_eq!(assigned.len(), 10);
    let outsider = (2..=14).find(|&i| !assigned.contains(&pk(i))).unwrap();
    let insider = (2..=14).find(|&i| assigned.contains(&pk(i))).unwrap();

    let reply = call(
        &chain,
        "report_peer_status",
        report_from(outsider, 1, false, now),
    );
    assert_eq!(reply["error"]["code"], -1);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an assigned tester"));
    // The assignment rule is public: the tester can ask for its targets.
    let targets = ok(
        &chain,
        "devnet_test_targets",
        json!({"pubkey": pk(insider)}),
    );
    assert!(targets["targets"]
        .as_array()
        .unwrap()
        .contains(&json!(target)));

    let good = report_from(insider, 1, false, now);
    ok(&chain, "report_peer_status", good.clone());
    // The same report again (before or after it is mined) is not counted twice.
    let reply = call(&chain, "report_peer_status", good.clone());
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("replay"));
    advance(&chain, &clock);
    let reply = call(&chain, "report_peer_status", good);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("replay"));
    let node = chain.with_state(|s| s.node(&target).unwrap().clone());
    assert_eq!(node.storage.first_unreachable, now);
    // Stale (outside the 5-min window) is refused.
    let reply = call(
        &chain,
        "report_peer_status",
        report_from(insider, 1, false, now - 400),
    );
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tolerance"));
}

#[test]
fn pings_must_be_signed_fresh_and_new() {
    let (chain, clock) = chain_with_active_nodes(1);
    let now = clock.load(Ordering::SeqCst);
    let ping = |t: u64, signer: u8| {
        let p = Ping {
            version: [2, 8, 0],
            pubkey_ed25519: pk(1),
            error: String::new(),
            https_port: 443,
            omq_port: 0,
            t,
        };
        serde_json::to_value(p.sign("storage_server_ping", &key(signer))).unwrap()
    };
    assert_eq!(
        err_code(
            &chain,
            "storage_server_ping",
            json!({"version": [2, 8, 0], "pubkey_ed25519": pk(1), "https_port": 443})
        ),
        UNAUTHORIZED
    );
    assert_eq!(
        err_code(&chain, "storage_server_ping", ping(now, 2)),
        UNAUTHORIZED
    );
    assert_eq!(
        err_code(&chain, "storage_server_ping", ping(now - 400, 1)),
        UNAUTHORIZED
    );
    // A signed storage ping is not a lokinet ping.
    assert_eq!(err_code(&chain, "lokinet_ping", ping(now, 1)), UNAUTHORIZED);
    ok(&chain, "storage_server_ping", ping(now, 1));
    assert_eq!(
        err_code(&chain, "storage_server_ping", ping(now, 1)),
        REPLAYED
    );
    ok(&chain, "storage_server_ping", ping(now + 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_needs_its_token_and_the_public_one_never_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChainConfig {
        block_time: Duration::from_millis(50),
        data_dir: Some(dir.path().to_owned()),
        ..ChainConfig::default()
    };
    let token = shallot_chain::auth::load_or_create_admin_token(dir.path()).unwrap();
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}/json_rpc", public.local_addr().unwrap());
    let admin_url = format!("http://{}/json_rpc", admin.local_addr().unwrap());
    let chain = Arc::new(Chain::open(config).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shallot_chain::serve_chain_with_admin(
        chain.clone(),
        public,
        Some(shallot_chain::AdminListener {
            listener: admin,
            token: token.clone(),
        }),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let register = json!({"jsonrpc": "2.0", "id": 1, "method": "devnet_register_service_node",
        "params": {"pubkey": pk(1), "reservations": [{"address": "op", "amount": 100 * OXEN}]}});
    for (url, bearer, status) in [
        (&admin_url, None, 401),
        (&admin_url, Some("0".repeat(64)), 401),
        (&public_url, Some(token.clone()), 200),
    ] {
        let mut request = client.post(url).json(&register);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"]["code"], UNAUTHORIZED, "{reply}");
    }
    assert!(chain.with_state(|s| s.nodes().is_empty()));
    let reply: Value = client
        .post(&admin_url)
        .bearer_auth(&token)
        .json(&register)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["result"]["status"], "OK", "{reply}");
    for _ in 0..100 {
        if chain.with_state(|s| s.node(&pk(1)).is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(chain.with_state(|s| s.node(&pk(1)).is_some()));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
