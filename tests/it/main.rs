//! Integration tests: each starts the real server in-process on an ephemeral port over a
//! fresh PostgreSQL database cloned from a migrated template, and talks to it through
//! the generated tonic clients.

mod support;

mod alerts;
mod allowances;
mod auth;
mod bad_input;
mod citus_ready;
mod citus_statements;
mod clients;
mod commitments;
mod commits;
mod currencies;
mod customers;
mod db_tls;
mod drawdown;
mod e2e;
mod external_ids;
mod faults;
mod feed;
mod field_behavior;
mod fuzz;
mod guarded_writes;
mod history;
mod idempotency;
mod jobs;
mod landed_migrations;
mod ledger;
mod org_filter;
mod outage;
mod partitions;
mod performance;
mod plans;
mod products;
mod promos;
mod readme;
mod request_ids;
mod reservations;
mod row_security;
mod scopes;
mod sealed_tokens;
mod server;
mod streams;
mod telemetry;
mod time_zones;
mod tls;
mod usage;
mod usage_events;
mod written_by;
