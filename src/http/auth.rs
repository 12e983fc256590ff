//! Credentials on requests: the admin token, account API keys (HTTP Basic
//! `AccountSid:secret` or `Bearer secret`), signed playback links, and open
//! mode; rate limits per credential and per address for failures.
//!
//! SECURITY: a credential that is presented is always checked, in open
//! mode too: a wrong key or a tampered link is refused, never ignored.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::access::{self, LinkError, LinkParams, Principal};
use crate::app::AppState;
use crate::server::client_key;
use crate::sid::{AccountSid, RecordingSid};

/// Rate limits, shared by every request.
///
/// SECURITY: the maps are keyed by what a client controls, so they are
/// pruned (a key whose bucket is full again is dropped, at most once a
/// [`PRUNE_EVERY`]) and the failure map is bounded ([`MAX_FAILING`]):
/// past the bound a client that fails to authenticate gets 429 at once,
/// which costs nothing to one that authenticates. IPv6 clients are keyed
/// by their /64, which one host usually has to itself.
pub struct Limits {
    per_credential: DefaultKeyedRateLimiter<String>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    retry_after: Duration,
    /// When the maps were last pruned, in milliseconds since `born`.
    pruned: AtomicU64,
    born: Instant,
    prune_every: Duration,
}

/// How often the rate limiters drop keys that are back to a full bucket.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most client addresses (or /64s) with recent failures held at once:
/// about 4.5 MB at 45 bytes each.
pub const MAX_FAILING: usize = 100_000;

impl Limits {
    /// `per_second` requests per credential (burst twice that), and
    /// `failures_per_minute` failed authentications per client address.
    pub fn new(per_second: u32, failures_per_minute: u32) -> Self {
        Self::pruned_every(per_second, failures_per_minute, PRUNE_EVERY)
    }

    /// As [`new`](Self::new), pruning every `prune_every`.
    pub fn pruned_every(per_second: u32, failures_per_minute: u32, prune_every: Duration) -> Self {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            per_credential: RateLimiter::keyed(
                Quota::per_second(nz(per_second)).allow_burst(nz(per_second.saturating_mul(2))),
            ),
            failures: RateLimiter::keyed(
                Quota::per_minute(nz(failures_per_minute)).allow_burst(nz(failures_per_minute)),
            ),
            retry_after: Duration::from_secs(if failures_per_minute >= 60 {
                1
            } else {
                60 / failures_per_minute.max(1) as u64
            }),
            pruned: AtomicU64::new(0),
            born: Instant::now(),
            prune_every,
        }
    }

    /// Drops the keys whose buckets are full again, if the last pruning
    /// is older than `prune_every`; one caller does it, the others go on.
    fn prune(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.pruned.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.prune_every.as_millis() as u64
            || self
                .pruned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        self.per_credential.retain_recent();
        self.per_credential.shrink_to_fit();
    }

    /// Counts one failed authentication from `ip`; `false` once the
    /// address (or its /64) is past its limit.
    pub fn allow_failure(&self, ip: IpAddr) -> bool {
        self.prune();
        let key = client_key(ip);
        if self.failures.len() >= MAX_FAILING {
            return false;
        }
        self.failures.check_key(&key).is_ok()
    }

    /// Counts one request of a credential; `false` past its limit.
    fn allow_request(&self, label: &String) -> bool {
        self.prune();
        self.per_credential.check_key(label).is_ok()
    }

    /// Keys held, failures and credentials (for tests and metrics).
    pub fn held(&self) -> (usize, usize) {
        (self.failures.len(), self.per_credential.len())
    }

    /// How long a client past its failure limit should wait.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// What a request presented, checked as far as it can be without knowing
/// which recording it asks for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Admin, an account key, or open mode; `None`: nothing presented on a
    /// closed gateway (a link may still follow).
    pub principal: Option<Principal>,
    /// Link parameters, checked by [`Caller::for_recording`].
    pub link: Option<LinkParams>,
    address: Option<IpAddr>,
    who: Option<super::WhoSlot>,
}

