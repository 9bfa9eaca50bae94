fn main() -> Result<(), Box<dyn std::error::Error>> {
    p2p_grpc_build::configure().compile(
        &[
            "../proto/helloworld.proto",
            "../proto/routeguide.proto",
            "../proto/chat.proto",
        ],
        &["../proto"],
    )?;
    Ok(())
}
