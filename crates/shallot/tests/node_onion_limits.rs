//! Onion requests that try to make a node do unbounded or forbidden work, against real node
//! processes on loopback: a proxied HTTP server streaming a reply far over the 10 MiB cap, a
//! proxy layer aimed at the operator's own loopback services, and a burst of onion requests
//! from one address over its rate limit.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shallot_keys::AccountStore;
use shallot_proto::onion::{
    decode_snode_response, encode_frame, EncType, ResponseKey, SnodeBody, X25519Keypair,
};
use shallot_proto::{Identity, X25519Pub};
use support::Net;

/// An onion of one layer for the node with X25519 key `guard`: `payload` framed with `routing`
/// JSON, encrypted with AES-GCM. Returns the body to POST and the key the node replies with.
fn one_layer(guard: &X25519Pub, payload: &[u8], routing: &Value) -> (Vec<u8>, ResponseKey) {
    let ephemeral = X25519Keypair::generate(&mut rand::rngs::OsRng);
    let key = ResponseKey::derive(EncType::AesGcm, &ephemeral, guard).unwrap();
    let layer = encode_frame(payload, routing).unwrap();
    let ciphertext = key.key().encrypt(&layer, &mut rand::rngs::OsRng).unwrap();
    let body = encode_frame(
        &ciphertext,
        &json!({"ephemeral_key": ephemeral.public().to_hex(), "enc_type": "aes-gcm"}),
    )
    .unwrap();
    (body, key)
}

/// A proxy layer to `http://host:port{target}`.
fn proxy_layer(guard: &X25519Pub, host: &str, port: u16, target: &str) -> (Vec<u8>, ResponseKey) {
    let routing = json!({"host": host, "port": port, "protocol": "http", "target": target,
        "method": "POST", "ephemeral_key": "11".repeat(32), "enc_type": "aes-gcm"});
    one_layer(guard, b"not really a v4 request", &routing)
}

/// A final layer asking the node for `info`.
fn info_layer(guard: &X25519Pub) -> (Vec<u8>, ResponseKey) {
    let request = json!({"method": "info", "params": {}}).to_string();
    one_layer(guard, request.as_bytes(), &json!({"headers": ""}))
}

fn client(source: Option<Ipv4Addr>) -> reqwest::Client {
    support::config_net::client_from(source)
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, bytes::Bytes) {
    let response = http.post(url).body(body).send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

/// A `/proc/<pid>/status` figure in KiB: `VmRSS` (resident now) or `VmHWM` (peak resident).
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The pid of the node process whose command line names `dir` (the test started it).
fn pid_of(dir: &Path) -> u32 {
    let needle = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "node") && args.contains(&needle) {
            return pid;
        }
    }
    panic!("no node process for {needle}");
}

