//! Ephemeral PostgreSQL 15 for tests and the demo, and a fresh database per test.
//!
//! `initdb` refuses to run as root, so when we are root the server runs as the `postgres`
//! user (via `runuser`) in a temp directory that user owns. `DATABASE_URL`, when set, points
//! at an existing server instead (CI of another kind, or a developer's own server).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use tempfile::TempDir;
use tokio_postgres::NoTls;

use crate::ports::free_port;

/// A running throw-away PostgreSQL server. Stopped (immediate mode) and deleted on drop.
pub struct TestPostgres {
    dir: TempDir,
    port: u16,
    run_as_postgres: bool,
    durability: Durability,
    /// Server options after the durability's (a later `-c` wins): replication settings.
    extra_options: String,
}

/// How much a commit costs the server: what a figure measured on it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `fsync`, `synchronous_commit`, `full_page_writes` off: tests throw the data away, so
    /// they need not wait for the disk.
    Relaxed,
    /// PostgreSQL's defaults (all three on): a commit is acknowledged only once its WAL is
    /// flushed, as on a registrar's database. Every benchmark figure is measured on this.
    Production,
}

impl Durability {
    /// The server options this durability stands for.
    fn options(self) -> &'static str {
        match self {
            Durability::Relaxed => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            Durability::Production => "-c fsync=on -c synchronous_commit=on -c full_page_writes=on",
        }
    }
}

