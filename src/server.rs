//! Assembles the gRPC server: services, the auth and observation layers, health,
//! reflection (v1 and v1alpha), limits, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::app::App;
use crate::db::migrate::{prepare_database, require_migrated};
use crate::feed::Feed;
use crate::grpc::alert::AlertApi;
use crate::grpc::allowance::AllowanceApi;
use crate::grpc::api_key::ApiKeyApi;
use crate::grpc::auth::AuthLayer;
use crate::grpc::commit::CommitApi;
use crate::grpc::commitment::CommitmentApi;
use crate::grpc::credit_type::CreditTypeApi;
use crate::grpc::customer::CustomerApi;
use crate::grpc::message_limit::MessageLimitLayer;
use crate::grpc::product::ProductApi;
use crate::grpc::promo::PromoApi;
use crate::grpc::reservation::ReservationApi;
use crate::grpc::shutdown::EndAtShutdown;
use crate::grpc::usage::UsageApi;
use crate::grpc::violation::ViolationApi;
use crate::jobs::JobsConfig;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::v1::alert_service_server::AlertServiceServer;
use crate::proto::v1::allowance_service_server::AllowanceServiceServer;
use crate::proto::v1::api_key_service_server::ApiKeyServiceServer;
use crate::proto::v1::commit_service_server::CommitServiceServer;
use crate::proto::v1::commitment_service_server::CommitmentServiceServer;
use crate::proto::v1::credit_type_service_server::CreditTypeServiceServer;
use crate::proto::v1::customer_service_server::CustomerServiceServer;
use crate::proto::v1::product_service_server::ProductServiceServer;
use crate::proto::v1::promo_service_server::PromoServiceServer;
use crate::proto::v1::reservation_service_server::ReservationServiceServer;
use crate::proto::v1::usage_service_server::UsageServiceServer;
use crate::proto::v1::violation_service_server::ViolationServiceServer;

/// Limits and timings of the gRPC server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub max_message_bytes: usize,
    pub max_concurrent_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long health says NOT_SERVING while the listener still takes
    /// new calls, so load balancers stop sending before connections are refused.
    pub drain_delay: Duration,
    pub health_check_interval: Duration,
    pub jobs: JobsConfig,
    pub feed: crate::feed::FeedConfig,
    pub usage_batching: crate::app::usage_batcher::BatcherConfig,
    /// Open connections and the deadline of a new one's first bytes.
    pub connections: crate::listener::ConnectionLimits,
    /// Serve over TLS with this identity; plaintext when `None`.
    pub tls: Option<TlsPem>,
    /// Metrics and HTTP probes, when `--metrics-listen` is set.
    pub metrics: Option<crate::metrics::MetricsEndpoint>,
    /// Create and migrate the database at start; when false, wait for a separate
    /// `migrate` step to have done it.
    pub migrate: bool,
}

/// A PEM certificate chain and its private key.
#[derive(Clone)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsPem").field("cert_bytes", &self.cert.len()).finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 4096,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            health_check_interval: Duration::from_secs(1),
            jobs: JobsConfig::default(),
            feed: crate::feed::FeedConfig::default(),
            usage_batching: Default::default(),
            connections: Default::default(),
            tls: None,
            metrics: None,
            migrate: true,
        }
    }
}

/// Names of the services reported by the health service ("" is the whole server).
fn health_names() -> [&'static str; 13] {
    [
        "",
        <CustomerServiceServer<CustomerApi> as NamedService>::NAME,
        <ProductServiceServer<ProductApi> as NamedService>::NAME,
        <CommitServiceServer<CommitApi> as NamedService>::NAME,
        <AllowanceServiceServer<AllowanceApi> as NamedService>::NAME,
        <UsageServiceServer<UsageApi> as NamedService>::NAME,
        <ViolationServiceServer<ViolationApi> as NamedService>::NAME,
        <PromoServiceServer<PromoApi> as NamedService>::NAME,
        <ReservationServiceServer<ReservationApi> as NamedService>::NAME,
        <AlertServiceServer<AlertApi> as NamedService>::NAME,
        <CommitmentServiceServer<CommitmentApi> as NamedService>::NAME,
        <CreditTypeServiceServer<CreditTypeApi> as NamedService>::NAME,
        <ApiKeyServiceServer<ApiKeyApi> as NamedService>::NAME,
    ]
}

/// What the instance reports of itself: gRPC health for every service, and readiness
/// for the HTTP probe (`/readyz`).
#[derive(Clone)]
struct Health {
    reporter: HealthReporter,
    ready: watch::Sender<bool>,
    /// Set once shutdown begins: from then on the instance is NOT_SERVING whatever the
    /// database does (a blip and recovery during the drain delay must not bring it
    /// back into the load balancer's rotation).
    draining: Arc<AtomicBool>,
}

impl Health {
    fn new(ready: watch::Sender<bool>) -> Self {
        Self { reporter: HealthReporter::new(), ready, draining: Arc::new(AtomicBool::new(false)) }
    }

