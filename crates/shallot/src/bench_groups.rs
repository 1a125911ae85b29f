//! `shallot bench groups`: on a devnet, the time from a group message's send until every member
//! of a 10-member group has it (members waiting by private push, or polling back to back with
//! `--poll`), beside its bound measured in the same run (the same fan-out without the group
//! layer: one 1:1 message to an account whose nine devices wait the same way), and the time an
//! admin takes to remove one member of a large group (kicked notice, revocation, rekey, new
//! configs).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::messenger::PUSH_WAIT;
use shallot_client::{Messenger, Seed};
use shallot_devnet::{process, TempDevnet};
use shallot_proto::group::GroupId;
use shallot_proto::message_hash::MessageHash;
use shallot_proto::{Identity, SessionId};

use crate::bench_stats::quantile_index;

/// Flags of `shallot bench groups`.
#[derive(Args, Debug)]
pub struct BenchGroupsArgs {
    /// Group messages the admin sends, one after another
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Members of the group, admin included
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Members of the group one is removed from (the others are random Session IDs)
    #[arg(long, default_value_t = 100)]
    rekey_members: usize,
    /// Removals timed in that group, one member each
    #[arg(long, default_value_t = 5)]
    removals: usize,
    /// Devnet nodes
    #[arg(long, default_value_t = 14)]
    nodes: usize,
    /// Third octet of the devnet's 127.0.N.x addresses
    #[arg(long, default_value_t = 81)]
    subnet: u8,
    /// Members poll back to back instead of waiting (private push)
    #[arg(long)]
    poll: bool,
}

/// When each member first saw each message: per member, hash → instant.
type Sightings = Mutex<Vec<HashMap<MessageHash, Instant>>>;

/// How long a message may take to reach every member before it counts as lost.
const PATIENCE: Duration = Duration::from_secs(10);

/// Messages sent to the group, then to the bound's devices, in turn: blocks this long, so both
/// see the same machine load (other builds come and go) and little of each other's wake-up.
const BLOCK: usize = 20;

fn ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[quantile_index(sorted.len(), p)]) / 1000.0
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// An account of the bench in its own directory of `net`.
async fn account(net: &TempDevnet, name: &str, seed: &Seed, nodes: usize) -> Result<Messenger> {
    let identity = Identity::generate(&mut rand::rngs::OsRng);
    let dir = net.dir().join(name);
    crate::local_accounts::new_account(&dir, identity, seed.clone(), (nodes, None), None).await
}

