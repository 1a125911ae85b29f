//! `shallot devnet demo` end to end through the binary: a devnet comes up with observation logs,
//! both messages are delivered, the per-hop tables show no node that logged both a client's
//! address and an account, a picture goes each way through the file server, which keeps only
//! encrypted blobs of padded sizes (no sender, recipient or client address in its metadata or
//! log), a group of three exchanges messages and its swarm holds no member's Session ID, and
//! the devnet is shut down and removed.
//!
//! What this does and does not check: the tables are rendered from the nodes' own observation
//! logs, so the oracle is what the node code records of each request, not the bytes on the
//! wire. The test does not take the demo's verdict (its `findings`) on trust: it applies its
//! own rule to every printed row, and requires the logs to be non-vacuous — each guard row
//! shows the client's address and each last-hop and replica row an account — so an empty or
//! mislabelled log fails too.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use assert_cmd::Command;

#[test]
fn demo_delivers_both_ways_and_no_hop_logged_both_ends() {
    let out = Command::cargo_bin("shallot")
        .unwrap()
        .env_remove("SHALLOT_HOME")
        .args(["devnet", "demo", "--subnet", "98", "--client-subnet", "203"])
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

    // Each exchange: the send and the sender's own copy (guard, two relays, last hop, replicas)
    // and the recipient's polls, as the nodes logged them.
    let rows: Vec<&str> = stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            ["guard ", "relay ", "last hop ", "replica "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let count = |prefix: &str| rows.iter().filter(|r| r.starts_with(prefix)).count();
    // Two sends and two own copies, and at least one poll each way (attempts that failed on
    // the path, e.g. while the devnet's nodes still learn each other, show a guard alone).
    assert!(count("last hop ") >= 6, "{stdout}");
    assert!(count("guard ") >= count("last hop "), "{stdout}");
    assert!(count("relay ") >= 2 * count("last hop "), "{stdout}");
    assert!(count("replica ") >= 4, "{stdout}");
    for row in &rows {
        // A client's address is printed with its name in parentheses; an account by the name.
        let saw_client = row.contains("(Alice)") || row.contains("(Bob)");
        let rest = row.replace("(Alice)", "").replace("(Bob)", "");
        let saw_account = rest.contains("Alice") || rest.contains("Bob");
        assert!(!(saw_client && saw_account), "a hop saw both ends: {row}");
        assert_eq!(
            row.starts_with("guard "),
            saw_client,
            "only guards see the client: {row}"
        );
        assert_eq!(
            row.starts_with("last hop ") || row.starts_with("replica "),
            saw_account,
            "only last hops and swarm members see an account: {row}"
        );
    }
    // The addresses the demo gave its clients (127.0.<client subnet>.1 and .2), as the guards
    // logged them.
    assert!(stdout.contains("127.0.203.1 (Alice)"), "{stdout}");
    assert!(stdout.contains("127.0.203.2 (Bob)"), "{stdout}");
    assert!(
        stdout.contains("Conclusion, from what the nodes logged: no node saw a client's address"),
        "{stdout}"
    );
    // A picture each way through the file server, byte-identical, and what the server kept:
    // encrypted blobs of padded sizes, no sender, recipient or client address.
    for line in [
        "Alice attached alice.png",
        "Bob downloaded alice.png through an onion path, checked and saved it",
        "Bob attached bob.png",
        "Alice downloaded bob.png through an onion path, checked and saved it",
        "What the file server learned",
        "its table of files has the columns id, size, uploaded_ms, expires_ms:",
        "no client address (127.0.203.1, 127.0.203.2) and no Session ID",
        "the file server holds encrypted blobs of padded sizes: no sender, no recipient, no \
         client IP",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    let blobs: Vec<&str> = stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("file ") && l.contains("an encrypted blob"))
        .collect();
    assert_eq!(blobs.len(), 2, "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains(", identical")).count() == 2,
        "{stdout}"
    );
    // The group: both messages read by the other two, and the group swarm's holdings listed
    // without a member's Session ID.
    for line in [
        r#"Bob read "Hello group!" in the group"#,
        r#"Carol read "Hello group!" in the group"#,
        r#"Alice read "Hi both, Bob here" in the group"#,
        r#"Carol read "Hi both, Bob here" in the group"#,
        "What the group's swarm learned: the group ID, item sizes and times; no member Session ID",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    let holdings = stdout
        .lines()
        .find(|l| l.contains("The group's swarm stores"))
        .unwrap_or_else(|| panic!("no group swarm line:\n{stdout}"));
    assert!(
        holdings.contains("messages") && holdings.contains("key messages"),
        "{holdings}"
    );
    assert!(stdout.contains("devnet stopped"), "{stdout}");
    assert!(stdout.contains("removed "), "{stdout}");
}
