//! `shallot bench timing`: the timing-correlation experiment. For each setting of the timing
//! defences (send jitter, relay delay, cover traffic) it starts a devnet whose nodes keep
//! observation logs, runs K users — real clients, each on its own loopback address, waiting for
//! messages through their onion paths — that send to random partners at random (Poisson) times,
//! then lets the adversary of [`crate::timing_attack`] guess each message's sender from the
//! nodes' logs alone. Prints its accuracy next to chance (1/K), the latency the defence added
//! and the bytes it cost.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::Rng;
use shallot_client::messenger::PUSH_WAIT;
use shallot_client::{ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
use shallot_devnet::{LocalNet, NetOptions};
use shallot_node::clock::{Clock, SystemClock};
use shallot_node::observe::{read_log, Observation, Role};
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{AccountId, Identity, SessionId};

use crate::timing_attack::{attack, GuardSeen, Score, Sent, StoreSeen};

/// One setting of the three defences.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Client send jitter, ms (upper bound).
    pub jitter_ms: u64,
    /// Client timestamp backdating, ms (upper bound).
    pub backdate_ms: u64,
    /// Node relay delay per hop, ms (upper bound).
    pub relay_ms: u64,
    /// Client dummy sends per minute.
    pub cover_per_minute: f64,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.jitter_ms > 0 {
            parts.push(format!("jitter={}", self.jitter_ms));
        }
        if self.backdate_ms > 0 {
            parts.push(format!("backdate={}", self.backdate_ms));
        }
        if self.relay_ms > 0 {
            parts.push(format!("relay={}", self.relay_ms));
        }
        if self.cover_per_minute > 0.0 {
            parts.push(format!("cover={}", self.cover_per_minute));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("+"))
        }
    }
}

impl FromStr for Setting {
    type Err = String;

    /// `none`, or `+`-joined `jitter=MS`, `backdate=MS`, `relay=MS`, `cover=PER_MINUTE`.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut setting = Self {
            jitter_ms: 0,
            backdate_ms: 0,
            relay_ms: 0,
            cover_per_minute: 0.0,
        };
        if text == "none" {
            return Ok(setting);
        }
        for part in text.split('+') {
            let bad = || {
                format!("{part:?}: expected jitter=MS, backdate=MS, relay=MS or cover=PER_MINUTE")
            };
            let (key, value) = part.split_once('=').ok_or_else(bad)?;
            match key {
                "jitter" => setting.jitter_ms = value.parse().map_err(|_| bad())?,
                "backdate" => setting.backdate_ms = value.parse().map_err(|_| bad())?,
                "relay" => setting.relay_ms = value.parse().map_err(|_| bad())?,
                "cover" => setting.cover_per_minute = crate::msg_cmd::parse_cover_rate(value)?,
                _ => return Err(bad()),
            }
        }
        Ok(setting)
    }
}

/// Flags of `shallot bench timing`.
#[derive(Args, Debug)]
pub struct BenchTimingArgs {
    /// Active users, each a client on its own address 127.0.<client-subnet>.N
    #[arg(long, default_value_t = 20)]
    pub clients: usize,
    /// Messages sent per setting
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Mean seconds between two messages of one user (Poisson): the network carries
    /// clients / interval messages a second
    #[arg(long, default_value_t = 10.0)]
    pub interval_secs: f64,
    /// Settings to measure, in order: `none`, or `+`-joined `jitter=MS` (client send jitter up
    /// to MS), `backdate=MS` (message timestamps up to MS in the past), `relay=MS` (each relay
    /// waits up to MS), `cover=N` (N dummy sends a minute per client)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,jitter=2000,relay=100,relay=300,cover=6,cover=30,relay=300+cover=30,\
                         jitter=2000+relay=100,jitter=2000+relay=300,jitter=2000+relay=300+cover=6,\
                         jitter=2000+relay=300+cover=30"
    )]
    pub settings: Vec<Setting>,
    /// Members of each swarm of the devnet
    #[arg(long, value_delimiter = ',', default_value = "3,3,3,3")]
    pub swarms: Vec<usize>,
    /// Third octet of the nodes' 127.0.N.x addresses
    #[arg(long, default_value_t = 203)]
    pub subnet: u8,
    /// Third octet of the clients' addresses
    #[arg(long, default_value_t = 204)]
    pub client_subnet: u8,
    /// Also print each setting's result as a JSON line
    #[arg(long)]
    pub json: bool,
}

