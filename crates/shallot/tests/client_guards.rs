//! Guard privacy against real node processes: the CLI keeps the same two guards over many runs on
//! one account; no request for an account goes through a node of that account's swarm (the guard
//! above all); and with `--proxy`, every connection the client makes (seed and guards) goes
//! through a SOCKS5 server the test runs itself.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use serde_json::Value;
use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::SessionId;
use support::{messenger, user};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(subnet: u8, swarms: Vec<usize>) -> LocalNet {
    LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms,
        subnet,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap()
}

fn shallot(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.env_remove("SHALLOT_HOME").arg("--data-dir").arg(dir);
    cmd
}

fn new_account(dir: &Path) -> String {
    shallot(dir).args(["account", "new"]).assert().success();
    let out = shallot(dir)
        .args(["account", "show", "--json"])
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&out.stdout).unwrap();
    show["session_id"].as_str().unwrap().to_owned()
}

/// The guards a CLI run reports on stderr ("… onion paths ready (guards A, B)").
fn guards_of(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("onion paths ready"))
        .unwrap_or_else(|| panic!("no paths line in {stderr}"));
    let list = line.split("(guards ").nth(1).unwrap().trim_end_matches(')');
    list.split(", ").map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_keep_the_same_two_guards() {
    let net = start(246, vec![3, 3, 3, 3]).await;
    let seed = net.nodes[0].addr.to_string();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    new_account(a.path());
    let bob = new_account(b.path());
    // Five `network`, three `inbox` (the measurement) and three `send`, with and
    // without a seed (a fresh node list or the saved one).
    let runs: Vec<Vec<&str>> = vec![
        vec!["network", "--seed-node", &seed],
        vec!["inbox", "--seed-node", &seed],
        vec!["network"],
        vec!["send", &bob, "one", "--seed-node", &seed],
        vec!["network", "--seed-node", &seed],
        vec!["inbox"],
        vec!["send", &bob, "two"],
        vec!["network"],
        vec!["inbox", "--seed-node", &seed],
        vec!["send", &bob, "three", "--seed-node", &seed],
        vec!["network", "--json", "--seed-node", &seed],
    ];
    let mut seen = HashSet::new();
    let mut last = None;
    for args in &runs {
        let out = shallot(a.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        let guards = guards_of(&stderr);
        assert_eq!(guards.len(), 2, "{args:?}: {stderr}");
        seen.extend(guards);
        last = Some(out.stdout);
    }
    assert_eq!(
        seen.len(),
        2,
        "distinct guards over {} runs: {seen:?}",
        runs.len()
    );
    // `network --json` shows the saved set: the same two, with 30-60 day lifetimes.
    let report: Value = serde_json::from_slice(&last.unwrap()).unwrap();
    let saved = report["saved_guards"].as_array().unwrap();
    assert_eq!(saved.len(), 2, "{report:#}");
    for entry in saved {
        let life = entry["expires"].as_u64().unwrap() - entry["added"].as_u64().unwrap();
        assert!((30 * 86_400..=60 * 86_400).contains(&life), "{entry}");
        assert_eq!(entry["failures"], 0);
    }
    let in_use: HashSet<&str> = report["guards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    let saved_keys: HashSet<&str> = saved
        .iter()
        .map(|e| e["ed25519"].as_str().unwrap())
        .collect();
    assert_eq!(in_use, saved_keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_for_an_account_goes_through_its_swarm() {
    let net = start(247, vec![3, 3, 3, 3]).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let alice = messenger(&net, user(), dirs[0].path()).await;
    alice.client().ensure_paths().await.unwrap();
    let guards = alice.client().guards();
    // A Bob whose swarm holds one of Alice's guards: the case the rule is for.
    let pool = shallot_client::Pool::from_snapshot(&alice.client().pool_snapshot());
    let bob_id = loop {
        let candidate = user();
        let members = pool.swarm_members(&candidate.session_id().account());
        if members.iter().any(|m| guards.contains(&m.ed25519)) {
            break candidate;
        }
    };
    let bob_sid: SessionId = bob_id.session_id();
    let bob = messenger(&net, bob_id, dirs[1].path()).await;
    let mut checked = 0;
    let mut next_seq = 0;
    for i in 0..15 {
        alice.send(&bob_sid, &format!("m{i}")).await.unwrap();
        alice.receive().await.unwrap(); // polls Alice's own swarm
        for route in alice.client().recent_routes() {
            if route.seq < next_seq {
                continue;
            }
            next_seq = route.seq + 1;
            for hop in &route.path {
                assert_ne!(
                    hop.swarm_id, route.destination.swarm_id,
                    "{} to {}: hop {} is in the destination's swarm",
                    route.method, route.destination.ed25519, hop.ed25519
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} routes checked");
    // The guards did not change for it.
    assert_eq!(
        alice.client().guards().into_iter().collect::<HashSet<_>>(),
        guards.into_iter().collect()
    );
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 15);
}

/// A minimal SOCKS5 server (no auth, CONNECT, IPv4 or domain targets) that records every target
/// it connects to. Targets on port 1 go to `redirect` instead: a client told to use a seed at
/// `127.0.0.1:1` can reach it only through this proxy.
async fn socks5_server(redirect: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let _ = socks5_session(client, redirect, &log).await;
            });
        }
    });
    (addr, seen)
}

async fn socks5_session(
    mut client: TcpStream,
    redirect: SocketAddr,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        return client.write_all(&[5, 0xff]).await;
    }
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await,
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    log.lock().unwrap().push(format!("{host}:{port}"));
    let upstream = if port == 1 {
        TcpStream::connect(redirect).await
    } else if host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        TcpStream::connect((host.as_str(), port)).await
    } else {
        // Loopback only: anything else is refused (and fails the test).
        Err(std::io::Error::other("not loopback"))
    };
    let Ok(mut upstream) = upstream else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_proxy_carries_seed_and_guard_connections() {
    let net = start(248, vec![3, 3, 3]).await;
    let (proxy, seen_log) = socks5_server(net.nodes[0].addr).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let connect = |dir: &Path, identity: shallot_proto::Identity| {
        let config = ClientConfig {
            // Reachable only through the proxy, which sends port 1 to the real seed.
            seeds: vec![Seed::Node("127.0.0.1:1".parse().unwrap())],
            min_refresh_agreement: net.nodes.len(),
            proxy: Some(format!("socks5h://{proxy}")),
            ..ClientConfig::default()
        };
        let db = Db::open_in_dir(dir, &identity).unwrap();
        async move {
            let client = OnionClient::bootstrap(config, NetworkClock::default())
                .await
                .unwrap();
            let messenger = Messenger::new(identity, client, db);
            messenger.client().ensure_paths().await.unwrap();
            messenger
        }
    };
    let (alice_id, bob_id) = (user(), user());
    let bob_sid = bob_id.session_id();
    let alice = connect(dirs[0].path(), alice_id).await;
    let bob = connect(dirs[1].path(), bob_id).await;
    alice.send(&bob_sid, "through the proxy").await.unwrap();
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "through the proxy");

    let seen: Vec<String> = seen_log.lock().unwrap().clone();
    // Both bootstraps went through the proxy (the seed is not reachable any other way).
    assert!(
        seen.iter().filter(|t| t.as_str() == "127.0.0.1:1").count() >= 2,
        "{seen:?}"
    );
    // Every guard of both clients was reached through it, by IP (pinned names are resolved
    // here, their key still checked in TLS).
    for m in [&alice, &bob] {
        for path in m.client().paths() {
            let guard = path.guard().https_addr().to_string();
            assert!(seen.contains(&guard), "guard {guard} not proxied: {seen:?}");
        }
    }
    assert!(seen.iter().all(|t| t.starts_with("127.")), "{seen:?}");
    // The CLI's --proxy: a send through it (the seed is reachable only through the proxy).
    let cli = tempfile::tempdir().unwrap();
    new_account(cli.path());
    let (dir, to, proxy_url) = (
        cli.path().to_owned(),
        bob_sid.to_string(),
        format!("socks5h://{proxy}"),
    );
    let out = tokio::task::spawn_blocking(move || {
        shallot(&dir)
            .args(["send", &to, "from the cli", "--seed-node", "127.0.0.1:1"])
            .args(["--proxy", &proxy_url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = bob.receive().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "from the cli");
    let seen: Vec<String> = seen_log.lock().unwrap().clone();
    assert!(
        seen.iter().filter(|t| t.as_str() == "127.0.0.1:1").count() >= 3,
        "{seen:?}"
    );

    // Nothing but the seed and nodes tested as guards (two candidates per guard on a first
    // run, three clients): relays and swarm members are reached only through the guard.
    let others = seen.iter().filter(|t| t.as_str() != "127.0.0.1:1").count();
    assert!(others <= 3 * 4, "{seen:?}");
    let nodes: HashSet<String> = net.nodes.iter().map(|n| n.addr.to_string()).collect();
    assert!(
        seen.iter()
            .all(|t| t.as_str() == "127.0.0.1:1" || nodes.contains(t)),
        "{seen:?}"
    );
}
