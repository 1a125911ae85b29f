//! Client accounts for the commands that bring their own network (the demo, the audit and
//! `bench e2e`): each in its own data directory, optionally on its own loopback address.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use shallot_client::{AccountStore, ClientConfig, Db, Messenger, NetworkClock, OnionClient, Seed};
use shallot_proto::{Identity, SessionId};

/// A client account in its own data directory (like `shallot account new`), connecting from
/// `source_ip` (on a devnet, each client its own loopback address), that will write to
/// `contact` (like `shallot send`: its swarm is kept clear of our guards from the start).
pub(crate) async fn new_account(
    dir: &Path,
    identity: Identity,
    seed: Seed,
    (nodes, source_ip): (usize, Option<IpAddr>),
    contact: Option<&SessionId>,
) -> Result<Messenger> {
    std::fs::create_dir_all(dir)?;
    AccountStore::new(dir).save(&identity, false)?;
    let db = Db::open_in_dir(dir, &identity).context("could not open the local database")?;
    let config = ClientConfig {
        seeds: vec![seed],
        min_refresh_agreement: nodes,
        source_ip,
        ..ClientConfig::default()
    };
    let client = OnionClient::bootstrap(config, NetworkClock::default())
        .await
        .context("could not get the node list")?;
    // The messenger first: guards are then chosen knowing our own swarm and the contact's.
    let messenger = Messenger::new(identity, client, db);
    messenger.note_correspondents(contact).await;
    messenger
        .client()
        .ensure_paths()
        .await
        .context("could not build onion paths")?;
    Ok(messenger)
}
