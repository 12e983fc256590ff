//! `playback-gateway import FILE.jsonl`: recordings in Twilio's JSON shape
//! (one Recording resource per line, as the REST API lists them) into the
//! catalog. Streams the file; a bad line is reported with its number and
//! the good ones are still imported; a re-run changes nothing.

use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;

use crate::catalog::{Catalog, Recording, RecordingStatus};
use crate::keys::Format;
use crate::sid::{AccountSid, CallSid, RecordingSid};

/// One line as Twilio writes it. Unknown fields (`uri`, `price`, …) are
/// ignored; numbers may come as strings, as Twilio sends `duration`.
#[derive(Debug, Deserialize)]
struct Line {
    sid: RecordingSid,
    account_sid: AccountSid,
    call_sid: Option<CallSid>,
    start_time: Option<String>,
    #[serde(default, deserialize_with = "number")]
    duration: Option<u32>,
    #[serde(default, deserialize_with = "number")]
    channels: Option<u8>,
    source: Option<String>,
    track: Option<String>,
    status: String,
    #[serde(default, deserialize_with = "number")]
    error_code: Option<u32>,
    /// Our extension: stored formats (default both).
    formats: Option<Vec<Format>>,
    deleted_at: Option<String>,
    deleted_reason: Option<String>,
}

/// Accepts `60`, `"60"` and `null`; Twilio's `-1` (not known yet) is `None`.
fn number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + TryFrom<u64>,
{
    use serde::de::Error;
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() || s == "-1" => Ok(None),
        Some(serde_json::Value::Number(n)) if n.as_i64() == Some(-1) => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{s:?} is not a whole number in range"))),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range"))),
        Some(other) => Err(D::Error::custom(format!("{other} is not a number"))),
    }
}

/// RFC 2822 (Twilio's API: `Tue, 09 May 2017 17:49:00 +0000`) or RFC 3339.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    jiff::fmt::rfc2822::parse(s)
        .map(|z| z.timestamp())
        .map_err(|_| format!("{s:?} is neither RFC 2822 nor RFC 3339"))
}

/// Parses one line into a recording.
pub fn parse_line(line: &str) -> Result<Recording, String> {
    // Straight into the typed line (one pass, no intermediate tree); the
    // error says what is wrong in the reader's words.
    match serde_json::from_str::<Line>(line) {
        Ok(l) => from_line(l),
        Err(e) if e.is_syntax() || e.is_eof() => {
            Err(format!("not a JSON object (column {})", e.column()))
        }
        Err(_) if !line.trim_start().starts_with('{') => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses one recording in Twilio's JSON shape.
pub fn parse_value(value: serde_json::Value) -> Result<Recording, String> {
    from_line(serde_json::from_value(value).map_err(|e| e.to_string())?)
}

fn from_line(l: Line) -> Result<Recording, String> {
    let status: RecordingStatus = l.status.parse()?;
    let time = |s: Option<String>, what: &str| {
        s.filter(|s| !s.is_empty())
            .map(|s| parse_time(&s).map_err(|e| format!("{what}: {e}")))
            .transpose()
    };
    Ok(Recording {
        sid: l.sid,
        account_sid: l.account_sid,
        call_sid: l.call_sid,
        start_time: time(l.start_time, "start_time")?,
        duration: l.duration,
        channels: l.channels,
        source: l.source,
        track: l.track,
        status,
        error_code: l.error_code,
        formats: l.formats.unwrap_or_else(|| Format::ALL.to_vec()),
        deleted_at: time(l.deleted_at, "deleted_at")?,
        deleted_reason: l.deleted_reason,
    })
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub lines: usize,
    /// Good lines.
    pub imported: usize,
    /// Good lines that added or changed a catalog row.
    pub changed: usize,
    /// `(line number, why)`, first 100 kept.
    pub errors: Vec<(usize, String)>,
    pub error_count: usize,
    /// Sids the catalog already gives to another account than the line
    /// does (first 100 kept): refused, nothing of them changed.
    pub foreign: Vec<crate::sid::RecordingSid>,
    pub foreign_count: usize,
}

/// Rows per transaction: one fsync per batch, not per row.
const BATCH: usize = 1_000;

/// Batches in flight between the reading thread and the writer: memory
/// stays flat whatever the file's size.
const IN_FLIGHT: usize = 4;

/// The import file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// One Twilio Recording JSON object per line.
    Jsonl,
    /// A header row with Twilio's field names (`sid` or `RecordingSid`, …).
    Csv,
}

impl FileFormat {
    /// From the file name: `.csv` is CSV, anything else JSONL.
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => FileFormat::Csv,
            _ => FileFormat::Jsonl,
        }
    }
}

