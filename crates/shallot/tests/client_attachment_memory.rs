//! How much memory a 10 MB attachment costs the client, against real processes (nodes and a
//! `shallot fileserver`): a counting global allocator (this binary's own, so no other test is
//! affected) records the peak of live heap bytes during `upload_file` and during `download`.
//!
//! An upload encrypts the file in pieces straight into the onion request built around it (a
//! retry encrypts it again): one blob. A download decrypts the reply where it arrived and
//! decrypts the attachment from it in pieces into the file: one blob. Before onions were built
//! and opened in place: 50.2 MB and 30.0 MB; with the blob kept apart for retries, the upload
//! peaked at 20.2-20.3 MB.
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

mod support;

use peak_alloc::PeakAlloc;
use shallot_client::attachments::{download, upload_file};
use support::files::{random_file, start};
use support::{messenger, user};

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Starts a new peak measurement; returns the live heap bytes now (the baseline).
fn reset_peak() -> usize {
    ALLOCATOR.reset_peak_usage();
    ALLOCATOR.current_usage()
}

/// Heap bytes above `baseline` at the peak since [`reset_peak`].
fn peak_above(baseline: usize) -> usize {
    ALLOCATOR.peak_usage().saturating_sub(baseline)
}

/// Bytes as MB with one decimal.
fn mb(bytes: usize) -> String {
    format!("{}.{}", bytes / 1_000_000, bytes % 1_000_000 / 100_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_upload_and_download_each_hold_one_blob() {
    let (net, _files, server) = start(244).await;
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let alice = messenger(&net, user(), home.path()).await;
    let client = alice.client();
    let file = random_file(work.path(), "ten.bin", 10_000_000, 7);

    let baseline = reset_peak();
    let pointer = upload_file(client, &server, &file, &mut |_| {})
        .await
        .unwrap();
    let upload = peak_above(baseline);

    let out = work.path().join("back.bin");
    let baseline = reset_peak();
    let saved = download(client, &pointer, server.x25519(), &out, &mut |_| {})
        .await
        .unwrap();
    let download = peak_above(baseline);
    assert_eq!(saved, 10_000_000);
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&file).unwrap());

    eprintln!(
        "10 MB attachment, peak heap above the start: upload {} MB, download {} MB",
        mb(upload),
        mb(download),
    );
    // A second copy of the blob would add 10 MB.
    assert!(
        upload < 13_000_000,
        "upload peaked {upload} bytes above the start"
    );
    assert!(
        download < 13_000_000,
        "download peaked {download} bytes above the start"
    );
}
