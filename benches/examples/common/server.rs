//! What every HTTP example does first: start `quiver serve` on a temp data directory (or a given one)
//! and a free port, wait until `/readyz` answers 200 (collections open, models loaded), and stop it at
//! the end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `quiver serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The temp data directory; `None` for a directory the caller gave.
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `bin serve` with `extra` flags and waits until it is ready.
    pub fn start(bin: &str, extra: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::start_at(bin, dir.path(), extra);
        server.dir = Some(dir);
        server
    }

    /// [`Server::start`] on the data directory `dir`, which outlives the server.
    pub fn start_at(bin: &str, dir: &Path, extra: &[String]) -> Self {
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir)
            .args(["--log", "warn", "serve", "--port", "0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start quiver");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("quiver exited").unwrap();
            if let Some(addr) = line.split("listening on ").nth(1) {
                break addr.trim().to_string();
            }
        };
        // Keep reading, so the server never blocks on a full stderr pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        while agent
            .get(format!("{base}/readyz"))
            .call()
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            base,
            dir: None,
        }
    }

    /// Polls `GET /collections/NAME` until `done` holds for its `result`; returns that response body.
    #[allow(dead_code)] // embed_load has no collections
    pub fn collection_info_when(
        &self,
        agent: &ureq::Agent,
        name: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let info: serde_json::Value = agent
                .get(format!("{}/collections/{name}", self.base))
                .call()
                .unwrap()
                .body_mut()
                .read_json()
                .unwrap();
            if done(&info["result"]) {
                return info;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM (a clean shutdown), then waits for the process; the temp data directory is returned,
    /// so the caller may open it in-process (it is deleted when dropped). Panics for a server started
    /// with [`Server::start_at`] (use [`Server::stop_at`]).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.shut_down();
        self.dir.take().expect("started on a temp directory")
    }

    /// Stops a server started with [`Server::start_at`].
    #[allow(dead_code)] // only late_interaction keeps its directory
    pub fn stop_at(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
