//! `sandfire new NAME`: writes a job crate that builds as is: `Cargo.toml` with the guest SDK,
//! `src/lib.rs` with a `#[job]` function and a unit test, `.cargo/config.toml` selecting
//! `wasm32-wasip2`, `.gitignore` and a README. It never overwrites an existing directory.

use std::path::{Path, PathBuf};

use super::client::{CliError, CliResult};
use super::output::outln;

/// Where this binary's source tree keeps the guest SDK (used when it still exists).
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Where the SDK lives in git, for a crate made by a binary without its source tree.
const SDK_GIT_PLACEHOLDER: &str = "https://example.invalid/your-org/sandfire.git";

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The job's name: the directory, the crate and the job on the runner.
    pub name: String,
    /// The guest SDK (`guest-sdk/` of a Sandfire checkout) to depend on by path.
    #[arg(long, env = "SANDFIRE_SDK_PATH")]
    pub sdk_path: Option<PathBuf>,
}

pub fn new(args: NewArgs) -> CliResult {
    let name = &args.name;
    if !valid_crate_name(name) {
        return Err(CliError::usage(format!(
            "{name:?} is not a job name for a crate: use 1-64 letters, digits, '-' or '_', \
             starting with a letter"
        )));
    }
    let dir = Path::new(name);
    if dir.exists() {
        return Err(CliError::usage(format!(
            "{} already exists: choose another name or remove it",
            dir.display()
        )));
    }
    let sdk = match &args.sdk_path {
        Some(p) => Some(
            p.canonicalize()
                .map_err(|e| CliError::usage(format!("--sdk-path {}: {e}", p.display())))?,
        ),
        None => Path::new(BUILT_FROM_SDK).canonicalize().ok(),
    };
    if let Some(sdk) = &sdk
        && !sdk.join("Cargo.toml").is_file()
    {
        return Err(CliError::usage(format!(
            "{} is not the guest SDK (no Cargo.toml there): pass the `guest-sdk` directory of \
             a Sandfire checkout",
            sdk.display()
        )));
    }
    let files = files(name, sdk.as_deref());
    for (path, content) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::usage(format!("creating {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| CliError::usage(format!("writing {}: {e}", path.display())))?;
    }
    outln!("created job crate {name}/");
    for (path, _) in &files {
        outln!("  {name}/{path}");
    }
    if sdk.is_none() {
        outln!(
            "\nnote: the guest SDK was not found; edit the `sandfire-guest` line in \
             {name}/Cargo.toml\n      to point at your Sandfire checkout (or pass --sdk-path)."
        );
    }
    outln!(
        "\nnext:\n  cd {name}\n  cargo test --target host-tuple   # the unit test, natively\n  \
         sandfire job deploy              # build for wasm32-wasip2 and upload\n  \
         sandfire run start {name} --input '{{\"name\": \"Ada\"}}' --wait"
    );
    Ok(())
}

fn valid_crate_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// The crate's files, relative to its directory.
fn files(name: &str, sdk: Option<&Path>) -> Vec<(&'static str, String)> {
    let sdk_line = match sdk {
        Some(p) => format!(
            "# The Sandfire guest SDK (not on crates.io): a Sandfire checkout's guest-sdk/.\n\
             sandfire-guest = {{ path = {} }}",
            toml_string(&p.display().to_string())
        ),
        None => format!(
            "# The Sandfire guest SDK is not on crates.io. Point this at your Sandfire checkout,\n\
             # e.g. `{{ path = \"../sandfire/guest-sdk\" }}`, or at its git repository:\n\
             sandfire-guest = {{ git = \"{SDK_GIT_PLACEHOLDER}\" }}"
        ),
    };
    let lib = name.replace('-', "_");
    vec![
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A job is a library built as a WebAssembly component: `cargo build --release` writes
# target/wasm32-wasip2/release/{lib}.wasm (the target is set in .cargo/config.toml).
[lib]
crate-type = ["cdylib"]

[dependencies]
{sdk_line}
serde = {{ version = "1", features = ["derive"] }}

# Small, fast components.
[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1

# Its own workspace, so the crate builds wherever it is created.
[workspace]
"#
            ),
        ),
        (
            ".cargo/config.toml",
            r#"# Jobs run as wasm32-wasip2 components: plain `cargo build` builds one.
[build]
target = "wasm32-wasip2"

# The unit tests run natively: `cargo test-host` (or `cargo test --target host-tuple`).
[alias]
test-host = "test --target host-tuple"
"#
            .to_string(),
        ),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` job: greets someone by name.
//!
//! Input `{{"name": "Ada"}}` → output `{{"greeting": "Hello, Ada!"}}`.

use sandfire_guest::{{Context, JobError, info, job, progress}};
use serde::{{Deserialize, Serialize}};

#[derive(Deserialize)]
struct Input {{
    name: String,
}}

#[derive(Serialize)]
struct Output {{
    greeting: String,
}}

#[job]
fn {lib}(ctx: Context, input: Input) -> Result<Output, JobError> {{
    if input.name.is_empty() {{
        // Retrying cannot fix bad input: fail the run now.
        return Err(JobError::fail("name must not be empty"));
    }}
    info!(name = input.name, attempt = ctx.attempt; "greeting {{}}", input.name);
    progress(100, "greeted");
    Ok(Output {{
        greeting: format!("Hello, {{}}!", input.name),
    }})
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn greets_by_name() {{
        let input = Input {{
            name: "Ada".into(),
        }};
        let output = {lib}(Context::default(), input).expect("the job succeeds");
        assert_eq!(output.greeting, "Hello, Ada!");
    }}

    #[test]
    fn refuses_an_empty_name() {{
        let input = Input {{ name: String::new() }};
        assert!({lib}(Context::default(), input).is_err());
    }}
}}
"#
            ),
        ),
        (".gitignore", "/target\n".to_string()),
        (
            "README.md",
            format!(
                r#"# {name}

A [Sandfire](https://example.invalid/sandfire) job: a WebAssembly component built from
`src/lib.rs`, run by a Sandfire runner in a sandbox.

```sh
cargo test --target host-tuple        # unit tests, natively (alias: cargo test-host)
cargo build --release                 # target/wasm32-wasip2/release/{lib}.wasm
sandfire job deploy                   # build and upload as job "{name}"
sandfire run start {name} --input '{{"name": "Ada"}}' --wait
```

`sandfire job deploy` needs `SANDFIRE_URL` and `SANDFIRE_API_KEY` (a tenant key). The job's
input is JSON deserialized into `Input`; its output is `Output` serialized back to JSON. Return
`JobError::retry(..)` for errors worth retrying, `JobError::fail(..)` for the others.
"#
            ),
        ),
    ]
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn crate_names_are_checked() {
        assert!(super::valid_crate_name("hello2"));
        assert!(super::valid_crate_name("send-mail_v2"));
        assert!(!super::valid_crate_name("2fast"));
        assert!(!super::valid_crate_name("../escape"));
        assert!(!super::valid_crate_name(""));
    }

    #[test]
    fn manifest_parses_as_toml_with_the_sdk_path() {
        let files = super::files(
            "greet",
            Some(std::path::Path::new("/src/sandfire/guest-sdk")),
        );
        let manifest: toml::Table = files[0].1.parse().expect("valid TOML");
        assert_eq!(
            manifest["dependencies"]["sandfire-guest"]["path"].as_str(),
            Some("/src/sandfire/guest-sdk")
        );
        let config: toml::Table = files[1].1.parse().expect("valid TOML");
        assert_eq!(config["build"]["target"].as_str(), Some("wasm32-wasip2"));
    }
}
