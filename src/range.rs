//! Byte ranges (RFC 9110 §14): a pure function from a `Range` header and a
//! representation length to what the response must be.
//!
//! Nothing here does I/O. `http::audio` turns the [`RangeOutcome`] into a
//! 200, 206, multipart 206 or 416, and asks storage for exactly those bytes.

/// An inclusive byte range `start..=end` inside a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range (never zero: an empty range is unsatisfiable).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// `Content-Range` value for this range of a `total`-byte representation.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, total)
    }
}

/// What a `Range` header asks of a representation of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable `Range` header: send the whole representation with 200.
    Full,
    /// Exactly one range: 206 with `Content-Range`.
    Partial(ByteRange),
    /// Several disjoint ranges in ascending order: 206 `multipart/byteranges`.
    Multi(Vec<ByteRange>),
    /// Syntactically valid, but no range overlaps the representation:
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// More range-specs than this and the header is ignored (RFC 9110 §14.2
/// lets a server ignore "many small ranges": they only serve amplification).
const MAX_RANGE_SPECS: usize = 32;

/// Ranges closer than this are sent as one part: a part header costs about
/// as much, and fewer storage reads are faster (RFC 9110 §14.6 allows it).
const COALESCE_GAP: u64 = 80;

/// Evaluates a `Range` header against a representation of `len` bytes.
///
/// RFC 9110 §14.2: a server MAY ignore `Range`; we ignore an unknown unit or
/// invalid syntax (→ [`RangeOutcome::Full`]), which is always correct
/// because the client gets the whole thing with 200.
pub fn evaluate(header: Option<&str>, len: u64) -> RangeOutcome {
    let Some(header) = header else {
        return RangeOutcome::Full;
    };
    let Some(specs) = parse(header) else {
        return RangeOutcome::Full;
    };
    if specs.len() > MAX_RANGE_SPECS {
        return RangeOutcome::Full;
    }
    let mut ranges: Vec<ByteRange> = specs.into_iter().filter_map(|s| s.resolve(len)).collect();
    if ranges.is_empty() {
        // §14.1.1: a range-set is satisfiable only if some range-spec is.
        return RangeOutcome::Unsatisfiable;
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(COALESCE_GAP) => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    if merged.len() == 1 {
        RangeOutcome::Partial(merged[0])
    } else {
        RangeOutcome::Multi(merged)
    }
}

/// One `range-spec` as written, before it meets the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-` or `first-last`.
    Int { first: u64, last: Option<u64> },
    /// `-suffix`: the last `suffix` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// §14.1.1: an int-range is satisfiable if `first < len`; a suffix-range
    /// if its length is non-zero. Positions past the end are clamped.
    fn resolve(self, len: u64) -> Option<ByteRange> {
        if len == 0 {
            return None;
        }
        match self {
            RangeSpec::Int { first, last } if first < len => Some(ByteRange {
                start: first,
                end: last.map_or(len - 1, |l| l.min(len - 1)),
            }),
            RangeSpec::Int { .. } => None,
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(n) => Some(ByteRange {
                start: len.saturating_sub(n),
                end: len - 1,
            }),
        }
    }
}

/// `ranges-specifier = range-unit "=" range-set` with the unit `bytes`
/// (case-insensitive, §14.1). `None` for anything else.
fn parse(header: &str) -> Option<Vec<RangeSpec>> {
    let (unit, set) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // `1#range-spec`: a list; §5.6.1 says empty elements are tolerated.
    for item in set.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        specs.push(parse_spec(item)?);
    }
    if specs.is_empty() { None } else { Some(specs) }
}

