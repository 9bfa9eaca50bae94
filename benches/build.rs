//! Generates p2p-grpc code (into `OUT_DIR`) and tonic code (into
//! `OUT_DIR/tonic`) for `proto/bench.proto`, from one protox
//! `FileDescriptorSet`: both sides use the same messages, with `bytes`
//! fields as `bytes::Bytes`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The compiler version, for the machine facts of the results table.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={}", version.trim());

    let builder = p2p_grpc_build::configure().bytes(".");
    let fds = builder.load_fds(&["proto/bench.proto"], &["proto"])?;
    builder.compile_fds(fds.clone())?;

    let tonic_out = PathBuf::from(std::env::var("OUT_DIR")?).join("tonic");
    std::fs::create_dir_all(&tonic_out)?;
    tonic_prost_build::configure()
        .bytes(".")
        .out_dir(&tonic_out)
        .compile_fds(fds)?;
    Ok(())
}
