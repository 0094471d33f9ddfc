//! Stacked column charts of attempts by outcome kind, drawn as SVG on the server from the rollup
//! (`run_stats`): classes only, no inline style and no script, so the CSP holds. Every chart
//! comes with its numbers, for a data table beside it (screen readers, copying, exact values).

use askama::Template;
use chrono::{DateTime, Duration, Utc};

use super::view;
use crate::store::StatsPoint;

/// Drawing area, in SVG user units (the chart scales to its container).
const WIDTH: i64 = 720;
const HEIGHT: i64 = 180;
const LEFT: i64 = 44;
const BOTTOM: i64 = 20;
const TOP: i64 = 8;

/// One outcome's part of one column.
pub struct Segment {
    pub outcome: &'static str,
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
}

pub struct Column {
    pub segments: Vec<Segment>,
    /// Hover text: the bucket and its counts.
    pub title: String,
}

pub struct AxisLabel {
    pub x: i64,
    pub text: String,
}

/// One bucket with attempts, for the data table.
pub struct TableRow {
    pub bucket: String,
    pub bucket_dt: String,
    pub counts: Vec<String>,
    pub total: String,
}

#[derive(Template)]
#[template(path = "ui/chart.html")]
pub struct Chart {
    /// Element id prefix (unique per page).
    pub id: &'static str,
    /// What the chart shows, for its `<title>` and the table's caption.
    pub title: String,
    pub view_width: i64,
    pub view_height: i64,
    pub plot_left: i64,
    pub plot_bottom: i64,
    pub plot_right: i64,
    pub top_label_y: i64,
    pub max_label: String,
    pub columns: Vec<Column>,
    pub labels: Vec<AxisLabel>,
    /// The outcome kinds, in legend and table-column order.
    pub outcomes: Vec<&'static str>,
    /// Sum per outcome over the whole chart, in `outcomes` order.
    pub totals: Vec<String>,
    pub total: String,
    /// Buckets with at least one attempt, newest first.
    pub rows: Vec<TableRow>,
}

/// The columns of a chart: `n` buckets of `width` from `start`. `label` formats a bucket's
/// start for the axis and the table; every `label_every`-th column gets an axis label.
#[derive(Clone, Copy)]
pub struct Buckets {
    pub start: DateTime<Utc>,
    pub width: Duration,
    pub n: usize,
    pub label_every: usize,
    pub label: fn(DateTime<Utc>) -> String,
}