/// Polls `who` until the invite to `group` shows, then accepts it.
async fn accept_invite(who: &Messenger, group: &GroupId) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let invited = who
            .receive()
            .await
            .ok()
            .is_some_and(|got| got.iter().any(|m| m.group == Some(*group)));
        if invited || who.group(group).await.is_ok() {
            who.accept_group(group)
                .await
                .context("accepting the invite")?;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("a member never saw the group invite");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What [`timed_sends`] measured: per message, the time from send start until the last
/// receiver saw it (µs; sorted once [`Self::sort`]ed), messages some receiver never saw within
/// [`PATIENCE`], and per receiver each message's time until it saw it.
#[derive(Default)]
struct Timed {
    all: Vec<u32>,
    lost: usize,
    per_member: Vec<Vec<u32>>,
}

impl Timed {
    fn sort(&mut self) {
        self.all.sort_unstable();
        for m in &mut self.per_member {
            m.sort_unstable();
        }
    }

    fn extend(&mut self, more: Self) {
        self.all.extend(more.all);
        self.lost += more.lost;
        self.per_member.resize(more.per_member.len(), Vec::new());
        for (mine, theirs) in self.per_member.iter_mut().zip(more.per_member) {
            mine.extend(theirs);
        }
    }
}

/// Sends `count` messages one after another with `send` (message number → its hash) and times
/// each until every receiver of `sightings` saw it.
async fn timed_sends<F, Fut>(
    mut send: F,
    sightings: &Sightings,
    first: usize,
    count: usize,
) -> Result<Timed>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<MessageHash>>,
{
    let members = sightings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    let mut timed = Timed {
        all: Vec::with_capacity(count),
        lost: 0,
        per_member: vec![Vec::with_capacity(count); members],
    };
    for i in first..first + count {
        let start = Instant::now();
        let hash = send(i).await?;
        let deadline = start + PATIENCE;
        loop {
            let seen: Vec<Option<Instant>> = sightings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|m| m.get(&hash).copied())
                .collect();
            if seen.iter().all(Option::is_some) {
                for (member, at) in seen.iter().flatten().enumerate() {
                    timed.per_member[member].push(micros(at.saturating_duration_since(start)));
                }
                let last = seen.iter().flatten().max().copied().unwrap_or(start);
                timed
                    .all
                    .push(micros(last.saturating_duration_since(start)));
                break;
            }
            if Instant::now() > deadline {
                timed.lost += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    Ok(timed)
}

/// Starts one background receiver per member, each recording when it first saw each message:
/// private push (waiting receives through its onion path, its own swarm's and its groups'
/// held at once), or with `poll` polls back to back; `requests` counts their calls. They run
/// until aborted.
fn start_pollers(
    members: &[Arc<Messenger>],
    sightings: &Arc<Sightings>,
    requests: &Arc<AtomicU64>,
    poll: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let (member, sightings, requests) = (
                Arc::clone(member),
                Arc::clone(sightings),
                Arc::clone(requests),
            );
            tokio::spawn(async move {
                loop {
                    requests.fetch_add(1, Ordering::Relaxed);
                    let received = if poll {
                        member.receive().await
                    } else {
                        match member.receive_waiting(PUSH_WAIT).await {
                            Ok(waited) if !waited.waited => {
                                // Not held: pause as the TUI does rather than spin.
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                Ok(waited.messages)
                            }
                            other => other.map(|w| w.messages),
                        }
                    };
                    if let Ok(messages) = received {
                        let at = Instant::now();
                        let mut map = sightings.lock().unwrap_or_else(PoisonError::into_inner);
                        for m in messages {
                            map[index].entry(m.hash).or_insert(at);
                        }
                    }
                }
            })
        })
        .collect()
}

/// The admin receives too, as in a chat: with a wait on the group in flight, its key list is
/// current and a send needs no key refresh first. Runs until aborted.
fn admin_receiver(admin: Arc<Messenger>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if !admin
                .receive_waiting(PUSH_WAIT)
                .await
                .is_ok_and(|w| w.waited)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

/// Times `removals` removals of one member each from a group of `size` (the admin and random
/// Session IDs, who need not exist for an admin-side rekey); µs each, sorted.
async fn timed_removals(admin: &Messenger, size: usize, removals: usize) -> Result<Vec<u32>> {
    let others: Vec<SessionId> = (1..size)
        .map(|_| Identity::generate(&mut rand::rngs::OsRng).session_id())
        .collect();
    eprintln!(
        "creating a group of {size} (invites to {} Session IDs) …",
        others.len()
    );
    let group = admin
        .create_group("Bench large", &others)
        .await
        .context("creating the large group failed")?;
    let mut times = Vec::with_capacity(removals);
    for member in others.iter().take(removals) {
        let start = Instant::now();
        admin
            .remove_from_group(&group, std::slice::from_ref(member))
            .await
            .context("removing a member failed")?;
        times.push(micros(start.elapsed()));
    }
    times.sort_unstable();
    Ok(times)
}

/// The time to build one key message for `size` members, with no network (µs, median of 20).
fn rekey_compute_us(size: usize) -> u32 {
    let admin = shallot_proto::group::GroupAdmin::generate(&mut rand::rngs::OsRng);
    let members: Vec<SessionId> = (0..size)
        .map(|_| Identity::generate(&mut rand::rngs::OsRng).session_id())
        .collect();
    let mut times: Vec<u32> = (0..20)
        .map(|generation| {
            let start = Instant::now();
            let built = shallot_proto::group::rekey(&admin, &members, generation);
            std::hint::black_box(built);
            micros(start.elapsed())
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Runs `shallot bench groups`.
pub fn run(args: &BenchGroupsArgs) -> Result<()> {
    if args.messages == 0 || args.members < 2 || args.rekey_members < 2 {
        bail!("--messages must be at least 1, --members and --rekey-members at least 2");
    }
    if args.removals >= args.rekey_members {
        bail!("--removals must be below --rekey-members");
    }
    let (net, runtime) = crate::bench_net::start(args.nodes)?;
    let result = runtime.block_on(crate::bench_net::until_interrupted(run_async(&net, args)));
    drop(runtime);
    drop(net);
    result
}

/// The receivers of one fan-out, what they saw and how many receives they made.
struct Fanout {
    sightings: Arc<Sightings>,
    requests: Arc<AtomicU64>,
}

impl Fanout {
    /// Starts `receivers` (see [`start_pollers`]).
    fn start(receivers: &[Arc<Messenger>], poll: bool) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let fanout = Self {
            sightings: Arc::new(Mutex::new(vec![HashMap::new(); receivers.len()])),
            requests: Arc::new(AtomicU64::new(0)),
        };
        let tasks = start_pollers(receivers, &fanout.sightings, &fanout.requests, poll);
        (fanout, tasks)
    }
}

/// CPU time used by the clients (this process) and by the devnet's processes.
#[derive(Default)]
struct Cpu {
    clients: Duration,
    nodes: Duration,
}

impl Cpu {
    /// So far, the devnet's processes being `pids`.
    fn now(pids: &[u32]) -> Self {
        Self {
            clients: process::cpu_time(std::process::id()),
            nodes: pids.iter().copied().map(process::cpu_time).sum(),
        }
    }

    /// Adds what was used from `start` to `end`.
    fn add(&mut self, start: &Self, end: &Self) {
        self.clients += end.clients.saturating_sub(start.clients);
        self.nodes += end.nodes.saturating_sub(start.nodes);
    }

    fn clients_ms(&self, messages: usize) -> f64 {
        per_message_ms(self.clients, messages)
    }

    fn nodes_ms(&self, messages: usize) -> f64 {
        per_message_ms(self.nodes, messages)
    }
}

fn per_message_ms(total: Duration, messages: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / f64::from(u32::try_from(messages.max(1)).unwrap_or(u32::MAX))
}

/// One row of the table: n, p50, p95, p99, lost.
fn row(name: &str, t: &Timed) {
    println!(
        "{:<10} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>6}",
        name,
        t.all.len(),
        ms(&t.all, 0.50),
        ms(&t.all, 0.95),
        ms(&t.all, 0.99),
        t.lost
    );
}

/// Each receiver's median, space-separated.
fn medians(t: &Timed) -> String {
    t.per_member
        .iter()
        .map(|m| format!("{:.1}", ms(m, 0.50)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[allow(clippy::too_many_lines)] // Set-up, the two fan-outs in turn, the removals, the table.
async fn run_async(net: &TempDevnet, args: &BenchGroupsArgs) -> Result<()> {
    let (state, seed) = crate::bench_net::up(net, args.nodes, args.subnet).await?;
    let seed = Seed::Node(seed);
    let pids: Vec<u32> = state
        .nodes
        .iter()
        .filter_map(|n| n.pid)
        .chain(state.directory_pid)
        .collect();
    let others = args.members - 1;
    eprintln!(
        "creating {} accounts and {others} devices of one more …",
        args.members
    );
    let admin = account(net, "admin", &seed, args.nodes).await?;
    let mut members = Vec::with_capacity(others);
    for i in 1..args.members {
        members.push(Arc::new(
            account(net, &format!("member{i}"), &seed, args.nodes).await?,
        ));
    }
    // The bound's receivers: devices of one account, as many as the group's other members.
    let shared = Identity::generate(&mut rand::rngs::OsRng);
    let mut devices = Vec::with_capacity(others);
    for i in 1..args.members {
        let dir = net.dir().join(format!("device{i}"));
        devices.push(Arc::new(
            crate::local_accounts::new_account(
                &dir,
                shared.clone(),
                seed.clone(),
                (args.nodes, None),
                None,
            )
            .await?,
        ));
    }
    let ids: Vec<SessionId> = members.iter().map(|m| m.session_id()).collect();
    let group = admin
        .create_group("Bench", &ids)
        .await
        .context("creating the group failed")?;
    for member in &members {
        accept_invite(member, &group).await?;
    }
    // Each device writes to the admin first, so the admin is its contact: a stranger's
    // messages are a request, capped at 100 (the rest would count as lost).
    for device in &devices {
        device
            .send(&admin.session_id(), "hi")
            .await
            .context("a device's first message to the admin")?;
    }
    let (to_group, mut tasks) = Fanout::start(&members, args.poll);
    let (to_devices, device_tasks) = Fanout::start(&devices, args.poll);
    tasks.extend(device_tasks);
    let admin = Arc::new(admin);
    tasks.extend((!args.poll).then(|| admin_receiver(Arc::clone(&admin))));

    let device_sid = shared.session_id();
    let send_group = |i: usize| {
        let admin = &admin;
        async move {
            Ok(admin
                .send_to_group(&group, &format!("bench group {i}"))
                .await
                .context("sending to the group failed")?
                .hash)
        }
    };
    let send_devices = |i: usize| {
        let (admin, to) = (&admin, &device_sid);
        async move {
            Ok(admin
                .send(to, &format!("bench bound {i}"))
                .await
                .context("sending to the devices failed")?
                .hash)
        }
    };
    // Warm up until every receiver has seen one message of each.
    let warm = timed_sends(send_group, &to_group.sightings, 0, 1).await?;
    if warm.all.is_empty() {
        bail!("the first group message did not reach every member");
    }
    let warm = timed_sends(send_devices, &to_devices.sightings, 0, 1).await?;
    if warm.all.is_empty() {
        bail!("the first bound message did not reach every device");
    }
    eprintln!(
        "sending {} group messages and {} to the devices, {BLOCK} of each in turn …",
        args.messages, args.messages
    );
    let (mut group_timed, mut bound) = (Timed::default(), Timed::default());
    let (mut group_cpu, mut bound_cpu) = (Cpu::default(), Cpu::default());
    let mut sent = 0;
    while sent < args.messages {
        let n = BLOCK.min(args.messages - sent);
        let start = Cpu::now(&pids);
        bound.extend(timed_sends(send_devices, &to_devices.sightings, 1 + sent, n).await?);
        let middle = Cpu::now(&pids);
        group_timed.extend(timed_sends(send_group, &to_group.sightings, 1 + sent, n).await?);
        bound_cpu.add(&start, &middle);
        group_cpu.add(&middle, &Cpu::now(&pids));
        sent += n;
        eprint!("\r  {sent}/{}   ", args.messages);
    }
    eprintln!();
    group_timed.sort();
    bound.sort();
    // A held wait ends only with its 20 s: stop the receivers rather than wait for them.
    for task in &tasks {
        task.abort();
    }
    let polls = to_group.requests.load(Ordering::Relaxed);
    let bound_polls = to_devices.requests.load(Ordering::Relaxed);

    let compute_us = rekey_compute_us(args.rekey_members);
    let removals = timed_removals(&admin, args.rekey_members, args.removals).await?;

    println!("\nshallot bench groups: send start → visible at every member (ms)");
    println!("machine: {}", crate::bench_stats::machine());
    println!(
        "devnet: {} nodes, 3-hop onion paths, a {}-member group (admin + {others}), sequential sends, receivers {}",
        args.nodes,
        args.members,
        if args.poll {
            "polling back to back"
        } else {
            "waiting through their onion paths (private push)"
        }
    );
    println!(
        "bound: the same fan-out without the group layer, in the same run ({BLOCK} of each in turn): \
         the admin's 1:1 message to an account whose {others} devices receive the same way"
    );
    println!(
        "{:<10} {:>6} {:>9} {:>9} {:>9} {:>6}",
        "", "n", "p50", "p95", "p99", "lost"
    );
    row("group", &group_timed);
    row("bound", &bound);
    let ratio = |p| ms(&group_timed.all, p) / ms(&bound.all, p).max(0.001);
    println!(
        "group / bound: p50 {:.2}, p95 {:.2}",
        ratio(0.50),
        ratio(0.95)
    );
    println!(
        "CPU per message (ms, all cores): group: clients {:.2}, nodes {:.2}; bound: clients {:.2}, nodes {:.2}",
        group_cpu.clients_ms(args.messages),
        group_cpu.nodes_ms(args.messages),
        bound_cpu.clients_ms(args.messages),
        bound_cpu.nodes_ms(args.messages)
    );
    println!("per-member p50 (group): {}", medians(&group_timed));
    println!("per-device p50 (bound): {}", medians(&bound));
    let how = if args.poll {
        "polls"
    } else {
        "waiting receives"
    };
    println!(
        "({polls} {how} by members, {bound_polls} by devices; target p50 < 10 ms to every member)"
    );
    println!(
        "remove 1 of {} (kicked notice + revoke + rekey + configs + notice): p50 {:.1} ms, max {:.1} ms over {} removals",
        args.rekey_members,
        ms(&removals, 0.50),
        ms(&removals, 1.0),
        removals.len()
    );
    println!(
        "rekey key message for {} members, computed alone: {:.2} ms (target rekey < 50 ms)",
        args.rekey_members,
        f64::from(compute_us) / 1000.0
    );
    Ok(())
}
