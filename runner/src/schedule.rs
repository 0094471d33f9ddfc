//! Timetables of schedules: cron expressions, IANA time zones, and the rules that turn them into
//! fire times (daylight saving time included), plus the misfire plan that decides which due
//! fire times to fire after a delay.
//!
//! Pure logic: no clock and no database. Callers pass "now", which is always the database's
//! clock. Parsing rejects anything it does not fully understand with a message that names the
//! field and the reason, so a stored expression is always one this module can evaluate.
//!
//! How fire times are found (see docs/schedules.md for the user-facing rules):
//! 1. The cron expression is evaluated on the zone's *local wall-clock* timeline (by the `cron`
//!    crate, as if local time were UTC), giving local times such as "2026-03-29 02:30".
//! 2. Each local time is mapped to instants: a time that exists once gives that instant; a time
//!    in a fall-back overlap (it exists twice) gives its first occurrence, and also its second
//!    when the expression is an *interval* (its second, minute or hour field has `*` or a step);
//!    a time in a spring-forward gap (it does not exist) is shifted forward by the gap's length.
//! 3. The fire times are the set of those instants, in order: two local times that map to one
//!    instant fire once.
//!
//! The search walks the zone's offset segments instead of enumerating local times, so a
//! schedule firing every second costs the same near a DST change as elsewhere.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A cron expression that failed to parse: the message names the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// What is wrong with a schedule's timetable, and in which request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TimetableError {
    /// `cron` or `timezone`.
    pub field: &'static str,
    pub message: String,
}

/// One field of a cron expression: its name, its range and the names it accepts.
#[derive(Debug, Clone, Copy)]
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values `names_base`, `names_base + 1`, ...
    names: &'static [&'static str],
    names_base: u32,
    /// `?` is accepted (as `*`) in the day fields only.
    question_mark: bool,
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
    question_mark: false,
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    ..SECOND
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    max: 23,
    ..SECOND
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_base: 0,
    question_mark: true,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    names_base: 1,
    question_mark: false,
};
/// 0 and 7 are both Sunday, as in Unix cron.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    names_base: 0,
    question_mark: true,
};

const FIELDS: [FieldSpec; 6] = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK];

/// The macros and the five-field expressions they stand for.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// A parsed field: the values it matches.
#[derive(Debug, Clone)]
struct Field {
    values: BTreeSet<u32>,
    /// Does not start with `*` or `?` (Vixie cron's rule for combining the two day fields).
    restricted: bool,
    /// Has a `*` or a step: makes the expression an interval.
    wildcard: bool,
}

/// A validated cron expression (5 fields, 6 with seconds first, or a macro).
#[derive(Debug, Clone)]
pub struct Cron {
    source: String,
    /// Matched by any of these (two when both day fields are restricted: either may match).
    schedules: Vec<cron::Schedule>,
    interval: bool,
}

