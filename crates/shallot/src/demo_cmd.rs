//! `shallot devnet demo`: a throwaway devnet, two new accounts exchanging a message each way
//! through 3-hop onion paths, and, for every node on those paths, what it learned about who
//! talks to whom — read from the nodes' own observation logs (as `shallot audit` does); then a
//! picture each way through the file server and what it learned; then a group of three and what
//! its swarm learned.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::{Messenger, ReceivedMessage, Seed};
use shallot_devnet::{DevnetConfig, Step, TempDevnet};
use shallot_node::clock::{Clock, SystemClock};
use shallot_proto::{Identity, SessionId};

use crate::local_accounts::new_account;
use crate::observations::{Client, MessageCase, NodeInfo, World};

/// Flags of `shallot devnet demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes (21 gives three swarms of 7: enough for the nodes that see each client's
    /// address to stay out of both accounts' swarms; with two swarms they cannot)
    #[arg(long, default_value_t = 21)]
    pub nodes: usize,
    /// Third octet of the nodes' 127.0.N.x addresses
    #[arg(long, default_value_t = 78)]
    pub subnet: u8,
    /// Keep the devnet's data directory afterwards (its processes are stopped either way)
    #[arg(long)]
    pub keep: bool,
    /// Third octet of the clients' addresses: Alice connects from 127.0.N.1, Bob from .2
    #[arg(long, default_value_t = 200)]
    pub client_subnet: u8,
}