fn basic(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// `exp`, `kid` and `sig` from the query, if any of them is there.
fn link_params(query: Option<&str>) -> Result<Option<LinkParams>, LinkError> {
    let Some(q) = query else { return Ok(None) };
    let (mut exp, mut kid, mut sig) = (None, None, None);
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match k.as_ref() {
            "exp" => exp = Some(v.into_owned()),
            "kid" => kid = Some(v.into_owned()),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    match (exp, kid, sig) {
        (None, None, None) => Ok(None),
        (Some(exp), Some(kid), Some(sig)) => Ok(Some(LinkParams {
            exp: exp.parse().map_err(|_| LinkError::Malformed)?,
            kid,
            sig,
        })),
        _ => Err(LinkError::Malformed),
    }
}

impl Caller {
    /// A refusal, counted against the client address: past the limit,
    /// 429 instead.
    pub(super) fn refuse(state: &AppState, address: Option<IpAddr>, err: ApiError) -> ApiError {
        if let Some(ip) = address
            && !state.limits.allow_failure(ip)
        {
            tracing::warn!(%ip, "too many failed authentications");
            return ApiError::TooManyRequests(state.limits.retry_after);
        }
        err
    }

    /// [`Caller::refuse`] for this caller's address.
    pub(super) fn refused(&self, state: &AppState, err: ApiError) -> ApiError {
        Self::refuse(state, self.address, err)
    }

    /// Checks a signed link for `recording` of `account`, and confines the
    /// caller to it.
    pub fn for_recording(
        &self,
        state: &AppState,
        account: Option<&AccountSid>,
        recording: &RecordingSid,
    ) -> Result<Principal, ApiError> {
        if let Some(link) = &self.link {
            let refuse = |e: LinkError| {
                Self::refuse(state, self.address, ApiError::Forbidden(e.to_string()))
            };
            let account = account.ok_or_else(|| refuse(LinkError::BadSignature))?;
            access::verify_link(
                &state.access.link_keys,
                account,
                recording,
                link,
                access::LinkClock {
                    now: jiff::Timestamp::now(),
                    skew: secs(state.access.link_skew),
                    max_lifetime: secs(state.access.link_max_lifetime),
                },
            )
            .map_err(refuse)?;
            let p = Principal::Link {
                account: account.clone(),
                recording: recording.clone(),
            };
            note(self.who.as_ref(), &p);
            return Ok(p);
        }
        self.principal.clone().ok_or(ApiError::Unauthorized)
    }

    /// The principal for routes that links do not open.
    pub fn require(&self) -> Result<Principal, ApiError> {
        if self.link.is_some() {
            return Err(ApiError::Forbidden(
                "a playback link opens only its recording".into(),
            ));
        }
        self.principal.clone().ok_or(ApiError::Unauthorized)
    }

    /// The admin credential, and nothing else (open mode included).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.principal {
            Some(Principal::Admin) => Ok(()),
            None | Some(Principal::Open) if self.link.is_none() => Err(ApiError::Unauthorized),
            _ => Err(ApiError::Forbidden(
                "this needs the admin credential".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Already checked by the write guard: once per request.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let refuse = |e: ApiError| Caller::refuse(state, address, e);
        let link = link_params(parts.uri.query())
            .map_err(|e| refuse(ApiError::Forbidden(e.to_string())))?;
        let principal = match parts.headers.get(header::AUTHORIZATION) {
            None if state.access.open => Some(Principal::Open),
            None => None,
            Some(value) => {
                let value = value.to_str().map_err(|_| refuse(ApiError::Unauthorized))?;
                Some(authenticate(state, value).await.map_err(refuse)?)
            }
        };
        if let Some(p) = &principal
            && !matches!(p, Principal::Open)
            && !state.limits.allow_request(&p.label())
        {
            return Err(ApiError::TooManyRequests(Duration::from_secs(1)));
        }
        let who = parts.extensions.get::<super::WhoSlot>().cloned();
        if let Some(p) = &principal {
            note(who.as_ref(), p);
        }
        Ok(Caller {
            principal,
            link,
            address,
            who,
        })
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// For the request's log line: who, never with what.
fn note(slot: Option<&super::WhoSlot>, p: &Principal) {
    if let Some(slot) = slot
        && let Ok(mut who) = slot.0.lock()
    {
        *who = Some(p.account().map_or_else(|| p.label(), ToString::to_string));
    }
}

/// Checks an `Authorization` header value.
async fn authenticate(state: &AppState, value: &str) -> Result<Principal, ApiError> {
    let (account, secret) = match basic(value) {
        Some((user, pass)) => (Some(user), pass),
        None => match value.strip_prefix("Bearer ") {
            Some(token) => (None, token.trim().to_owned()),
            None => return Err(ApiError::Unauthorized),
        },
    };
    // The admin token as a Bearer token, or as HTTP Basic with the user
    // `admin` (what a browser sends for the admin pages).
    if account.as_deref().is_none_or(|a| a == "admin")
        && let Some(admin) = &state.admin_token
        && bool::from(secret.as_bytes().ct_eq(admin.expose().as_bytes()))
    {
        return Ok(Principal::Admin);
    }
    // Keys are looked up by the hash of their secret: 256 random bits, so
    // the hash is a safe index and nothing secret is compared in SQL.
    let key = state
        .keys
        .by_hash(&access::hash_secret(&secret))
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
        .ok_or(ApiError::Unauthorized)?;
    if account.is_some_and(|a| a != key.account_sid.as_str()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(Principal::Account {
        account: key.account_sid.clone(),
        key_id: key.id.clone(),
        read_only: key.read_only,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn one_64_shares_one_failure_budget() {
        let limits = Limits::new(10, 3);
        for n in 0..3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, n, 0, 0, 1));
            assert!(limits.allow_failure(ip), "failure {n}");
        }
        let next = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        assert!(!limits.allow_failure(next), "the /64 is spent");
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(limits.allow_failure(other), "another /64 is not");
        assert_eq!(limits.held().0, 2);
    }

    #[test]
    fn addresses_whose_buckets_refilled_are_forgotten() {
        // 60,000 a minute: a bucket refills within a few milliseconds.
        let limits = Limits::pruned_every(1_000, 60_000, Duration::from_millis(20));
        for n in 0..1_000u32 {
            assert!(limits.allow_failure(IpAddr::V4(std::net::Ipv4Addr::from(n))));
        }
        assert!(limits.held().0 >= 999, "held: {:?}", limits.held());
        std::thread::sleep(Duration::from_millis(200));
        limits.allow_failure(IpAddr::V4(std::net::Ipv4Addr::from(5_000u32)));
        assert!(limits.held().0 <= 1, "pruned: {:?}", limits.held());
    }
}
