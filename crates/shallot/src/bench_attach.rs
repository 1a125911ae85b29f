//! `shallot bench attach`: a 10 MB attachment from send to saved at the recipient, through
//! onion paths on a devnet (encrypt, upload, message, poll, download, check, decrypt), against
//! a bound measured in the same run: the raw AES-CBC + HMAC cost and one TLS hop's transfer.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::RngCore;
use shallot_client::attachments::upload::EncryptedFile;
use shallot_client::attachments::FileServer;
use shallot_client::{Messenger, Seed};

use shallot_proto::attachment::legacy::decrypt_legacy;
use shallot_proto::Identity;

/// Flags of `shallot bench attach`.
#[derive(Args, Debug)]
pub struct BenchAttachArgs {
    /// Attachments sent (one after another)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Size of the file in bytes (Session's limit is 10,000,000)
    #[arg(long, default_value_t = 10_000_000)]
    size: usize,
    /// Devnet nodes
    #[arg(long, default_value_t = 14)]
    nodes: usize,
    /// Third octet of the devnet's 127.0.N.x addresses
    #[arg(long, default_value_t = 81)]
    subnet: u8,
}

/// One attachment's timings.
struct Run {
    upload: Duration,
    delivered: Duration,
    saved: Duration,
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)] // Sizes far below 2^52.
    let mb = bytes as f64 / 1e6;
    mb / time.as_secs_f64().max(1e-9)
}

/// Sends the file from `alice` to `bob` and times it until Bob has saved it (and checks it).
async fn one_run(
    alice: &Messenger,
    bob: &Messenger,
    server: &FileServer,
    file: &Path,
    out: &Path,
) -> Result<Run> {
    let start = Instant::now();
    alice
        .send_files(
            &bob.session_id(),
            "",
            &[file.to_owned()],
            server,
            &mut |_, _| {},
        )
        .await
        .context("sending failed")?;
    let upload = start.elapsed();
    let deadline = start + Duration::from_secs(30);
    let attachment = loop {
        let got = bob.receive().await.context("receiving failed")?;
        if let Some(m) = got.into_iter().find(|m| !m.attachments.is_empty()) {
            break m.attachments[0].clone();
        }
        if Instant::now() > deadline {
            bail!("the message did not arrive within 30 s");
        }
    };
    let delivered = start.elapsed();
    bob.download_attachment(attachment.id.as_str(), out, server, &mut |_| {})
        .await
        .context("download failed")?;
    let saved = start.elapsed();
    if std::fs::read(out)? != std::fs::read(file)? {
        bail!("the saved file differs from the one sent");
    }
    Ok(Run {
        upload,
        delivered,
        saved,
    })
}

/// The bound: encrypting and decrypting the file (no network), and POSTing the blob once to a
/// node over HTTPS (one TLS hop; the node reads it whole and refuses it).
async fn bound(file: &Path, node: std::net::SocketAddr) -> Result<(Duration, Duration, Duration)> {
    let start = Instant::now();
    let encrypted = EncryptedFile::read(file, &mut |_| {})?;
    let encrypt = start.elapsed();
    let start = Instant::now();
    decrypt_legacy(
        &encrypted.blob,
        encrypted.key.as_bytes(),
        Some(&encrypted.sealed.digest),
        encrypted.sealed.size,
    )
    .context("decrypting the bench file")?;
    let decrypt = start.elapsed();
    let http = shallot_devnet::ready::node_client()
        .timeout(Duration::from_secs(30))
        .build()?;
    // Warm the connection first, so the hop is timed without its handshake (paths reuse theirs).
    let _ = http
        .post(format!("https://{node}/onion_req/v2"))
        .body(vec![0u8; 16])
        .send()
        .await;
    let start = Instant::now();
    http.post(format!("https://{node}/onion_req/v2"))
        .body(encrypted.blob)
        .send()
        .await
        .context("posting to a node")?
        .bytes()
        .await?;
    Ok((encrypt, decrypt, start.elapsed()))
}

/// Runs `shallot bench attach`.
pub fn run(args: &BenchAttachArgs) -> Result<()> {
    if args.runs == 0 || args.size == 0 {
        bail!("--runs and --size must be at least 1");
    }
    let (net, runtime) = crate::bench_net::start(args.nodes)?;
    let result: Result<()> = runtime.block_on(crate::bench_net::until_interrupted(async {
        let (state, node) = crate::bench_net::up(&net, args.nodes, args.subnet).await?;
        let files = state
            .file_server
            .clone()
            .context("the devnet has no file server")?;
        let server = FileServer::new(&files.url(), files.ed25519.parse()?)?;
        let new = || Identity::generate(&mut rand::rngs::OsRng);
        let account = |name: &'static str, id| {
            crate::bench_net::account(&net, name, id, Seed::Node(node), args.nodes)
        };
        let alice = account("alice", new()).await?;
        let bob = account("bob", new()).await?;
        let file = net.dir().join("payload.bin");
        let mut bytes = vec![0u8; args.size];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        std::fs::write(&file, bytes)?;
        let out = net.dir().join("saved.bin");
        let mut runs = Vec::with_capacity(args.runs);
        for i in 0..args.runs {
            let run = one_run(&alice, &bob, &server, &file, &out).await?;
            eprintln!(
                "run {}: uploaded and sent {:.0} ms, delivered {:.0} ms, saved {:.0} ms",
                i + 1,
                run.upload.as_secs_f64() * 1e3,
                run.delivered.as_secs_f64() * 1e3,
                run.saved.as_secs_f64() * 1e3
            );
            runs.push(run);
        }
        let (encrypt, decrypt, hop) = bound(&file, node).await?;
        let mut totals: Vec<Duration> = runs.iter().map(|r| r.saved).collect();
        totals.sort();
        let median = totals[totals.len() / 2];
        // Up: client → guard → middle → last hop → file server; down the same way.
        let floor = encrypt + decrypt + hop * 8;
        println!("machine: {}", crate::bench_stats::machine());
        println!(
            "attachment of {} bytes, send → saved at the recipient through onion paths \
             ({} runs): median {:.0} ms ({:.1} MB/s), best {:.0} ms, worst {:.0} ms",
            args.size,
            runs.len(),
            median.as_secs_f64() * 1e3,
            mb_per_s(args.size, median),
            totals[0].as_secs_f64() * 1e3,
            totals[totals.len() - 1].as_secs_f64() * 1e3,
        );
        println!(
            "bound: AES-CBC+HMAC encrypt {:.0} ms ({:.0} MB/s), decrypt {:.0} ms ({:.0} MB/s), \
             one TLS hop {:.0} ms ({:.0} MB/s); 8 hops + crypto = {:.0} ms ({:.1} MB/s); \
             the onion path reaches {:.0}% of it",
            encrypt.as_secs_f64() * 1e3,
            mb_per_s(args.size, encrypt),
            decrypt.as_secs_f64() * 1e3,
            mb_per_s(args.size, decrypt),
            hop.as_secs_f64() * 1e3,
            mb_per_s(args.size, hop),
            floor.as_secs_f64() * 1e3,
            mb_per_s(args.size, floor),
            floor.as_secs_f64() / median.as_secs_f64().max(1e-9) * 100.0
        );
        Ok(())
    }));
    let closed = net.close();
    result?;
    closed?;
    Ok(())
}
