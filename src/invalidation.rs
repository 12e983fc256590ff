//! Hearing the other replicas' changes (PostgreSQL `LISTEN`), so that a
//! recording ingested through replica A plays at once through replica B,
//! and an incident edited on A changes B's verdicts within a second.
//!
//! What a notice names is forgotten (recordings) or reloaded (incidents,
//! keys). While the channel is down, nothing can be heard: every cache is
//! flushed and new entries live at most `cache::DEGRADED_TTL`, and
//! readiness and the metrics say so. When the channel comes back, the
//! caches are flushed and the incidents reloaded once more (notices sent
//! meanwhile were missed), and normal TTLs resume.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::app::AppState;
use crate::catalog::{CHANNEL, Change};

/// Waits between attempts to reconnect the channel.
const RETRY: Duration = Duration::from_secs(1);

/// Starts listening, when the catalog is PostgreSQL (several replicas);
/// `None` otherwise.
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let pool = state.catalog.pg_pool()?.clone();
    Some(tokio::spawn(async move {
        loop {
            match listen(&pool, &state).await {
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "change notices: channel lost"),
            }
            degrade(&state, true).await;
            tokio::time::sleep(RETRY).await;
        }
    }))
}

/// Connects, then applies notices until the connection fails.
async fn listen(pool: &sqlx::PgPool, state: &AppState) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Notices sent while the channel was down were missed (at start,
    // everything was just loaded): start from scratch.
    if state.freshness.degraded() {
        catch_up(state).await;
    }
    degrade(state, false).await;
    tracing::info!("change notices: listening");
    loop {
        // `try_recv` says `None` when the connection dropped: notices may
        // have been missed, so go through degraded and reconnect.
        let Some(notice) = listener.try_recv().await? else {
            return Ok(());
        };
        match serde_json::from_str::<Change>(notice.payload()) {
            Ok(change) => apply(state, change).await,
            Err(e) => tracing::warn!(error = %e, "change notices: unreadable notice ignored"),
        }
    }
}

async fn degrade(state: &AppState, degraded: bool) {
    let was = state.freshness.degraded();
    state.freshness.set_degraded(degraded);
    metrics::gauge!("playback_invalidation_listening").set(if degraded { 0.0 } else { 1.0 });
    if degraded && !was {
        // Entries cached with the normal TTL would outlive what can now be
        // heard: drop them; new ones get the short TTL.
        state.heads.clear();
        state.recordings.clear();
        state.keys.clear();
        tracing::warn!(
            ttl = ?crate::cache::DEGRADED_TTL,
            "change notices: not heard; caches fall back to short TTLs"
        );
    }
}

/// After missed notices: forget everything, reload incidents.
async fn catch_up(state: &AppState) {
    state.heads.clear();
    state.recordings.clear();
    state.keys.clear();
    if let Err(e) = state.registry.reload_stored().await {
        tracing::warn!(error = %e, "change notices: incidents not reloaded");
    }
}

async fn apply(state: &AppState, change: Change) {
    metrics::counter!("playback_invalidation_notices_total").increment(1);
    match change {
        Change::Recordings(sids) => {
            // Only what this replica has cached matters; asking the
            // catalog about each sid would turn another replica's import
            // of a million rows into a million queries here. Storage
            // answers are cached under keys built from the account, which
            // the cached entry knows (both are cached by the same request).
            for sid in sids {
                match state.recordings.cached(&sid).await {
                    Some(Some(rec)) => state.forget(&rec).await,
                    Some(None) => state.recordings.invalidate(&sid).await,
                    None => {}
                }
            }
        }
        Change::Incidents => {
            if let Err(e) = state.registry.reload_stored().await {
                tracing::warn!(error = %e, "change notices: incidents not reloaded");
            }
        }
        Change::Keys => state.keys.clear(),
        Change::Everything => {
            state.heads.clear();
            state.recordings.clear();
            state.keys.clear();
        }
    }
}