/// An HTTP server on 127.0.0.1 answering every POST with `total` bytes, streamed in 1 MiB chunks
/// without a Content-Length. Counts the bytes it managed to hand to the connection.
async fn start_streaming_server(total: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let sent = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = sent.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            const CHUNK: usize = 1024 * 1024;
            let chunks = futures_util::stream::iter((0..total / CHUNK).map(move |_| {
                counter.fetch_add(CHUNK, Ordering::SeqCst);
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; CHUNK]))
            }));
            axum::body::Body::from_stream(chunks)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_streamed_proxy_reply_is_cut_off() {
    const REPLY: usize = 64 * 1024 * 1024;
    // A devnet node: proxy layers may reach 127.x.
    let net = Net::start(&[1]).await;
    let node = &net.nodes[0];
    let pid = pid_of(&node.dir);
    let guard = node.identity.x25519_public();
    let (server, sent) = start_streaming_server(REPLY).await;

    // Warm up (connection pools, allocator arenas) with a normal request, then measure.
    let (body, _) = info_layer(&guard);
    assert_eq!(
        post(&net.http, &node.url("/onion_req/v2"), body).await.0,
        200
    );
    let (before, peak_before) = (vm_kib(pid, "VmRSS:"), vm_kib(pid, "VmHWM:"));

    for round in 0..2 {
        let started = Instant::now();
        let (body, _) = proxy_layer(&guard, "127.0.0.1", server.port(), "/oxen/v4/lsrpc");
        let (status, text) = post(&net.http, &node.url("/onion_req/v2"), body).await;
        assert_eq!(status, 502, "{}", String::from_utf8_lossy(&text));
        assert_eq!(
            String::from_utf8_lossy(&text),
            "Server reply larger than 10485760 bytes"
        );
        assert!(started.elapsed() < Duration::from_secs(20), "round {round}");
    }
    let (after, peak_after) = (vm_kib(pid, "VmRSS:"), vm_kib(pid, "VmHWM:"));
    let produced = sent.load(Ordering::SeqCst);
    eprintln!(
        "node RSS before {before} KiB, after two {} MiB replies {after} KiB (+{} KiB); \
         peak {peak_before} -> {peak_after} KiB; the server produced {} MiB in total",
        REPLY >> 20,
        after.saturating_sub(before),
        produced >> 20
    );
    // The node never held a whole reply (it reads at most the 10 MiB cap of each), and what it
    // read is not kept.
    assert!(
        peak_after.saturating_sub(before) < 24 * 1024,
        "peak RSS grew from {before} KiB to {peak_after} KiB"
    );
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(
        produced < 2 * REPLY,
        "the node read both replies to the end"
    );

    // The node still serves other clients, directly and through onions.
    let (status, info) = net.rpc(0, "info", json!({})).await;
    assert_eq!(status, 200, "{info}");
    let (body, key) = info_layer(&guard);
    let (status, reply) = post(&net.http, &node.url("/onion_req/v2"), body).await;
    assert_eq!(status, 200);
    let reply = decode_snode_response(&key, &reply).unwrap();
    assert_eq!(reply.status, 200);
}

