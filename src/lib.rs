//! Billing commitments service: holds the commercial terms a business sells under
//! (commits, promos, commitments, allowance limits) and enforces them on live usage.
//!
//! Layers, with data flowing one way: [`grpc`] (the wire) -> [`app`] (use cases, one
//! transaction each) -> [`domain`] (pure rules) and [`db`] (Diesel, the only SQL).

pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod feed;
pub mod grpc;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod proto;
pub mod server;
pub mod telemetry;
