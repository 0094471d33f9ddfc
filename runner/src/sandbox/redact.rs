//! Keeps secret values inside the sandbox: every text that leaves an attempt (log lines and
//! their fields, captured stdout/stderr, progress messages, the error, the output) passes
//! through the attempt's `Redactor`, which replaces each secret value the job read with
//! `[REDACTED:name]`.
//!
//! A multi-line value (a PEM key) is also matched line by line, since stdout is logged a line at
//! a time; and text cut to a size bound is checked for a secret's prefix at its end
//! (`redact_cut`). Limits (documented in docs/capabilities.md): values and lines shorter than
//! `MIN_SECRET_BYTES` are not redacted (they would match ordinary text), and transformed values
//! (base64, hashes, a value split by the job itself) are not recognised.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};

/// Shorter secret values are left alone: "abc" would redact half the log.
pub(crate) const MIN_SECRET_BYTES: usize = 8;

/// Replaces known secret values in text.
pub(crate) struct Redactor {
    matcher: AhoCorasick,
    replacements: Vec<String>,
    /// The values and their names, for `redact_cut`'s prefix check.
    values: Vec<(String, String)>,
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
    /// A redactor for `(name, value)` pairs; `Ok(None)` if no value is long enough to redact.
    /// An error (the matcher could not be built) must stop the secrets being handed out.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Redactor>, String> {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        let mut values = Vec::new();
        for (name, value) in secrets {
            let replacement = format!("[REDACTED:{name}]");
            if value.len() >= MIN_SECRET_BYTES {
                names.push(replacement.clone());
                patterns.push(value.to_owned());
                values.push((replacement.clone(), value.to_owned()));
            }
            if value.contains('\n') {
                for line in value.lines().map(|l| l.trim_end_matches('\r')) {
                    if line.len() >= MIN_SECRET_BYTES {
                        names.push(replacement.clone());
                        patterns.push(line.to_owned());
                    }
                }
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        // Leftmost-longest: of two overlapping secrets the longer one is replaced whole.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| format!("the secrets' redactor could not be built: {e}"))?;
        Ok(Some(Redactor {
            matcher,
            replacements: names,
            values,
        }))
    }

    /// `redact` for text cut to a size bound: a secret cut in two at the end leaves a prefix,
    /// which is replaced too (if it is at least `MIN_SECRET_BYTES / 2` bytes).
    pub fn redact_cut(&self, text: &str) -> String {
        let mut text = self.redact(text).into_owned();
        for (replacement, value) in &self.values {
            let longest = value.len().saturating_sub(1).min(text.len());
            let cut = (MIN_SECRET_BYTES / 2..=longest)
                .rev()
                .filter(|&n| value.is_char_boundary(n))
                .find(|&n| text.ends_with(&value[..n]));
            if let Some(n) = cut {
                text.truncate(text.len() - n);
                text.push_str(replacement);
            }
        }
        text
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
        let r = Redactor::new([("api_key", "sk_live_123456789")])
            .unwrap()
            .unwrap();
        assert_eq!(
            r.redact("key=sk_live_123456789, again sk_live_123456789!"),
            "key=[REDACTED:api_key], again [REDACTED:api_key]!"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_secrets_redact_the_longer_whole() {
        let r = Redactor::new([("short", "abcdefgh"), ("long", "abcdefgh-ijkl")])
            .unwrap()
            .unwrap();
        assert_eq!(r.redact("x abcdefgh-ijkl y"), "x [REDACTED:long] y");
        assert_eq!(r.redact("x abcdefgh y"), "x [REDACTED:short] y");
    }

    #[test]
    fn multibyte_text_around_a_secret_stays_intact() {
        let r = Redactor::new([("pw", "pässwörd-9")]).unwrap().unwrap();
        assert_eq!(r.redact("ä pässwörd-9 ö"), "ä [REDACTED:pw] ö");
    }

    #[test]
    fn short_values_are_left_alone() {
        assert!(Redactor::new([("pin", "1234")]).unwrap().is_none());
        let r = Redactor::new([("pin", "1234"), ("token", "tok_abcdefgh")])
            .unwrap()
            .unwrap();
        assert_eq!(r.redact("1234 tok_abcdefgh"), "1234 [REDACTED:token]");
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::new([("t", "secret-value-1")]).unwrap().unwrap();
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

    #[test]
    fn a_multi_line_secret_is_caught_line_by_line() {
        let pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----";
        let r = Redactor::new([("key", pem)]).unwrap().unwrap();
        assert_eq!(r.redact(pem), "[REDACTED:key]");
        assert_eq!(
            r.redact("line: AQEFAASCBKcwggSjAgEAAoIB"),
            "line: [REDACTED:key]"
        );
    }

    #[test]
    fn a_secret_cut_at_the_end_of_bounded_text_is_caught_by_its_prefix() {
        let r = Redactor::new([("t", "tok_live_0123456789")])
            .unwrap()
            .unwrap();
        assert_eq!(
            r.redact_cut("failed with tok_live_01"),
            "failed with [REDACTED:t]"
        );
        assert_eq!(
            r.redact_cut("tok_live_0123456789 and tok_"),
            "[REDACTED:t] and [REDACTED:t]"
        );
        // Too short a prefix to tell from ordinary text.
        assert_eq!(r.redact_cut("ends in tok"), "ends in tok");
    }
}
