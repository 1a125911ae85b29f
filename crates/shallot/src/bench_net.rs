//! The devnet of the benches that run clients (`bench attach`, `bench e2e`, `bench groups`): a
//! throwaway devnet, the runtime that drives it, and the bench's accounts in its directory.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use shallot_client::{Messenger, Seed};
use shallot_devnet::{DevnetConfig, DevnetState, TempDevnet};
use shallot_proto::Identity;

/// A throwaway devnet (removed when dropped or closed) for `nodes` nodes, not yet up, and the
/// two-thread runtime that drives the bench.
pub(crate) fn start(nodes: usize) -> Result<(TempDevnet, tokio::runtime::Runtime)> {
    eprintln!("starting a devnet of {nodes} nodes …");
    let binary = std::env::current_exe().context("cannot find the shallot binary")?;
    let net = TempDevnet::new(binary, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok((net, runtime))
}

/// Runs `work` unless SIGTERM, SIGHUP or Ctrl-C comes first (then an error): either way the
/// caller goes on to drop its [`TempDevnet`], which stops the devnet and removes its directory.
pub(crate) async fn until_interrupted<T>(
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        result = work => result,
        () = crate::node_cmd::terminate_or_interrupt() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// Brings `net` up (`devnet up`'s code path) with `nodes` nodes on 127.0.`subnet`.x; its state
/// and the address of its first node, the clients' seed.
pub(crate) async fn up(
    net: &TempDevnet,
    nodes: usize,
    subnet: u8,
) -> Result<(DevnetState, SocketAddr)> {
    let config = DevnetConfig {
        nodes,
        subnet,
        ..DevnetConfig::default()
    };
    let state = net.up(&config, shallot_devnet::Step::print).await?;
    let seed = state.nodes.first().context("no nodes")?.addr;
    Ok((state, seed))
}

/// An account of the bench in `net`'s directory `name`, bootstrapped from `seed`.
pub(crate) async fn account(
    net: &TempDevnet,
    name: &str,
    identity: Identity,
    seed: Seed,
    nodes: usize,
) -> Result<Messenger> {
    let dir: &Path = &net.dir().join(name);
    crate::local_accounts::new_account(dir, identity, seed, (nodes, None), None).await
}