impl Cron {
    /// Parses an expression; the error names the field (numbered as written) and the reason.
    pub fn parse(expression: &str) -> Result<Cron, CronError> {
        let source = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        if source.is_empty() {
            return Err(CronError(
                "the expression is empty: use 5 fields (minute hour day-of-month month \
                 day-of-week), 6 with a seconds field first, or a macro such as @daily"
                    .into(),
            ));
        }
        let text = if source.starts_with('@') {
            let lower = source.to_ascii_lowercase();
            MACROS
                .iter()
                .find(|(name, _)| *name == lower)
                .map(|(_, expansion)| *expansion)
                .ok_or_else(|| {
                    let names: Vec<_> = MACROS.iter().map(|(n, _)| *n).collect();
                    CronError(format!(
                        "'{source}' is not a known macro: use one of {}",
                        names.join(", ")
                    ))
                })?
        } else {
            source.as_str()
        };
        let parts: Vec<&str> = text.split(' ').collect();
        let (specs, given): (&[FieldSpec], &[&str]) = match parts.len() {
            5 => (&FIELDS[1..], &parts),
            6 => (&FIELDS, &parts),
            n => {
                return Err(CronError(format!(
                    "{n} fields: use 5 (minute hour day-of-month month day-of-week) or 6 \
                     (second minute hour day-of-month month day-of-week){}",
                    if n == 7 {
                        "; a year field is not supported"
                    } else {
                        ""
                    }
                )));
            }
        };
        let mut fields = Vec::with_capacity(6);
        if specs.len() == 5 {
            fields.push(parse_field("0", &SECOND).expect("a literal second"));
        }
        for (i, (spec, text)) in specs.iter().zip(given).enumerate() {
            let field = parse_field(text, spec).map_err(|reason| {
                CronError(format!(
                    "field {} ({}) '{text}': {reason}",
                    i + 1,
                    spec.name
                ))
            })?;
            fields.push(field);
        }
        let [second, minute, hour, dom, month, dow] = <[Field; 6]>::try_from(fields)
            .unwrap_or_else(|_| unreachable!("six fields are always built"));

        let list = |f: &Field, shift: u32| {
            f.values
                .iter()
                .map(|v| (v + shift).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let time = format!(
            "{} {} {}",
            list(&second, 0),
            list(&minute, 0),
            list(&hour, 0)
        );
        let month_text = list(&month, 0);
        let dom_text = if dom.values.len() == 31 {
            "*".to_string()
        } else {
            list(&dom, 0)
        };
        // The cron crate numbers days of the week 1 (Sunday) to 7 (Saturday).
        let dow_text = if dow.values.len() == 7 {
            "*".to_string()
        } else {
            list(&dow, 1)
        };
        let expressions = if dom.restricted && dow.restricted {
            // Vixie cron: when both day fields are restricted, a day matching either fires.
            vec![
                format!("{time} {dom_text} {month_text} *"),
                format!("{time} * {month_text} {dow_text}"),
            ]
        } else {
            vec![format!("{time} {dom_text} {month_text} {dow_text}")]
        };
        let schedules = expressions
            .iter()
            .map(|e| {
                cron::Schedule::from_str(e)
                    .map_err(|err| CronError(format!("cannot be evaluated ({err})")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cron {
            source,
            schedules,
            interval: second.wildcard || minute.wildcard || hour.wildcard,
        })
    }

    /// The expression as given, whitespace normalised.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// An interval expression fires in both passes of a repeated (fall-back) hour.
    pub fn is_interval(&self) -> bool {
        self.interval
    }

    /// The first matching wall-clock time strictly after `after` (both as seconds since the
    /// epoch of the local timeline).
    fn next_local(&self, after: i64) -> Option<i64> {
        let after = DateTime::from_timestamp(after, 0)?;
        self.schedules
            .iter()
            .filter_map(|s| s.after(&after).next())
            .map(|t| t.timestamp())
            .min()
    }
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if text.is_empty() {
        return Err("a value is missing".into());
    }
    let value = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u32>().unwrap_or(u32::MAX)
    } else if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        spec.names_base + i as u32
    } else {
        let names = if spec.names.is_empty() {
            String::new()
        } else {
            format!(
                " or a name {}-{}",
                spec.names[0],
                spec.names[spec.names.len() - 1]
            )
        };
        return Err(format!(
            "'{text}' is not a value: use a number {}-{}{names} (L, W and # are not supported)",
            spec.min, spec.max
        ));
    };
    if value < spec.min || value > spec.max {
        return Err(format!(
            "value {text} is out of range {}-{}",
            spec.min, spec.max
        ));
    }
    Ok(value)
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, String> {
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err("an empty list item".into());
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let n = if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                    step.parse::<u32>().unwrap_or(u32::MAX)
                } else {
                    return Err(format!("step '{step}' is not a number"));
                };
                if n == 0 || n > spec.max - spec.min + 1 {
                    return Err(format!(
                        "step {step} is out of range 1-{}",
                        spec.max - spec.min + 1
                    ));
                }
                (range, Some(n))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            if range == "?" && !spec.question_mark {
                return Err("'?' is only allowed in day-of-month and day-of-week".into());
            }
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(a, spec)?, parse_value(b, spec)?);
            if a > b {
                return Err(format!(
                    "range {range} runs backwards: write it as a list or two ranges"
                ));
            }
            (a, b)
        } else {
            let v = parse_value(range, spec)?;
            // `5/15` means from 5 to the end of the range, every 15.
            (v, if step.is_some() { spec.max } else { v })
        };
        for v in (low..=high).step_by(step.unwrap_or(1) as usize) {
            // Day of week 7 is Sunday, like 0.
            values.insert(if spec.name == DAY_OF_WEEK.name && v == 7 {
                0
            } else {
                v
            });
        }
    }
    Ok(Field {
        values,
        restricted: !(text.starts_with('*') || text.starts_with('?')),
        wildcard: text.contains('*') || text.contains('/'),
    })
}

/// Parses an IANA time zone name such as `Europe/Berlin` (exact spelling).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| {
        format!(
            "'{name}' is not an IANA time zone name: use a name such as 'UTC', 'Europe/Berlin' \
             or 'America/New_York' (case matters)"
        )
    })
}

