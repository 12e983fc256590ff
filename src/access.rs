//! Who may see what: signed playback links, account API keys, the admin
//! credential, and the principal a request acts as.
//!
//! SECURITY: every comparison of a secret is constant-time (`hmac`'s
//! `verify_slice` and `subtle`); API key secrets are stored only as
//! SHA-256 hashes (they are 256 random bits, so a plain hash is enough);
//! link keys and webhook tokens must be kept in the clear to compute MACs.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::sid::{AccountSid, RecordingSid};

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin credential: everything.
    Admin,
    /// An account's API key: that account's recordings and pages.
    Account {
        account: AccountSid,
        key_id: String,
        read_only: bool,
    },
    /// A signed playback link: one recording, until it expires.
    Link {
        account: AccountSid,
        recording: RecordingSid,
    },
    /// Open mode and no credential presented: read everything.
    Open,
}

impl Principal {
    /// The account a request is confined to; `None` sees every account.
    pub fn account(&self) -> Option<&AccountSid> {
        match self {
            Principal::Account { account, .. } | Principal::Link { account, .. } => Some(account),
            Principal::Admin | Principal::Open => None,
        }
    }

    /// Whether it may read this recording of this account. A link reads
    /// only its own recording.
    pub fn may_read(&self, account: &AccountSid, recording: &RecordingSid) -> bool {
        match self {
            Principal::Admin | Principal::Open => true,
            Principal::Account { account: a, .. } => a == account,
            Principal::Link {
                account: a,
                recording: r,
            } => a == account && r == recording,
        }
    }

    /// A short label for logs and rate limits (never a secret).
    pub fn label(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Account { key_id, .. } => format!("key:{key_id}"),
            Principal::Link { account, .. } => format!("link:{account}"),
            Principal::Open => "open".into(),
        }
    }
}

/// A key that signs playback links; several live at once for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKey {
    pub kid: String,
    pub secret: Secret,
}

/// Parses `kid:secret[,kid:secret…]`; the first key signs new links.
pub fn parse_link_keys(s: &str) -> Result<Vec<LinkKey>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (kid, secret) = k
                .split_once(':')
                .ok_or_else(|| "each link key is kid:secret".to_string())?;
            let kid_ok = !kid.is_empty()
                && kid.len() <= 32
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !kid_ok {
                return Err(format!("key id {kid:?}: 1 to 32 letters, digits, - or _"));
            }
            if secret.len() < 32 {
                return Err(format!(
                    "key {kid}: the secret needs at least 32 characters"
                ));
            }
            Ok(LinkKey {
                kid: kid.into(),
                secret: Secret::new(secret),
            })
        })
        .collect()
}

/// What a link covers: every representation of one recording (audio in
/// either format, status, player), for one account, until `exp`.
fn canonical(account: &AccountSid, recording: &RecordingSid, exp: i64) -> String {
    format!("playback-link-v1\n/recordings/{recording}\n{account}\n{exp}")
}

fn mac(key: &LinkKey) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key.secret.expose().as_bytes()).expect("HMAC takes any key")
}

/// The `exp`, `kid` and `sig` query parameters of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkParams {
    pub exp: i64,
    pub kid: String,
    pub sig: String,
}

impl LinkParams {
    pub fn query(&self) -> String {
        format!("exp={}&kid={}&sig={}", self.exp, self.kid, self.sig)
    }
}

/// Signs a link with `key`, valid until `exp` (Unix seconds).
pub fn sign_link(
    key: &LinkKey,
    account: &AccountSid,
    recording: &RecordingSid,
    exp: i64,
) -> LinkParams {
    let mut m = mac(key);
    m.update(canonical(account, recording, exp).as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    LinkParams {
        exp,
        kid: key.kid.clone(),
        sig,
    }
}

/// Why a link was refused; the message says which, as the issue asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the playback link has expired")]
    Expired,
    #[error("the playback link's signature does not match (tampered, or for another recording)")]
    BadSignature,
    #[error("the playback link was signed with a key this gateway does not know")]
    UnknownKey,
    #[error("the playback link is malformed (it needs exp, kid and sig)")]
    Malformed,
    #[error("the playback link lives longer than this gateway allows")]
    TooLong,
}

/// The longest a link may live unless configured otherwise: a week.
pub const DEFAULT_LINK_MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// When a link is checked, and how far its expiry may be from then.
#[derive(Debug, Clone, Copy)]
pub struct LinkClock {
    pub now: Timestamp,
    /// Clock difference allowed past the expiry, in seconds.
    pub skew: i64,
    /// The longest a link may live from now, in seconds.
    pub max_lifetime: i64,
}

/// Checks a link for `recording` of `account` against `clock`.
///
/// SECURITY: a valid signature is not enough: a link whose expiry lies
/// further ahead than the configured lifetime (a key leaked into a
/// signer, a typo in a TTL) is refused too, so no link is forever.
pub fn verify_link(
    keys: &[LinkKey],
    account: &AccountSid,
    recording: &RecordingSid,
    params: &LinkParams,
    clock: LinkClock,
) -> Result<(), LinkError> {
    let key = keys
        .iter()
        .find(|k| k.kid == params.kid)
        .ok_or(LinkError::UnknownKey)?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&params.sig)
        .map_err(|_| LinkError::BadSignature)?;
    let mut m = mac(key);
    m.update(canonical(account, recording, params.exp).as_bytes());
    // Constant-time, guaranteed by the `hmac` crate.
    m.verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
    let now = clock.now.as_second();
    if now > params.exp.saturating_add(clock.skew) {
        return Err(LinkError::Expired);
    }
    let latest = now
        .saturating_add(clock.max_lifetime)
        .saturating_add(clock.skew);
    if params.exp > latest {
        return Err(LinkError::TooLong);
    }
    Ok(())
}

