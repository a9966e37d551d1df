//! Code generated from `proto/` by build.rs: messages, servers and clients.

/// The `billing.commitments.v1` package.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("billing.commitments.v1");
}

/// Encoded descriptors of every proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("billing_descriptor");