/// What one setting's run measured.
#[derive(Debug, Clone)]
struct Outcome {
    setting: Setting,
    score: Score,
    /// Send start → visible at the recipient, ms, sorted.
    latencies: Vec<u64>,
    /// Messages never seen by their recipient.
    lost: usize,
    /// Bytes between clients and their guards, per client and minute.
    bytes_per_client_minute: f64,
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[crate::bench_stats::quantile_index(sorted.len(), p)]
}

/// Runs `shallot bench timing`.
pub fn run(args: &BenchTimingArgs) -> Result<()> {
    if !(2..=250).contains(&args.clients) {
        bail!("--clients must be between 2 and 250");
    }
    if args.messages == 0 || !args.interval_secs.is_finite() || args.interval_secs <= 0.0 {
        bail!("--messages and --interval-secs must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    println!(
        "shallot bench timing: can nodes that see guards and swarms match senders to recipients?"
    );
    println!("machine: {}", crate::bench_stats::machine());
    println!(
        "{} users on their own addresses, waiting through their onion paths; {} messages per \
         setting to random partners, one per user every {} s on average (Poisson); {} nodes in \
         swarms of {:?}; chance = 1/{} = {:.3}",
        args.clients,
        args.messages,
        args.interval_secs,
        args.swarms.iter().sum::<usize>(),
        args.swarms,
        args.clients,
        1.0 / f64::from(u32::try_from(args.clients).unwrap_or(u32::MAX)),
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    for &setting in &args.settings {
        eprintln!("setting {setting} …");
        let outcome = runtime.block_on(run_setting(args, setting))?;
        if args.json {
            println!("{}", json_line(&outcome));
        }
        outcomes.push(outcome);
    }
    print_table(&outcomes);
    Ok(())
}

fn json_line(o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "setting": o.setting.to_string(),
        "jitter_ms": o.setting.jitter_ms,
        "backdate_ms": o.setting.backdate_ms,
        "relay_ms": o.setting.relay_ms,
        "cover_per_minute": o.setting.cover_per_minute,
        "messages": o.score.messages,
        "unmatched": o.score.unmatched,
        "accuracy_arrival": o.score.arrival,
        "accuracy_joint": o.score.joint,
        "candidates": o.score.candidates,
        "latency_p50_ms": percentile(&o.latencies, 0.5),
        "latency_p99_ms": percentile(&o.latencies, 0.99),
        "lost": o.lost,
        "bytes_per_client_minute": o.bytes_per_client_minute,
    })
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "\n{:<34} {:>5} {:>8} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9} {:>6}",
        "setting",
        "msgs",
        "arrival",
        "joint",
        "cands",
        "p50 ms",
        "p99 ms",
        "+p50",
        "+p99",
        "KiB/min",
        "+bytes"
    );
    let base = outcomes.first();
    for o in outcomes {
        let (p50, p99) = (
            percentile(&o.latencies, 0.5),
            percentile(&o.latencies, 0.99),
        );
        let (b50, b99, bytes) = base.map_or((p50, p99, o.bytes_per_client_minute), |b| {
            (
                percentile(&b.latencies, 0.5),
                percentile(&b.latencies, 0.99),
                b.bytes_per_client_minute,
            )
        });
        #[allow(clippy::cast_possible_wrap)]
        let added = |a: u64, b: u64| a as i64 - b as i64;
        let overhead = if bytes > 0.0 {
            format!("{:+.0}%", (o.bytes_per_client_minute / bytes - 1.0) * 100.0)
        } else {
            "-".into()
        };
        println!(
            "{:<34} {:>5} {:>8.3} {:>6.3} {:>6.1} {:>7} {:>7} {:>+7} {:>+7} {:>9.0} {:>6}",
            o.setting.to_string(),
            o.score.messages,
            o.score.arrival,
            o.score.joint,
            o.score.candidates,
            p50,
            p99,
            added(p50, b50),
            added(p99, b99),
            o.bytes_per_client_minute / 1024.0,
            overhead
        );
        if o.lost > 0 || o.score.unmatched > 0 {
            println!(
                "{:<34} ({} messages not delivered, {} not matched to a store)",
                "", o.lost, o.score.unmatched
            );
        }
    }
    println!(
        "\narrival: the adversary matches each store to the client whose guard saw a request at \
         the most typical time before it;\njoint: it also uses the store's plaintext timestamp \
         (the typical time from it to the guard). cands: clients with a plausible request per \
         message.\n+p50/+p99: send start → visible at the recipient, against the first row. \
         KiB/min: bytes between one client and its guards (padded requests and replies)."
    );
}

