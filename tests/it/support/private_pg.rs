//! A PostgreSQL cluster of a test's own, on its own port, so the test can stop and start
//! it without disturbing the shared server other tests use. Needs PostgreSQL's server
//! binaries; run as root, it runs them as the `postgres` user.

use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// Server settings beyond the port and sockets (TLS).
    extra: String,
}

fn bin_dir() -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(&root)
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .map(|e| e.unwrap().path())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").join("bin")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl PrivatePostgres {
    /// Initializes and starts a cluster with trust authentication for `postgres`.
    pub fn start() -> Self {
        let this = Self::init();
        this.start_server();
        this
    }

    /// As [`start`](Self::start), with server `settings` (`-c name=value ...`).
    pub fn start_with_settings(settings: &str) -> Self {
        let mut this = Self::init();
        this.extra = format!(" {settings}");
        this.start_server();
        this
    }

    /// As [`start`](Self::start), with TLS offered under the certificate and key
    /// given (PEM); plaintext connections are still accepted.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Self {
        let mut this = Self::init();
        let cert = this.dir.join("server.crt");
        let key = this.dir.join("server.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        // PostgreSQL refuses a key others can read, and runs as `postgres` under root.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown").arg("postgres:postgres").args([&cert, &key]).status().unwrap();
            assert!(status.success());
        }
        this.extra =
            format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert.display(), key.display());
        this.start_server();
        this
    }

    fn init() -> Self {
        let dir = std::env::temp_dir().join(format!("billing-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let this = Self {
            dir,
            port: super::process::free_port().parse::<std::net::SocketAddr>().unwrap().port(),
            bin: bin_dir(),
            extra: String::new(),
        };
        if is_root() {
            assert!(
                Command::new("chown").args(["postgres:postgres"]).arg(&this.dir).status().unwrap().success()
            );
        }
        this.pg("initdb", &["-D", &this.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        this
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let out =
            self.command(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off{}",
            self.port,
            self.dir.display(),
            self.extra
        );
        let log = self.dir.join("log").display().to_string();
        self.pg("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    pub fn stop_server(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
