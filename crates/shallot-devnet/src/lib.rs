//! Local Shallot networks on one machine: real `shallot` processes on 127.0.N.x addresses.
//!
//! One toolkit for everything that starts a network here — `shallot devnet`, the demo, the
//! audit, the benches and the integration tests:
//! - [`process`]: how a node is launched, detached processes, signals, exits, CPU and memory;
//! - [`ports`]: free addresses; [`ready`]: waiting until nodes serve and agree on the swarms;
//! - [`fileserver`]: a `shallot fileserver` process for attachments, its pinned keys;
//! - [`LocalNet`]: nodes reading a directory file the caller writes (tests, audit, benches);
//! - [`Devnet`]: a devnet directory (a simulated chain) and nodes registered with it, recorded
//!   in [`DevnetState`] (`devnet.json`) so later commands find them.

mod devnet;
pub mod fileserver;
mod local;
pub mod ports;
pub mod process;
pub mod ready;
mod state;

pub use devnet::{Devnet, Step, TempDevnet};
pub use fileserver::{FileServerEntry, FileServerLaunch, FileServerProc};
pub use local::{directory_listing, write_directory_file, LocalNet, NetOptions, NodeProc};
pub use state::{DevnetConfig, DevnetState, NodeEntry};

use std::path::PathBuf;

/// Why a local network could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A file-system or process operation failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A node key could not be read or written.
    #[error(transparent)]
    Keys(#[from] shallot_keys::KeystoreError),
    /// A node did not become ready in time.
    #[error("node {index} did not become ready within {seconds} s; its log:\n{log}")]
    NotReady {
        /// Node index.
        index: usize,
        /// How long we waited.
        seconds: u64,
        /// The node's output so far.
        log: String,
    },
    /// Devnet nodes did not become ready in time.
    #[error("{0}; see node*/node.log")]
    NodesNotReady(#[from] ready::NotReady),
    /// The nodes did not agree on the swarms in time.
    #[error(transparent)]
    NotSettled(#[from] ready::NotSettled),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// No devnet state in this directory.
    #[error("no devnet in {}; start one with `shallot devnet up`", .0.display())]
    NoDevnet(PathBuf),
    /// `devnet.json` or `devnet.toml` could not be read or written.
    #[error("devnet state is corrupt: {0}")]
    Corrupt(String),
    /// `up` on a devnet that runs.
    #[error("a devnet is already running in {}; stop it with `shallot devnet down`", .0.display())]
    AlreadyRunning(PathBuf),
    /// A node count the addresses cannot hold.
    #[error("--nodes must be between 1 and 254")]
    NodeCount,
    /// The file server process did not answer.
    #[error("the file server did not start; see {}", .0.display())]
    FileServerDidNotStart(PathBuf),
    /// The directory process did not answer.
    #[error("the directory did not start; see {}", .0.display())]
    DirectoryDidNotStart(PathBuf),
    /// A directory call failed.
    #[error("directory refused {method}: {source}")]
    Directory {
        /// The JSON-RPC method.
        method: &'static str,
        /// Why.
        #[source]
        source: shallot_directory::CallError,
    },
    /// A directory answer lacked something.
    #[error("the directory did not say {0}")]
    Answer(&'static str),
    /// A devnet from before the directory had an admin listener.
    #[error("this devnet's directory has no admin listener; restart it with `devnet up`")]
    NoAdminListener,
    /// No node with this number.
    #[error("no such node: {0}")]
    NoSuchNode(usize),
    /// The node is not running.
    #[error("node {0} is not running")]
    NodeNotRunning(usize),
    /// The node is running already.
    #[error("node {0} is already running")]
    NodeRunning(usize),
    /// The node did not exit after the signal.
    #[error("node {0} did not exit")]
    DidNotExit(usize),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevnetError {
    let action = action.into();
    move |source| DevnetError::Io { action, source }
}
