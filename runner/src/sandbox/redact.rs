//! Keeps secret values inside the sandbox: every text that leaves an attempt (log lines and
//! their fields, captured stdout/stderr, progress messages, the error, the output) passes
//! through the attempt's `Redactor`, which replaces each secret value the job read with
//! `[REDACTED:name]`.
//!
//! Limits (documented in docs/capabilities.md): values shorter than `MIN_SECRET_BYTES` are not
//! redacted (they would match ordinary text), and transformed values (base64, hashes, a value
//! split across two log lines) are not recognised.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};

/// Shorter secret values are left alone: "abc" would redact half the log.
pub(crate) const MIN_SECRET_BYTES: usize = 8;

/// Replaces known secret values in text.
pub(crate) struct Redactor {
    matcher: AhoCorasick,
    replacements: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    // Never prints the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.replacements.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `(name, value)` pairs; `None` if no value is long enough to redact.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Redactor> {
        let (names, values): (Vec<_>, Vec<_>) = secrets
            .into_iter()
            .filter(|(_, value)| value.len() >= MIN_SECRET_BYTES)
            .map(|(name, value)| (format!("[REDACTED:{name}]"), value.to_owned()))
            .unzip();
        if values.is_empty() {
            return None;
        }
        // Leftmost-longest: of two overlapping secrets the longer one is replaced whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&values)
            .ok()?;
        Some(Redactor {
            matcher,
            replacements: names,
        })
    }

    /// `text` with every secret value replaced.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if !self.matcher.is_match(text) {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.matcher.replace_all(text, &self.replacements))
    }

    /// Redacts every string (keys too) in a JSON value.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&key).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_with_the_name() {
        let r = Redactor::new([("api_key", "sk_live_123456789")]).unwrap();
        assert_eq!(
            r.redact("key=sk_live_123456789, again sk_live_123456789!"),
            "key=[REDACTED:api_key], again [REDACTED:api_key]!"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_secrets_redact_the_longer_whole() {
        let r = Redactor::new([("short", "abcdefgh"), ("long", "abcdefgh-ijkl")]).unwrap();
        assert_eq!(r.redact("x abcdefgh-ijkl y"), "x [REDACTED:long] y");
        assert_eq!(r.redact("x abcdefgh y"), "x [REDACTED:short] y");
    }

    #[test]
    fn multibyte_text_around_a_secret_stays_intact() {
        let r = Redactor::new([("pw", "pässwörd-9")]).unwrap();
        assert_eq!(r.redact("ä pässwörd-9 ö"), "ä [REDACTED:pw] ö");
    }

    #[test]
    fn short_values_are_left_alone() {
        assert!(Redactor::new([("pin", "1234")]).is_none());
        let r = Redactor::new([("pin", "1234"), ("token", "tok_abcdefgh")]).unwrap();
        assert_eq!(r.redact("1234 tok_abcdefgh"), "1234 [REDACTED:token]");
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::new([("t", "secret-value-1")]).unwrap();
        let mut v = serde_json::json!({
            "a": "Bearer secret-value-1",
            "secret-value-1": [1, "secret-value-1"],
            "n": 3
        });
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": "Bearer [REDACTED:t]", "[REDACTED:t]": [1, "[REDACTED:t]"], "n": 3})
        );
        assert!(!format!("{r:?}").contains("secret-value-1"));
    }
}
