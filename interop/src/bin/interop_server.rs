//! The gRPC interop test server: `interop_server --port=PORT [--use_tls=false]`.

fn main() {
    std::process::exit(p2p_grpc_interop::cli::server_main(std::env::args().skip(1)));
}