fn pg_bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Path::new(&dir).join(name);
    }
    let debian = Path::new("/usr/lib/postgresql/15/bin").join(name);
    if which(name).is_none() && debian.exists() {
        return debian;
    }
    PathBuf::from(name)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TestPostgres {
    /// initdb + pg_ctl start on a free port with a private socket dir. Durability settings
    /// are relaxed (fsync off): the data is thrown away anyway.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Durability::Relaxed)
    }

    /// The same with the given durability (the benchmark asks for `Production`). The data
    /// directory is under the system temp dir, which must be a real disk for `Production`
    /// to mean anything (it is on the machines we measure on; the report names it).
    pub fn start_with(durability: Durability) -> anyhow::Result<Self> {
        Self::start_configured(durability, "")
    }

    /// A server that offers TLS (`ssl = on`) with `ca`'s server certificate, issued for
    /// `127.0.0.1` and `localhost`; plaintext connections are still accepted (what a client
    /// that requires TLS must refuse is tested against a server without it).
    pub fn start_with_tls(ca: &crate::tls::TestCa) -> anyhow::Result<Self> {
        let mut pg = Self::empty(Durability::Relaxed, "")?;
        let cert = pg.dir.path().join("server.crt");
        let key = pg.dir.path().join("server.key");
        std::fs::write(&cert, &ca.server_cert_pem)?;
        std::fs::write(&key, &ca.server_key_pem)?;
        // The server refuses a key that others can read, or that is not its user's.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        }
        if pg.run_as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .args([&cert, &key])
                .status()
                .context("chown the certificate to postgres")?;
            if !status.success() {
                bail!("chown of the server certificate failed");
            }
        }
        pg.extra_options = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            path_str(&cert)?,
            path_str(&key)?
        );
        pg.init_and_start()
    }

    /// initdb, then start with `extra_options` after the durability's.
    fn start_configured(durability: Durability, extra_options: &str) -> anyhow::Result<Self> {
        Self::empty(durability, extra_options)?.init_and_start()
    }

    fn init_and_start(self) -> anyhow::Result<Self> {
        let pg = self;
        let data = pg.data_dir();
        pg.run(
            &pg_bin("initdb"),
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        .context("initdb")?;
        pg.start_on_a_free_port()
    }

    /// A streaming standby of `primary`: `pg_basebackup -R` of it (which writes
    /// `standby.signal` and the `primary_conninfo` to follow it), started on a port of its
    /// own. `cluster_name` is the name the primary's `synchronous_standby_names` refers to.
    fn standby_of(primary: &TestPostgres, cluster_name: &str) -> anyhow::Result<Self> {
        let pg = Self::empty(
            primary.durability,
            &format!("{} -c cluster_name={cluster_name}", primary.extra_options),
        )?;
        pg.run(
            &pg_bin("pg_basebackup"),
            &[
                // application_name given here lands in the written `primary_conninfo`: a
                // PGAPPNAME in the environment would otherwise name the standby.
                "-d",
                &format!(
                    "host=127.0.0.1 port={} user=postgres application_name={cluster_name}",
                    primary.port
                ),
                "-D",
                path_str(&pg.data_dir())?,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        )
        .context("pg_basebackup")?;
        pg.start_on_a_free_port()
    }

    /// A temp directory the server's user owns, nothing in it yet.
    fn empty(durability: Durability, extra_options: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ca-pg-").tempdir()?;
        let run_as_postgres = is_root();
        if run_as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .context("chown temp dir to postgres")?;
            if !status.success() {
                bail!("chown of {} to postgres failed", dir.path().display());
            }
        }
        Ok(Self {
            dir,
            port: 0,
            run_as_postgres,
            durability,
            extra_options: extra_options.to_string(),
        })
    }

    fn start_on_a_free_port(mut self) -> anyhow::Result<Self> {
        // Retry on a port collision with another process starting at the same moment.
        let mut last_err = None;
        for _ in 0..5 {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(self),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 {} -c max_connections=400 \
             -c shared_buffers=128MB {}",
            self.port,
            path_str(self.dir.path())?,
            self.durability.options(),
            self.extra_options,
        );
        self.run(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-l",
                path_str(&self.log_file())?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .with_context(|| format!("pg_ctl start; log:\n{}", self.log_tail()))
    }

    /// Stops the server; `start_again` brings it back on the same port.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.stop_with_mode("fast")
    }

    pub fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl_start()
    }

    /// `pg_ctl restart -m fast`: every session is terminated, the server comes back on the
    /// same port (what an operator's restart or a failover does to the services).
    pub fn restart(&self) -> anyhow::Result<()> {
        // pg_ctl restart reuses the options of the last start (postmaster.opts); the log
        // file must be given again or the server would write to our pipe.
        self.run(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-l",
                path_str(&self.log_file())?,
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        )
        .with_context(|| format!("pg_ctl restart; log:\n{}", self.log_tail()))
    }

    /// SIGKILL to the postmaster and every process it started, at once: the server dies as
    /// on a lost machine (no shutdown checkpoint, no goodbye to the standby, sessions cut in
    /// the middle of their transactions). Returns once the postmaster is gone.
    pub fn kill_9(&self) -> anyhow::Result<()> {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let pid: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("no pid in postmaster.pid")?;
        // Stopped first: a stopped postmaster neither forks a new backend nor reaps an
        // exiting one, so the list of its children is complete and every pid in it stays
        // ours (a zombie at worst) until the one kill(1) below.
        let pid_arg = pid.to_string();
        Command::new("kill")
            .args(["-STOP", &pid_arg])
            .status()
            .context("kill -STOP")?;
        let children = Command::new("pgrep")
            .args(["-P", &pid_arg])
            .output()
            .context("pgrep")?;
        let mut pids = vec![pid_arg];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
        // Its status is not the verdict (a child may already be a zombie): the postmaster's
        // disappearance below is.
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .status()
            .context("kill -KILL")?;
        for _ in 0..200 {
            if !process_alive(pid) {
                // Gone for good: no later `pg_ctl stop` (on drop) may signal a process that
                // reuses the pid.
                let _ = std::fs::remove_file(self.data_dir().join("postmaster.pid"));
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        bail!("postmaster {pid} still alive 5 s after SIGKILL")
    }

    /// `pg_ctl promote`: a standby becomes a primary that accepts writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        self.run(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                path_str(&self.data_dir())?,
                "-w",
                "-t",
                "60",
                "promote",
            ],
        )
        .with_context(|| format!("pg_ctl promote; log:\n{}", self.log_tail()))
    }

    fn stop_with_mode(&self, mode: &str) -> anyhow::Result<()> {
        self.run(
            &pg_bin("pg_ctl"),
            &["-D", path_str(&self.data_dir())?, "-m", mode, "-w", "stop"],
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory's path (the benchmark reports where the WAL was flushed to).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Superuser URL of the `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The server must not inherit our stdout: a test runner waits for it to close.
        let output = cmd
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        if !output.status.success() {
            bail!(
                "{} failed: {}{}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.data_dir()) {
            let _ = self.run(
                &pg_bin("pg_ctl"),
                &["-D", data, "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

/// Whether `pid` still runs (a zombie waiting for a parent that never reaps it does not).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// How a standby follows its primary (#23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    /// The primary's `synchronous_standby_names` names the standby and
    /// `synchronous_commit = on`: a commit is acknowledged only once the standby has flushed
    /// its WAL, so a promoted standby holds every acknowledged transaction.
    Synchronous,
    /// The standby streams as fast as it can; a commit is acknowledged on the primary's flush
    /// alone, and what had not reached the standby is lost with the primary.
    Asynchronous,
}

/// A primary and one streaming standby (#23), for failover tests: services connect to
/// `admin_url`'s multi-host form and `target_session_attrs=read-write` finds whichever of the
/// two accepts writes. Both are relaxed on `fsync` (the tests kill processes, not the
/// machine: the page cache survives) but wait for the commit as production does
/// (`synchronous_commit = on`), which is what synchronous replication is about.
pub struct ReplicatedPostgres {
    pub primary: TestPostgres,
    pub standby: TestPostgres,
    pub replication: Replication,
}

/// A superuser session on one server; its connection is driven by a task that ends when the
/// client is dropped.
async fn session(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The standby's `cluster_name`: what it reports as its `application_name` to the primary.
const STANDBY_NAME: &str = "standby1";

impl ReplicatedPostgres {
    /// Starts the primary, then the standby from a base backup of it, waits until it
    /// streams, and (synchronous) names it in `synchronous_standby_names` only then: a
    /// synchronous primary without its standby would make every commit wait forever.
    pub async fn start(replication: Replication) -> anyhow::Result<Self> {
        let primary = TestPostgres::start_configured(
            Durability::Relaxed,
            "-c synchronous_commit=on -c wal_level=replica -c max_wal_senders=5 \
             -c wal_keep_size=256MB",
        )?;
        let standby = TestPostgres::standby_of(&primary, STANDBY_NAME)?;
        let pair = Self {
            primary,
            standby,
            replication,
        };
        pair.wait_for_state("streaming", "async").await?;
        if replication == Replication::Synchronous {
            let client = session(&pair.primary.admin_url()).await?;
            // Two statements: ALTER SYSTEM refuses the implicit transaction of a multi-statement
            // query. Only now, after the base backup: a standby that copied this setting would
            // name itself once promoted and wait for itself on every commit.
            client
                .batch_execute(&format!(
                    "ALTER SYSTEM SET synchronous_standby_names = '\"{STANDBY_NAME}\"'"
                ))
                .await?;
            client.batch_execute("SELECT pg_reload_conf()").await?;
            pair.wait_for_state("streaming", "sync").await?;
        }
        Ok(pair)
    }

    /// Stops the standby's WAL receiver (its `primary_conninfo` emptied and reloaded; `ALTER
    /// SYSTEM` is allowed on a standby): from now on it falls behind, as behind a network
    /// partition. A synchronous primary then holds every commit until it dies; an
    /// asynchronous one acknowledges commits its standby will never have.
    pub async fn detach_standby(&self) -> anyhow::Result<()> {
        let client = session(&self.standby.admin_url()).await?;
        client
            .batch_execute("ALTER SYSTEM SET primary_conninfo = ''")
            .await?;
        client.batch_execute("SELECT pg_reload_conf()").await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let receivers: i64 = client
                .query_one("SELECT count(*) FROM pg_stat_wal_receiver", &[])
                .await?
                .get(0);
            if receivers == 0 {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the standby's WAL receiver still runs 30 s after it was detached");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Superuser URL naming both servers, primary first; `target_session_attrs=read-write`
    /// makes a connection skip the one that does not accept writes (or does not answer).
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// Waits until the primary sees the standby in `state` with `sync_state`.
    async fn wait_for_state(&self, state: &str, sync_state: &str) -> anyhow::Result<()> {
        let client = session(&self.primary.admin_url()).await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let seen = client
                .query_opt(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1",
                    &[&STANDBY_NAME],
                )
                .await?
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
            if seen.as_ref().map(|(a, b)| (a.as_str(), b.as_str())) == Some((state, sync_state)) {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the standby never reached {state}/{sync_state}: {seen:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 temp path")
}

/// Where the tests' PostgreSQL comes from.
pub enum PgEnv {
    /// `DATABASE_URL` (an admin URL on a server started by `localnet` or by the user).
    External(String),
    /// A server this process started.
    Owned(Arc<TestPostgres>),
}

impl PgEnv {
    pub fn from_env_or_start() -> anyhow::Result<Self> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(PgEnv::External(url)),
            _ => Ok(PgEnv::Owned(Arc::new(TestPostgres::start()?))),
        }
    }

    pub fn admin_url(&self) -> String {
        match self {
            PgEnv::External(url) => url.clone(),
            PgEnv::Owned(pg) => pg.admin_url(),
        }
    }

    /// Creates an empty database with a unique name and returns its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        let admin = self.admin_url();
        let (client, connection) = tokio_postgres::connect(&admin, NoTls)
            .await
            .with_context(|| "connecting to the test PostgreSQL server")?;
        let conn = tokio::spawn(connection);
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .context("CREATE DATABASE")?;
        drop(client);
        let _ = conn.await;
        Ok(with_database(&admin, &name))
    }
}

/// Replaces the database name of a postgres:// URL (keeping any query string).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port/dbname: the path starts at the first '/' after "//".
    let after_scheme = base.find("//").map(|i| i + 2).unwrap_or(0);
    let path_start = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh database for one test. Keeps the server alive while the test holds it.
pub struct TestDb {
    pub url: String,
    pub env: PgEnv,
}

/// A fresh, empty database (not migrated: the code under test migrates, as in production).
pub async fn test_db() -> anyhow::Result<TestDb> {
    let env = PgEnv::from_env_or_start()?;
    let url = env.create_database().await?;
    Ok(TestDb { url, env })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "t2"),
            "postgres://u:p@h:1/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t3"), "postgres://h:1/t3");
    }
}