/// Assumed shortest time between two offset changes of one zone (tzdb has none closer). Only
/// the change nearest to a fire time matters; the search looks this far back for it.
const TRANSITION_LOOKBACK: i64 = 2 * 86_400;
/// Bound on offset segments walked for one fire time (a century of DST changes).
const MAX_SEGMENTS: usize = 512;

/// A cron expression in a time zone: the fire times of a schedule.
#[derive(Debug, Clone)]
pub struct Timetable {
    cron: Cron,
    tz: Tz,
}

impl Timetable {
    pub fn new(cron: Cron, tz: Tz) -> Timetable {
        Timetable { cron, tz }
    }

    /// Parses both parts; the error says which request field is wrong.
    pub fn parse(cron: &str, timezone: &str) -> Result<Timetable, TimetableError> {
        let cron = Cron::parse(cron).map_err(|e| TimetableError {
            field: "cron",
            message: e.0,
        })?;
        let tz = parse_timezone(timezone).map_err(|message| TimetableError {
            field: "timezone",
            message,
        })?;
        Ok(Timetable { cron, tz })
    }

    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// A UTC offset (seconds) in effect at an instant (seconds since the epoch).
    fn offset(&self, t: i64) -> i64 {
        let utc = DateTime::from_timestamp(t, 0)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .naive_utc();
        i64::from(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        )
    }

    /// The first instant in `(a, b]` whose offset differs from the offset at `a`.
    fn transition_in(&self, a: i64, b: i64) -> Option<i64> {
        const DAY: i64 = 86_400;
        let o = self.offset(a);
        let mut low = a;
        while low < b {
            let high = (low + DAY).min(b);
            if self.offset(high) != o {
                let (mut l, mut h) = (low, high);
                while h - l > 1 {
                    let m = l + (h - l) / 2;
                    if self.offset(m) == o {
                        l = m;
                    } else {
                        h = m;
                    }
                }
                return Some(h);
            }
            low = high;
        }
        None
    }

    /// The first fire time strictly after instant `t` (seconds since the epoch).
    fn next_after_secs(&self, t: i64) -> Option<i64> {
        let mut offset = self.offset(t);
        // The offset segment holding `t` and the offset before it, when it began recently
        // enough for its gap or overlap to matter.
        let mut start = self
            .transition_in(t - TRANSITION_LOOKBACK, t)
            .map(|s| (s, self.offset(s - 1)));
        for _ in 0..MAX_SEGMENTS {
            // Regular fire times of this segment: local time minus this segment's offset.
            let lower = start.map_or(t, |(s, _)| t.max(s - 1));
            let mut from = lower + offset;
            if let Some((s, before)) = start
                && before > offset
                && !self.cron.interval
            {
                // After a fall-back, the repeated local times fired in their first pass.
                from = from.max(s + before - 1);
            }
            let mut best = self.cron.next_local(from).map(|n| n - offset);
            if let Some((s, before)) = start
                && before < offset
            {
                // After a spring-forward, local times in the gap fire shifted by its length.
                let from = (t + before).max(s + before - 1);
                if let Some(n) = self.cron.next_local(from)
                    && n < s + offset
                {
                    let x = n - before;
                    best = Some(best.map_or(x, |b| b.min(x)));
                }
            }
            let candidate = best?;
            let low = start.map_or(t, |(s, _)| t.max(s));
            match self.transition_in(low, candidate) {
                None => return Some(candidate),
                Some(e) => {
                    start = Some((e, offset));
                    offset = self.offset(e);
                }
            }
        }
        None
    }

