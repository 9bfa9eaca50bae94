//! Generated code for the p2p-grpc interop and codegen tests.
//!
//! `build.rs` compiles `proto/` with `p2p-grpc-build` (and, for the tests, with tonic into
//! `OUT_DIR/tonic/`). Each protobuf package becomes a module here, nested as the package
//! name is, so that generated cross-package paths (`super::...`) resolve.
//!
//! It also holds the standard gRPC interop pair (see grpc/grpc
//! `doc/interop-test-descriptions.md`): [`server`] implements
//! `grpc.testing.TestService`, [`client`] the test cases, [`cli`] the command
//! lines of the `interop_server` and `interop_client` binaries. The tests run
//! them in process, against each other and against tonic.
//!
//! The runtime comes from p2p-grpc's features (`p2p-grpc/smol`,
//! `p2p-grpc/async-std` or `p2p-grpc/tokio`; this crate's `default` picks
//! smol for a plain `cargo run`).

pub mod cli;
pub mod client;
pub mod server;

/// Runs `future` to completion on p2p-grpc's default runtime
/// ([`p2p_grpc::rt::block_on`]).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    p2p_grpc::rt::block_on(future)
}

/// Packages under `grpc`.
/// The encoded `FileDescriptorSet` of the interop protos, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/interop_descriptor.bin"));

pub mod grpc {
    /// The gRPC interop test package, `grpc.testing`: `TestService` and
    /// `UnimplementedService` with their messages.
    pub mod testing {
        p2p_grpc::include_proto!("grpc.testing");
    }
}

/// Packages under `p2p`.
pub mod p2p {
    /// Codegen test packages, `p2p.test` and `p2p.test.nested`.
    pub mod test {
        p2p_grpc::include_proto!("p2p.test");

        /// The nested package `p2p.test.nested`.
        pub mod nested {
            p2p_grpc::include_proto!("p2p.test.nested");
        }
    }
}
