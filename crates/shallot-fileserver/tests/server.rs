//! The file server over real HTTP on a random port with a temporary data directory: upload,
//! download, info and extend; 404, 413, 400, 507; expiry with a moved clock (no sleeps); the key
//! kept across restarts; and onion v4 requests built with the client builder, peeled by a
//! stand-in last hop and POSTed to the server as a service node would.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // Test code: a panic is a failed test.

use std::sync::Arc;

use rand::rngs::OsRng;
use serde_json::Value;
use shallot_fileserver::{FileServer, FileServerConfig, FileServerHandle, ManualClock};
use shallot_proto::attachment::server_api::{FileInfo, UploadResponse};
use shallot_proto::attachment::{content_id, FileUrl, MAX_BLOB_SIZE};
use shallot_proto::onion::{
    build_to_server, encode_frame, parse_onion_request, EncType, Headers, HttpMethod, Layer,
    NodeKeys, ProxyProtocol, ResponseKey, ServerDestination, V4Request, V4Response, X25519Keypair,
};
use shallot_proto::Ed25519Pub;

const NOW_MS: u64 = 1_700_000_000_000;
const DAY_MS: u64 = 24 * 3600 * 1000;

struct Running {
    server: FileServerHandle,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(configure: impl FnOnce(&mut FileServerConfig)) -> Running {
    shallot_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileServerConfig::new(dir.path());
    configure(&mut config);
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let server = FileServer::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    Running {
        server,
        clock,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn upload(&self, blob: Vec<u8>) -> UploadResponse {
        let response = self
            .http
            .post(self.url("/file"))
            .body(blob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn status_and_json(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn upload_download_info_extend() {
    let fs = start(|_| {}).await;
    let blob = b"an encrypted attachment".to_vec();
    let uploaded = fs.upload(blob.clone()).await;
    assert_eq!(uploaded.id, content_id(&blob).as_str());
    assert_eq!(uploaded.id.len(), 44);
    #[allow(clippy::cast_precision_loss)]
    let expected_expiry = (NOW_MS + 21 * DAY_MS) as f64 / 1000.0;
    assert!((uploaded.expires - expected_expiry).abs() < 1e-6);

    let response = fs
        .http
        .get(fs.url(&format!("/file/{}", uploaded.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(
        response.headers()["expires"],
        "Tue, 05 Dec 2023 22:13:20 GMT"
    );
    assert_eq!(response.bytes().await.unwrap(), blob);

    let info: FileInfo = fs
        .http
        .get(fs.url(&format!("/file/{}/info", uploaded.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.size, blob.len() as u64);
    assert!((info.expires - uploaded.expires).abs() < 1e-6);

    // Extending never shortens; a longer TTL within the maximum moves the expiry out.
    fs.clock.advance(DAY_MS);
    let extend = fs.url(&format!("/file/{}/extend", uploaded.id));
    let (status, body) = fs
        .status_and_json(fs.http.post(&extend).header("X-FS-TTL", "60"))
        .await;
    assert_eq!(
        (status, body["expires"].as_f64()),
        (200, Some(uploaded.expires))
    );
    let (status, body) = fs
        .status_and_json(
            fs.http
                .post(&extend)
                .header("X-FS-TTL", (29 * 24 * 3600).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    #[allow(clippy::cast_precision_loss)]
    let moved = (NOW_MS + 30 * DAY_MS) as f64 / 1000.0;
    assert!((body["expires"].as_f64().unwrap() - moved).abs() < 1e-6);
    for bad in ["-1", "soon", &(31 * 24 * 3600).to_string()] {
        let (status, _) = fs
            .status_and_json(fs.http.post(&extend).header("X-FS-TTL", bad))
            .await;
        assert_eq!(status, 400, "{bad}");
    }

    // Uploading the same bytes again gives the same id and keeps the longer expiry.
    let again = fs.upload(blob).await;
    assert_eq!(again.id, uploaded.id);
    assert!((again.expires - moved).abs() < 1e-6);

    // The URL a client would build parses back to this server and file.
    let id = uploaded.id.parse().unwrap();
    let url: FileUrl = fs.server.file_url(&id).parse().unwrap();
    assert_eq!(url.id, id);
    assert_eq!(
        url.server_x25519(fs.server.x25519()).unwrap(),
        fs.server.x25519()
    );
    assert_eq!(
        url.server_ed25519.unwrap().to_x25519().unwrap(),
        fs.server.x25519()
    );
    fs.server.shutdown().await;
}

#[tokio::test]
async fn errors_are_clean() {
    let fs = start(|config| {
        config.max_file_size = 1000;
        config.max_total_bytes = Some(1500);
    })
    .await;
    let missing = "KbXBBICwDpglYxF-uY_yELH8pIaCUqU8D88mUahMi27m";
    for path in [
        format!("/file/{missing}"),
        format!("/file/{missing}/info"),
        "/file/a.b".to_owned(),
        "/nothing".to_owned(),
    ] {
        let (status, body) = fs.status_and_json(fs.http.get(fs.url(&path))).await;
        assert_eq!(
            (status, body["status_code"].as_u64()),
            (404, Some(404)),
            "{path}"
        );
    }
    let (status, _) = fs
        .status_and_json(fs.http.post(fs.url(&format!("/file/{missing}/extend"))))
        .await;
    assert_eq!(status, 404);
    let (status, _) = fs
        .status_and_json(fs.http.delete(fs.url("/file/abc")))
        .await;
    assert_eq!(status, 405);

    // Too large: 413 with a reason a person can read, whether declared or streamed.
    let (status, body) = fs
        .status_and_json(fs.http.post(fs.url("/file")).body(vec![1u8; 1001]))
        .await;
    assert_eq!(status, 413);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 1000 bytes"),
        "{body}"
    );
    let reply = chunked_upload(&fs, &[&[1u8; 600], &[2u8; 600]]).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("at most 1000 bytes"), "{reply}");
    let (status, _) = fs
        .status_and_json(fs.http.post(fs.url("/file")).body(Vec::new()))
        .await;
    assert_eq!(status, 413);
    let (status, _) = fs
        .status_and_json(
            fs.http
                .post(fs.url("/file"))
                .header("X-FS-TTL", "x")
                .body(vec![1]),
        )
        .await;
    assert_eq!(status, 400);

    // Out of space: 507.
    fs.upload(vec![3u8; 1000]).await;
    let (status, body) = fs
        .status_and_json(fs.http.post(fs.url("/file")).body(vec![4u8; 600]))
        .await;
    assert_eq!(status, 507);
    assert_eq!(body["status_code"], 507);
    fs.server.shutdown().await;
}

/// An upload sent in chunks without a length, so only the streaming limit can catch it; returns
/// the raw response.
async fn chunked_upload(fs: &Running, chunks: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(fs.server.local_addr())
        .await
        .unwrap();
    let mut request = b"POST /file HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = tcp.write_all(&request).await;
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn files_expire_and_purge() {
    let fs = start(|config| config.default_ttl_secs = 3600).await;
    let uploaded = fs.upload(b"short-lived".to_vec()).await;
    let file = fs.url(&format!("/file/{}", uploaded.id));
    fs.clock.advance(3_599_999);
    assert_eq!(fs.http.get(&file).send().await.unwrap().status(), 200);
    fs.clock.advance(1);
    // Refused at read time, before any purge.
    assert_eq!(fs.http.get(&file).send().await.unwrap().status(), 404);
    assert_eq!(
        fs.http
            .get(format!("{file}/info"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Expired but not purged: extend brings it back.
    assert_eq!(
        fs.http
            .post(format!("{file}/extend"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(fs.http.get(&file).send().await.unwrap().status(), 200);
    fs.clock.advance(3_600_000);
    assert_eq!(fs.server.purge_expired().await.unwrap(), 1);
    assert_eq!(
        fs.http
            .post(format!("{file}/extend"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    fs.server.shutdown().await;
}

#[tokio::test]
async fn full_size_attachment_fits_and_key_persists() {
    shallot_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let server = FileServer::start(FileServerConfig::new(dir.path()))
        .await
        .unwrap();
    let (ed, x) = (server.ed25519(), server.x25519());
    let blob: Vec<u8> = (0..MAX_BLOB_SIZE).map(|i| (i % 251) as u8).collect();
    let http = reqwest::Client::new();
    let uploaded: UploadResponse = http
        .post(format!("{}/file", server.url()))
        .body(blob.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.shutdown().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("key_ed25519"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let server = FileServer::start(FileServerConfig::new(dir.path()))
        .await
        .unwrap();
    assert_eq!((server.ed25519(), server.x25519()), (ed, x));
    let downloaded = http
        .get(format!("{}/file/{}", server.url(), uploaded.id))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(downloaded == blob);
    server.shutdown().await;
}

/// The client builds an onion to the file server through one node; the test plays that node:
/// it peels its layer and POSTs the proxy payload to the target, as a service node does.
async fn through_onion(fs: &Running, request: &V4Request, enc_type: EncType) -> V4Response {
    let node = X25519Keypair::generate(&mut OsRng);
    let hop = NodeKeys {
        ed25519: Ed25519Pub::from_bytes([9; 32]),
        x25519: *node.public(),
    };
    let addr = fs.server.local_addr();
    let destination = ServerDestination {
        host: addr.ip().to_string(),
        protocol: ProxyProtocol::Http,
        port: Some(addr.port()),
        x25519: fs.server.x25519(),
    };
    let built = build_to_server(&[hop], &destination, request, enc_type, &mut OsRng).unwrap();
    let layer = parse_onion_request(&built.body)
        .unwrap()
        .decrypt(&node)
        .unwrap();
    let Layer::Proxy(proxy) = layer.classify().unwrap() else {
        panic!("the last hop must proxy");
    };
    let response = fs
        .http
        .post(proxy.url().unwrap())
        .body(proxy.payload.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    V4Response::open(&built.response_key, &body).unwrap()
}

#[tokio::test]
async fn onion_v4_requests() {
    let fs = start(|_| {}).await;
    for enc_type in [EncType::AesGcm, EncType::XChaCha20] {
        #[allow(clippy::cast_possible_truncation)]
        let blob: Vec<u8> = (0..100_000u32)
            .map(|i| (i * 7 + enc_type as u32) as u8)
            .collect();
        let headers = Headers::from([
            (
                "Content-Type".to_owned(),
                "application/octet-stream".to_owned(),
            ),
            ("X-FS-TTL".to_owned(), "3600".to_owned()),
        ]);
        let upload =
            V4Request::new(HttpMethod::Post, "/file", headers, Some(blob.clone())).unwrap();
        let reply = through_onion(&fs, &upload, enc_type).await;
        assert_eq!(reply.code, 200, "{}", String::from_utf8_lossy(&reply.body));
        let uploaded: UploadResponse = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(uploaded.id, content_id(&blob).as_str());
        #[allow(clippy::cast_precision_loss)]
        let expires = (NOW_MS + 3_600_000) as f64 / 1000.0;
        assert!((uploaded.expires - expires).abs() < 1e-6);

        let download = V4Request::new(
            HttpMethod::Get,
            format!("/file/{}", uploaded.id),
            Headers::new(),
            None,
        )
        .unwrap();
        let reply = through_onion(&fs, &download, enc_type).await;
        assert_eq!(reply.code, 200);
        assert_eq!(reply.headers["content-type"], "application/octet-stream");
        assert!(reply.headers.contains_key("expires"));
        assert!(!reply.headers.contains_key("content-length"));
        assert!(reply.body == blob);

        // The same file over plain HTTP.
        let plain = fs
            .http
            .get(fs.url(&format!("/file/{}", uploaded.id)))
            .send()
            .await
            .unwrap();
        assert!(plain.bytes().await.unwrap() == blob);

        let missing = V4Request::new(HttpMethod::Get, "/file/nope", Headers::new(), None).unwrap();
        let reply = through_onion(&fs, &missing, enc_type).await;
        assert_eq!(reply.code, 404);
        assert_eq!(
            serde_json::from_slice::<Value>(&reply.body).unwrap()["status_code"],
            404
        );
    }
    fs.server.shutdown().await;
}

/// POSTs one onion layer holding `plaintext`, encrypted to `to`, as a last hop would.
async fn raw_layer(
    fs: &Running,
    to: &shallot_proto::X25519Pub,
    plaintext: &[u8],
) -> (reqwest::Response, ResponseKey) {
    let ephemeral = X25519Keypair::generate(&mut OsRng);
    let key = ResponseKey::derive(EncType::XChaCha20, &ephemeral, to).unwrap();
    let blob = key.key().encrypt(plaintext, &mut OsRng).unwrap();
    let json =
        serde_json::json!({"ephemeral_key": ephemeral.public().to_hex(), "enc_type": "xchacha20"});
    let body = encode_frame(&blob, &json).unwrap();
    let response = fs
        .http
        .post(fs.url("/oxen/v4/lsrpc"))
        .body(body)
        .send()
        .await
        .unwrap();
    (response, key)
}

#[tokio::test]
async fn onion_errors() {
    let fs = start(|config| config.max_file_size = 1000).await;
    let lsrpc = fs.url("/oxen/v4/lsrpc");
    // Not an onion request, or not for this key: plain 400.
    let response = fs.http.post(&lsrpc).body("hello").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let stranger = X25519Keypair::generate(&mut OsRng);
    let (response, _) = raw_layer(&fs, stranger.public(), b"x").await;
    assert_eq!(response.status(), 400);

    // Decryptable but not a v4 request: encrypted code 400.
    let (response, key) = raw_layer(&fs, &fs.server.x25519(), b"not bencode").await;
    assert_eq!(response.status(), 200);
    let reply = V4Response::open(&key, &response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (reply.code, reply.body.as_slice()),
        (400, b"Invalid v4 onion request".as_slice())
    );

    // Too large inside the onion: an encrypted 413 with its reason.
    let upload = V4Request::new(
        HttpMethod::Post,
        "/file",
        Headers::new(),
        Some(vec![0; 1001]),
    )
    .unwrap();
    let reply = through_onion(&fs, &upload, EncType::AesGcm).await;
    assert_eq!(reply.code, 413);
    assert!(String::from_utf8_lossy(&reply.body).contains("at most 1000 bytes"));
    fs.server.shutdown().await;
}

/// Opens an upload that declares `declared` bytes, sends only its headers and a first piece, and
/// stalls: it holds one in-memory body slot until the connection is dropped.
async fn stalled_upload(fs: &Running, declared: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(fs.server.local_addr())
        .await
        .unwrap();
    let head = format!("POST /file HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[7u8; 100]).await.unwrap();
    tcp
}

/// Memory held by uploads in flight is bounded: past `max_concurrent_bodies` slow uploads (each
/// over the 64 KiB that needs no slot), the next large upload gets 503 at once (not another
/// 10 MB buffer), downloads still work, and a freed slot is usable again.
#[tokio::test]
async fn uploads_held_in_memory_are_bounded() {
    let fs = start(|config| config.limits.max_concurrent_bodies = 2).await;
    let kept = fs.upload(vec![5u8; 300]).await;
    let stalled = [
        stalled_upload(&fs, 200_000).await,
        stalled_upload(&fs, 200_000).await,
    ];
    // The stalled uploads take their slots once the server has read their headers; until then
    // a third upload may still get one, which is also within the bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refused = loop {
        let (status, body) = fs
            .status_and_json(fs.http.post(fs.url("/file")).body(vec![6u8; 100_000]))
            .await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        refused["error"], "too many uploads in progress",
        "{refused}"
    );
    // Small requests need no slot: a download goes through while uploads are full.
    let response = fs
        .http
        .get(fs.url(&format!("/file/{}", kept.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), &[5u8; 300][..]);
    // Dropping the stalled connections frees their slots.
    drop(stalled);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = fs
            .status_and_json(fs.http.post(fs.url("/file")).body(vec![8u8; 100_000]))
            .await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(std::time::Instant::now() < deadline, "slots never freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fs.server.shutdown().await;
}
