//! The merge at the heart of the audit: catalog recordings and storage
//! objects, both in key order, walked side by side once. Pure: it sees two
//! iterators and the incident snapshot, and says what differs.

use std::sync::Arc;

use super::{Counts, Finding, Kind};
use crate::catalog::{Recording, RecordingStatus};
use crate::incidents::Incident;
use crate::keys::{Format, KeyLayout};
use crate::storage::Listed;
use crate::verdict::{StorageAnswer, Verdict, decide};

/// What the merge needs besides the two sides.
pub struct Context<'a> {
    pub layout: &'a KeyLayout,
    pub incidents: &'a [Arc<Incident>],
    /// Report objects no recording accounts for (off when the catalog side
    /// is a time range: other objects are then expected).
    pub check_unknown: bool,
}

/// Why the merge stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError<E> {
    #[error("{0}")]
    Side(E),
    /// A side was not in key order: merging it would invent differences.
    #[error("{0}")]
    Order(String),
}

/// The least a stored recording of `duration` seconds can weigh: 8 kbit/s
/// for MP3 (below any speech codec setting), 8-bit 8 kHz per channel for
/// WAV plus its header, with a second of slack for rounded durations.
/// Twilio's own files are 4 and 4 to 8 times larger; these bounds only
/// catch truncated and empty uploads.
pub fn min_size(format: Format, duration: Option<u32>, channels: Option<u8>) -> u64 {
    let secs = u64::from(duration.unwrap_or(0).saturating_sub(1));
    match format {
        Format::Mp3 => (secs * 1_000).max(1),
        Format::Wav => 44 + secs * 8_000 * u64::from(channels.unwrap_or(1).max(1)),
    }
}

/// One recording's keys, every format, in key order (`mp3` < `wav`).
fn keys_of(layout: &KeyLayout, r: &Recording) -> [(Format, String); 2] {
    let key = |f| layout.render(Some(&r.account_sid), &r.sid, f);
    [
        (Format::Mp3, key(Format::Mp3)),
        (Format::Wav, key(Format::Wav)),
    ]
}

/// Walks both sides and calls `found` for each difference; returns the
/// counts. Stops at the first error of either side.
pub fn reconcile<E>(
    catalog: impl IntoIterator<Item = Result<Recording, E>>,
    storage: impl IntoIterator<Item = Result<Listed, E>>,
    ctx: &Context<'_>,
    mut found: impl FnMut(Finding),
) -> Result<Counts, MergeError<E>> {
    let mut counts = Counts::default();
    let mut storage = Ordered::new(storage.into_iter());
    let mut report = |counts: &mut Counts, f: Finding| {
        counts.add(f.kind);
        found(f);
    };
    let mut last_rec_key = String::new();
    for rec in catalog {
        let rec = rec.map_err(MergeError::Side)?;
        counts.recordings += 1;
        let keys = keys_of(ctx.layout, &rec);
        let (first, last) = (&keys[0].1, &keys[1].1);
        if *first <= last_rec_key {
            return Err(MergeError::Order(format!(
                "the catalog returned {} out of key order",
                rec.sid
            )));
        }
        last_rec_key.clone_from(last);
        let mut present: Vec<(Format, u64)> = Vec::new();
        while let Some(obj) = storage.peek(&mut counts)? {
            if obj.key > *last {
                break;
            }
            let obj = storage.take();
            match keys.iter().find(|(_, k)| *k == obj.key) {
                Some((format, _)) => present.push((*format, obj.size)),
                None if ctx.check_unknown => report(&mut counts, unknown(obj)),
                None => {}
            }
        }
        for f in judge(&rec, &keys, &present, ctx) {
            report(&mut counts, f);
        }
    }
    while let Some(obj) = storage.peek(&mut counts)? {
        let obj = obj.clone();
        storage.take();
        if ctx.check_unknown {
            report(&mut counts, unknown(obj));
        }
    }
    Ok(counts)
}

/// The storage side, checked to be in strictly increasing key order, with
/// one object of look-ahead.
struct Ordered<I> {
    inner: I,
    head: Option<Listed>,
    last: Option<String>,
}

