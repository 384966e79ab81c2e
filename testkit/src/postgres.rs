//! A PostgreSQL server of one test's own (its own data folder and port), which the test can
//! SIGKILL (the postmaster's whole process group, backends included, as a crashed machine
//! would leave it) and start again, so Postgres recovers from its WAL. Settings are the
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
    /// if it was killed. Waits until it accepts connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let data = self.data();
        let port = self.port.to_string();
        let sockets = self.dir.path().to_str().unwrap().to_owned();
        let log = std::fs::File::create(self.dir.path().join("log")).expect("log file");
        let child = command(
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
        // A process group of its own, so a kill takes the postmaster and every backend and
        // never the test.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("postgres starts");
        self.child = Some(child);
        let url = self.url("postgres");
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL the postmaster's whole process group (every backend with it), and wait until
    /// it is gone.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let postmaster = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|f| f.lines().next()?.trim().parse::<u32>().ok());
        let mut groups = vec![child.id()];
        if let Some(pid) = postmaster
            && let Some(group) = process_group(pid)
        {
            groups.push(group);
        }
        for group in groups {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{group}")])
                .status();
        }
        if let Some(pid) = postmaster {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            for _ in 0..400 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    || process_group(pid).is_none()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let _ = child.wait();
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

/// The process group of `pid`, while it is alive (field 5 of `/proc/{pid}/stat`); a zombie
/// counts as gone.
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state, ppid, pgrp.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.nth(1)?.parse().ok()
}
