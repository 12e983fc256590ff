//! A real PostgreSQL on loopback, started once per test binary; each test
//! gets a database of its own (`CREATE DATABASE`), so tests stay isolated
//! and run in parallel.
//!
//! The server comes from Debian's `postgresql` package, which the README's
//! test command installs; a missing server fails the test and says so. The
//! cluster lives in a temp directory, listens on 127.0.0.1 only (no Unix
//! socket), on a free port, with password (SCRAM) authentication as in
//! production. PostgreSQL refuses to run as root, so as root (CI) it runs
//! as the package's `postgres` user (`setpriv`, which execs without a
//! parent process, so signals reach the server itself). A small shell
//! wrapper stops it (fast shutdown) and removes its directory when this
//! process's end of a pipe closes, so no server outlives the tests, even
//! after a panic or abort.
//!
//! Shared by the integration tests and the catalog's unit tests (which
//! include this file by path): it uses nothing of either crate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

/// The superuser's password (the server is on loopback, for tests only).
const PASSWORD: &str = "playback-test-pg";

pub struct Postgres {
    port: u16,
    /// Keeps the wrapper's stdin open: the server lives as long as it.
    _child: Mutex<Child>,
}

static PG: OnceLock<Postgres> = OnceLock::new();

/// The shared PostgreSQL, started on first use.
pub fn shared() -> &'static Postgres {
    PG.get_or_init(start)
}

/// A new, empty database on the shared server: its URL.
pub async fn fresh_database() -> String {
    shared().create_database().await
}

/// The directory of `initdb` and `postgres`: `PLAYBACK_GATEWAY_PG_BIN`,
/// else `PATH`, else Debian's newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> PathBuf {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("PLAYBACK_GATEWAY_PG_BIN") {
        let d = PathBuf::from(d);
        assert!(
            has_server(&d),
            "PostgreSQL is missing: PLAYBACK_GATEWAY_PG_BIN={} has no `initdb` and `postgres`",
            d.display()
        );
        return d;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(d) = on_path.into_iter().find(|d| has_server(d)) {
        return d;
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_server(d))
        .collect();
    debian.sort();
    match debian.pop() {
        Some((_, d)) => d,
        None => panic!(
            "PostgreSQL is missing: the catalog tests need its server (`initdb` and `postgres`, \
             from Debian's `postgresql` package, which ./scripts/test installs) in \
             /usr/lib/postgresql/N/bin or on PATH, or PLAYBACK_GATEWAY_PG_BIN=DIR"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Creates the cluster and starts the server; the wrapper removes `$D`
/// once the server has stopped. Values come in as environment variables,
/// so that no path needs quoting.
const WRAPPER: &str = r#"
log="$D/server.log"
as=
if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "PostgreSQL refuses to run as root, and there is no postgres user to run it as" >"$log"
    exit 1
  fi
  chown -R postgres: "$D"
  as="setpriv --reuid=postgres --regid=postgres --init-groups --"
fi
# ICU en-US as the database's default collation: not byte order, so the
# tests show that the schema's COLLATE "C" columns sort as SQLite does.
if ! $as "$BIN/initdb" -D "$D/data" -U postgres --pwfile="$D/password" \
     --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
     --locale-provider=icu --icu-locale=en-US >"$D/initdb.log" 2>&1; then
  cat "$D/initdb.log" >"$log"
  exit 1
fi
# A simple command (no function, no subshell), so that $! is the server.
$as "$BIN/postgres" -D "$D/data" -h 127.0.0.1 -p "$PORT" -k "" \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=400 >>"$log" 2>&1 &
pid=$!
cat >/dev/null
# SIGINT: fast shutdown (the server installs its own handler, so the
# shell ignoring SIGINT for background jobs does not matter).
kill -INT "$pid"
wait "$pid"
rm -rf "$D"
"#;

fn start() -> Postgres {
    let bin = bin_dir();
    // Kept, not deleted on drop: the wrapper removes it after the server
    // stops (a static is never dropped anyway).
    let dir = tempfile::Builder::new()
        .prefix("playback-pg-")
        .tempdir()
        .expect("temp dir for PostgreSQL")
        .keep();
    std::fs::write(dir.join("password"), PASSWORD).unwrap();
    let port = free_port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .env("BIN", &bin)
        .env("D", &dir)
        .env("PORT", port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting PostgreSQL");
    let log = dir.join("server.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("ready to accept connections") {
            break;
        }
        let exited = child.try_wait().ok().flatten().is_some();
        assert!(
            !exited && Instant::now() < deadline,
            "PostgreSQL ({}) did not start on 127.0.0.1:{port}; its log:\n{text}",
            bin.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Postgres {
        port,
        _child: Mutex::new(child),
    }
}

impl Postgres {
    /// The URL of database `name`, as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// A new, empty database: its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connecting to the test PostgreSQL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        self.url(&name)
    }
}
