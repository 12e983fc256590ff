//! Webhook bodies: form parsing, event parsing and merging never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use playback_gateway::ingest::{Event, merge};

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = form_urlencoded_parse(data);
    let _ = playback_gateway::twilio::verify("token", "https://x/y", &params, "sig");
    if let Ok(ev) = Event::from_params(&params) {
        let _ = merge(None, &ev);
    }
});

fn form_urlencoded_parse(data: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(data)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
