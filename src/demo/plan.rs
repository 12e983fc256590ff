//! The demo's day, planned deterministically from one seed: who called
//! when, for how long, and what became of each recording.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::DemoAccount;
use super::rng::Rng;
use crate::catalog::{Recording, RecordingStatus};
use crate::keys::Format;
use crate::sid::{AccountSid, CallSid, RecordingSid};

/// One demo recording, as the manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoRecording {
    pub recording_sid: RecordingSid,
    pub call_sid: CallSid,
    pub account_sid: AccountSid,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    /// Start in Pacific time, as an agent would read it.
    pub start_local: String,
    pub duration: u32,
    pub formats: Vec<Format>,
    pub catalog_status: RecordingStatus,
    pub error_code: Option<u32>,
    /// Whether audio exists in storage.
    pub stored: bool,
    /// What the gateway should answer (a verdict name).
    pub expected_verdict: String,
    pub incident: Option<String>,
    pub status_url: String,
    pub audio_url: String,
    /// Seed of the synthesized audio.
    pub audio_seed: u64,
}

impl DemoRecording {
    /// The catalog entry for this recording.
    pub fn catalog_row(&self) -> Recording {
        let deleted = self.catalog_status == RecordingStatus::Deleted;
        Recording {
            sid: self.recording_sid.clone(),
            account_sid: self.account_sid.clone(),
            call_sid: Some(self.call_sid.clone()),
            start_time: Some(self.start_time),
            duration: Some(self.duration),
            channels: Some(1),
            source: Some("DialVerb".into()),
            track: Some("both".into()),
            status: self.catalog_status,
            error_code: self.error_code,
            formats: self.formats.clone(),
            deleted_at: deleted.then(|| "2018-05-10T03:00:00Z".parse().unwrap_or(self.end_time)),
            deleted_reason: deleted
                .then(|| "retention policy: recordings are kept for 12 months".into()),
        }
    }
}

