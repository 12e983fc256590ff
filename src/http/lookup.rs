//! From a request for a recording to a verdict: catalog (cached), storage
//! `head` (cached) and the registry snapshot, handed to `verdict::decide`.

use std::sync::Arc;

use super::error::ApiError;
use crate::app::AppState;
use crate::cache::Head;
use crate::catalog::{Recording, RecordingStatus};
use crate::keys::Format;
use crate::sid::{AccountSid, RecordingSid};
use crate::storage::{ObjectMeta, StorageError};
use crate::verdict::{self, StorageAnswer, Verdict};

/// Everything known about one requested recording.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub sid: RecordingSid,
    /// The catalog entry; `None` when unknown or another account's.
    pub rec: Option<Arc<Recording>>,
    pub format: Format,
    /// The storage key, when one could be built.
    pub key: Option<String>,
    /// Storage metadata, when the audio is there.
    pub meta: Option<Arc<ObjectMeta>>,
    pub verdict: Verdict,
}

/// The format a status page checks: WAV (Twilio's source format) unless
/// the catalog says the recording only exists in another one.
pub fn primary_format(rec: Option<&Recording>) -> Format {
    match rec.map(|r| r.formats.as_slice()) {
        Some(fs) if !fs.is_empty() && !fs.contains(&Format::Wav) => fs[0],
        _ => Format::Wav,
    }
}

/// Resolves a recording as seen by `account`: the caller's own account,
/// or `None` for the admin and open mode.
///
/// SECURITY: another account's recording is answered exactly as one that
/// does not exist, and storage is never read for it, whatever the key
/// layout. A recording the catalog does not know is looked for in storage
/// only where the layout itself names the account (so the key is the
/// caller's own), or for a caller confined to no account.
pub async fn resolve(
    state: &AppState,
    account: Option<&AccountSid>,
    sid: &RecordingSid,
    format: Option<Format>,
) -> Result<Resolved, ApiError> {
    let rec = state
        .recordings
        .get(sid)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    // Another account's entry is dropped here, before anything is read for
    // it: from then on its sid is exactly an unknown one.
    let rec = rec.filter(|r| account.is_none_or(|a| &r.account_sid == a));
    if rec.is_none() && account.is_some() && !state.layout.needs_account() {
        // The key would not name the account, so whoever owns the object
        // it points to is unknown: never read it.
        let mut r = unknown(sid, format);
        r.verdict = verdict::decide(
            sid,
            None,
            account,
            StorageAnswer::NotFound,
            &state.registry.snapshot(),
        );
        return Ok(r);
    }
    resolve_with(state, account, sid, rec, format).await
}

/// A recording with no catalog entry, no key and no storage answer.
fn unknown(sid: &RecordingSid, format: Option<Format>) -> Resolved {
    Resolved {
        sid: sid.clone(),
        format: format.unwrap_or_else(|| primary_format(None)),
        rec: None,
        key: None,
        meta: None,
        verdict: Verdict::Unknown,
    }
}

/// Resolves recordings listed from the catalog (status lists, incident
/// pages), a few storage calls at a time, keeping their order.
pub async fn resolve_all(
    state: &AppState,
    recs: Vec<Recording>,
) -> Result<Vec<Resolved>, ApiError> {
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(recs)
        .map(|rec| async move {
            let sid = rec.sid.clone();
            resolve_with(state, None, &sid, Some(Arc::new(rec)), None).await
        })
        .buffered(16)
        .try_collect()
        .await
}

/// Resolves with the catalog entry already in hand.
async fn resolve_with(
    state: &AppState,
    account: Option<&AccountSid>,
    sid: &RecordingSid,
    rec: Option<Arc<Recording>>,
    format: Option<Format>,
) -> Result<Resolved, ApiError> {
    let format = format.unwrap_or_else(|| primary_format(rec.as_deref()));
    let owner = rec.as_ref().map(|r| &r.account_sid).or(account);
    let key = (owner.is_some() || !state.layout.needs_account())
        .then(|| state.layout.render(owner, sid, format));

    // The catalog alone settles deletions and absences: no storage call.
    let settled = rec
        .as_ref()
        .is_some_and(|r| matches!(r.status, RecordingStatus::Deleted | RecordingStatus::Absent));
    let (answer, meta) = match &key {
        Some(key) if !settled => match state.heads.head(key).await {
            Ok(Head::Found(meta)) => (StorageAnswer::Present, Some(meta)),
            Ok(Head::Missing) => (StorageAnswer::NotFound, None),
            Err(e) => match e.as_ref() {
                StorageError::Misconfigured(_) => {
                    return Err(ApiError::from_storage(&e, state.retry_after));
                }
                other => {
                    tracing::warn!(error = %other, "storage unavailable; no verdict beyond that");
                    (StorageAnswer::Unavailable, None)
                }
            },
        },
        _ => (StorageAnswer::NotFound, None),
    };
    let verdict = verdict::decide(
        sid,
        rec.as_deref(),
        account,
        answer,
        &state.registry.snapshot(),
    );
    if matches!(verdict, Verdict::Unexplained) {
        // Reported: an operator must learn of a loss nobody explained.
        metrics::counter!("playback_unexplained_total").increment(1);
        tracing::warn!(recording_sid = %sid, %format, "recording missing from storage; no incident explains it");
    }
    Ok(Resolved {
        sid: sid.clone(),
        rec,
        format,
        key,
        meta,
        verdict,
    })
}
