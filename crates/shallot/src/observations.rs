//! What the nodes of a devnet observed (their observation logs, `shallot node
//! --observation-log`) and what follows from it: which node could link a client's address to
//! its account or a correspondent's, and, per message, what each hop saw. Used by `shallot
//! audit` and by the table of `shallot devnet demo`.
//!
//! A node *links* a client when it saw the client's address (as the TCP peer of a request) and
//! one of the client's accounts — its own or a correspondent's — either in the same request, or
//! as a message (a write, a replica or a handoff) within a time window of a request from that
//! address: then it can tell by timing. Every replica a node receives counts, not only the copy
//! addressed to it. A node that passed back a plain text naming a node other than its own next
//! hop learned where the request went, which only the client may know.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use shallot_node::observe::{NextHop, Observation, Role};
use shallot_proto::swarm::{swarm_for, SwarmId};
use shallot_proto::{AccountId, Ed25519Pub};

/// A client device: where it connects from and whose account it holds.
#[derive(Debug, Clone)]
pub struct Client {
    /// How it is printed (e.g. "Alice (2nd device)").
    pub name: String,
    /// Its source address.
    pub ip: IpAddr,
    /// Its account.
    pub account: AccountId,
}

impl Client {
    /// `name` on `ip` with `account`.
    pub fn new(name: &str, ip: IpAddr, account: AccountId) -> Self {
        Self {
            name: name.to_owned(),
            ip,
            account,
        }
    }
}

/// A node's address and swarm, for printing.
#[derive(Debug, Clone, Copy)]
pub struct NodeInfo {
    /// HTTPS address.
    pub addr: SocketAddr,
    /// Its swarm.
    pub swarm: SwarmId,
}

/// Every node's observations and who is who.
pub struct World {
    obs: Vec<Observation>,
    nodes: HashMap<Ed25519Pub, NodeInfo>,
    clients: Vec<Client>,
    /// Account → the person's name.
    people: HashMap<AccountId, String>,
    /// Account → the accounts it exchanges messages with.
    correspondents: HashMap<AccountId, Vec<AccountId>>,
}

/// How a node linked a client's address to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Both in one request.
    SameRequest,
    /// A message for the account this close to a request from the address.
    Timing {
        /// Milliseconds between the two.
        gap_ms: u64,
    },
    /// A plain text it passed back named a node beyond its own next hop.
    NamedBeyondNextHop(Ed25519Pub),
}

/// One violation: `node` linked `client`'s address to `account` (or learned a later hop).
#[derive(Debug, Clone)]
pub struct Finding {
    /// The node.
    pub node: Ed25519Pub,
    /// Index of the client in [`World::clients`].
    pub client: usize,
    /// The account it linked (none for [`Link::NamedBeyondNextHop`]).
    pub account: Option<AccountId>,
    /// How.
    pub link: Link,
    /// When the node saw the client's address (ms).
    pub at_ms: u64,
}

/// A message to trace: who sent it when, and who received it when.
#[derive(Debug, Clone)]
pub struct MessageCase {
    /// What to call it.
    pub label: String,
    /// Index of the sending client.
    pub sender: usize,
    /// The recipient's account.
    pub recipient: AccountId,
    /// When the send started and returned (ms).
    pub sent: (u64, u64),
    /// The clients that received it, each with when.
    pub received: Vec<(usize, u64)>,
}

/// Slack for matching node records to client-side times (ms): both read this machine's clock,
/// and a client's request arrives after it noted the time and is answered before it notes it
/// again; the slack covers rounding to milliseconds.
const SLACK_MS: u64 = 5;

fn times(o: &Observation) -> [u64; 2] {
    [o.at_ms, o.done_ms]
}

/// Whether `o` carries a message for its accounts: a write, a replica or a handoff.
fn is_message(o: &Observation) -> bool {
    o.writes || matches!(o.role, Role::Replica | Role::Handoff)
}

