//! Command line and environment: every flag has an environment twin, and the defaults
//! run against this machine's local PostgreSQL.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::db::DbConfig;
use crate::server::ServerConfig;
use crate::telemetry::LogFormat;

/// Where the service keeps its data unless told otherwise.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/billing_commitments";

#[derive(Parser, Debug)]
#[command(
    name = "billing-commitments",
    version = crate::metrics::VERSION,
    about = "Commits, promos, commitments and usage allowance limits over gRPC"
)]
pub struct Cli {
    /// PostgreSQL connection settings as libpq reads them: a URL or `key=value` pairs
    /// (`sslmode`, `sslrootcert`, ... apply to every connection, LISTEN's included).
    #[arg(long, help_heading = "Database", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Log line format.
    #[arg(long, help_heading = "Telemetry", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// OTLP/gRPC collector to export spans to (e.g. `http://127.0.0.1:4317`), continuing
    /// callers' W3C `traceparent`; none when unset. `OTEL_SERVICE_NAME` names the service.
    #[arg(long, help_heading = "Telemetry", env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the database if missing, run migrations, and serve gRPC.
    Serve(Box<ServeArgs>),
    /// Create the database if missing and run pending migrations, then exit.
    Migrate,
    /// Operator tasks: organizations and API keys.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the gRPC server listens on (opened once the database is migrated).
    #[arg(long, help_heading = "Server", env = "LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Leave creating the database and migrating it to a separate step (`migrate`, run
    /// as the schema owner); wait until it is done instead.
    #[arg(long, help_heading = "Database", env = "NO_MIGRATE")]
    pub no_migrate: bool,

    /// Most database connections held open at once. Every instance's pool together must
    /// fit in the server's max_connections; serve warns at start when this one cannot fill.
    #[arg(long, help_heading = "Database", env = "DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// Longest wait for a free database connection (e.g. "2s"); keep it below callers'
    /// deadlines.
    #[arg(long, help_heading = "Database", env = "DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: Duration,

    /// Most calls waiting for a database connection at once; past it a call is answered
    /// UNAVAILABLE (reason OVERLOADED, with a retry delay) at once.
    #[arg(long, help_heading = "Database", env = "DB_MAX_WAITING", default_value_t = 1024)]
    pub db_max_waiting: usize,

    /// Server-side limit on any single SQL statement.
    #[arg(long, help_heading = "Database", env = "DB_STATEMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: Duration,

    /// Role the service's connections log in as, so PostgreSQL's row-level security
    /// applies to every query; the migrations create it (it cannot switch roles, owns
    /// nothing, cannot bypass row security). Without APP_DATABASE_URL it logs in at
    /// DATABASE_URL's server and database with no password (trust, peer or certificate
    /// authentication). DATABASE_URL's own user (the owner) only migrates.
    #[arg(long, help_heading = "Database", env = "DATABASE_ROLE", default_value = crate::db::APP_ROLE)]
    pub database_role: String,

    /// Settings (URL or `key=value`) the service's role logs in with, e.g.
    /// postgres://billing_app:PASSWORD@host/billing, when DATABASE_URL with its user
    /// replaced will not do (password authentication).
    #[arg(long, help_heading = "Database", env = "APP_DATABASE_URL")]
    pub app_database_url: Option<String>,

    /// PEM certificate chain for serving gRPC over TLS (with `--tls-key`); plaintext
    /// when unset.
    #[arg(long, help_heading = "TLS", env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, help_heading = "TLS", env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Address of the Prometheus metrics endpoint (`/metrics`) and the HTTP probes
    /// (`/healthz`, `/readyz`); none when unset.
    #[arg(long, help_heading = "Telemetry", env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Largest request or response message, in bytes.
    #[arg(long, help_heading = "Server", env = "MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Most concurrent HTTP/2 streams (calls) per client connection.
    #[arg(long, help_heading = "Server", env = "MAX_CONCURRENT_STREAMS", default_value_t = 4096)]
    pub max_concurrent_streams: u32,

    /// Interval of HTTP/2 keepalive pings to idle clients.
    #[arg(long, help_heading = "Server", env = "KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, help_heading = "Server", env = "KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub keepalive_timeout: Duration,

    /// Longest a unary call may run; a shorter client deadline wins.
    #[arg(long, help_heading = "Server", env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// After SIGTERM/SIGINT, how long in-flight calls may take before the process exits.
    #[arg(long, help_heading = "Server", env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// After SIGTERM/SIGINT, how long to keep taking new calls while health already
    /// says NOT_SERVING, before the listener closes and the grace period starts (time
    /// for load balancers to stop sending; 0 closes at once).
    #[arg(long, help_heading = "Server", env = "SHUTDOWN_DRAIN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub shutdown_drain_delay: Duration,

    /// How often database reachability is checked for health reporting.
    #[arg(long, help_heading = "Server", env = "HEALTH_CHECK_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub health_check_interval: Duration,

