//! Recording status events (Twilio's `RecordingStatusCallback`) and how
//! they change the catalog: a pure merge that is idempotent (Twilio
//! retries) and never moves a status backwards (events arrive out of
//! order).

use crate::catalog::{Recording, RecordingStatus};
use crate::import::parse_time;
use crate::keys::Format;
use crate::sid::{AccountSid, CallSid, RecordingSid};

/// One callback's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub account_sid: AccountSid,
    pub recording_sid: RecordingSid,
    pub call_sid: Option<CallSid>,
    pub status: RecordingStatus,
    pub start_time: Option<jiff::Timestamp>,
    pub duration: Option<u32>,
    pub channels: Option<u8>,
    pub source: Option<String>,
    pub track: Option<String>,
    pub error_code: Option<u32>,
}

/// Why a callback's parameters were refused (safe to show the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct BadEvent {
    pub field: &'static str,
    pub why: String,
}

fn bad(field: &'static str, why: impl Into<String>) -> BadEvent {
    BadEvent {
        field,
        why: why.into(),
    }
}

impl Event {
    /// Reads Twilio's form parameters (`AccountSid`, `RecordingSid`,
    /// `RecordingStatus`, … ); unknown parameters are ignored.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, BadEvent> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let need = |name: &'static str| get(name).ok_or_else(|| bad(name, "missing"));
        let number = |name: &'static str| -> Result<Option<u64>, BadEvent> {
            match get(name) {
                None | Some("-1") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| bad(name, format!("{v:?} is not a whole number"))),
            }
        };
        let status = match need("RecordingStatus")? {
            "in-progress" => RecordingStatus::InProgress,
            "completed" => RecordingStatus::Completed,
            "absent" => RecordingStatus::Absent,
            "failed" => RecordingStatus::Failed,
            other => {
                return Err(bad(
                    "RecordingStatus",
                    format!("{other:?} is not a recording status event"),
                ));
            }
        };
        Ok(Event {
            account_sid: need("AccountSid")?
                .parse()
                .map_err(|e: crate::sid::InvalidSid| bad("AccountSid", e.to_string()))?,
            recording_sid: need("RecordingSid")?
                .parse()
                .map_err(|e: crate::sid::InvalidSid| bad("RecordingSid", e.to_string()))?,
            call_sid: get("CallSid")
                .map(str::parse)
                .transpose()
                .map_err(|e: crate::sid::InvalidSid| bad("CallSid", e.to_string()))?,
            status,
            start_time: get("RecordingStartTime")
                .map(parse_time)
                .transpose()
                .map_err(|e| bad("RecordingStartTime", e))?,
            duration: number("RecordingDuration")?
                .map(|d| u32::try_from(d).map_err(|_| bad("RecordingDuration", "too large")))
                .transpose()?,
            channels: number("RecordingChannels")?
                .map(|c| u8::try_from(c).map_err(|_| bad("RecordingChannels", "too large")))
                .transpose()?,
            source: get("RecordingSource").map(str::to_owned),
            track: get("RecordingTrack").map(str::to_owned),
            error_code: number("ErrorCode")?
                .map(|c| u32::try_from(c).map_err(|_| bad("ErrorCode", "too large")))
                .transpose()?,
        })
    }
}

/// How far along a recording is; statuses only move up.
fn rank(s: RecordingStatus) -> u8 {
    match s {
        RecordingStatus::InProgress => 0,
        RecordingStatus::Processing => 1,
        RecordingStatus::Completed | RecordingStatus::Absent | RecordingStatus::Failed => 2,
        // Ours, never Twilio's: a webhook does not bring a deleted
        // recording back.
        RecordingStatus::Deleted => 3,
    }
}

/// What an event does to the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// Write this row.
    Write(Box<Recording>),
    /// Nothing to change (a retry, or a late event of an earlier stage).
    Unchanged,
    /// The recording belongs to another account: refuse.
    WrongAccount,
}

