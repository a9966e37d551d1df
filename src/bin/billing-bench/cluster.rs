//! The system under test: a fresh database, N service instances started from the
//! release binary, and the figures they export on their metrics endpoints.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// One running instance of the service.
pub struct Instance {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    child: Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Instances on one fresh database, and an API key of the org they serve.
pub struct Cluster {
    pub instances: Vec<Instance>,
    pub key: String,
    pub database_url: String,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Runs the service binary with `args`, returning its stdout.
fn run_admin(bin: &Path, url: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", url)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {args:?}", bin.display()))?;
    if !out.status.success() {
        bail!("{} {args:?} failed: {}", bin.display(), out.status);
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Drops and recreates database `name` on the server of `admin_url`.
async fn recreate_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await?;
    Ok(())
}

impl Cluster {
    /// A fresh database `name` at `server_url`, migrated, with an org and a key, and
    /// `count` instances serving it; logs go to `log_dir`.
    pub async fn start(
        bin: &Path,
        server_url: &str,
        name: &str,
        count: usize,
        pool_size: u32,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        recreate_database(&format!("{server_url}/postgres"), name).await?;
        let database_url = format!("{server_url}/{name}");
        run_admin(bin, &database_url, &["migrate"])?;
        let org = run_admin(bin, &database_url, &["admin", "create-org", "Benchmark Org"])?;
        let key = run_admin(bin, &database_url, &["admin", "create-api-key", "--org", &org])?;
        std::fs::create_dir_all(log_dir)?;
        let spawn = |i: usize| -> anyhow::Result<Instance> {
            let (grpc, metrics) = (free_port()?, free_port()?);
            let log = std::fs::File::create(log_dir.join(format!("instance-{i}.log")))?;
            let child = Command::new(bin)
                .args(["serve", "--listen", &grpc.to_string(), "--metrics-listen", &metrics.to_string()])
                .env("DATABASE_URL", &database_url)
                .env("DB_POOL_SIZE", pool_size.to_string())
                .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            Ok(Instance { grpc, metrics, child })
        };
        let mut instances = (0..count).map(spawn).collect::<anyhow::Result<Vec<_>>>()?;
        for (i, instance) in instances.iter_mut().enumerate() {
            // A port found free can be taken by another process before the instance
            // binds it; an instance that exits while starting gets fresh ports.
            let mut attempt = 1;
            while let Err(e) = wait_serving(instance).await {
                let log =
                    std::fs::read_to_string(log_dir.join(format!("instance-{i}.log"))).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                if attempt == 3 || instance.child.try_wait()?.is_none() {
                    bail!("{e}; its log ends with:\n{tail}");
                }
                eprintln!("instance {i} exited while starting ({e}); starting it again on other ports");
                attempt += 1;
                *instance = spawn(i)?;
            }
        }
        Ok(Self { instances, key, database_url })
    }

    /// Every instance's metrics endpoint.
    pub fn metrics(&self) -> Vec<SocketAddr> {
        self.instances.iter().map(|i| i.metrics).collect()
    }

    /// Refreshes the planner's statistics of the whole database.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        let client = sql_client(&self.database_url, "for ANALYZE").await?;
        client.batch_execute("ANALYZE").await.context("analyzing the seeded database")?;
        Ok(())
    }
}

/// A new HTTP/2 connection to `addr`.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(1 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .connect()
        .await?)
}

/// Waits until `instance` reports SERVING; fails when it exits or after a minute.
async fn wait_serving(instance: &mut Instance) -> anyhow::Result<()> {
    let addr = instance.grpc;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = instance.child.try_wait()? {
            bail!("instance at {addr} exited while starting ({status})");
        }
        if let Ok(channel) = connect(addr).await {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(1)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("instance at {addr} did not become SERVING within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One scrape of a Prometheus text endpoint.
pub struct Scrape(String);

impl Scrape {
    pub async fn from(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n").await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        let start = body.find("\r\n\r\n").map_or(0, |i| i + 4);
        Ok(Self(body[start..].to_owned()))
    }

    /// One scrape of each endpoint of `metrics`.
    pub async fn all(metrics: &[SocketAddr]) -> anyhow::Result<Vec<Self>> {
        let mut scrapes = Vec::with_capacity(metrics.len());
        for m in metrics {
            scrapes.push(Self::from(*m).await?);
        }
        Ok(scrapes)
    }

    /// Sum of the samples of `name` whose labels contain every one of `labels`.
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let metric = series.split('{').next()?;
                (metric == name && labels.iter().all(|x| series.contains(x)))
                    .then(|| value.parse::<f64>().ok())?
            })
            .sum()
    }
}

/// The release binary next to this one.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!("{} not found next to {}; build it first", name, me.display());
    }
    Ok(path)
}

/// A plain SQL connection to `url` for the benchmark's own queries (seeding aside), its
/// connection driven in the background; `what` names it in the error.
pub async fn sql_client(url: &str, what: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting {what}"))?;
    tokio::spawn(conn);
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::Scrape;

    #[test]
    fn sums_the_series_that_match_the_labels() {
        let s = Scrape(
            "# TYPE x counter\nx{code=\"Ok\",method=\"A\"} 3\nx{code=\"Ok\",method=\"B\"} 4\nx{code=\"Internal\"} 1\nxy 9\n"
                .into(),
        );
        assert_eq!(s.sum("x", &["code=\"Ok\""]), 7.0);
        assert_eq!(s.sum("x", &[]), 8.0);
        assert_eq!(s.sum("xy", &[]), 9.0);
    }
}