impl World {
    /// Reads the logs at `paths` (a missing file is an empty log).
    pub fn load(
        paths: &[std::path::PathBuf],
        nodes: HashMap<Ed25519Pub, NodeInfo>,
        clients: Vec<Client>,
        people: HashMap<AccountId, String>,
        pairs: &[(AccountId, AccountId)],
    ) -> Result<Self> {
        let mut obs = Vec::new();
        for path in paths {
            if !Path::new(path).exists() {
                continue;
            }
            obs.extend(
                shallot_node::observe::read_log(path)
                    .with_context(|| format!("could not read {}", path.display()))?,
            );
        }
        obs.sort_by_key(|o| (o.at_ms, o.done_ms));
        let mut correspondents: HashMap<AccountId, Vec<AccountId>> = HashMap::new();
        for (a, b) in pairs {
            correspondents.entry(*a).or_default().push(*b);
            correspondents.entry(*b).or_default().push(*a);
        }
        Ok(Self {
            obs,
            nodes,
            clients,
            people,
            correspondents,
        })
    }

    /// Every record.
    pub fn observations(&self) -> &[Observation] {
        &self.obs
    }

    fn client_at(&self, ip: IpAddr) -> Option<usize> {
        self.clients.iter().position(|c| c.ip == ip)
    }

    /// A client's own account and its correspondents'.
    fn sensitive(&self, client: usize) -> Vec<AccountId> {
        let own = self.clients[client].account;
        let mut accounts = vec![own];
        accounts.extend(self.correspondents.get(&own).into_iter().flatten());
        accounts
    }

    /// Every violation (see the module doc), one per node, client, account and kind of link,
    /// the closest in time for timing links.
    pub fn findings(&self, window_ms: u64) -> Vec<Finding> {
        let mut by_node: HashMap<Ed25519Pub, Vec<&Observation>> = HashMap::new();
        for o in &self.obs {
            by_node.entry(o.node).or_default().push(o);
        }
        let mut found: HashMap<(Ed25519Pub, usize, Option<AccountId>, u8), Finding> =
            HashMap::new();
        let mut keep = |f: Finding| {
            let kind = match f.link {
                Link::SameRequest => 0,
                Link::Timing { .. } => 1,
                Link::NamedBeyondNextHop(_) => 2,
            };
            let key = (f.node, f.client, f.account, kind);
            let closer = match (&f.link, found.get(&key).map(|old| &old.link)) {
                (Link::Timing { gap_ms }, Some(Link::Timing { gap_ms: old })) => gap_ms < old,
                (_, None) => true,
                _ => false,
            };
            if closer {
                found.insert(key, f);
            }
        };
        for (node, records) in &by_node {
            for o in records {
                let Some(client) = self.client_at(o.peer_ip) else {
                    continue;
                };
                let sensitive = self.sensitive(client);
                for account in o.accounts.iter().filter(|a| sensitive.contains(a)) {
                    keep(Finding {
                        node: *node,
                        client,
                        account: Some(*account),
                        link: Link::SameRequest,
                        at_ms: o.at_ms,
                    });
                }
                for named in &o.reply_nodes {
                    if named != node && o.next != Some(NextHop::Node(*named)) {
                        keep(Finding {
                            node: *node,
                            client,
                            account: None,
                            link: Link::NamedBeyondNextHop(*named),
                            at_ms: o.at_ms,
                        });
                    }
                }
                for m in records.iter().filter(|m| is_message(m)) {
                    let gap = times(o)
                        .iter()
                        .flat_map(|t| times(m).map(|u| t.abs_diff(u)))
                        .min()
                        .unwrap_or(u64::MAX);
                    if gap > window_ms {
                        continue;
                    }
                    for account in m.accounts.iter().filter(|a| sensitive.contains(a)) {
                        keep(Finding {
                            node: *node,
                            client,
                            account: Some(*account),
                            link: Link::Timing { gap_ms: gap },
                            at_ms: o.at_ms,
                        });
                    }
                }
            }
        }
        let mut list: Vec<Finding> = found.into_values().collect();
        list.sort_by_key(|f| (f.at_ms, f.client));
        list
    }

