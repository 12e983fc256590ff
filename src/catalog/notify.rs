//! Change notices between replicas that share a PostgreSQL catalog.
//!
//! Every write that other replicas may have cached (recordings, admin
//! incidents, key revocations, an admin's cache flush) is followed, once
//! committed, by a `NOTIFY` on one channel; each replica `LISTEN`s (see
//! `crate::invalidation`) and forgets or reloads what the notice names. The
//! writer may be another process (`import`, `keys revoke`), which is why
//! the catalog sends the notices rather than the HTTP handlers. On SQLite
//! (one process) nothing is sent.

use serde::{Deserialize, Serialize};

use super::{Catalog, CatalogError};
use crate::sid::RecordingSid;

/// The channel every replica listens on.
pub const CHANNEL: &str = "playback_gateway_changes";

/// Sids per notice: PostgreSQL caps a payload at 8,000 bytes.
const SIDS_PER_NOTICE: usize = 150;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// These recordings' catalog rows (and maybe their audio).
    Recordings(Vec<RecordingSid>),
    /// An admin incident was created, updated or resolved.
    Incidents,
    /// An API key was revoked.
    Keys,
    /// An admin flushed every cache.
    Everything,
}

impl Catalog {
    /// Tells the other replicas (PostgreSQL only). A notice that cannot be
    /// sent is logged, not an error: the write itself succeeded, and the
    /// replicas' TTLs bound how stale they can be.
    pub async fn announce(&self, change: Change) {
        let super::db::Pool::Postgres(pool) = &self.pool else {
            return;
        };
        let payloads: Vec<String> = match change {
            Change::Recordings(sids) => sids
                .chunks(SIDS_PER_NOTICE)
                .filter_map(|c| serde_json::to_string(&Change::Recordings(c.to_vec())).ok())
                .collect(),
            other => serde_json::to_string(&other).ok().into_iter().collect(),
        };
        for payload in payloads {
            let sent: Result<_, CatalogError> = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(pool)
                .await
                .map_err(Into::into);
            if let Err(e) = sent {
                metrics::counter!("playback_invalidation_send_failures_total").increment(1);
                tracing::warn!(error = %e, "could not tell the other replicas of a change");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_small_json() {
        let sids: Vec<RecordingSid> = (0..SIDS_PER_NOTICE as u32)
            .map(|n| format!("RE{n:032x}").parse().unwrap())
            .collect();
        let json = serde_json::to_string(&Change::Recordings(sids)).unwrap();
        assert!(json.len() < 8_000, "{}", json.len());
        assert_eq!(serde_json::to_string(&Change::Keys).unwrap(), "\"keys\"");
        let back: Change = serde_json::from_str("\"incidents\"").unwrap();
        assert_eq!(back, Change::Incidents);
        assert!(serde_json::from_str::<Change>("{\"recordings\": [\"nope\"]}").is_err());
    }
}