/// Polls until a message arrives (replication is immediate, but be patient on a busy machine).
pub(crate) async fn fetch(who: &Messenger) -> Result<Vec<ReceivedMessage>> {
    for _ in 0..20 {
        let got = who.receive().await.context("fetching failed")?;
        if !got.is_empty() {
            return Ok(got);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("no message arrived within 10 s")
}

fn short(id: &SessionId) -> String {
    let text = id.to_string();
    format!("{}…{}", &text[..10], &text[text.len() - 6..])
}

/// Sends `text` from client `from` to client `to`, fetches it at `to`, and returns the message
/// for the report (who sent it when, who had it when).
async fn exchange(
    (from, sender): (usize, &Messenger),
    (to, recipient): (usize, &Messenger),
    names: [&str; 2],
    text: &str,
) -> Result<MessageCase> {
    let (from_name, to_name) = (names[from], names[to]);
    let t0 = SystemClock.now_ms();
    let sent = sender
        .send(&recipient.session_id(), text)
        .await
        .context("sending failed")?;
    let t1 = SystemClock.now_ms();
    println!(
        "  {from_name} sent {text:?}: stored on {} node(s) of {to_name}'s swarm",
        sent.stored_on
    );
    let got = fetch(recipient).await?;
    let received = SystemClock.now_ms();
    let Some(m) = got.iter().find(|m| m.hash == sent.hash) else {
        bail!("{to_name} fetched messages, but not the one {from_name} sent");
    };
    println!(
        "  {to_name} fetched {:?} from {} ({})",
        m.body,
        if m.sender == sender.session_id() {
            from_name
        } else {
            "someone else"
        },
        short(&m.sender)
    );
    Ok(MessageCase {
        label: format!("{from_name} -> {to_name}"),
        sender: from,
        recipient: recipient.session_id().account(),
        sent: (t0, t1),
        received: vec![(to, received)],
    })
}

/// Starts the devnet (`devnet up`'s code path, every node keeping an observation log).
async fn start(net: &TempDevnet, args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    let config = DevnetConfig {
        nodes: args.nodes,
        subnet: args.subnet,
        observation_logs: true,
        ..DevnetConfig::default()
    };
    let state = net.up(&config, Step::print).await?;
    eprintln!("devnet up in {:.1} s", started.elapsed().as_secs_f64());
    print!("{}", net.status_table(&state).await);
    Ok(())
}

async fn demo(net: &TempDevnet, nodes: usize, clients: u8) -> Result<()> {
    let state = net.state()?;
    // The clients bootstrap from the directory, as Session's do from seed servers that are not
    // service nodes: a seed node in a client's swarm would see its address and, seconds later,
    // its messages.
    let seed = Seed::JsonRpc(state.directory_url());
    let ip = |k: u8| IpAddr::V4(Ipv4Addr::new(127, 0, clients, k));

    println!(
        "\n== 2. Two accounts that exchanged Session IDs, each with its own node list, onion \
         paths and address =="
    );
    let new = || Identity::generate(&mut rand::rngs::OsRng);
    let (alice_id, bob_id) = (new(), new());
    let (alice_sid, bob_sid) = (alice_id.session_id(), bob_id.session_id());
    let (alice_dir, bob_dir) = (net.dir().join("alice"), net.dir().join("bob"));
    let alice = new_account(
        &alice_dir,
        alice_id,
        seed.clone(),
        (nodes, Some(ip(1))),
        Some(&bob_sid),
    );
    let alice = alice.await?;
    let bob = new_account(
        &bob_dir,
        bob_id,
        seed.clone(),
        (nodes, Some(ip(2))),
        Some(&alice_sid),
    )
    .await?;
    for (name, who, k) in [("Alice", &alice, 1), ("Bob", &bob, 2)] {
        println!(
            "  {name:<6} {}  from {}  ({} known nodes, {} paths of 3 hops)",
            who.session_id(),
            ip(k),
            who.client().pool_len(),
            who.client().paths().len()
        );
    }
    let names = ["Alice", "Bob"];
    // Every node, for the tables (before failures drop any from the clients' pools).
    let pool = alice.client().pool_snapshot();

    println!("\n== 3. Alice -> Bob ==");
    let mut cases = vec![exchange((0, &alice), (1, &bob), names, "Hi Bob, it's Alice!").await?];
    println!("\n== 4. Bob -> Alice ==");
    cases.push(exchange((1, &bob), (0, &alice), names, "Hi Alice, got it. Bob").await?);

    println!("\n== 5. What each node on those paths saw (from the nodes' observation logs) ==");
    let (a, b) = (alice.session_id().account(), bob.session_id().account());
    let nodes_seen: HashMap<_, _> = pool
        .nodes
        .iter()
        .map(|n| {
            let addr = SocketAddr::from((n.ip, n.https_port));
            (
                n.ed25519,
                NodeInfo {
                    addr,
                    swarm: n.swarm_id,
                },
            )
        })
        .collect();
    let logs: Vec<_> = state
        .nodes
        .iter()
        .map(|n| net.observation_log(n.index))
        .collect();
    let clients = vec![Client::new("Alice", ip(1), a), Client::new("Bob", ip(2), b)];
    let people = HashMap::from([(a, "Alice".to_owned()), (b, "Bob".to_owned())]);
    // Records of the replies are written as the replies leave: give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let world = World::load(&logs, nodes_seen, clients, people, &[(a, b)])?;
    report(&world, &cases)?;

    println!("\n== 6. A picture each way, as an attachment through the devnet's file server ==");
    let Some(files) = &state.file_server else {
        bail!("the devnet has no file server");
    };
    crate::demo_files::run(
        [("Alice", &alice), ("Bob", &bob)],
        files,
        &net.dir().join("fileserver"),
        &net.dir().join("pictures"),
        &[ip(1), ip(2)],
    )
    .await?;

    println!(
        "\n== 7. A group of three in its own swarm: Alice (admin), Bob and Carol (from {}) ==",
        ip(3)
    );
    let carol_dir = net.dir().join("carol");
    let carol = new_account(
        &carol_dir,
        new(),
        seed,
        (nodes, Some(ip(3))),
        Some(&alice_sid),
    )
    .await?;
    crate::demo_group::run([("Alice", &alice), ("Bob", &bob), ("Carol", &carol)]).await
}

/// Prints what each node saw of each message and the verdict; fails if a node could link a
/// client's address to an account.
fn report(world: &World, cases: &[MessageCase]) -> Result<()> {
    for case in cases {
        print!("{}", world.message_report(case));
        println!();
    }
    let findings = world.findings(DEMO_WINDOW_MS);
    for f in &findings {
        println!("  VIOLATION: {}", world.describe(f));
    }
    if !findings.is_empty() {
        bail!(
            "{} node(s) could link a client's address to an account",
            findings.len()
        );
    }
    println!("Conclusion, from what the nodes logged: no node saw a client's address together");
    println!("  with its account or its correspondent's, in one request or within");
    println!(
        "  {DEMO_WINDOW_MS} ms (replicas counted). The guard knows who you are (your address)"
    );
    println!("  but not whom you write to: the onion it relays is encrypted. The last hop and");
    println!("  the swarm members know the recipient's account but only the previous relay's");
    println!("  address. The relays in between know neither.");
    println!(
        "  (The message itself is end-to-end encrypted: no node can read it or see its sender.)"
    );
    Ok(())
}

/// The timing window of the demo's check (as `shallot audit`'s default).
const DEMO_WINDOW_MS: u64 = 3000;

/// Runs `shallot devnet demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    println!(
        "== 1. Start a devnet: {} nodes on 127.0.{}.x ==",
        args.nodes, args.subnet
    );
    let binary = std::env::current_exe().context("cannot find the shallot binary")?;
    let net = TempDevnet::new(binary, args.keep)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(crate::bench_net::until_interrupted(async {
        start(&net, args).await?;
        demo(&net, args.nodes, args.client_subnet).await
    }));
    drop(runtime);
    println!("\n== 8. Shut down ==");
    match net.close() {
        Ok((dir, true)) => println!("devnet stopped; removed {}", dir.display()),
        Ok((dir, false)) => println!("devnet stopped; its data stays in {}", dir.display()),
        Err(e) => eprintln!("warning: could not stop the devnet cleanly: {e:#}"),
    }
    result?;
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
