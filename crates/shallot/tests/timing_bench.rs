//! A small run of the timing-correlation experiment (`shallot bench timing`) in the default
//! test run: 20 users on their own addresses send to each other through a devnet whose nodes
//! log what they see, with no timing defence; the adversary, from those logs alone, names
//! senders far more often than chance (1/20). The full table (every defence, 200+ messages each) is the
//! bench command's, not a test's.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use std::process::Command;
use std::time::Instant;

use serde_json::Value;

#[test]
fn without_defences_the_adversary_names_senders_far_above_chance() {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_shallot"))
        .env_remove("SHALLOT_HOME")
        .args([
            "bench",
            "timing",
            "--clients",
            "20",
            "--messages",
            "30",
            "--interval-secs",
            "3",
            "--settings",
            "none",
            "--subnet",
            "205",
            "--client-subnet",
            "206",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "shallot bench timing took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let result: Value = stdout
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON line in:\n{stdout}"));
    assert!(result["messages"].as_u64().unwrap() >= 25, "{result}");
    // Chance is 0.05. With nothing to blur the timing, an idle machine names nine senders in
    // ten; a busy one (this machine is shared with builds) still several times chance.
    for rule in ["accuracy_arrival", "accuracy_joint"] {
        let accuracy = result[rule].as_f64().unwrap();
        assert!(accuracy >= 0.25, "{rule}: {result}");
    }
    assert!(stdout.contains("chance = 1/20"), "{stdout}");
}
