//! Storage RPC request parsing (`/storage_rpc/v1` bodies and onion final-hop requests): never
//! panics, and whatever parses re-serialises to params that parse to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shallot_proto::rpc::{parse_body, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_body(data) else {
        return;
    };
    let envelope = request.to_envelope();
    let again = parse_body(envelope.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("re-serialised request does not parse: {e}: {envelope}"));
    assert_eq!(again, request, "round trip changed the request");
    // Signed methods always yield their message; unsigned ones never do.
    let _ = request.signed_message();
    let _: Option<&shallot_proto::AccountId> = request.account();
    let _ = Request::method_name(&request);
});
