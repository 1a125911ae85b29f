//! `shallot devnet demo`: a throwaway devnet, two new accounts exchanging a message each way
//! through 3-hop onion paths, and, for every node on those paths, what it learned about who
//! talks to whom — taken from the routes the client library actually used.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use shallot_client::{
    AccountStore, ClientConfig, Db, Messenger, NetworkClock, OnionClient, ReceivedMessage, Route,
    Seed,
};
use shallot_proto::{Identity, SessionId};

use crate::devnet_cmd::{self, DevnetConfig};

/// Flags of `shallot devnet demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes (14 gives two swarms of 7)
    #[arg(long, default_value_t = 14)]
    pub nodes: usize,
    /// Third octet of the nodes' 127.0.N.x addresses
    #[arg(long, default_value_t = 78)]
    pub subnet: u8,
    /// Keep the devnet's data directory afterwards (its processes are stopped either way)
    #[arg(long)]
    pub keep: bool,
}

/// A devnet in a fresh temporary directory; dropping it stops every process (`devnet down`)
/// and, unless kept, deletes the directory — on success, error, panic or Ctrl-C alike.
pub(crate) struct TempDevnet {
    dir: PathBuf,
    keep: bool,
}

impl TempDevnet {
    /// Starts a devnet of `nodes` nodes on 127.0.`subnet`.x (the `devnet up` code path).
    pub(crate) fn start(nodes: usize, subnet: u8, keep: bool) -> Result<Self> {
        let stamp: u64 = rand::random();
        let dir =
            std::env::temp_dir().join(format!("shallot-devnet-{}-{stamp:x}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        // The guard exists before any process does, so a failing `up` is cleaned up too.
        let net = Self { dir, keep };
        devnet_cmd::up(
            &DevnetConfig {
                nodes,
                subnet,
                ..DevnetConfig::default()
            },
            &net.dir,
        )?;
        Ok(net)
    }

    /// The devnet's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The nodes' HTTPS addresses.
    pub(crate) fn node_addrs(&self) -> Result<Vec<SocketAddr>> {
        devnet_cmd::node_addrs(&self.dir)
    }
}

impl Drop for TempDevnet {
    fn drop(&mut self) {
        if let Err(e) = devnet_cmd::down(&self.dir) {
            eprintln!("warning: could not stop the devnet cleanly: {e:#}");
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
            println!("removed {}", self.dir.display());
        }
    }
}

/// A client account in its own data directory (like `shallot account new`).
pub(crate) async fn new_account(
    dir: &Path,
    identity: Identity,
    seed: SocketAddr,
    nodes: usize,
) -> Result<Messenger> {
    std::fs::create_dir_all(dir)?;
    AccountStore::new(dir).save(&identity, false)?;
    let db = Db::open_in_dir(dir, &identity).context("could not open the local database")?;
    let config = ClientConfig {
        seeds: vec![Seed::Node(seed)],
        min_refresh_agreement: nodes,
        ..ClientConfig::default()
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .context("could not get the node list")?;
    client
        .ensure_paths()
        .await
        .context("could not build onion paths")?;
    Ok(Messenger::new(identity, client, db))
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

/// The IP address this machine uses to reach `addr` (what the guard sees as our address).
fn our_ip_towards(addr: SocketAddr) -> String {
    UdpSocket::bind((IpAddr::from([0, 0, 0, 0]), 0))
        .and_then(|s| s.connect(addr).and_then(|()| s.local_addr()))
        .map_or_else(|_| "this machine".to_owned(), |a| a.ip().to_string())
}

/// What one node on a route learned.
struct Hop {
    role: String,
    node: String,
    from: String,
    to: String,
    account: String,
    saw_client: bool,
    saw_account: bool,
}

/// The per-node view of `route`, taken by a client at `client_ip` for `account_owner`'s account.
fn hops(route: &Route, client_ip: &str, account_owner: &str) -> Vec<Hop> {
    let n = route.path.len();
    let mut rows: Vec<Hop> = route
        .path
        .iter()
        .enumerate()
        .map(|(i, node)| Hop {
            role: if i == 0 {
                "1 guard".to_owned()
            } else {
                format!("{} relay", i + 1)
            },
            node: node.https_addr().to_string(),
            from: if i == 0 {
                format!("{client_ip} (the client)")
            } else {
                route.path[i - 1].https_addr().to_string()
            },
            to: if i + 1 < n {
                route.path[i + 1].https_addr().to_string()
            } else {
                format!("{} (dest.)", route.destination.https_addr())
            },
            account: "no (encrypted)".to_owned(),
            saw_client: i == 0,
            saw_account: false,
        })
        .collect();
    rows.push(Hop {
        role: "destination".to_owned(),
        node: route.destination.https_addr().to_string(),
        from: route
            .path
            .last()
            .map_or_else(String::new, |l| l.https_addr().to_string()),
        to: "-".to_owned(),
        account: format!("yes: {account_owner}'s"),
        saw_client: false,
        saw_account: true,
    });
    rows
}

fn print_hops(title: &str, rows: &[Hop]) {
    println!("  {title}");
    println!(
        "    {:<12} {:<21}  {:<28} {:<28} account id seen",
        "hop", "node", "heard from", "passed on to"
    );
    for r in rows {
        println!(
            "    {:<12} {:<21}  {:<28} {:<28} {}",
            r.role, r.node, r.from, r.to, r.account
        );
    }
}

/// The first successful `method` route recorded since `mark`.
fn route_since(client: &OnionClient, mark: u64, method: &str) -> Result<Route> {
    client
        .recent_routes()
        .into_iter()
        .find(|r| r.seq >= mark && r.method == method)
        .with_context(|| format!("the client recorded no {method} route"))
}

/// Sends `text` from `from` to `to`, fetches it at `to`, prints both and returns the routes used
/// (the send, then the fetch) with each route's node views.
async fn exchange(
    from: (&str, &Messenger),
    to: (&str, &Messenger),
    text: &str,
) -> Result<Vec<(String, Vec<Hop>)>> {
    let ((from_name, sender), (to_name, recipient)) = (from, to);
    let mark = sender.client().next_route_seq();
    let sent = sender
        .send(&recipient.session_id(), text)
        .await
        .context("sending failed")?;
    println!(
        "  {from_name} sent {text:?}: stored on {} node(s) of {to_name}'s swarm",
        sent.stored_on
    );
    let send_route = route_since(sender.client(), mark, "store")?;

    let mark = recipient.client().next_route_seq();
    let got = fetch(recipient).await?;
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
    let fetch_route = route_since(recipient.client(), mark, "batch")?;

    let sender_ip = our_ip_towards(send_route.path[0].https_addr());
    let recipient_ip = our_ip_towards(fetch_route.path[0].https_addr());
    Ok(vec![
        (
            format!("{from_name}'s send (store into {to_name}'s inbox):"),
            hops(&send_route, &sender_ip, to_name),
        ),
        (
            format!("{to_name}'s fetch (retrieve from {to_name}'s inbox):"),
            hops(&fetch_route, &recipient_ip, to_name),
        ),
    ])
}

async fn demo(net: &TempDevnet, nodes: usize) -> Result<()> {
    let addrs = net.node_addrs()?;
    let seed = *addrs.first().context("the devnet has no nodes")?;

    println!("\n== 2. Two accounts, each with its own node list and onion paths ==");
    let new = || Identity::generate(&mut rand::rngs::OsRng);
    let alice = new_account(&net.dir().join("alice"), new(), seed, nodes).await?;
    let bob = new_account(&net.dir().join("bob"), new(), seed, nodes).await?;
    for (name, who) in [("Alice", &alice), ("Bob", &bob)] {
        println!(
            "  {name:<6} {}  ({} known nodes, {} paths of 3 hops)",
            who.session_id(),
            who.client().pool_len(),
            who.client().paths().len()
        );
    }

    println!("\n== 3. Alice -> Bob ==");
    let mut tables = exchange(("Alice", &alice), ("Bob", &bob), "Hi Bob, it's Alice!").await?;
    println!("\n== 4. Bob -> Alice ==");
    tables.extend(exchange(("Bob", &bob), ("Alice", &alice), "Hi Alice, got it. Bob").await?);

    println!("\n== 5. What each node on those paths learned ==");
    for (title, rows) in &tables {
        print_hops(title, rows);
        println!();
    }
    let both: Vec<&Hop> = tables
        .iter()
        .flat_map(|(_, rows)| rows)
        .filter(|h| h.saw_client && h.saw_account)
        .collect();
    if !both.is_empty() {
        bail!(
            "{} node(s) saw both a client's address and its account",
            both.len()
        );
    }
    println!("Conclusion: no node saw both the sender's address and the recipient.");
    println!("  The guard knows who you are (your IP) but not whom you write to: the onion it");
    println!("  relays is encrypted. The destination knows the recipient's account but only");
    println!("  the previous relay's address. The relays in between know neither.");
    println!(
        "  (The message itself is end-to-end encrypted: no node can read it or see its sender.)"
    );
    Ok(())
}

/// Runs `shallot devnet demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let started = Instant::now();
    println!(
        "== 1. Start a devnet: {} nodes on 127.0.{}.x ==",
        args.nodes, args.subnet
    );
    let net = TempDevnet::start(args.nodes, args.subnet, args.keep)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = demo(&net, args.nodes) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    drop(runtime);
    println!("\n== 6. Shut down ==");
    drop(net);
    result?;
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
