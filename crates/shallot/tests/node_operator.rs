//! What the README promises an operator about one node process started from its own
//! `node.toml` with a data directory that does not exist yet:
//!
//! - the node creates the directory readable only by its owner (0700), its identity
//!   `node_key.json` and TLS key 0600, and refuses to start from a key file others can read;
//! - SIGTERM stops it gracefully: a waiting retrieve answers at once, new connections are
//!   refused while a slow request is still in flight, that request completes, the process
//!   exits with success and the database's WAL is checkpointed away.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shallot_proto::onion::{
    build_to_server, EncType, HttpMethod, NodeKeys, ProxyProtocol, ServerDestination, V4Request,
    X25519Keypair,
};
use shallot_proto::{AccountId, AccountKind};
use support::config_net::ConfigNet;
use support::{b64, now_ms, user};

const SUBNET: u8 = 213;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The `shallot_waiting_retrieves` gauge of node 0.
async fn waiting(net: &ConfigNet) -> Option<f64> {
    let text = net.metrics_text(0).await;
    text.lines()
        .find_map(|l| l.strip_prefix("shallot_waiting_retrieves "))
        .map(|v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One node's life: start, serve, stop, refuse to restart.
async fn private_keys_and_a_graceful_shutdown() {
    let started = Instant::now();
    let mut net =
        ConfigNet::start(SUBNET, 1, "info", "[onion]\nallow_private_targets = true\n").await;

    // The directory and the private keys it made are its owner's alone.
    let data_dir = net.nodes[0].data_dir.clone();
    assert_eq!(mode(&data_dir), 0o700, "{}", data_dir.display());
    assert_eq!(mode(&data_dir.join("node_key.json")), 0o600);
    assert_eq!(mode(&data_dir.join("key.pem")), 0o600);

    // Something in the WAL to checkpoint.
    let alice = user();
    let account = AccountId::new(AccountKind::Session, *alice.ed25519_public().as_bytes());
    let (status, body) = net
        .rpc_with(
            &net.http,
            0,
            "store",
            json!({"pubkey": account.to_hex(),
            "timestamp": now_ms(), "ttl": 600_000, "data": b64("kept")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = body["hash"].as_str().unwrap().to_owned();
    let wal = data_dir.join("storage.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0,
        "nothing in the WAL"
    );

    // In flight: a proxied request its HTTP server holds until the test releases it …
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback({
        let (arrived, release) = (arrived.clone(), release.clone());
        move || {
            let (arrived, release) = (arrived.clone(), release.clone());
            async move {
                arrived.notify_one();
                release.notified().await;
                "finished after the signal"
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let node = &net.nodes[0];
    let onion = build_to_server(
        &[NodeKeys {
            ed25519: node.identity.ed25519_public(),
            x25519: node.identity.x25519_public(),
        }],
        &ServerDestination {
            host: "127.0.0.1".into(),
            protocol: ProxyProtocol::Http,
            port: Some(port),
            x25519: *X25519Keypair::generate(&mut rand::rngs::OsRng).public(),
        },
        &V4Request::new(
            HttpMethod::Post,
            "/slow",
            BTreeMap::new(),
            Some(b"x".to_vec()),
        )
        .unwrap(),
        EncType::AesGcm,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let slow = tokio::spawn({
        let (http, url) = (net.http.clone(), node.url("/onion_req/v2"));
        async move {
            let response = http.post(url).body(onion.body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the proxied request reaches its server");

    // … and a retrieve waiting (up to 20 s) for a message after the stored one.
    let t = now_ms();
    let params = json!({"pubkey": account.to_hex(), "timestamp": t, "last_hash": stored,
        "signature": b64(alice.sign(format!("retrieve{t}").as_bytes()).to_bytes()),
        "wait_ms": 20_000});
    let waiting_retrieve = tokio::spawn({
        let (http, url) = (net.http.clone(), node.url("/storage_rpc/v1"));
        let body = json!({"method": "retrieve", "params": params}).to_string();
        async move {
            let response = http.post(url).body(body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    });
    support::until(
        Duration::from_secs(10),
        "the retrieve to be held",
        || async {
            match waiting(&net).await {
                Some(n) if n >= 1.0 => Ok(()),
                other => Err(format!("{other:?} held")),
            }
        },
    )
    .await;

    let signalled = Instant::now();
    net.nodes[0].send_sigterm();

    // The waiting retrieve answers at once, with nothing new.
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiting_retrieve)
        .await
        .expect("the waiting retrieve answers on shutdown")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"], json!([]), "{body}");
    let answered = signalled.elapsed();
    assert!(answered < Duration::from_secs(10), "{answered:?}");

    // New connections are refused while the slow request is still in flight.
    let addr = net.nodes[0].addr;
    support::until(
        Duration::from_secs(10),
        "new connections to be refused",
        || async move {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        !slow.is_finished(),
        "the slow request ended before its server answered"
    );
    assert!(
        net.nodes[0].is_running(),
        "the node exited with a request in flight"
    );

    // Released, the slow request completes; then the node exits cleanly.
    release.notify_one();
    let (status, text) = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the slow request completes")
        .unwrap();
    assert_eq!((status, text.as_str()), (200, "finished after the signal"));
    let exit = net.nodes[0].wait_exit(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}; log:\n{}",
        net.nodes[0].log_text()
    );
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "the WAL was not checkpointed"
    );

    // A key file others can read: the node refuses to start, and says how to fix it.
    let key_file = data_dir.join("node_key.json");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = net.dir.path().join("refused.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shallot"))
        .args(["node", "--config"])
        .arg(&net.nodes[0].config)
        .env_remove("SHALLOT_HOME")
        .env_remove("SHALLOT_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node runs with a 0644 key file");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    eprintln!(
        "operator scenario: {:?} (waiting retrieve answered {answered:?} after SIGTERM)",
        started.elapsed()
    );
}