/// Merges an event into what the catalog has. A later stage wins; an
/// earlier or equal stage only fills fields that are still unknown.
pub fn merge(existing: Option<&Recording>, ev: &Event) -> Merge {
    let Some(old) = existing else {
        return Merge::Write(Box::new(Recording {
            sid: ev.recording_sid.clone(),
            account_sid: ev.account_sid.clone(),
            call_sid: ev.call_sid.clone(),
            start_time: ev.start_time,
            duration: ev.duration,
            channels: ev.channels,
            source: ev.source.clone(),
            track: ev.track.clone(),
            status: ev.status,
            error_code: ev.error_code,
            formats: Format::ALL.to_vec(),
            deleted_at: None,
            deleted_reason: None,
        }));
    };
    if old.account_sid != ev.account_sid {
        return Merge::WrongAccount;
    }
    let mut new = old.clone();
    let forward = rank(ev.status) > rank(old.status);
    if forward {
        new.status = ev.status;
        new.error_code = ev.error_code.or(old.error_code);
    }
    // Newer stages know more (the final duration); older ones only fill gaps.
    macro_rules! take {
        ($field:ident) => {
            if forward && ev.$field.is_some() || new.$field.is_none() {
                new.$field = ev.$field.clone().or(new.$field.clone());
            }
        };
    }
    take!(call_sid);
    take!(start_time);
    take!(duration);
    take!(channels);
    take!(source);
    take!(track);
    if new == *old {
        Merge::Unchanged
    } else {
        Merge::Write(Box::new(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(status: &str, duration: &str) -> Vec<(String, String)> {
        [
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
            ("CallSid", "CA0123456789abcdef0123456789abcdef"),
            ("RecordingStatus", status),
            ("RecordingDuration", duration),
            ("RecordingStartTime", "Tue, 09 May 2017 17:49:00 +0000"),
            ("Unrelated", "x"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn ev(status: &str, duration: &str) -> Event {
        Event::from_params(&params(status, duration)).unwrap()
    }

    #[test]
    fn parses_twilio_parameters() {
        let e = ev("completed", "60");
        assert_eq!(e.status, RecordingStatus::Completed);
        assert_eq!(e.duration, Some(60));
        assert_eq!(e.start_time.unwrap().to_string(), "2017-05-09T17:49:00Z");
        assert_eq!(ev("in-progress", "-1").duration, None);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let mut p = params("completed", "60");
        p.retain(|(k, _)| k != "RecordingSid");
        assert_eq!(Event::from_params(&p).unwrap_err().field, "RecordingSid");
        assert_eq!(
            Event::from_params(&params("exploded", "1"))
                .unwrap_err()
                .field,
            "RecordingStatus"
        );
        assert_eq!(
            Event::from_params(&params("completed", "sixty"))
                .unwrap_err()
                .field,
            "RecordingDuration"
        );
        let mut p = params("completed", "60");
        p[0].1 = "ACnope".into();
        assert_eq!(Event::from_params(&p).unwrap_err().field, "AccountSid");
    }

    #[test]
    fn retries_change_nothing() {
        let Merge::Write(row) = merge(None, &ev("completed", "60")) else {
            panic!("first event writes");
        };
        assert_eq!(merge(Some(&row), &ev("completed", "60")), Merge::Unchanged);
    }

    #[test]
    fn statuses_never_move_backwards() {
        let Merge::Write(done) = merge(None, &ev("completed", "60")) else {
            panic!()
        };
        assert_eq!(
            merge(Some(&done), &ev("in-progress", "-1")),
            Merge::Unchanged
        );
        let Merge::Write(started) = merge(None, &ev("in-progress", "-1")) else {
            panic!()
        };
        let Merge::Write(finished) = merge(Some(&started), &ev("completed", "60")) else {
            panic!("a later stage moves forward")
        };
        assert_eq!(finished.status, RecordingStatus::Completed);
        assert_eq!(finished.duration, Some(60));
    }

    #[test]
    fn deleted_recordings_stay_deleted() {
        let Merge::Write(mut row) = merge(None, &ev("completed", "60")) else {
            panic!()
        };
        row.status = RecordingStatus::Deleted;
        assert_eq!(merge(Some(&row), &ev("completed", "60")), Merge::Unchanged);
    }

    #[test]
    fn another_accounts_recording_is_refused() {
        let Merge::Write(mut row) = merge(None, &ev("completed", "60")) else {
            panic!()
        };
        row.account_sid = "AC00000000000000000000000000000000".parse().unwrap();
        assert_eq!(
            merge(Some(&row), &ev("completed", "60")),
            Merge::WrongAccount
        );
    }
}
