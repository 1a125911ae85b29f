//! A command that runs its own throwaway devnet (`bench …`, `devnet demo`) leaves nothing
//! running when it is stopped from outside: on SIGTERM it stops the devnet and removes its
//! directory; killed outright (SIGKILL, where it can do nothing), its directory, nodes and file
//! server notice they lost their launcher and stop by themselves.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shallot_devnet::process::{is_alive, signal, Signal};
use shallot_devnet::DevnetState;

/// How long a devnet may take to come up, and its processes to stop, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// `shallot bench e2e` with more messages than it will ever send, its temporary devnet under
/// `tmp` on 127.0.`subnet`.x.
fn start_bench(tmp: &Path, subnet: u8) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shallot"))
        .args(["bench", "e2e", "--nodes", "4", "--messages", "1000000"])
        .args(["--subnet", &subnet.to_string(), "--data-dir"])
        .arg(tmp.join("home"))
        .env("TMPDIR", tmp)
        .env_remove("SHALLOT_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the bench's devnet under `tmp` has all its nodes recorded with their process
/// ids; its directory and every process id (directory, file server, nodes).
fn devnet_running(tmp: &Path, bench: &mut Child) -> (PathBuf, Vec<u32>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(
            bench.try_wait().unwrap().is_none(),
            "the bench exited early"
        );
        assert!(Instant::now() < deadline, "the devnet did not come up");
        let dirs: Vec<PathBuf> = std::fs::read_dir(tmp)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("shallot-devnet-")
            })
            .collect();
        if let [dir] = dirs.as_slice() {
            if let Ok(state) = DevnetState::load(dir) {
                let nodes: Vec<u32> = state.nodes.iter().filter_map(|n| n.pid).collect();
                let server = state.file_server.as_ref().and_then(|f| f.pid);
                if let (4, Some(directory), Some(server)) =
                    (nodes.len(), state.directory_pid, server)
                {
                    let mut pids = nodes;
                    pids.extend([directory, server]);
                    return (dir.clone(), pids);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until none of `pids` runs; the ones still running at the deadline.
fn wait_all_stopped(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let running: Vec<u32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
        if running.is_empty() || Instant::now() > deadline {
            return running;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_terminated_bench_stops_its_devnet_and_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bench = start_bench(tmp.path(), 231);
    let (dir, pids) = devnet_running(tmp.path(), &mut bench);
    signal(bench.id(), Signal::TERM);
    let status = bench.wait().unwrap();
    assert!(!status.success(), "an interrupted bench reports failure");
    // It waited for its devnet to stop before exiting.
    let running: Vec<u32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
    assert!(
        running.is_empty(),
        "still running after the bench exited: {running:?}"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn a_killed_bench_leaves_no_process_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bench = start_bench(tmp.path(), 232);
    let (_dir, pids) = devnet_running(tmp.path(), &mut bench);
    bench.kill().unwrap();
    bench.wait().unwrap();
    let running = wait_all_stopped(&pids);
    for &pid in &running {
        signal(pid, Signal::KILL);
    }
    assert!(
        running.is_empty(),
        "still running without their launcher: {running:?}"
    );
}