    /// The first fire time strictly after `t`; `None` when the expression never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_after_secs(t.timestamp())
            .and_then(|s| DateTime::from_timestamp(s, 0))
    }

    /// The first fire time at or after `t`.
    pub fn at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = if t.timestamp_subsec_nanos() == 0 {
            t.timestamp() - 1
        } else {
            t.timestamp()
        };
        self.next_after_secs(secs)
            .and_then(|s| DateTime::from_timestamp(s, 0))
    }

    /// The next `n` fire times strictly after `t`.
    /// The shortest time between two consecutive fires among the next `n` after `t` (`None`
    /// when it fires fewer than twice).
    pub fn shortest_gap(&self, t: DateTime<Utc>, n: usize) -> Option<chrono::Duration> {
        let fires = self.upcoming(t, n);
        fires.windows(2).map(|w| w[1] - w[0]).min()
    }

    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The latest `n` fire times in `[from, to]`, oldest first. Searches back from `to` in
    /// growing windows, so a long gap costs about as much as `n` fire times, not the gap.
    pub fn latest(&self, from: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        if n == 0 || from > to {
            return Vec::new();
        }
        let mut window = chrono::Duration::seconds(1);
        loop {
            let start = (to - window).max(from);
            let mut found = VecDeque::with_capacity(n);
            let mut count = 0usize;
            let mut next = self.at_or_after(start);
            while let Some(f) = next.filter(|f| *f <= to) {
                if found.len() == n {
                    found.pop_front();
                }
                found.push_back(f);
                count += 1;
                next = self.next_after(f);
            }
            if count >= n || start == from {
                return found.into();
            }
            window = window * 4;
        }
    }

    /// Decides what to fire when the schedule's first unfired fire time, `pending`, is due at
    /// `now` (the database's clock), and its next fire time after that.
    pub fn plan(&self, pending: DateTime<Utc>, now: DateTime<Utc>, misfire: &Misfire) -> FirePlan {
        if pending > now {
            return FirePlan {
                fire: Vec::new(),
                next_fire_at: Some(pending),
                missed_since: None,
            };
        }
        let grace = chrono::Duration::milliseconds(misfire.grace_ms.min(i64::MAX as u64) as i64);
        let on_time_from = (now - grace).max(pending);
        let on_time = self.latest(on_time_from, now, MAX_FIRES_PER_PASS);
        let fire = match misfire.policy {
            MisfirePolicy::Skip => on_time,
            MisfirePolicy::FireOnce if !on_time.is_empty() => on_time,
            MisfirePolicy::FireOnce => self.latest(pending, now, 1),
            MisfirePolicy::FireAll => {
                self.latest(pending, now, (misfire.max as usize).min(MAX_FIRES_PER_PASS))
            }
        };
        let first_due = self.at_or_after(pending).filter(|f| *f <= now);
        let missed_since = first_due.filter(|f| fire.first() != Some(f));
        FirePlan {
            fire,
            next_fire_at: self.next_after(now),
            missed_since,
        }
    }
}

/// What to do with fire times that were missed (more than `grace_ms` late), e.g. because no
/// runner was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// Fire only fire times that are on time; drop missed ones.
    Skip,
    /// One run for all the missed fire times (for the latest of them).
    FireOnce,
    /// One run per missed fire time, for the latest `max` of them.
    FireAll,
}

impl MisfirePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MisfirePolicy::Skip => "skip",
            MisfirePolicy::FireOnce => "fire_once",
            MisfirePolicy::FireAll => "fire_all",
        }
    }

    pub fn parse(s: &str) -> Option<MisfirePolicy> {
        [
            MisfirePolicy::Skip,
            MisfirePolicy::FireOnce,
            MisfirePolicy::FireAll,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// The default bound of `fire_all`.
pub const DEFAULT_FIRE_ALL_MAX: u32 = 100;
/// Most runs one catch-up may create, whatever the policy: guards the database and the queue
/// against a schedule firing every second after a long outage.
pub const MAX_FIRES_PER_PASS: usize = 1000;
/// The default lateness up to which a fire time counts as on time.
pub const DEFAULT_GRACE_MS: u64 = 1000;
/// Largest accepted grace (a day).
pub const MAX_GRACE_MS: u64 = 86_400_000;

/// A schedule's misfire policy with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misfire {
    pub policy: MisfirePolicy,
    /// Bound of `fire_all` (1..=1000); unused by the other policies.
    pub max: u32,
    /// A fire time at most this late is on time under every policy.
    pub grace_ms: u64,
}

impl Default for Misfire {
    fn default() -> Misfire {
        Misfire {
            policy: MisfirePolicy::FireOnce,
            max: DEFAULT_FIRE_ALL_MAX,
            grace_ms: DEFAULT_GRACE_MS,
        }
    }
}

/// Which fire times to fire now, and where the schedule continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirePlan {
    /// Oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// The first fire time after now (`None`: the expression never fires again).
    pub next_fire_at: Option<DateTime<Utc>>,
    /// Set when due fire times were dropped or coalesced: the first of them.
    pub missed_since: Option<DateTime<Utc>>,
}