    /// Requests from an address that is neither a known client's nor a node's (readiness
    /// checks aside): a client connection that did not use its source address. A readiness
    /// check is an `info`, or a request a starting node refused before reading it (no method,
    /// no bytes, no account: it told the node nothing but an address).
    pub fn unattributed(&self) -> Vec<&Observation> {
        let node_ips: BTreeSet<IpAddr> = self.nodes.values().map(|n| n.addr.ip()).collect();
        let unread =
            |o: &Observation| o.method.is_none() && o.request_bytes == 0 && o.accounts.is_empty();
        self.obs
            .iter()
            .filter(|o| o.peer_node.is_none() && self.client_at(o.peer_ip).is_none())
            .filter(|o| !node_ips.contains(&o.peer_ip) && o.method.as_deref() != Some("info"))
            .filter(|o| !unread(o))
            .collect()
    }

    /// Per client: the nodes that saw its address (and how), and how many of those ever held one
    /// of its accounts as a message, at any time (linkable only by someone who can tell its
    /// traffic from everyone else's).
    pub fn exposure(&self) -> String {
        let mut out = String::new();
        for (i, client) in self.clients.iter().enumerate() {
            let sensitive = self.sensitive(i);
            let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
            let mut held = 0;
            let mut roles: HashMap<Ed25519Pub, BTreeSet<&'static str>> = HashMap::new();
            for o in self.obs.iter().filter(|o| o.peer_ip == client.ip) {
                roles.entry(o.node).or_default().insert(role_name(o));
            }
            for (node, names) in &roles {
                let ever = self.obs.iter().any(|m| {
                    m.node == *node
                        && is_message(m)
                        && m.accounts.iter().any(|a| sensitive.contains(a))
                });
                held += usize::from(ever);
                let mut names: Vec<&str> = names.iter().copied().collect();
                let swarms = self.swarms_holding(node, &sensitive);
                let tag = if swarms.is_empty() {
                    String::new()
                } else {
                    format!(", in {}", swarms.join(" and "))
                };
                names.dedup();
                seen.insert((self.node_name(node), format!("{}{tag}", names.join("+"))));
            }
            let list: Vec<String> = seen
                .into_iter()
                .map(|(node, roles)| format!("{node} ({roles})"))
                .collect();
            let _ = writeln!(
                out,
                "  {} from {}: seen by {} node(s): {}",
                client.name,
                client.ip,
                list.len(),
                list.join(", ")
            );
            if held > 0 {
                let _ = writeln!(
                    out,
                    "    {held} of them also held a message for its account or a correspondent's \
                     at another time (more than the window apart)"
                );
            }
        }
        out
    }

    /// "Alice's swarm", … for each of `accounts` whose swarm `node` is in.
    fn swarms_holding(&self, node: &Ed25519Pub, accounts: &[AccountId]) -> Vec<String> {
        let Some(info) = self.nodes.get(node) else {
            return Vec::new();
        };
        let mut ids: Vec<SwarmId> = self.nodes.values().map(|n| n.swarm).collect();
        ids.sort_unstable();
        ids.dedup();
        accounts
            .iter()
            .filter(|a| swarm_for(&ids, a) == Some(info.swarm))
            .map(|a| format!("{}'s swarm", self.person(a)))
            .collect()
    }

    fn node_name(&self, key: &Ed25519Pub) -> String {
        self.nodes.get(key).map_or_else(
            || format!("{}…", &key.to_hex()[..8]),
            |n| n.addr.ip().to_string(),
        )
    }

    fn ip_name(&self, ip: IpAddr) -> String {
        match self.client_at(ip) {
            Some(c) => format!("{ip} ({})", self.clients[c].name),
            None => ip.to_string(),
        }
    }

    fn person(&self, account: &AccountId) -> String {
        self.people
            .get(account)
            .cloned()
            .unwrap_or_else(|| format!("{}…", &account.to_hex()[..10]))
    }

