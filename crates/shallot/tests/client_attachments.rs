//! Attachments against real processes (nodes and a `shallot fileserver`): a 10 MB file each way
//! through onion paths arrives byte-identical; a blob tampered with on the server is rejected
//! and nothing is saved; an expired or unknown file is a clear "expired" error; and the CLI
//! (`send --attach`, the `attachment` lines of `inbox`, `download`) works end to end.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;
use std::time::Duration;

use shallot_client::attachments::{download, AttachmentError, FileServer};
use shallot_client::{Messenger, MessengerError, StoredAttachment};
use shallot_proto::attachment::legacy::encrypt_legacy;
use shallot_proto::attachment::{AttachmentPointer, FileUrl, LegacyPadding};
use support::files::{random_file, start};
use support::{cli_output, messenger, until, user};

const LIMIT: Duration = Duration::from_secs(20);

/// Polls `who` until a message with attachments arrives; its attachments.
async fn wait_attachments(who: &Messenger) -> Vec<StoredAttachment> {
    until(LIMIT, "a message with attachments", || async {
        let got = who.receive().await.map_err(|e| e.to_string())?;
        got.into_iter()
            .find(|m| !m.attachments.is_empty())
            .map(|m| m.attachments)
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
}

/// Sends `file` from `from` to `to`, who downloads it into `out`; asserts it is byte-identical.
async fn exchange(from: &Messenger, to: &Messenger, server: &FileServer, file: &Path, out: &Path) {
    let start = std::time::Instant::now();
    let sent = from
        .send_files(
            &to.session_id(),
            "",
            &[file.to_owned()],
            server,
            &mut |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(sent.stored_on, 3);
    let uploaded = start.elapsed();
    let attachments = wait_attachments(to).await;
    assert_eq!(attachments.len(), 1);
    let name = file.file_name().unwrap().to_string_lossy();
    assert_eq!(attachments[0].file_name(), name);
    let len = std::fs::metadata(file).unwrap().len();
    assert_eq!(attachments[0].size(), len);
    let (_, saved) = to
        .download_attachment(attachments[0].id.as_str(), out, server, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(saved, len);
    eprintln!(
        "{len} bytes: sent in {uploaded:?}, saved at the recipient after {:?}",
        start.elapsed()
    );
    assert!(
        std::fs::read(out).unwrap() == std::fs::read(file).unwrap(),
        "{name} differs"
    );
}

/// The entries of `dir` (to show that a failed download left nothing behind).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_each_way_and_bad_blobs_refused() {
    let begun = std::time::Instant::now();
    let (net, files, server) = start(243).await;
    eprintln!("network up in {:?}", begun.elapsed());
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, user(), a.path()).await;
    let bob = messenger(&net, user(), b.path()).await;

    // 10 MB (Session's limit) each way, through onion paths, byte-identical.
    let big = random_file(work.path(), "alice.bin", 10_000_000, 1);
    exchange(&alice, &bob, &server, &big, &work.path().join("at-bob.bin")).await;
    let big = random_file(work.path(), "bob.bin", 10_000_000, 2);
    exchange(
        &bob,
        &alice,
        &server,
        &big,
        &work.path().join("at-alice.bin"),
    )
    .await;

    // Over the limit: refused before anything is uploaded or sent.
    let huge = random_file(work.path(), "huge.bin", 10_000_001, 3);
    let refused = alice
        .send_files(&bob.session_id(), "", &[huge], &server, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            MessengerError::Attachment(AttachmentError::TooLarge { .. })
        ),
        "{refused}"
    );

    // A blob changed on the server: bad MAC, nothing saved (not even a temporary file).
    let small = random_file(work.path(), "small.txt", 100_000, 4);
    alice
        .send_files(&bob.session_id(), "x", &[small], &server, &mut |_, _| {})
        .await
        .unwrap();
    let attachment = wait_attachments(&bob).await.remove(0);
    let url: FileUrl = attachment.pointer.url.as_deref().unwrap().parse().unwrap();
    let stored = files.dir.join("files").join(url.id.as_str());
    let mut blob = std::fs::read(&stored).unwrap();
    blob[5000] ^= 1;
    std::fs::write(&stored, blob).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("tampered.txt");
    let err = bob
        .download_attachment(attachment.id.as_str(), &out, &server, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad MAC"), "{err}");
    assert!(err.to_string().contains("nothing saved"), "{err}");
    assert!(
        entries(out_dir.path()).is_empty(),
        "{:?}",
        entries(out_dir.path())
    );

    // An expired file (uploaded over plain HTTP with a lifetime of 0 s) and an unknown one: 404,
    // reported as expired.
    let (blob, key, sealed) =
        encrypt_legacy(b"gone", LegacyPadding::Padded, &mut rand::rngs::OsRng);
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/file", files.entry.url()))
        .header("X-FS-TTL", "0")
        .body(blob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut gone: FileUrl = url.clone();
    gone.id = reply["id"].as_str().unwrap().parse().unwrap();
    let unknown = FileUrl {
        id: "nosuchfile".parse().unwrap(),
        ..url
    };
    for url in [gone, unknown] {
        let pointer = AttachmentPointer::legacy(&url, &key, &sealed).unwrap();
        let err = download(bob.client(), &pointer, server.x25519(), &out, &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, AttachmentError::Expired), "{err}");
        assert!(err.to_string().contains("expired"), "{err}");
    }
    assert!(entries(out_dir.path()).is_empty());
    drop(files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_send_attach_inbox_and_download() {
    let (net, files, server) = start(244).await;
    let seed = net.nodes[1].addr.to_string();
    let (a, b, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for dir in [a.path(), b.path()] {
        assert!(cli_output(dir, &["account", "new"]).0);
    }
    let (_, show, _) = cli_output(b.path(), &["account", "show", "--json"]);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    let bob = show["session_id"].as_str().unwrap();
    let photo = random_file(work.path(), "photo.jpg", 2_000_000, 5);
    let url = server.url();
    let key = files.entry.ed25519.clone();
    let pin = ["--file-server", &url, "--file-server-key", &key];

    let photo_arg = photo.to_string_lossy();
    let mut args = vec![
        "send",
        bob,
        "a photo",
        "--attach",
        &photo_arg,
        "--seed-node",
        &seed,
    ];
    args.extend(pin);
    let (ok, stdout, stderr) = cli_output(a.path(), &args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("stored on 3"), "{stdout}");
    assert!(stderr.contains("uploading"), "progress on stderr: {stderr}");

    // Bob's inbox shows the attachment line.
    let (ok, stdout, stderr) = cli_output(b.path(), &["inbox", "--seed-node", &seed]);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("attachment "))
        .unwrap_or_else(|| panic!("no attachment line: {stdout}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2..], ["photo.jpg", "2000000"], "{line}");
    let id = fields[1];

    let out = work.path().join("saved.jpg");
    let out_arg = out.to_string_lossy();
    let mut args = vec!["download", id, "--out", &out_arg];
    args.extend(pin);
    let (ok, stdout, stderr) = cli_output(b.path(), &args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("2000000 bytes"), "{stdout}");
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&photo).unwrap());

    // The file server given once is pinned: a later download needs no flags. An unknown id
    // is a clear error.
    let again = work.path().join("again.jpg");
    let again_arg = again.to_string_lossy();
    let (ok, _, stderr) = cli_output(b.path(), &["download", id, "--out", &again_arg]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli_output(b.path(), &["download", "ffff0000", "--out", &again_arg]);
    assert!(!ok);
    assert!(stderr.contains("no attachment"), "{stderr}");
    drop(files);
}

/// Runs `shallot` in `dir` until `check` accepts its stdout (a message may take a few polls to
/// arrive); the last output on giving up.
fn shallot_until(dir: &Path, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (ok, stdout, stderr) = cli_output(dir, args);
        if ok && check(&stdout) {
            return stdout;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A file sent to a group of three with `send GROUP_ID --attach`: the pointer travels inside
/// the group-encrypted message, both other members' `inbox` print it under the `[group NAME]`
/// line, and both download it byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_attachment_to_a_group_of_three() {
    let (net, files, server) = start(245).await;
    let seed = net.nodes[1].addr.to_string();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let [a, b, c, work] = &dirs[..] else {
        unreachable!()
    };
    let mut ids = Vec::new();
    for dir in [a.path(), b.path(), c.path()] {
        assert!(cli_output(dir, &["account", "new"]).0);
        let (_, show, _) = cli_output(dir, &["account", "show", "--json"]);
        let show: serde_json::Value = serde_json::from_str(&show).unwrap();
        ids.push(show["session_id"].as_str().unwrap().to_owned());
    }
    let (ok, stdout, stderr) = cli_output(
        a.path(),
        &[
            "group",
            "create",
            "Team",
            "--member",
            &ids[1],
            "--member",
            &ids[2],
            "--seed-node",
            &seed,
        ],
    );
    assert!(ok, "{stderr}");
    let gid = stdout.trim().to_owned();
    assert!(gid.starts_with("03"), "{stdout}");
    let file = random_file(work.path(), "report.pdf", 1_000_000, 6);
    let file_arg = file.to_string_lossy();
    let (url, key) = (server.url(), files.entry.ed25519.clone());
    for dir in [b.path(), c.path()] {
        shallot_until(dir, &["inbox", "--seed-node", &seed], "the invite", |out| {
            out.contains(&gid)
        });
        // Not a member until the invite is accepted: refused before anything is uploaded.
        let (ok, _, stderr) = cli_output(
            dir,
            &[
                "send",
                &gid,
                "--attach",
                &file_arg,
                "--file-server",
                &url,
                "--file-server-key",
                &key,
            ],
        );
        assert!(!ok && stderr.contains("not a member"), "{stderr}");
        assert_eq!(entries(&files.dir.join("files")), Vec::<String>::new());
        let (ok, _, stderr) = cli_output(dir, &["group", "accept", &gid]);
        assert!(ok, "{stderr}");
    }

    let (ok, stdout, stderr) = cli_output(
        a.path(),
        &[
            "send",
            &gid,
            "the report",
            "--attach",
            &file_arg,
            "--file-server",
            &url,
            "--file-server-key",
            &key,
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("attachment "), "{stdout}");

    for (i, dir) in [b.path(), c.path()].into_iter().enumerate() {
        let out = work.path().join(format!("saved-{i}.pdf"));
        receive_group_file(
            dir,
            &out,
            &file,
            &["--file-server", &url, "--file-server-key", &key],
        );
    }
    drop(files);
}

/// A member's `inbox` shows the group message `[group Team] …: the report` with the attachment
/// line right under it; `download` (with `pin`, the file server flags) saves it at `out`,
/// byte-identical to `file`.
fn receive_group_file(dir: &Path, out: &Path, file: &Path, pin: &[&str]) {
    let inbox = shallot_until(dir, &["inbox"], "the group attachment", |out| {
        out.contains("attachment ")
    });
    let lines: Vec<&str> = inbox.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("attachment "))
        .unwrap();
    assert!(at > 0 && lines[at - 1].contains("[group Team]"), "{inbox}");
    assert!(lines[at - 1].ends_with(": the report"), "{inbox}");
    let fields: Vec<&str> = lines[at].split(' ').collect();
    assert_eq!(fields[2..], ["report.pdf", "1000000"], "{inbox}");
    let out_arg = out.to_string_lossy();
    let mut args = vec!["download", fields[1], "--out", &out_arg];
    args.extend(pin);
    let (ok, stdout, stderr) = cli_output(dir, &args);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1000000 bytes"), "{stdout}");
    assert!(
        std::fs::read(out).unwrap() == std::fs::read(file).unwrap(),
        "{}'s copy differs",
        dir.display()
    );
}
