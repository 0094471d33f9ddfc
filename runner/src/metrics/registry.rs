//! A small registry of labelled counters and histograms, and the Prometheus text format
//! (version 0.0.4) they and the scrape-time gauges are written in.
//!
//! Each family keeps its series in one mutex-guarded map: an increment is a map update in
//! memory, never I/O. Families are declared once with their label names; a value given with
//! a different number of labels is a programming error and panics in debug builds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// One metric's name, help text and label names.
#[derive(Debug)]
struct Desc {
    name: &'static str,
    help: &'static str,
    labels: Vec<&'static str>,
}

impl Desc {
    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is a single map operation: a panic elsewhere cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A family of counters, one per combination of label values.
#[derive(Debug)]
pub struct CounterVec {
    desc: Desc,
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

/// Label sets one metric keeps. Label values come from tenants (queue names, with
/// `--metrics-tenant-labels` tenant names): past this many, new ones are counted under
/// `other` for every label, so a tenant inventing names cannot grow the runner's memory or the
/// scrape without bound.
pub const MAX_SERIES: usize = 1000;

fn bounded_key<V>(series: &BTreeMap<Vec<String>, V>, key: Vec<String>) -> Vec<String> {
    if series.len() < MAX_SERIES || series.contains_key(&key) {
        return key;
    }
    vec!["other".to_owned(); key.len()]
}

impl CounterVec {
    pub fn new(name: &'static str, help: &'static str, labels: &[&'static str]) -> CounterVec {
        CounterVec {
            desc: Desc {
                name,
                help,
                labels: labels.to_vec(),
            },
            series: Mutex::default(),
        }
    }

    pub fn inc_by(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.desc.labels.len(), "{}", self.desc.name);
        if n == 0 {
            return;
        }
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut series = lock(&self.series);
        let key = bounded_key(&series, key);
        *series.entry(key).or_default() += n;
    }

    /// The current value of one series (0 if it was never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.series).get(&key).copied().unwrap_or(0)
    }

    pub fn encode(&self, out: &mut String) {
        self.desc.header(out, "counter");
        let series = lock(&self.series);
        if series.is_empty() && self.desc.labels.is_empty() {
            // An unlabelled counter exists from the start, so rate() sees its first increment.
            sample::<&str>(out, self.desc.name, &[], &[], None, 0.0);
        }
        for (values, n) in series.iter() {
            sample(
                out,
                self.desc.name,
                &self.desc.labels,
                values,
                None,
                *n as f64,
            );
        }
    }
}

/// Per-series state of a histogram: counts per bucket (not cumulative), sum and count.
#[derive(Debug, Clone)]
struct Hist {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A family of histograms with fixed upper bounds (`le`), one per combination of labels.
#[derive(Debug)]
pub struct HistogramVec {
    desc: Desc,
    bounds: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, Hist>>,
}

impl HistogramVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
        bounds: &'static [f64],
    ) -> HistogramVec {
        debug_assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "{name}: bounds ascend"
        );
        HistogramVec {
            desc: Desc {
                name,
                help,
                labels: labels.to_vec(),
            },
            bounds,
            series: Mutex::default(),
        }
    }

    pub fn observe(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.desc.labels.len(), "{}", self.desc.name);
        let value = if value.is_finite() { value } else { 0.0 };
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut series = lock(&self.series);
        let key = bounded_key(&series, key);
        let hist = series.entry(key).or_insert_with(|| Hist {
            buckets: vec![0; self.bounds.len()],
            sum: 0.0,
            count: 0,
        });
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            hist.buckets[i] += 1;
        }
        hist.sum += value;
        hist.count += 1;
    }

    /// How many values one series has observed.
    pub fn count(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        lock(&self.series).get(&key).map_or(0, |h| h.count)
    }

    pub fn encode(&self, out: &mut String) {
        self.desc.header(out, "histogram");
        let bucket_name = format!("{}_bucket", self.desc.name);
        let mut labels = self.desc.labels.clone();
        labels.push("le");
        for (values, hist) in lock(&self.series).iter() {
            let mut cumulative = 0;
            let mut with_le = values.clone();
            with_le.push(String::new());
            for (bound, n) in self.bounds.iter().zip(&hist.buckets) {
                cumulative += n;
                *with_le.last_mut().expect("pushed") = number(*bound);
                sample(
                    out,
                    &bucket_name,
                    &labels,
                    &with_le,
                    None,
                    cumulative as f64,
                );
            }
            *with_le.last_mut().expect("pushed") = "+Inf".to_owned();
            sample(
                out,
                &bucket_name,
                &labels,
                &with_le,
                None,
                hist.count as f64,
            );
            let (name, labels) = (self.desc.name, &self.desc.labels);
            sample(out, name, labels, values, Some("_sum"), hist.sum);
            sample(out, name, labels, values, Some("_count"), hist.count as f64);
        }
    }
}