    /// One line of a hop table for `o`.
    fn row(&self, o: &Observation) -> String {
        let from = match o.peer_node {
            Some(key) => self.node_name(&key),
            None => self.ip_name(o.peer_ip),
        };
        let to = match &o.next {
            Some(NextHop::Node(key)) => self.node_name(key),
            Some(NextHop::Server(host)) => host.clone(),
            None => "-".to_owned(),
        };
        let accounts = if o.accounts.is_empty() {
            "none".to_owned()
        } else {
            let names: BTreeSet<String> = o.accounts.iter().map(|a| self.person(a)).collect();
            names.into_iter().collect::<Vec<_>>().join(", ")
        };
        format!(
            "    {:<9} {:<15} {:<27} {:<15} {:<14} {:>6} {:>6} {:>5}",
            role_name(o),
            self.node_name(&o.node),
            from,
            to,
            accounts,
            o.request_bytes,
            o.reply_bytes,
            o.status
        )
    }

    fn header() -> String {
        format!(
            "    {:<9} {:<15} {:<27} {:<15} {:<14} {:>6} {:>6} {:>5}",
            "hop", "node", "heard from", "passed on to", "accounts seen", "in B", "out B", "code"
        )
    }

    /// The record at `next` that carried `o` on: received from `o`'s node, within its time.
    fn successor(&self, o: &Observation) -> Option<&Observation> {
        let Some(NextHop::Node(next)) = o.next else {
            return None;
        };
        self.obs
            .iter()
            .filter(|r| r.node == next && r.peer_node == Some(o.node))
            .filter(|r| r.at_ms + 5 >= o.at_ms && r.done_ms <= o.done_ms + 5)
            .min_by_key(|r| r.at_ms.abs_diff(o.at_ms))
    }

    /// The onion request starting at `first` (its guard), hop by hop to its last hop.
    fn chain<'a>(&'a self, first: &'a Observation) -> Vec<&'a Observation> {
        let mut chain = vec![first];
        while let Some(next) = chain.last().and_then(|o| self.successor(o)) {
            if chain.len() > 8 {
                break;
            }
            chain.push(next);
        }
        chain
    }

    /// The replicas of a write that `exit` ran: records at its swarm peers, received from it.
    fn replicas<'a>(&'a self, exit: &'a Observation) -> Vec<&'a Observation> {
        self.obs
            .iter()
            .filter(|r| r.role == Role::Replica && r.peer_node == Some(exit.node))
            .filter(|r| r.at_ms + 5 >= exit.at_ms && r.at_ms <= exit.done_ms + 5)
            .filter(|r| r.accounts.iter().any(|a| exit.accounts.contains(a)))
            .collect()
    }

    /// Onion requests from `ip` that arrived in `[from, to]`, each hop by hop.
    fn requests_from(&self, ip: IpAddr, from: u64, to: u64) -> Vec<Vec<&Observation>> {
        self.obs
            .iter()
            .filter(|o| o.peer_ip == ip && o.peer_node.is_none())
            .filter(|o| o.role == Role::OnionGuard)
            .filter(|o| o.at_ms + SLACK_MS >= from && o.at_ms <= to + SLACK_MS)
            .map(|o| self.chain(o))
            .collect()
    }

