//! What each verdict says to a person: the one source of explanation text,
//! rendered alike as problem+json, HTML and plain text.

use std::sync::Arc;

use crate::incidents::{Incident, IncidentStatus, MatchOn, one_paragraph};
use crate::verdict::Verdict;

/// A verdict put into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One line: what happened to this recording.
    pub title: String,
    /// One or two sentences, complete on their own (problem `detail`).
    pub detail: String,
    /// Further paragraphs (the incident's own account, its impact).
    pub paragraphs: Vec<String>,
    /// Caveats worth knowing.
    pub notes: Vec<String>,
    /// What the reader can do.
    pub what_to_do: Option<String>,
}

/// "calls ending" or "calls starting", as the incident matches.
fn calls_verb(i: &Incident) -> &'static str {
    match i.spec.match_on {
        MatchOn::End => "ending",
        MatchOn::Start => "starting",
    }
}

/// The window in the incident's zone, and in UTC unless that is the same.
fn window(i: &Incident) -> String {
    let (local, utc) = (i.window_local(), i.window_utc());
    if local == utc {
        local.to_owned()
    } else {
        format!("{local} ({utc})")
    }
}

fn lost(i: &Arc<Incident>) -> Explanation {
    // Incident texts are already single paragraphs (see `validate`).
    let mut paragraphs = vec![
        i.spec.summary.clone(),
        format!(
            "{} This recording is one of them: the call took place, but its audio no longer \
             exists anywhere.",
            i.spec.impact
        ),
    ];
    if let Some(d) = &i.spec.communicated {
        paragraphs.push(format!("Customers were informed of this loss on {d}."));
    }
    Explanation {
        title: format!("This recording was lost in incident {}", i.id()),
        detail: format!(
            "The audio of this call was permanently lost in incident {} ({}), which affected \
             recordings of calls {} between {}.",
            i.id(),
            i.spec.title,
            calls_verb(i),
            window(i)
        ),
        paragraphs,
        notes: i.spec.notes.clone(),
        what_to_do: Some(i.spec.what_to_do.clone()),
    }
}

fn recovering(i: &Arc<Incident>) -> Explanation {
    let state = match i.spec.status {
        IncidentStatus::Investigating => "is still being investigated",
        _ => "is still being recovered",
    };
    Explanation {
        title: "This recording is missing while an incident is being handled".into(),
        detail: format!(
            "This recording is missing because of incident {} ({}), which affects recordings \
             of calls {} between {} and {state}. It may come back: try again later.",
            i.id(),
            i.spec.title,
            calls_verb(i),
            window(i)
        ),
        paragraphs: vec![i.spec.summary.clone()],
        notes: i.spec.notes.clone(),
        what_to_do: Some(
            "Try again later; the incident page says how the recovery is going.".into(),
        ),
    }
}

/// Twilio's error codes for recordings without audio.
fn absent_reason(code: Option<u32>, failed: bool) -> String {
    match (code, failed) {
        (Some(16101), _) => "the recording was too short to keep (Twilio error 16101)".into(),
        (Some(16102), _) => "the recording was silent (Twilio error 16102)".into(),
        (Some(c), true) => format!("the provider reported that recording failed (error {c})"),
        (None, true) => "the provider reported that recording failed".into(),
        (Some(c), false) => {
            format!("the telephony provider marked the recording absent (error {c})")
        }
        (None, false) => "the telephony provider marked the recording absent".into(),
    }
}

impl Explanation {
    /// The words for a verdict.
    pub fn of(v: &Verdict) -> Self {
        let plain = |title: &str, detail: String, what: Option<&str>| Explanation {
            title: title.into(),
            detail,
            paragraphs: vec![],
            notes: vec![],
            what_to_do: what.map(str::to_owned),
        };
        match v {
            Verdict::Available => plain(
                "This recording is available",
                "It can be played.".into(),
                None,
            ),
            Verdict::Lost(i) => lost(i),
            Verdict::Recovering(i) => recovering(i),
            Verdict::Deleted { at, reason } => {
                let when = at.map_or(String::new(), |t| format!(" on {}", t.strftime("%Y-%m-%d")));
                let why = reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(" ({})", one_paragraph(r)));
                plain(
                    "This recording was deleted",
                    format!("This recording was deleted{when}{why}; its audio no longer exists."),
                    Some("Deletions are final. The call itself is still in the CRM."),
                )
            }
            Verdict::Absent {
                error_code,
                failed: true,
            } => plain(
                "Recording failed at the telephony provider",
                format!(
                    "The call was recorded, but {}, and no audio reached storage.",
                    absent_reason(*error_code, true)
                ),
                Some(
                    "The audio cannot be played. If the conversation mattered, note what is \
                     known of it in the CRM; the provider's support can say more about the error.",
                ),
            ),
            Verdict::Absent { error_code, .. } => plain(
                "No audio was recorded for this call",
                format!(
                    "No audio exists for this recording: {}.",
                    absent_reason(*error_code, false)
                ),
                Some("Nothing was lost: there was never any audio to keep."),
            ),
            Verdict::Pending => plain(
                "This recording is still being processed",
                "The call was recorded, but the audio has not reached storage yet.".into(),
                Some("Try again in a few minutes."),
            ),
            Verdict::Unexplained => plain(
                "This recording is missing",
                "The catalog says this call was recorded, but storage has no audio for it and \
                 no known incident explains why. The gateway has logged it for the operators."
                    .into(),
                Some("Contact support with the recording id, so that it can be looked into."),
            ),
            Verdict::Unknown => plain(
                "No such recording",
                "There is no recording with this id.".into(),
                Some("Check the link or the recording id."),
            ),
            Verdict::StorageUnavailable => plain(
                "Recording storage is temporarily unavailable",
                "Storage could not be reached just now. Nothing is lost.".into(),
                Some("Try again in a few seconds."),
            ),
        }
    }

    /// Plain text: title, detail, paragraphs, notes, advice.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n\n{}\n", self.title, self.detail);
        for p in &self.paragraphs {
            out.push_str(&format!("\n{p}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("\nNote: {n}\n"));
        }
        if let Some(w) = &self.what_to_do {
            out.push_str(&format!("\nWhat to do: {w}\n"));
        }
        out
    }
}
