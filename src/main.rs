//! The `billing-commitments` binary: `serve`, `migrate` and `admin` subcommands.

use anyhow::Context as _;
use billing::app::App;
use billing::app::api_keys::parse_scope_list;
use billing::config::{AdminCommand, Cli, Command};
use billing::db::{ConnInfo, Db, DbConfig};
use billing::domain::api_key::parse_key_or_id;
use billing::domain::ids::OrgId;
use billing::domain::scope::KeyRequest;
use clap::Parser;

// jemalloc hands freed memory back to the system: glibc's malloc kept what waves of
// streams had used (RSS grew wave after wave and never came down).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: background threads return pages freed for a
/// second (`dirty_decay_ms`) straight to the system (`muzzy_decay_ms:0` skips the lazy
/// MADV_FREE stage, whose pages still count in RSS until the kernel needs them).
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: a pointer to a static, never written, read by jemalloc alone.
unsafe impl Sync for MallocConf {}

#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The span exporter's connection runs on this runtime: set up inside it.
    let telemetry = {
        let _inside = runtime.enter();
        billing::telemetry::init(cli.log_format, level, cli.otlp_endpoint.as_deref())
            .context("setting up span export")?
    };
    let result = runtime.block_on(run(cli));
    // Spans still batched go out now, while the runtime their export runs on is alive.
    drop(telemetry);
    // Work the shutdown could not cancel (a database that stopped answering) must not
    // hold the exit: blocking tasks are left to the operating system after this.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            billing::listener::raise_open_file_limit();
            let db_config = args.db_config(&cli.database_url);
            let db = Db::open(&db_config)?;
            // The listener connects later, retrying; settings it can never honour are
            // refused now rather than warned about every second.
            db.login_url()
                .parse::<ConnInfo>()
                .and_then(|settings| settings.listener_config())
                .context("the notification listener's database connection")?;
            let mut config = args.server_config()?;
            config.metrics = args
                .metrics_listen
                .map(billing::metrics::install)
                .transpose()
                .context("installing metrics")?;
            billing::server::run(
                config,
                App::new(db)
                    .with_policy(args.policy()?)
                    .with_key_cache(args.key_cache())
                    .with_product_cache(args.catalog_cache())
                    .with_limits_cache(args.limits_cache_capacity),
                db_config.url.clone(),
                args.listen,
                billing::server::termination_signal(),
            )
            .await
        }
        Command::Migrate => {
            let url = cli.database_url;
            let applied =
                tokio::task::spawn_blocking(move || billing::db::migrate::prepare_database(&url)).await??;
            eprintln!("{} migration(s) applied", applied.len());
            Ok(())
        }
        Command::Admin(cmd) => {
            // Operator commands span organizations (list, create), so they run as the
            // connecting role, which owns the schema, not as the service's role.
            let owner = DbConfig { role: None, ..DbConfig::new(cli.database_url) };
            admin(App::new(Db::open(&owner)?), owner.url, cmd).await
        }
    }
}

fn parse_org(value: &str) -> anyhow::Result<OrgId> {
    value.parse().map_err(|_| anyhow::anyhow!("--org must be an organization id (a UUID), got {value:?}"))
}

async fn admin(app: App, url: String, cmd: AdminCommand) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || billing::db::migrate::prepare_database(&url))
        .await?
        .context("preparing the database")?;
    match cmd {
        AdminCommand::CreateOrg { name } => println!("{}", app.create_org(name).await?),
        AdminCommand::ListOrgs => {
            for org in app.list_orgs().await? {
                println!("{}\t{}", org.id, org.name);
            }
        }
        AdminCommand::CreateApiKey { org, name, scopes, expires } => {
            let scopes = parse_scope_list(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let expires_at = expires
                .map(|t| chrono::DateTime::parse_from_rfc3339(&t).map(|t| t.to_utc()))
                .transpose()
                .context("--expires must be an RFC 3339 time")?;
            let request = KeyRequest { name, scopes, expires_at };
            println!("{}", app.create_api_key(parse_org(&org)?, request).await?)
        }
        AdminCommand::ListApiKeys { org } => {
            let or_dash =
                |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or("-".into());
            for key in app.all_api_keys(parse_org(&org)?).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.created_at.to_rfc3339(),
                    or_dash(key.revoked_at),
                    or_dash(key.expires_at),
                    key.scopes.names().join(","),
                    key.name
                );
            }
        }
        AdminCommand::RevokeApiKey { key } => {
            let id = parse_key_or_id(&key).ok_or_else(|| anyhow::anyhow!("not an API key or key id"))?;
            app.revoke_api_key(id).await?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
