//! What a 10 MB file costs the file server's onion endpoint, measured with a counting allocator
//! (this binary's own, so no other test is affected): an upload holds the received layer and
//! its decryption, from which the body is cut; a download holds the file and the sealed reply
//! written around it. Two blobs each (before replies were sealed in one buffer and requests
//! parsed in place: 3 and 4).
#![allow(clippy::unwrap_used)] // Test code: a panic is a failed test.

use std::sync::Arc;

use peak_alloc::PeakAlloc;
use rand::rngs::OsRng;
use shallot_fileserver::dispatch::Service;
use shallot_fileserver::keys::ServerKeys;
use shallot_fileserver::onion::{handle_onion, OnionReply};
use shallot_fileserver::store::Store;
use shallot_fileserver::SystemClock;
use shallot_proto::attachment::server_api::UploadResponse;
use shallot_proto::onion::{
    build_to_server, parse_onion_request, EncType, Headers, HttpMethod, Layer, NodeKeys,
    ProxyProtocol, ResponseKey, ServerDestination, V4Request, V4Response, X25519Keypair,
};
use shallot_proto::Identity;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Just under 10 MB, as an encrypted 10 MB attachment is.
const BLOB: usize = 10_000_064;

/// The layer a one-hop path's node would proxy to the server, and the key to open the reply.
fn proxied(server: &ServerKeys, request: &V4Request) -> (Vec<u8>, ResponseKey) {
    let hop = X25519Keypair::generate(&mut OsRng);
    let path = [NodeKeys {
        ed25519: Identity::generate(&mut OsRng).ed25519_public(),
        x25519: *hop.public(),
    }];
    let destination = ServerDestination {
        host: "files.example".to_owned(),
        protocol: ProxyProtocol::Http,
        port: None,
        x25519: server.x25519(),
    };
    let built =
        build_to_server(&path, &destination, request, EncType::XChaCha20, &mut OsRng).unwrap();
    let layer = parse_onion_request(&built.body)
        .unwrap()
        .decrypt(&hop)
        .unwrap();
    let Layer::Proxy(proxy) = layer.classify().unwrap() else {
        panic!("not a proxy layer")
    };
    (proxy.payload.to_vec(), built.response_key)
}

/// Heap bytes above the live bytes at the start, at the peak while `work` runs; and its result.
async fn peak_during<T>(work: impl std::future::Future<Output = T>) -> (usize, T) {
    ALLOCATOR.reset_peak_usage();
    let baseline = ALLOCATOR.current_usage();
    let result = work.await;
    (ALLOCATOR.peak_usage().saturating_sub(baseline), result)
}

#[tokio::test]
async fn a_ten_megabyte_file_is_held_twice_by_the_onion_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let service = Arc::new(Service {
        store: Arc::new(Store::open(dir.path(), None).unwrap()),
        clock: Arc::new(SystemClock),
        max_file_size: BLOB,
        default_ttl_secs: 3600,
        max_ttl_secs: 3600,
    });
    let keys = ServerKeys::from_seed([4; 32]);

    let upload = V4Request::new(
        HttpMethod::Post,
        "/file",
        Headers::new(),
        Some(vec![0x5a; BLOB]),
    )
    .unwrap();
    let (body, reply_key) = proxied(&keys, &upload);
    drop(upload);
    let (uploaded, reply) = peak_during(handle_onion(&service, &keys, &body)).await;
    drop(body);
    let OnionReply::Sealed(sealed) = reply else {
        panic!("upload refused: {reply:?}")
    };
    let reply = V4Response::open(&reply_key, &sealed).unwrap();
    assert_eq!(reply.code, 200);
    let id = serde_json::from_slice::<UploadResponse>(&reply.body)
        .unwrap()
        .id;

    let download =
        V4Request::new(HttpMethod::Get, format!("/file/{id}"), Headers::new(), None).unwrap();
    let (body, reply_key) = proxied(&keys, &download);
    let (downloaded, reply) = peak_during(handle_onion(&service, &keys, &body)).await;
    let OnionReply::Sealed(sealed) = reply else {
        panic!("download refused: {reply:?}")
    };
    let reply = V4Response::open_owned(&reply_key, sealed).unwrap();
    assert!(reply.body == vec![0x5a; BLOB], "the file changed");

    eprintln!(
        "file server, peak heap above the received layer: upload {uploaded} B, \
         download {downloaded} B ({BLOB}-byte file)"
    );
    assert!(uploaded < BLOB * 23 / 10, "upload peaked {uploaded} bytes");
    assert!(
        downloaded < BLOB * 23 / 10,
        "download peaked {downloaded} bytes"
    );
}
