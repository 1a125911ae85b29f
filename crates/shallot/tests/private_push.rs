//! Private push against real node processes: Bob runs `shallot inbox --watch` (which waits for
//! messages through his onion paths by default); Alice sends him messages. Each one is printed
//! by Bob's process within a second of being stored, and every TCP connection Bob's process holds
//! after start-up goes to one of its guards (plus, at most, the idle connection to the seed it
//! bootstrapped from, chosen outside Bob's swarm): no connection to a member of his swarm.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shallot_devnet::{LocalNet, NetOptions};
use shallot_proto::SessionId;
use support::{cli, messenger, user};

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends each line `from` prints, with the time it was read, from a thread.
fn forward_lines(
    from: impl std::io::Read + Send + 'static,
    to: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
) {
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(from)) {
            let Ok(line) = line else { return };
            if to.send((line, Instant::now())).is_err() {
                return;
            }
        }
    });
}

/// `address:port` of /proc/net/tcp (hex, IPv4 in host order), or of /proc/net/tcp6 when it is an
/// IPv4-mapped address.
fn parse_proc_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => u32::from_str_radix(ip, 16).ok()?,
        32 if ip.starts_with("0000000000000000FFFF0000") => {
            u32::from_str_radix(&ip[24..], 16).ok()?
        }
        _ => return None,
    };
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.swap_bytes()), port))
}

/// The established TCP connections of process `pid`: (local, remote) addresses.
fn connections_of(pid: u32) -> Vec<(SocketAddr, SocketAddr)> {
    let mut inodes = HashSet::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let link = link.to_string_lossy().to_string();
                if let Some(inode) = link
                    .strip_prefix("socket:[")
                    .and_then(|l| l.strip_suffix(']'))
                {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // 01 = ESTABLISHED; field 9 is the socket's inode.
            if fields.len() > 9 && fields[3] == "01" && inodes.contains(fields[9]) {
                if let (Some(local), Some(remote)) =
                    (parse_proc_addr(fields[1]), parse_proc_addr(fields[2]))
                {
                    out.push((SocketAddr::V4(local), SocketAddr::V4(remote)));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One scenario, step by step.
async fn waiting_receiver_gets_messages_within_a_second_through_its_guards_only() {
    let net = LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![3, 3],
        subnet: 241,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert!(cli(b.path())
        .args(["account", "new"])
        .output()
        .unwrap()
        .status
        .success());
    let show = cli(b.path())
        .args(["account", "show", "--json"])
        .output()
        .unwrap();
    let show: Value = serde_json::from_slice(&show.stdout).unwrap();
    let bob: SessionId = show["session_id"].as_str().unwrap().parse().unwrap();
    let bob_swarm: HashSet<SocketAddr> = net
        .swarm_of(&bob.account())
        .into_iter()
        .map(|i| net.nodes[i].addr)
        .collect();
    // Bob bootstraps from a node outside his swarm.
    let seed = net.nodes[net.not_swarm_of(&bob.account())[0]].addr;

    let child = cli(b.path())
        .args(["inbox", "--watch", "--seed-node", &seed.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    // Bob's output and log lines, each with the time it appeared.
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel();
    let (log_tx, mut log_rx) = tokio::sync::mpsc::unbounded_channel();
    forward_lines(child.0.stdout.take().unwrap(), line_tx);
    forward_lines(child.0.stderr.take().unwrap(), log_tx);
    let guards: HashSet<SocketAddr> = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (line, _) = log_rx.recv().await.expect("inbox --watch exited");
            if let Some((_, list)) = line.split_once("see your address: ") {
                return list.split(", ").map(|g| g.parse().unwrap()).collect();
            }
        }
    })
    .await
    .expect("inbox --watch started watching");
    assert!(!guards.is_empty());
    // Bob's process is now watching. Connections it opened while starting (to the seed and to
    // the guard candidates it tested, pooled until idle for 10 s) are set aside; every
    // connection opened from here on is sampled every 10 ms.
    let startup: HashSet<(SocketAddr, SocketAddr)> = connections_of(pid).into_iter().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut seen: HashSet<(SocketAddr, SocketAddr)> = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                seen.extend(connections_of(pid));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        }
    });

    let alice = messenger(&net, user(), a.path()).await;
    // Let Bob's first waiting request reach its node, so the messages below wake a held wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..3 {
        let text = format!("private push {i}");
        let sent = alice.send(&bob, &text).await.unwrap();
        let stored = Instant::now();
        assert!(sent.stored_on >= 1);
        let shown = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (line, at) = line_rx.recv().await.expect("Bob's output ended");
                if line.contains(&text) {
                    return at;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("Bob did not show {text:?} within 5 s"));
        let delay = shown.saturating_duration_since(stored);
        // Usually negative: Bob shows it while Alice's send is still storing her sync copy.
        eprintln!(
            "{text:?}: shown {delay:?} after / {:?} before Alice's send returned",
            stored.saturating_duration_since(shown)
        );
        assert!(
            delay < Duration::from_secs(1),
            "{text:?} shown {delay:?} after it was stored"
        );
        tokio::time::sleep(Duration::from_millis(300 * (i + 1))).await;
    }

    stop.store(true, Ordering::Relaxed);
    let seen = sampler.await.unwrap();
    drop(child);
    let mut log = String::new();
    while let Some((line, _)) = log_rx.recv().await {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(!log.contains("failed"), "{log}");

    // While Bob waited and received, his process was connected to its guards, and every
    // connection it opened went to one of them: never to a member of his swarm (unless that
    // member is his guard, which then sees onions, not his account).
    assert!(seen.iter().any(|(_, to)| guards.contains(to)), "{seen:?}");
    for (from, to) in seen.difference(&startup) {
        assert!(
            guards.contains(to),
            "Bob opened {from} → {to}, not to a guard ({guards:?}); his swarm is {bob_swarm:?}"
        );
    }
}
