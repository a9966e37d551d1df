//! Integration tests: each starts the real server in-process on an ephemeral port over a
//! fresh PostgreSQL database cloned from a migrated template, and talks to it through
//! the generated tonic clients.

mod support;

mod allowances;
mod auth;
mod commitments;
mod commits;
mod customers;
mod drawdown;
mod e2e;
mod feed;
mod performance;
mod products;
mod promos;
mod server;
mod usage;
