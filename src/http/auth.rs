//! Credentials on requests: the admin token, account API keys (HTTP Basic
//! `AccountSid:secret` or `Bearer secret`), signed playback links, and open
//! mode; rate limits per credential and per address for failures.
//!
//! SECURITY: a credential that is presented is always checked, in open
//! mode too: a wrong key or a tampered link is refused, never ignored.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::access::{self, LinkError, LinkParams, Principal};
use crate::app::AppState;
use crate::sid::{AccountSid, RecordingSid};

/// Rate limits, shared by every request.
pub struct Limits {
    per_credential: DefaultKeyedRateLimiter<String>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    retry_after: Duration,
}

impl Limits {
    /// `per_second` requests per credential (burst twice that), and
    /// `failures_per_minute` failed authentications per client address.
    pub fn new(per_second: u32, failures_per_minute: u32) -> Self {
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
        }
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
    fn refuse(state: &AppState, address: Option<IpAddr>, err: ApiError) -> ApiError {
        if let Some(ip) = address
            && state.limits.failures.check_key(&ip).is_err()
        {
            tracing::warn!(%ip, "too many failed authentications");
            return ApiError::TooManyRequests(state.limits.retry_after);
        }
        err
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
                jiff::Timestamp::now(),
                state.access.link_skew.as_secs() as i64,
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
            && state.limits.per_credential.check_key(&p.label()).is_err()
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
