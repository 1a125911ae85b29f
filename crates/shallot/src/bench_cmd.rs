//! `shallot bench node`: a load generator that starts local node processes and drives them over
//! real HTTPS, reporting throughput, latency percentiles and the nodes' CPU cost per request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use shallot_client::Seed;
use shallot_devnet::{process, LocalNet, NetOptions};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::onion::{build_to_node, EncType, NodeKeys};
use shallot_proto::signing::SignedRequest;
use shallot_proto::{AccountId, Identity, Namespace};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Direct `store` RPCs of unique messages to one node (a one-member swarm: no replication)
    Store,
    /// The same to a member of a three-member swarm, which replicates each store to the other two
    /// before it answers (node CPU counts all three)
    StoreSwarm,
    /// Signed `retrieve` RPCs returning a page of messages
    Retrieve,
    /// Onion requests: relay hops through the nodes, then `info` at the destination
    Onion,
    /// Onion requests with a `store` at the destination (final-hop RPC)
    OnionStore,
}

/// Flags of `shallot bench node`.
#[derive(Args, Debug)]
pub struct BenchNodeArgs {
    /// Scenarios to run, in order
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "store,store-swarm,retrieve,onion,onion-store"
    )]
    scenario: Vec<Scenario>,
    /// Seconds per scenario
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Concurrent client requests in flight
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Message (store) or onion request payload size in bytes
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Relay hops before the destination in onion scenarios (1–15)
    #[arg(long, default_value_t = 3)]
    hops: usize,
}

/// A finished scenario.
struct Outcome {
    ok: u64,
    failed: u64,
    /// What the first failed request got, to say why requests fail.
    first_failure: Option<String>,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    node_cpu: Duration,
    rss_mib: (u64, u64),
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[crate::bench_stats::quantile_index(sorted.len(), p)]) / 1000.0
}

fn nodes_rss_mib(net: &LocalNet) -> u64 {
    net.pids()
        .into_iter()
        .map(process::resident_kib)
        .sum::<u64>()
        / 1024
}

fn nodes_cpu(net: &LocalNet) -> Duration {
    net.pids().into_iter().map(process::cpu_time).sum()
}

fn keys(net: &LocalNet, i: usize) -> NodeKeys {
    NodeKeys {
        ed25519: net.nodes[i].identity.ed25519_public(),
        x25519: net.nodes[i].identity.x25519_public(),
    }
}

/// A fresh account whose swarm is made of exactly these nodes.
fn account_on(net: &LocalNet, nodes: &[usize]) -> (Identity, AccountId) {
    loop {
        let id = Identity::generate(&mut rand::rngs::OsRng);
        let account: AccountId = id.session_id().into();
        if net.swarm_of(&account) == nodes {
            return (id, account);
        }
    }
}

