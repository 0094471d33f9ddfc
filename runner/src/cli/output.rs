//! How the CLI shows things to people: aligned tables, `key: value` blocks, colour only on a
//! terminal without `NO_COLOR`, and guest text made safe for a terminal. `--json` output never
//! passes through here: scripts get the API's JSON as it is.

use std::io::{IsTerminal as _, Write as _};

use serde_json::Value;

use super::client::{CliError, CliResult};

/// `println!` for the CLI: a closed stdout (`sandfire run list | head`) ends the process
/// quietly with 141, as SIGPIPE would, instead of a panic.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes to stdout; exits with 141 when stdout is closed.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).is_err() {
        std::process::exit(141);
    }
}

/// Colours for stdout: on only when stdout is a terminal and `NO_COLOR` is unset (or empty).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A run state, coloured by what it means.
    pub fn state(&self, state: &str) -> String {
        let code = match state {
            "succeeded" | "ok" => "32",
            "failed" | "error" | "panic" | "out_of_fuel" | "memory_limit" | "timeout"
            | "runner_lost" => "31",
            "running" => "36",
            "retrying" | "cancelled" => "33",
            _ => "0",
        };
        self.paint(code, state)
    }

    /// A log level.
    pub fn level(&self, level: &str) -> String {
        let padded = format!("{:<5}", level.to_uppercase());
        match level {
            "error" => self.paint("31", &padded),
            "warn" => self.paint("33", &padded),
            "debug" | "trace" => self.paint("2", &padded),
            _ => self.paint("32", &padded),
        }
    }
}

/// Display width of text that may hold colour escapes.
fn width(text: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// A table with a header row; columns are as wide as their widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, two spaces between columns, no trailing blanks.
    pub fn render(&self, style: Style) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| style.bold(h)).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(width(cell));
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self, style: Style) {
        write_out(format_args!("{}", self.render(style)));
    }
}

/// `key: value` lines with the keys aligned; empty values are left out.
pub fn print_fields(style: Style, fields: &[(&str, String)]) {
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        if !v.is_empty() {
            outln!("{}  {v}", style.bold(&format!("{k:<w$}")));
        }
    }
}

/// Guest text made safe for a terminal: control characters (escape sequences that could move
/// the cursor, recolour or rewrite the screen) are shown escaped, e.g. `\u{1b}`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A JSON value as a table cell or field: strings bare, `null` empty, the rest as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => printable(s),
        other => printable(&other.to_string()),
    }
}

/// An RFC 3339 time from the API as `2026-01-02 15:04:05` (UTC); empty for `null`.
pub fn time(v: &Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => printable(s),
    }
}

/// Bytes as `1.2 MiB`.
pub fn bytes(v: &Value) -> String {
    let Some(n) = v.as_f64() else {
        return text(v);
    };
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut n = n;
    let mut unit = 0;
    while n >= 1024.0 && unit + 1 < units.len() {
        n /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{n:.1} {}", units[unit])
    }
}

/// A JSON argument: inline JSON, or `@path` to read it from a file (`@-`: stdin).
pub fn json_arg(flag: &str, arg: &str) -> CliResult<Value> {
    let (source, text) = match arg.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| CliError::usage(format!("{flag}: reading stdin: {e}")))?;
            ("stdin".to_string(), s)
        }
        Some(path) => (
            path.to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("{flag}: reading {path}: {e}")))?,
        ),
        None => ("the argument".to_string(), arg.to_string()),
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "{flag}: {source} is not valid JSON ({e}); pass JSON such as '{{\"name\": \"Ada\"}}' \
             or @file.json"
        ))
    })
}

/// Prints the API's JSON as it is (pretty), for `--json`.
pub fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_send_terminal_escapes() {
        let shown = printable("red \u{1b}[31mtext\u{7}\ttab");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{1b}[31mtext") && shown.contains('\t'),
            "{shown}"
        );
    }

    #[test]
    fn tables_align_columns_ignoring_colour() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["a".into(), "\x1b[32msucceeded\x1b[0m".into()]);
        t.row(vec!["long-id".into(), "failed".into()]);
        let text = t.render(Style { colour: false });
        assert_eq!(
            text,
            "ID       STATE\na        \x1b[32msucceeded\x1b[0m\nlong-id  failed\n"
        );
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(bytes(&serde_json::json!(512)), "512 B");
        assert_eq!(bytes(&serde_json::json!(1536)), "1.5 KiB");
        assert_eq!(
            time(&serde_json::json!("2026-03-27T10:12:40.221311Z")),
            "2026-03-27 10:12:40"
        );
        assert_eq!(time(&Value::Null), "");
    }
}
