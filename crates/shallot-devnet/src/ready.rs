//! Readiness: when the nodes of a local network serve clients and agree on the swarms.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// An HTTPS client for a local network's nodes: their self-signed certificates accepted, idle
/// connections dropped after 10 s (below the nodes' 20 s idle limit: a connection is never
/// reused as the node closes it). Callers add a timeout or a source address.
pub fn node_client() -> reqwest::ClientBuilder {
    shallot_node::tls::install_crypto_provider();
    reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .pool_idle_timeout(Duration::from_secs(10))
}

/// Whether the node at `addr` answers `info` with 200.
pub async fn serves(http: &reqwest::Client, addr: SocketAddr) -> bool {
    let response = http
        .post(format!("https://{addr}/storage_rpc/v1"))
        .body(r#"{"method":"info","params":{}}"#)
        .send()
        .await;
    matches!(response, Ok(r) if r.status() == 200)
}

/// Nodes that did not serve in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of {total} nodes did not become ready within {} s", .waiting.len(), .limit.as_secs())]
pub struct NotReady {
    /// Indices (into the list waited for) of the nodes still not serving.
    pub waiting: Vec<usize>,
    /// How many were waited for.
    pub total: usize,
    /// How long.
    pub limit: Duration,
}

/// Waits until every node of `addrs` [`serves`], asking those not yet ready every `poll`;
/// `progress(ready, total)` after each round.
pub async fn wait_serving(
    http: &reqwest::Client,
    addrs: &[SocketAddr],
    (limit, poll): (Duration, Duration),
    mut progress: impl FnMut(usize, usize),
) -> Result<(), NotReady> {
    let deadline = Instant::now() + limit;
    let mut ready = vec![false; addrs.len()];
    loop {
        for (i, &addr) in addrs.iter().enumerate() {
            if !ready[i] {
                ready[i] = serves(http, addr).await;
            }
        }
        let count = ready.iter().filter(|&&r| r).count();
        progress(count, addrs.len());
        if count == addrs.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NotReady {
                waiting: (0..addrs.len()).filter(|&i| !ready[i]).collect(),
                total: addrs.len(),
                limit,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// The swarm members (sorted Ed25519 keys) the node at `addr` names for each of `accounts`.
async fn swarm_view(
    http: &reqwest::Client,
    addr: SocketAddr,
    accounts: &[String],
) -> Vec<Vec<String>> {
    let mut view = Vec::new();
    for account in accounts {
        let body = json!({"method": "get_swarm", "params": {"pubkey": account}});
        let answer: Option<Value> = match http
            .post(format!("https://{addr}/storage_rpc/v1"))
            .json(&body)
            .send()
            .await
        {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        let mut members: Vec<String> = answer
            .as_ref()
            .and_then(|a| a["snodes"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|n| n["pubkey_ed25519"].as_str().map(str::to_owned))
            .collect();
        members.sort();
        view.push(members);
    }
    view
}

/// The nodes' views of the swarms still differ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the nodes' views of the swarms still differ after {} s", .0.as_secs())]
pub struct NotSettled(pub Duration);

/// Waits until every node puts a few sample accounts in the same swarm with the same members:
/// while nodes register, swarms split and form, and a node whose view lags still replicates to
/// the old members (a node a client chose as a guard outside the swarm would get the message).
pub async fn wait_settled(
    http: &reqwest::Client,
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<(), NotSettled> {
    let samples: Vec<String> = ["00", "55", "aa", "ff"]
        .iter()
        .map(|b| format!("05{}", b.repeat(32)))
        .collect();
    let deadline = Instant::now() + limit;
    loop {
        let mut views = std::collections::HashSet::new();
        for &addr in addrs {
            views.insert(swarm_view(http, addr, &samples).await);
        }
        if views.len() == 1 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NotSettled(limit));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