/// A stacked chart of the rollup's points over `buckets`.
pub fn stacked(id: &'static str, title: String, points: &[StatsPoint], buckets: &Buckets) -> Chart {
    let Buckets {
        start,
        width,
        n,
        label_every,
        label,
    } = *buckets;
    let outcomes = view::OUTCOMES;
    let step = width.num_seconds().max(1);
    // counts[column][outcome]
    let mut counts = vec![[0i64; 8]; n];
    for p in points {
        let offset = (p.bucket - start).num_seconds();
        if offset < 0 {
            continue;
        }
        let column = (offset / step) as usize;
        if column >= n {
            continue;
        }
        if let Some(k) = outcomes.iter().position(|o| *o == p.outcome) {
            counts[column][k] += p.attempts;
        }
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT;
    let col_w = (plot_w / n.max(1) as i64).max(1);
    let bar_w = (col_w - if col_w > 3 { 1 } else { 0 }).max(1);
    let mut columns = Vec::with_capacity(n);
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let bucket = start + Duration::seconds(step * i as i64);
        let x = LEFT + col_w * i as i64;
        let mut y = HEIGHT - BOTTOM;
        let mut segments = Vec::new();
        let total: i64 = c.iter().sum();
        for (k, &v) in c.iter().enumerate() {
            if v == 0 {
                continue;
            }
            // Every non-empty segment is at least one unit tall, so a rare outcome shows.
            let h = ((v * plot_h) as f64 / max as f64).round().max(1.0) as i64;
            y -= h;
            segments.push(Segment {
                outcome: outcomes[k].as_str(),
                x,
                y,
                width: bar_w,
                height: h,
            });
        }
        let parts: Vec<String> = c
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{} {}", outcomes[k].as_str(), view::count(*v)))
            .collect();
        columns.push(Column {
            segments,
            title: if parts.is_empty() {
                format!("{}: no attempts", label(bucket))
            } else {
                format!("{}: {}", label(bucket), parts.join(", "))
            },
        });
        if i % label_every.max(1) == 0 {
            labels.push(AxisLabel {
                x,
                text: label(bucket),
            });
        }
        if total > 0 {
            rows.push(TableRow {
                bucket: label(bucket),
                bucket_dt: view::datetime(bucket),
                counts: c.iter().map(|v| view::count(*v)).collect(),
                total: view::count(total),
            });
        }
    }
    rows.reverse();
    let totals: Vec<i64> = (0..outcomes.len())
        .map(|k| counts.iter().map(|c| c[k]).sum())
        .collect();
    Chart {
        id,
        title,
        view_width: WIDTH,
        view_height: HEIGHT,
        plot_left: LEFT,
        plot_bottom: HEIGHT - BOTTOM,
        plot_right: WIDTH,
        top_label_y: TOP + 8,
        max_label: view::count(max),
        columns,
        labels,
        outcomes: outcomes.iter().map(|o| o.as_str()).collect(),
        total: view::count(totals.iter().sum()),
        totals: totals.iter().map(|v| view::count(*v)).collect(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn points_land_in_their_column_stacked_by_outcome() {
        let points = vec![
            StatsPoint {
                bucket: at(1000),
                outcome: Outcome::Ok,
                attempts: 6,
                runs_ended: 0,
            },
            StatsPoint {
                bucket: at(1000),
                outcome: Outcome::Timeout,
                attempts: 2,
                runs_ended: 0,
            },
            StatsPoint {
                bucket: at(1020),
                outcome: Outcome::Error,
                attempts: 1,
                runs_ended: 0,
            },
            // Outside the range: ignored.
            StatsPoint {
                bucket: at(990),
                outcome: Outcome::Ok,
                attempts: 100,
                runs_ended: 0,
            },
            StatsPoint {
                bucket: at(1060),
                outcome: Outcome::Ok,
                attempts: 100,
                runs_ended: 0,
            },
        ];
        let buckets = Buckets {
            start: at(1000),
            width: Duration::seconds(10),
            n: 6,
            label_every: 3,
            label: |b| b.timestamp().to_string(),
        };
        let chart = stacked("t", "test".into(), &points, &buckets);
        assert_eq!(chart.columns.len(), 6);
        let first = &chart.columns[0];
        assert_eq!(first.segments.len(), 2);
        assert_eq!(first.segments[0].outcome, "ok");
        assert_eq!(first.segments[1].outcome, "timeout");
        // The tallest column fills the plot; its segments stack without overlap.
        assert_eq!(
            first.segments[0].y + first.segments[0].height,
            HEIGHT - BOTTOM
        );
        assert_eq!(
            first.segments[1].y + first.segments[1].height,
            first.segments[0].y
        );
        assert_eq!(first.segments[1].y, TOP);
        assert_eq!(chart.columns[2].segments[0].outcome, "error");
        assert!(chart.columns[1].segments.is_empty());
        assert_eq!(chart.total, "9");
        assert_eq!(chart.totals[0], "6");
        // Table rows: buckets with attempts, newest first.
        assert_eq!(chart.rows.len(), 2);
        assert_eq!(chart.rows[0].bucket, "1020");
        assert_eq!(chart.labels.len(), 2);
        assert_eq!(chart.max_label, "8");
        assert!(chart.columns[0].title.contains("ok 6, timeout 2"));
    }
}
