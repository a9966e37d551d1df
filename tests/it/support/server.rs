//! An in-process server on an ephemeral port over a fresh test database, with clients
//! that send an organization's API key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use billing::app::{App, KeyCacheConfig, Policy};
use billing::db::{Db, DbConfig};
use billing::domain::backdating::BackdatingHorizon;
use billing::domain::ids::OrgId;
use billing::domain::scope::{KeyRequest, Scopes};
use billing::server::ServerConfig;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::db::TestDb;
use billing::proto::v1::customer_service_client::CustomerServiceClient;
use billing::proto::v1::product_service_client::ProductServiceClient;

/// Sends `authorization: Bearer <key>` on every call (or nothing, for `None`).
#[derive(Clone)]
pub struct Key(Option<AsciiMetadataValue>);

impl Key {
    pub fn bearer(key: &str) -> Self {
        Self(Some(MetadataValue::try_from(format!("Bearer {key}")).expect("ascii key")))
    }

    pub fn none() -> Self {
        Self(None)
    }

    /// A raw `authorization` header value, for malformed-header tests.
    pub fn raw(value: &str) -> Self {
        Self(Some(MetadataValue::try_from(value).expect("ascii value")))
    }
}

impl Interceptor for Key {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, Key>;

/// A running server and the database under it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app: App,
    /// The operator's view: connects as the schema owner, as `admin` commands do.
    pub admin: App,
    pub feed: billing::feed::Feed,
    pub db: Arc<TestDb>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A policy accepting usage dated up to a century back: for tests at fixed instants
/// and tests whose set-up records usage in periods long past.
pub fn accepting_old_usage() -> Policy {
    Policy { backdating: BackdatingHorizon::Fixed(chrono::Duration::days(36_525)), ..Policy::default() }
}

/// Fast-failing settings for tests.
pub fn test_server_config() -> ServerConfig {
    ServerConfig {
        health_check_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

pub fn test_db_config(url: &str) -> DbConfig {
    DbConfig { pool_size: 8, acquire_timeout: Duration::from_secs(2), ..DbConfig::new(url) }
}

impl TestServer {
    /// A server over a fresh database, returned once it reports SERVING.
    pub async fn start() -> Self {
        Self::start_on(Arc::new(TestDb::create())).await
    }

    /// Another server over an existing database (a second instance).
    pub async fn start_on(db: Arc<TestDb>) -> Self {
        let server = Self::start_with(db, test_server_config(), |c| c).await;
        server.wait_serving().await;
        server
    }

    /// A server whose application runs under `policy` (over `db`), once SERVING.
    pub async fn start_with_policy(db: Arc<TestDb>, policy: Policy) -> Self {
        Self::start_with_app(db, |a| a.with_policy(policy)).await
    }

    /// A server over `db` whose API key cache is configured as `keys`, once SERVING.
    pub async fn start_with_key_cache(db: Arc<TestDb>, keys: KeyCacheConfig) -> Self {
        Self::start_with_app(db, |a| a.with_key_cache(keys)).await
    }

    /// A server over `db` whose application `configure` adjusts, once SERVING.
    pub async fn start_with_app(db: Arc<TestDb>, configure: impl FnOnce(App) -> App) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let db_config = test_db_config(&db.url);
        let server = Self::serve(db, test_server_config(), db_config, listener, configure).await;
        server.wait_serving().await;
        server
    }

    /// A server over a fresh database that accepts usage dated up to a century back
    /// (see [`accepting_old_usage`]).
    pub async fn start_accepting_old_usage() -> Self {
        Self::start_with_policy(Arc::new(TestDb::create()), accepting_old_usage()).await
    }

    /// A server with explicit settings; does not wait for SERVING.
    pub async fn start_with(
        db: Arc<TestDb>,
        config: ServerConfig,
        db_config: impl FnOnce(DbConfig) -> DbConfig,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let db_config = db_config(test_db_config(&db.url));
        Self::serve(db, config, db_config, listener, |a| a).await
    }

    /// Another server over the same database, listening on `addr` (to restart an instance).
    pub async fn restart_on(db: Arc<TestDb>, addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the same address again");
        let db_config = test_db_config(&db.url);
        let server = Self::serve(db, test_server_config(), db_config, listener, |a| a).await;
        server.wait_serving().await;
        server
    }

    async fn serve(
        db: Arc<TestDb>,
        config: ServerConfig,
        db_config: DbConfig,
        listener: tokio::net::TcpListener,
        configure: impl FnOnce(App) -> App,
    ) -> Self {
        let app = configure(App::new(Db::open(&db_config).expect("a pool")));
        let admin = App::new(Db::open(&DbConfig { role: None, ..db_config.clone() }).expect("a pool"));
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let instance = billing::server::Instance::start(config, app.clone(), db_config.url.clone()).await;
        let feed = instance.feed().clone();
        let handle = tokio::spawn(instance.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, app, admin, feed, db, stop: Some(stop), handle: Some(handle) }
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to test server")
    }

    /// Polls health until the whole server reports SERVING.
    pub async fn wait_serving(&self) {
        let mut health = HealthClient::new(self.channel().await);
        for _ in 0..200 {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server never reported SERVING");
    }

    /// A new organization with one API key.
    pub async fn org(&self, name: &str) -> (OrgId, String) {
        let org = self.admin.create_org(name.to_owned()).await.expect("create org");
        let key = self.key_for(org).await;
        (org, key)
    }

    /// Another key of `org`, with every scope (as the operator's command makes them).
    pub async fn key_for(&self, org: OrgId) -> String {
        self.key_with(org, Scopes::all(), None).await
    }

    /// A key of `org` made by the operator's command with `scopes`, expiring at `expires_at`.
    pub async fn key_with(&self, org: OrgId, scopes: Scopes, expires_at: Option<DateTime<Utc>>) -> String {
        let request = KeyRequest { name: "test".into(), scopes, expires_at };
        self.admin.create_api_key(org, request).await.expect("create key")
    }

    /// The organization an API key acts for.
    pub async fn org_of(&self, key: &str) -> OrgId {
        self.app.authenticate(key).await.expect("a valid key").org
    }

    /// The feed cursor of position `seq` in the feed of the organization `key` acts for,
    /// as the service seals it.
    pub async fn cursor(&self, key: &str, seq: i64) -> String {
        let tokens = self.app.authenticate(key).await.expect("a valid key").tokens;
        billing::domain::violation::cursor_of(seq, &tokens)
    }

    pub async fn customers(&self, key: &str) -> CustomerServiceClient<Authed> {
        CustomerServiceClient::with_interceptor(self.channel().await, Key::bearer(key))
    }

    pub async fn products(&self, key: &str) -> ProductServiceClient<Authed> {
        ProductServiceClient::with_interceptor(self.channel().await, Key::bearer(key))
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal_stop();
        self.join().await
    }

    /// Signals shutdown without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server task to end.
    pub async fn join(&mut self) -> anyhow::Result<()> {
        match self.handle.take() {
            Some(h) => h.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}