    /// What each hop saw of a message: the sender's onion requests (the store into the
    /// recipient's inbox, the sync copy, failed attempts) with the stores' replicas, the
    /// receivers' requests that brought it, and the smallest set of colluding nodes that could
    /// link sender and recipient.
    pub fn message_report(&self, case: &MessageCase) -> String {
        let mut out = String::new();
        let sender = &self.clients[case.sender];
        let (t0, t1) = case.sent;
        let _ = writeln!(
            out,
            "{} — sent by {} ({} ms)",
            case.label,
            sender.name,
            t1.saturating_sub(t0)
        );
        let mut involved: Vec<&Observation> = Vec::new();
        let mut first_store: Option<u64> = None;
        for chain in self.requests_from(sender.ip, t0, t1) {
            let Some(last) = chain.last() else { continue };
            let failed = !matches!(chain[0].status, 200 | 499);
            let title = if failed {
                format!("{}'s attempt that failed on the path", sender.name)
            } else if last.writes && last.accounts.contains(&case.recipient) {
                first_store.get_or_insert(last.at_ms);
                format!(
                    "{}'s {} into {}'s inbox",
                    sender.name,
                    method(last),
                    self.person(&case.recipient)
                )
            } else if last.writes && last.accounts.contains(&sender.account) {
                format!(
                    "{}'s {} in its own swarm (for its other devices)",
                    sender.name,
                    method(last)
                )
            } else {
                // Its polls and waits meanwhile are not part of the send.
                continue;
            };
            let _ = writeln!(out, "  {title}:");
            let _ = writeln!(out, "{}", Self::header());
            for o in &chain {
                let _ = writeln!(out, "{}", self.row(o));
            }
            if last.writes {
                for r in self.replicas(last) {
                    let _ = writeln!(out, "{}", self.row(r));
                    involved.push(r);
                }
            }
            involved.extend(chain);
        }
        let start = first_store.unwrap_or(t0);
        let mut end = t1;
        for &(receiver, at) in &case.received {
            let client = &self.clients[receiver];
            end = end.max(at);
            let chains: Vec<Vec<&Observation>> = self
                .requests_from(client.ip, 0, at)
                .into_iter()
                .filter(|chain| {
                    chain.last().is_some_and(|last| {
                        last.accounts.contains(&client.account)
                            && !last.writes
                            && last.done_ms + SLACK_MS >= start
                            && last.done_ms <= at + SLACK_MS
                    })
                })
                .collect();
            for chain in chains {
                let last = chain.last().map_or(Role::OnionExit, |o| o.role);
                let how = if last == Role::OnionWait {
                    "waiting retrieve (private push), answered when the message arrived"
                } else {
                    "poll"
                };
                let _ = writeln!(out, "  {}'s {how}:", client.name);
                let _ = writeln!(out, "{}", Self::header());
                for o in &chain {
                    let _ = writeln!(out, "{}", self.row(o));
                }
                involved.extend(chain);
            }
        }
        out.push_str(&self.colluders(case, &involved, (t0, end)));
        out
    }

