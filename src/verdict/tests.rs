//! One test per row of DESIGN.md's verdict table, and per edge the issue
//! names: bounds, DST, listed recordings, recovered and overlapping
//! incidents, storage failures.

use std::sync::Arc;

use super::*;
use crate::catalog::{Recording, RecordingStatus};
use crate::incidents::{IncidentSpec, IncidentStatus, MatchOn, Origin, Outcome};
use crate::keys::Format;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

fn sid(n: u8) -> RecordingSid {
    format!("RE{n:032x}").parse().unwrap()
}

fn spec(id: &str, starts: &str, ends: &str) -> IncidentSpec {
    IncidentSpec {
        id: id.into(),
        title: "t".into(),
        service: None,
        status: IncidentStatus::Resolved,
        outcome: Outcome::PartiallyLost,
        time_zone: "America/Los_Angeles".into(),
        starts: starts.into(),
        ends: ends.into(),
        match_on: MatchOn::End,
        summary: "s".into(),
        impact: "i".into(),
        notes: vec![],
        what_to_do: "w".into(),
        communicated: None,
        corrective_actions: vec![],
        accounts: vec![],
        recordings: vec![],
        links: vec![],
    }
}

fn may9() -> IncidentSpec {
    spec("2017-05-09", "2017-05-09T10:48:00", "2017-05-09T11:31:00")
}

fn reg(specs: Vec<IncidentSpec>) -> Vec<Arc<Incident>> {
    specs
        .into_iter()
        .map(|s| Arc::new(s.validate(Origin::File).unwrap()))
        .collect()
}

/// A recording of `n` that started at `start` (UTC) and lasted `secs`.
fn rec(n: u8, start: &str, secs: u32, status: RecordingStatus) -> Recording {
    Recording {
        sid: sid(n),
        account_sid: ACCOUNT.parse().unwrap(),
        call_sid: None,
        start_time: Some(start.parse().unwrap()),
        duration: Some(secs),
        channels: Some(1),
        source: None,
        track: None,
        status,
        error_code: None,
        formats: vec![Format::Wav],
        deleted_at: None,
        deleted_reason: None,
    }
}

fn completed(n: u8, start: &str, secs: u32) -> Recording {
    rec(n, start, secs, RecordingStatus::Completed)
}

fn verdict(r: &Recording, storage: StorageAnswer, incidents: &[Arc<Incident>]) -> &'static str {
    decide(&r.sid, Some(r), None, storage, incidents).name()
}

#[test]
fn present_is_available() {
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::Present, &reg(vec![may9()])),
        "available"
    );
}

#[test]
fn missing_in_a_loss_window_is_lost_and_names_the_incident() {
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    let v = decide(
        &r.sid,
        Some(&r),
        None,
        StorageAnswer::NotFound,
        &reg(vec![may9()]),
    );
    assert_eq!(v.name(), "lost");
    assert_eq!(v.incident().unwrap().id(), "2017-05-09");
}

#[test]
fn window_bounds_are_inclusive() {
    let incidents = reg(vec![may9()]);
    // Ends exactly at 17:48:00 UTC (10:48 PDT) and exactly at 18:31:00 UTC.
    let at_start = completed(1, "2017-05-09T17:47:00Z", 60);
    let at_end = completed(2, "2017-05-09T18:30:00Z", 60);
    assert_eq!(
        verdict(&at_start, StorageAnswer::NotFound, &incidents),
        "lost"
    );
    assert_eq!(
        verdict(&at_end, StorageAnswer::NotFound, &incidents),
        "lost"
    );
    // One second outside either bound.
    let before = completed(3, "2017-05-09T17:46:59Z", 60);
    let after = completed(4, "2017-05-09T18:30:01Z", 60);
    assert_eq!(
        verdict(&before, StorageAnswer::NotFound, &incidents),
        "unexplained"
    );
    assert_eq!(
        verdict(&after, StorageAnswer::NotFound, &incidents),
        "unexplained"
    );
}

#[test]
fn the_call_end_time_matters_not_its_start() {
    let incidents = reg(vec![may9()]);
    // Started an hour before the window, ended inside it.
    let long_call = completed(1, "2017-05-09T16:50:00Z", 3_600);
    assert_eq!(
        verdict(&long_call, StorageAnswer::NotFound, &incidents),
        "lost"
    );
    // Started inside the window, ended after it.
    let late_end = completed(2, "2017-05-09T18:00:00Z", 3_600);
    assert_eq!(
        verdict(&late_end, StorageAnswer::NotFound, &incidents),
        "unexplained"
    );
}