/// A user of the experiment.
struct User {
    messenger: Arc<Messenger>,
    ip: IpAddr,
}

/// When each message became visible at its recipient (ms), by hash.
type Arrivals = Arc<Mutex<HashMap<MessageHash, u64>>>;

async fn start_users(
    net: &LocalNet,
    args: &BenchTimingArgs,
    setting: Setting,
) -> Result<Vec<User>> {
    let mut starting = tokio::task::JoinSet::new();
    for k in 0..args.clients {
        let octet = u8::try_from(k + 1).context("too many clients")?;
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, args.client_subnet, octet));
        let config = ClientConfig {
            seeds: net.nodes.iter().map(|n| Seed::Node(n.addr)).collect(),
            min_refresh_agreement: net.nodes.len(),
            source_ip: Some(ip),
            send_jitter: Duration::from_millis(setting.jitter_ms),
            backdate: Duration::from_millis(setting.backdate_ms),
            cover_per_minute: setting.cover_per_minute,
            ..ClientConfig::default()
        };
        let dir = net.dir.path().join(format!("client{k}"));
        starting.spawn(async move {
            std::fs::create_dir_all(&dir)?;
            let identity = Identity::generate(&mut rand::rngs::OsRng);
            let client = OnionClient::bootstrap(config, NetworkClock::default()).await?;
            let db = Db::open_in_dir(&dir, &identity)?;
            let messenger = Messenger::new(identity, client, db);
            messenger.client().ensure_paths().await?;
            anyhow::Ok((
                k,
                User {
                    messenger: Arc::new(messenger),
                    ip,
                },
            ))
        });
    }
    let mut users = Vec::new();
    while let Some(joined) = starting.join_next().await {
        users.push(joined.context("a client task failed")??);
    }
    users.sort_by_key(|(k, _)| *k);
    Ok(users.into_iter().map(|(_, u)| u).collect())
}

