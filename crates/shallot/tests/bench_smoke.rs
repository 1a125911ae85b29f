//! The benchmarks run once, briefly, so a change that breaks one is caught by the test run
//! (their figures are not checked here: speed targets live in the benches themselves).

mod support;

use support::shallot;

/// `shallot bench node` for one second per scenario: every scenario completes with requests
/// answered and none failed, on real node processes.
#[test]
fn bench_node_runs_every_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let (ok, out) = shallot(&[
        "bench",
        "node",
        "--duration",
        "1",
        "--concurrency",
        "8",
        "--data-dir",
        home,
    ]);
    assert!(ok, "{out}");
    for scenario in ["store", "storeswarm", "retrieve", "onion", "onionstore"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(scenario))
            .unwrap_or_else(|| panic!("no {scenario} row in:\n{out}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        let answered: u64 = fields[1].parse().unwrap();
        let failed: u64 = fields[2].parse().unwrap();
        assert!(answered > 0, "{row}");
        assert_eq!(failed, 0, "{row}");
    }
}

/// `shallot bench groups` with one message to a three-member group (and one to its bound, two
/// devices of one account) and one removal from a group of five: it completes, every member
/// and device saw the message, and it prints its figures.
#[test]
fn bench_groups_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let (ok, out) = shallot(&[
        "bench",
        "groups",
        "--messages",
        "1",
        "--members",
        "3",
        "--rekey-members",
        "5",
        "--removals",
        "1",
        "--nodes",
        "8",
        "--subnet",
        "243",
        "--data-dir",
        home,
    ]);
    assert!(ok, "{out}");
    // The group's figures and their bound's, measured in the same run.
    for label in ["group", "bound"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no {label} row in:\n{out}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[1], "1", "{row}");
        assert_eq!(fields[5], "0", "nothing lost: {row}");
    }
    assert!(out.contains("group / bound: p50 "), "{out}");
    assert!(out.contains("remove 1 of 5"), "{out}");
    assert!(out.contains("per-member p50 (group):"), "{out}");
}

/// `shallot bench e2e` with three messages per mode: private push, direct push and polling each
/// deliver every message to Bob.
#[test]
fn bench_e2e_delivers_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let (ok, out) = shallot(&[
        "bench",
        "e2e",
        "--messages",
        "3",
        "--nodes",
        "8",
        "--subnet",
        "242",
        "--data-dir",
        home,
    ]);
    assert!(ok, "{out}");
    for mode in ["private", "direct", "polling"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(mode))
            .unwrap_or_else(|| panic!("no {mode} row in:\n{out}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[1], "3", "{row}");
        assert_eq!(fields[6], "0", "nothing lost: {row}");
    }
}
