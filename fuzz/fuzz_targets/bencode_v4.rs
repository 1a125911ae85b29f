//! The bencoded v4 request and response of an HTTP-server onion.
//!
//! - Arbitrary bytes through `V4Request::parse` and `V4Response::parse`: no panic, and whatever
//!   parses re-encodes to bytes that parse to an equal value (and re-encode identically).
//! - The same bytes read as structured values: `V4Request::new` applies libsession's header rules
//!   and validation, and `parse(encode(x)) == x` for every value it or `V4Response` accepts.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use shallot_proto::onion::{Headers, HttpMethod, V4Error, V4Request, V4Response};

const METHODS: [HttpMethod; 7] = [
    HttpMethod::Get,
    HttpMethod::Head,
    HttpMethod::Post,
    HttpMethod::Put,
    HttpMethod::Patch,
    HttpMethod::Delete,
    HttpMethod::Options,
];

#[derive(Debug, Arbitrary)]
struct RequestParts {
    method: u8,
    endpoint: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

#[derive(Debug, Arbitrary)]
struct ResponseParts {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    parsed_request(data);
    parsed_response(data);
    let mut u = Unstructured::new(data);
    if let Ok(parts) = RequestParts::arbitrary(&mut u) {
        built_request(parts);
    }
    if let Ok(parts) = ResponseParts::arbitrary(&mut u) {
        built_response(parts);
    }
});

fn parsed_request(data: &[u8]) {
    let Ok(request) = V4Request::parse(data) else {
        return;
    };
    assert!(request.endpoint().starts_with('/'));
    assert!(request.body().is_none() || request.method().allows_body());
    let encoded = request.encode().expect("a parsed request encodes");
    let again = V4Request::parse(&encoded).expect("an encoded request parses");
    assert_eq!(again, request);
    assert_eq!(again.encode().as_ref(), Ok(&encoded));
}

fn parsed_response(data: &[u8]) {
    let Ok(response) = V4Response::parse(data) else {
        return;
    };
    let encoded = response.encode().expect("a parsed response encodes");
    let again = V4Response::parse(&encoded).expect("an encoded response parses");
    assert_eq!(again, response);
    assert_eq!(again.encode().as_ref(), Ok(&encoded));
}

fn built_request(parts: RequestParts) {
    let method = METHODS[usize::from(parts.method) % METHODS.len()];
    let headers: Headers = parts.headers.into_iter().collect();
    let had_content_type = headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("content-type"));
    let has_body = parts.body.is_some();
    let request = match V4Request::new(method, parts.endpoint.clone(), headers, parts.body) {
        Ok(request) => request,
        Err(V4Error::EndpointNotAbsolute) => {
            assert!(!parts.endpoint.starts_with('/'));
            return;
        }
        Err(V4Error::BodyNotAllowed(m)) => {
            assert_eq!(m, method);
            assert!(has_body && !method.allows_body());
            return;
        }
        Err(other) => panic!("V4Request::new: {other:?}"),
    };
    assert_eq!(request.method(), method);
    assert_eq!(request.endpoint(), parts.endpoint);
    assert!(!request
        .headers()
        .keys()
        .any(|name| name.eq_ignore_ascii_case("user-agent")));
    if has_body && !had_content_type {
        assert_eq!(
            request.headers().get("Content-Type").map(String::as_str),
            Some("application/json")
        );
    }
    let encoded = request.encode().expect("a valid request encodes");
    assert_eq!(V4Request::parse(&encoded), Ok(request));
}

fn built_response(parts: ResponseParts) {
    let response = V4Response {
        code: parts.code,
        headers: parts.headers.into_iter().collect(),
        body: parts.body,
    };
    let encoded = response.encode().expect("a response encodes");
    assert_eq!(V4Response::parse(&encoded), Ok(response));
}
