//! Import lines: any bytes give a recording or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = playback_gateway::import::parse_line(line);
    }
});