/// Each user waits for messages through its onion path, as `shallot inbox --watch` does.
fn start_waiters(users: &[User], arrivals: &Arrivals) -> Vec<tokio::task::JoinHandle<()>> {
    users
        .iter()
        .map(|user| {
            let (messenger, arrivals) = (Arc::clone(&user.messenger), Arc::clone(arrivals));
            tokio::spawn(async move {
                loop {
                    match messenger.receive_waiting(PUSH_WAIT).await {
                        Ok(waited) => {
                            let at = now_ms();
                            {
                                let mut map =
                                    arrivals.lock().unwrap_or_else(PoisonError::into_inner);
                                for m in waited.messages {
                                    map.insert(m.hash, at);
                                }
                            }
                            if !waited.waited {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                        Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                    }
                }
            })
        })
        .collect()
}

/// A message sent: the ground truth, its hash and when it started.
struct Record {
    sent: Sent,
    hash: MessageHash,
}

/// Sends `args.messages` messages from random users to random others at Poisson times (each
/// send in its own task, so a slow one does not hold up the schedule).
async fn workload(users: &[User], args: &BenchTimingArgs) -> Vec<Record> {
    let sids: Vec<SessionId> = users.iter().map(|u| u.messenger.session_id()).collect();
    #[allow(clippy::cast_precision_loss)]
    let per_minute = 60.0 * args.clients as f64 / args.interval_secs;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..args.messages {
        let gap = shallot_client::timing::poisson_gap(per_minute, &mut rand::thread_rng())
            .unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(gap).await;
        let (sender, recipient) = {
            let mut rng = rand::thread_rng();
            let sender = rng.gen_range(0..users.len());
            (
                sender,
                (sender + rng.gen_range(1..users.len())) % users.len(),
            )
        };
        let messenger = Arc::clone(&users[sender].messenger);
        let to = sids[recipient];
        sends.spawn(async move {
            let start_ms = now_ms();
            let sent = messenger.send(&to, &format!("timing {i}")).await.ok()?;
            Some(Record {
                sent: Sent {
                    sender,
                    recipient,
                    timestamp_ms: sent.timestamp,
                    start_ms,
                },
                hash: sent.hash,
            })
        });
        if (i + 1) % 20 == 0 {
            eprint!("\r  {}/{}   ", i + 1, args.messages);
        }
    }
    eprintln!();
    let mut records = Vec::new();
    while let Some(joined) = sends.join_next().await {
        if let Ok(Some(record)) = joined {
            records.push(record);
        }
    }
    records
}

async fn run_setting(args: &BenchTimingArgs, setting: Setting) -> Result<Outcome> {
    let binary = std::env::current_exe().context("cannot find the shallot binary")?;
    let net = LocalNet::start_observed(NetOptions {
        binary,
        swarms: args.swarms.clone(),
        subnet: args.subnet,
        log: "error".into(),
        node_args: vec!["--relay-delay-ms".into(), setting.relay_ms.to_string()],
    })
    .await?;
    let users = start_users(&net, args, setting).await?;
    let arrivals: Arrivals = Arc::default();
    let waiters = start_waiters(&users, &arrivals);
    let covers: Vec<_> = users
        .iter()
        .filter_map(|u| u.messenger.client().start_cover())
        .collect();
    // Let every wait be held before the first message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from_ms = now_ms();
    let records = workload(&users, args).await;
    // Delivery: until every message arrived, or 10 s after the last send.
    let deadline = now_ms() + 10_000;
    while now_ms() < deadline {
        let delivered = {
            let map = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
            records.iter().all(|r| map.contains_key(&r.hash))
        };
        if delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let to_ms = now_ms();
    for waiter in &waiters {
        waiter.abort();
    }
    drop(covers);
    let mut observations = Vec::new();
    for i in 0..net.nodes.len() {
        observations.extend(read_log(&net.observation_log(i)).unwrap_or_default());
    }
    let outcome = measure(
        setting,
        &users,
        &records,
        &arrivals,
        &observations,
        (from_ms, to_ms),
    );
    drop(users);
    drop(net);
    Ok(outcome)
}

/// Turns one run's logs and ground truth into an [`Outcome`].
fn measure(
    setting: Setting,
    users: &[User],
    records: &[Record],
    arrivals: &Arrivals,
    observations: &[Observation],
    (from_ms, to_ms): (u64, u64),
) -> Outcome {
    let by_ip: HashMap<IpAddr, usize> = users.iter().enumerate().map(|(k, u)| (u.ip, k)).collect();
    let by_account: HashMap<AccountId, usize> = users
        .iter()
        .enumerate()
        .map(|(k, u)| (u.messenger.session_id().account(), k))
        .collect();
    let mut guards = Vec::new();
    let mut stores = Vec::new();
    let mut guard_bytes = 0u64;
    for o in observations {
        match o.role {
            Role::OnionGuard => {
                let Some(&client) = by_ip.get(&o.peer_ip) else {
                    continue;
                };
                guards.push(GuardSeen {
                    client,
                    at_ms: o.at_ms,
                    done_ms: o.done_ms,
                });
                if (from_ms..=to_ms).contains(&o.at_ms) {
                    guard_bytes += o.request_bytes + o.reply_bytes;
                }
            }
            Role::OnionExit if o.method.as_deref() == Some("store") => {
                let (Some(account), Some(&timestamp_ms)) =
                    (o.accounts.first(), o.store_timestamps.first())
                else {
                    continue;
                };
                if let Some(&recipient) = by_account.get(account) {
                    stores.push(StoreSeen {
                        recipient,
                        at_ms: o.at_ms,
                        timestamp_ms,
                    });
                }
            }
            _ => {}
        }
    }
    let sent: Vec<Sent> = records.iter().map(|r| r.sent).collect();
    let score = attack(&guards, &sent, &stores, users.len());
    let map = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
    let mut latencies: Vec<u64> = records
        .iter()
        .filter_map(|r| Some(map.get(&r.hash)?.saturating_sub(r.sent.start_ms)))
        .collect();
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let minutes = (to_ms.saturating_sub(from_ms)).max(1) as f64 / 60_000.0;
    #[allow(clippy::cast_precision_loss)]
    let bytes_per_client_minute = guard_bytes as f64 / users.len() as f64 / minutes;
    Outcome {
        setting,
        score,
        lost: records.len() - latencies.len(),
        latencies,
        bytes_per_client_minute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_print() {
        let s: Setting = "jitter=1000+backdate=500+relay=200+cover=12"
            .parse()
            .unwrap();
        assert_eq!(
            s,
            Setting {
                jitter_ms: 1000,
                backdate_ms: 500,
                relay_ms: 200,
                cover_per_minute: 12.0
            }
        );
        assert_eq!(s.to_string(), "jitter=1000+backdate=500+relay=200+cover=12");
        assert_eq!("none".parse::<Setting>().unwrap().to_string(), "none");
        for bad in ["", "jitter", "jitter=x", "speed=3", "cover=-1"] {
            assert!(bad.parse::<Setting>().is_err(), "{bad}");
        }
    }
}
