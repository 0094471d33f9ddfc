//! CPU time of processes from `/proc` (Linux): the runner's own, and the PostgreSQL cluster's
//! (the postmaster and every child of it: backends, WAL writer, checkpointer, ...).

use std::sync::OnceLock;

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/<pid>/stat` after the command name: `[0]` is the state (field 3),
/// `[1]` the parent pid, `[11..=14]` utime, stime, cutime, cstime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn ticks(fields: &[String], range: std::ops::RangeInclusive<usize>) -> Option<f64> {
    let mut sum = 0.0;
    for i in range {
        sum += fields.get(i)?.parse::<f64>().ok()?;
    }
    Some(sum)
}

/// User + system CPU seconds of one process so far.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    Some(ticks(&fields, 11..=12)? / ticks_per_second())
}

fn command_name(pid: u32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_string(),
    )
}

/// The postmaster of the cluster a backend (`pg_backend_pid()`) belongs to, if that backend
/// runs on this machine.
pub fn postmaster_of(backend_pid: u32) -> Option<u32> {
    if command_name(backend_pid)?.as_str() != "postgres" {
        return None;
    }
    let parent: u32 = stat_fields(backend_pid)?.get(1)?.parse().ok()?;
    (command_name(parent)?.as_str() == "postgres").then_some(parent)
}

/// CPU seconds of a whole cluster so far: the postmaster's own time, the time of its children
/// that already exited (and were reaped into its cutime/cstime), and that of its live children.
pub fn cluster_cpu_seconds(postmaster: u32) -> Option<f64> {
    let mut total = ticks(&stat_fields(postmaster)?, 11..=14)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(postmaster) {
            total += ticks(&fields, 11..=12).unwrap_or(0.0);
        }
    }
    Some(total / ticks_per_second())
}
