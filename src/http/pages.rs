//! HTML pages (askama templates in `templates/`): view models built from
//! domain values, so templates only print prepared strings. Askama escapes
//! every value in `.html` templates.

use askama::Template;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::answer::badge;
use super::lookup::Resolved;
use crate::app::AppState;
use crate::catalog::Recording;
use crate::explain::Explanation;
use crate::incidents::{Incident, Link, MatchOn};
use crate::verdict::Verdict;

/// An incident, ready to print.
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub service: String,
    pub status: String,
    pub outcome: String,
    pub time_zone: String,
    pub window_local: String,
    pub window_utc: String,
    pub start_utc: String,
    pub end_utc: String,
    pub match_label: &'static str,
    pub scoped: bool,
    pub href: String,
    pub summary: String,
    pub impact: String,
    pub notes: Vec<String>,
    pub what_to_do: String,
    pub communicated: Option<String>,
    pub corrective_actions: Vec<String>,
    pub links: Vec<Link>,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        let status = serde_json::to_value(i.spec.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            id: i.id().into(),
            title: i.spec.title.clone(),
            service: i.spec.service.clone().unwrap_or_else(|| "—".into()),
            status,
            outcome: i.spec.outcome.label().into(),
            time_zone: i.spec.time_zone.clone(),
            window_local: i.window_local().to_owned(),
            window_utc: i.window_utc().to_owned(),
            start_utc: i.start.to_string(),
            end_utc: i.end.to_string(),
            match_label: match i.spec.match_on {
                MatchOn::End => "ending",
                MatchOn::Start => "starting",
            },
            scoped: !i.spec.accounts.is_empty(),
            href: i.href(),
            summary: one_line(&i.spec.summary),
            impact: one_line(&i.spec.impact),
            notes: i.spec.notes.iter().map(|n| one_line(n)).collect(),
            what_to_do: one_line(&i.spec.what_to_do),
            communicated: i.spec.communicated.clone(),
            corrective_actions: i.spec.corrective_actions.clone(),
            links: i.spec.links.clone(),
        }
    }
}

/// Renders a template; a template error is a bug, logged, and the page
/// degrades to a line of text rather than a 500 with internals.
pub(super) fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "template failed");
        "This page could not be rendered.".into()
    })
}

#[derive(Template)]
#[template(path = "verdict.html")]
struct VerdictPage<'a> {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    sid: &'a str,
    verdict: &'static str,
    badge: &'static str,
    ex: &'a Explanation,
    incident: Option<IncidentView>,
}

/// The HTML answer for a verdict on an audio URL opened in a browser.
pub fn verdict_page(state: &AppState, r: &Resolved, ex: &Explanation) -> String {
    render(&VerdictPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        sid: r.sid.as_str(),
        verdict: r.verdict.name(),
        badge: badge(&r.verdict),
        ex,
        incident: r.verdict.incident().map(|i| IncidentView::from(i.as_ref())),
    })
}

/// `mm:ss` (or `h:mm:ss`).
pub fn duration_label(secs: Option<u32>) -> String {
    match secs {
        None => "—".into(),
        Some(s) if s >= 3600 => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        Some(s) => format!("{}:{:02}", s / 60, s % 60),
    }
}