impl<I, E> Ordered<I>
where
    I: Iterator<Item = Result<Listed, E>>,
{
    fn new(inner: I) -> Self {
        Self {
            inner,
            head: None,
            last: None,
        }
    }

    fn peek(&mut self, counts: &mut Counts) -> Result<Option<&Listed>, MergeError<E>> {
        if self.head.is_none() {
            let Some(next) = self.inner.next() else {
                return Ok(None);
            };
            let next = next.map_err(MergeError::Side)?;
            if self.last.as_ref().is_some_and(|l| *l >= next.key) {
                return Err(MergeError::Order(format!(
                    "storage listed {:?} out of key order",
                    next.key
                )));
            }
            self.last = Some(next.key.clone());
            counts.objects += 1;
            self.head = Some(next);
        }
        Ok(self.head.as_ref())
    }

    fn take(&mut self) -> Listed {
        self.head.take().expect("peeked before")
    }
}

fn unknown(obj: Listed) -> Finding {
    Finding {
        kind: Kind::UnknownObject,
        sid: None,
        account_sid: None,
        formats: vec![],
        detail: format!(
            "{} ({} bytes) is in storage, but no recording in the catalog has this key.",
            obj.key, obj.size
        ),
        keys: vec![obj.key],
        end_time: None,
        incident: None,
        size: Some(obj.size),
        expected_min_size: None,
    }
}

/// The findings about one recording, given which of its keys are stored.
fn judge(
    rec: &Recording,
    keys: &[(Format, String); 2],
    present: &[(Format, u64)],
    ctx: &Context<'_>,
) -> Vec<Finding> {
    let finding = |kind, formats: Vec<Format>, detail: String| Finding {
        kind,
        sid: Some(rec.sid.clone()),
        account_sid: Some(rec.account_sid.clone()),
        keys: keys
            .iter()
            .filter(|(f, _)| formats.contains(f))
            .map(|(_, k)| k.clone())
            .collect(),
        formats,
        end_time: rec.end_time(),
        incident: None,
        size: None,
        expected_min_size: None,
        detail,
    };
    let mut out = Vec::new();
    match rec.status {
        RecordingStatus::Completed => {
            let mut expected = rec.formats.clone();
            expected.sort_by_key(|f| f.ext());
            let missing: Vec<Format> = expected
                .iter()
                .filter(|f| !present.iter().any(|(p, _)| p == *f))
                .copied()
                .collect();
            if !missing.is_empty() {
                let names = missing
                    .iter()
                    .map(|f| f.ext())
                    .collect::<Vec<_>>()
                    .join(" and ");
                let mut f = match decide(
                    &rec.sid,
                    Some(rec),
                    None,
                    StorageAnswer::NotFound,
                    ctx.incidents,
                ) {
                    Verdict::Lost(i) | Verdict::Recovering(i) => {
                        let mut f = finding(
                            Kind::MissingExplained,
                            missing,
                            format!(
                                "The {names} audio is missing; incident {} explains it.",
                                i.id()
                            ),
                        );
                        f.incident = Some(i.id().to_owned());
                        f
                    }
                    _ => finding(
                        Kind::MissingUnexplained,
                        missing,
                        format!(
                            "The catalog says completed, but the {names} audio is not in \
                             storage and no incident explains it."
                        ),
                    ),
                };
                f.end_time = rec.end_time();
                out.push(f);
            }
            for &(format, size) in present {
                let least = min_size(format, rec.duration, rec.channels);
                if expected.contains(&format) && size < least {
                    let mut f = finding(
                        Kind::SizeMismatch,
                        vec![format],
                        if size == 0 {
                            format!("The {} audio is stored empty (0 bytes).", format.ext())
                        } else {
                            format!(
                                "The {} audio is {size} bytes, less than the {least} a {}-second \
                                 recording needs: the upload was cut short.",
                                format.ext(),
                                rec.duration.unwrap_or(0)
                            )
                        },
                    );
                    f.size = Some(size);
                    f.expected_min_size = Some(least);
                    out.push(f);
                }
            }
        }
        RecordingStatus::Deleted if !present.is_empty() => {
            let formats: Vec<Format> = present.iter().map(|(f, _)| *f).collect();
            let mut f = finding(
                Kind::DeletedButStored,
                formats,
                "The catalog says this recording was deleted, but its audio is still stored."
                    .into(),
            );
            f.size = Some(present.iter().map(|(_, s)| s).sum());
            out.push(f);
        }
        // In progress, processing, absent or failed: no audio is owed.
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests;
