//! The gRPC interop test client: `interop_client --server_host=HOST
//! --server_port=PORT --test_case=CASE|all [--use_tls=false]`.

fn main() {
    std::process::exit(p2p_grpc_interop::cli::client_main(std::env::args().skip(1)));
}