    /// How often access segments that have ended are closed (expiries and true-ups).
    #[arg(long, help_heading = "Background jobs", env = "SEGMENT_CLOSE_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub segment_close_interval: Duration,

    /// How long violations stay in the feed; older ones are pruned and cursors pointing
    /// before them are OUT_OF_RANGE.
    #[arg(long, help_heading = "Violation feed", env = "VIOLATION_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub violation_retention: Duration,

    /// How often violations past their retention are pruned.
    #[arg(long, help_heading = "Background jobs", env = "VIOLATION_PRUNE_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub violation_prune_interval: Duration,

    /// How often commitment periods that have ended are closed.
    #[arg(long, help_heading = "Background jobs", env = "COMMITMENT_EVALUATION_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub commitment_evaluation_interval: Duration,

    /// Most concurrent RecordUsage calls of one org decided in one shared transaction.
    #[arg(long, help_heading = "Usage", env = "USAGE_GROUP_MAX_EVENTS", default_value_t = 256)]
    pub usage_group_max_events: usize,

    /// Most shared RecordUsage transactions of one org running at once.
    #[arg(long, help_heading = "Usage", env = "USAGE_GROUP_TRANSACTIONS", default_value_t = 1)]
    pub usage_group_transactions: usize,

    /// Longest a shared RecordUsage transaction waits for as many calls as the org's last
    /// one took before it starts (0s: never waits).
    #[arg(long, help_heading = "Usage", env = "USAGE_GROUP_WAIT", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub usage_group_wait: Duration,

    /// Most RecordUsage calls of one org waiting for a shared transaction; past it a
    /// call is answered RESOURCE_EXHAUSTED with a retry delay at once.
    #[arg(long, help_heading = "Usage", env = "USAGE_QUEUE_PER_ORG", default_value_t = 1024)]
    pub usage_queue_per_org: usize,

    /// Most connections open at once; past it a new connection is closed at once.
    #[arg(long, help_heading = "Server", env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// How long a new connection may take to send its whole opening (HTTP/2 preface and
    /// SETTINGS, or the TLS ClientHello) before it is closed.
    #[arg(long, help_heading = "Server", env = "HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// How often the feed polls the table when no notification arrives.
    #[arg(long, help_heading = "Violation feed", env = "FEED_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub feed_poll_interval: Duration,

    /// How long after an access segment ends usage dated inside it may still draw from
    /// it; the segment's remainder expires (or is trued up) once this has passed.
    #[arg(long, help_heading = "Usage", env = "LATE_USAGE_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub late_usage_grace: Duration,

    /// Oldest age a usage event or drawdown may be dated; by default the start of the
    /// previous calendar month in the customer's time zone.
    #[arg(long, help_heading = "Usage", env = "BACKDATING_HORIZON", value_parser = humantime::parse_duration)]
    pub backdating_horizon: Option<Duration>,

    /// How long a reservation holds when its request names no `ttl`.
    #[arg(long, help_heading = "Reservations", env = "RESERVATION_DEFAULT_TTL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub reservation_default_ttl: Duration,

    /// The longest `ttl` a reservation or extension may ask for.
    #[arg(long, help_heading = "Reservations", env = "RESERVATION_MAX_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub reservation_max_ttl: Duration,

    /// How often open reservations past their expiry are marked expired (a reservation
    /// stops holding at its expiry whether or not this has run).
    #[arg(long, help_heading = "Background jobs", env = "RESERVATION_EXPIRY_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub reservation_expiry_interval: Duration,

    /// How long a resolved API key is trusted without asking the database (revocations
    /// reach every instance at once regardless, by NOTIFY); 0 turns the cache off.
    #[arg(long, help_heading = "API keys", env = "API_KEY_CACHE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub api_key_cache_ttl: Duration,

    /// Most API keys cached per instance.
    #[arg(long, help_heading = "API keys", env = "API_KEY_CACHE_CAPACITY", default_value_t = 10_000)]
    pub api_key_cache_capacity: usize,

    /// How long an instance trusts a cached product (by id and by code, as usage names
    /// it) without asking the database (updates and deletions reach every instance at
    /// once regardless, by NOTIFY); 0 turns the cache off.
    #[arg(long, help_heading = "Usage", env = "CATALOG_CACHE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub catalog_cache_ttl: Duration,

    /// Most products cached per instance (each counts twice: by id and by code).
    #[arg(long, help_heading = "Usage", env = "CATALOG_CACHE_CAPACITY", default_value_t = 10_000)]
    pub catalog_cache_capacity: usize,

