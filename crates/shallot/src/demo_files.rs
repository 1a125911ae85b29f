//! `shallot devnet demo`, the file part: a picture each way as an attachment through the
//! devnet's file server, and what that server learned — read from what it keeps (its SQLite
//! metadata, its blobs) and what it logged.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shallot_client::attachments::FileServer;
use shallot_client::{Messenger, StoredAttachment};
use shallot_devnet::FileServerEntry;

/// The first bytes of every PNG file.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// A small real PNG: a `side`×`side` RGB gradient, tinted by `tint` (each person's differs).
pub fn picture(side: u32, tint: u8) -> Vec<u8> {
    // Raw scanlines (filter byte 0, then RGB), stored uncompressed in one zlib stream.
    let mut raw = Vec::new();
    for y in 0..side {
        raw.push(0);
        for x in 0..side {
            let scale = |v: u32| u8::try_from(v * 255 / side.max(1)).unwrap_or(u8::MAX);
            raw.extend_from_slice(&[scale(x), scale(y), tint]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let mut blocks = raw.chunks(65_535).peekable();
    while let Some(block) = blocks.next() {
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        zlib.push(u8::from(blocks.peek().is_none()));
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = PNG_SIGNATURE.to_vec();
    for (kind, data) in [(b"IHDR", &header), (b"IDAT", &zlib), (b"IEND", &Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    png
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One picture sent: its name and bytes.
struct Sent {
    name: String,
    bytes: Vec<u8>,
}

/// Sends a picture from `from` to `to` as an attachment, has `to` fetch the message and
/// download the picture, and checks it arrived byte-identical.
async fn send_picture(
    (from_name, from): (&str, &Messenger),
    (to_name, to): (&str, &Messenger),
    server: &FileServer,
    dir: &Path,
    tint: u8,
) -> Result<Sent> {
    let name = format!("{}.png", from_name.to_lowercase());
    let bytes = picture(24, tint);
    let path = dir.join(&name);
    std::fs::write(&path, &bytes).with_context(|| format!("could not write {}", path.display()))?;
    let sent = from
        .send_files(
            &to.session_id(),
            "a picture",
            &[path],
            server,
            &mut |_, _| {},
        )
        .await
        .context("sending the picture failed")?;
    println!(
        "  {from_name} attached {name} ({} bytes): encrypted before it left, uploaded through \
         {from_name}'s onion path; the message (stored on {} node(s)) carries the key",
        bytes.len(),
        sent.stored_on
    );
    let attachment = wait_attachment(to).await?;
    let out = dir.join(format!("{}-got-{name}", to_name.to_lowercase()));
    let (_, saved) = to
        .download_attachment(attachment.id.as_str(), &out, server, &mut |_| {})
        .await
        .context("downloading the picture failed")?;
    let same = std::fs::read(&out).context("could not read the saved picture")? == bytes;
    if !same {
        bail!("{to_name}'s copy of {name} differs");
    }
    println!(
        "  {to_name} downloaded {} through an onion path, checked and saved it: {saved} bytes, \
         identical",
        attachment.file_name()
    );
    Ok(Sent { name, bytes })
}

/// Polls `who` until a message with an attachment arrives; its first attachment.
async fn wait_attachment(who: &Messenger) -> Result<StoredAttachment> {
    for _ in 0..40 {
        let got = who.receive().await.context("fetching failed")?;
        if let Some(a) = got
            .into_iter()
            .find_map(|m| m.attachments.into_iter().next())
        {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("no message with an attachment arrived within 20 s")
}

/// A row of the file server's metadata table.
struct Row {
    id: String,
    size: u64,
}

/// The file server's `files` table as it is on disk: its columns and rows (read-only).
fn read_metadata(dir: &Path) -> Result<(Vec<String>, Vec<Row>)> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("files.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .context("could not open the file server's database")?;
    let mut stmt = db.prepare("SELECT name FROM pragma_table_info('files') ORDER BY cid")?;
    let columns = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = db.prepare("SELECT id, size FROM files ORDER BY uploaded_ms")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                size: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((columns, rows))
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sends a picture each way between `alice` and `bob` through the devnet's file server, then
/// prints what the server keeps and logged; fails if it holds a picture in clear, or names a
/// sender, a recipient or a client address. `client_ips` are the clients' addresses.
pub async fn run(
    [(alice_name, alice), (bob_name, bob)]: [(&str, &Messenger); 2],
    entry: &FileServerEntry,
    server_dir: &Path,
    work: &Path,
    client_ips: &[std::net::IpAddr],
) -> Result<()> {
    let key = entry
        .ed25519
        .parse()
        .map_err(|e| anyhow::anyhow!("the devnet's file server key: {e}"))?;
    let server = FileServer::new(&entry.url(), key)?;
    println!(
        "  the devnet's file server: {} (pinned by its key)",
        server.url()
    );
    std::fs::create_dir_all(work)?;
    let sent = [
        send_picture((alice_name, alice), (bob_name, bob), &server, work, 40).await?,
        send_picture((bob_name, bob), (alice_name, alice), &server, work, 200).await?,
    ];

    println!("\nWhat the file server learned (its SQLite metadata, its blobs and its log):");
    let (columns, rows) = read_metadata(server_dir)?;
    println!(
        "  its table of files has the columns {}: nothing else is kept about a file",
        columns.join(", ")
    );
    for row in &rows {
        let blob = std::fs::read(server_dir.join("files").join(&row.id))
            .with_context(|| format!("could not read blob {}", row.id))?;
        let clear = sent
            .iter()
            .any(|s| contains(&blob, &s.bytes[..64.min(s.bytes.len())]));
        if clear || blob.starts_with(&PNG_SIGNATURE) {
            bail!("the file server holds a picture in clear ({})", row.id);
        }
        println!(
            "  file {}: {} bytes, an encrypted blob (no PNG signature, no picture bytes)",
            row.id, row.size
        );
    }
    if rows.len() < sent.len() {
        bail!(
            "the file server lists {} file(s), not {}",
            rows.len(),
            sent.len()
        );
    }
    let padded: Vec<String> = sent
        .iter()
        .map(|s| {
            let blob = shallot_proto::attachment::padding::legacy_padded_len(s.bytes.len());
            format!("{} {} → {blob}", s.name, s.bytes.len())
        })
        .collect();
    println!(
        "  sizes are padded before encryption (plaintext → padded bytes: {}), plus IV, block \
         padding and MAC",
        padded.join(", ")
    );
    let log = std::fs::read_to_string(server_dir.join("fileserver.log")).unwrap_or_default();
    let mut named = Vec::new();
    for ip in client_ips {
        if log.contains(&ip.to_string()) {
            named.push(ip.to_string());
        }
    }
    for who in [alice, bob] {
        let id = who.session_id().to_string();
        if log.contains(&id) || log.contains(&id[2..]) {
            named.push(id);
        }
    }
    if !named.is_empty() {
        bail!("the file server's log names {}", named.join(", "));
    }
    println!(
        "  its log ({} lines) names no client address ({}) and no Session ID",
        log.lines().count(),
        client_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Conclusion: the file server holds encrypted blobs of padded sizes: no sender, no \
         recipient, no client IP. Uploads and downloads reached it from the onion paths' last \
         hops, and the key to each blob travels only inside the end-to-end encrypted message."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_picture_is_a_png_of_its_size() {
        let png = picture(24, 40);
        assert!(png.starts_with(&PNG_SIGNATURE));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 24);
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
        assert_ne!(png, picture(24, 200));
    }
}
