//! A hostile host against a real `shallot node`'s listener (issue: hardening): idle-connection
//! floods, headers and bodies that trickle in. The node closes what stalls, caps what one
//! address may hold, and keeps answering everyone else. Loopback only, bounded in count and time.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::json;
use support::attack::{idle_flood, open_for, raise_open_files, rss_kib, tls_from, trickle};
use support::Net;
use tokio::io::AsyncWriteExt;

/// The defaults of `[connections]` that these tests check (node.toml, docs/security.md).
const PER_IP: usize = 128;
const HANDSHAKE: Duration = Duration::from_secs(10);
const HEADERS: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(20);
/// Scheduling slack on a loaded 2-core machine: a deadline is met if the close comes within it.
const SLACK: Duration = Duration::from_secs(5);

/// An attacker's loopback address, distinct from the 127.0.0.1 the harness's client uses.
fn attacker(net: &Net) -> Ipv4Addr {
    let std::net::IpAddr::V4(ip) = net.nodes[0].addr.ip() else {
        unreachable!("nodes listen on IPv4 loopback")
    };
    let [a, b, c, _] = ip.octets();
    Ipv4Addr::new(a, b, c, 250)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_flood_from_one_address_is_capped_and_closed_while_others_are_served() {
    assert!(raise_open_files() > 3_000, "this test needs 2,500 sockets");
    let net = Net::start(&[1]).await;
    let pid = net.pids()[0];
    let rss_before = rss_kib(pid);
    let target = net.nodes[0].addr;
    let from = attacker(&net);

    // TLS-complete connections that then send nothing: the node must close them after the idle
    // limit (no request in progress), not hold them forever.
    let silent = tokio::spawn(async move {
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push((tls_from(Ipv4Addr::LOCALHOST, target).await, Instant::now()));
        }
        let mut closed = Vec::new();
        for (stream, since) in &mut streams {
            closed.push(open_for(stream, *since, HANDSHAKE + IDLE + SLACK * 2).await);
        }
        closed
    });
    let flood = tokio::spawn(idle_flood(from, target, 2_500, HANDSHAKE + SLACK * 2));

    // Meanwhile everyone else is served.
    let served_from = Instant::now();
    let mut answers = 0;
    while served_from.elapsed() < HANDSHAKE {
        let (status, body) = net.rpc(0, "info", json!({})).await;
        assert_eq!(status, 200, "{body}\n{}", net.log(0));
        answers += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let flood = flood.await.unwrap();
    eprintln!(
        "flood: {} connected, {} failed, {} closed at once, {} held (longest {:?}), {} still open; \
         {answers} info answers meanwhile",
        flood.connected,
        flood.failed,
        flood.closed_at_once,
        flood.held.len(),
        flood.held.iter().max(),
        flood.still_open,
    );
    assert_eq!(
        flood.still_open, 0,
        "idle connections outlived the handshake deadline"
    );
    assert!(
        flood.held.len() <= PER_IP,
        "one address held {} connections (cap {PER_IP})",
        flood.held.len()
    );
    assert!(flood.held.len() >= PER_IP / 2, "{flood:?}");
    assert!(flood.closed_at_once >= 2_000, "{flood:?}");
    assert!(
        flood.held.iter().all(|open| *open <= HANDSHAKE + SLACK),
        "{:?}",
        flood.held
    );

    let silent = silent.await.unwrap();
    assert!(
        silent
            .iter()
            .all(|closed| closed.is_some_and(|open| open <= IDLE + SLACK)),
        "silent TLS connections: {silent:?}"
    );

    // The slots are free again: the same address is served.
    let mut again = tls_from(from, target).await;
    again
        .write_all(b"GET /get_stats/v1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut again, &mut reply)
        .await
        .ok();
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let rss_after = rss_kib(pid);
    eprintln!("node RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_trickle_in_are_cut_off() {
    let net = Net::start(&[1]).await;
    let stream = tls_from(attacker(&net), net.nodes[0].addr).await;
    let (mut read, mut write) = tokio::io::split(stream);
    let started = Instant::now();
    // One header line every second, for longer than the header deadline.
    let mut lines: Vec<Vec<u8>> = vec![b"POST /storage_rpc/v1 HTTP/1.1\r\n".to_vec()];
    for i in 0..40 {
        lines.push(format!("x-slow-{i}: {i}\r\n").into_bytes());
    }
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let closed = tokio::select! {
        closed = open_for(&mut read, started, HEADERS * 3) => closed,
        sent = trickle(&mut write, &lines, Duration::from_secs(1)) => {
            panic!("the node took all {sent} header lines")
        }
    };
    let open = closed.expect("the connection outlived three header deadlines");
    assert!(open <= HEADERS + SLACK, "closed after {open:?}");
    assert!(
        open >= HEADERS / 2,
        "closed after {open:?}, before the deadline"
    );
    let (status, _) = net.rpc(0, "info", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_gets_408_at_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[connections]\nbody_read_secs = 3\n").unwrap();
    let net = Net::start_with(&[1], &["--config", config.to_str().unwrap()]).await;
    let stream = tls_from(attacker(&net), net.nodes[0].addr).await;
    let (mut read, mut write) = tokio::io::split(stream);
    let started = Instant::now();
    let head = b"POST /storage_rpc/v1 HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n";
    write.write_all(head).await.unwrap();
    let body: Vec<&[u8]> = std::iter::repeat_n(b"{".as_slice(), 100).collect();
    let reply = tokio::select! {
        reply = async {
            let mut reply = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut read, &mut reply).await.ok();
            reply
        } => reply,
        sent = trickle(&mut write, &body, Duration::from_millis(500)) => {
            panic!("the node waited for all {sent} body bytes")
        }
    };
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("Request body not received in time"), "{text}");
    assert!(started.elapsed() <= Duration::from_secs(3) + SLACK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_still_admits_its_swarm_peers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[connections]\nmax_connections = 60\nmax_connections_per_ip = 40\n",
    )
    .unwrap();
    let net = Net::start_with(&[2], &["--config", config.to_str().unwrap()]).await;
    let target = net.nodes[0].addr;
    let [a, b, c, _] = attacker(&net).octets();
    // Two attacking addresses, 40 idle connections each: 80 > the 60 the node holds in all.
    let floods: Vec<_> = [250, 251]
        .into_iter()
        .map(|host| {
            tokio::spawn(idle_flood(
                Ipv4Addr::new(a, b, c, host),
                target,
                40,
                HANDSHAKE + SLACK,
            ))
        })
        .collect();
    // Full, once the floods' connects are accepted (however slowly this host runs): a client's
    // new connection is closed at once. A probe that got in while the floods were still
    // connecting keeps its slot, as the flood connection it displaced would have.
    let early_probes = std::sync::Mutex::new(Vec::new());
    support::until(Duration::from_secs(8), "the node to be full", || async {
        let mut client = support::attack::tcp_from(Ipv4Addr::LOCALHOST, target)
            .await
            .map_err(|e| e.to_string())?;
        if open_for(&mut client, Instant::now(), Duration::from_secs(1))
            .await
            .is_some()
        {
            return Ok(());
        }
        early_probes.lock().unwrap().push(client);
        Err("a client got a connection".to_owned())
    })
    .await;
    // Kept open, so the node stays full for the peer's store below.
    let early_probes = early_probes.into_inner().unwrap();
    // ...but the swarm peer's replication of a store gets through (it answers with node 0's
    // signed acceptance).
    let account: shallot_proto::AccountId = support::user().session_id().into();
    let (status, body) = net
        .rpc(
            1,
            "store",
            json!({"pubkey": account.to_hex(), "timestamp": support::now_ms(), "ttl": 60_000,
                   "data": support::b64("through the flood")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let victim = net.nodes[0].ed25519_hex();
    assert_eq!(
        body["swarm"][&victim]["hash"], body["hash"],
        "node 0 did not take its peer's replication: {body}"
    );

    let mut held = 0;
    for flood in floods {
        let flood = flood.await.unwrap();
        assert_eq!(flood.still_open, 0, "{flood:?}");
        held += flood.held.len();
    }
    assert!(
        held + early_probes.len() <= 60,
        "the node held {held} flood connections and {} probes (cap 60)",
        early_probes.len()
    );
    assert!(held >= 50, "the flood did not fill the node: {held}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_websockets_keep_their_connection_slots() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[connections]\nmax_connections_per_ip = 3\n").unwrap();
    let net = Net::start_with(&[1], &["--config", config.to_str().unwrap()]).await;
    let target = net.nodes[0].addr;
    let from = attacker(&net);
    // Three WebSockets, upgraded out of HTTP: they still hold the address's three slots.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(support::clients::monitor_ws(target, Some(from)).await);
    }
    let mut fourth = support::attack::tcp_from(from, target).await.unwrap();
    let closed = open_for(&mut fourth, Instant::now(), Duration::from_secs(3)).await;
    assert!(
        closed.is_some_and(|open| open < Duration::from_secs(1)),
        "a fourth connection got in beside three WebSockets: {closed:?}"
    );
    // Closing one frees its slot.
    drop(sockets.pop());
    support::until(Duration::from_secs(5), "a freed slot", || async {
        let mut again = support::attack::tcp_from(from, target)
            .await
            .map_err(|e| e.to_string())?;
        match open_for(&mut again, Instant::now(), Duration::from_secs(1)).await {
            None => Ok(()),
            Some(open) => Err(format!("closed after {open:?}")),
        }
    })
    .await;
}
