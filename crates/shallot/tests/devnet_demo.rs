//! `shallot devnet demo` end to end through the binary: a devnet comes up, both messages are
//! delivered, the per-hop table shows no node that saw both a client's address and an account,
//! and the devnet is shut down and removed.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use assert_cmd::Command;

#[test]
fn demo_delivers_both_ways_and_no_hop_sees_both_ends() {
    let out = Command::cargo_bin("shallot")
        .unwrap()
        .env_remove("SHALLOT_HOME")
        .args(["devnet", "demo", "--subnet", "98"])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    assert!(
        stdout.contains(r#"Bob fetched "Hi Bob, it's Alice!" from Alice"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"Alice fetched "Hi Alice, got it. Bob" from Bob"#),
        "{stdout}"
    );

    // Four routes (two sends, two fetches), each: guard, two relays, destination.
    let rows: Vec<&str> = stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            ["1 guard", "2 relay", "3 relay", "destination "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(rows.len(), 16, "{stdout}");
    for row in &rows {
        let saw_client = row.contains("(the client)");
        let saw_account = row.contains("yes:");
        assert!(!(saw_client && saw_account), "a hop saw both ends: {row}");
        assert_eq!(
            row.starts_with("1 guard"),
            saw_client,
            "only guards see the client: {row}"
        );
        assert_eq!(
            row.starts_with("destination"),
            saw_account,
            "only destinations see an account: {row}"
        );
    }
    assert!(
        stdout.contains("no node saw both the sender's address and the recipient"),
        "{stdout}"
    );
    assert!(stdout.contains("devnet stopped"), "{stdout}");
    assert!(stdout.contains("removed "), "{stdout}");
}
