//! Formatting shared by the pages: times (UTC, with the machine-readable value for `<time>`),
//! durations, sizes, measurements against their limits, and what to change after each outcome.
//! Pure functions; the templates escape whatever these return.

use chrono::{DateTime, Utc};

use crate::model::Outcome;

/// `2026-05-01 09:30:05Z` (UTC, as the logs and the API).
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// RFC 3339 for `<time datetime>`.
pub fn datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `< 1 ms`, `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. Durations are stored in whole
/// milliseconds, so 0 means under one.
pub fn duration_ms(ms: i64) -> String {
    match ms {
        0 => "< 1 ms".to_string(),
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// `512 B`, `3.4 KiB`, `12.0 MiB`.
pub fn bytes(n: i64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else if f < KIB * KIB * KIB {
        format!("{:.1} MiB", f / KIB / KIB)
    } else {
        format!("{:.1} GiB", f / KIB / KIB / KIB)
    }
}

/// `1 234 567` (thin groups, easy to compare by eye).
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `950`, `12.3 k`, `4.1 M`, `2.0 G`: big figures (fuel) at a glance; exact ones are in tables.
pub fn compact(n: i64) -> String {
    let f = n as f64;
    match n.unsigned_abs() {
        ..10_000 => count(n),
        10_000..1_000_000 => format!("{:.1} k", f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} M", f / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.1} G", f / 1e9),
        _ => format!("{:.1} T", f / 1e12),
    }
}

/// `used` against `limit` in percent (0-100, rounded, capped at 100 for the meter).
pub fn percent(used: i64, limit: i64) -> i64 {
    if limit <= 0 {
        return 0;
    }
    ((used as f64 / limit as f64) * 100.0)
        .round()
        .clamp(0.0, 100.0) as i64
}

/// What to change after an attempt ended this way (empty when nothing needs changing).
pub fn outcome_hint(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "",
        Outcome::Error => "the job returned an error: read the error and the attempt's logs",
        Outcome::OutOfFuel => "raise the run's fuel or make the job cheaper",
        Outcome::MemoryLimit => "raise memory_mb or make the job use less memory",
        Outcome::Timeout => "raise timeout_ms or make the job faster",
        Outcome::Panic => "the job panicked or trapped: read its logs and fix the job",
        Outcome::Cancelled => "the run was cancelled while this attempt ran",
        Outcome::RunnerLost => "the runner executing it stopped heart-beating; the run was rescued",
    }
}

/// Every outcome, in the order the dashboard lists them.
pub const OUTCOMES: [Outcome; 8] = [
    Outcome::Ok,
    Outcome::Error,
    Outcome::OutOfFuel,
    Outcome::MemoryLimit,
    Outcome::Timeout,
    Outcome::Panic,
    Outcome::Cancelled,
    Outcome::RunnerLost,
];

pub fn parse_outcome(s: &str) -> Option<Outcome> {
    OUTCOMES.into_iter().find(|o| o.as_str() == s)
}

/// Percent-encodes a query value.
pub fn url_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A query string from the pairs with a value (`?a=1&b=2`, or empty).
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            q.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("?{}", q.finish())
    } else {
        String::new()
    }
}

/// A query parameter as given, with an empty value meaning "not given".
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A cron expression in words, for the common shapes (`*/5 * * * *`: "every 5 minutes",
/// `30 9 * * 1-5`: "at 09:30 on Monday to Friday"); empty when it is not one of them (the page
/// then shows the expression alone).
pub fn cron_words(expr: &str) -> String {
    let lower = expr.trim().to_ascii_lowercase();
    let macro_words = match lower.as_str() {
        "@yearly" | "@annually" => "once a year, at midnight on 1 January",
        "@monthly" => "once a month, at midnight on the 1st",
        "@weekly" => "once a week, at midnight on Sunday",
        "@daily" | "@midnight" => "every day at midnight",
        "@hourly" => "every hour, on the hour",
        _ => "",
    };
    if !macro_words.is_empty() {
        return macro_words.to_string();
    }
    let mut f: Vec<&str> = lower.split_whitespace().collect();
    let mut second = None;
    if f.len() == 6 {
        second = Some(f.remove(0));
    }
    let [min, hour, dom, mon, dow] = f[..] else {
        return String::new();
    };
    let num = |s: &str| s.parse::<u32>().ok();
    let step = |s: &str| s.strip_prefix("*/").and_then(num);
    let days = match dow {
        "*" | "?" => String::new(),
        "1-5" | "mon-fri" => " on Monday to Friday".to_string(),
        "0,6" | "6,0" | "sat,sun" => " on Saturday and Sunday".to_string(),
        d => match num(d).or_else(|| {
            ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
                .iter()
                .position(|n| *n == d)
                .map(|i| i as u32)
        }) {
            Some(n) if n <= 7 => format!(
                " on {}",
                [
                    "Sunday",
                    "Monday",
                    "Tuesday",
                    "Wednesday",
                    "Thursday",
                    "Friday",
                    "Saturday"
                ][(n % 7) as usize]
            ),
            _ => return String::new(),
        },
    };
    if mon != "*" {
        return String::new();
    }
    let monthday = match (dom, num(dom)) {
        ("*" | "?", _) => String::new(),
        (_, Some(d)) if days.is_empty() => format!(" on day {d} of the month"),
        _ => return String::new(),
    };
    let when = match (second, min, hour) {
        (Some("*"), "*", "*") => "every second".to_string(),
        (Some(s), "*", "*") if step(s).is_some() => {
            format!("every {} seconds", step(s).unwrap_or(1))
        }
        (None | Some("0"), "*", "*") => "every minute".to_string(),
        (None | Some("0"), m, "*") if step(m).is_some() => {
            format!("every {} minutes", step(m).unwrap_or(1))
        }
        (None | Some("0"), m, "*") if num(m).is_some() => {
            format!("every hour at minute {}", num(m).unwrap_or(0))
        }
        (None | Some("0"), m, h) if num(m).is_some() && step(h).is_some() => format!(
            "every {} hours at minute {}",
            step(h).unwrap_or(1),
            num(m).unwrap_or(0)
        ),
        (None | Some("0"), m, h) if num(m).is_some() && num(h).is_some() => format!(
            "{} at {:02}:{:02}",
            if days.is_empty() && monthday.is_empty() {
                "every day"
            } else {
                ""
            },
            num(h).unwrap_or(0),
            num(m).unwrap_or(0)
        )
        .trim()
        .to_string(),
        _ => return String::new(),
    };
    format!("{when}{days}{monthday}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_well() {
        assert_eq!(duration_ms(0), "< 1 ms");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(count(1_234_567), "1 234 567");
        assert_eq!(count(12), "12");
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(query(&[("a", Some("x y".into())), ("b", None)]), "?a=x+y");
        assert_eq!(query(&[("a", Some(String::new()))]), "");
        assert_eq!(cron_words("*/5 * * * *"), "every 5 minutes");
        assert_eq!(cron_words("30 9 * * 1-5"), "at 09:30 on Monday to Friday");
        assert_eq!(cron_words("0 3 * * *"), "every day at 03:00");
        assert_eq!(cron_words("*/2 * * * * *"), "every 2 seconds");
        assert_eq!(cron_words("@daily"), "every day at midnight");
        assert_eq!(cron_words("0 0 1 * *"), "at 00:00 on day 1 of the month");
        assert_eq!(cron_words("0 0 L * *"), "");
    }
}
