//! `shallot devnet` end to end: directory and node processes, registration, swarms from the
//! chain's assignment, a message stored and replicated, clean shutdown.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // Test code: a panic is a failed test; one scenario per test.

mod support;

use support::shallot;

/// Runs `devnet down` on drop, so a failed assertion does not leave the detached node and
/// directory processes running (`devnet down` is idempotent).
struct DownOnDrop<'a>(&'a str);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = shallot(&["devnet", "down", "--dir", self.0]);
    }
}

#[test]
fn devnet_up_forms_two_swarms_and_goes_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let _down = DownOnDrop(d);
    // One config file describes the devnet; a flag overrides it.
    let config = dir.path().join("my-devnet.toml");
    std::fs::write(&config, "nodes = 9\nsubnet = 91\nblock_time_ms = 200\n").unwrap();
    let (ok, text) = shallot(&[
        "devnet",
        "up",
        "--config",
        config.to_str().unwrap(),
        "--nodes",
        "14",
        "--dir",
        d,
    ]);
    assert!(ok, "{text}");
    let used = std::fs::read_to_string(dir.path().join("devnet.toml")).unwrap();
    assert!(
        used.contains("nodes = 14") && used.contains("block_time_ms = 200"),
        "{used}"
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("127.0.91.")).collect();
    assert_eq!(rows.len(), 14, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("active") && r.contains("running")),
        "{text}"
    );
    let mut swarms: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().nth(3).unwrap())
        .collect();
    swarms.sort_unstable();
    swarms.dedup();
    assert_eq!(swarms.len(), 2, "14 nodes form two swarms: {text}");
    // The devnet's file server: its URL and keys printed, and recorded for clients.
    assert!(
        text.lines()
            .any(|l| l.starts_with("fileserver http://127.0.0.1:") && l.ends_with("running")),
        "{text}"
    );

    // The directory admin CLI: ledger, a node's history, registering a new node.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("devnet.json")).unwrap())
            .unwrap();
    let url = format!(
        "http://{}/json_rpc",
        state["directory_addr"].as_str().unwrap()
    );
    let first = state["nodes"][0]["ed25519"].as_str().unwrap().to_owned();
    let (ok, ledger) = shallot(&["directory", "ledger", "--url", &url]);
    assert!(ok && ledger.contains("operator1"), "{ledger}");
    let (ok, history) = shallot(&["directory", "history", &first, "--url", &url]);
    assert!(ok && history.contains("history"), "{history}");
    let newcomer = shallot_proto::Identity::from_seed([5; 32])
        .ed25519_public()
        .to_hex();
    // On the public listener a registration is signed by the operator's devnet wallet.
    let wallet = dir.path().join("wallet.key");
    let wallet = wallet.to_str().unwrap();
    let (ok, address) = shallot(&["directory", "wallet", "--wallet", wallet]);
    assert!(ok && address.trim().starts_with("dw"), "{address}");
    let register = |extra: &[&str]| {
        let mut args = vec!["directory", "register", &newcomer, "--url", &url];
        args.extend_from_slice(extra);
        shallot(&args)
    };
    let (ok, text) = register(&["--wallet", wallet]);
    assert!(ok, "{text}");
    let (ok, text) = register(&["--wallet", wallet]);
    assert!(
        !ok && text.contains("refused"),
        "registering twice must fail clearly: {text}"
    );
    // With the admin token the admin listener takes any operator label; the public one does not.
    let token = dir.path().join("directory").join("admin.token");
    let token = token.to_str().unwrap();
    let admin_url = format!("http://{}/json_rpc", state["admin_addr"].as_str().unwrap());
    let second = shallot_proto::Identity::from_seed([6; 32])
        .ed25519_public()
        .to_hex();
    let (ok, text) = shallot(&[
        "directory",
        "register",
        &second,
        "--operator",
        "me",
        "--admin-token",
        token,
        "--url",
        &url,
    ]);
    assert!(!ok && text.contains("Unauthorized"), "{text}");
    let (ok, text) = shallot(&[
        "directory",
        "register",
        &second,
        "--operator",
        "me",
        "--admin-token",
        token,
        "--url",
        &admin_url,
    ]);
    assert!(ok, "{text}");
    let (ok, help) = shallot(&["directory", "unlock", "--help"]);
    assert!(
        ok && help.contains("--wallet") && help.contains("--admin-token"),
        "{help}"
    );

    // A second `up` on a running devnet is refused.
    let (ok, text) = shallot(&["devnet", "up", "--dir", d]);
    assert!(!ok && text.contains("already running"), "{text}");

    // kill-node, status shows it stopped, start-node brings it back.
    let (ok, text) = shallot(&["devnet", "kill-node", "3", "--dir", d]);
    assert!(ok, "{text}");
    let (_, status) = shallot(&["devnet", "status", "--dir", d]);
    assert!(
        status
            .lines()
            .any(|l| l.contains("127.0.91.3:") && l.contains("stopped")),
        "{status}"
    );
    let (ok, text) = shallot(&["devnet", "start-node", "3", "--dir", d]);
    assert!(ok, "{text}");

    let (ok, text) = shallot(&["devnet", "down", "--dir", d]);
    assert!(ok, "{text}");

    // `up` on the stopped devnet restarts the same network (same nodes, same config).
    let (ok, text) = shallot(&["devnet", "up", "--dir", d]);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("127.0.91.") && l.contains("active"))
            .count(),
        14,
        "{text}"
    );
    let (ok, text) = shallot(&["devnet", "down", "--dir", d]);
    assert!(ok, "{text}");
    let (ok, status) = shallot(&["devnet", "status", "--dir", d]);
    assert!(ok && status.contains("directory not running"), "{status}");
    let stopped = status
        .lines()
        .filter(|l| l.contains("127.0.91.") && l.ends_with("stopped"))
        .count();
    assert_eq!(stopped, 14, "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("fileserver") && l.ends_with("stopped")),
        "{status}"
    );
}
