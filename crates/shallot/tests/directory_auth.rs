//! Attacks on a real `shallot directory serve` process (issue #10, directory hardening), all on
//! loopback: an unauthenticated unlock, registration or contribution is refused with a clear
//! JSON-RPC error and changes nothing in the ledger; a replayed signed call is refused; forged
//! reachability reports (unregistered reporter, a registered node that is not an assigned
//! tester, a replay) do not count; unsigned pings are refused; the admin listener works only
//! with its token.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test; one scenario.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use shallot_chain::auth::{wallet_address, StakeAction};
use shallot_chain::Reservation;
use shallot_clock::{Clock as _, SystemClock};
use shallot_directory::proof::{PeerReport, Ping, TestKind};
use shallot_proto::{Ed25519Pub, Identity};
use support::until;

/// The directory process; killed on drop.
struct Directory(Child);

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    shallot_devnet::ports::free_addr(std::net::Ipv4Addr::LOCALHOST)
        .unwrap()
        .to_string()
}

/// The JSON-RPC error object of a call that must fail.
async fn refused(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Value {
    let reply: Value = http
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(reply.get("result").is_none(), "{method} accepted: {reply}");
    reply["error"].clone()
}

fn report(reporter: &Identity, target: Ed25519Pub, t: u64) -> Value {
    let r = PeerReport {
        kind: TestKind::Storage,
        pubkey: target,
        passed: false,
        reporter: reporter.ed25519_public(),
        t,
    };
    serde_json::to_value(r.sign(reporter.signing_key())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_stake_changes_forged_reports_and_replays_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let (public, admin) = (free_addr(), free_addr());
    let log = std::fs::File::create(dir.path().join("directory.log")).unwrap();
    // time scale 1: proofs stay valid for 21 min, so nobody is decommissioned mid-test.
    let _directory = Directory(
        Command::new(env!("CARGO_BIN_EXE_shallot"))
            .args([
                "directory",
                "serve",
                "--bind",
                &public,
                "--admin-bind",
                &admin,
            ])
            .arg("--chain-dir")
            .arg(&chain_dir)
            .args(["--block-time-ms", "100", "--time-scale", "1"])
            .env_remove("SHALLOT_HOME")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{public}/json_rpc");
    let admin_url = format!("http://{admin}/json_rpc");
    shallot_node::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let call = |method: &'static str, params: Value| {
        let (http, url) = (http.clone(), url.clone());
        async move { support::json_rpc(&http, &url, method, params).await }
    };
    until(Duration::from_secs(20), "the directory to serve", || {
        call("get_info", json!({}))
    })
    .await;
    let token_path = chain_dir.join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the admin token must be private");
    }
    let token = std::fs::read_to_string(&token_path).unwrap();
    let stake = call("get_staking_requirement", json!({})).await.unwrap()["staking_requirement"]
        .as_u64()
        .unwrap();

    // The admin listener: refused without the token (HTTP 401), works with it.
    let nodes: Vec<Identity> = (1..=12u8).map(|i| Identity::from_seed([i; 32])).collect();
    let register = |i: usize| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "devnet_register_service_node",
            "params": {"pubkey": nodes[i].ed25519_public(),
            "reservations": [{"address": format!("op{i}"), "amount": stake}]}})
    };
    let response = http
        .post(&admin_url)
        .json(&register(0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = http
        .post(&admin_url)
        .bearer_auth("not-the-token")
        .json(&register(0))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["code"], 401, "{reply}");
    for i in 0..nodes.len() {
        let reply: Value = http
            .post(&admin_url)
            .bearer_auth(token.trim())
            .json(&register(i))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["result"]["status"], "OK", "{reply}");
    }

    // A wallet-owned node, registered on the public listener with the operator's signature.
    let wallet = shallot_chain::auth::SigningKey::from_bytes(&[77; 32]);
    let operator = wallet_address(&wallet);
    let owned = Identity::from_seed([40; 32]).ed25519_public();
    let reservations = vec![Reservation {
        address: operator.clone(),
        amount: stake,
    }];
    let auth = StakeAction::Register {
        pubkey: &owned,
        operator_fee_bp: 0,
        reservations: &reservations,
        operator_amount: stake,
    }
    .sign(&wallet, SystemClock.now_secs());
    call(
        "devnet_register_service_node",
        json!({"pubkey": owned, "reservations": reservations, "auth": auth}),
    )
    .await
    .unwrap();
    let ledger_len = || async {
        call("devnet_ledger", json!({})).await.unwrap()["ledger"]
            .as_array()
            .unwrap()
            .len()
    };
    until(
        Duration::from_secs(10),
        "13 registrations in the ledger",
        || async {
            match ledger_len().await {
                13 => Ok(()),
                n => Err(format!("{n} entries")),
            }
        },
    )
    .await;
    let unlock_height = || async {
        call("get_service_node_status", json!({"pubkey": owned}))
            .await
            .unwrap()["service_node_state"]["requested_unlock_height"]
            .as_u64()
            .unwrap()
    };

    // Unauthenticated: unlock with the public operator address, registration, contribution.
    let error = refused(
        &http,
        &url,
        "devnet_request_unlock",
        json!({"pubkey": owned, "address": operator}),
    )
    .await;
    assert_eq!(error["code"], 401, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("needs params.auth signed by the wallet"),
        "{error}"
    );
    let stranger = shallot_chain::auth::SigningKey::from_bytes(&[78; 32]);
    let forged = StakeAction::Unlock {
        pubkey: &owned,
        address: &operator,
    }
    .sign(&stranger, SystemClock.now_secs());
    let error = refused(
        &http,
        &url,
        "devnet_request_unlock",
        json!({"pubkey": owned, "address": operator, "auth": forged}),
    )
    .await;
    assert_eq!(error["code"], 401, "{error}");
    let newcomer = Identity::from_seed([41; 32]).ed25519_public();
    let error = refused(
        &http,
        &url,
        "devnet_register_service_node",
        json!({"pubkey": newcomer, "reservations": [{"address": "thief", "amount": stake}]}),
    )
    .await;
    assert_eq!(error["code"], 401, "{error}");
    let error = refused(
        &http,
        &url,
        "devnet_contribute",
        json!({"pubkey": owned, "address": "thief", "amount": stake / 4}),
    )
    .await;
    assert_eq!(error["code"], 401, "{error}");
    // The admin token does not open the public listener.
    let reply: Value = http
        .post(&url)
        .bearer_auth(token.trim())
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "devnet_request_unlock",
            "params": {"pubkey": owned, "address": operator}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["error"]["code"], 401, "{reply}");
    // Blocks later: nothing changed.
    let height = call("get_info", json!({})).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    until(Duration::from_secs(10), "two more blocks", || async {
        let now = call("get_info", json!({})).await.unwrap()["height"]
            .as_u64()
            .unwrap();
        if now > height + 1 {
            Ok(())
        } else {
            Err(format!("height {now}"))
        }
    })
    .await;
    assert_eq!(ledger_len().await, 13);
    assert_eq!(unlock_height().await, 0);
    let listed = call(
        "get_service_nodes",
        json!({"service_node_pubkeys": [newcomer]}),
    )
    .await
    .unwrap();
    assert_eq!(listed["service_node_states"], json!([]));

    // The owner's signed unlock is accepted; the same signed call again is a replay.
    let auth = StakeAction::Unlock {
        pubkey: &owned,
        address: &operator,
    }
    .sign(&wallet, SystemClock.now_secs());
    let signed = json!({"pubkey": owned, "address": operator, "auth": auth});
    call("devnet_request_unlock", signed.clone()).await.unwrap();
    let error = refused(&http, &url, "devnet_request_unlock", signed).await;
    assert_eq!(error["code"], 409, "{error}");
    until(
        Duration::from_secs(10),
        "the unlock to be mined",
        || async {
            match unlock_height().await {
                0 => Err("not yet".to_owned()),
                h => Ok(h),
            }
        },
    )
    .await;

    // Reachability reports about node 0.
    let target = nodes[0].ed25519_public();
    let now = SystemClock.now_secs();
    let outsider = Identity::from_seed([99; 32]);
    let error = refused(
        &http,
        &url,
        "report_peer_status",
        report(&outsider, target, now),
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not an active service node"),
        "{error}"
    );
    let mut assigned = Vec::new();
    let mut unassigned = Vec::new();
    for tester in &nodes[1..] {
        let targets = call(
            "devnet_test_targets",
            json!({"pubkey": tester.ed25519_public()}),
        )
        .await
        .unwrap();
        if targets["targets"]
            .as_array()
            .unwrap()
            .contains(&json!(target))
        {
            assigned.push(tester);
        } else {
            unassigned.push(tester);
        }
    }
    // 13 active nodes: 12 candidates for node 0 (the 11 others and the wallet-owned one), 10
    // of them assigned; so at least one of the 11 is not.
    let owned_assigned = call("devnet_test_targets", json!({"pubkey": owned}))
        .await
        .unwrap()["targets"]
        .as_array()
        .unwrap()
        .contains(&json!(target));
    assert_eq!(assigned.len() + usize::from(owned_assigned), 10);
    assert!(!unassigned.is_empty());
    let error = refused(
        &http,
        &url,
        "report_peer_status",
        report(unassigned[0], target, now),
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not an assigned tester"),
        "{error}"
    );
    let record = || async {
        let r = call("get_service_node_status", json!({"pubkey": target}))
            .await
            .unwrap();
        r["service_node_state"]["storage_server_last_unreachable"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(record().await, 0, "a refused report must not count");
    let good = report(assigned[0], target, now);
    call("report_peer_status", good.clone()).await.unwrap();
    let error = refused(&http, &url, "report_peer_status", good.clone()).await;
    assert!(
        error["message"].as_str().unwrap().contains("replay"),
        "{error}"
    );
    let first = until(
        Duration::from_secs(10),
        "the report to be mined",
        || async {
            match record().await {
                0 => Err("not yet".to_owned()),
                t => Ok(t),
            }
        },
    )
    .await;
    // Replayed after it was mined, a second later: still refused, the record unchanged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = refused(&http, &url, "report_peer_status", good).await;
    assert!(
        error["message"].as_str().unwrap().contains("replay"),
        "{error}"
    );
    assert_eq!(record().await, first);

    // Pings: unsigned or signed by another key are refused; the node's own is accepted once.
    let error = refused(
        &http,
        &url,
        "storage_server_ping",
        json!({"version": [2, 8, 0], "pubkey_ed25519": target, "https_port": 1}),
    )
    .await;
    assert_eq!(error["code"], 401, "{error}");
    let ping = Ping {
        version: [2, 8, 0],
        pubkey_ed25519: target,
        error: String::new(),
        https_port: 1,
        omq_port: 0,
        t: SystemClock.now_secs(),
    };
    let forged = serde_json::to_value(
        ping.clone()
            .sign("storage_server_ping", outsider.signing_key()),
    )
    .unwrap();
    assert_eq!(
        refused(&http, &url, "storage_server_ping", forged).await["code"],
        401
    );
    let own =
        serde_json::to_value(ping.sign("storage_server_ping", nodes[0].signing_key())).unwrap();
    call("storage_server_ping", own.clone()).await.unwrap();
    assert_eq!(
        refused(&http, &url, "storage_server_ping", own).await["code"],
        409
    );
}