fn now_ms() -> u64 {
    #[allow(clippy::disallowed_methods)]
    // The load generator signs with the real clock, as clients do.
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs the bench: starts two single-node swarms and measures each scenario.
pub fn run(args: &BenchNodeArgs) -> Result<()> {
    if !(1..=15).contains(&args.hops) {
        bail!("--hops must be between 1 and 15");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &BenchNodeArgs) -> Result<()> {
    let binary = std::env::current_exe().context("cannot find the shallot binary")?;
    eprintln!("starting 5 local nodes (two single-member swarms and one of three) …");
    let net = LocalNet::start(NetOptions {
        binary,
        swarms: vec![1, 1, 3],
        subnet: 200,
        log: "error".into(),
        node_args: Vec::new(),
    })
    .await?;
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "machine: {} logical CPUs shared by the nodes and this load generator; {} s per scenario, {} in flight, {} B payloads",
        cpus, args.duration, args.concurrency, args.payload
    );
    println!(
        "{:<12} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>10} {:>14}",
        "scenario",
        "ok",
        "failed",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "node cpu s",
        "per node-core"
    );
    for &scenario in &args.scenario {
        let outcome = run_scenario(&net, args, scenario).await?;
        report(scenario, args, &outcome);
    }
    Ok(())
}

fn report(scenario: Scenario, args: &BenchNodeArgs, o: &Outcome) {
    let mut lat = o.latencies_us.clone();
    lat.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rate = o.ok as f64 / o.elapsed.as_secs_f64();
    // Work units per request: layers peeled for onion scenarios, one for direct RPCs.
    let units = match scenario {
        Scenario::Onion | Scenario::OnionStore => args.hops + 1,
        Scenario::Store | Scenario::StoreSwarm | Scenario::Retrieve => 1,
    };
    #[allow(clippy::cast_precision_loss)]
    let per_core = if o.node_cpu.is_zero() {
        0.0
    } else {
        (o.ok as f64 * units as f64) / o.node_cpu.as_secs_f64()
    };
    let unit = if units > 1 { "hops/s" } else { "req/s" };
    println!(
        "{:<12} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>7.0} {unit} {:>9} → {}",
        format!("{scenario:?}").to_lowercase(),
        o.ok,
        o.failed,
        rate,
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
        percentile(&lat, 0.99),
        o.node_cpu.as_secs_f64(),
        per_core,
        o.rss_mib.0,
        o.rss_mib.1,
    );
    if let Some(failure) = &o.first_failure {
        println!("  first failure: {failure}");
    }
}

/// Builds the body of one request of a scenario (fresh each time: unique data, fresh onion keys).
fn request_body(
    net: &LocalNet,
    args: &BenchNodeArgs,
    scenario: Scenario,
    ctx: &Context2,
    n: u64,
) -> (usize, Vec<u8>) {
    let junk = "x".repeat(args.payload);
    match scenario {
        Scenario::Store | Scenario::StoreSwarm => {
            let (target, accounts) = if scenario == Scenario::Store {
                (0, &ctx.accounts)
            } else {
                (SWARM_MEMBER, &ctx.swarm_accounts)
            };
            let account = accounts[usize::try_from(n).unwrap_or(0) % accounts.len()];
            let data = format!("{n:016}{junk}");
            let body = json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": now_ms(),
                "ttl": 3_600_000, "data": shallot_proto::b64::encode(&data.as_bytes()[..args.payload.max(16)])}});
            (target, body.to_string().into_bytes())
        }
        // Signed afresh for every request, as a client does.
        Scenario::Retrieve => (0, retrieve_body(&ctx.reader, &ctx.inbox)),
        Scenario::Onion | Scenario::OnionStore => {
            // Alternate hops between the two nodes, ending at node 0.
            let path: Vec<NodeKeys> = (0..args.hops)
                .map(|h| keys(net, (args.hops - h) % 2))
                .collect();
            let request = if scenario == Scenario::Onion {
                json!({"method": "info", "params": {"padding": junk}})
            } else {
                let account = ctx.accounts[usize::try_from(n).unwrap_or(0) % ctx.accounts.len()];
                let data = format!("{n:016}{junk}");
                json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": now_ms(),
                    "ttl": 3_600_000, "data": shallot_proto::b64::encode(&data.as_bytes()[..args.payload.max(16)])}})
            };
            let guard = args.hops % 2;
            match build_to_node(
                &path,
                &keys(net, 0),
                request.to_string().as_bytes(),
                EncType::XChaCha20,
                &mut rand::rngs::OsRng,
            ) {
                Ok(onion) => (guard, onion.body),
                Err(_) => (guard, Vec::new()),
            }
        }
    }
}

/// Per-scenario fixed inputs.
struct Context2 {
    /// Accounts of node 0's one-member swarm.
    accounts: Vec<AccountId>,
    /// Accounts of the three-member swarm.
    swarm_accounts: Vec<AccountId>,
    /// The owner of `inbox`, which holds 100 messages to page through.
    reader: Identity,
    inbox: AccountId,
}

/// The node the store-swarm scenario sends to: the first member of the three-member swarm.
const SWARM_MEMBER: usize = 2;

/// A signed `retrieve` of the first page of `account`'s inbox, signed now.
fn retrieve_body(reader: &Identity, account: &AccountId) -> Vec<u8> {
    let ts = now_ms();
    let sig = reader.sign(
        &SignedRequest::Retrieve {
            namespace: Namespace(0),
            timestamp: ts,
        }
        .message(),
    );
    let retrieve = json!({"method": "retrieve", "params": {"pubkey": account.to_hex(),
        "pubkey_ed25519": reader.ed25519_public().to_hex(), "timestamp": ts,
        "signature": shallot_proto::b64::encode(sig.to_bytes()), "max_count": 10}});
    retrieve.to_string().into_bytes()
}

