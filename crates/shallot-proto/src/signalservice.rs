//! Session's protobuf messages (package `signalservice`, proto2), generated at build time from
//! Shallot's own `proto/*.proto` files by `protox` and `prost-build` (see `build.rs`). The types
//! are re-exported where they belong: `session::protos`, `group::update` and
//! `attachment::pointer`, next to the hand-written helpers on them.

include!(concat!(env!("OUT_DIR"), "/signalservice.rs"));