/// Writes an unlabelled counter whose value is kept elsewhere (read at scrape time).
pub fn counter(out: &mut String, name: &'static str, help: &'static str, value: u64) {
    let desc = Desc {
        name,
        help,
        labels: Vec::new(),
    };
    desc.header(out, "counter");
    sample::<&str>(out, name, &[], &[], None, value as f64);
}

/// Writes a gauge family whose values were computed at scrape time.
pub fn gauge<'a>(
    out: &mut String,
    name: &'static str,
    help: &'static str,
    labels: &[&'static str],
    samples: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
) {
    let desc = Desc {
        name,
        help,
        labels: labels.to_vec(),
    };
    desc.header(out, "gauge");
    for (values, value) in samples {
        debug_assert_eq!(values.len(), labels.len(), "{name}");
        sample(out, name, labels, &values, None, value);
    }
}

/// One sample line: `name{label="value",...} value`.
fn sample<S: AsRef<str>>(
    out: &mut String,
    name: &str,
    labels: &[&str],
    values: &[S],
    suffix: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix.unwrap_or(""));
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape(out, value.as_ref());
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    out.push('\n');
}

/// Label values may hold any text: backslash, double quote and newline are escaped.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A value as Prometheus reads it: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled
/// its way.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_encode_as_prometheus_text() {
        let c = CounterVec::new("t_runs_total", "Runs.", &["queue"]);
        c.inc_by(&["a\"b"], 2);
        c.inc_by(&["a\"b"], 1);
        c.inc_by(&["x"], 0);
        let h = HistogramVec::new("t_seconds", "Time.", &["outcome"], &[0.5, 1.0]);
        h.observe(&["ok"], 0.25);
        h.observe(&["ok"], 0.75);
        h.observe(&["ok"], 5.0);
        let mut out = String::new();
        c.encode(&mut out);
        h.encode(&mut out);
        gauge(&mut out, "t_depth", "Depth.", &[], [(vec![], 1.5)]);
        let expected = "# HELP t_runs_total Runs.\n# TYPE t_runs_total counter\n\
            t_runs_total{queue=\"a\\\"b\"} 3\n\
            # HELP t_seconds Time.\n# TYPE t_seconds histogram\n\
            t_seconds_bucket{outcome=\"ok\",le=\"0.5\"} 1\n\
            t_seconds_bucket{outcome=\"ok\",le=\"1\"} 2\n\
            t_seconds_bucket{outcome=\"ok\",le=\"+Inf\"} 3\n\
            t_seconds_sum{outcome=\"ok\"} 6\n\
            t_seconds_count{outcome=\"ok\"} 3\n\
            # HELP t_depth Depth.\n# TYPE t_depth gauge\nt_depth 1.5\n";
        assert_eq!(out, expected);
        assert_eq!(c.get(&["a\"b"]), 3);
        assert_eq!(h.count(&["ok"]), 3);
    }

    #[test]
    fn label_sets_past_the_bound_are_counted_as_other() {
        let c = CounterVec::new("t_total", "test", &["queue"]);
        for i in 0..MAX_SERIES + 50 {
            c.inc_by(&[&format!("q{i}")], 1);
        }
        c.inc_by(&["q0"], 1);
        assert_eq!(c.get(&["q0"]), 2, "a known set keeps counting");
        assert_eq!(c.get(&["other"]), 50);
        assert_eq!(lock(&c.series).len(), MAX_SERIES + 1);
    }
}