/// A node process started by the test with its own config (not a devnet node).
struct LoneNode {
    child: Child,
    identity: Identity,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl LoneNode {
    /// Starts a force-started node on `ip` with these extra TOML settings, and waits until it
    /// answers `info`.
    async fn start(ip: Ipv4Addr, extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::generate(&mut rand::rngs::OsRng);
        let data_dir: PathBuf = dir.path().join("node");
        AccountStore::node(&data_dir)
            .save(&identity, false)
            .unwrap();
        let addr = shallot_devnet::ports::free_addr(ip).unwrap();
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nbind = \"{addr}\"\nforce_start = true\nlog = \"warn\"\n{extra_toml}",
                data_dir.display().to_string()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_shallot"))
            .arg("node")
            .arg("--config")
            .arg(&config)
            .env_remove("SHALLOT_HOME")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let node = Self {
            child,
            identity,
            addr,
            _dir: dir,
        };
        let http = client(None);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body = json!({"method": "info", "params": {}}).to_string();
            let answer = http
                .post(node.url("/storage_rpc/v1"))
                .body(body)
                .send()
                .await;
            if answer.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "the node did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for LoneNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_layer_cannot_reach_loopback() {
    let node = LoneNode::start(Ipv4Addr::new(127, 0, 201, 1), "").await;
    let guard = node.identity.x25519_public();
    // The operator's own service, on the loopback address every name below leads to.
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    service.set_nonblocking(true).unwrap();
    let port = service.local_addr().unwrap().port();
    let http = client(None);

    for host in [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "localhost",
        "[::ffff:127.0.0.1]",
        "[::1]",
    ] {
        let (body, key) = proxy_layer(&guard, host, port, "/oxen/v4/lsrpc");
        let (status, reply) = post(&http, &node.url("/onion_req/v2"), body).await;
        assert_eq!(status, 200, "{host}: {}", String::from_utf8_lossy(&reply));
        let reply = decode_snode_response(&key, &reply).unwrap();
        assert_eq!(reply.status, 400, "{host}");
        assert_eq!(reply.body, SnodeBody::Text("Invalid url".into()), "{host}");
    }
    // Targets that a URL parser would rewrite are refused the same way, wherever they point.
    for target in ["/oxen/../lsrpc", "/oxen/v4%2flsrpc", "/oxen/v4#/lsrpc"] {
        let (body, key) = proxy_layer(&guard, "example.org", 443, target);
        let (status, reply) = post(&http, &node.url("/onion_req/v2"), body).await;
        assert_eq!(status, 200, "{target}");
        let reply = decode_snode_response(&key, &reply).unwrap();
        assert_eq!(
            (reply.status, reply.body),
            (400, SnodeBody::Text("Invalid url".into())),
            "{target}"
        );
    }
    // Nothing ever connected to the service.
    match service.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the node connected to the loopback service: {other:?}"),
    }
    // And the node still serves clients.
    let (body, key) = info_layer(&guard);
    let (status, reply) = post(&http, &node.url("/onion_req/v2"), body).await;
    assert_eq!(status, 200);
    assert_eq!(decode_snode_response(&key, &reply).unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onion_burst_over_the_rate_limit_gets_429_while_others_are_served() {
    const CAPACITY: usize = 20;
    let node = LoneNode::start(
        Ipv4Addr::new(127, 0, 202, 1),
        &format!(
            "[rate_limit]\ncapacity = {CAPACITY}\nrefill_per_sec = 1\nexempt_loopback = false\n"
        ),
    )
    .await;
    let guard = node.identity.x25519_public();
    // The first `info` above came from 127.0.0.1; the burst and the bystander use their own
    // addresses.
    let flooder = client(Some(Ipv4Addr::new(127, 0, 202, 50)));
    let bystander = client(Some(Ipv4Addr::new(127, 0, 202, 51)));

    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..CAPACITY + 10 {
        let (body, _) = info_layer(&guard);
        statuses.push(post(&flooder, &node.url("/onion_req/v2"), body).await.0);
    }
    let elapsed = started.elapsed();
    assert!(
        statuses[..CAPACITY].iter().all(|&s| s == 200),
        "{statuses:?}"
    );
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    // One token comes back per second.
    let refilled = usize::try_from(elapsed.as_secs()).unwrap() + 1;
    assert!(
        limited + refilled >= 10,
        "{limited} refused in {elapsed:?}: {statuses:?}"
    );
    // The same bucket covers /storage_rpc/v1.
    let rpc = json!({"method": "info", "params": {}}).to_string();
    let (status, text) = post(&flooder, &node.url("/storage_rpc/v1"), rpc.into_bytes()).await;
    assert_eq!((status, &text[..]), (429, &b"Too Many Requests\n"[..]));

    // Another address is served, through an onion.
    let (body, key) = info_layer(&guard);
    let (status, reply) = post(&bystander, &node.url("/onion_req/v2"), body).await;
    assert_eq!(status, 200);
    let reply = decode_snode_response(&key, &reply).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.to_json().unwrap()["version"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_tiny_json_values_does_not_blow_up_memory() {
    let net = Net::start(&[1]).await;
    let pid = pid_of(&net.nodes[0].dir);
    let (status, _) = net.rpc(0, "info", json!({})).await;
    assert_eq!(status, 200);
    let before = vm_kib(pid, "VmRSS:");
    // Just under 10 MiB of `0,`: about 5 million values, 180 MiB of peak RSS as a plain
    // `serde_json::Value` (measured before the value cap).
    let zeros = "0,".repeat(5 * 1024 * 1024 - 64);
    let body = format!(r#"{{"method":"info","params":{{"x":[{zeros}0]}}}}"#);
    assert!(body.len() < 10 * 1024 * 1024);
    let (status, text) = net.post(0, "/storage_rpc/v1", body.into_bytes()).await;
    assert_eq!((status, text), (400, Value::String("invalid json".into())));
    let peak = vm_kib(pid, "VmHWM:");
    eprintln!("node RSS before {before} KiB, peak after a 10 MiB body of zeros {peak} KiB");
    // The body itself (10 MiB, read once) and the capped tree: far from 180 MiB.
    assert!(
        peak.saturating_sub(before) < 48 * 1024,
        "peak RSS grew from {before} KiB to {peak} KiB"
    );
    let (status, _) = net.rpc(0, "info", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_over_the_concurrency_cap_get_503_at_once() {
    let ip = Ipv4Addr::new(127, 0, 203, 1);
    let admin = SocketAddr::from((
        ip,
        TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    ));
    let node = LoneNode::start(
        ip,
        &format!(
            "admin_bind = \"{admin}\"\n[onion]\nallow_private_targets = true\nmax_concurrent_proxies = 1\n"
        ),
    )
    .await;
    let guard = node.identity.x25519_public();
    // An HTTP server that holds each request for 3 s, and says when one has arrived.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let signal = arrived.clone();
    let app = axum::Router::new().fallback(move || {
        let signal = signal.clone();
        async move {
            signal.notify_one();
            tokio::time::sleep(Duration::from_secs(3)).await;
            "slow"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let http = client(None);
    let url = node.url("/onion_req/v2");
    let (body, _) = proxy_layer(&guard, "127.0.0.1", port, "/oxen/v4/lsrpc");
    let first = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { post(&http, &url, body).await }
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .unwrap();

    // The only proxy slot is taken: refused at once, not queued behind it.
    let started = Instant::now();
    let (body, _) = proxy_layer(&guard, "127.0.0.1", port, "/oxen/v4/lsrpc");
    let (status, text) = post(&http, &url, body).await;
    assert_eq!(
        (status, String::from_utf8_lossy(&text).as_ref()),
        (503, "Server busy, try again later")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Requests that need no proxy slot are still served.
    let (body, key) = info_layer(&guard);
    let (status, reply) = post(&http, &url, body).await;
    assert_eq!(status, 200);
    assert_eq!(decode_snode_response(&key, &reply).unwrap().status, 200);

    let (status, text) = first.await.unwrap();
    assert_eq!((status, &text[..]), (200, &b"slow"[..]));
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("shallot_onion_busy_total{role=\"proxy\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_cbc_layers_answer_bad_padding_and_bad_json_alike() {
    use shallot_proto::onion::{HopKey, Role};
    let node = LoneNode::start(Ipv4Addr::new(127, 0, 204, 1), "").await;
    let guard = node.identity.x25519_public();
    let http = client(None);
    let cbc_onion = |mangle_padding: bool| {
        let ephemeral = X25519Keypair::generate(&mut rand::rngs::OsRng);
        let key = HopKey::derive(EncType::AesCbc, &ephemeral, &guard, Role::Requester).unwrap();
        // 32 bytes of broken JSON: the padding is one whole block of 0x10.
        let layer = b"\x01\x00\x00\x00X{\"this is not\": json at all";
        assert_eq!(layer.len(), 32);
        let mut ciphertext = key.encrypt(layer, &mut rand::rngs::OsRng).unwrap();
        if mangle_padding {
            // Flipping 0x10 into the block before the padding block makes the last plaintext
            // byte 0x00: never valid PKCS#7.
            let at = ciphertext.len() - 17;
            ciphertext[at] ^= 0x10;
        }
        encode_frame(
            &ciphertext,
            &json!({"ephemeral_key": ephemeral.public().to_hex(), "enc_type": "aes-cbc"}),
        )
        .unwrap()
    };
    let url = node.url("/onion_req/v2");
    let bad_json = post(&http, &url, cbc_onion(false)).await;
    let bad_padding = post(&http, &url, cbc_onion(true)).await;
    assert_eq!(bad_json, bad_padding);
    assert_eq!(
        bad_json,
        (400, bytes::Bytes::from_static(b"Invalid ciphertext"))
    );
}
