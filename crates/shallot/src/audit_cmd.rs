//! `shallot audit`: the metadata audit. Starts a devnet whose nodes keep observation logs, runs
//! a scripted workload through the real client library and CLI with every client on its own
//! loopback address, and checks the nodes' logs: no node may link a client's address to its
//! account or a correspondent's ([`crate::observations`]). Prints, per message, what each hop
//! saw and the smallest set of colluding nodes that could link sender and recipient; fails on
//! any violation.
//!
//! The workload: Alice and Bob (who exchanged Session IDs beforehand) on 127.0.N.1 and .2; Bob
//! waits through his onion path (private push) while Alice sends; Bob answers and Alice polls;
//! Alice unsends her message; Alice's second device (the CLI, `inbox --watch`, on .3) restores
//! her account and gets Bob's next message by private push; then two relays of Alice's paths
//! die and she sends again. Each client's seed is a node outside its own and its correspondent's
//! swarms: a seed sees the address at bootstrap, and one in those swarms would see the account
//! within seconds (Session's seeds are not service nodes).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::messenger::PUSH_WAIT;
use shallot_client::{ConversationState, Messenger, Seed};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_node::clock::{Clock, SystemClock};
use shallot_proto::{mnemonic, AccountId, Identity, SessionId};
use tokio::sync::mpsc;

use crate::observations::{Client, MessageCase, NodeInfo, World};

/// Flags of `shallot audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Members of each swarm of the devnet (four swarms: a client's guards can stay outside
    /// its own swarm and its correspondent's)
    #[arg(long, value_delimiter = ',', default_value = "3,3,3,3")]
    pub swarms: Vec<usize>,
    /// Third octet of the nodes' 127.0.N.x addresses
    #[arg(long, default_value_t = 199)]
    pub subnet: u8,
    /// Third octet of the clients' addresses: client k connects from 127.0.N.k
    #[arg(long, default_value_t = 200)]
    pub client_subnet: u8,
    /// A node that saw a client's address and, this close in time, a message for the client's
    /// account or a correspondent's, could link them by timing: a violation
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub window_ms: u64,
    /// Also copy every node's observations into this JSON-lines file
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// A child process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client in its own data directory, connecting from `ip`, that knows `contact` (like
/// `shallot account new`, adding a contact from its Session ID, then the first `shallot inbox`:
/// bootstrap, then guards and paths).
async fn client(
    dir: &Path,
    identity: Identity,
    contact: &SessionId,
    (ip, seed): (IpAddr, SocketAddr),
    nodes: usize,
) -> Result<Messenger> {
    let messenger = crate::local_accounts::new_account(
        dir,
        identity,
        Seed::Node(seed),
        (nodes, Some(ip)),
        Some(contact),
    )
    .await?;
    let (contact, now) = (*contact, now_ms());
    messenger
        .db()
        .call(move |db| db.set_conversation_state(&contact, ConversationState::Accepted, now))
        .await?;
    Ok(messenger)
}

/// A node outside the swarms of `accounts` (the first, else node 0).
fn seed_outside(net: &LocalNet, accounts: &[AccountId]) -> SocketAddr {
    let inside: Vec<usize> = accounts.iter().flat_map(|a| net.swarm_of(a)).collect();
    let index = (0..net.nodes.len())
        .find(|i| !inside.contains(i))
        .unwrap_or(0);
    net.nodes[index].addr
}

/// Received messages with when they arrived.
type Inbox = mpsc::UnboundedReceiver<(String, u64)>;

