//! Generates the Rust types, servers and clients of `proto/` into OUT_DIR, plus the
//! encoded descriptor set that the reflection service serves. `protoc` comes from a
//! vendored crate so a fresh machine needs nothing installed. Also names the build
//! (git revision and date) for `--version` and the `billing_build_info` metric.

use std::path::PathBuf;
use std::process::Command;

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
        // Maps encode in key order, so one request always has one encoding (its
        // fingerprint for request ids).
        .btree_map(".")
        .file_descriptor_set_path(out_dir.join("billing_descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;

    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    // `embed_migrations!` reads the directory: a new migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    describe_build();
    Ok(())
}

/// Sets BUILD_GIT_REVISION (GIT_REVISION when set, as in the container build, which has
/// no .git; else git's; else "unknown") and BUILD_DATE (UTC; from SOURCE_DATE_EPOCH when
/// set, for reproducible builds), and reruns when HEAD moves.
fn describe_build() {
    let run = |program: &str, args: &[&str]| -> Option<String> {
        let out = Command::new(program).args(args).output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned()).filter(|s| !s.is_empty())
    };
    let revision = std::env::var("GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty() && r != "unknown")
        .or_else(|| run("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => run("date", &["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"]),
        Err(_) => run("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    };
    println!("cargo:rustc-env=BUILD_GIT_REVISION={revision}");
    println!("cargo:rustc-env=BUILD_DATE={}", date.unwrap_or_else(|| "unknown".into()));
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    if let Some(git_dir) = run("git", &["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        // A branch's loose ref, or the packed refs where it is not loose.
        let loose = run("git", &["symbolic-ref", "-q", "HEAD"]).map(|branch| format!("{git_dir}/{branch}"));
        match loose.filter(|path| std::path::Path::new(path).exists()) {
            Some(path) => println!("cargo:rerun-if-changed={path}"),
            None => println!("cargo:rerun-if-changed={git_dir}/packed-refs"),
        }
    }
}
