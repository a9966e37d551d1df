//! The real `billing-commitments` binary run as a child process, and the external tools
//! (grpcurl, Python) installed by scripts/tools.sh.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from the project's venv; panics with the fix when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = root().join(".tools/venv/bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/tools.sh (scripts/test does)", path.display());
    path
}

/// Runs the binary with `args` against `database_url`, returning stdout; panics on failure.
pub fn admin(database_url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_billing-commitments"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run binary");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// A `serve` child process; killed on drop if still running.
pub struct ServeProcess {
    pub child: Child,
    pub address: String,
    /// Every line the process has logged so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Says the address once `serve` listens.
    listening: mpsc::Receiver<String>,
}

impl ServeProcess {
    /// Starts `serve` on an ephemeral port with JSON logs and waits for its address.
    pub fn start(database_url: &str, extra: &[&str]) -> Self {
        Self::start_logging(database_url, extra, "info")
    }

    /// Like `start`, with `RUST_LOG` set to `filter`.
    pub fn start_logging(database_url: &str, extra: &[&str], filter: &str) -> Self {
        let mut process = Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_billing-commitments")),
            database_url,
            "127.0.0.1:0",
            extra,
            filter,
        );
        process.address = process.wait_listening();
        process
    }

    /// Starts `serve` listening on `listen` without waiting for it to listen (it opens
    /// the port only once the database is migrated).
    pub fn launch(database_url: &str, listen: &str, extra: &[&str]) -> Self {
        let mut process = Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_billing-commitments")),
            database_url,
            listen,
            extra,
            "info",
        );
        process.address = listen.to_owned();
        process
    }

    /// Like `start`, run by `wrapper` (e.g. `prlimit --nofile=48:48`), which execs the
    /// service with the arguments that follow its own.
    pub fn start_under(wrapper: &[&str], database_url: &str, extra: &[&str]) -> Self {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_billing-commitments"));
        let mut process = Self::spawn(command, database_url, "127.0.0.1:0", extra, "info");
        process.address = process.wait_listening();
        process
    }

    fn spawn(mut command: Command, database_url: &str, listen: &str, extra: &[&str], filter: &str) -> Self {
        let mut child = command
            .args(["serve", "--listen", listen, "--log-format", "json", "--health-check-interval", "100ms"])
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, listening) = mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "serving gRPC"
                {
                    let _ = tx.send(v["address"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        Self { child, address: String::new(), logs, listening }
    }

    /// The address `serve` logs when it opens its port.
    fn wait_listening(&self) -> String {
        self.listening.recv_timeout(Duration::from_secs(30)).expect("serve printed its address")
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.signal_term();
        self.wait_exit(limit)
    }

    pub fn signal_term(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }

    /// The exit status, if the process ends within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs grpcurl (plaintext) against `address`; returns (success, stdout, stderr).
pub fn grpcurl(address: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(tool("grpcurl"))
        .arg("-plaintext")
        .args(args.iter().take(args.len().saturating_sub(1)))
        .arg(address)
        .args(args.last())
        .output()
        .expect("run grpcurl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Generates the Python client into a fresh temporary directory and returns it.
pub fn generated_python_client() -> tempdir::TempDir {
    let dir = tempdir::TempDir::new();
    run_ok(Command::new(root().join("scripts/gen-clients")).args(["python", dir.path().to_str().unwrap()]));
    dir
}

/// Runs `command` to completion, panicking with its output when it fails; returns stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// Runs a scenario of tests/e2e/client.py and parses the JSON it prints.
pub fn python_scenario(generated: &Path, address: &str, key: &str, scenario: &str) -> serde_json::Value {
    let out = Command::new(tool("python"))
        .arg(root().join("tests/e2e/client.py"))
        .args([generated.to_str().unwrap(), address, key, scenario])
        .output()
        .expect("run python client");
    assert!(out.status.success(), "python client failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

/// A minimal temporary directory, removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("billing-e2e-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The Prometheus text of a `--metrics-listen` endpoint.
pub fn scrape(addr: &str) -> String {
    http_get(addr, "/metrics").1
}

/// GETs `path` from the HTTP server at `addr`: the status code and the whole response.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("metrics endpoint listens");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, response)
}

/// The value of an unlabelled gauge in a scrape, if present.
pub fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A local address nothing listens on yet.
pub fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}