fn time_label(t: Option<Timestamp>, tz: &TimeZone) -> String {
    t.map_or("—".into(), |t| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
}

/// A catalog entry, ready to print.
pub struct RecView {
    pub account_sid: String,
    pub call_sid: Option<String>,
    pub start: String,
    pub end: String,
    pub duration: String,
    pub channels: String,
    pub source: String,
    pub status: &'static str,
    pub formats: String,
    pub day_href: Option<String>,
}

impl From<&Recording> for RecView {
    fn from(r: &Recording) -> Self {
        Self {
            account_sid: r.account_sid.to_string(),
            call_sid: r.call_sid.as_ref().map(ToString::to_string),
            start: time_label(r.start_time, &TimeZone::UTC),
            end: time_label(r.end_time(), &TimeZone::UTC),
            duration: duration_label(r.duration),
            channels: r.channels.map_or("—".into(), |c| c.to_string()),
            source: r.source.clone().unwrap_or_else(|| "—".into()),
            status: r.status.as_str(),
            formats: r
                .formats
                .iter()
                .map(|f| f.ext())
                .collect::<Vec<_>>()
                .join(", "),
            day_href: r.start_time.map(|t| {
                format!(
                    "/accounts/{}/recordings?date={}",
                    r.account_sid,
                    t.strftime("%Y-%m-%d")
                )
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "recording.html")]
struct RecordingPage<'a> {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    sid: &'a str,
    verdict: &'static str,
    badge: &'static str,
    ex: Explanation,
    incident: Option<IncidentView>,
    playable: bool,
    rec: Option<RecView>,
}

/// The status page of one recording.
pub fn recording_page(state: &AppState, r: &Resolved) -> String {
    render(&RecordingPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        sid: r.sid.as_str(),
        verdict: r.verdict.name(),
        badge: badge(&r.verdict),
        ex: Explanation::of(&r.verdict),
        incident: r.verdict.incident().map(|i| IncidentView::from(i.as_ref())),
        playable: matches!(r.verdict, Verdict::Available),
        rec: r.rec.as_deref().map(RecView::from),
    })
}

/// One row of a recordings table.
pub struct RowView {
    pub sid: String,
    pub call_sid: Option<String>,
    pub start: String,
    pub end: String,
    pub duration: String,
    pub verdict: &'static str,
    pub badge: &'static str,
    pub incident: Option<String>,
    pub playable: bool,
}

impl RowView {
    pub fn new(r: &Resolved, tz: &TimeZone) -> Self {
        let rec = r.rec.as_deref();
        Self {
            sid: r.sid.to_string(),
            call_sid: rec
                .and_then(|x| x.call_sid.as_ref())
                .map(ToString::to_string),
            start: time_label(rec.and_then(|x| x.start_time), tz),
            end: rec.and_then(Recording::end_time).map_or("—".into(), |t| {
                t.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string()
            }),
            duration: duration_label(rec.and_then(|x| x.duration)),
            verdict: r.verdict.name(),
            badge: badge(&r.verdict),
            incident: r.verdict.incident().map(|i| i.id().to_owned()),
            playable: matches!(r.verdict, Verdict::Available),
        }
    }
}

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage<'a> {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    call_sid: &'a str,
    tz_label: &'a str,
    rows: Vec<RowView>,
}

pub fn call_page(state: &AppState, call_sid: &str, rows: Vec<RowView>) -> String {
    render(&CallPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        call_sid,
        tz_label: "UTC",
        rows,
    })
}

#[derive(Template)]
#[template(path = "account_day.html")]
pub struct AccountDayPage {
    pub demo: bool,
    /// Open mode: every page says so.
    pub open: bool,
    pub account: String,
    pub account_name: Option<String>,
    pub date: String,
    pub tz_label: String,
    pub prev_href: String,
    pub next_href: String,
    pub csv_href: String,
    /// (verdict, badge, count)
    pub summary: Vec<(&'static str, &'static str, usize)>,
    pub rows: Vec<RowView>,
}

pub fn account_day_page(page: &AccountDayPage) -> String {
    render(page)
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    incidents: Vec<IncidentView>,
}

pub fn incidents_page(state: &AppState, incidents: &[std::sync::Arc<Incident>]) -> String {
    render(&IncidentsPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        incidents: incidents
            .iter()
            .map(|i| IncidentView::from(i.as_ref()))
            .collect(),
    })
}

/// How an incident's covered recordings stand.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub matched: usize,
    pub lost: usize,
    pub recovering: usize,
    pub available: usize,
    pub other: usize,
}

