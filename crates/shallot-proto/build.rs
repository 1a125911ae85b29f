//! Compiles Shallot's own protobuf definitions (`proto/*.proto`, package `signalservice`) into
//! prost types in `OUT_DIR`, with `protox` (a pure-Rust .proto compiler: no `protoc` needed on a
//! developer's machine or CI) and `prost-build`'s code generator.

const PROTOS: [&str; 3] = [
    "proto/session.proto",
    "proto/attachment.proto",
    "proto/group_update.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
