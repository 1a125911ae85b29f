//! `shallot bench groups`: on a devnet, the time from a group message's send until every member
//! of a 10-member group has it (members waiting by private push, or polling back to back with
//! `--poll`), and the time an admin takes to
//! remove one member of a large group (kicked notice, revocation, rekey, new configs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::messenger::PUSH_WAIT;
use shallot_client::{Messenger, Seed};
use shallot_devnet::TempDevnet;
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

/// Sends `count` messages from `admin` one after another; per message, the time from send
/// start until the last member saw it (µs, sorted; `None` if one never did within
/// [`PATIENCE`]), and per member, each message's time until that member saw it.
async fn timed_sends(
    admin: &Messenger,
    group: &GroupId,
    sightings: &Sightings,
    count: usize,
) -> Result<(Vec<u32>, usize, Vec<Vec<u32>>)> {
    let mut all = Vec::with_capacity(count);
    let mut lost = 0;
    let members = sightings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    let mut per_member = vec![Vec::with_capacity(count); members];
    for i in 0..count {
        let start = Instant::now();
        let sent = admin
            .send_to_group(group, &format!("bench group {i}"))
            .await
            .context("sending to the group failed")?;
        let deadline = start + PATIENCE;
        loop {
            let seen: Vec<Option<Instant>> = sightings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|m| m.get(&sent.hash).copied())
                .collect();
            if seen.iter().all(Option::is_some) {
                for (member, at) in seen.iter().flatten().enumerate() {
                    per_member[member].push(micros(at.saturating_duration_since(start)));
                }
                let last = seen.iter().flatten().max().copied().unwrap_or(start);
                all.push(micros(last.saturating_duration_since(start)));
                break;
            }
            if Instant::now() > deadline {
                lost += 1;
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if (i + 1) % 20 == 0 {
            eprint!("\r  {}/{count}   ", i + 1);
        }
    }
    eprintln!();
    all.sort_unstable();
    for m in &mut per_member {
        m.sort_unstable();
    }
    Ok((all, lost, per_member))
}

/// Starts one background receiver per member, each recording when it first saw each message:
/// private push (waiting receives through its onion path, its own swarm's and the group's
/// held at once), or with `poll` polls back to back; `requests` counts their calls. They run
/// until aborted.
fn start_pollers(
    members: &[Arc<Messenger>],
    group: GroupId,
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
                        for m in messages.into_iter().filter(|m| m.group == Some(group)) {
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

async fn run_async(net: &TempDevnet, args: &BenchGroupsArgs) -> Result<()> {
    let seed = Seed::Node(crate::bench_net::up(net, args.nodes, args.subnet).await?.1);
    eprintln!("creating {} accounts …", args.members);
    let admin = account(net, "admin", &seed, args.nodes).await?;
    let mut members = Vec::with_capacity(args.members - 1);
    for i in 1..args.members {
        members.push(Arc::new(
            account(net, &format!("member{i}"), &seed, args.nodes).await?,
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
    // Members now poll their group back to back; warm up until each has seen one message.
    let sightings = Arc::new(Mutex::new(vec![HashMap::new(); members.len()]));
    let requests = Arc::new(AtomicU64::new(0));
    let pollers = start_pollers(&members, group, &sightings, &requests, args.poll);
    let admin = Arc::new(admin);
    let admin_loop = (!args.poll).then(|| admin_receiver(Arc::clone(&admin)));
    let (warm, warm_lost, _) = timed_sends(&admin, &group, &sightings, 1).await?;
    if warm.is_empty() || warm_lost > 0 {
        bail!("the first group message did not reach every member");
    }
    eprintln!("sending {} group messages …", args.messages);
    let (all, lost, per_member) = timed_sends(&admin, &group, &sightings, args.messages).await?;
    // A held wait ends only with its 20 s: stop the receivers rather than wait for them.
    for task in pollers.iter().chain(&admin_loop) {
        task.abort();
    }
    let polls = requests.load(Ordering::Relaxed);

    let compute_us = rekey_compute_us(args.rekey_members);
    let removals = timed_removals(&admin, args.rekey_members, args.removals).await?;

    println!("\nshallot bench groups: send start → visible at every member (ms)");
    println!("machine: {}", crate::bench_stats::machine());
    println!(
        "devnet: {} nodes, 3-hop onion paths, a {}-member group (admin + {}), sequential sends, members {}",
        args.nodes,
        args.members,
        members.len(),
        if args.poll {
            "polling back to back"
        } else {
            "waiting through their onion paths (private push)"
        }
    );
    println!(
        "{:<10} {:>6} {:>9} {:>9} {:>9} {:>6}",
        "", "n", "p50", "p95", "p99", "lost"
    );
    println!(
        "{:<10} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>6}",
        "every",
        all.len(),
        ms(&all, 0.50),
        ms(&all, 0.95),
        ms(&all, 0.99),
        lost
    );
    let medians: Vec<String> = per_member
        .iter()
        .map(|m| format!("{:.1}", ms(m, 0.50)))
        .collect();
    println!("per-member p50: {}", medians.join(" "));
    let how = if args.poll {
        "polls"
    } else {
        "waiting receives"
    };
    println!("({polls} {how} in all; target p50 < 10 ms to every member)");
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