    /// NOT_SERVING for good: shutdown has begun.
    async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        if status == ServingStatus::Serving && self.draining.load(Ordering::SeqCst) {
            return;
        }
        for name in health_names() {
            self.reporter.set_service_status(name, status).await;
        }
        self.ready.send_replace(status == ServingStatus::Serving);
    }
}

/// Creates the database and runs migrations (or, when `migrate` is false, waits for a
/// separate step to have done so), retrying until the database answers; then says so
/// on `migrated`.
async fn wait_for_database(
    url: String,
    migrate: bool,
    migrated: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> bool {
    loop {
        let attempt_url = url.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            if migrate { prepare_database(&attempt_url) } else { require_migrated(&attempt_url) }
        })
        .await;
        match outcome {
            Ok(Ok(applied)) => {
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "migrations applied");
                }
                migrated.send_replace(true);
                return true;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "database not ready; retrying"),
            Err(e) => tracing::error!(error = %e, "database preparation task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Says at start, once the database is there, when the pool cannot fill.
async fn warn_of_connection_shortfall(db: crate::db::Db, mut migrated: watch::Receiver<bool>) {
    if migrated.wait_for(|done| *done).await.is_err() {
        return;
    }
    match db.connection_shortfall().await {
        Ok(Some(why)) => tracing::warn!(why, "connection budget: the pool cannot fill"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the server's connection limits"),
    }
}

/// Keeps health in step with database reachability, on the probe's own connection (see
/// `db::probe`); `owner_url` migrates when `migrate` is set, otherwise the migrations are
/// checked on the probe's login.
async fn monitor_health(
    owner_url: String,
    db: crate::db::Db,
    migrate: bool,
    interval: Duration,
    health: Health,
    migrated: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let url = if migrate { owner_url } else { db.login_url().to_owned() };
    if !wait_for_database(url, migrate, migrated, shutdown.clone()).await {
        return;
    }
    let mut probe = db.probe();
    let mut last: Option<ServingStatus> = None;
    loop {
        let reachable = match tokio::task::spawn_blocking(move || (probe.answers(), probe)).await {
            Ok((reachable, returned)) => {
                probe = returned;
                reachable
            }
            Err(e) => {
                tracing::error!(error = %e, "the health probe's task failed");
                probe = db.probe();
                false
            }
        };
        if shutdown.is_cancelled() {
            return;
        }
        let status = if reachable { ServingStatus::Serving } else { ServingStatus::NotServing };
        if last != Some(status) {
            tracing::info!(serving = reachable, "health changed");
            health.set(status).await;
            last = Some(status);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// A generated service server with the configured message size limits, taking gzip
/// requests and answering in gzip a client that accepts it.
macro_rules! limited {
    ($server:ident, $api:expr, $max:expr) => {
        $server::new($api)
            .max_decoding_message_size($max)
            .max_encoding_message_size($max)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
    };
}

/// One running instance: its background work (violation feed, health monitor, jobs),
/// started before it serves gRPC.
pub struct Instance {
    config: ServerConfig,
    app: App,
    feed: Feed,
    health: Health,
    migrated: watch::Receiver<bool>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Instance {
    /// Starts the background work; health stays NOT_SERVING until the database at
    /// `database_url` is migrated and answers.
    pub async fn start(config: ServerConfig, app: App, database_url: String) -> Self {
        let stop = CancellationToken::new();
        let (ready, ready_rx) = watch::channel(false);
        let health = Health::new(ready);
        health.set(ServingStatus::NotServing).await;
        let (feed, mut tasks) = Feed::start(app.clone(), config.feed.clone(), stop.clone());
        let channels = vec![feed.channel(), app.key_cache().channel(), app.product_cache().channel()];
        // The service's own connections log in as its role, like the pool's; only the
        // migrations use `database_url`, the owner's.
        let login_url = app.db().login_url().to_owned();
        let (migrated, migrated_rx) = watch::channel(false);
        tasks.push(tokio::spawn(crate::db::listen::run(
            login_url,
            channels,
            migrated_rx.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(monitor_health(
            database_url,
            app.db().clone(),
            config.migrate,
            config.health_check_interval,
            health.clone(),
            migrated,
            stop.clone(),
        )));
        tasks.extend(crate::jobs::spawn(app.clone(), config.jobs.clone(), migrated_rx.clone(), stop.clone()));
        tasks.push(tokio::spawn(warn_of_connection_shortfall(app.db().clone(), migrated_rx.clone())));
        tasks.push(tokio::spawn(crate::metrics::sample(
            app.db().clone(),
            Duration::from_secs(1),
            stop.clone(),
        )));
        if let Some(endpoint) = config.metrics.clone() {
            tasks.push(tokio::spawn(crate::metrics::serve(endpoint, ready_rx, stop.clone())));
        }
        Self { config, app, feed, health, migrated: migrated_rx, stop, tasks }
    }

    /// Resolves once the database is migrated (by this instance or, with
    /// `--no-migrate`, by the separate step) and reachable.
    pub async fn migrated(&self) {
        let mut migrated = self.migrated.clone();
        // The sender lives in the health monitor until the instance stops.
        let _ = migrated.wait_for(|done| *done).await;
    }

    /// The instance's violation feed.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Serves on `listener` until `shutdown` resolves, then ends every stream with
    /// UNAVAILABLE and drains in-flight calls for at most the grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { config, app, feed, health, stop, tasks, .. } = self;
        let health_service = HealthServer::new(HealthService::from_health_reporter(health.reporter.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let max = config.max_message_bytes;
        let mut builder = Server::builder();
        if let Some(tls) = &config.tls {
            let identity = tonic::transport::Identity::from_pem(&tls.cert, &tls.key);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?;
        }
        let router = builder
            .timeout(config.request_timeout)
            .max_concurrent_streams(config.max_concurrent_streams)
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .layer(crate::grpc::entry::layers(config.request_timeout))
            .layer(AuthLayer::new(app.clone()))
            .layer(MessageLimitLayer)
            .add_service(EndAtShutdown::new(health_service, stop.clone()))
            .add_service(EndAtShutdown::new(reflection_v1, stop.clone()))
            .add_service(EndAtShutdown::new(reflection_v1alpha, stop.clone()))
            .add_service(limited!(CustomerServiceServer, CustomerApi::new(app.clone()), max))
            .add_service(limited!(ProductServiceServer, ProductApi::new(app.clone()), max))
            .add_service(limited!(CommitServiceServer, CommitApi::new(app.clone()), max))
            .add_service(limited!(AllowanceServiceServer, AllowanceApi::new(app.clone()), max))
            .add_service(limited!(
                UsageServiceServer,
                UsageApi::new(app.clone(), config.usage_batching.clone()),
                max
            ))
            .add_service(limited!(ViolationServiceServer, ViolationApi::new(app.clone(), feed), max))
            .add_service(limited!(PromoServiceServer, PromoApi::new(app.clone()), max))
            .add_service(limited!(ReservationServiceServer, ReservationApi::new(app.clone()), max))
            .add_service(limited!(AlertServiceServer, AlertApi::new(app.clone()), max))
            .add_service(limited!(CommitmentServiceServer, CommitmentApi::new(app.clone()), max))
            .add_service(limited!(CreditTypeServiceServer, CreditTypeApi::new(app.clone()), max))
            .add_service(limited!(ApiKeyServiceServer, ApiKeyApi::new(app.clone()), max));

        let signal_stop = stop.clone();
        let drain_delay = config.drain_delay;
        let signal = async move {
            shutdown.await;
            health.drain().await;
            if !drain_delay.is_zero() {
                tracing::info!(
                    delay_ms = drain_delay.as_millis() as u64,
                    "shutting down: not serving, still taking calls while load balancers notice"
                );
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!("shutting down: refusing new calls, ending streams, draining in-flight calls");
            signal_stop.cancel();
        };

        let local = listener.local_addr()?;
        tracing::info!(address = %local, tls = config.tls.is_some(), "serving gRPC");
        // The listener closes at `stop`, so new clients are refused while in-flight calls
        // drain.
        let incoming = crate::listener::incoming(listener, config.connections, stop.clone());
        let mut serve = std::pin::pin!(router.serve_with_incoming_shutdown(incoming, signal));
        let grace = config.shutdown_grace;
        let grace_stop = stop.clone();
        let result = tokio::select! {
            result = &mut serve => result.map_err(anyhow::Error::from),
            _ = async move { grace_stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; cancelling in-flight database work");
                // Serving goes on while the work is cancelled, so the calls it belonged
                // to are answered (UNAVAILABLE, nothing written) before connections close.
                let (served, closed) = tokio::join!(
                    tokio::time::timeout(SHUTDOWN_MARGIN, &mut serve),
                    app.db().close(SHUTDOWN_MARGIN),
                );
                tracing::warn!(
                    cancelled = closed.cancelled,
                    still_running = closed.still_running,
                    answered = served.is_ok(),
                    "in-flight database work ended; closing remaining connections"
                );
                Ok(())
            }
        };
        stop.cancel();
        for task in tasks {
            task.abort();
        }
        result
    }
}

/// What a shutdown may take past its grace period: cancelling the database work still
/// running and answering its calls. The process exits within grace plus this margin.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);

/// Starts an instance, opens `listen` once the database is migrated (so no client, nor
/// a racing `admin` command, meets a database that is not ready), and serves until
/// `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    app: App,
    database_url: String,
    listen: std::net::SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instance = Instance::start(config, app, database_url).await;
    let stop = CancellationToken::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        signalled.cancel();
    });
    tokio::select! {
        () = instance.migrated() => {}
        () = stop.cancelled() => {
            tracing::info!("shut down before the database was ready");
            instance.stop.cancel();
            return Ok(());
        }
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    instance.serve(listener, stop.cancelled_owned()).await
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
