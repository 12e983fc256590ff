//! Twilio-style resource identifiers: a two-letter prefix and 32 hex digits.
//!
//! SECURITY: a sid is validated here, once, before it comes anywhere near a
//! storage key or a SQL statement. Everything downstream takes the typed sid,
//! so a path like `../../etc/passwd` cannot be expressed.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a sid. The message is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} sids are `{prefix}` followed by 32 hexadecimal digits")]
pub struct InvalidSid {
    pub kind: &'static str,
    pub prefix: &'static str,
}

/// Parses `PREFIX` + 32 hex digits; hex is normalised to lower case so that
/// one recording never maps to two storage keys.
fn parse(s: &str, prefix: &'static str, kind: &'static str) -> Result<String, InvalidSid> {
    let err = InvalidSid { kind, prefix };
    let hex = s.strip_prefix(prefix).ok_or(err.clone())?;
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err);
    }
    Ok(format!("{prefix}{}", hex.to_ascii_lowercase()))
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidSid;
            fn from_str(s: &str) -> Result<Self, InvalidSid> {
                parse(s, $prefix, $kind).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

sid_type!(
    /// A recording: `RE` + 32 hex.
    RecordingSid,
    "RE",
    "recording"
);
sid_type!(
    /// An account (a tenant): `AC` + 32 hex.
    AccountSid,
    "AC",
    "account"
);
sid_type!(
    /// A call: `CA` + 32 hex.
    CallSid,
    "CA",
    "call"
);

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "RE0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_prefix_and_32_hex() {
        let sid: RecordingSid = GOOD.parse().unwrap();
        assert_eq!(sid.as_str(), GOOD);
    }

    #[test]
    fn normalises_hex_case() {
        let sid: RecordingSid = "RE0123456789ABCDEF0123456789ABCDEF".parse().unwrap();
        assert_eq!(sid.as_str(), GOOD);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "RE",
            "re0123456789abcdef0123456789abcdef",
            "AC0123456789abcdef0123456789abcdef",
            "RE0123456789abcdef0123456789abcde",
            "RE0123456789abcdef0123456789abcdef0",
            "RE0123456789abcdef0123456789abcdeg",
            "RE../../../../../../../../etc/passwd",
            "RE0123456789abcdef0123456789abcd\u{e9}",
            "RE0123456789abcdef0123456789abcdef.wav",
        ] {
            assert!(bad.parse::<RecordingSid>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_message_names_the_shape() {
        let err = "x".parse::<AccountSid>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "account sids are `AC` followed by 32 hexadecimal digits"
        );
    }
}
