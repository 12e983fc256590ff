//! `playback-gateway import FILE.jsonl`: recordings in Twilio's JSON shape
//! (one Recording resource per line, as the REST API lists them) into the
//! catalog. Streams the file; a bad line is reported with its number and
//! the good ones are still imported; a re-run changes nothing.

use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

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
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("not a JSON object (column {})", e.column()))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    parse_value(value)
}

/// Parses one recording in Twilio's JSON shape.
pub fn parse_value(value: serde_json::Value) -> Result<Recording, String> {
    let l: Line = serde_json::from_value(value).map_err(|e| e.to_string())?;
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
}

/// Rows per transaction: one fsync per batch, not per row.
const BATCH: usize = 1_000;

/// Imports a JSONL file, streaming it.
pub async fn import_jsonl(catalog: &Catalog, path: &Path) -> anyhow::Result<Summary> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let mut summary = Summary::default();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), summary.lines + 1))?
    {
        summary.lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(rec) => {
                summary.imported += 1;
                batch.push(rec);
            }
            Err(why) => {
                summary.error_count += 1;
                if summary.errors.len() < 100 {
                    summary.errors.push((summary.lines, why));
                }
            }
        }
        if batch.len() >= BATCH {
            summary.changed += catalog.upsert_many(&batch).await?;
            batch.clear();
        }
    }
    summary.changed += catalog.upsert_many(&batch).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

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
