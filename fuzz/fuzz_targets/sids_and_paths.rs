//! Sid parsing and key layouts: never panic; whatever parses makes a safe key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback_gateway::keys::{Format, KeyLayout};
use playback_gateway::sid::{AccountSid, RecordingSid};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, r) = text.split_once('/').unwrap_or((text, text));
    if let (Ok(a), Ok(r)) = (a.parse::<AccountSid>(), r.parse::<RecordingSid>()) {
        let key = KeyLayout::default().render(Some(&a), &r, Format::Mp3);
        assert!(!key.contains("..") && !key.starts_with('/'));
    }
    if let Ok(layout) = text.parse::<KeyLayout>() {
        let a: AccountSid = "AC0123456789abcdef0123456789abcdef".parse().unwrap();
        let r: RecordingSid = "RE0123456789abcdef0123456789abcdef".parse().unwrap();
        let key = layout.render(Some(&a), &r, Format::Wav);
        assert!(!key.split('/').any(|s| s == ".." || s.is_empty()));
    }
});
