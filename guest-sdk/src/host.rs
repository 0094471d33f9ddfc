//! Calls into the runner's `host` interface: log lines, progress, cancellation.
//!
//! Outside WebAssembly (unit tests of a job on the developer's machine) there is no host: log
//! lines and progress go to stderr and nothing is ever cancelled.

use std::fmt;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Detail useful while debugging a job.
    Debug,
    /// Normal progress worth keeping.
    Info,
    /// Something unexpected that the job survived.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level's name in lower case, as the runner shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes a line to the run's log, with structured `(key, value)` fields.
///
/// The runner bounds the log of each attempt; lines past the bound are dropped and counted. The
/// [`info!`](crate::info) family of macros is usually more convenient.
///
/// ```
/// use sandfire_guest::{Level, log};
/// log(Level::Info, "sent the report", &[("recipients", "3")]);
/// ```
pub fn log(level: Level, message: impl AsRef<str>, fields: &[(&str, &str)]) {
    imp::log(
        level,
        message.as_ref(),
        fields.iter().map(|&(k, v)| (k, v.to_owned())),
    );
}

/// Reports how far the job is: `percent` is clamped to 0..=100, `message` may be empty.
pub fn progress(percent: u8, message: impl AsRef<str>) {
    imp::progress(percent.min(100), message.as_ref());
}

/// True once the run has been cancelled: stop cleanly, for example by returning
/// `Err(JobError::fail("cancelled"))`. A job that never checks is interrupted anyway.
pub fn cancelled() -> bool {
    imp::cancelled()
}

/// What the logging macros expand to.
#[doc(hidden)]
pub fn log_args(level: Level, message: fmt::Arguments<'_>, fields: &[(&str, &dyn fmt::Display)]) {
    let message = match message.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(message.to_string()),
    };
    imp::log(
        level,
        &message,
        fields.iter().map(|&(k, v)| (k, v.to_string())),
    );
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::__private::bindings::sandfire::job::{host, types};

    pub(super) fn log<'a>(
        level: Level,
        message: &str,
        fields: impl Iterator<Item = (&'a str, String)>,
    ) {
        let level = match level {
            Level::Trace => types::Level::Trace,
            Level::Debug => types::Level::Debug,
            Level::Info => types::Level::Info,
            Level::Warn => types::Level::Warn,
            Level::Error => types::Level::Error,
        };
        let fields: Vec<types::Field> = fields
            .map(|(key, value)| types::Field {
                key: key.to_owned(),
                value,
            })
            .collect();
        host::log(level, message, &fields);
    }

    pub(super) fn progress(percent: u8, message: &str) {
        host::progress(percent, message);
    }

    pub(super) fn cancelled() -> bool {
        host::cancelled()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use std::fmt::Write;

    pub(super) fn log<'a>(
        level: Level,
        message: &str,
        fields: impl Iterator<Item = (&'a str, String)>,
    ) {
        let mut line = format!("{:5} {message}", level.as_str().to_uppercase());
        for (key, value) in fields {
            let _ = write!(line, " {key}={value}");
        }
        eprintln!("{line}");
    }

    pub(super) fn progress(percent: u8, message: &str) {
        eprintln!("PROGRESS {percent}% {message}");
    }

    pub(super) fn cancelled() -> bool {
        false
    }
}

/// Implements the level macros: optional `key = value` fields, a `;`, then `format!` arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($key:ident = $value:expr),+ $(,)? ; $($arg:tt)+) => {
        $crate::__private::log_args(
            $level,
            ::std::format_args!($($arg)+),
            &[$((::std::stringify!($key), &$value as &dyn ::std::fmt::Display)),+],
        )
    };
    ($level:expr, $($arg:tt)+) => {
        $crate::__private::log_args($level, ::std::format_args!($($arg)+), &[])
    };
}

/// Logs at [`Level::Trace`]. Same syntax as [`info!`](crate::info).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Trace, $($arg)+) };
}

/// Logs at [`Level::Debug`]. Same syntax as [`info!`](crate::info).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Debug, $($arg)+) };
}

/// Logs at [`Level::Info`].
///
/// `format!` arguments, optionally preceded by `key = value` fields and a semicolon. Field
/// values are any expression implementing `Display`; the key is the field's name.
///
/// ```
/// use sandfire_guest::info;
/// let (user, n) = ("ada", 3);
/// info!("sent {n} mails");
/// info!(user = user, count = n; "sent {} mails", n);
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Info, $($arg)+) };
}

/// Logs at [`Level::Warn`]. Same syntax as [`info!`](crate::info).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Warn, $($arg)+) };
}

/// Logs at [`Level::Error`]. Same syntax as [`info!`](crate::info).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log!($crate::Level::Error, $($arg)+) };
}