/// How many recordings of one account an incident hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountImpact {
    pub account_sid: String,
    pub name: Option<String>,
    pub lost: usize,
    pub recovering: usize,
}

/// Whose affected recordings an incident page lists, in which zone.
pub struct ImpactView {
    /// One account's (`?account=`), or everyone's the caller may see.
    pub account: Option<String>,
    pub tz_label: String,
    /// Per account, for the admin's overview (empty otherwise).
    pub by_account: Vec<AccountImpact>,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage<'a> {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    i: IncidentView,
    counts: Counts,
    tz_label: &'a str,
    view: &'a ImpactView,
    rows: Vec<RowView>,
}

pub fn incident_page(
    state: &AppState,
    i: &Incident,
    counts: Counts,
    view: &ImpactView,
    rows: Vec<RowView>,
) -> String {
    render(&IncidentPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        i: IncidentView::from(i),
        counts,
        tz_label: &view.tz_label,
        view,
        rows,
    })
}

/// One call in the demo CRM.
pub struct CrmRow {
    pub sid: String,
    pub call_sid: String,
    pub account: String,
    pub start: String,
    pub duration: String,
    pub verdict: &'static str,
    pub badge: &'static str,
    pub incident: Option<String>,
}

impl CrmRow {
    pub fn new(r: &Resolved, account: &str, tz: &TimeZone) -> Self {
        let rec = r.rec.as_deref();
        Self {
            sid: r.sid.to_string(),
            call_sid: rec
                .and_then(|x| x.call_sid.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default(),
            account: account.into(),
            start: rec
                .and_then(|x| x.start_time)
                .map(|t| t.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
                .unwrap_or_default(),
            duration: duration_label(rec.and_then(|x| x.duration)),
            verdict: r.verdict.name(),
            badge: badge(&r.verdict),
            incident: r.verdict.incident().map(|i| i.id().to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "crm.html")]
struct CrmPage<'a> {
    demo: bool,
    /// Open mode: every page says so.
    open: bool,
    date: &'a str,
    time_zone: &'a str,
    rows: Vec<CrmRow>,
}

pub fn crm_page(date: &str, time_zone: &str, rows: Vec<CrmRow>) -> String {
    render(&CrmPage {
        demo: true,
        open: true,
        date,
        time_zone,
        rows,
    })
}

#[derive(Template)]
#[template(path = "player.html")]
struct PlayerPage<'a> {
    sid: &'a str,
    verdict: &'static str,
    badge: &'static str,
    playable: bool,
    ex: Explanation,
    incident: Option<IncidentView>,
    duration: String,
    audio_src: String,
    download_href: String,
    autoplay: bool,
    /// `exp=…&kid=…&sig=…` of the link the page was opened with, or empty.
    link: &'a str,
    open: bool,
    /// The CRM origins allowed to frame the player, space-separated: the
    /// only ones its events are posted to.
    embedders: String,
}

/// The embeddable player, or the explanation in its place.
pub fn player_page(
    r: &Resolved,
    format: crate::keys::Format,
    autoplay: bool,
    badge: &'static str,
    link: &str,
    state: &AppState,
) -> String {
    let ext = format.ext();
    let with_link = |base: String, sep: char| {
        if link.is_empty() {
            base
        } else {
            format!("{base}{sep}{link}")
        }
    };
    render(&PlayerPage {
        sid: r.sid.as_str(),
        verdict: r.verdict.name(),
        badge,
        playable: matches!(r.verdict, Verdict::Available),
        ex: Explanation::of(&r.verdict),
        incident: r.verdict.incident().map(|i| IncidentView::from(i.as_ref())),
        duration: duration_label(r.rec.as_deref().and_then(|x| x.duration)),
        audio_src: with_link(format!("/recordings/{}.{ext}", r.sid), '?'),
        download_href: with_link(format!("/recordings/{}.{ext}?download=1", r.sid), '&'),
        autoplay,
        link,
        open: state.access.open,
        embedders: state.access.cors_origins.join(" "),
    })
}
