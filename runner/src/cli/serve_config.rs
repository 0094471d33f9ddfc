//! The configuration story of `sandfire serve`: flags, environment variables and an optional
//! TOML file (`--config PATH` or `SANDFIRE_CONFIG`), with one precedence:
//! **flag > environment > file > default**.
//!
//! The file's keys are the long flags of `sandfire serve` without `--` (`listen`, `slots`,
//! `database-url`; `_` works as well as `-`). A key is turned into its flag only when neither
//! the command line nor the environment set that option, and then clap parses it like any
//! flag, so a file value is checked exactly as the flag would be. Unknown keys are refused with
//! the closest known key, so a typo never passes silently.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// Options that are not settings and so cannot come from the file.
const NOT_IN_FILE: &[&str] = &["config", "print-config", "help", "version"];

/// Options taken from the root command (global flags) that `serve` also reads.
const GLOBAL_KEYS: &[&str] = &["admin-token"];

/// What the file adds to the command line.
#[derive(Debug, Default)]
pub struct FileArgs {
    /// Extra arguments, appended after `serve`'s own.
    pub args: Vec<OsString>,
    /// The keys whose value came from the file.
    pub keys: Vec<String>,
}

/// Reads the config file and returns the flags it contributes: one for each key whose option
/// was set neither by a flag nor by the environment.
pub fn file_args(root: &Command, serve: &ArgMatches, path: &Path) -> Result<FileArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("config file {}: not valid TOML: {e}", path.display()))?;
    let serve_cmd = root
        .find_subcommand("serve")
        .expect("the serve subcommand exists");
    let known = known_keys(root, serve_cmd);
    let mut out = FileArgs::default();
    for (raw_key, value) in &table {
        let key = raw_key.replace('_', "-");
        let Some((id, action)) = known
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, id, a)| (id, a))
        else {
            let hint = closest(&key, known.iter().map(|(k, _, _)| k.as_str()))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "config file {}: unknown key `{raw_key}`{hint}. The keys are the long flags of \
                 `sandfire serve` without `--`, e.g. `listen`, `slots`, `database-url`: see \
                 `sandfire serve --help`",
                path.display()
            ));
        };
        if matches!(
            serve.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let is_switch = matches!(action, ArgAction::SetTrue);
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s.clone()),
                        toml::Value::Integer(n) => parts.push(n.to_string()),
                        _ => {
                            return Err(format!(
                                "config file {}: `{raw_key}`: a list may hold strings or numbers",
                                path.display()
                            ));
                        }
                    }
                }
                parts.join(",")
            }
            _ => {
                return Err(format!(
                    "config file {}: `{raw_key}`: use a string, number, boolean or list (the \
                     file has no sections)",
                    path.display()
                ));
            }
        };
        if is_switch {
            match text.as_str() {
                "true" => out.args.push(format!("--{key}").into()),
                "false" => {}
                _ => {
                    return Err(format!(
                        "config file {}: `{raw_key}` is a switch: use true or false",
                        path.display()
                    ));
                }
            }
        } else {
            out.args.push(format!("--{key}={text}").into());
        }
        out.keys.push(key);
    }
    Ok(out)
}

/// `(key, arg id, action)` of every option the file may set.
fn known_keys(root: &Command, serve: &Command) -> Vec<(String, String, ArgAction)> {
    let serve_args = serve.get_arguments();
    let global_args = root
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| GLOBAL_KEYS.contains(&l)));
    serve_args
        .chain(global_args)
        .filter_map(|a| {
            let long = a.get_long()?;
            (!NOT_IN_FILE.contains(&long)).then(|| {
                (
                    long.to_string(),
                    a.get_id().to_string(),
                    a.get_action().clone(),
                )
            })
        })
        .collect()
}

/// The known key nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// `sandfire serve --print-config`: every setting with its value and where it came from, as
/// TOML that works as a config file. Secret values are hidden.
pub fn print(root: &Command, serve: &ArgMatches, from_file: &[String]) {
    let serve_cmd = root
        .find_subcommand("serve")
        .expect("the serve subcommand exists");
    println!("# sandfire serve: effective settings (precedence: flag > env > file > default)");
    for (key, id, _) in known_keys(root, serve_cmd) {
        let source = match serve.value_source(&id) {
            Some(ValueSource::CommandLine) if from_file.contains(&key) => "file",
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            Some(ValueSource::DefaultValue) => "default",
            _ => {
                println!("# {key} = (unset)");
                continue;
            }
        };
        let values: Vec<String> = serve
            .get_raw(&id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let secret = ["secret", "token", "database-url"]
            .iter()
            .any(|s| key.contains(s));
        let shown = if secret {
            "<hidden>".to_string()
        } else {
            values.join(",")
        };
        println!(
            "{key} = {}  # {source}",
            serde_json::to_string(&shown).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typos_get_the_nearest_key() {
        let known = ["listen", "slots", "database-url"];
        assert_eq!(super::closest("slot", known.iter().copied()), Some("slots"));
        assert_eq!(
            super::closest("databse-url", known.iter().copied()),
            Some("database-url")
        );
        assert_eq!(super::closest("frobnicate", known.iter().copied()), None);
    }
}