#[test]
fn match_on_start_compares_the_start() {
    let mut s = may9();
    s.match_on = MatchOn::Start;
    let incidents = reg(vec![s]);
    let late_end = completed(2, "2017-05-09T18:00:00Z", 3_600);
    assert_eq!(
        verdict(&late_end, StorageAnswer::NotFound, &incidents),
        "lost"
    );
}

#[test]
fn the_window_is_daylight_time_in_may() {
    // 10:48 PDT is 17:48 UTC. Read as PST (UTC-8) it would be 18:48 UTC:
    // a call ending at 18:40 UTC is outside the real window.
    let incidents = reg(vec![may9()]);
    assert_eq!(incidents[0].start.to_string(), "2017-05-09T17:48:00Z");
    assert_eq!(incidents[0].end.to_string(), "2017-05-09T18:31:00Z");
    let r = completed(1, "2017-05-09T18:39:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::NotFound, &incidents),
        "unexplained"
    );
    // And a winter window in the same zone is UTC-8.
    let winter = reg(vec![spec(
        "w",
        "2017-01-10T10:00:00",
        "2017-01-10T11:00:00",
    )]);
    assert_eq!(winter[0].start.to_string(), "2017-01-10T18:00:00Z");
}

#[test]
fn an_explicitly_listed_recording_is_lost_whatever_its_time() {
    let mut s = spec("listed", "2001-01-01T00:00:00", "2001-01-01T00:01:00");
    s.recordings = vec![sid(9)];
    let incidents = reg(vec![s]);
    let r = completed(9, "2020-01-01T00:00:00Z", 10);
    assert_eq!(verdict(&r, StorageAnswer::NotFound, &incidents), "lost");
    // Even when the catalog has never heard of it.
    let v = decide(&sid(9), None, None, StorageAnswer::NotFound, &incidents);
    assert_eq!(v.name(), "lost");
}

#[test]
fn a_recovered_incident_explains_nothing_missing() {
    let mut s = may9();
    s.outcome = Outcome::Recovered;
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::NotFound, &reg(vec![s])),
        "unexplained"
    );
}

#[test]
fn an_incident_still_recovering_says_so() {
    for status in [IncidentStatus::Recovering, IncidentStatus::Investigating] {
        let mut s = may9();
        s.status = status;
        let r = completed(1, "2017-05-09T17:50:00Z", 60);
        assert_eq!(
            verdict(&r, StorageAnswer::NotFound, &reg(vec![s])),
            "recovering"
        );
    }
}

#[test]
fn overlapping_incidents_prefer_a_listing_then_the_latest() {
    let wide = spec("wide", "2017-05-09T08:00:00", "2017-05-09T17:00:00");
    let narrow = may9();
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    let v = decide(
        &r.sid,
        Some(&r),
        None,
        StorageAnswer::NotFound,
        &reg(vec![wide.clone(), narrow.clone()]),
    );
    assert_eq!(
        v.incident().unwrap().id(),
        "2017-05-09",
        "the later-starting window"
    );
    let mut listing = spec("listing", "2000-01-01T00:00:00", "2000-01-01T00:00:00");
    listing.recordings = vec![sid(1)];
    let v = decide(
        &r.sid,
        Some(&r),
        None,
        StorageAnswer::NotFound,
        &reg(vec![wide, narrow, listing]),
    );
    assert_eq!(v.incident().unwrap().id(), "listing");
}

#[test]
fn account_scope_limits_an_incident() {
    let mut s = may9();
    s.accounts = vec!["AC00000000000000000000000000000001".parse().unwrap()];
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::NotFound, &reg(vec![s])),
        "unexplained"
    );
}