/// A random sid with `prefix`.
fn sid<T: std::str::FromStr>(rng: &mut Rng, prefix: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let s = format!("{prefix}{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    s.parse().expect("32 hex digits make a valid sid")
}

const CALLS: usize = 200;
const BURST: usize = 40;

/// The demo's accounts and recordings, the same every time.
pub fn plan() -> (Vec<DemoAccount>, Vec<DemoRecording>) {
    let mut rng = Rng::new(20_170_509); // the day, as a number
    let accounts: Vec<DemoAccount> = ["Acme Mortgage", "Beacon Insurance", "Cascade Auto Loans"]
        .into_iter()
        .map(|name| DemoAccount {
            sid: sid(&mut rng, "AC"),
            name: name.into(),
            webhook_auth_token: String::new(),
            api_key_id: String::new(),
            api_key_secret: String::new(),
        })
        .collect();
    let ts = |s: &str| -> Timestamp { s.parse().expect("a valid instant") };
    // 08:00–17:00 PDT; the incident window is 17:48–18:31 UTC.
    let (day_start, day_end) = (ts("2017-05-09T15:00:00Z"), ts("2017-05-10T00:00:00Z"));
    let (win_start, win_end) = (ts("2017-05-09T17:48:00Z"), ts("2017-05-09T18:31:00Z"));
    let span = |a: Timestamp, b: Timestamp| (b.as_second() - a.as_second()) as u64;

    // (start, duration): calls spread over the day, a burst ending in the
    // window (the call centre's late-morning peak), and one long call.
    let mut calls: Vec<(Timestamp, u32)> = Vec::new();
    for _ in 0..CALLS {
        let secs = rng.uint(5, 25) as u32;
        let offset = rng.uint(0, span(day_start, day_end) - 60) as i64;
        calls.push((day_start + SignedDuration::from_secs(offset), secs));
    }
    for _ in 0..BURST {
        let secs = rng.uint(5, 25) as u32;
        let end =
            win_start + SignedDuration::from_secs(rng.uint(0, span(win_start, win_end)) as i64);
        calls.push((end - SignedDuration::from_secs(i64::from(secs)), secs));
    }
    calls.push((ts("2017-05-09T16:15:00Z"), 620));
    calls.sort_by_key(|c| c.0);

    let pacific = TimeZone::get("America/Los_Angeles").expect("the tz database has Los Angeles");
    let last_three = calls.len() - 3;
    let mut out = Vec::with_capacity(calls.len());
    // Calls outside the window take turns at the rarer fates, so that each
    // appears a few times whatever the random draw.
    let mut outside = 0;
    for (i, (start, duration)) in calls.into_iter().enumerate() {
        let end = start + SignedDuration::from_secs(i64::from(duration));
        let in_window = win_start <= end && end <= win_end;
        let account = &accounts[rng.uint(0, accounts.len() as u64 - 1) as usize];
        if !in_window {
            outside += 1;
        }
        let (status, stored, verdict, error_code, duration) = if i >= last_three {
            // The day's last calls: still being processed.
            (
                RecordingStatus::Processing,
                false,
                "pending",
                None,
                duration,
            )
        } else if in_window {
            if rng.chance(0.55) {
                (RecordingStatus::Completed, false, "lost", None, duration)
            } else {
                (
                    RecordingStatus::Completed,
                    true,
                    "available",
                    None,
                    duration,
                )
            }
        } else {
            match outside % 50 {
                7 => (
                    RecordingStatus::Completed,
                    false,
                    "unexplained",
                    None,
                    duration,
                ),
                13 | 37 => (RecordingStatus::Deleted, false, "deleted", None, duration),
                23 => (RecordingStatus::Absent, false, "absent", Some(16101), 1),
                43 => (RecordingStatus::Absent, false, "absent", Some(16102), 1),
                _ => (
                    RecordingStatus::Completed,
                    true,
                    "available",
                    None,
                    duration,
                ),
            }
        };
        let recording_sid: RecordingSid = sid(&mut rng, "RE");
        let audio_seed = rng.next_u64();
        out.push(DemoRecording {
            status_url: format!("/recordings/{recording_sid}"),
            audio_url: format!("/recordings/{recording_sid}.mp3"),
            recording_sid,
            call_sid: sid(&mut rng, "CA"),
            account_sid: account.sid.clone(),
            start_time: start,
            end_time: start + SignedDuration::from_secs(i64::from(duration)),
            start_local: start
                .to_zoned(pacific.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            duration,
            formats: Format::ALL.to_vec(),
            catalog_status: status,
            error_code,
            stored,
            expected_verdict: verdict.into(),
            incident: (verdict == "lost").then(|| "2017-05-09".into()),
            audio_seed,
        });
    }
    (accounts, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_deterministic_and_has_every_kind() {
        let (a1, r1) = plan();
        let (a2, r2) = plan();
        assert_eq!(a1.len(), 3);
        assert_eq!(
            serde_json::to_string(&r1).unwrap(),
            serde_json::to_string(&r2).unwrap()
        );
        assert_eq!(a1[0].sid, a2[0].sid);
        let count = |v: &str| r1.iter().filter(|r| r.expected_verdict == v).count();
        assert!(r1.len() > 200, "a few hundred calls");
        for (verdict, at_least) in [
            ("available", 150),
            ("lost", 15),
            ("unexplained", 1),
            ("deleted", 2),
            ("absent", 2),
            ("pending", 3),
        ] {
            assert!(count(verdict) >= at_least, "{verdict}: {}", count(verdict));
        }
        assert!(
            r1.iter().any(|r| r.duration >= 600 && r.stored),
            "one long recording"
        );
        // Lost ones all ended inside the window, in Pacific daylight time.
        for r in r1.iter().filter(|r| r.expected_verdict == "lost") {
            let end = r.end_time.as_second();
            assert!(
                (1_494_352_080..=1_494_354_660).contains(&end),
                "{}",
                r.end_time
            );
        }
    }
}
