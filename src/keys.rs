//! From a recording to its storage key: audio formats and the key layout.

use std::fmt;
use std::str::FromStr;

use crate::sid::{AccountSid, RecordingSid};

/// The audio formats a recording is stored and served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Wav,
    Mp3,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Wav, Format::Mp3];

    pub fn ext(self) -> &'static str {
        match self {
            Format::Wav => "wav",
            Format::Mp3 => "mp3",
        }
    }

    /// The media type players expect (`audio/wav` is what browsers sniff
    /// for; `audio/mpeg` is the registered type for MP3).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Wav => "audio/wav",
            Format::Mp3 => "audio/mpeg",
        }
    }

    pub fn from_ext(ext: &str) -> Option<Self> {
        match ext {
            "wav" => Some(Format::Wav),
            "mp3" => Some(Format::Mp3),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ext())
    }
}

/// A key template such as `{account_sid}/{recording_sid}.{ext}` (the
/// default, which is also how the demo lays out its files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    template: String,
}

/// Why a key layout was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("unknown placeholder {{{0}}}: use {{account_sid}}, {{recording_sid}} and {{ext}}")]
    UnknownPlaceholder(String),
    #[error(
        "the layout must contain {{recording_sid}} and {{ext}}, so that every recording and format has its own key"
    )]
    MissingPlaceholder,
    #[error("unbalanced braces")]
    Unbalanced,
    #[error("the layout must be a relative key without `..`, `.` or empty segments")]
    Unsafe,
}

const PLACEHOLDERS: [&str; 3] = ["account_sid", "recording_sid", "ext"];

impl Default for KeyLayout {
    fn default() -> Self {
        Self {
            template: "{account_sid}/{recording_sid}.{ext}".into(),
        }
    }
}

impl FromStr for KeyLayout {
    type Err = LayoutError;

    fn from_str(s: &str) -> Result<Self, LayoutError> {
        let mut rest = s;
        let mut seen = Vec::new();
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err(LayoutError::Unbalanced);
            }
            let close = rest[open..].find('}').ok_or(LayoutError::Unbalanced)? + open;
            let name = &rest[open + 1..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(LayoutError::UnknownPlaceholder(name.into()));
            }
            seen.push(name);
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(LayoutError::Unbalanced);
        }
        if !seen.contains(&"recording_sid") || !seen.contains(&"ext") {
            return Err(LayoutError::MissingPlaceholder);
        }
        let layout = Self { template: s.into() };
        let sample = layout.render(
            Some(&"AC00000000000000000000000000000000".parse().unwrap()),
            &"RE00000000000000000000000000000000".parse().unwrap(),
            Format::Wav,
        );
        if !crate::storage::key_is_safe(&sample) {
            return Err(LayoutError::Unsafe);
        }
        Ok(layout)
    }
}

impl KeyLayout {
    /// Whether a key can only be built once the recording's account is known.
    pub fn needs_account(&self) -> bool {
        self.template.contains("{account_sid}")
    }

    /// The key of one format of a recording. `account` may be `None` only
    /// when the layout does not [need it](Self::needs_account).
    pub fn render(
        &self,
        account: Option<&AccountSid>,
        recording: &RecordingSid,
        format: Format,
    ) -> String {
        self.template
            .replace("{account_sid}", account.map_or("", AccountSid::as_str))
            .replace("{recording_sid}", recording.as_str())
            .replace("{ext}", format.ext())
    }

    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// The literal start of every key (`""` for the default layout): where
    /// a listing of this layout's keys starts.
    pub fn static_prefix(&self) -> &str {
        let end = self.template.find('{').unwrap_or(self.template.len());
        &self.template[..end]
    }

