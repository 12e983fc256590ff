//! Small shared pieces: URLs, histograms, deterministic bytes, limits.

use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// One `http://host:port/path?query` URL, split for a raw HTTP/1.1 client.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to.
    pub addr: String,
    /// The `Host` header.
    pub authority: String,
    /// Path and query, as sent on the request line.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("{url:?}: only http:// URLs (the bench runs on loopback)");
        }
        let auth = uri.authority().context("URL without a host")?;
        let port = auth.port_u16().unwrap_or(80);
        Ok(Self {
            addr: format!("{}:{port}", auth.host()),
            authority: auth.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// Reads a file of URLs, one per line (blank lines ignored).
pub fn read_url_file(path: &std::path::Path) -> anyhow::Result<Vec<Target>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let targets: Vec<Target> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Target::parse)
        .collect::<Result<_, _>>()?;
    if targets.is_empty() {
        bail!("{}: no URLs", path.display());
    }
    Ok(targets)
}

/// Parses `Name: value` headers.
pub fn parse_headers(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} is not `Name: value`"))?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A latency histogram in microseconds, 1 µs to 10 minutes.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().clamp(1, u128::from(u64::MAX)) as u64);
}

/// Percentiles in milliseconds.
pub fn percentiles_ms(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| round3(v as f64 / 1000.0);
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "count": h.len(),
        "min": ms(h.min()),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": round3(h.mean() / 1000.0),
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// xorshift64*: fast, deterministic, good enough for offsets and bytes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0), ignoring the negligible modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// FNV-1a, to derive a seed from a key.
pub fn seed_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` pseudo-random bytes, a function of `(seed, offset)` in whole
/// 8-byte words, so an object can be generated part by part.
pub fn bytes_at(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    debug_assert_eq!(offset % 8, 0);
    let mut rng = Rng::new(seed ^ offset.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Raises the soft limit of open files to the hard one: thousands of
/// slow clients each hold a socket.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Seconds as a `Duration`, refusing negative or absurd values.
pub fn secs(s: f64) -> anyhow::Result<Duration> {
    if !(0.0..=3600.0).contains(&s) {
        bail!("{s} s is outside 0..=3600");
    }
    Ok(Duration::from_secs_f64(s))
}
