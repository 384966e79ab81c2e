//! A service as a real process of the test's own, to SIGKILL mid-flight and start again: its
//! settings are the test's (`Source` overrides become `MARQUEE_…` variables), its output goes
//! to a file kept for the failure message, and it is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use marquee_platform::config::Source;

/// A built binary of the workspace (`cargo build --workspace --bins`, which `make test` runs
/// before the tests): beside the test binary's `deps` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the target folder");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A free port on loopback, for a process that must be told its port before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `MARQUEE_…` variables for `source`'s overrides (`database.url` → `MARQUEE_DATABASE__URL`).
pub fn env_vars(source: &Source) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "MARQUEE_CONFIG_DIR".to_owned(),
            source.dir.display().to_string(),
        ),
        ("MARQUEE_ENV".to_owned(), source.environment.clone()),
    ];
    for (key, value) in &source.overrides {
        let name = format!("MARQUEE_{}", key.replace('.', "__").to_uppercase());
        vars.push((name, value.clone()));
    }
    vars
}

/// A running service process.
pub struct ServiceProcess {
    binary: PathBuf,
    vars: Vec<(String, String)>,
    args: Vec<String>,
    log: tempfile::NamedTempFile,
    child: Option<Child>,
}

impl ServiceProcess {
    /// Start the workspace's binary `name` with `source`'s settings and `args`.
    pub fn start(name: &str, source: &Source, args: &[&str]) -> Self {
        let mut me = Self {
            binary: binary(name),
            vars: env_vars(source),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            log: tempfile::NamedTempFile::new().expect("a log file"),
            child: None,
        };
        me.spawn();
        me
    }

    fn spawn(&mut self) {
        let out = self.log.reopen().expect("the log file");
        let err = out.try_clone().expect("the log file");
        let child = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// SIGKILL: no clean stop, nothing handed back; waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again, with the same settings.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Whether it is still running (it has not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What it has printed so far (for a failure's message).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Wait until `url` (its health probe, say) answers 200, within `deadline`; panics with
    /// the process's output if it exits or never answers.
    pub async fn wait_healthy(&mut self, url: &str, deadline: Duration) {
        let http = reqwest::Client::new();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                self.running(),
                "{} exited:\n{}",
                self.binary.display(),
                self.output()
            );
            assert!(
                tokio::time::Instant::now() < end,
                "{} not healthy at {url} within {deadline:?}:\n{}",
                self.binary.display(),
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_become_marquee_variables() {
        let source = Source::for_tests("/tmp/config")
            .set("database.url", "postgres://x/y")
            .set("redis.events_key", "k");
        let vars = env_vars(&source);
        assert!(vars.contains(&("MARQUEE_DATABASE__URL".into(), "postgres://x/y".into())));
        assert!(vars.contains(&("MARQUEE_REDIS__EVENTS_KEY".into(), "k".into())));
        assert!(vars.contains(&("MARQUEE_ENV".into(), "test".into())));
        assert!(vars.contains(&("MARQUEE_CONFIG_DIR".into(), "/tmp/config".into())));
    }
}
