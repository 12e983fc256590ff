//! Link checking: never panic; a forged link never verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback_gateway::access::{LinkParams, parse_link_keys, verify_link};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = parse_link_keys("k:0123456789abcdef0123456789abcdef").unwrap();
    let _ = parse_link_keys(text);
    let mut parts = text.splitn(3, '&');
    let params = LinkParams {
        exp: parts.next().and_then(|e| e.parse().ok()).unwrap_or(i64::MAX),
        kid: "k".into(),
        sig: parts.next().unwrap_or("").into(),
    };
    let a = "AC0123456789abcdef0123456789abcdef".parse().unwrap();
    let r = "RE0123456789abcdef0123456789abcdef".parse().unwrap();
    let now = jiff::Timestamp::from_second(0).unwrap();
    assert!(verify_link(&keys, &a, &r, &params, now, 30).is_err(), "forged: {text:?}");
});
