//! What the file server reads from a request: the route from any method and endpoint, the
//! `X-FS-TTL` value, file ids, and the v4 request inside an onion layer; plus the content id,
//! computed over the bytes in pieces. Nothing may panic; a routed id appears in the endpoint's
//! path and is a valid id; a TTL that parses prints back as the same number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shallot_proto::attachment::server_api::{parse_ttl, Route};
use shallot_proto::attachment::{content_id, ContentHasher, FileId};
use shallot_proto::onion::{HttpMethod, V4Request};

const METHODS: [HttpMethod; 7] = [
    HttpMethod::Get,
    HttpMethod::Head,
    HttpMethod::Post,
    HttpMethod::Put,
    HttpMethod::Patch,
    HttpMethod::Delete,
    HttpMethod::Options,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for method in METHODS {
        match Route::parse(method, &text) {
            Ok(Route::Upload) => assert_eq!(method, HttpMethod::Post),
            Ok(Route::Download(id) | Route::Info(id) | Route::Extend(id)) => {
                let path = text.split('?').next().unwrap_or_default();
                assert!(path.contains(id.as_str()));
                assert_eq!(id.as_str().parse::<FileId>().as_ref(), Ok(&id));
            }
            Err(_) => {}
        }
    }
    if let Ok(ttl) = parse_ttl(&text) {
        assert_eq!(parse_ttl(&ttl.to_string()), Ok(ttl));
    }
    if let Ok(id) = text.parse::<FileId>() {
        assert_eq!(id.to_string(), text);
    }
    if let Ok(request) = V4Request::parse(data) {
        let _ = Route::parse(request.method(), request.endpoint());
    }
    let mut hasher = ContentHasher::default();
    for piece in data.chunks(usize::from(data.first().copied().unwrap_or(1)).max(1)) {
        hasher.update(piece);
    }
    assert_eq!(hasher.finish(), content_id(data));
});