fn parse_spec(item: &str) -> Option<RangeSpec> {
    let (first, last) = item.split_once('-')?;
    if first.is_empty() {
        return Some(RangeSpec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    // §14.1.1: "last-pos < first-pos" makes the spec invalid.
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(RangeSpec::Int { first, last })
}

/// `1*DIGIT`; values beyond u64 saturate (they are past any end anyway).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn no_header_is_full() {
        assert_eq!(evaluate(None, 100), Full);
    }

    #[test]
    fn closed_range() {
        assert_eq!(evaluate(Some("bytes=0-1"), 100), Partial(r(0, 1)));
        assert_eq!(evaluate(Some("bytes=10-19"), 100), Partial(r(10, 19)));
    }

    #[test]
    fn open_ended_range_covers_the_rest() {
        assert_eq!(evaluate(Some("bytes=0-"), 100), Partial(r(0, 99)));
        assert_eq!(evaluate(Some("bytes=99-"), 100), Partial(r(99, 99)));
    }

    #[test]
    fn last_pos_past_the_end_is_clamped() {
        assert_eq!(evaluate(Some("bytes=90-1000"), 100), Partial(r(90, 99)));
        let huge = "bytes=5-99999999999999999999999";
        assert_eq!(evaluate(Some(huge), 100), Partial(r(5, 99)));
    }

    #[test]
    fn suffix_range() {
        assert_eq!(evaluate(Some("bytes=-10"), 100), Partial(r(90, 99)));
        assert_eq!(evaluate(Some("bytes=-1000"), 100), Partial(r(0, 99)));
    }

    #[test]
    fn zero_suffix_is_unsatisfiable() {
        assert_eq!(evaluate(Some("bytes=-0"), 100), Unsatisfiable);
    }

    #[test]
    fn first_pos_at_or_past_the_end_is_unsatisfiable() {
        assert_eq!(evaluate(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(
            evaluate(Some("bytes=99999999999999999999999-"), 100),
            Unsatisfiable
        );
    }

    #[test]
    fn empty_representation_satisfies_nothing() {
        assert_eq!(evaluate(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-5"), 0), Unsatisfiable);
    }

    #[test]
    fn one_satisfiable_among_unsatisfiable_is_served() {
        assert_eq!(evaluate(Some("bytes=500-600, 0-4"), 100), Partial(r(0, 4)));
    }

    #[test]
    fn invalid_syntax_is_ignored() {
        for h in [
            "bytes=",
            "bytes=abc",
            "bytes=5-4",
            "bytes=--5",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1 - 2",
            "bytes 0-1",
            "items=0-1",
            "",
            "=0-1",
            "bytes=0x10-20",
        ] {
            assert_eq!(evaluate(Some(h), 100), Full, "{h:?}");
        }
    }

    #[test]
    fn unit_is_case_insensitive_and_ows_is_allowed() {
        assert_eq!(
            evaluate(Some("Bytes=0-1 ,\t 500-501"), 1000),
            Multi(vec![r(0, 1), r(500, 501)])
        );
        assert_eq!(evaluate(Some("bytes=0-1,,"), 100), Partial(r(0, 1)));
    }

    #[test]
    fn several_ranges_are_sorted() {
        assert_eq!(
            evaluate(Some("bytes=500-599,0-9"), 1000),
            Multi(vec![r(0, 9), r(500, 599)])
        );
    }

    #[test]
    fn overlapping_and_near_ranges_are_coalesced() {
        assert_eq!(evaluate(Some("bytes=0-9,5-20"), 1000), Partial(r(0, 20)));
        assert_eq!(evaluate(Some("bytes=0-9,10-20"), 1000), Partial(r(0, 20)));
        assert_eq!(evaluate(Some("bytes=0-9,50-60"), 1000), Partial(r(0, 60)));
        assert_eq!(evaluate(Some("bytes=0-,-10"), 1000), Partial(r(0, 999)));
    }

    #[test]
    fn too_many_ranges_are_ignored() {
        let many: Vec<String> = (0..40)
            .map(|i| format!("{}-{}", i * 200, i * 200))
            .collect();
        let header = format!("bytes={}", many.join(","));
        assert_eq!(evaluate(Some(&header), 100_000), Full);
    }

    #[test]
    fn content_range_formats() {
        assert_eq!(r(0, 1).content_range(10), "bytes 0-1/10");
        assert_eq!(r(0, 1).len(), 2);
    }
}
