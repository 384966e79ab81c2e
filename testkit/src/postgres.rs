//! A PostgreSQL server of one test's own (its own data folder and port), which the test can
//! SIGKILL (the postmaster and every backend, as a crashed machine would leave them) and
//! start again, so Postgres recovers from its WAL. Settings are the
//! durable defaults (`fsync`, `synchronous_commit` on): what was acknowledged must survive.
//!
//! `initdb` and `postgres` refuse to run as root, so under root (CI) they run as the
//! `postgres` user through `runuser`, on a folder it owns.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian puts PostgreSQL 15's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PostgresServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` with `args`, as the `postgres` user when this process is root.
fn command(program: &str, args: &[&str]) -> Command {
    let path = format!("{BIN}/{program}");
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]).args(args);
        c
    } else {
        let mut c = Command::new(path);
        c.args(args);
        c
    }
}

impl PostgresServer {
    /// A new cluster (`initdb`) on a free port, started and answering.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the data folder to postgres");
        }
        let data = dir.path().join("data");
        let out = command(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-instructions",
            ],
        )
        .output()
        .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Self {
            port: crate::process::free_port(),
            dir,
            child: None,
        };
        server.restart().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Start the server (again) on the same data and port; Postgres recovers from its WAL
    /// if it was killed. Waits until it accepts connections; a start refused (the old shared
    /// memory not yet let go, say) is tried again until the deadline.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let url = self.url("postgres");
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
        self.child = Some(self.spawn());
        loop {
            use sqlx::Connection;
            if sqlx::PgConnection::connect(&url).await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the test's Postgres did not accept connections within 60 s:\n{}",
                self.log()
            );
            let child = self.child.as_mut().expect("spawned");
            if child.try_wait().is_ok_and(|status| status.is_some()) {
                self.child = Some(self.spawn());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The postmaster, started on this server's data and port, logging to its log file.
    fn spawn(&self) -> Child {
        let data = self.data();
        let port = self.port.to_string();
        let sockets = self.dir.path().to_str().unwrap().to_owned();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .expect("log file");
        command(
            "postgres",
            &[
                "-D",
                data.to_str().unwrap(),
                "-p",
                &port,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                &format!("unix_socket_directories={sockets}"),
                "-c",
                "max_connections=200",
            ],
        )
        // A process group of its own, so no signal to the server ever reaches the test.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("postgres starts")
    }

    /// SIGKILL the postmaster and every process it started, as a crashed machine would leave
    /// them, and wait until all are gone. Each backend is a process group of its own (Postgres
    /// calls `setsid()` in every child), so killing the postmaster's group is not enough: a
    /// backend left alive notices the postmaster's death only at its next wait, and while it
    /// is attached to the old shared memory a new postmaster refuses to start.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let postmaster = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|f| f.lines().next()?.trim().parse::<u32>().ok());
        // Stopped first, the postmaster can start no new backend while its children are
        // listed and killed.
        if let Some(pid) = postmaster {
            signal("STOP", pid);
        }
        let mut doomed = vec![child.id()];
        doomed.extend(postmaster);
        doomed.extend(descendants(&doomed));
        for &pid in &doomed {
            signal("KILL", pid);
        }
        let _ = child.wait();
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while doomed.iter().any(|&pid| alive(pid)) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The dead postmaster's lock files stay behind, as after a power cut; its PID may by
        // now be another postgres process's, which would stop the restart. Recovery does not
        // need them (pg_control says the shutdown was not clean).
        // The same goes for the socket's lock file.
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        let socket = format!(".s.PGSQL.{}", self.port);
        let _ = std::fs::remove_file(self.dir.path().join(format!("{socket}.lock")));
        let _ = std::fs::remove_file(self.dir.path().join(socket));
    }

    /// What the server has logged (crash recovery among it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send `signal` (a name, as `kill -s` takes it) to process `pid`.
fn signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Fields after the command's closing parenthesis in `/proc/{pid}/stat`: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// Whether `pid` is alive; a zombie counts as gone (it holds no memory of Postgres's).
fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f.first().map(String::as_str), Some("Z" | "X")))
}

/// Every live process descended from one of `roots` (children, theirs, and so on).
fn descendants(roots: &[u32]) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_fields(pid)?.get(1)?.parse().ok()?)))
        .collect();
    let mut found: Vec<u32> = roots.to_vec();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|&&(pid, ppid)| ppid == parent && !found.contains(&pid))
                .map(|&(pid, _)| pid)
                .collect::<Vec<_>>(),
        );
        next += 1;
    }
    found.split_off(roots.len())
}
