//! The database settings are libpq's, whichever driver connects: a `key=value` string
//! works like a URL, and `sslmode` protects the notification listener's connection
//! (tokio-postgres) as it does the pool's (libpq), on a cluster of the test's own that
//! serves TLS under a certificate from a test CA.

use std::path::PathBuf;
use std::sync::Arc;

use billing::db::{ConnInfo, DbConfig};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::private_pg::PrivatePostgres;
use crate::support::process::{ServeProcess, free_port};
use crate::support::server::test_server_config;
use crate::support::{TestDb, TestServer, wait_until};

/// A CA, written to a PEM file, and a server certificate for `localhost` it signed.
struct TestCa {
    root: TempFile,
    server_cert: String,
    server_key: String,
}

/// A file of the test's own under the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn with(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("billing-{}-{name}", uuid::Uuid::now_v7().simple()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn display(&self) -> std::path::Display<'_> {
        self.0.display()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: a verifier finds the issuer by name.
    params.distinguished_name.push(DnType::CommonName, format!("billing test CA {}", uuid::Uuid::now_v7()));
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn test_ca() -> TestCa {
    let ca = new_ca();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    TestCa {
        root: TempFile::with("root.crt", &ca.pem()),
        server_cert: cert.pem(),
        server_key: key.serialize_pem(),
    }
}

/// Whether the listener's connection (found by its session name) is up, and with TLS.
fn listener_sessions(pg: &PrivatePostgres) -> Vec<(String, bool)> {
    #[derive(QueryableByName)]
    struct Session {
        #[diesel(sql_type = Text)]
        query: String,
        #[diesel(sql_type = Bool)]
        ssl: bool,
    }
    let mut conn = PgConnection::establish(&pg.url("postgres")).unwrap();
    diesel::sql_query(
        "SELECT a.query, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = 'billing' AND a.application_name = $1",
    )
    .bind::<Text, _>(billing::db::listen::APPLICATION_NAME)
    .load::<Session>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|s| (s.query, s.ssl))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_settings_with_verify_full_put_the_pool_and_the_listener_on_tls() {
    let ca = test_ca();
    let pg = PrivatePostgres::start_with_tls(&ca.server_cert, &ca.server_key);
    let settings = format!(
        "host=localhost port={} user=postgres dbname=billing sslmode=verify-full sslrootcert={}",
        pg.port,
        ca.root.display()
    );
    crate::support::db::prepare(&settings).await;
    let server = TestServer::start_with(Arc::new(TestDb::create()), test_server_config(), |c| DbConfig {
        url: settings.clone(),
        ..c
    })
    .await;
    server.wait_serving().await;
    let (_, key) = server.org("Acme").await;
    server
        .customers(&key)
        .await
        .list_customers(billing::proto::v1::ListCustomersRequest::default())
        .await
        .expect("a call through the pool");

    let mut sessions = Vec::new();
    wait_until("the notification listener to be listening", || {
        sessions = listener_sessions(&pg);
        let listening = sessions.iter().any(|(query, _)| query.starts_with("LISTEN"));
        async move { listening }
    })
    .await;
    assert!(sessions.iter().all(|(_, ssl)| *ssl), "the listener connects with TLS: {sessions:?}");
    let mut conn = PgConnection::establish(&pg.url("postgres")).unwrap();
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let plain: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = 'billing' AND NOT s.ssl",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(plain.n, 0, "no connection to the service's database is in plaintext");
}

/// What connecting the listener's way does with `settings` on `pg`.
async fn listener_connects(settings: &str) -> Result<bool, String> {
    let (config, tls) =
        settings.parse::<ConnInfo>().and_then(|c| c.listener_config()).map_err(|e| e.to_string())?;
    let connector = tls.connector().map_err(|e| e.to_string())?;
    let (client, connection) = config.connect(connector).await.map_err(|e| format!("{e:?}"))?;
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_verifies_the_server_as_sslmode_says() {
    let ca = test_ca();
    let pg = PrivatePostgres::start_with_tls(&ca.server_cert, &ca.server_key);
    let stranger = TempFile::with("other.crt", &new_ca().pem());
    let at = |host: &str, rest: &str| format!("postgres://postgres@{host}:{}/postgres?{rest}", pg.port);
    let root = format!("sslrootcert={}", ca.root.display());
    let other = format!("sslrootcert={}", stranger.display());

    assert_eq!(listener_connects(&at("127.0.0.1", "sslmode=disable")).await, Ok(false), "disable: plaintext");
    assert_eq!(
        listener_connects(&at("127.0.0.1", "sslmode=prefer")).await,
        Ok(true),
        "prefer: TLS when offered"
    );
    assert_eq!(
        listener_connects(&at("127.0.0.1", "sslmode=require&sslrootcert=/nonexistent")).await,
        Ok(true)
    );
    assert_eq!(listener_connects(&at("localhost", &format!("sslmode=verify-full&{root}"))).await, Ok(true));
    assert_eq!(
        listener_connects(&at("127.0.0.1", &format!("sslmode=verify-ca&{root}"))).await,
        Ok(true),
        "verify-ca does not check the name"
    );
    let wrong_name = listener_connects(&at("127.0.0.1", &format!("sslmode=verify-full&{root}"))).await;
    assert!(
        matches!(&wrong_name, Err(e) if e.contains("NotValidForName")),
        "verify-full checks the name: {wrong_name:?}"
    );
    for mode in ["require", "verify-ca", "verify-full"] {
        let untrusted = listener_connects(&at("localhost", &format!("sslmode={mode}&{other}"))).await;
        assert!(
            matches!(&untrusted, Err(e) if e.contains("UnknownIssuer")),
            "{mode} with a root file refuses a server it did not sign: {untrusted:?}"
        );
    }
}

#[test]
fn serve_refuses_settings_its_listener_cannot_honour_instead_of_connecting_otherwise() {
    let db = TestDb::create();
    let settings = format!("{}?sslcrl=/etc/revoked.crl", db.url);
    let mut serve = ServeProcess::launch(&settings, &free_port(), &[]);
    let status = serve.wait_exit(std::time::Duration::from_secs(60)).expect("serve stops on its own");
    assert!(!status.success(), "{status}");
    let logs = serve.logs.lock().unwrap().join("\n");
    assert!(logs.contains("sslcrl") && logs.contains("notification listener"), "{logs}");
}