/// A CSV header, mapped to the JSON field it carries (`None`: ignored).
/// Accepts the API's snake_case and the webhooks' PascalCase names.
fn csv_field(header: &str) -> Option<&'static str> {
    let h: String = header
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match h.as_str() {
        "sid" | "recordingsid" => "sid",
        "accountsid" => "account_sid",
        "callsid" => "call_sid",
        "starttime" | "recordingstarttime" => "start_time",
        "duration" | "recordingduration" => "duration",
        "channels" | "recordingchannels" => "channels",
        "source" | "recordingsource" => "source",
        "track" | "recordingtrack" => "track",
        "status" | "recordingstatus" => "status",
        "errorcode" => "error_code",
        "formats" => "formats",
        "deletedat" => "deleted_at",
        "deletedreason" => "deleted_reason",
        _ => return None,
    })
}

/// One CSV record as the JSON object `parse_value` reads.
fn csv_value(fields: &[Option<&'static str>], record: &csv::StringRecord) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    for (field, cell) in fields.iter().zip(record.iter()) {
        let (Some(field), cell) = (field, cell.trim()) else {
            continue;
        };
        if cell.is_empty() {
            continue;
        }
        let value = if *field == "formats" {
            serde_json::Value::from(cell.split(',').map(str::trim).collect::<Vec<_>>())
        } else {
            serde_json::Value::from(cell)
        };
        obj.insert((*field).to_owned(), value);
    }
    serde_json::Value::Object(obj)
}

/// What the reading thread hands the writer.
struct Batch {
    rows: Vec<Recording>,
    /// `(line, why)` of the lines in this batch that failed.
    errors: Vec<(usize, String)>,
    lines: usize,
}

/// Reads and parses the file on a blocking thread, sending batches.
fn read_file(
    path: &Path,
    format: FileFormat,
    progress: &indicatif::ProgressBar,
    tx: &tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let reader = std::io::BufReader::new(progress.wrap_read(file));
    let mut batch = Batch {
        rows: Vec::with_capacity(BATCH),
        errors: Vec::new(),
        lines: 0,
    };
    let push = |batch: &mut Batch, line: usize, parsed: Result<Recording, String>| {
        batch.lines = line;
        match parsed {
            Ok(r) => batch.rows.push(r),
            Err(why) => batch.errors.push((line, why)),
        }
        if batch.rows.len() + batch.errors.len() >= BATCH {
            let full = std::mem::replace(
                batch,
                Batch {
                    rows: Vec::with_capacity(BATCH),
                    errors: Vec::new(),
                    lines: line,
                },
            );
            tx.blocking_send(full)
                .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
        }
        anyhow::Ok(())
    };
    match format {
        FileFormat::Jsonl => {
            for (i, line) in reader.lines().enumerate() {
                let line =
                    line.map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), i + 1))?;
                if line.trim().is_empty() {
                    batch.lines = i + 1;
                    continue;
                }
                push(&mut batch, i + 1, parse_line(&line))?;
            }
        }
        FileFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let headers = csv
                .headers()
                .map_err(|e| anyhow::anyhow!("{}: header row: {e}", path.display()))?;
            let fields: Vec<_> = headers.iter().map(csv_field).collect();
            for needed in ["sid", "account_sid", "status"] {
                if !fields.contains(&Some(needed)) {
                    anyhow::bail!("{}: the header row has no {needed} column", path.display());
                }
            }
            let mut record = csv::StringRecord::new();
            loop {
                match csv.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line() as usize);
                        push(&mut batch, line, parse_value(csv_value(&fields, &record)))?;
                    }
                    Err(e) => {
                        let line = e.position().map_or(batch.lines + 1, |p| p.line() as usize);
                        push(&mut batch, line, Err(format!("not a CSV record: {e}")))?;
                    }
                }
            }
        }
    }
    if !batch.rows.is_empty() || !batch.errors.is_empty() || batch.lines > 0 {
        tx.blocking_send(batch)
            .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
    }
    Ok(())
}

