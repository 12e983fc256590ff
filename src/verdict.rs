//! The verdict: one pure function from what the catalog knows, what
//! storage answered and the incident registry, to what the user is told.
//! Everything else only renders verdicts.
//!
//! The rule that matters most: a storage answer other than a definitive
//! "not found" never becomes `lost`, `unexplained` or `unknown`.

use std::sync::Arc;

use jiff::Timestamp;

use crate::catalog::{Recording, RecordingStatus};
use crate::incidents::{Coverage, Incident, IncidentStatus};
use crate::sid::{AccountSid, RecordingSid};

/// What storage said about the recording's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageAnswer {
    Present,
    /// Definitive: the key does not exist.
    NotFound,
    /// Errors, timeouts, throttling: nothing can be concluded.
    Unavailable,
}

/// What the user is told about a recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Available,
    /// Missing, and an incident whose outcome is a loss covers it.
    Lost(Arc<Incident>),
    /// Missing, covered by an incident still investigating or recovering.
    Recovering(Arc<Incident>),
    Deleted {
        at: Option<Timestamp>,
        reason: Option<String>,
    },
    /// Twilio recorded no audio (too short or silent), or the provider
    /// reported the recording failed and storage has nothing.
    Absent {
        error_code: Option<u32>,
        failed: bool,
    },
    /// Still being processed; storage has nothing yet.
    Pending,
    /// The catalog says completed, storage says not found, no incident
    /// explains it.
    Unexplained,
    /// Neither catalog nor storage knows it (or it is another account's).
    Unknown,
    /// Storage could not answer: temporary, never a loss.
    StorageUnavailable,
}

impl Verdict {
    /// The identifier used in JSON, metrics and the demo manifest.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Available => "available",
            Verdict::Lost(_) => "lost",
            Verdict::Recovering(_) => "recovering",
            Verdict::Deleted { .. } => "deleted",
            Verdict::Absent { .. } => "absent",
            Verdict::Pending => "pending",
            Verdict::Unexplained => "unexplained",
            Verdict::Unknown => "unknown",
            Verdict::StorageUnavailable => "storage_unavailable",
        }
    }

    /// The incident behind the verdict, if any.
    pub fn incident(&self) -> Option<&Arc<Incident>> {
        match self {
            Verdict::Lost(i) | Verdict::Recovering(i) => Some(i),
            _ => None,
        }
    }
}

/// Decides. `rec` is the catalog entry (already checked to belong to the
/// asking account), `storage` the answer for the requested audio,
/// `incidents` the registry snapshot.
pub fn decide(
    sid: &RecordingSid,
    rec: Option<&Recording>,
    viewer: Option<&AccountSid>,
    storage: StorageAnswer,
    incidents: &[Arc<Incident>],
) -> Verdict {
    // The catalog is definitive about deletions and absences: no storage
    // answer changes them (a deleted recording must not play even if its
    // object lingers).
    if let Some(r) = rec {
        match r.status {
            RecordingStatus::Deleted => {
                return Verdict::Deleted {
                    at: r.deleted_at,
                    reason: r.deleted_reason.clone(),
                };
            }
            RecordingStatus::Absent => {
                return Verdict::Absent {
                    error_code: r.error_code,
                    failed: false,
                };
            }
            _ => {}
        }
    }
    match storage {
        StorageAnswer::Present => return Verdict::Available,
        StorageAnswer::Unavailable => return Verdict::StorageUnavailable,
        StorageAnswer::NotFound => {}
    }
    if let Some(incident) = explaining_incident(sid, rec, viewer, incidents) {
        return match incident.spec.status {
            IncidentStatus::Resolved => Verdict::Lost(incident.clone()),
            IncidentStatus::Investigating | IncidentStatus::Recovering => {
                Verdict::Recovering(incident.clone())
            }
        };
    }
    match rec.map(|r| (r.status, r.error_code)) {
        None => Verdict::Unknown,
        Some((RecordingStatus::Processing | RecordingStatus::InProgress, _)) => Verdict::Pending,
        // The provider said the recording failed, and storage agrees that
        // nothing arrived: explained, but not "no audio was ever made".
        Some((RecordingStatus::Failed, error_code)) => Verdict::Absent {
            error_code,
            failed: true,
        },
        Some(_) => Verdict::Unexplained,
    }
}

/// The incident that explains a missing recording: one whose outcome is a
/// loss (or may still be) and that covers it. A recording listed by sid
/// beats one matched by time; among equals, the latest window start wins
/// (the most recent knowledge), then the id, so the choice is stable.
fn explaining_incident<'a>(
    sid: &RecordingSid,
    rec: Option<&Recording>,
    viewer: Option<&AccountSid>,
    incidents: &'a [Arc<Incident>],
) -> Option<&'a Arc<Incident>> {
    incidents
        .iter()
        .filter(|i| i.spec.outcome.explains_missing() || i.spec.status != IncidentStatus::Resolved)
        .filter_map(|i| {
            i.covers(sid, rec, viewer)
                .map(|c| (c == Coverage::Listed, i))
        })
        .max_by(|(la, a), (lb, b)| {
            la.cmp(lb)
                .then(a.start.cmp(&b.start))
                .then_with(|| b.id().cmp(a.id()))
        })
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests;
