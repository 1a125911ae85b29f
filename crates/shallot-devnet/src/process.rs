//! The processes of a local network: how a node is started, processes that outlive their
//! launcher (`shallot devnet`), signals, waiting for an exit, and what a process costs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use rustix::process::Signal;
use rustix::process::{kill_process, Pid};

/// Where a node reads the service-node list from.
#[derive(Clone, Debug)]
pub enum DirectorySource {
    /// A `get_service_nodes` result in a file the launcher rewrites (`--directory-file`).
    File(PathBuf),
    /// A directory's JSON-RPC URL (`--oxend`).
    Oxend(String),
}

/// The `shallot node` command line of a local network's node: its data, address and directory,
/// loopback exemptions (every client of a devnet shares 127.0.0.0/8), and its log filter.
#[derive(Clone, Debug)]
pub struct NodeLaunch {
    /// The `shallot` binary.
    pub binary: PathBuf,
    /// Data directory (key, certificate, database).
    pub node_dir: PathBuf,
    /// HTTPS address.
    pub bind: SocketAddr,
    /// Where the node list comes from.
    pub directory: DirectorySource,
    /// Tracing filter.
    pub log: String,
    /// Where the node logs what it observes (devnets and audits only), if anywhere.
    pub observation_log: Option<PathBuf>,
    /// More flags.
    pub extra_args: Vec<String>,
}

impl NodeLaunch {
    /// The command, without `SHALLOT_HOME` (a node uses only its `--node-dir`).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("node")
            .arg("--node-dir")
            .arg(&self.node_dir)
            .arg("--bind")
            .arg(self.bind.to_string());
        match &self.directory {
            DirectorySource::File(path) => command.arg("--directory-file").arg(path),
            DirectorySource::Oxend(url) => command.arg("--oxend").arg(url),
        };
        command
            .arg("--exempt-loopback")
            .arg("--allow-private-targets")
            .arg("--log")
            .arg(&self.log)
            .args(&self.extra_args);
        if let Some(path) = &self.observation_log {
            command.arg("--observation-log").arg(path);
        }
        command.env_remove("SHALLOT_HOME");
        command
    }
}

/// Starts `command` with stdout and stderr going to `log` (a node logs to stdout: both streams
/// go there, or its log is lost); the caller owns the child, which also stops by itself if
/// this process is killed before it can stop the child ([`LAUNCHER_PID_ENV`]).
pub fn spawn_logged(command: &mut Command, log: &Path) -> std::io::Result<Child> {
    exit_with_launcher(command);
    spawn_to_log(command, log)
}

fn spawn_to_log(command: &mut Command, log: &Path) -> std::io::Result<Child> {
    let log = std::fs::File::create(log)?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
}

/// Starts `command` as [`spawn_logged`] does, in its own process group (a Ctrl-C in the
/// terminal that started it does not stop it), and lets it run on: its process id.
pub fn spawn_detached(command: &mut Command, log: &Path) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    Ok(spawn_to_log(command, log)?.id())
}

/// Set on the processes a temporary devnet starts (`devnet demo`, the benches): the launcher's
/// process id. Such a process stops itself once its parent is no longer that process, so a
/// launcher that is killed (SIGKILL, a closed terminal) leaves no nodes behind. `devnet up`
/// does not set it: its processes are meant to outlive the command.
pub const LAUNCHER_PID_ENV: &str = "SHALLOT_EXIT_WITH_LAUNCHER";

/// Marks `command` to stop itself when this process is gone (see [`LAUNCHER_PID_ENV`]).
pub fn exit_with_launcher(command: &mut Command) {
    command.env(LAUNCHER_PID_ENV, std::process::id().to_string());
}

/// Whether process `pid` runs. An exited child not yet reaped (a zombie) does not: `shallot
/// devnet demo` and `bench e2e` outlive the processes they start and never wait on them.
pub fn is_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .is_some_and(|process| process.is_alive())
}

/// Sends `signal` to process `pid` (gone already: nothing to do).
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

/// Waits until process `pid` has exited, up to `limit`; whether it did.
pub fn wait_exit(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// How long a process may take to shut down after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// Sends SIGTERM to `child` and waits up to `limit`; `true` if it exited with success (else it
/// is killed).
pub fn terminate(mut child: Child, limit: Duration) -> bool {
    signal(child.id(), Signal::TERM);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// CPU time (user + system) process `pid` has used so far (zero if it is gone).
pub fn cpu_time(pid: u32) -> Duration {
    let Some(stat) = i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.stat().ok())
    else {
        return Duration::ZERO;
    };
    let ticks = stat.utime.saturating_add(stat.stime);
    let per_second = procfs::ticks_per_second().max(1);
    Duration::from_micros(ticks.saturating_mul(1_000_000) / per_second)
}

/// Resident memory of process `pid` in KiB (zero if it is gone).
pub fn resident_kib(pid: u32) -> u64 {
    i32::try_from(pid)
        .ok()
        .and_then(|pid| procfs::process::Process::new(pid).ok())
        .and_then(|process| process.status().ok())
        .and_then(|status| status.vmrss)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

    use super::*;

    #[test]
    fn a_node_command_names_its_directory_source_and_observation_log() {
        let mut launch = NodeLaunch {
            binary: "shallot".into(),
            node_dir: "/tmp/n1".into(),
            bind: "127.0.9.1:4000".parse().unwrap(),
            directory: DirectorySource::File("/tmp/nodes.json".into()),
            log: "warn".into(),
            observation_log: None,
            extra_args: vec!["--config".into(), "x.toml".into()],
        };
        let args = |launch: &NodeLaunch| -> Vec<String> {
            launch
                .command()
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let file = args(&launch);
        assert_eq!(
            file[..5],
            ["node", "--node-dir", "/tmp/n1", "--bind", "127.0.9.1:4000"]
        );
        assert!(file
            .windows(2)
            .any(|w| w == ["--directory-file", "/tmp/nodes.json"]));
        assert!(file.windows(2).any(|w| w == ["--config", "x.toml"]));
        assert!(file.contains(&"--exempt-loopback".to_owned()));
        assert!(!file.contains(&"--observation-log".to_owned()));
        launch.directory = DirectorySource::Oxend("http://127.0.0.1:1/json_rpc".into());
        launch.observation_log = Some("/tmp/obs.jsonl".into());
        let oxend = args(&launch);
        assert!(oxend
            .windows(2)
            .any(|w| w == ["--oxend", "http://127.0.0.1:1/json_rpc"]));
        assert!(oxend
            .windows(2)
            .any(|w| w == ["--observation-log", "/tmp/obs.jsonl"]));
        assert!(!oxend.contains(&"--directory-file".to_owned()));
    }

    #[test]
    fn a_terminated_child_is_reported_gone_and_costs_are_read() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        assert!(resident_kib(pid) > 0);
        // Killed by SIGTERM: not a success, and no longer alive.
        assert!(!terminate(child, Duration::from_secs(5)));
        assert!(!is_alive(pid));
        assert_eq!(cpu_time(pid), Duration::ZERO);
        assert_eq!(resident_kib(pid), 0);
    }

    #[test]
    fn an_unreaped_child_is_not_alive_and_wait_exit_sees_it() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        signal(pid, Signal::KILL);
        // A zombie until waited on.
        assert!(wait_exit(pid, Duration::from_secs(5)));
        let _ = child.wait();
    }
}
