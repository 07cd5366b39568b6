//! The `daedalus` binary: `daedalus` serves, `daedalus migrate` applies migrations and
//! exits, `daedalus migrate --status` lists them.

use std::process::ExitCode;
use std::sync::Arc;

use daedalus::app::App;
use daedalus::config::{Config, Source};
use daedalus::db::{self, embedded::Cluster, migrate};
use daedalus::logging;
use daedalus::storage::{S3Config, Store};

const USAGE: &str = "usage: daedalus [migrate [--status]] | --version | --help
  (no command)        serve the API (and the browser app in development)
  migrate             apply pending database migrations, then exit
  migrate --status    list migrations and when each was applied
Configuration comes from the environment and ./.env; see the README.";

enum Command {
    Serve,
    Migrate,
    MigrateStatus,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = match args.as_slice() {
        [] => Command::Serve,
        ["migrate"] => Command::Migrate,
        ["migrate", "--status"] => Command::MigrateStatus,
        ["--version"] => {
            println!(
                "daedalus {} ({})",
                env!("CARGO_PKG_VERSION"),
                env!("DAEDALUS_GIT_COMMIT")
            );
            return ExitCode::SUCCESS;
        }
        ["--help"] | ["-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    logging::init();
    let cfg = match Source::from_env().and_then(|src| Config::load(&src)) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::error!(target: "config", variable = e.variable.as_str(); "bad configuration: {e}");
            logging::flush();
            eprintln!("daedalus: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts on any supported system");
    let code = match runtime.block_on(run(command, cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!(target: "daedalus", "{message}");
            eprintln!("daedalus: {message}");
            ExitCode::FAILURE
        }
    };
    logging::flush();
    code
}

async fn run(command: Command, cfg: Config) -> Result<(), String> {
    // A busy port is found before the database is touched.
    let listener = match command {
        Command::Serve => Some(
            tokio::net::TcpListener::bind(cfg.listen)
                .await
                .map_err(|e| format!("cannot listen on {} (DAEDALUS_LISTEN): {e}", cfg.listen))?,
        ),
        _ => None,
    };
    let (url, cluster) = database(&cfg).await?;
    let result = match listener {
        Some(listener) => serve(cfg, &url, listener).await,
        None if matches!(command, Command::Migrate) => apply_migrations(&url).await.map(|_| ()),
        None => print_status(&url).await,
    };
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .map_err(|e| e.to_string())?;
    }
    result
}

/// The configured database, or the embedded cluster in development.
async fn database(cfg: &Config) -> Result<(String, Option<Cluster>), String> {
    if let Some(url) = &cfg.database_url {
        return Ok((url.0.clone(), None));
    }
    let data_dir = cfg.data_dir.clone();
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&data_dir))
        .await
        .map_err(|e| e.to_string())??;
    cluster.ensure_database().await?;
    Ok((cluster.url(), Some(cluster)))
}

async fn apply_migrations(url: &str) -> Result<Vec<i32>, String> {
    let mut client = db::connect(url)
        .await
        .map_err(|e| format!("cannot reach the database: {e}"))?;
    migrate::apply(&mut client).await.map_err(|e| e.to_string())
}

async fn print_status(url: &str) -> Result<(), String> {
    let client = db::connect(url)
        .await
        .map_err(|e| format!("cannot reach the database: {e}"))?;
    for s in migrate::status(&client).await.map_err(|e| e.to_string())? {
        let when = s
            .applied_at
            .map_or_else(|| "pending".to_string(), daedalus::api::workspaces::rfc3339);
        println!("{:>4}  {:<32} {when}", s.version, s.name);
    }
    Ok(())
}

async fn serve(cfg: Config, url: &str, listener: tokio::net::TcpListener) -> Result<(), String> {
    let shutdown = shutdown_signal();
    apply_migrations(url).await?;
    let pool = db::pool(url)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let spa = cfg
        .static_dir
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    daedalus::api::telemetry::preset_metrics();
    let store = storage(&cfg).await?;
    log::info!(target: "daedalus", addr = addr.to_string().as_str(), env = format!("{:?}", cfg.env).as_str(),
        static_dir = spa.as_str(), version = env!("CARGO_PKG_VERSION");
        "listening; open http://{addr}/");
    let app = Arc::new(App::new(cfg, pool, store));
    let background = tokio_util::sync::CancellationToken::new();
    daedalus::runs::hub::spawn_listener(app.runs.hub.clone(), url.to_string(), background.clone());
    daedalus::runs::sweep::spawn(app.clone());
    daedalus::http::server::serve(app.clone(), listener, shutdown).await;
    // Streams following runs held the HTTP drain open, so the grace is mostly spent:
    // what still runs now is cut off and recorded as failed.
    app.runs.shutdown(RUNS_EXTRA_GRACE).await;
    background.cancel();
    app.mcp.shutdown().await;
    Ok(())
}

/// How long runs get after the HTTP drain (itself `SHUTDOWN_GRACE`) before they are cut off.
const RUNS_EXTRA_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// S3 when an endpoint is configured, else files under the data folder.
async fn storage(cfg: &Config) -> Result<Store, String> {
    let store = match &cfg.s3 {
        Some(s3) => Store::s3(S3Config {
            endpoint: s3.endpoint.clone(),
            access_key: s3.access_key.0.clone(),
            secret_key: s3.secret_key.0.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
        })
        .map_err(|e| format!("object storage (DAEDALUS_S3_*): {e}"))?,
        None => Store::local(cfg.data_dir.join("files")),
    };
    store
        .ensure_ready()
        .await
        .map_err(|e| format!("object storage is not usable: {e}"))?;
    Ok(store)
}

/// Installs the handlers at once (a signal arriving before the first poll is kept) and
/// resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler succeeds");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler succeeds");
    async move {
        tokio::select! {
            _ = term.recv() => log::info!(target: "daedalus", signal = "SIGTERM"; "shutting down"),
            _ = int.recv() => log::info!(target: "daedalus", signal = "SIGINT"; "shutting down"),
        }
    }
}
