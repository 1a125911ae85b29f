//! The `shallot account` commands as a user runs them: real binary, real files.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use assert_cmd::Command;

const PHRASE: &str =
    "vexed enjoy pigment films adept voted vexed enjoy pigment films adept voted adept";
const SESSION_ID: &str = "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72";

fn shallot(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.arg("--data-dir").arg(dir).env_remove("SHALLOT_HOME");
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn new_account_then_show_and_restore_elsewhere() {
    let a = tempfile::tempdir().unwrap();
    let created = stdout(shallot(a.path()).args(["account", "new"]));
    let sid_line = created
        .lines()
        .find(|l| l.starts_with("Session ID: "))
        .unwrap();
    let sid = sid_line.trim_start_matches("Session ID: ");
    assert_eq!(sid.len(), 66);
    assert!(sid.starts_with("05"));

    let shown = stdout(shallot(a.path()).args(["account", "show", "--phrase", "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["session_id"], sid);
    let phrase = shown["recovery_phrase"].as_str().unwrap().to_owned();
    assert_eq!(phrase.split(' ').count(), 13);
    // The phrase is printed only when asked for.
    assert!(!created.contains(&phrase));

    let plain = stdout(shallot(a.path()).args(["account", "show"]));
    assert!(plain.contains(sid));
    assert!(!plain.contains(&phrase));

    // A second device restores from the phrase on stdin and gets the same Session ID.
    let b = tempfile::tempdir().unwrap();
    let restored = stdout(
        shallot(b.path())
            .args(["account", "restore"])
            .write_stdin(format!("{phrase}\n")),
    );
    assert!(restored.contains(sid), "{restored}");
}

#[test]
fn restore_from_arguments_matches_known_vector() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = shallot(dir.path());
    cmd.args(["account", "restore"]).args(PHRASE.split(' '));
    assert!(stdout(&mut cmd).contains(SESSION_ID));
    let shown = stdout(shallot(dir.path()).args(["account", "show", "--phrase"]));
    assert!(shown.contains(SESSION_ID));
    assert!(shown.contains(PHRASE));
    assert!(shown.contains("4cb76fdc6d32278e3f83dbf608360ecc6b65727934b85d2fb86862ff98c46ab7"));
}

#[cfg(unix)]
#[test]
fn key_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    shallot(dir.path())
        .args(["account", "new"])
        .assert()
        .success();
    let mode = std::fs::metadata(dir.path().join("account.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn bad_phrases_fail_with_a_clear_message_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed amaze",
            "checksum",
        ),
        (
            "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed zzzzz",
            "word 13",
        ),
        ("amaze buffet cake", "13 words"),
    ];
    for (phrase, expected) in cases {
        let out = shallot(dir.path())
            .args(["account", "restore"])
            .write_stdin(phrase)
            .assert()
            .failure();
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(stderr.contains(expected), "{phrase}: {stderr}");
    }
    assert!(!dir.path().join("account.json").exists());
    let out = shallot(dir.path())
        .args(["account", "restore"])
        .write_stdin("")
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("no recovery phrase"));
}

#[test]
fn existing_account_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    shallot(dir.path())
        .args(["account", "restore"])
        .args(PHRASE.split(' '))
        .assert()
        .success();
    let out = shallot(dir.path())
        .args(["account", "new"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--force"));
    assert!(stdout(shallot(dir.path()).args(["account", "show"])).contains(SESSION_ID));
    shallot(dir.path())
        .args(["account", "new", "--force"])
        .assert()
        .success();
    assert!(!stdout(shallot(dir.path()).args(["account", "show"])).contains(SESSION_ID));
}

#[test]
fn show_without_account_explains_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = shallot(dir.path())
        .args(["account", "show"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("shallot account new"), "{stderr}");
}

#[test]
fn shallot_home_env_selects_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("shallot").unwrap();
    cmd.env("SHALLOT_HOME", dir.path())
        .args(["account", "restore"])
        .args(PHRASE.split(' '));
    cmd.assert().success();
    assert!(dir.path().join("account.json").exists());
}
