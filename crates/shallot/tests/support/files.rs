//! A local network with a `shallot fileserver` beside it, and seeded test files: what the
//! attachment and profile-picture tests share.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use shallot_client::attachments::FileServer;
use shallot_devnet::{FileServerLaunch, FileServerProc, LocalNet, NetOptions};

/// Two swarms of 3 nodes on 127.0.`subnet`.x and a file server on 127.0.0.1; the server as
/// clients address it.
pub async fn start(subnet: u8) -> (LocalNet, FileServerProc, FileServer) {
    let net = LocalNet::start(NetOptions {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        swarms: vec![3, 3],
        subnet,
        log: "warn".into(),
        node_args: Vec::new(),
    })
    .await
    .unwrap();
    let files = FileServerLaunch {
        binary: env!("CARGO_BIN_EXE_shallot").into(),
        dir: net.dir.path().join("fileserver"),
        ip: Ipv4Addr::LOCALHOST.into(),
        log: "warn".into(),
        extra_args: Vec::new(),
        exit_with_launcher: true,
    }
    .spawn()
    .await
    .unwrap();
    let server = FileServer::new(&files.entry.url(), files.entry.ed25519.parse().unwrap()).unwrap();
    (net, files, server)
}

/// `len` bytes from a seeded generator, written to `dir/name`.
pub fn random_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let mut bytes = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