    /// How the catalog must be read to meet keys in their byte order. Every
    /// placeholder renders to a fixed length (sids are 34 characters,
    /// extensions 3), so keys sort as the tuple of their placeholders in
    /// template order; with `{ext}` last, one recording's keys are also
    /// next to each other. Other layouts cannot be reconciled by a merge.
    pub fn audit_order(&self) -> Result<crate::catalog::KeyOrder, String> {
        use crate::catalog::KeyOrder;
        let at = |p: &str| self.template.find(p);
        let ext = at("{ext}").unwrap_or(0);
        let sid = at("{recording_sid}").unwrap_or(0);
        if ext < sid {
            return Err(format!(
                "the audit needs {{ext}} after {{recording_sid}} in the key layout, not {:?}",
                self.template
            ));
        }
        match at("{account_sid}") {
            None => Ok(KeyOrder::Sid),
            Some(a) if a > ext => Err(format!(
                "the audit needs {{ext}} to be the last placeholder of the key layout, not {:?}",
                self.template
            )),
            Some(a) if a < sid => Ok(KeyOrder::AccountThenSid),
            Some(_) => Ok(KeyOrder::SidThenAccount),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_order_follows_the_placeholders() {
        use crate::catalog::KeyOrder;
        let order = |t: &str| t.parse::<KeyLayout>().unwrap().audit_order();
        assert_eq!(
            KeyLayout::default().audit_order(),
            Ok(KeyOrder::AccountThenSid)
        );
        assert_eq!(order("r/{recording_sid}.{ext}"), Ok(KeyOrder::Sid));
        assert_eq!(
            order("{recording_sid}/{account_sid}.{ext}"),
            Ok(KeyOrder::SidThenAccount)
        );
        assert!(order("{ext}/{recording_sid}").is_err());
        assert!(order("{recording_sid}.{ext}/{account_sid}").is_err());
        assert_eq!(KeyLayout::default().static_prefix(), "");
        assert_eq!(
            "calls/{account_sid}/{recording_sid}.{ext}"
                .parse::<KeyLayout>()
                .unwrap()
                .static_prefix(),
            "calls/"
        );
    }

    #[test]
    fn default_layout_renders() {
        let key = KeyLayout::default().render(
            Some(&"AC0123456789abcdef0123456789abcdef".parse().unwrap()),
            &"RE0123456789abcdef0123456789abcdef".parse().unwrap(),
            Format::Mp3,
        );
        assert_eq!(
            key,
            "AC0123456789abcdef0123456789abcdef/RE0123456789abcdef0123456789abcdef.mp3"
        );
        assert!(KeyLayout::default().needs_account());
    }

    #[test]
    fn layouts_are_validated() {
        assert!("{recording_sid}.{ext}".parse::<KeyLayout>().is_ok());
        assert!(
            !"{recording_sid}.{ext}"
                .parse::<KeyLayout>()
                .unwrap()
                .needs_account()
        );
        assert_eq!(
            "{sid}.{ext}".parse::<KeyLayout>(),
            Err(LayoutError::UnknownPlaceholder("sid".into()))
        );
        assert_eq!(
            "{recording_sid}".parse::<KeyLayout>(),
            Err(LayoutError::MissingPlaceholder)
        );
        assert_eq!(
            "{recording_sid.{ext}".parse::<KeyLayout>(),
            Err(LayoutError::UnknownPlaceholder("recording_sid.{ext".into()))
        );
        assert_eq!(
            "}{recording_sid}.{ext}".parse::<KeyLayout>(),
            Err(LayoutError::Unbalanced)
        );
        assert_eq!(
            "../{recording_sid}.{ext}".parse::<KeyLayout>(),
            Err(LayoutError::Unsafe)
        );
        assert_eq!(
            "/{recording_sid}.{ext}".parse::<KeyLayout>(),
            Err(LayoutError::Unsafe)
        );
    }

    #[test]
    fn formats() {
        assert_eq!(Format::from_ext("mp3"), Some(Format::Mp3));
        assert_eq!(Format::from_ext("MP3"), None);
        assert_eq!(Format::Wav.content_type(), "audio/wav");
        assert_eq!(Format::Mp3.content_type(), "audio/mpeg");
    }
}
