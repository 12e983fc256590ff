//! Conditional requests (RFC 9110 §13): a pure function from the request's
//! conditional headers and the representation's validators to an outcome.
//!
//! The evaluation order is §13.2.2's, step by step, for GET and HEAD (the
//! only methods the audio routes answer).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The validators of the selected representation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// Strong entity tag including its quotes, e.g. `"abc"`.
    pub etag: &'a str,
    pub last_modified: Option<SystemTime>,
}

/// The request's conditional header values, raw (absent → `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// What the conditions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on. `honour_range` is false when `If-Range` did not match, in
    /// which case the whole representation is sent with 200 (§13.1.5).
    Proceed { honour_range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// RFC 9110 §13.2.2, for GET/HEAD.
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>) -> Precondition {
    // Step 1: If-Match, strong comparison; "*" matches any current representation.
    if let Some(h) = c.if_match {
        if !list_matches(h, v.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(h) = c.if_unmodified_since {
        // Step 2: only without If-Match; ignored if invalid or no date is known.
        if let (Some(date), Some(lm)) = (parse_date(h), v.last_modified)
            && seconds(lm) > seconds(date)
        {
            return Precondition::Failed;
        }
    }
    // Step 3: If-None-Match, weak comparison; a match means 304 for GET/HEAD.
    if let Some(h) = c.if_none_match {
        if list_matches(h, v.etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let Some(h) = c.if_modified_since {
        // Step 4: only without If-None-Match.
        if let (Some(date), Some(lm)) = (parse_date(h), v.last_modified)
            && seconds(lm) <= seconds(date)
        {
            return Precondition::NotModified;
        }
    }
    // Step 5: If-Range (the caller only looks at it when Range is present).
    let honour_range = c.if_range.is_none_or(|h| if_range_matches(h, v));
    Precondition::Proceed { honour_range }
}

/// §13.1.5: an entity-tag must match strongly; a date must equal
/// Last-Modified exactly. Anything else (a weak tag, garbage) does not match.
fn if_range_matches(h: &str, v: &Validators<'_>) -> bool {
    let h = h.trim();
    if h.starts_with('"') || h.starts_with("W/") {
        return match parse_tag(h) {
            Some((false, tag)) => strong_eq(tag, v.etag),
            _ => false,
        };
    }
    match (parse_date(h), v.last_modified) {
        (Some(date), Some(lm)) => seconds(date) == seconds(lm),
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Comparison {
    Strong,
    Weak,
}

/// `"*"` or a comma-separated list of entity-tags (§8.8.3). A list that does
/// not parse matches nothing, which is the safe answer for both headers:
/// If-Match fails, If-None-Match lets the request through.
fn list_matches(header: &str, etag: &str, cmp: Comparison) -> bool {
    if header.trim() == "*" {
        return true;
    }
    let Some(tags) = parse_list(header) else {
        return false;
    };
    tags.into_iter().any(|(weak, tag)| match cmp {
        Comparison::Strong => !weak && strong_eq(tag, etag),
        Comparison::Weak => opaque(tag) == opaque(etag),
    })
}

/// Our own tag is always strong; a received tag is compared as written.
fn strong_eq(received: &str, ours: &str) -> bool {
    received == ours
}

/// The quoted opaque part of a tag, without a `W/` prefix.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Parses `1#entity-tag`; each item is `(weak, "quoted-opaque")`.
fn parse_list(header: &str) -> Option<Vec<(bool, &str)>> {
    let mut out = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        let end = body.get(1..)?.find('"')? + 2;
        if !body.starts_with('"') {
            return None;
        }
        out.push((weak, &body[..end]));
        rest = &body[end..];
        let after = rest.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

/// One entity-tag alone (for If-Range).
fn parse_tag(h: &str) -> Option<(bool, &str)> {
    match parse_list(h)?.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// HTTP-date (§5.6.7), all three historic formats; `None` if invalid, in
/// which case the header is ignored, as §13.1.3/§13.1.4 require.
fn parse_date(h: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(h.trim()).ok()
}

/// HTTP dates have one-second resolution; file times do not.
fn seconds(t: SystemTime) -> Duration {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Precondition::*;

    const TAG: &str = "\"v1\"";

    fn lm() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_494_352_080) + Duration::from_millis(700)
    }
    fn v() -> Validators<'static> {
        Validators {
            etag: TAG,
            last_modified: Some(lm()),
        }
    }
    fn date(offset: i64) -> String {
        let base = UNIX_EPOCH + Duration::from_secs(1_494_352_080);
        let t = if offset >= 0 {
            base + Duration::from_secs(offset as u64)
        } else {
            base - Duration::from_secs((-offset) as u64)
        };
        httpdate::fmt_http_date(t)
    }
    fn go() -> Precondition {
        Proceed { honour_range: true }
    }

    #[test]
    fn no_conditions_proceed() {
        assert_eq!(evaluate(&Conditions::default(), &v()), go());
    }

    #[test]
    fn if_match() {
        let c = |h| Conditions {
            if_match: Some(h),
            ..Default::default()
        };
        assert_eq!(evaluate(&c("\"v1\""), &v()), go());
        assert_eq!(evaluate(&c("*"), &v()), go());
        assert_eq!(evaluate(&c("\"x\", \"v1\""), &v()), go());
        assert_eq!(evaluate(&c("\"v2\""), &v()), Failed);
        // Strong comparison: a weak tag never matches If-Match.
        assert_eq!(evaluate(&c("W/\"v1\""), &v()), Failed);
        assert_eq!(evaluate(&c("garbage"), &v()), Failed);
    }

    #[test]
    fn if_unmodified_since() {
        let c = |h: &str| Conditions {
            if_unmodified_since: Some(Box::leak(h.to_string().into_boxed_str())),
            ..Default::default()
        };
        assert_eq!(evaluate(&c(&date(0)), &v()), go(), "same second");
        assert_eq!(evaluate(&c(&date(10)), &v()), go());
        assert_eq!(evaluate(&c(&date(-10)), &v()), Failed);
        assert_eq!(evaluate(&c("not a date"), &v()), go(), "ignored");
    }

    #[test]
    fn if_match_takes_precedence_over_if_unmodified_since() {
        let old = date(-10);
        let c = Conditions {
            if_match: Some(TAG),
            if_unmodified_since: Some(&old),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), go());
    }

    #[test]
    fn if_none_match() {
        let c = |h| Conditions {
            if_none_match: Some(h),
            ..Default::default()
        };
        assert_eq!(evaluate(&c("\"v1\""), &v()), NotModified);
        // Weak comparison: W/"v1" matches "v1".
        assert_eq!(evaluate(&c("W/\"v1\""), &v()), NotModified);
        assert_eq!(evaluate(&c("*"), &v()), NotModified);
        assert_eq!(evaluate(&c("\"a\",\"v1\""), &v()), NotModified);
        assert_eq!(evaluate(&c("\"v2\""), &v()), go());
        assert_eq!(evaluate(&c("v1"), &v()), go(), "unquoted is garbage");
    }

    #[test]
    fn if_modified_since() {
        let c = |h: &str| Conditions {
            if_modified_since: Some(Box::leak(h.to_string().into_boxed_str())),
            ..Default::default()
        };
        assert_eq!(evaluate(&c(&date(0)), &v()), NotModified, "same second");
        assert_eq!(evaluate(&c(&date(5)), &v()), NotModified);
        assert_eq!(evaluate(&c(&date(-5)), &v()), go());
        assert_eq!(evaluate(&c("yesterday"), &v()), go(), "ignored");
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let later = date(100);
        let c = Conditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some(&later),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), go());
    }

    #[test]
    fn failed_precondition_wins_over_not_modified() {
        let c = Conditions {
            if_match: Some("\"v2\""),
            if_none_match: Some(TAG),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &v()), Failed);
    }

    #[test]
    fn no_last_modified_ignores_dates() {
        let val = Validators {
            etag: TAG,
            last_modified: None,
        };
        let d = date(0);
        let c = Conditions {
            if_modified_since: Some(&d),
            if_unmodified_since: Some(&d),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &val), go());
    }

    #[test]
    fn if_range() {
        let c = |h: &str| Conditions {
            if_range: Some(Box::leak(h.to_string().into_boxed_str())),
            ..Default::default()
        };
        let stale = Proceed {
            honour_range: false,
        };
        assert_eq!(evaluate(&c(TAG), &v()), go());
        assert_eq!(evaluate(&c("\"v0\""), &v()), stale);
        assert_eq!(evaluate(&c("W/\"v1\""), &v()), stale, "weak never matches");
        assert_eq!(evaluate(&c(&date(0)), &v()), go());
        assert_eq!(evaluate(&c(&date(-1)), &v()), stale);
        assert_eq!(evaluate(&c(&date(1)), &v()), stale, "only an exact date");
        assert_eq!(evaluate(&c("rubbish"), &v()), stale);
    }

    #[test]
    fn tag_lists_parse() {
        assert_eq!(
            parse_list(" \"a\" , W/\"b\",\"c,d\""),
            Some(vec![(false, "\"a\""), (true, "\"b\""), (false, "\"c,d\"")])
        );
        assert_eq!(parse_list("\"a\" x"), None);
        assert_eq!(parse_list("\"unterminated"), None);
        assert_eq!(parse_list("W/"), None);
        assert_eq!(parse_list(""), None);
    }
}