    /// The smallest set of nodes that could link sender and recipient of `case`: one node that
    /// saw an identity of each (an address or an account, within the message's time), else a
    /// pair; and how many following the onion hop by hop, without timing.
    fn colluders(
        &self,
        case: &MessageCase,
        involved: &[&Observation],
        (t0, t1): (u64, u64),
    ) -> String {
        let sender = &self.clients[case.sender];
        let receivers: Vec<&Client> = self
            .clients
            .iter()
            .filter(|c| c.account == case.recipient)
            .collect();
        let side = |o: &Observation| -> (Vec<String>, Vec<String>) {
            let mut a = Vec::new();
            let mut b = Vec::new();
            if o.peer_ip == sender.ip {
                a.push(format!("{}'s address", sender.name));
            }
            if o.accounts.contains(&sender.account) {
                a.push(format!("{}'s account", self.person(&sender.account)));
            }
            if let Some(c) = receivers.iter().find(|c| c.ip == o.peer_ip) {
                b.push(format!("{}'s address", c.name));
            }
            if o.accounts.contains(&case.recipient) {
                b.push(format!("{}'s account", self.person(&case.recipient)));
            }
            (a, b)
        };
        let mut per_node: HashMap<Ed25519Pub, (BTreeSet<String>, BTreeSet<String>)> =
            HashMap::new();
        for o in self.obs.iter().filter(|o| o.done_ms >= t0 && o.at_ms <= t1) {
            let (a, b) = side(o);
            let entry = per_node.entry(o.node).or_default();
            entry.0.extend(a);
            entry.1.extend(b);
        }
        let mut both: Vec<(bool, String)> = per_node
            .iter()
            .filter(|(_, (a, b))| !a.is_empty() && !b.is_empty())
            .map(|(node, (a, b))| {
                let saw: Vec<String> = a.iter().chain(b).cloned().collect();
                let address = saw.iter().any(|w| w.ends_with("address"));
                (
                    !address,
                    format!("{} ({})", self.node_name(node), saw.join(" + ")),
                )
            })
            .collect();
        both.sort();
        let accounts_only = both.iter().all(|(only, _)| *only);
        let count = both.len();
        let mut both: Vec<String> = both.into_iter().map(|(_, text)| text).take(3).collect();
        if count > both.len() {
            both.push(format!("{} more", count - both.len()));
        }
        if accounts_only && count > 0 {
            both.push(
                "the two accounts share a swarm, whose members get the message and the \
                 sender's own copy at once"
                    .into(),
            );
        }
        let hops = involved
            .iter()
            .filter(|o| o.role == Role::OnionGuard && o.peer_ip == sender.ip && o.status == 200)
            .map(|o| self.chain(o).len())
            .min()
            .unwrap_or(0);
        let onion = format!("{hops} following one onion hop by hop (guard, relays, last hop)");
        if !both.is_empty() {
            return format!(
                "  smallest colluding set: 1 node — {}; {onion}\n",
                both.join("; ")
            );
        }
        // The classic pair: the sender's guard (its address) and a node with the recipient's
        // account.
        let pick = |want_sender: bool| {
            per_node
                .iter()
                .filter(|(_, (a, b))| {
                    if want_sender {
                        !a.is_empty()
                    } else {
                        !b.is_empty()
                    }
                })
                .map(|(node, (a, b))| {
                    let what: Vec<String> =
                        if want_sender { a } else { b }.iter().cloned().collect();
                    let address = what.iter().any(|w| w.ends_with("address"));
                    let text = format!("{} ({})", self.node_name(node), what.join(", "));
                    (address == want_sender, text)
                })
                .max()
                .map(|(_, text)| text)
        };
        match (pick(true), pick(false)) {
            (Some(a), Some(b)) => format!(
                "  smallest colluding set: 2 nodes, by timing — e.g. {a} with {b}; {onion}\n"
            ),
            _ => format!("  no set of nodes saw both ends; {onion}\n"),
        }
    }

    /// A finding in words.
    pub fn describe(&self, f: &Finding) -> String {
        let client = &self.clients[f.client];
        let node = self.node_name(&f.node);
        match (&f.link, &f.account) {
            (Link::SameRequest, Some(account)) => format!(
                "{node} saw {} together with {}'s account in one request",
                self.ip_name(client.ip),
                self.person(account)
            ),
            (Link::Timing { gap_ms }, Some(account)) => format!(
                "{node} saw {} and, {gap_ms} ms apart, a message for {}'s account",
                self.ip_name(client.ip),
                self.person(account)
            ),
            (Link::NamedBeyondNextHop(named), _) => format!(
                "{node} passed {} a plain text naming {}, which is not its next hop",
                self.ip_name(client.ip),
                self.node_name(named)
            ),
            (_, None) => format!("{node}: {:?}", f.link),
        }
    }
}

fn method(o: &Observation) -> String {
    o.method.clone().unwrap_or_else(|| "request".into())
}

fn role_name(o: &Observation) -> &'static str {
    match o.role {
        Role::OnionGuard => "guard",
        Role::OnionRelay => "relay",
        Role::OnionExit => "last hop",
        Role::OnionWait => "wait",
        Role::OnionProxy => "proxy",
        Role::StorageRpc if o.method.as_deref() == Some("oxend_request") => "seed",
        Role::StorageRpc if o.method.as_deref() == Some("get_swarm") => "guard test",
        Role::StorageRpc => "direct",
        Role::Replica => "replica",
        Role::Handoff => "handoff",
        Role::Push => "push",
    }
}
