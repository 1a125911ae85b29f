//! The metadata audit in the default test run: `shallot audit` starts a devnet whose nodes log
//! what they observe, runs messaging through it (private push, polls, unsend, a second device
//! through the CLI, a dead relay) with each client on its own loopback address, and must find no
//! node that could link a client's address to its account or its correspondent's. And a node
//! refuses to keep such a log outside a devnet.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use std::process::Command;
use std::time::Instant;

#[test]
fn no_node_links_a_client_address_to_an_account() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_shallot"))
        .env_remove("SHALLOT_HOME")
        .args(["audit", "--subnet", "197", "--client-subnet", "202"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "shallot audit took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("PASS: no violation"), "{stdout}");
    // The per-hop tables come from the nodes' logs: Alice's guard heard from her address, a last
    // hop and the swarm members saw Bob's account, and Bob's wait was answered through his own
    // guard.
    assert!(stdout.contains("127.0.202.1 (Alice)"), "{stdout}");
    assert!(
        stdout.contains("Alice's store into Bob's inbox"),
        "{stdout}"
    );
    assert!(stdout.contains("replica"), "{stdout}");
    assert!(
        stdout.contains("Bob's waiting retrieve (private push)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Alice's 2nd device's waiting retrieve (private push)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Alice's attempt that failed on the path"),
        "{stdout}"
    );
    assert!(stdout.contains("smallest colluding set"), "{stdout}");
}

#[test]
fn a_node_refuses_an_observation_log_without_devnet_settings() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("observations.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_shallot"))
        .env_remove("SHALLOT_HOME")
        .arg("node")
        .arg("--node-dir")
        .arg(dir.path().join("node"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--force-start",
            "--observation-log",
        ])
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("devnets and audits only"), "{stderr}");
    assert!(!log.exists());
}
