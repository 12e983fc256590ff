//! Content negotiation (RFC 9110 §12.5.1), as a pure function.

/// The representations the gateway renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    Json,
    Html,
    Text,
    Csv,
}

/// Quality of each media range in an `Accept` header; malformed items are
/// skipped and a malformed `q` counts as 1 (lenient, as browsers are).
fn ranges(accept: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    accept.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let range = parts.next()?.trim().to_ascii_lowercase();
        if !range.contains('/') {
            return None;
        }
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        Some((range, q))
    })
}

fn explicit_q(accept: &str, types: &[&str]) -> f32 {
    ranges(accept)
        .filter(|(r, _)| types.contains(&r.as_str()))
        .map(|(_, q)| q)
        .fold(0.0, f32::max)
}

/// Picks among `offered` by the client's explicit preferences; wildcards
/// alone express none, so they get `fallback`. Ties go to the earlier offer.
pub fn negotiate(accept: Option<&str>, offered: &[Repr], fallback: Repr) -> Repr {
    let Some(accept) = accept else {
        return fallback;
    };
    let mut best = (fallback, 0.0_f32);
    for &repr in offered {
        let types: &[&str] = match repr {
            Repr::Json => &["application/json", "application/problem+json"],
            Repr::Html => &["text/html", "application/xhtml+xml"],
            Repr::Text => &["text/plain"],
            Repr::Csv => &["text/csv"],
        };
        let q = explicit_q(accept, types);
        if q > best.1 {
            best = (repr, q);
        }
    }
    best.0
}

/// For error answers: problem+json, HTML for browsers, plain text otherwise
/// (DESIGN.md). Media elements (`Sec-Fetch-Dest: audio|video`) cannot show
/// a body at all; they get the compact JSON, which the player page reads.
pub fn for_error(accept: Option<&str>, fetch_dest: Option<&str>) -> Repr {
    if matches!(fetch_dest, Some("audio" | "video")) {
        return Repr::Json;
    }
    negotiate(accept, &[Repr::Html, Repr::Json, Repr::Text], Repr::Text)
}

/// For status resources: HTML for browsers, JSON otherwise.
pub fn for_status(accept: Option<&str>) -> Repr {
    negotiate(accept, &[Repr::Html, Repr::Json, Repr::Csv], Repr::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    #[test]
    fn errors() {
        assert_eq!(for_error(Some(BROWSER), None), Repr::Html);
        assert_eq!(for_error(Some(BROWSER), Some("document")), Repr::Html);
        assert_eq!(for_error(Some("application/json"), None), Repr::Json);
        assert_eq!(
            for_error(Some("application/problem+json"), None),
            Repr::Json
        );
        assert_eq!(for_error(Some("*/*"), None), Repr::Text);
        assert_eq!(for_error(None, None), Repr::Text);
        assert_eq!(for_error(Some("*/*"), Some("audio")), Repr::Json);
        assert_eq!(
            for_error(Some("text/plain, application/json;q=0.5"), None),
            Repr::Text
        );
        assert_eq!(
            for_error(Some("text/html;q=0.1, application/json"), None),
            Repr::Json
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(for_status(Some(BROWSER)), Repr::Html);
        assert_eq!(for_status(Some("*/*")), Repr::Json);
        assert_eq!(for_status(Some("text/csv")), Repr::Csv);
        assert_eq!(for_status(None), Repr::Json);
    }

    #[test]
    fn garbage_is_tolerated() {
        for g in [
            "",
            ",,,",
            "text/html;q=abc",
            "\u{0}",
            "html",
            "text/html;q=-5",
            ";;;q=1",
        ] {
            let _ = for_error(Some(g), None);
            let _ = for_status(Some(g));
        }
        assert_eq!(for_error(Some("text/html;q=0"), None), Repr::Text);
        assert_eq!(for_error(Some("text/html;q=abc"), None), Repr::Html);
    }
}