/// A new API key: its id, and the secret shown once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub secret: Secret,
    pub hash: String,
}

/// SHA-256 of a secret, hex: what the catalog stores.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Generates a key: 256 random bits from the OS-seeded CSPRNG.
pub fn new_key() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!(
        "pgw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    NewKey {
        id: format!("KY{}", hex::encode(id)),
        hash: hash_secret(&secret),
        secret: Secret::new(secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str) -> LinkKey {
        LinkKey {
            kid: kid.into(),
            secret: Secret::new(format!("{kid}-secret-0123456789abcdefghijklmnop")),
        }
    }
    fn ac() -> AccountSid {
        "AC0123456789abcdef0123456789abcdef".parse().unwrap()
    }
    fn re(n: u8) -> RecordingSid {
        format!("RE{n:032x}").parse().unwrap()
    }
    fn at(s: i64) -> LinkClock {
        LinkClock {
            now: Timestamp::from_second(s).unwrap(),
            skew: 0,
            max_lifetime: 3_600,
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let keys = [key("k2"), key("k1")];
        let p = sign_link(&keys[1], &ac(), &re(1), 1_000);
        assert_eq!(
            verify_link(
                &keys,
                &ac(),
                &re(1),
                &p,
                LinkClock {
                    skew: 30,
                    ..at(900)
                }
            ),
            Ok(())
        );
        assert_eq!(
            verify_link(
                &keys,
                &ac(),
                &re(1),
                &p,
                LinkClock {
                    skew: 30,
                    ..at(1_030)
                }
            ),
            Ok(()),
            "skew"
        );
        assert_eq!(
            verify_link(
                &keys,
                &ac(),
                &re(1),
                &p,
                LinkClock {
                    skew: 30,
                    ..at(1_031)
                }
            ),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_link_may_not_outlive_the_configured_lifetime() {
        let keys = [key("k1")];
        for exp in [3_601, i64::MAX, i64::MAX - 1] {
            let p = sign_link(&keys[0], &ac(), &re(1), exp);
            assert_eq!(
                verify_link(&keys, &ac(), &re(1), &p, at(0)),
                Err(LinkError::TooLong),
                "exp {exp}"
            );
        }
        let p = sign_link(&keys[0], &ac(), &re(1), 3_600);
        assert_eq!(verify_link(&keys, &ac(), &re(1), &p, at(0)), Ok(()));
        let p = sign_link(&keys[0], &ac(), &re(1), 3_630);
        assert_eq!(
            verify_link(&keys, &ac(), &re(1), &p, LinkClock { skew: 30, ..at(0) }),
            Ok(()),
            "a signer's clock a little ahead"
        );
    }

    #[test]
    fn tampering_is_caught() {
        let keys = [key("k1")];
        let p = sign_link(&keys[0], &ac(), &re(1), 1_000);
        let later = LinkParams {
            exp: 9_999,
            ..p.clone()
        };
        assert_eq!(
            verify_link(&keys, &ac(), &re(1), &later, at(0)),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            verify_link(&keys, &ac(), &re(2), &p, at(0)),
            Err(LinkError::BadSignature)
        );
        let other: AccountSid = "AC00000000000000000000000000000000".parse().unwrap();
        assert_eq!(
            verify_link(&keys, &other, &re(1), &p, at(0)),
            Err(LinkError::BadSignature)
        );
        let unknown = LinkParams {
            kid: "k9".into(),
            ..p.clone()
        };
        assert_eq!(
            verify_link(&keys, &ac(), &re(1), &unknown, at(0)),
            Err(LinkError::UnknownKey)
        );
        let garbage = LinkParams {
            sig: "%%%".into(),
            ..p
        };
        assert_eq!(
            verify_link(&keys, &ac(), &re(1), &garbage, at(0)),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn rotated_keys_still_verify() {
        let old = key("old");
        let p = sign_link(&old, &ac(), &re(1), 1_000);
        assert_eq!(
            verify_link(&[key("new"), old], &ac(), &re(1), &p, at(0)),
            Ok(())
        );
    }

    #[test]
    fn link_keys_parse() {
        let keys = parse_link_keys(
            "a:0123456789abcdef0123456789abcdef, b:fedcba9876543210fedcba9876543210",
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, "a");
        assert!(parse_link_keys("a:short").unwrap_err().contains("32"));
        assert!(parse_link_keys("nocolon").is_err());
        assert!(parse_link_keys("bad kid:0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn new_keys_are_random_and_hashed() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash_secret(a.secret.expose()));
        assert_eq!(a.hash.len(), 64);
        assert!(a.id.starts_with("KY") && a.id.len() == 34);
    }
}
