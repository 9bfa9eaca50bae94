fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    p2p_grpc_build::configure()
        // For server reflection (greeter-server serves it).
        .file_descriptor_set_path(out.join("examples_descriptor.bin"))
        .compile(
            &[
                "../proto/helloworld.proto",
                "../proto/routeguide.proto",
                "../proto/chat.proto",
            ],
            &["../proto"],
        )?;
    Ok(())
}
