//! Generated code for the p2p-grpc interop and codegen tests.
//!
//! `build.rs` compiles `proto/` with `p2p-grpc-build` (and, for the tests, with tonic into
//! `OUT_DIR/tonic/`). Each protobuf package becomes a module here, nested as the package
//! name is, so that generated cross-package paths (`super::...`) resolve.

/// Packages under `grpc`.
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
