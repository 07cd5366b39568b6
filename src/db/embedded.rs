//! The private PostgreSQL cluster of a development run: created in the data folder on
//! first start with PostgreSQL's own `initdb`, started on a unix socket inside that folder
//! (no TCP port), and stopped again when Daedalus stops.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster this process started (or found running) in the data folder.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    socket_dir: PathBuf,
    /// Only a cluster this process started is stopped by it.
    started_here: bool,
    run_as: Option<(u32, u32)>,
}

impl Cluster {
    /// Creates the cluster if needed and makes sure it runs. Blocking: call before serving.
    pub fn start(data_dir: &Path) -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let data_dir = std::path::absolute(data_dir).map_err(|e| format!("data folder: {e}"))?;
        let dir = data_dir.join("postgres");
        let socket_dir = data_dir.join("run");
        std::fs::create_dir_all(&socket_dir)
            .map_err(|e| format!("{}: {e}", socket_dir.display()))?;
        let run_as = unprivileged_user(&data_dir)?;
        if let Some((uid, gid)) = run_as {
            check_reachable(&data_dir, uid, gid)?;
        }
        let mut cluster = Cluster {
            bin,
            dir,
            socket_dir,
            started_here: false,
            run_as,
        };
        if !cluster.dir.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        if !cluster.is_running() {
            cluster.run_pg_ctl(&["start", "-w", "-t", "60", "-l", &cluster.log_path()])?;
            cluster.started_here = true;
        }
        log::info!(target: "db", dir = cluster.dir.display().to_string().as_str();
            "embedded PostgreSQL is running");
        Ok(cluster)
    }

    /// The URL to reach the `daedalus` database over the cluster's socket.
    pub fn url(&self) -> String {
        let socket = percent_encoding::utf8_percent_encode(
            &self.socket_dir.to_string_lossy(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        format!("postgresql://daedalus@{socket}/daedalus")
    }

    /// Connects as the superuser once and creates the `daedalus` database if missing.
    pub async fn ensure_database(&self) -> Result<(), String> {
        let socket = self.socket_dir.to_string_lossy();
        let admin = format!("host={socket} user=daedalus dbname=postgres");
        let client = super::connect(&admin)
            .await
            .map_err(|e| format!("embedded cluster: {e}"))?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = 'daedalus'", &[])
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !exists {
            client
                .batch_execute("CREATE DATABASE daedalus")
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&self) {
        if self.started_here
            && let Err(e) = self.run_pg_ctl(&["stop", "-m", "fast", "-w"])
        {
            log::warn!(target: "db", error = e.as_str(); "embedded PostgreSQL did not stop");
        }
    }

    fn log_path(&self) -> String {
        self.socket_dir
            .join("postgres.log")
            .to_string_lossy()
            .into_owned()
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .args(["status", "-D"])
            .arg(&self.dir)
            .output()
            .is_ok_and(|out| out.status.success())
    }

    fn init(&self) -> Result<(), String> {
        log::info!(target: "db", "creating the embedded PostgreSQL cluster (first start)");
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.dir)
            .args([
                "-U",
                "daedalus",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let conf = format!(
            "\nlisten_addresses = ''\nunix_socket_directories = '{}'\n",
            self.socket_dir.display()
        );
        let path = self.dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        text.push_str(&conf);
        std::fs::write(&path, text).map_err(|e| e.to_string())
    }

    fn run_pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(args)
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        Err(format!(
            "pg_ctl {}: {} {tail}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// A PostgreSQL program, run as the unprivileged owner when we are root.
    fn command(&self, program: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(self.bin.join(program));
        // Its own process group: Ctrl+C in the terminal reaches Daedalus, which drains and
        // then stops PostgreSQL, instead of PostgreSQL stopping under running requests.
        cmd.process_group(0);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
}

/// PostgreSQL's server programs: `pg_config --bindir`, else the newest under
/// `/usr/lib/postgresql`.
fn find_bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort_by_key(|p| {
        let version = p
            .parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str());
        version.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        candidates.push(dir);
    }
    candidates
        .into_iter()
        .rev()
        .find(|p| p.join("initdb").exists())
        .ok_or_else(|| {
            "PostgreSQL's server programs (initdb, pg_ctl) were not found; install PostgreSQL \
         (the README's run command does) or set DAEDALUS_DATABASE_URL"
                .to_string()
        })
}

/// PostgreSQL refuses to run as root: when we are root, the cluster belongs to the
/// `postgres` user (or `nobody`), and the data folder is made reachable for it.
fn unprivileged_user(data_dir: &Path) -> Result<Option<(u32, u32)>, String> {
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !is_root.unwrap_or(false) {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let ids = ["postgres", "nobody"].iter().find_map(|name| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == *name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    });
    let Some((uid, gid)) = ids else {
        return Err("running as root, and no postgres or nobody user to run PostgreSQL as".into());
    };
    for dir in [data_dir.to_path_buf(), data_dir.join("run")] {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    }
    Ok(Some((uid, gid)))
}

/// Every folder above the data folder must be searchable by the cluster's user, or
/// PostgreSQL cannot reach its own files (a checkout under `/root` is the usual case).
fn check_reachable(data_dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    for dir in data_dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.mode();
        let searchable = mode & 0o001 != 0
            || (meta.uid() == uid && mode & 0o100 != 0)
            || (meta.gid() == gid && mode & 0o010 != 0);
        if !searchable {
            return Err(format!(
                "running as root, PostgreSQL runs as an unprivileged user who cannot enter {}; \
                 set DAEDALUS_DATA_DIR to a folder outside it (for example /var/lib/daedalus)",
                dir.display()
            ));
        }
    }
    Ok(())
}
