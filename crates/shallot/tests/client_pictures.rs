//! Profile pictures against real processes (nodes and a `shallot fileserver`): a picture Alice
//! sets reaches Bob with her next message and her second device (restored from the same seed)
//! through her UserProfile config, byte-identical after download through onion paths; a blob
//! tampered with on the server is refused and nothing is cached; a new picture replaces the
//! cached one; a picture the server lost is uploaded again by the keep-alive; a removal
//! reaches Bob; and the CLI (`profile --picture`, `profile --show`, `picture --out`) works.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use std::path::Path;
use std::time::Duration;

use shallot_client::attachments::AttachmentError;
use shallot_client::{KeepAlive, Messenger, MessengerError};
use shallot_proto::attachment::FileUrl;
use shallot_proto::{Identity, SessionId};
use support::files::{random_file, start};
use support::{cli_output, messenger, until, user};

const LIMIT: Duration = Duration::from_secs(30);

/// Polls `who` until `contact`'s recorded picture URL satisfies `check`.
async fn until_contact_picture(
    who: &Messenger,
    contact: &SessionId,
    what: &str,
    check: impl Fn(Option<&str>) -> bool,
) {
    until(LIMIT, what, || async {
        who.receive().await.map_err(|e| e.to_string())?;
        let record = who
            .db()
            .contact_picture(contact)
            .await
            .map_err(|e| e.to_string())?;
        let url = record
            .as_ref()
            .and_then(|r| r.picture.as_ref())
            .map(|p| p.url.clone());
        if record.is_some() && check(url.as_deref()) {
            Ok(())
        } else {
            Err(format!("picture now {url:?}"))
        }
    })
    .await;
}

/// Makes `who`'s own picture reference point at `url` (same key), with the cached blob moved
/// along, as if the server had handed out that id.
async fn point_own_picture_at(who: &Messenger, url: String) -> bool {
    who.db()
        .call(move |db| {
            let blob = std::fs::read(db.cached_picture(None)?.unwrap()).unwrap();
            let mut own = db.own_profile()?;
            own.picture.as_mut().unwrap().url.clone_from(&url);
            db.save_own_profile(&own)?;
            std::fs::write(db.picture_cache_path(None, &url), blob).unwrap();
            db.set_picture_cached(None, &url)
        })
        .await
        .unwrap()
}

