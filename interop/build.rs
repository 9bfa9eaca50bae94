//! Compiles the interop and codegen-test protos twice from one protox
//! `FileDescriptorSet`: with p2p-grpc-build into `OUT_DIR` (used by the library), and with
//! tonic-prost-build into `OUT_DIR/tonic` (used by the tests, to talk to tonic). No `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/grpc/testing/test.proto",
        "proto/test/echo.proto",
        "proto/test/nested/nested.proto",
    ];
    let includes = ["proto"];

    // The encoded descriptors too, for server reflection.
    let descriptors = PathBuf::from(std::env::var("OUT_DIR")?).join("interop_descriptor.bin");
    let builder = p2p_grpc_build::configure().file_descriptor_set_path(&descriptors);
    // Parses with protox and prints `cargo:rerun-if-changed` for every file read.
    let fds = builder.load_fds(&protos, &includes)?;
    builder.compile_fds(fds.clone())?;

    // tonic's generated code for the same protos; only the interop tests include it.
    let tonic_out = PathBuf::from(std::env::var("OUT_DIR")?).join("tonic");
    std::fs::create_dir_all(&tonic_out)?;
    tonic_prost_build::configure()
        .out_dir(&tonic_out)
        .compile_fds(fds)?;
    Ok(())
}
