//! A local PostgreSQL cluster for laptops and tests, used when `DATABASE_URL` is unset.
//!
//! `initdb` on first run, data kept across runs, stopped on exit. PostgreSQL refuses to run as
//! root, so when we are root the server binaries run as the `postgres` system user.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

/// What to install when no server binaries are found.
pub const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in \
     /usr/lib/postgresql/*/bin: install them (Debian/Ubuntu: `apt-get install postgresql`) \
     or set DATABASE_URL";

/// A running cluster that this process started (or found running in its data directory).
#[derive(Debug)]
pub struct LocalPostgres {
    /// Directory holding `initdb`, `pg_ctl`, `postgres`.
    bin_dir: PathBuf,
    /// The cluster's data directory.
    data_dir: PathBuf,
    /// Loopback TCP port the server listens on.
    port: u16,
    /// uid/gid to run the server as (set when we are root).
    run_as: Option<(u32, u32)>,
}

impl LocalPostgres {
    /// Starts the cluster in `data_dir` (creating it with `initdb` on first use).
    pub fn start(data_dir: &Path) -> anyhow::Result<LocalPostgres> {
        let bin_dir = find_bin_dir().context(INSTALL_HINT)?;
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let run_as = unprivileged_user()?;
        if let Some((uid, _)) = run_as {
            check_traversable(&data_dir, uid)?;
        }
        if let Some((uid, gid)) = run_as {
            nix::unistd::chown(&data_dir, Some(uid.into()), Some(gid.into()))
                .with_context(|| format!("giving {} to the postgres user", data_dir.display()))?;
        }
        let pg = LocalPostgres {
            bin_dir,
            data_dir,
            port: 0,
            run_as,
        };
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        pg.start_server()
    }

    fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(dir = %self.data_dir.display(), "initialising a local PostgreSQL cluster");
        let out = self
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-D"])
            .arg(&self.data_dir)
            .output()
            .context("running initdb")?;
        check(&out, "initdb")?;
        // Small, fast and quiet: this cluster is for one machine, not for durability benchmarks.
        let conf = "\n# added by image-processor\nlisten_addresses = '127.0.0.1'\n\
                    unix_socket_directories = ''\nmax_connections = 200\nlogging_collector = off\n";
        let path = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).context("reading postgresql.conf")?;
        text.push_str(conf);
        std::fs::write(&path, text).context("writing postgresql.conf")?;
        Ok(())
    }

    fn start_server(mut self) -> anyhow::Result<LocalPostgres> {
        if let Some(port) = self.running_port() {
            tracing::info!(port, "local PostgreSQL already running; using it");
            self.port = port;
            return Ok(self);
        }
        self.port = free_port()?;
        let log = self.data_dir.join("server.log");
        let out = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-o", &format!("-p {}", self.port)])
            .output()
            .context("running pg_ctl start")?;
        check(&out, "pg_ctl start").with_context(|| format!("see {}", log.display()))?;
        tracing::info!(port = self.port, dir = %self.data_dir.display(), "local PostgreSQL started");
        Ok(self)
    }

    /// The port of a server already running on this data directory, from `postmaster.pid`.
    fn running_port(&self) -> Option<u16> {
        let status = self
            .command("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        let pid_file = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    /// Connection string for the cluster's `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection string for another database on the cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `pg_ctl` with extra arguments against this cluster (e.g. `restart -m fast`).
    pub fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.args(args).arg("-D").arg(&self.data_dir).arg("-w");
        if matches!(args.first(), Some(&"restart") | Some(&"start")) {
            cmd.args(["-o", &format!("-p {}", self.port)])
                .arg("-l")
                .arg(self.data_dir.join("server.log"));
        }
        let out = cmd.output().context("running pg_ctl")?;
        check(&out, "pg_ctl")
    }

    /// Stops the server (fast shutdown: open sessions are disconnected).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["stop", "-m", "fast"])
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            // Our working directory may not be readable by that user.
            cmd.current_dir(&self.data_dir);
        }
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        cmd
    }
}

/// Finds the server binaries: `PATH` first, then the newest `/usr/lib/postgresql/*/bin`
/// (`IMAGE_PROCESSOR_PG_SEARCH` replaces that directory).
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    // Overridable so a test can prove the "not installed" message.
    let root = std::env::var_os("IMAGE_PROCESSOR_PG_SEARCH").unwrap_or_else(|| "/usr/lib/postgresql".into());
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// As root, the `postgres` system user's uid/gid; otherwise `None` (run as ourselves).
fn unprivileged_user() -> anyhow::Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres").context("looking up the postgres user")? {
        Some(user) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        None => bail!(
            "running as root, and PostgreSQL refuses to run as root: create a `postgres` system user \
             (Debian: `apt-get install postgresql` does) or run as another user"
        ),
    }
}

/// The server runs as `uid`, which must be able to enter every parent of the data directory;
/// `mktemp -d` and home directories are often closed to other users.
fn check_traversable(data_dir: &Path, uid: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for dir in data_dir.ancestors().skip(1) {
        let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let others_may_enter = meta.mode() & 0o001 != 0;
        if !others_may_enter && meta.uid() != uid {
            bail!(
                "PostgreSQL runs as the unprivileged `postgres` user, which cannot enter {} (mode {:o}): \
                 choose a DATA_DIR under a directory others may enter, or `chmod o+x {}`",
                dir.display(),
                meta.mode() & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn check(out: &Output, what: &str) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    )
}
