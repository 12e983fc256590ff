use super::*;
use crate::catalog::RecordingStatus;
use crate::incidents::BUILTIN;

const A: &str = "AC00000000000000000000000000000001";

fn rec(n: u32, status: RecordingStatus, end: &str, duration: u32) -> Recording {
    let end: jiff::Timestamp = end.parse().unwrap();
    Recording {
        sid: format!("RE{n:032x}").parse().unwrap(),
        account_sid: A.parse().unwrap(),
        call_sid: None,
        start_time: Some(end - jiff::SignedDuration::from_secs(i64::from(duration))),
        duration: Some(duration),
        channels: Some(1),
        source: None,
        track: None,
        status,
        error_code: None,
        formats: vec![Format::Wav, Format::Mp3],
        deleted_at: None,
        deleted_reason: None,
    }
}

fn obj(n: u32, ext: &str, size: u64) -> Listed {
    Listed {
        key: format!("{A}/RE{n:032x}.{ext}"),
        size,
    }
}

fn run(recs: Vec<Recording>, objs: Vec<Listed>, check_unknown: bool) -> (Counts, Vec<Finding>) {
    let layout = KeyLayout::default();
    let incidents = vec![Arc::new(
        crate::incidents::parse_toml("2017-05-09", BUILTIN[0].1).unwrap(),
    )];
    let ctx = Context {
        layout: &layout,
        incidents: &incidents,
        check_unknown,
    };
    let mut found = Vec::new();
    let counts = reconcile::<String>(
        recs.into_iter().map(Ok),
        objs.into_iter().map(Ok),
        &ctx,
        |f| found.push(f),
    )
    .unwrap();
    (counts, found)
}

const QUIET: &str = "2017-06-01T12:00:00Z";
const IN_WINDOW: &str = "2017-05-09T18:00:00Z";
const BIG: u64 = 10_000_000;

#[test]
fn every_kind_of_difference_is_found_once() {
    use RecordingStatus::*;
    let recs = vec![
        rec(1, Completed, QUIET, 60),     // both stored: fine
        rec(2, Completed, QUIET, 60),     // mp3 missing: unexplained
        rec(3, Completed, IN_WINDOW, 60), // both missing, in 2017-05-09: explained
        rec(5, Completed, QUIET, 600),    // wav truncated, mp3 empty
        rec(6, Deleted, QUIET, 60),       // still stored
        rec(7, Processing, QUIET, 60),    // nothing owed
        rec(8, Absent, QUIET, 60),        // nothing owed
    ];
    let objs = vec![
        obj(1, "mp3", BIG),
        obj(1, "wav", BIG),
        obj(2, "wav", BIG),
        obj(4, "wav", 123), // unknown to the catalog
        obj(5, "mp3", 0),
        obj(5, "ogg", 1), // between mp3 and wav: unknown
        obj(5, "wav", 1_000),
        obj(6, "wav", BIG),
        obj(9, "mp3", 5), // after every recording: unknown
    ];
    let (counts, found) = run(recs, objs, true);
    assert_eq!(counts.recordings, 7);
    assert_eq!(counts.objects, 9);
    let kinds: Vec<(Kind, String)> = found.iter().map(|f| (f.kind, f.keys.join(" "))).collect();
    let key = |n: u32, ext: &str| obj(n, ext, 0).key;
    assert_eq!(
        kinds,
        vec![
            (Kind::MissingUnexplained, key(2, "mp3")),
            (
                Kind::MissingExplained,
                format!("{} {}", key(3, "mp3"), key(3, "wav"))
            ),
            (Kind::UnknownObject, key(4, "wav")),
            (Kind::UnknownObject, key(5, "ogg")),
            (Kind::SizeMismatch, key(5, "mp3")),
            (Kind::SizeMismatch, key(5, "wav")),
            (Kind::DeletedButStored, key(6, "wav")),
            (Kind::UnknownObject, key(9, "mp3")),
        ]
    );
    let explained = &found[1];
    assert_eq!(explained.incident.as_deref(), Some("2017-05-09"));
    assert_eq!(explained.formats, vec![Format::Mp3, Format::Wav]);
    assert_eq!(found[0].end_time, Some(QUIET.parse().unwrap()));
    assert_eq!(found[5].expected_min_size, Some(44 + 599 * 8_000));
    assert_eq!(
        (
            counts.missing_unexplained,
            counts.missing_explained,
            counts.unknown_object
        ),
        (1, 1, 3)
    );
    assert_eq!((counts.size_mismatch, counts.deleted_but_stored), (2, 1));
}

#[test]
fn unknown_objects_are_not_reported_when_not_asked() {
    let (counts, found) = run(vec![], vec![obj(4, "wav", 1)], false);
    assert_eq!((counts.objects, found.len()), (1, 0));
}

#[test]
fn empty_sides_are_fine() {
    let (counts, found) = run(vec![], vec![], true);
    assert_eq!((counts.recordings, counts.objects, found.len()), (0, 0, 0));
    let all_missing: Vec<_> = (1..=3)
        .map(|n| rec(n, RecordingStatus::Completed, QUIET, 10))
        .collect();
    let (counts, _) = run(all_missing, vec![], true);
    assert_eq!(counts.missing_unexplained, 3);
}

#[test]
fn a_side_out_of_order_stops_the_merge_instead_of_inventing_losses() {
    let layout = KeyLayout::default();
    let ctx = Context {
        layout: &layout,
        incidents: &[],
        check_unknown: true,
    };
    let objs = vec![obj(2, "wav", 1), obj(1, "wav", 1)];
    let r = reconcile::<String>(std::iter::empty(), objs.into_iter().map(Ok), &ctx, |_| {});
    assert!(matches!(r, Err(MergeError::Order(_))));
    let recs = vec![
        rec(2, RecordingStatus::Completed, QUIET, 1),
        rec(1, RecordingStatus::Completed, QUIET, 1),
    ];
    let r = reconcile::<String>(recs.into_iter().map(Ok), std::iter::empty(), &ctx, |_| {});
    assert!(matches!(r, Err(MergeError::Order(_))));
}

#[test]
fn an_error_on_either_side_ends_the_audit() {
    let layout = KeyLayout::default();
    let ctx = Context {
        layout: &layout,
        incidents: &[],
        check_unknown: true,
    };
    let objs: Vec<Result<Listed, String>> = vec![Ok(obj(1, "wav", 1)), Err("timeout".into())];
    let mut found = 0;
    let r = reconcile(
        vec![Ok(rec(5, RecordingStatus::Completed, QUIET, 1))],
        objs,
        &ctx,
        |_| found += 1,
    );
    assert_eq!(r, Err(MergeError::Side("timeout".to_owned())));
}

#[test]
fn minimum_sizes() {
    assert_eq!(min_size(Format::Mp3, Some(61), None), 60_000);
    assert_eq!(min_size(Format::Mp3, None, None), 1);
    assert_eq!(min_size(Format::Wav, Some(1), Some(2)), 44);
    assert_eq!(min_size(Format::Wav, Some(11), Some(2)), 44 + 160_000);
}