/// Imports a JSONL or CSV file, streaming it: a thread reads and parses,
/// this task writes batches, and the progress bar (on a terminal) follows
/// the bytes read.
pub async fn import_file(
    catalog: &Catalog,
    path: &Path,
    format: FileFormat,
    progress: indicatif::ProgressBar,
) -> anyhow::Result<Summary> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .len();
    progress.set_length(len);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(IN_FLIGHT);
    let reader = {
        let (path, progress) = (path.to_owned(), progress.clone());
        tokio::task::spawn_blocking(move || read_file(&path, format, &progress, &tx))
    };
    let mut summary = Summary::default();
    while let Some(batch) = rx.recv().await {
        summary.lines = summary.lines.max(batch.lines);
        summary.imported += batch.rows.len();
        summary.error_count += batch.errors.len();
        for e in batch.errors {
            if summary.errors.len() < 100 {
                summary.errors.push(e);
            }
        }
        let upserted = catalog.upsert_many(&batch.rows).await?;
        summary.changed += upserted.changed;
        summary.imported -= upserted.foreign.len();
        summary.foreign_count += upserted.foreign.len();
        let room = 100usize.saturating_sub(summary.foreign.len());
        summary
            .foreign
            .extend(upserted.foreign.into_iter().take(room));
    }
    reader.await??;
    progress.finish_and_clear();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_headers_take_both_spellings() {
        assert_eq!(csv_field("RecordingSid"), Some("sid"));
        assert_eq!(csv_field("account_sid"), Some("account_sid"));
        assert_eq!(csv_field("Recording Start Time"), Some("start_time"));
        assert_eq!(csv_field("price"), None);
    }

    const TWILIO: &str = r#"{"account_sid": "AC0123456789abcdef0123456789abcdef", "api_version": "2010-04-01", "call_sid": "CA0123456789abcdef0123456789abcdef", "conference_sid": null, "date_created": "Tue, 09 May 2017 17:51:00 +0000", "date_updated": "Tue, 09 May 2017 17:51:00 +0000", "start_time": "Tue, 09 May 2017 17:49:00 +0000", "duration": "60", "sid": "RE0123456789abcdef0123456789abcdef", "price": "-0.0025", "price_unit": "USD", "status": "completed", "channels": 1, "source": "DialVerb", "error_code": null, "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Recordings/RE0123456789abcdef0123456789abcdef.json"}"#;

    #[test]
    fn parses_twilios_own_shape() {
        let r = parse_line(TWILIO).unwrap();
        assert_eq!(r.start_time.unwrap().to_string(), "2017-05-09T17:49:00Z");
        assert_eq!(r.duration, Some(60));
        assert_eq!(r.end_time().unwrap().to_string(), "2017-05-09T17:50:00Z");
        assert_eq!(r.status, RecordingStatus::Completed);
        assert_eq!(r.source.as_deref(), Some("DialVerb"));
        assert_eq!(r.formats, Format::ALL.to_vec());
    }

    #[test]
    fn minus_one_means_not_known_yet() {
        let r = parse_line(&TWILIO.replace("\"60\"", "\"-1\"")).unwrap();
        assert_eq!(r.duration, None);
    }

    #[test]
    fn garbage_lines_say_why() {
        for (line, why) in [
            ("", "not a JSON object"),
            ("{", "not a JSON object"),
            ("{not json", "not a JSON object"),
            ("[]", "not a JSON object"),
            (&TWILIO.replace("RE0123", "RX0123"), "recording sids"),
            (&TWILIO.replace("\"60\"", "\"sixty\""), "whole number"),
            (&TWILIO.replace("\"60\"", "-5"), "whole number"),
            (&TWILIO.replace("\"60\"", "99999999999"), "whole number"),
            (
                &TWILIO.replace("completed", "done"),
                "unknown recording status",
            ),
            (
                &TWILIO.replace("Tue, 09 May 2017 17:49:00 +0000", "yesterday"),
                "start_time",
            ),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }
}
