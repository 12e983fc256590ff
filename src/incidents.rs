//! The incident registry's model: what an incident is, how it is written
//! (TOML files in `incidents/`, JSON through the admin API), how it is
//! validated, and which recordings it covers.
//!
//! An incident's window is written in civil time in the incident's own
//! time zone (as the partner reported it) and turned into instants here,
//! once, with jiff; pages show it in that zone and in UTC.

pub mod registry;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::catalog::Recording;
use crate::sid::{AccountSid, RecordingSid};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Known, not understood yet: nothing is declared lost.
    Investigating,
    /// Recordings are being re-uploaded: missing ones may come back.
    Recovering,
    /// Over; the outcome is final.
    Resolved,
}

/// What the incident did to the recordings it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    #[serde(rename = "lost")]
    Lost,
    #[serde(rename = "partially lost")]
    PartiallyLost,
    #[serde(rename = "recovered")]
    Recovered,
}

impl Outcome {
    /// Whether a recording covered by the incident and missing from
    /// storage is explained by it.
    pub fn explains_missing(self) -> bool {
        matches!(self, Outcome::Lost | Outcome::PartiallyLost)
    }
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Lost => "lost",
            Outcome::PartiallyLost => "partially lost",
            Outcome::Recovered => "recovered",
        }
    }
}

/// Which time of a call is compared with the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    /// When the call (its recording) started.
    Start,
    /// When the call ended: start + duration. The 2017-05-09 loss hit
    /// "recordings for calls ending during the incident time window".
    End,
}

/// A link shown with the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub href: String,
}

/// An incident as written by people (TOML file or admin JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// Short, URL-safe: letters, digits, `-`, `_`, `.`.
    pub id: String,
    pub title: String,
    /// The affected service, as the provider names it.
    #[serde(default)]
    pub service: Option<String>,
    pub status: IncidentStatus,
    pub outcome: Outcome,
    /// IANA zone the window is written in, e.g. `America/Los_Angeles`.
    pub time_zone: String,
    /// First and last minute of the window, civil time in `time_zone`
    /// (`2017-05-09T10:48:00`); both bounds are inclusive.
    pub starts: String,
    pub ends: String,
    pub match_on: MatchOn,
    /// Customer-facing: what happened.
    pub summary: String,
    /// Customer-facing: what was lost.
    pub impact: String,
    /// Customer-facing caveats (e.g. some entries were only attempted calls).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Customer-facing: what the reader can do.
    pub what_to_do: String,
    /// When customers were told (`YYYY-MM-DD`), if they were.
    #[serde(default)]
    pub communicated: Option<String>,
    #[serde(default)]
    pub corrective_actions: Vec<String>,
    /// Only these accounts; empty means every account.
    #[serde(default)]
    pub accounts: Vec<AccountSid>,
    /// Recordings known to be affected whatever their times.
    #[serde(default)]
    pub recordings: Vec<RecordingSid>,
    #[serde(default)]
    pub links: Vec<Link>,
}

/// A validated incident with its window resolved to instants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    #[serde(flatten)]
    pub spec: IncidentSpec,
    #[serde(skip)]
    pub start: Timestamp,
    #[serde(skip)]
    pub end: Timestamp,
    #[serde(skip)]
    pub tz: TimeZone,
    /// Where the definition lives: `file` (read-only) or `admin`.
    #[serde(skip)]
    pub origin: Origin,
    /// The window as people read it, worked out once: every lost answer
    /// shows it, several times over.
    #[serde(skip)]
    labels: Labels,
}

/// An incident's window in words, derived from `start`, `end` and `tz`.
#[derive(Debug, Clone, PartialEq)]
struct Labels {
    local: String,
    utc: String,
    start_local: String,
    end_local: String,
}

