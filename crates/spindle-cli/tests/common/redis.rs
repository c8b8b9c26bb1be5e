//! A private redis-server for the CLI's tests (tests/status.rs,
//! tests/worker.rs): a Unix socket in a fresh directory, no persistence,
//! killed by its pid when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spindle_cluster::{Broker, RedisBroker};

pub(crate) struct Redis {
    child: Child,
    dir: PathBuf,
}

impl Redis {
    /// Starts one in a directory named after `tag` and this process.
    pub(crate) fn start(tag: &str) -> Redis {
        let dir = std::env::temp_dir().join(format!("spindle-{tag}-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(dir.join("redis.sock"))
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is needed (.ci/run installs it; Debian: apt-get install redis-server): {e}")
            });
        Redis { child, dir }
    }

    /// Its socket's path.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Its URL, `unix://PATH`.
    pub(crate) fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Queue `tasks`' broker, once the server answers (within `within`).
    pub(crate) fn broker(&self, within: Duration) -> RedisBroker {
        let since = Instant::now();
        loop {
            match RedisBroker::connect(&self.url(), "tasks") {
                Ok(b) if b.counts().is_ok() => return b,
                Ok(_) => {}
                Err(e) => assert!(since.elapsed() < within, "redis-server never answered: {e}"),
            }
            assert!(since.elapsed() < within, "redis-server never answered");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
