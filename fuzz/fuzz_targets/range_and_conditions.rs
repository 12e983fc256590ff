//! Range and conditional headers: never panic, and every range served
//! lies inside the representation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback_gateway::preconditions::{self, Conditions, Validators};
use playback_gateway::range::{self, RangeOutcome};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(6, '\n');
    let range_header = parts.next();
    let len = u64::from(data.len() as u32 * 37 % 100_000);
    match range::evaluate(range_header, len) {
        RangeOutcome::Partial(r) => assert!(r.start <= r.end && r.end < len),
        RangeOutcome::Multi(rs) => {
            assert!(rs.len() >= 2);
            for w in rs.windows(2) {
                assert!(w[0].end < w[1].start);
            }
            assert!(rs.iter().all(|r| r.start <= r.end && r.end < len));
        }
        RangeOutcome::Full | RangeOutcome::Unsatisfiable => {}
    }
    let c = Conditions {
        if_match: parts.next(),
        if_none_match: parts.next(),
        if_modified_since: parts.next(),
        if_unmodified_since: parts.next(),
        if_range: parts.next(),
    };
    let v = Validators { etag: "\"abc-1\"", last_modified: None };
    let _ = preconditions::evaluate(&c, &v);
});