impl Labels {
    fn of(start: Timestamp, end: Timestamp, tz: &TimeZone) -> Self {
        let (a, b) = (start.to_zoned(tz.clone()), end.to_zoned(tz.clone()));
        Self {
            local: window_label(&a, &b),
            utc: window_label(&start.to_zoned(TimeZone::UTC), &end.to_zoned(TimeZone::UTC)),
            start_local: a.to_string(),
            end_local: b.to_string(),
        }
    }
}

/// Where an incident is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Shipped or configured TOML; edited by editing the file.
    File,
    /// Created through the admin API; stored in the catalog database.
    Admin,
}

/// Why an incident definition was refused. Safe to show to the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incident {id:?}: {field}: {why}")]
pub struct InvalidIncident {
    pub id: String,
    pub field: &'static str,
    pub why: String,
}

/// Text blocks in TOML are written with continuation lines; each is one
/// paragraph.
pub(crate) fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl IncidentSpec {
    /// Validates and resolves the window. Texts are folded into single
    /// paragraphs here, once, rather than on every answer that quotes them
    /// (a warm lost-recording answer spent a fifth of its time on it).
    pub fn validate(mut self, origin: Origin) -> Result<Incident, InvalidIncident> {
        for text in [&mut self.summary, &mut self.impact, &mut self.what_to_do]
            .into_iter()
            .chain(self.notes.iter_mut())
        {
            *text = one_paragraph(text);
        }
        let err = |field: &'static str, why: String| InvalidIncident {
            id: self.id.clone(),
            field,
            why,
        };
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !self.id.starts_with('.');
        if !id_ok {
            return Err(err(
                "id",
                "1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`".into(),
            ));
        }
        for (field, text) in [
            ("title", &self.title),
            ("summary", &self.summary),
            ("impact", &self.impact),
            ("what_to_do", &self.what_to_do),
        ] {
            if text.trim().is_empty() {
                return Err(err(field, "must not be empty".into()));
            }
        }
        let tz = TimeZone::get(&self.time_zone).map_err(|_| {
            err(
                "time_zone",
                format!("{:?} is not an IANA time zone", self.time_zone),
            )
        })?;
        let instant = |field: &'static str, s: &str| -> Result<Timestamp, InvalidIncident> {
            let civil: DateTime = s.parse().map_err(|_| {
                err(
                    field,
                    format!("{s:?} is not a civil date-time like 2017-05-09T10:48:00 (no offset: the zone is time_zone)"),
                )
            })?;
            tz.to_ambiguous_zoned(civil)
                .unambiguous()
                .map(|z| z.timestamp())
                .map_err(|_| {
                    err(
                        field,
                        format!(
                            "{s} does not name one instant in {} (a DST change)",
                            self.time_zone
                        ),
                    )
                })
        };
        let start = instant("starts", &self.starts)?;
        let end = instant("ends", &self.ends)?;
        if end < start {
            return Err(err("ends", "the window ends before it starts".into()));
        }
        if let Some(d) = &self.communicated {
            d.parse::<jiff::civil::Date>()
                .map_err(|_| err("communicated", format!("{d:?} is not a date YYYY-MM-DD")))?;
        }
        for link in &self.links {
            if !safe_href(&link.href) {
                return Err(err(
                    "links",
                    format!(
                        "{:?} must be a path on this site or an http(s) URL",
                        link.href
                    ),
                ));
            }
        }
        Ok(Incident {
            spec: self,
            labels: Labels::of(start, end, &tz),
            start,
            end,
            tz,
            origin,
        })
    }
}

/// How an incident covers a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Listed by sid.
    Listed,
    /// Its matching time falls in the window (and the scope).
    InWindow,
}

impl Incident {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The instant of a recording this incident compares with its window.
    pub fn match_time(&self, rec: &Recording) -> Option<Timestamp> {
        let start = rec.start_time?;
        match self.spec.match_on {
            MatchOn::Start => Some(start),
            MatchOn::End => rec.end_time(),
        }
    }

