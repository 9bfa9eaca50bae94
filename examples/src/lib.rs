//! Generated code shared by the example binaries in `src/bin/`.

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
