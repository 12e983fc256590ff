//! Twilio's webhook signature (`X-Twilio-Signature`): base64 of
//! HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio
//! called followed by every POST parameter as name then value, sorted by
//! name.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The signature Twilio sends for `url` and `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Stable sort by name: repeated names keep their order, as Twilio's
    // own helper libraries do.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// SECURITY: compares in constant time (`subtle`), so a forger learns
/// nothing from how long a refusal takes.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let expected = signature(auth_token, url, params);
    bool::from(expected.as_bytes().ct_eq(given.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The worked example of Twilio's webhook security documentation.
    #[test]
    fn twilios_documented_example() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(verify(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn anything_changed_fails() {
        let params = p(&[("RecordingSid", "RE1"), ("RecordingStatus", "completed")]);
        let url = "https://gw.example/webhooks/twilio/recording-status";
        let good = signature("token", url, &params);
        assert!(verify("token", url, &params, &good));
        assert!(!verify("token2", url, &params, &good));
        assert!(!verify(
            "token",
            "http://gw.example/webhooks/twilio/recording-status",
            &params,
            &good
        ));
        let tampered = p(&[("RecordingSid", "RE1"), ("RecordingStatus", "absent")]);
        assert!(!verify("token", url, &tampered, &good));
        let extra = p(&[
            ("RecordingSid", "RE1"),
            ("RecordingStatus", "completed"),
            ("X", ""),
        ]);
        assert!(!verify("token", url, &extra, &good));
        assert!(!verify("token", url, &params, ""));
        assert!(!verify("token", url, &params, "not base64 at all"));
    }
}