    /// Whether (and how) the incident covers a recording. `rec` is `None`
    /// when only the sid is known; `viewer` is the account asking (`None`
    /// for the admin and open mode).
    ///
    /// SECURITY: the account scope is checked before the sid list, against
    /// the recording's account or else the viewer's, so a sid listed by an
    /// incident scoped to another account is not covered for this one.
    pub fn covers(
        &self,
        sid: &RecordingSid,
        rec: Option<&Recording>,
        viewer: Option<&AccountSid>,
    ) -> Option<Coverage> {
        let account = rec.map(|r| &r.account_sid).or(viewer);
        if let Some(a) = account
            && !self.spec.accounts.is_empty()
            && !self.spec.accounts.contains(a)
        {
            return None;
        }
        if self.spec.recordings.contains(sid) {
            return Some(Coverage::Listed);
        }
        let t = self.match_time(rec?)?;
        (self.start <= t && t <= self.end).then_some(Coverage::InWindow)
    }

    /// The window in the incident's zone, e.g. `2017-05-09 10:48–11:31 PDT`.
    pub fn window_local(&self) -> &str {
        &self.labels.local
    }

    /// The window in UTC, e.g. `2017-05-09 17:48–18:31 UTC`.
    pub fn window_utc(&self) -> &str {
        &self.labels.utc
    }

    /// Start and end in the incident's zone, RFC 9557
    /// (`2017-05-09T10:48:00-07:00[America/Los_Angeles]`).
    pub fn local_bounds(&self) -> (&str, &str) {
        (&self.labels.start_local, &self.labels.end_local)
    }

    /// The incident page.
    pub fn href(&self) -> String {
        format!("/incidents/{}", self.spec.id)
    }
}

/// Whether an incident link may be rendered as an `href`: an absolute
/// `http(s)` URL, or a path on this site.
///
/// SECURITY: browsers read `\` as `/` and drop tabs and newlines inside
/// URLs, so `/\evil.example` and `/\t/evil.example` are links to another
/// host. Such characters are refused outright, and what is left is read
/// by a URL parser, which must agree: an absolute URL keeps its scheme, a
/// path keeps this site's host.
fn safe_href(href: &str) -> bool {
    if href
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    let mut chars = href.chars();
    if chars.next() == Some('/') {
        if chars.next() == Some('/') {
            return false;
        }
        let base = url::Url::parse("https://this.site/").expect("a valid base");
        return base
            .join(href)
            .is_ok_and(|u| u.host_str() == Some("this.site") && u.scheme() == "https");
    }
    // Spelled out: `http:/x` parses as `http://x/`, but says something else.
    let spelled = ["http://", "https://"].iter().any(|p| {
        href.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    });
    spelled
        && url::Url::parse(href).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
}

/// `2017-05-09 10:48–11:31 PDT`, or both dates when the window spans days.
fn window_label(a: &Zoned, b: &Zoned) -> String {
    if a.date() == b.date() {
        format!(
            "{} {}–{} {}",
            a.strftime("%Y-%m-%d"),
            a.strftime("%H:%M"),
            b.strftime("%H:%M"),
            b.strftime("%Z")
        )
    } else {
        format!(
            "{} – {} {}",
            a.strftime("%Y-%m-%d %H:%M"),
            b.strftime("%Y-%m-%d %H:%M"),
            b.strftime("%Z")
        )
    }
}

/// The incident shipped with the project: 2017-05-09, from the partner's RCA.
pub const BUILTIN: &[(&str, &str)] = &[(
    "incidents/2017-05-09.toml",
    include_str!("../incidents/2017-05-09.toml"),
)];

/// Parses one TOML incident file.
pub fn parse_toml(name: &str, text: &str) -> Result<Incident, String> {
    let spec: IncidentSpec = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    spec.validate(Origin::File)
        .map_err(|e| format!("{name}: {e}"))
}

#[cfg(test)]
mod tests;