async fn prepare(net: &LocalNet, args: &BenchNodeArgs) -> Result<Context2> {
    let accounts: Vec<AccountId> = (0..16).map(|_| account_on(net, &[0]).1).collect();
    let swarm: Vec<usize> = (SWARM_MEMBER..SWARM_MEMBER + 3).collect();
    let swarm_accounts: Vec<AccountId> = (0..16).map(|_| account_on(net, &swarm).1).collect();
    // One account with 100 stored messages to page through.
    let (reader, account) = account_on(net, &[0]);
    for i in 0..100 {
        let body = json!({"method": "store", "params": {"pubkey": account.to_hex(), "timestamp": now_ms(), "ttl": 3_600_000,
            "data": shallot_proto::b64::encode(format!("{i:08}{}", "r".repeat(args.payload)))}});
        let response = net
            .http
            .post(net.nodes[0].url("/storage_rpc/v1"))
            .body(body.to_string())
            .send()
            .await?;
        if response.status() != 200 {
            bail!(
                "could not prepare retrieve data: HTTP {}",
                response.status()
            );
        }
    }
    Ok(Context2 {
        accounts,
        swarm_accounts,
        reader,
        inbox: account,
    })
}

async fn run_scenario(net: &LocalNet, args: &BenchNodeArgs, scenario: Scenario) -> Result<Outcome> {
    let ctx = Arc::new(prepare(net, args).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let path = if matches!(
        scenario,
        Scenario::Store | Scenario::StoreSwarm | Scenario::Retrieve
    ) {
        "/storage_rpc/v1"
    } else {
        "/onion_req/v2"
    };
    // Requests started during the warm-up (connections opened, caches filled) are not counted;
    // the clock, the counters and the nodes' CPU time start when it ends.
    let measuring = Arc::new(AtomicBool::new(false));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let rss_before = nodes_rss_mib(net);
    let tasks = (0..args.concurrency).map(|_| {
        let (stop, counter, failed, ctx, measuring, first_failure) = (
            stop.clone(),
            counter.clone(),
            failed.clone(),
            ctx.clone(),
            measuring.clone(),
            first_failure.clone(),
        );
        async move {
            // Every counted request's latency, failed ones included.
            let mut latencies = Vec::new();
            let mut ok = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let counted = measuring.load(Ordering::Relaxed);
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (target, body) = request_body(net, args, scenario, &ctx, n);
                let sent = Instant::now();
                let failure = send(net, target, path, body).await;
                let success = failure.is_none();
                if let Some(failure) = failure {
                    first_failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get_or_insert(failure);
                }
                if !counted {
                    continue;
                }
                latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                if success {
                    ok += 1;
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            (ok, latencies)
        }
    });
    let measured = async {
        tokio::time::sleep(WARM_UP).await;
        let cpu_before = nodes_cpu(net);
        let started = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
        stop.store(true, Ordering::Relaxed);
        (cpu_before, started)
    };
    let (results, (cpu_before, started)) =
        futures_util::future::join(futures_util::future::join_all(tasks), measured).await;
    // Requests still in flight at the stop finish before this; they count, so the window
    // reaches to the last of them.
    let elapsed = started.elapsed();
    let node_cpu = nodes_cpu(net).saturating_sub(cpu_before);
    let ok = results.iter().map(|(ok, _)| ok).sum();
    let latencies_us: Vec<u32> = results.into_iter().flat_map(|(_, l)| l).collect();
    let first_failure = first_failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    Ok(Outcome {
        ok,
        failed: failed.load(Ordering::Relaxed),
        first_failure,
        elapsed,
        latencies_us,
        node_cpu,
        rss_mib: (rss_before, nodes_rss_mib(net)),
    })
}

/// Sends one request; `None` if it got a 200 and its whole body, else what went wrong.
async fn send(net: &LocalNet, target: usize, path: &str, body: Vec<u8>) -> Option<String> {
    let response = match net
        .http
        .post(net.nodes[target].url(path))
        .body(body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return Some(error.to_string()),
    };
    let status = response.status();
    match response.bytes().await {
        Ok(_) if status == 200 => None,
        Ok(body) => Some(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
        Err(error) => Some(format!("HTTP {status}, body lost: {error}")),
    }
}

/// Not measured at the start of each scenario.
const WARM_UP: Duration = Duration::from_millis(500);

/// Flags of `shallot bench e2e`.
#[derive(Args, Debug)]
pub struct BenchE2eArgs {
    /// Messages Alice sends Bob per mode (private push, direct push, then polling)
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Devnet nodes (14 gives two swarms of 7)
    #[arg(long, default_value_t = 14)]
    nodes: usize,
    /// Third octet of the devnet's 127.0.N.x addresses
    #[arg(long, default_value_t = 79)]
    subnet: u8,
}

/// When each hash became visible to Bob.
type Arrivals = std::sync::Mutex<std::collections::HashMap<MessageHash, Instant>>;

/// Sends `count` messages one after another and returns each one's send-start → visible time
/// (µs), waiting up to 10 s per message; the second value counts messages never seen.
async fn timed_sends(
    alice: &shallot_client::Messenger,
    bob: &shallot_proto::SessionId,
    arrivals: &Arrivals,
    count: usize,
    label: &str,
) -> Result<(Vec<u32>, usize)> {
    let mut latencies = Vec::with_capacity(count);
    let mut lost = 0;
    for i in 0..count {
        let start = Instant::now();
        let sent = alice
            .send(bob, &format!("bench {label} {i}"))
            .await
            .context("sending failed")?;
        let deadline = start + Duration::from_secs(10);
        loop {
            let seen = arrivals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&sent.hash)
                .copied();
            if let Some(at) = seen {
                let us = at.saturating_duration_since(start).as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                break;
            }
            if Instant::now() > deadline {
                lost += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if (i + 1) % 100 == 0 {
            eprint!("\r  {label}: {}/{count}   ", i + 1);
        }
    }
    eprintln!();
    latencies.sort_unstable();
    Ok((latencies, lost))
}

fn print_latencies(label: &str, sorted: &[u32], lost: usize) {
    let mean = if sorted.is_empty() {
        0.0
    } else {
        #[allow(clippy::cast_precision_loss)]
        let mean = sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64;
        mean / 1000.0
    };
    println!(
        "{label:<8} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6}",
        sorted.len(),
        percentile(sorted, 0.50),
        percentile(sorted, 0.95),
        percentile(sorted, 0.99),
        mean,
        lost
    );
}

/// Private push: Bob waits through his onion path (waiting retrieves to one swarm member at a
/// time); a message counts when a waiting retrieve returns it. Returns the latencies, the lost
/// count, the waiting retrieves sent and how many of them a node held.
async fn private_push_run(
    alice: &shallot_client::Messenger,
    bob: &std::sync::Arc<shallot_client::Messenger>,
    messages: usize,
) -> Result<(Vec<u32>, usize, u64, u64)> {
    use std::sync::Arc;
    let bob_sid = bob.session_id();
    let arrivals = Arc::new(Arrivals::default());
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let waiter = {
        let (bob, arrivals, counts) = (Arc::clone(bob), Arc::clone(&arrivals), Arc::clone(&counts));
        tokio::spawn(async move {
            loop {
                counts.0.fetch_add(1, Ordering::Relaxed);
                let wait = shallot_client::messenger::PUSH_WAIT;
                if let Ok(waited) = bob.receive_waiting(wait).await {
                    let at = Instant::now();
                    if waited.waited {
                        counts.1.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut map = arrivals
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for m in waited.messages {
                        map.insert(m.hash, at);
                    }
                }
            }
        })
    };
    eprintln!("sending {messages} messages with private push …");
    let result = timed_sends(alice, &bob_sid, &arrivals, messages, "private").await;
    // The last waiting request ends when its wait passes; do not hold the bench for it.
    waiter.abort();
    let (latencies, lost) = result?;
    Ok((
        latencies,
        lost,
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    ))
}

/// Runs `shallot bench e2e`.
pub fn run_e2e(args: &BenchE2eArgs) -> Result<()> {
    use shallot_client::push;
    use std::sync::Arc;

    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }
    let (net, runtime) = crate::bench_net::start(args.nodes)?;
    let result: Result<()> = runtime.block_on(crate::bench_net::until_interrupted(async {
        let seed = Seed::Node(crate::bench_net::up(&net, args.nodes, args.subnet).await?.1);
        let new = || Identity::generate(&mut rand::rngs::OsRng);
        let bob_id = new();
        let account = |name, id, seed| crate::bench_net::account(&net, name, id, seed, args.nodes);
        let alice = account("alice", new(), seed.clone()).await?;
        let bob = Arc::new(account("bob", bob_id.clone(), seed).await?);
        let bob_sid = bob.session_id();
        // Bob writes first, so Alice is his contact: a stranger's messages are a request, and
        // past 100 of them the rest are refused (`MAX_REQUEST_MESSAGES_PER_SENDER`), which
        // the bench would count as lost.
        bob.send(&alice.session_id(), "hi Alice")
            .await
            .context("Bob's first message to Alice")?;

        // (a) Private push: Bob waits through his onion path.
        let (private_lat, private_lost, waits, held) =
            private_push_run(&alice, &bob, args.messages).await?;
        eprintln!(
            "private push: p50 {:.1} ms, p95 {:.1} ms, {private_lost} lost",
            percentile(&private_lat, 0.50),
            percentile(&private_lat, 0.95)
        );

        // (b) Direct push (opt-in): Bob holds a WebSocket subscription at a swarm member; a
        // message counts when its notification decrypts.
        let arrivals = Arc::new(Arrivals::default());
        let mut subscription = push::subscribe(bob.client(), &bob_id);
        if !subscription.wait_connected(Duration::from_secs(20)).await {
            bail!("no swarm member accepted Bob's push subscription");
        }
        let consumer = {
            let (bob, arrivals) = (Arc::clone(&bob), Arc::clone(&arrivals));
            tokio::spawn(async move {
                while let Some(note) = subscription.next().await {
                    if let Ok(Some(m)) = bob.accept_pushed(&note).await {
                        let at = Instant::now();
                        arrivals
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(m.hash, at);
                    }
                }
            })
        };
        eprintln!("sending {} messages with push …", args.messages);
        let (push_lat, push_lost) =
            timed_sends(&alice, &bob_sid, &arrivals, args.messages, "push").await?;
        consumer.abort();

        // (c) Polling: Bob polls back to back; a message counts when a retrieve returns it.
        let arrivals = Arc::new(Arrivals::default());
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (bob, arrivals, stop) =
                (Arc::clone(&bob), Arc::clone(&arrivals), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut polls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    polls += 1;
                    if let Ok(messages) = bob.receive().await {
                        let at = Instant::now();
                        let mut map = arrivals
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        for m in messages {
                            map.insert(m.hash, at);
                        }
                    }
                }
                polls
            })
        };
        eprintln!("sending {} messages with polling …", args.messages);
        let (poll_lat, poll_lost) =
            timed_sends(&alice, &bob_sid, &arrivals, args.messages, "poll").await?;
        stop.store(true, Ordering::Relaxed);
        let polls = poller.await.unwrap_or(0);

        println!("\nshallot bench e2e: send start → visible at the recipient (ms)");
        println!("machine: {}", crate::bench_stats::machine());
        println!(
            "devnet: {} nodes, 3-hop onion paths, sequential sends (store + sync copy)",
            args.nodes
        );
        println!(
            "{:<8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6}",
            "mode", "n", "p50", "p95", "p99", "mean", "lost"
        );
        print_latencies("private", &private_lat, private_lost);
        print_latencies("direct", &push_lat, push_lost);
        print_latencies("polling", &poll_lat, poll_lost);
        println!(
            "(private: {waits} waiting retrieves ({held} held by their node) through Bob's 3-hop \
             onion paths, no connection from Bob to a swarm member; direct: a WebSocket from Bob \
             to a swarm member, which learns his IP address with his account)"
        );
        println!("(polling: {polls} back-to-back polls of 2 swarm members each)");
        Ok(())
    }));
    drop(runtime);
    drop(net);
    result
}