/// The files in `dir` (empty if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // One story, step by step.
async fn a_picture_reaches_the_contact_and_the_second_device_and_bad_blobs_are_refused() {
    let (net, files, server) = start(245).await;
    let work = tempfile::tempdir().unwrap();
    let (a, a2, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let alice_id = user();
    let seed = *alice_id.seed();
    let alice = messenger(&net, alice_id, a.path()).await;
    let bob = messenger(&net, user(), b.path()).await;
    let me = alice.session_id();

    // Alice sets a name and a picture, then writes to Bob.
    alice.set_display_name("Alice").await.unwrap();
    let first = random_file(work.path(), "alice.jpg", 300_000, 1);
    let set = alice.set_profile_picture(&first, &server).await.unwrap();
    assert!(set.url.contains("#p="), "{}", set.url);
    alice.send(&bob.session_id(), "hi Bob").await.unwrap();

    // Bob records it and fetches it once, byte-identical; the second time it is cached.
    until_contact_picture(&bob, &me, "Alice's picture at Bob", |url| {
        url == Some(set.url.as_str())
    })
    .await;
    let got = bob.profile_picture(Some(&me), &server).await.unwrap();
    assert!(got.downloaded);
    assert!(
        got.image == std::fs::read(&first).unwrap(),
        "picture differs"
    );
    let again = bob.profile_picture(Some(&me), &server).await.unwrap();
    assert!(!again.downloaded);
    assert!(again.image == got.image);
    let bob_cache = b.path().join(shallot_client::db::PICTURES_DIR);
    assert_eq!(entries(&bob_cache).len(), 1);
    // The cache holds the encrypted blob, not the image.
    let cached = std::fs::read(bob_cache.join(&entries(&bob_cache)[0])).unwrap();
    assert_ne!(cached, got.image);

    // Alice's second device, restored from the same seed, learns it from her UserProfile config.
    let alice2 = messenger(&net, Identity::from_seed(seed), a2.path()).await;
    until(LIMIT, "Alice's picture on her second device", || async {
        alice2.receive().await.map_err(|e| e.to_string())?;
        let own = alice2.db().own_profile().await.map_err(|e| e.to_string())?;
        match own.picture {
            Some(p) if p.url == set.url => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let on_second = alice2.profile_picture(None, &server).await.unwrap();
    assert!(on_second.downloaded);
    assert!(on_second.image == std::fs::read(&first).unwrap());
    assert_eq!(
        alice2.display_name().await.unwrap().as_deref(),
        Some("Alice")
    );

    // A new picture replaces the old at Bob's (its cached file goes); its blob is tampered
    // with on the server: refused, nothing cached.
    let second = random_file(work.path(), "alice2.png", 20_000, 2);
    let set2 = alice.set_profile_picture(&second, &server).await.unwrap();
    assert_ne!(set2.url, set.url);
    alice.send(&bob.session_id(), "new picture").await.unwrap();
    until_contact_picture(&bob, &me, "Alice's new picture at Bob", |url| {
        url == Some(set2.url.as_str())
    })
    .await;
    assert!(entries(&bob_cache).is_empty(), "{:?}", entries(&bob_cache));
    let url: FileUrl = set2.url.parse().unwrap();
    let stored = files.dir.join("files").join(url.id.as_str());
    let original = std::fs::read(&stored).unwrap();
    let mut blob = original.clone();
    blob[100] ^= 1;
    std::fs::write(&stored, &blob).unwrap();
    let err = bob.profile_picture(Some(&me), &server).await.unwrap_err();
    assert!(
        matches!(
            err,
            MessengerError::Attachment(AttachmentError::Rejected(_))
        ),
        "{err}"
    );
    assert!(entries(&bob_cache).is_empty(), "{:?}", entries(&bob_cache));
    assert_eq!(
        bob.db()
            .call(move |db| db.cached_picture(Some(&me)))
            .await
            .unwrap(),
        None
    );
    // Put right, it downloads.
    std::fs::write(&stored, &original).unwrap();
    let fixed = bob.profile_picture(Some(&me), &server).await.unwrap();
    assert!(fixed.image == std::fs::read(&second).unwrap());

    // Keep-alive: extended while the server has it.
    match alice.keep_picture_alive(&server, true).await.unwrap() {
        KeepAlive::Extended { expires } => {
            assert!(expires > alice.client().clock().now_ms() / 1000);
        }
        other => panic!("{other:?}"),
    }
    // A file the server lost (here: a reference to an id it never had, with our cached blob)
    // is uploaded again from the cache, recorded as the re-upload copy and synced.
    // A numeric (non-content-hash) id, which `/extend` does not serve, waits 12 days instead.
    let lost = |id: &str| set2.url.replace(url.id.as_str(), id);
    assert!(point_own_picture_at(&alice, lost("1234567")).await);
    assert_eq!(
        alice.keep_picture_alive(&server, true).await.unwrap(),
        KeepAlive::NotDue
    );
    assert!(point_own_picture_at(&alice, lost(&"Z".repeat(44))).await);
    match alice.keep_picture_alive(&server, true).await.unwrap() {
        // Same bytes, content-addressed server: the same URL as before.
        KeepAlive::Reuploaded { url } => assert_eq!(url, set2.url),
        other => panic!("{other:?}"),
    }
    let own = alice.db().own_profile().await.unwrap();
    assert!(own.reupload_at > 0 && own.reupload_at >= own.picture_set_at);
    until(LIMIT, "the re-upload copy on the second device", || async {
        alice2.receive().await.map_err(|e| e.to_string())?;
        let own = alice2.db().own_profile().await.map_err(|e| e.to_string())?;
        match own.picture {
            Some(p) if p.url == set2.url && own.reupload_at > 0 => Ok(()),
            other => Err(format!("{other:?} at {}", own.reupload_at)),
        }
    })
    .await;

    // Removed: Bob's record says so after her next message.
    alice.remove_profile_picture().await.unwrap();
    alice.send(&bob.session_id(), "no picture").await.unwrap();
    until_contact_picture(&bob, &me, "Alice's picture removed at Bob", |url| {
        url.is_none()
    })
    .await;
    let err = bob.profile_picture(Some(&me), &server).await.unwrap_err();
    assert!(err.to_string().contains("no profile picture"), "{err}");
    drop(files);
}

fn session_id(dir: &Path) -> String {
    let (_, show, _) = cli_output(dir, &["account", "show", "--json"]);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    show["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_profile_picture_show_and_save() {
    let (net, files, server) = start(246).await;
    let seed = net.nodes[1].addr.to_string();
    let (a, b, work) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    for dir in [a.path(), b.path()] {
        assert!(cli_output(dir, &["account", "new"]).0);
    }
    let (alice, bob) = (session_id(a.path()), session_id(b.path()));
    let photo = random_file(work.path(), "me.jpg", 40_000, 3);
    let photo_arg = photo.to_string_lossy();
    let url = server.url();
    let key = files.entry.ed25519.clone();
    let (ok, stdout, stderr) = cli_output(
        a.path(),
        &[
            "profile",
            "--picture",
            &photo_arg,
            "--seed-node",
            &seed,
            "--file-server",
            &url,
            "--file-server-key",
            &key,
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Profile picture set"), "{stdout}");
    assert!(stdout.contains("Picture: yes, cached"), "{stdout}");
    // Too large: refused with the limit.
    let big = random_file(work.path(), "big.jpg", 5_000_001, 4);
    let (ok, _, stderr) = cli_output(
        a.path(),
        &[
            "profile",
            "--picture",
            &big.to_string_lossy(),
            "--seed-node",
            &seed,
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("5000000"), "{stderr}");

    let (ok, _, stderr) = cli_output(a.path(), &["send", &bob, "hello", "--seed-node", &seed]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = cli_output(b.path(), &["inbox", "--seed-node", &seed]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("hello"), "{stdout}");
    let (ok, stdout, stderr) = cli_output(
        b.path(),
        &["profile", "--show", &alice, "--seed-node", &seed],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Picture: yes, not downloaded yet"),
        "{stdout}"
    );

    let out = work.path().join("alice.jpg");
    let out_arg = out.to_string_lossy();
    let (ok, stdout, stderr) = cli_output(
        b.path(),
        &[
            "picture",
            &alice,
            "--out",
            &out_arg,
            "--seed-node",
            &seed,
            "--file-server",
            &url,
            "--file-server-key",
            &key,
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("40000 bytes, downloaded"), "{stdout}");
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&photo).unwrap());
    let (ok, stdout, stderr) = cli_output(
        b.path(),
        &["picture", &alice, "--out", &out_arg, "--seed-node", &seed],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("from the cache"), "{stdout}");
    // Someone without a known picture: a clear error.
    let (ok, _, stderr) = cli_output(
        a.path(),
        &["picture", &bob, "--out", &out_arg, "--seed-node", &seed],
    );
    assert!(!ok);
    assert!(stderr.contains("no profile picture"), "{stderr}");
    drop(files);
}

/// A picture set after the last one-to-one message reaches a contact through a group message
/// (as Session's clients send it), and downloads byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_picture_reaches_a_contact_through_a_group_message() {
    let (net, files, server) = start(247).await;
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, user(), a.path()).await;
    let bob = messenger(&net, user(), b.path()).await;
    let me = alice.session_id();

    // Bob knows Alice from a one-to-one message, without a picture.
    alice.send(&bob.session_id(), "hi Bob").await.unwrap();
    until(LIMIT, "Alice's message at Bob", || async {
        bob.receive().await.map_err(|e| e.to_string())?;
        match bob.db().conversation_state(&me).await {
            Ok(Some(_)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Alice makes a group with Bob; Bob accepts.
    let gid = alice
        .create_group("Pictures", &[bob.session_id()])
        .await
        .unwrap();
    until(LIMIT, "the invite at Bob", || async {
        bob.receive().await.map_err(|e| e.to_string())?;
        bob.group(&gid).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
    bob.accept_group(&gid).await.unwrap();

    // Alice sets a picture and writes only in the group: Bob takes the picture from there.
    let image = random_file(work.path(), "alice.png", 40_000, 7);
    let set = alice.set_profile_picture(&image, &server).await.unwrap();
    alice.send_to_group(&gid, "new picture").await.unwrap();
    until_contact_picture(&bob, &me, "Alice's picture from the group", |url| {
        url == Some(set.url.as_str())
    })
    .await;
    let got = bob.profile_picture(Some(&me), &server).await.unwrap();
    assert!(
        got.image == std::fs::read(&image).unwrap(),
        "picture differs"
    );
    drop(files);
    drop(net);
}
