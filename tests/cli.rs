//! The `sandfire` CLI as a user runs it: the built binary against a real runner. Tables for
//! people, valid JSON with `--json`, `run start --wait` exit codes, API errors as their message,
//! an unreachable runner explained, the serve config precedence, and `sandfire new` → `job
//! deploy` → `run start --wait` from an empty directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::{ADMIN_TOKEN, TestRunner, TestTenant};

const BIN: &str = env!("CARGO_BIN_EXE_sandfire");

/// Runs the CLI against `r` as tenant `t` (without a terminal, so no colour), from `dir`.
async fn sandfire(r: &TestRunner, t: Option<&TestTenant>, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env("SANDFIRE_URL", &r.base)
        .env("SANDFIRE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("SANDFIRE_API_KEY")
        .env_remove("SANDFIRE_KEY")
        .env_remove("NO_COLOR");
    if let Some(t) = t {
        cmd.env("SANDFIRE_API_KEY", &t.key);
    }
    cmd.output().await.expect("running the sandfire binary")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandfire-cli-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn run_commands_print_tables_json_exit_codes_and_api_messages() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    r.upload(&t, "hello", "hello").await;
    r.upload(&t, "panic", "panic").await;
    let dir = std::env::temp_dir();

    // Success: logs streamed, output printed, exit 0.
    let o = sandfire(
        &r,
        Some(&t),
        &dir,
        &[
            "run",
            "start",
            "hello",
            "--input",
            r#"{"name": "Ada"}"#,
            "--wait",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}\n{}", out(&o), err(&o));
    assert!(out(&o).contains("greeting Ada"), "{}", out(&o));
    assert!(out(&o).contains("succeeded"), "{}", out(&o));
    assert!(out(&o).contains("Hello, Ada!"), "{}", out(&o));

    // Failure: exit 1, the run's error shown.
    let o = sandfire(
        &r,
        Some(&t),
        &dir,
        &["run", "start", "panic", "--max-attempts", "1", "--wait"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}\n{}", out(&o), err(&o));
    assert!(err(&o).contains("error: run"), "{}", err(&o));
    assert!(
        err(&o).contains("failed after 1 attempt (panic)"),
        "{}",
        err(&o)
    );

    // A table for people: a header row and aligned columns.
    let o = sandfire(&r, Some(&t), &dir, &["run", "list"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    let state_column = lines[0].find("STATE").expect("a STATE column");
    assert!(lines[1][state_column..].starts_with("failed"), "{text}");
    assert!(lines[2][state_column..].starts_with("succeeded"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour without a terminal: {text:?}"
    );

    // Filters reach the API.
    let o = sandfire(&r, Some(&t), &dir, &["run", "list", "--state", "succeeded"]).await;
    assert_eq!(out(&o).lines().count(), 2, "{}", out(&o));

    // --json: the API's JSON as it is.
    let o = sandfire(&r, Some(&t), &dir, &["run", "list", "--json"]).await;
    let v: Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(2), "{v}");
    let id = v["runs"][1]["id"].as_str().unwrap().to_string();

    // Logs of an ended run.
    let o = sandfire(&r, Some(&t), &dir, &["run", "logs", &id, "--follow"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("INFO  greeting Ada"), "{}", out(&o));

    // API errors are shown as their message, with exit code 1.
    let o = sandfire(&r, Some(&t), &dir, &["run", "start", "nope"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).starts_with("error: no job named"), "{}", err(&o));
    assert!(!err(&o).contains("Caused by"), "{}", err(&o));
    let o = sandfire(&r, Some(&t), &dir, &["run", "cancel", &id]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("already ended"), "{}", err(&o));

    // Admin commands with the admin token.
    let o = sandfire(&r, None, &dir, &["tenant", "list"]).await;
    assert!(
        out(&o).lines().any(|l| l.starts_with("acme ")),
        "{}",
        out(&o)
    );

    // No runner at the URL: which URL, and how to start one.
    let o = tokio::process::Command::new(BIN)
        .args([
            "run",
            "list",
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "sfk_x",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(err(&o).contains("http://127.0.0.1:9"), "{}", err(&o));
    assert!(err(&o).contains("make run"), "{}", err(&o));
    r.shutdown().await;
}

#[tokio::test]
async fn serve_settings_come_from_flag_then_env_then_file_then_default() {
    let dir = scratch_dir("config");
    let file = dir.join("sandfire.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7001\"\nslots = 3\nqueues = [\"a\", \"b\"]\ngrace_ms = 500\n",
    )
    .unwrap();
    let o = tokio::process::Command::new(BIN)
        .args(["serve", "--print-config", "--listen", "127.0.0.1:7002"])
        .env("SANDFIRE_CONFIG", &file)
        .env("SANDFIRE_SLOTS", "5")
        .env("SANDFIRE_LISTEN", "127.0.0.1:7003")
        .env_remove("SANDFIRE_QUEUES")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    // flag > env > file > default.
    assert!(
        text.contains("listen = \"127.0.0.1:7002\"  # flag"),
        "{text}"
    );
    assert!(text.contains("slots = \"5\"  # env"), "{text}");
    assert!(text.contains("queues = \"a,b\"  # file"), "{text}");
    assert!(text.contains("grace-ms = \"500\"  # file"), "{text}");
    assert!(text.contains("lease-ms = \"30000\"  # default"), "{text}");

    // An unknown key is refused, naming the nearest known one.
    std::fs::write(&file, "slotz = 3\n").unwrap();
    let o = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("unknown key `slotz`"), "{}", err(&o));
    assert!(err(&o).contains("did you mean `slots`"), "{}", err(&o));

    // A file value is checked like its flag.
    std::fs::write(&file, "slots = \"many\"\n").unwrap();
    let o = tokio::process::Command::new(BIN)
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(err(&o).contains("--slots"), "{}", err(&o));

    // A runtime of no threads is refused; one of some threads is a setting like the others.
    let o = tokio::process::Command::new(BIN)
        .args(["serve", "--print-config", "--threads", "0"])
        .env_remove("SANDFIRE_CONFIG")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(err(&o).contains("--threads"), "{}", err(&o));
    let o = tokio::process::Command::new(BIN)
        .args(["serve", "--print-config"])
        .env_remove("SANDFIRE_CONFIG")
        .env("SANDFIRE_THREADS", "1")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("threads = \"1\"  # env"), "{}", out(&o));

    // No database: say how to get one.
    let o = tokio::process::Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("SANDFIRE_CONFIG")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("DATABASE_URL=postgres://"), "{}", err(&o));
    assert!(err(&o).contains("make run"), "{}", err(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `sandfire new` → `job deploy` → `run start --wait`, from an empty directory. The scaffold's
/// build compiles the guest SDK for wasm32-wasip2 (a minute or so the first time; its target
/// directory is kept under `target/` so later runs are incremental).
#[tokio::test]
async fn a_new_job_crate_builds_deploys_and_runs() {
    let r = TestRunner::start().await;
    let t = r.tenant("acme").await;
    let dir = scratch_dir("new");

    let o = sandfire(&r, Some(&t), &dir, &["new", "hello2"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let crate_dir = dir.join("hello2");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        ".cargo/config.toml",
        ".gitignore",
        "README.md",
    ] {
        assert!(crate_dir.join(f).is_file(), "{f} missing");
    }
    // The directory exists now: a second `new` refuses to overwrite it.
    let o = sandfire(&r, Some(&t), &dir, &["new", "hello2"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("already exists"), "{}", err(&o));

    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cli-scaffold");
    let mut deploy = tokio::process::Command::new(BIN);
    deploy
        .args(["job", "deploy"])
        .current_dir(&crate_dir)
        .env("SANDFIRE_URL", &r.base)
        .env("SANDFIRE_API_KEY", &t.key)
        .env("CARGO_TARGET_DIR", &target);
    let o = deploy.output().await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", out(&o), err(&o));
    assert!(out(&o).contains("job hello2 v1 uploaded"), "{}", out(&o));

    let o = sandfire(
        &r,
        Some(&t),
        &crate_dir,
        &[
            "run",
            "start",
            "hello2",
            "--input",
            r#"{"name": "Grace"}"#,
            "--wait",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}\n{}", out(&o), err(&o));
    assert!(out(&o).contains("greeting Grace"), "{}", out(&o));
    assert!(out(&o).contains("Hello, Grace!"), "{}", out(&o));

    // The job's own validation fails the run without retrying: exit 1.
    let o = sandfire(
        &r,
        Some(&t),
        &crate_dir,
        &[
            "run",
            "start",
            "hello2",
            "--input",
            r#"{"name": ""}"#,
            "--wait",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("name must not be empty"), "{}", err(&o));
    std::fs::remove_dir_all(&dir).ok();
    r.shutdown().await;
}