/// Waits until a message with `text` arrives on `inbox`; returns when (ms).
async fn arrival(inbox: &mut Inbox, text: &str, within: Duration) -> Result<u64> {
    tokio::time::timeout(within, async {
        while let Some((body, at)) = inbox.recv().await {
            if body.contains(text) {
                return Some(at);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .with_context(|| format!("{text:?} did not arrive within {within:?}"))
}

/// Polls `who` until a message with `text` shows; returns when (ms).
async fn poll_until(who: &Messenger, text: &str) -> Result<u64> {
    for _ in 0..40 {
        let got = who.receive().await.context("polling failed")?;
        if got.iter().any(|m| m.body.contains(text)) {
            return Ok(now_ms());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("{text:?} did not arrive by polling within 10 s")
}

/// Bob's private push: waiting receives in a loop, each message sent on with its arrival time.
fn wait_loop(who: Arc<Messenger>) -> (tokio::task::JoinHandle<()>, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match who.receive_waiting(PUSH_WAIT).await {
                Ok(waited) => {
                    for m in waited.messages {
                        let _ = tx.send((m.body, now_ms()));
                    }
                    if !waited.waited {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
    (task, rx)
}

/// Alice's second device: `shallot account restore` and `shallot inbox --watch` from `ip`, its
/// output lines (with when they appeared) on a channel.
fn second_device(
    dir: &Path,
    phrase: &str,
    ip: IpAddr,
    seed: SocketAddr,
) -> Result<(KillOnDrop, Inbox)> {
    let exe = std::env::current_exe().context("cannot find the shallot binary")?;
    let restore = Command::new(&exe)
        .env_remove("SHALLOT_HOME")
        .arg("--data-dir")
        .arg(dir)
        .args(["account", "restore"])
        .args(phrase.split_whitespace())
        .output()
        .context("could not run shallot account restore")?;
    if !restore.status.success() {
        bail!(
            "account restore failed: {}",
            String::from_utf8_lossy(&restore.stderr)
        );
    }
    let mut child = Command::new(&exe)
        .env_remove("SHALLOT_HOME")
        .arg("--data-dir")
        .arg(dir)
        .args(["inbox", "--watch", "--source-ip", &ip.to_string()])
        .args(["--seed-node", &seed.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start shallot inbox --watch")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send((line, now_ms())).is_err() {
                return;
            }
        }
    });
    Ok((KillOnDrop(child), rx))
}

/// Runs `shallot audit`.
pub fn run(args: &AuditArgs) -> Result<()> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let violations = runtime.block_on(audit(args))?;
    println!("audit finished in {:.1} s", started.elapsed().as_secs_f64());
    if violations > 0 {
        bail!("{violations} violation(s): a node could link a client's address to an account");
    }
    Ok(())
}

/// The workload and the verdict; returns the number of violations.
#[allow(clippy::too_many_lines)] // One script, step by step.
async fn audit(args: &AuditArgs) -> Result<usize> {
    let nodes: usize = args.swarms.iter().sum();
    println!(
        "== 1. Devnet: {nodes} nodes in {} swarms on 127.0.{}.x, each keeping an observation log ==",
        args.swarms.len(),
        args.subnet
    );
    let mut net = LocalNet::start_observed(NetOptions {
        binary: std::env::current_exe().context("cannot find the shallot binary")?,
        swarms: args.swarms.clone(),
        subnet: args.subnet,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .context("could not start the devnet")?;
    let ip = |k: u8| IpAddr::V4(Ipv4Addr::new(127, 0, args.client_subnet, k));
    let (alice_id, bob_id) = (
        Identity::generate(&mut rand::rngs::OsRng),
        Identity::generate(&mut rand::rngs::OsRng),
    );
    let phrase = mnemonic::encode(&*alice_id.recovery_seed().context("no recovery seed")?);
    let (alice_sid, bob_sid) = (alice_id.session_id(), bob_id.session_id());
    let (a, b) = (alice_sid.account(), bob_sid.account());
    let seed = seed_outside(&net, &[a, b]);
    let clients = vec![
        Client::new("Alice", ip(1), a),
        Client::new("Bob", ip(2), b),
        Client::new("Alice's 2nd device", ip(3), a),
    ];

    println!(
        "\n== 2. Alice ({}) and Bob ({}), who exchanged Session IDs ==",
        ip(1),
        ip(2)
    );
    let home = net.path().to_path_buf();
    let alice = client(
        &home.join("alice"),
        alice_id,
        &bob_sid,
        (ip(1), seed),
        nodes,
    )
    .await?;
    let bob = client(&home.join("bob"), bob_id, &alice_sid, (ip(2), seed), nodes).await?;
    let bob = Arc::new(bob);
    let (bob_task, mut bob_inbox) = wait_loop(Arc::clone(&bob));
    // Let Bob's first waiting retrieve reach its node, so the message wakes a held wait.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut cases = Vec::new();

    println!("\n== 3. Alice → Bob, received by private push ==");
    let t0 = now_ms();
    let m1 = alice.send(&bob_sid, "audit m1: hello Bob").await?;
    let t1 = now_ms();
    let got = arrival(&mut bob_inbox, "audit m1", Duration::from_secs(10)).await?;
    println!(
        "  stored on {} node(s); Bob had it after {} ms",
        m1.stored_on,
        got - t0
    );
    cases.push(MessageCase {
        label: "m1 Alice → Bob".into(),
        sender: 0,
        recipient: b,
        sent: (t0, t1),
        received: vec![(1, got)],
    });

    println!("\n== 4. Bob → Alice, received by polling ==");
    let t0 = now_ms();
    bob.send(&alice_sid, "audit m2: hi Alice").await?;
    let t1 = now_ms();
    let got = poll_until(&alice, "audit m2").await?;
    println!("  Alice had it after {} ms", got - t0);
    cases.push(MessageCase {
        label: "m2 Bob → Alice".into(),
        sender: 1,
        recipient: a,
        sent: (t0, t1),
        received: vec![(0, got)],
    });

    println!("\n== 5. Alice unsends m1 ==");
    let t0 = now_ms();
    alice.unsend(&m1.hash.to_string()).await?;
    let t1 = now_ms();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bob.db().message(&m1.hash).await?.is_some() {
        if Instant::now() > deadline {
            bail!("Bob still has m1 10 s after Alice unsent it");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  gone from Bob's device after {} ms", now_ms() - t0);
    cases.push(MessageCase {
        label: "unsend of m1 (Alice → Bob)".into(),
        sender: 0,
        recipient: b,
        sent: (t0, t1),
        received: vec![(1, now_ms())],
    });

    println!(
        "\n== 6. Alice's second device (shallot inbox --watch, {}) ==",
        ip(3)
    );
    // A new device knows no contact until its first sync: a guard of it that happens to be in
    // Bob's swarm is left alone from then on. No message moves while it starts.
    let quiet = Duration::from_millis(args.window_ms + 300);
    tokio::time::sleep(quiet).await;
    let (device, mut device_out) = second_device(&home.join("alice2"), &phrase, ip(3), seed)?;
    arrival(&mut device_out, "audit m2", Duration::from_secs(30))
        .await
        .context("the second device did not sync Alice's history")?;
    tokio::time::sleep(quiet).await;
    let t0 = now_ms();
    bob.send(&alice_sid, "audit m3: to both of your devices")
        .await?;
    let t1 = now_ms();
    let on_device = arrival(&mut device_out, "audit m3", Duration::from_secs(10)).await?;
    let on_alice = poll_until(&alice, "audit m3").await?;
    println!(
        "  the second device had it after {} ms (private push), Alice's first after {} ms (poll)",
        on_device - t0,
        on_alice - t0
    );
    cases.push(MessageCase {
        label: "m3 Bob → Alice (both devices)".into(),
        sender: 1,
        recipient: a,
        sent: (t0, t1),
        received: vec![(2, on_device), (0, on_alice)],
    });

    println!("\n== 7. A path failure: the last relay of each of Alice's paths dies ==");
    let index_of: HashMap<_, _> = net
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.identity.ed25519_public(), i))
        .collect();
    for path in alice.client().paths() {
        if let Some(i) = path.nodes().last().and_then(|n| index_of.get(&n.ed25519)) {
            println!("  killing {}", net.nodes[*i].addr);
            net.kill(*i);
        }
    }
    let t0 = now_ms();
    let m4 = alice
        .send(&bob_sid, "audit m4: after a path failure")
        .await?;
    let t1 = now_ms();
    let got = arrival(&mut bob_inbox, "audit m4", Duration::from_secs(10)).await?;
    println!(
        "  stored on {} node(s); Bob had it after {} ms",
        m4.stored_on,
        got - t0
    );
    // Polls until one of them met a dead relay (a path is picked at random per request).
    for _ in 0..12 {
        if failed_on_path(&net, ip(1))? {
            break;
        }
        alice.receive().await?;
    }
    if !failed_on_path(&net, ip(1))? {
        bail!("no request of Alice's met a dead relay: the path failure was not exercised");
    }
    cases.push(MessageCase {
        label: "m4 Alice → Bob (after the path failure)".into(),
        sender: 0,
        recipient: b,
        sent: (t0, t1),
        received: vec![(1, got)],
    });

    // Held requests end (and are logged) when their clients go away.
    bob_task.abort();
    drop(device);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let node_info: HashMap<_, _> = net
        .nodes
        .iter()
        .map(|n| {
            (
                n.identity.ed25519_public(),
                NodeInfo {
                    addr: n.addr,
                    swarm: n.swarm,
                },
            )
        })
        .collect();
    let logs: Vec<PathBuf> = (0..net.nodes.len())
        .map(|i| net.observation_log(i))
        .collect();
    let people = HashMap::from([(a, "Alice".to_owned()), (b, "Bob".to_owned())]);
    let world = World::load(&logs, node_info, clients, people, &[(a, b)])?;
    let violations = report(&world, &net, &cases, args.window_ms, (a, b));
    // On a violation the records are kept for a closer look even when not asked to.
    let keep = args.save.clone().or_else(|| {
        (violations > 0).then(|| {
            std::env::temp_dir().join(format!("shallot-audit-{}.jsonl", std::process::id()))
        })
    });
    if let Some(path) = keep {
        let mut text = String::new();
        for o in world.observations() {
            text.push_str(&serde_json::to_string(o)?);
            text.push('\n');
        }
        std::fs::write(&path, text)
            .with_context(|| format!("could not write {}", path.display()))?;
        println!("  every node's observations: {}", path.display());
    }
    Ok(violations)
}

/// Whether a request from `ip` failed after its guard (a later hop could not reach the next).
fn failed_on_path(net: &LocalNet, ip: IpAddr) -> Result<bool> {
    for i in 0..net.nodes.len() {
        let path = net.observation_log(i);
        if !path.exists() {
            continue;
        }
        let failed = shallot_node::observe::read_log(&path)?
            .iter()
            .any(|o| o.peer_ip == ip && o.peer_node.is_none() && o.status == 502);
        if failed {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Prints what the nodes saw and the verdict; returns the number of violations.
fn report(
    world: &World,
    net: &LocalNet,
    cases: &[MessageCase],
    window_ms: u64,
    (a, b): (AccountId, AccountId),
) -> usize {
    let swarm = |account: &AccountId| -> String {
        let members: Vec<String> = net
            .swarm_of(account)
            .iter()
            .map(|&i| net.nodes[i].addr.ip().to_string())
            .collect();
        members.join(", ")
    };
    println!(
        "\n== 8. What the nodes saw ({} records) ==",
        world.observations().len()
    );
    println!("  Alice's swarm: {}", swarm(&a));
    println!("  Bob's swarm:   {}", swarm(&b));
    for case in cases {
        println!();
        print!("{}", world.message_report(case));
    }
    println!("\n  Who saw each client's address:");
    print!("{}", world.exposure());

    let findings = world.findings(window_ms);
    let stray = world.unattributed();
    println!(
        "\n== 9. Verdict: no node may see a client's address together with its account or its \
         correspondent's (in one request, or a message within {window_ms} ms, replicas counted), \
         nor learn a later hop =="
    );
    if findings.is_empty() && stray.is_empty() {
        println!(
            "  PASS: no violation in {} records",
            world.observations().len()
        );
    }
    for f in &findings {
        println!("  VIOLATION: {}", world.describe(f));
    }
    for o in &stray {
        println!(
            "  VIOLATION: a request from {}, which is no client's source address ({:?})",
            o.peer_ip, o.role
        );
    }
    findings.len() + stray.len()
}
