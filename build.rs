//! Generates the Rust types, servers and clients of `proto/` into OUT_DIR, plus the
//! encoded descriptor set that the reflection service serves. `protoc` comes from a
//! vendored crate so a fresh machine needs nothing installed.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let includes = [PathBuf::from(PROTO_ROOT), protoc_bin_vendored::include_path()?];

    let mut protos: Vec<PathBuf> = std::fs::read_dir("proto/billing/commitments/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    protos.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    protos.sort();

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        // Vendored google.rpc types are the ones tonic-types already provides.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .file_descriptor_set_path(out_dir.join("billing_descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;

    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    // `embed_migrations!` reads the directory: a new migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
