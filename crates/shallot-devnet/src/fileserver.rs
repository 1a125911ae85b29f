//! A local network's file server: a `shallot fileserver` process on a loopback address. Its
//! key is created by the launcher before the process starts, so what clients pin (URL and
//! keys) is known without reading the server's output.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shallot_fileserver::keys::ServerKeys;

use crate::{io, process, DevnetError};

/// How long a starting file server may take to answer.
pub const FILE_SERVER_READY: Duration = Duration::from_secs(20);

/// A file server as `devnet.json` records it: what clients pin and how to stop it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileServerEntry {
    /// Plain-HTTP address.
    pub addr: SocketAddr,
    /// Ed25519 key in hex (what file URLs carry as `#p=`).
    pub ed25519: String,
    /// X25519 key in hex (what onion requests are encrypted to).
    pub x25519: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

impl FileServerEntry {
    /// The base URL clients use, `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// How to start a file server process.
#[derive(Clone, Debug)]
pub struct FileServerLaunch {
    /// The `shallot` binary.
    pub binary: PathBuf,
    /// Its data directory (key, database, blobs, `fileserver.log`).
    pub dir: PathBuf,
    /// The loopback address to listen on (a free port is picked).
    pub ip: IpAddr,
    /// Log filter.
    pub log: String,
    /// More flags (e.g. `--max-file-size`).
    pub extra_args: Vec<String>,
    /// Whether a detached server stops when this process is gone (temporary devnets); one
    /// started with [`FileServerLaunch::spawn`] always does.
    pub exit_with_launcher: bool,
}

impl FileServerLaunch {
    /// Creates (or reuses) the key, picks a port and builds the command; the entry to record.
    fn prepare(&self) -> Result<(Command, FileServerEntry), DevnetError> {
        std::fs::create_dir_all(&self.dir).map_err(io("create the file server directory"))?;
        let keys = ServerKeys::load_or_create(&self.dir)
            .map_err(|e| DevnetError::Corrupt(format!("file server key: {e}")))?;
        let addr = crate::ports::free_addr(self.ip).map_err(io("find a free port"))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("fileserver")
            .arg("--dir")
            .arg(&self.dir)
            .args(["--bind", &addr.to_string(), "--log", &self.log])
            .args(&self.extra_args)
            .env_remove("SHALLOT_HOME");
        let entry = FileServerEntry {
            addr,
            ed25519: keys.ed25519().to_hex(),
            x25519: keys.x25519().to_hex(),
            pid: None,
        };
        Ok((command, entry))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("fileserver.log")
    }

    /// Starts it detached (it outlives the caller, as devnet processes do) and waits until it
    /// answers.
    pub async fn spawn_detached(&self) -> Result<FileServerEntry, DevnetError> {
        let (mut command, mut entry) = self.prepare()?;
        if self.exit_with_launcher {
            process::exit_with_launcher(&mut command);
        }
        let pid = process::spawn_detached(&mut command, &self.log_path())
            .map_err(io("start the file server"))?;
        entry.pid = Some(pid);
        if let Err(e) = wait_serving(entry.addr, || process::is_alive(pid), &self.log_path()).await
        {
            process::signal(pid, process::Signal::KILL);
            return Err(e);
        }
        Ok(entry)
    }

    /// Starts it as a child that dies with the returned guard, and waits until it answers.
    pub async fn spawn(&self) -> Result<FileServerProc, DevnetError> {
        let (mut command, mut entry) = self.prepare()?;
        let child = process::spawn_logged(&mut command, &self.log_path())
            .map_err(io("start the file server"))?;
        let pid = child.id();
        entry.pid = Some(pid);
        let proc = FileServerProc {
            entry,
            dir: self.dir.clone(),
            child: Some(child),
        };
        wait_serving(proc.entry.addr, || process::is_alive(pid), &self.log_path()).await?;
        Ok(proc)
    }
}

/// A file server child process; killed on drop.
pub struct FileServerProc {
    /// What clients pin.
    pub entry: FileServerEntry,
    /// Its data directory.
    pub dir: PathBuf,
    child: Option<Child>,
}

impl FileServerProc {
    /// Stops it (SIGTERM, then SIGKILL after the grace period); whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.child
            .take()
            .is_some_and(|child| process::terminate(child, process::STOP_GRACE))
    }
}

impl Drop for FileServerProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the server at `addr` answers HTTP (any status: `GET /file/x/info` is a 404),
/// failing early if `alive` turns false.
async fn wait_serving(
    addr: SocketAddr,
    alive: impl Fn() -> bool,
    log: &Path,
) -> Result<(), DevnetError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + FILE_SERVER_READY;
    loop {
        if http
            .get(format!("http://{addr}/file/x/info"))
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline || !alive() {
            return Err(DevnetError::FileServerDidNotStart(log.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
