//! Generated code shared by the example binaries in `src/bin/`, and the
//! log set-up each of them starts with.

/// Prints p2p-grpc's `tracing` logs to stderr, filtered by `RUST_LOG`
/// (for example `RUST_LOG=p2p_grpc=debug`; default: warnings and errors).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The encoded `FileDescriptorSet` of the example protos, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/examples_descriptor.bin"));

/// The greeter service (`proto/helloworld.proto`).
pub mod helloworld {
    p2p_grpc::include_proto!("helloworld");
}

/// The route guide service (`proto/routeguide.proto`).
pub mod routeguide {
    p2p_grpc::include_proto!("routeguide");
}

/// The chat service (`proto/chat.proto`).
pub mod chat {
    p2p_grpc::include_proto!("chat");
}