#[test]
fn a_listing_in_another_accounts_incident_is_not_seen_by_this_one() {
    let other: AccountSid = "AC00000000000000000000000000000001".parse().unwrap();
    let me: AccountSid = ACCOUNT.parse().unwrap();
    let mut s = spec("theirs", "2001-01-01T00:00:00", "2001-01-01T00:01:00");
    s.accounts = vec![other.clone()];
    s.recordings = vec![sid(9)];
    let incidents = reg(vec![s]);
    // The scope is checked before the list, for the recording's account
    // and, when the catalog has no entry, for the viewer's.
    let mine = completed(9, "2020-01-01T00:00:00Z", 10);
    assert_eq!(
        verdict(&mine, StorageAnswer::NotFound, &incidents),
        "unexplained"
    );
    let v = decide(
        &sid(9),
        None,
        Some(&me),
        StorageAnswer::NotFound,
        &incidents,
    );
    assert_eq!(v.name(), "unknown", "as for any sid nobody listed");
    let v = decide(
        &sid(9),
        None,
        Some(&other),
        StorageAnswer::NotFound,
        &incidents,
    );
    assert_eq!(v.name(), "lost", "the scoped account still sees it");
    let v = decide(&sid(9), None, None, StorageAnswer::NotFound, &incidents);
    assert_eq!(v.name(), "lost", "and so does the admin");
}

#[test]
fn storage_unavailable_is_never_a_loss() {
    let incidents = reg(vec![may9()]);
    let r = completed(1, "2017-05-09T17:50:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::Unavailable, &incidents),
        "storage_unavailable"
    );
    let v = decide(&sid(2), None, None, StorageAnswer::Unavailable, &incidents);
    assert_eq!(v.name(), "storage_unavailable", "not even 'unknown'");
}

#[test]
fn deleted_wins_even_over_a_lingering_object() {
    let mut r = rec(1, "2017-05-09T15:00:00Z", 60, RecordingStatus::Deleted);
    r.deleted_at = Some("2018-05-09T00:00:00Z".parse().unwrap());
    r.deleted_reason = Some("retention".into());
    for answer in [
        StorageAnswer::Present,
        StorageAnswer::NotFound,
        StorageAnswer::Unavailable,
    ] {
        let v = decide(&r.sid, Some(&r), None, answer, &[]);
        assert!(matches!(&v, Verdict::Deleted { reason: Some(x), .. } if x == "retention"));
    }
}

#[test]
fn absent_and_failed_recordings_had_no_audio() {
    let mut r = rec(1, "2017-05-09T15:00:00Z", 1, RecordingStatus::Absent);
    r.error_code = Some(16101);
    let v = decide(&r.sid, Some(&r), None, StorageAnswer::NotFound, &[]);
    assert_eq!(
        v,
        Verdict::Absent {
            error_code: Some(16101),
            failed: false
        }
    );
    let r = rec(2, "2017-05-09T15:00:00Z", 1, RecordingStatus::Failed);
    assert_eq!(verdict(&r, StorageAnswer::NotFound, &[]), "absent");
    // A failed recording whose audio did arrive plays.
    assert_eq!(verdict(&r, StorageAnswer::Present, &[]), "available");
    assert_eq!(
        verdict(&r, StorageAnswer::Unavailable, &[]),
        "storage_unavailable"
    );
}

#[test]
fn processing_recordings_are_pending_until_stored() {
    for status in [RecordingStatus::Processing, RecordingStatus::InProgress] {
        let r = rec(1, "2017-05-09T15:00:00Z", 60, status);
        assert_eq!(verdict(&r, StorageAnswer::NotFound, &[]), "pending");
        assert_eq!(verdict(&r, StorageAnswer::Present, &[]), "available");
    }
}

#[test]
fn a_completed_recording_missing_outside_incidents_is_unexplained() {
    let r = completed(1, "2017-05-09T15:00:00Z", 60);
    assert_eq!(
        verdict(&r, StorageAnswer::NotFound, &reg(vec![may9()])),
        "unexplained"
    );
}

#[test]
fn nothing_known_is_unknown() {
    assert_eq!(
        decide(
            &sid(1),
            None,
            None,
            StorageAnswer::NotFound,
            &reg(vec![may9()])
        )
        .name(),
        "unknown"
    );
    assert_eq!(
        decide(&sid(1), None, None, StorageAnswer::Present, &[]).name(),
        "available"
    );
}

#[test]
fn a_recording_without_times_matches_only_listings() {
    let mut r = completed(1, "2017-05-09T17:50:00Z", 60);
    r.start_time = None;
    assert_eq!(
        verdict(&r, StorageAnswer::NotFound, &reg(vec![may9()])),
        "unexplained"
    );
}