impl fmt::Display for Timetable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' in {}", self.cron.source, self.tz.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn times(tt: &Timetable, after: &str, n: usize) -> Vec<String> {
        tt.upcoming(utc(after), n)
            .iter()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect()
    }

    fn local(tt: &Timetable, after: &str, n: usize) -> Vec<String> {
        tt.upcoming(utc(after), n)
            .iter()
            .map(|t| t.with_timezone(&tt.tz).to_rfc3339())
            .collect()
    }

    fn tt(cron: &str, tz: &str) -> Timetable {
        Timetable::parse(cron, tz).unwrap_or_else(|e| panic!("{cron} in {tz}: {e}"))
    }

    fn cron_err(expr: &str) -> String {
        match Cron::parse(expr) {
            Ok(_) => panic!("{expr:?} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let t = tt("*/15 9-10 * * *", "UTC");
        assert_eq!(
            times(&t, "2026-01-05T09:20:00Z", 5),
            [
                "2026-01-05T09:30:00Z",
                "2026-01-05T09:45:00Z",
                "2026-01-05T10:00:00Z",
                "2026-01-05T10:15:00Z",
                "2026-01-05T10:30:00Z"
            ]
        );
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let t = tt("*/20 * * * * *", "UTC");
        assert_eq!(
            times(&t, "2026-01-05T09:00:41Z", 4),
            [
                "2026-01-05T09:01:00Z",
                "2026-01-05T09:01:20Z",
                "2026-01-05T09:01:40Z",
                "2026-01-05T09:02:00Z"
            ]
        );
        let every = tt("* * * * * *", "UTC");
        assert_eq!(
            times(&every, "2026-01-05T09:00:59.5Z", 2),
            ["2026-01-05T09:01:00Z", "2026-01-05T09:01:01Z"]
        );
        assert!(every.cron().is_interval());
    }

    #[test]
    fn macros_expand_to_their_expressions() {
        let after = "2026-05-13T10:30:00Z"; // a Wednesday
        assert_eq!(
            times(&tt("@hourly", "UTC"), after, 1),
            ["2026-05-13T11:00:00Z"]
        );
        assert_eq!(
            times(&tt("@daily", "UTC"), after, 1),
            ["2026-05-14T00:00:00Z"]
        );
        assert_eq!(
            times(&tt("@midnight", "UTC"), after, 1),
            ["2026-05-14T00:00:00Z"]
        );
        assert_eq!(
            times(&tt("@weekly", "UTC"), after, 1),
            ["2026-05-17T00:00:00Z"]
        );
        assert_eq!(
            times(&tt("@monthly", "UTC"), after, 1),
            ["2026-06-01T00:00:00Z"]
        );
        assert_eq!(
            times(&tt("@yearly", "UTC"), after, 1),
            ["2027-01-01T00:00:00Z"]
        );
        assert_eq!(
            times(&tt("@ANNUALLY", "UTC"), after, 1),
            ["2027-01-01T00:00:00Z"]
        );
        assert!(tt("@hourly", "UTC").cron().is_interval());
        assert!(!tt("@daily", "UTC").cron().is_interval());
        assert!(cron_err("@reboot").contains("not a known macro"));
    }

    #[test]
    fn names_lists_ranges_and_steps() {
        // Weekdays at 08:00 and 17:30 in January and July.
        let t = tt("0 8 * JAN,jul MON-FRI", "UTC");
        assert_eq!(
            times(&t, "2026-01-09T09:00:00Z", 2), // Friday
            ["2026-01-12T08:00:00Z", "2026-01-13T08:00:00Z"]
        );
        // 7 is Sunday, like 0.
        assert_eq!(
            times(&tt("0 0 * * 7", "UTC"), "2026-05-13T00:00:00Z", 1),
            ["2026-05-17T00:00:00Z"]
        );
        // `5/20` is 5, 25, 45.
        assert_eq!(
            times(&tt("5/20 0 * * *", "UTC"), "2026-05-13T00:00:00Z", 3),
            [
                "2026-05-13T00:05:00Z",
                "2026-05-13T00:25:00Z",
                "2026-05-13T00:45:00Z"
            ]
        );
    }

    #[test]
    fn both_day_fields_restricted_match_either_as_in_vixie_cron() {
        // The 1st of the month or any Monday.
        let t = tt("0 0 1 * MON", "UTC");
        assert_eq!(
            times(&t, "2026-05-26T00:00:00Z", 3), // a Tuesday
            [
                "2026-06-01T00:00:00Z", // the 1st (also a Monday)
                "2026-06-08T00:00:00Z",
                "2026-06-15T00:00:00Z"
            ]
        );
        let t = tt("0 0 13 * FRI", "UTC");
        assert_eq!(
            times(&t, "2026-05-10T00:00:00Z", 3),
            [
                "2026-05-13T00:00:00Z",
                "2026-05-15T00:00:00Z",
                "2026-05-22T00:00:00Z"
            ]
        );
        // With one day field a wildcard, the other alone decides.
        let t = tt("0 0 */10 * MON", "UTC");
        assert_eq!(
            times(&t, "2026-06-01T12:00:00Z", 1),
            ["2026-08-31T00:00:00Z"], // the first Monday that is the 1st, 11th, 21st or 31st
        );
    }

    #[test]
    fn field_errors_name_the_field_and_the_reason() {
        assert_eq!(
            cron_err("0 25 * * *"),
            "field 2 (hour) '25': value 25 is out of range 0-23"
        );
        assert_eq!(
            cron_err("61 0 0 * * *"),
            "field 1 (second) '61': value 61 is out of range 0-59"
        );
        assert!(cron_err("0 0 32 * *").contains("field 3 (day-of-month) '32'"));
        assert!(
            cron_err("0 0 * 13 *").contains("field 4 (month) '13': value 13 is out of range 1-12")
        );
        assert!(cron_err("0 0 * * 8").contains("field 5 (day-of-week) '8'"));
        assert!(cron_err("0 0 * FOO *").contains("'FOO' is not a value"));
        assert!(
            cron_err("*/0 * * * *").contains("field 1 (minute) '*/0': step 0 is out of range 1-60")
        );
        assert!(cron_err("30-10 * * * *").contains("runs backwards"));
        assert!(cron_err("1,,2 * * * *").contains("an empty list item"));
        assert!(cron_err("? * * * *").contains("only allowed in day-of-month and day-of-week"));
        assert!(cron_err("0 0 L * *").contains("L, W and # are not supported"));
        assert!(cron_err("* * *").starts_with("3 fields"));
        assert!(cron_err("0 0 0 1 1 * 2030").contains("a year field is not supported"));
        assert!(cron_err("   ").contains("empty"));
        let e = Timetable::parse("0 0 * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field, "timezone");
        assert!(
            e.to_string()
                .starts_with("timezone: 'Mars/Olympus' is not an IANA time zone")
        );
        let e = Timetable::parse("0 24 * * *", "UTC").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cron: field 2 (hour) '24': value 24 is out of range 0-23"
        );
    }

    #[test]
    fn an_expression_that_never_matches_has_no_fire_time() {
        assert_eq!(
            times(&tt("0 0 30 2 *", "UTC"), "2026-01-01T00:00:00Z", 1),
            Vec::<String>::new()
        );
    }

    #[test]
    fn next_five_in_a_zone_are_local_wall_clock_times() {
        let t = tt("0 9 * * MON-FRI", "Asia/Tokyo");
        assert_eq!(
            times(&t, "2026-05-15T01:00:00Z", 5), // Friday 10:00 in Tokyo
            [
                "2026-05-18T00:00:00Z",
                "2026-05-19T00:00:00Z",
                "2026-05-20T00:00:00Z",
                "2026-05-21T00:00:00Z",
                "2026-05-22T00:00:00Z"
            ]
        );
        assert_eq!(
            local(&t, "2026-05-15T01:00:00Z", 1),
            ["2026-05-18T09:00:00+09:00"]
        );
        // A half-hour zone.
        let t = tt("0 0 * * *", "Asia/Kolkata");
        assert_eq!(
            times(&t, "2026-05-15T00:00:00Z", 1),
            ["2026-05-15T18:30:00Z"]
        );
    }

    /// Europe/Berlin, 2026-03-29: at 02:00 CET clocks jump to 03:00 CEST, so 02:30 does not
    /// exist. The daily 02:30 fires once that day, at 03:30 CEST (01:30 UTC).
    #[test]
    fn daily_0230_fires_once_on_spring_forward_day_in_berlin() {
        let t = tt("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            local(&t, "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:30:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        assert_eq!(
            times(&t, "2026-03-28T12:00:00Z", 1),
            ["2026-03-29T01:30:00Z"]
        );
        // Asked from inside the gap's shifted hour, the shifted time is still ahead.
        assert_eq!(
            times(&t, "2026-03-29T01:10:00Z", 1),
            ["2026-03-29T01:30:00Z"]
        );
        assert_eq!(
            times(&t, "2026-03-29T01:30:00Z", 1),
            ["2026-03-30T00:30:00Z"]
        );
    }

    /// Europe/Berlin, 2026-10-25: at 03:00 CEST clocks go back to 02:00 CET, so 02:30 happens
    /// twice. The daily 02:30 fires once, at the first 02:30 (CEST, 00:30 UTC).
    #[test]
    fn daily_0230_fires_once_on_fall_back_day_in_berlin() {
        let t = tt("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            local(&t, "2026-10-23T12:00:00Z", 3),
            [
                "2026-10-24T02:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00"
            ]
        );
        // Between the two 02:30s the next fire is the next day's.
        assert_eq!(
            times(&t, "2026-10-25T00:30:00Z", 1),
            ["2026-10-26T01:30:00Z"]
        );
        assert_eq!(
            times(&t, "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T01:30:00Z"]
        );
    }

    /// America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
    #[test]
    fn new_york_spring_forward_and_fall_back() {
        let t = tt("30 2 * * *", "America/New_York");
        assert_eq!(
            local(&t, "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T03:30:00-04:00",
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00"
            ]
        );
        // In New York the repeated hour is 01:00-02:00.
        let t = tt("30 1 * * *", "America/New_York");
        assert_eq!(
            local(&t, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn interval_expressions_fire_in_both_passes_of_a_repeated_hour() {
        let t = tt("*/30 * * * *", "America/New_York");
        assert_eq!(
            local(&t, "2026-11-01T04:00:00Z", 7),
            [
                "2026-11-01T00:30:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00"
            ]
        );
        let hourly = tt("@hourly", "Europe/Berlin");
        assert_eq!(
            times(&hourly, "2026-10-24T23:30:00Z", 4),
            [
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
                "2026-10-25T03:00:00Z"
            ]
        );
    }

    #[test]
    fn interval_expressions_skip_nothing_and_double_nothing_on_spring_forward() {
        let t = tt("*/30 * * * *", "America/New_York");
        assert_eq!(
            times(&t, "2026-03-08T05:45:00Z", 6),
            [
                "2026-03-08T06:00:00Z", // 01:00 EST
                "2026-03-08T06:30:00Z", // 01:30 EST
                "2026-03-08T07:00:00Z", // 02:00 does not exist: 03:00 EDT
                "2026-03-08T07:30:00Z", // 02:30 → 03:30 EDT, the same as 03:30 itself
                "2026-03-08T08:00:00Z",
                "2026-03-08T08:30:00Z"
            ]
        );
        let every_second = tt("* * * * * *", "Europe/Berlin");
        let around = every_second.upcoming(utc("2026-03-29T00:59:58Z"), 4);
        assert_eq!(
            around.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>(),
            [
                "2026-03-29T00:59:59+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T01:00:01+00:00",
                "2026-03-29T01:00:02+00:00"
            ]
        );
    }

    /// A whole day of each DST change: a fixed daily time fires exactly once per local day.
    #[test]
    fn fixed_times_fire_exactly_once_per_local_day_across_a_year() {
        for (cron, zone) in [
            ("30 2 * * *", "Europe/Berlin"),
            ("30 2 * * *", "America/New_York"),
            ("30 1 * * *", "America/New_York"),
            ("0 2 * * *", "Australia/Lord_Howe"),
        ] {
            let t = tt(cron, zone);
            let fires = t.upcoming(utc("2026-01-01T00:00:00Z"), 400);
            let mut days: Vec<_> = fires
                .iter()
                .map(|f| f.with_timezone(&t.tz).date_naive())
                .collect();
            let n = days.len();
            days.dedup();
            assert_eq!(days.len(), n, "{cron} in {zone}: a day fired twice");
            for pair in days.windows(2) {
                assert_eq!(
                    (pair[1] - pair[0]).num_days(),
                    1,
                    "{cron} in {zone}: a day was skipped"
                );
            }
        }
    }

    /// The segment walk against a brute-force reading of the rules: every matching local time,
    /// mapped to its instant(s) one by one, collected as a set.
    #[test]
    fn fire_times_match_a_brute_force_reading_of_the_rules_around_dst_changes() {
        use chrono::LocalResult;
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Australia/Lord_Howe", // 30-minute changes
            "America/Santiago",    // changes at midnight
            "Asia/Kolkata",        // no changes
        ];
        let expressions = [
            "30 2 * * *",
            "*/15 * * * *",
            "0 * * * *",
            "15,45 0-3 * * *",
            "0 0 * * *",
            "*/7 2 * * *",
            "59 23 * * *",
            "0,30 1,2 * * *",
        ];
        for zone in zones {
            for expr in expressions {
                let t = tt(expr, zone);
                for (from, to) in [
                    ("2026-03-26T00:00:00Z", "2026-04-08T00:00:00Z"),
                    ("2026-09-01T00:00:00Z", "2026-09-10T00:00:00Z"),
                    ("2026-09-30T00:00:00Z", "2026-10-07T00:00:00Z"),
                    ("2026-10-22T00:00:00Z", "2026-11-04T00:00:00Z"),
                ] {
                    let (from, to) = (utc(from), utc(to));
                    let mut expected = BTreeSet::new();
                    let mut local = from.timestamp() - 2 * 86_400;
                    while let Some(n) = t.cron.next_local(local) {
                        if n > to.timestamp() + 2 * 86_400 {
                            break;
                        }
                        local = n;
                        let naive = DateTime::from_timestamp(n, 0).unwrap().naive_utc();
                        match t.tz.from_local_datetime(&naive) {
                            LocalResult::Single(x) => {
                                expected.insert(x.timestamp());
                            }
                            LocalResult::Ambiguous(a, b) => {
                                expected.insert(a.timestamp().min(b.timestamp()));
                                if t.cron.interval {
                                    expected.insert(a.timestamp().max(b.timestamp()));
                                }
                            }
                            LocalResult::None => {
                                let before = t.offset(n - 86_400);
                                expected.insert(n - before);
                            }
                        }
                    }
                    let expected: Vec<i64> = expected
                        .into_iter()
                        .filter(|x| *x > from.timestamp() && *x <= to.timestamp())
                        .collect();
                    let mut got = Vec::new();
                    let mut at = from;
                    while let Some(next) = t.next_after(at).filter(|n| *n <= to) {
                        got.push(next.timestamp());
                        at = next;
                    }
                    assert_eq!(got, expected, "{expr} in {zone} from {from}");
                }
            }
        }
    }

    fn policy(policy: MisfirePolicy, max: u32) -> Misfire {
        Misfire {
            policy,
            max,
            grace_ms: 1000,
        }
    }

    #[test]
    fn misfire_plans_after_downtime() {
        let t = tt("0 * * * *", "UTC");
        let pending = utc("2026-05-13T05:00:00Z");
        let now = utc("2026-05-13T09:20:00Z"); // 05:00-09:00 missed: 5 fire times
        let skip = t.plan(pending, now, &policy(MisfirePolicy::Skip, 0));
        assert!(skip.fire.is_empty());
        assert_eq!(skip.next_fire_at, Some(utc("2026-05-13T10:00:00Z")));
        assert_eq!(skip.missed_since, Some(pending));
        let once = t.plan(pending, now, &policy(MisfirePolicy::FireOnce, 0));
        assert_eq!(once.fire, [utc("2026-05-13T09:00:00Z")]);
        let all = t.plan(pending, now, &policy(MisfirePolicy::FireAll, 3));
        assert_eq!(
            all.fire,
            [
                utc("2026-05-13T07:00:00Z"),
                utc("2026-05-13T08:00:00Z"),
                utc("2026-05-13T09:00:00Z")
            ]
        );
        let all = t.plan(pending, now, &policy(MisfirePolicy::FireAll, 100));
        assert_eq!(all.fire.len(), 5);
        assert_eq!(all.missed_since, None);
    }

    #[test]
    fn on_time_fire_times_fire_under_every_policy() {
        let t = tt("* * * * * *", "UTC");
        let pending = utc("2026-05-13T09:00:00Z");
        let now = utc("2026-05-13T09:00:00.300Z");
        for p in [
            MisfirePolicy::Skip,
            MisfirePolicy::FireOnce,
            MisfirePolicy::FireAll,
        ] {
            let plan = t.plan(pending, now, &policy(p, 10));
            assert_eq!(plan.fire, [pending], "{p:?}");
            assert_eq!(plan.next_fire_at, Some(utc("2026-05-13T09:00:01Z")));
            assert_eq!(plan.missed_since, None);
        }
        // Not yet due: nothing.
        let plan = t.plan(pending, utc("2026-05-13T08:59:59Z"), &Misfire::default());
        assert!(plan.fire.is_empty());
        assert_eq!(plan.next_fire_at, Some(pending));
    }

    #[test]
    fn catch_up_after_a_long_outage_is_cheap_and_bounded() {
        let t = tt("* * * * * *", "UTC");
        let pending = utc("2026-01-01T00:00:00Z");
        let now = utc("2026-02-01T00:00:00.5Z"); // a month of every second
        let started = std::time::Instant::now();
        let all = t.plan(pending, now, &policy(MisfirePolicy::FireAll, 1000));
        assert_eq!(all.fire.len(), 1000);
        assert_eq!(all.fire.last(), Some(&utc("2026-02-01T00:00:00Z")));
        let once = t.plan(pending, now, &policy(MisfirePolicy::FireOnce, 0));
        assert_eq!(once.fire, [utc("2026-02-01T00:00:00Z")]);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