    /// Most customers' allowance limits cached per instance for the usage path; 0 turns
    /// the cache off. An entry is used only at the limits version the customer's locked
    /// row names, so a change made anywhere is never missed.
    #[arg(long, help_heading = "Usage", env = "LIMITS_CACHE_CAPACITY", default_value_t = crate::app::DEFAULT_LIMITS_CACHE_CAPACITY)]
    pub limits_cache_capacity: usize,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an organization; prints its id alone on stdout.
    CreateOrg {
        /// Display name of the organization.
        name: String,
    },
    /// List organizations: id and name, tab-separated.
    ListOrgs,
    /// Create an API key for an organization; prints the key alone on stdout. The key
    /// is shown once: only its hash is stored.
    CreateApiKey {
        /// Id of the organization the key acts for.
        #[arg(long)]
        org: String,
        /// What the key is for.
        #[arg(long, default_value = "bootstrap")]
        name: String,
        /// Comma-separated scopes among admin, write, usage, read, feed.
        #[arg(long, default_value = "admin,write,usage,read,feed")]
        scopes: String,
        /// When the key stops working (RFC 3339); by default it does not expire.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List an organization's API keys: id, created, revoked, expires, scopes, name
    /// (never the secret).
    ListApiKeys {
        /// Id of the organization.
        #[arg(long)]
        org: String,
    },
    /// Revoke an API key, given the key itself or its id; calls with it fail from now on.
    RevokeApiKey {
        /// The key string, or its id as printed by `list-api-keys`.
        key: String,
    },
}

impl ServeArgs {
    /// The service's database settings: its pool, logging in as its own role, at
    /// `database_url` (the owner's, which only migrates) unless `--app-database-url`
    /// says where.
    pub fn db_config(&self, database_url: &str) -> DbConfig {
        DbConfig {
            pool_size: self.db_pool_size,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout,
            max_waiting: self.db_max_waiting,
            role: Some(self.database_role.clone()),
            login_url: self.app_database_url.clone(),
            ..DbConfig::new(database_url.to_owned())
        }
    }

    /// The operator-tuned rules of the application.
    pub fn policy(&self) -> anyhow::Result<crate::app::Policy> {
        use crate::domain::backdating::BackdatingHorizon;
        use crate::domain::commit::timeline::LateUsageGrace;
        let grace = chrono::Duration::from_std(self.late_usage_grace)?;
        let backdating = match self.backdating_horizon {
            Some(age) => BackdatingHorizon::Fixed(chrono::Duration::from_std(age)?),
            None => BackdatingHorizon::PreviousMonth,
        };
        let holds = crate::domain::reservation::HoldDurations {
            default: chrono::Duration::from_std(self.reservation_default_ttl)?,
            max: chrono::Duration::from_std(self.reservation_max_ttl)?,
        };
        anyhow::ensure!(
            holds.default > chrono::Duration::zero() && holds.default <= holds.max,
            "RESERVATION_DEFAULT_TTL must be positive and at most RESERVATION_MAX_TTL"
        );
        Ok(crate::app::Policy { late_usage_grace: LateUsageGrace(grace), backdating, holds })
    }

    /// How the instance caches resolved API keys.
    pub fn key_cache(&self) -> crate::app::KeyCacheConfig {
        crate::app::KeyCacheConfig { ttl: self.api_key_cache_ttl, capacity: self.api_key_cache_capacity }
    }

    /// How the instance caches the catalog.
    pub fn catalog_cache(&self) -> crate::app::CacheConfig {
        crate::app::CacheConfig { ttl: self.catalog_cache_ttl, capacity: self.catalog_cache_capacity }
    }

    /// The TLS identity from `--tls-cert` / `--tls-key`, read from disk.
    fn tls(&self) -> anyhow::Result<Option<crate::server::TlsPem>> {
        use anyhow::Context as _;
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        Ok(Some(crate::server::TlsPem {
            cert: std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            key: std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        }))
    }

    /// The server's settings, with the TLS identity read from its files; the metrics
    /// endpoint is left to the caller.
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        Ok(ServerConfig {
            max_message_bytes: self.max_message_bytes,
            max_concurrent_streams: self.max_concurrent_streams,
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            drain_delay: self.shutdown_drain_delay,
            health_check_interval: self.health_check_interval,
            jobs: crate::jobs::JobsConfig {
                segment_close_interval: self.segment_close_interval,
                violation_retention: self.violation_retention,
                violation_prune_interval: self.violation_prune_interval,
                commitment_evaluation_interval: self.commitment_evaluation_interval,
                reservation_expiry_interval: self.reservation_expiry_interval,
            },
            feed: crate::feed::FeedConfig {
                poll_interval: self.feed_poll_interval,
                ..crate::feed::FeedConfig::default()
            },
            usage_batching: crate::app::usage_batcher::BatcherConfig {
                max_group: self.usage_group_max_events,
                max_in_flight: self.usage_group_transactions,
                max_queued: self.usage_queue_per_org,
                wait: self.usage_group_wait,
                ..Default::default()
            },
            connections: crate::listener::ConnectionLimits {
                max_connections: self.max_connections,
                handshake_timeout: self.handshake_timeout,
            },
            tls: self.tls()?,
            migrate: !self.no_migrate,
            // The process-wide recorder is installed once, by `serve`, from `metrics_listen`.
            metrics: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn database_url_is_accepted_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["x", "admin", "create-org", "Acme", "--database-url", "postgres://h/d"])
                .expect("parses");
        assert_eq!(cli.database_url, "postgres://h/d");
    }
}
