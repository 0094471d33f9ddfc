//! The dashboard (`/ui`) in a real headless Chromium, driven over WebDriver (chromedriver, plain
//! JSON over HTTP) against a real runner executing real example runs. Each test starts its own
//! chromedriver on a free port and its own runner on its own database.
//!
//! Chromium is required: without it these tests fail and say how to install it
//! (`apt-get install -y chromium chromium-driver`; `.ci/run` does it).
//!
//! After every page the browser's log must hold no error (a console error, an uncaught
//! exception, a Content-Security-Policy violation or a failed asset load all land there).
//! Screenshots of each page go to `target/ui-screens/<page>.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Body, TestRunner, TestTenant, example};

/// The WebDriver element reference key (W3C).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver_path() -> PathBuf {
    let candidates = [
        std::env::var("CHROMEDRIVER").ok().map(PathBuf::from),
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("chromedriver"))
                .find(|p| p.is_file())
        }),
        Some(PathBuf::from("/usr/bin/chromedriver")),
        Some(PathBuf::from("/usr/lib/chromium/chromedriver")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromedriver not found: the dashboard tests need Chromium and its WebDriver. \
                 Install them with `apt-get install -y chromium chromium-driver` (Debian; \
                 `.ci/run` does this), or set CHROMEDRIVER to the driver's path"
            )
        })
}

fn chromium_binary() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

/// A chromedriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    url: String,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
        Browser::start_with(true).await
    }

    /// A browser with JavaScript on or off (Chromium's content setting, as a policy would set
    /// it).
    async fn start_with(javascript: bool) -> Browser {
        let path = chromedriver_path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let driver = Driver(child);
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && r.json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    == Some(true)
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1360,1000",
            "--lang=en-US",
        ];
        let mut options = json!({ "args": args });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        if let Some(binary) = chromium_binary() {
            options["binary"] = json!(binary);
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON");
        let session = resp["value"]["sessionId"].as_str().unwrap_or_else(|| {
            panic!(
                "Chromium did not start ({resp}); install it with \
                 `apt-get install -y chromium chromium-driver`"
            )
        });
        Browser {
            url: format!("{base}/session/{session}"),
            http,
            _driver: driver,
        }
    }

    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        req = req.json(&body.unwrap_or_else(|| json!({})));
        let resp: Value = req
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON");
        resp["value"].clone()
    }

    async fn goto(&self, url: &str) {
        let v = self
            .cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
        assert!(v.is_null(), "navigating to {url}: {v}");
    }

    async fn current_url(&self) -> String {
        let v = self.http.get(format!("{}/url", self.url)).send().await;
        let v: Value = v.unwrap().json().await.unwrap();
        v["value"].as_str().unwrap_or_default().to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn find(&self, css: &str) -> String {
        let found = self.find_all(css).await;
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    /// The rendered text of the first element matching `css`, through WebDriver alone (works
    /// with JavaScript off, unlike `text_of`).
    async fn element_text(&self, css: &str) -> String {
        self.element_text_if_any(css)
            .await
            .unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    /// `element_text`, or `None` while no element matches (e.g. a page still loading after a
    /// form's submit).
    async fn element_text_if_any(&self, css: &str) -> Option<String> {
        let e = self.find_all(css).await.into_iter().next()?;
        let v = self
            .cmd(Method::GET, &format!("/element/{e}/text"), None)
            .await;
        Some(v.as_str().unwrap_or_default().to_string())
    }

    async fn displayed(&self, css: &str) -> bool {
        let e = self.find(css).await;
        self.cmd(Method::GET, &format!("/element/{e}/displayed"), None)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        let v = self
            .cmd(Method::POST, &format!("/element/{e}/click"), None)
            .await;
        assert!(v.is_null(), "clicking {css}: {v}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        let v = self
            .cmd(
                Method::POST,
                &format!("/element/{e}/value"),
                Some(json!({ "text": text })),
            )
            .await;
        assert!(v.is_null(), "typing into {css}: {v}");
    }

    /// Runs a script in the page (a returned promise is awaited).
    async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The text of the page's body.
    async fn text(&self) -> String {
        self.exec("return document.body.innerText;", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn text_of(&self, css: &str) -> String {
        self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the element's text contains `needle`.
    async fn wait_text(&self, css: &str, needle: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.text_of(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < within,
                "{css:?} did not show {needle:?} within {within:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the whole page (the window grows to the page's height, at most 4000 px).
    async fn screenshot(&self, page: &str) {
        let height = self
            .exec("return document.documentElement.scrollHeight;", json!([]))
            .await
            .as_i64()
            .unwrap_or(1000)
            .clamp(600, 4000);
        self.cmd(
            Method::POST,
            "/window/rect",
            Some(json!({"width": 1360, "height": height + 140})),
        )
        .await;
        let v = self.cmd(Method::GET, "/screenshot", None).await;
        self.cmd(
            Method::POST,
            "/window/rect",
            Some(json!({"width": 1360, "height": 1000})),
        )
        .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a screenshot"))
            .expect("base64 screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{page}.png")), png).unwrap();
    }

    /// The browser's log since the last call.
    async fn log(&self) -> Vec<Value> {
        let v = self
            .cmd(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await;
        let v = if v.is_array() {
            v
        } else {
            self.cmd(Method::POST, "/log", Some(json!({"type": "browser"})))
                .await
        };
        v.as_array().cloned().unwrap_or_default()
    }

    /// Asserts the browser logged no error (console errors, exceptions, CSP violations, failed
    /// loads) since the last check.
    async fn assert_clean(&self, page: &str) {
        let errors: Vec<Value> = self
            .log()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
            .collect();
        assert!(
            errors.is_empty(),
            "the browser logged errors on {page}: {errors:#?}"
        );
    }

    /// Signs in through the login form.
    async fn login(&self, base: &str, key: &str) {
        self.goto(&format!("{base}/ui/login")).await;
        self.type_into("#key", key).await;
        self.click("button[type=submit]").await;
        let start = Instant::now();
        while self.current_url().await.contains("/ui/login") {
            assert!(start.elapsed() < Duration::from_secs(20), "sign-in failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}

/// A client that does not follow redirects, for checks on the HTTP level.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in over HTTP; returns the `Cookie` header value.
async fn cookie_for(base: &str, key: &str) -> String {
    let resp = raw_client()
        .post(format!("{base}/ui/login"))
        .header(header::ORIGIN, base)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn get_with(base: &str, path: &str, cookie: &str) -> reqwest::Response {
    raw_client()
        .get(format!("{base}{path}"))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn run_to_end(r: &TestRunner, t: &TestTenant, job: &str, input: Value) -> Value {
    let run = r
        .enqueue(t, job, json!({"input": input, "max_attempts": 1}))
        .await;
    r.wait_terminal(t, run["id"].as_str().unwrap()).await
}

async fn read_key(r: &TestRunner, tenant: &str) -> String {
    let (status, body) = r
        .call(
            Method::POST,
            &format!("/v1/tenants/{tenant}/keys"),
            Some(ADMIN_TOKEN),
            Some(Body::Json(json!({"role": "read"}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["api_key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn login_is_required_and_sessions_end_with_their_key() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "hello", "hello").await;
    let run = run_to_end(&r, &acme, "hello", json!({"name": "Ada"})).await;
    let id = run["id"].as_str().unwrap();

    // Without a session every page sends the browser to the login page, showing no run data.
    let browser = Browser::start().await;
    for path in ["/ui", "/ui/runs", &format!("/ui/runs/{id}")] {
        browser.goto(&format!("{}{path}", r.base)).await;
        let url = browser.current_url().await;
        assert!(url.contains("/ui/login"), "{path} led to {url}");
        assert!(!browser.text().await.contains(id));
    }
    browser.screenshot("login").await;
    browser.assert_clean("login").await;

    // A wrong key sets no cookie.
    let resp = raw_client()
        .post(format!("{}/ui/login", r.base))
        .header(header::ORIGIN, &r.base)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("key=sfk_0000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get(header::SET_COOKIE).is_none());

    // A right key: an HttpOnly, SameSite=Strict cookie scoped to /ui; strict headers.
    let resp = raw_client()
        .post(format!("{}/ui/login", r.base))
        .header(header::ORIGIN, &r.base)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("key={}", acme.key))
        .send()
        .await
        .unwrap();
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(part), "cookie {set} lacks {part}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let page = get_with(&r.base, "/ui", &cookie).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert!(page.headers().contains_key(header::REFERRER_POLICY));
    // The cookie never authenticates the JSON API.
    let api = raw_client()
        .get(format!("{}/v1/runs", r.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // Disabling the tenant ends its sessions at once.
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/tenants/acme/disable",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = get_with(&r.base, "/ui", &cookie).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(
        page.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
    );

    // Logout deletes the session: the old cookie no longer works.
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/tenants/acme/enable",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie_for(&r.base, &acme.key).await;
    assert_eq!(
        get_with(&r.base, "/ui", &cookie).await.status(),
        StatusCode::OK
    );
    let out = raw_client()
        .post(format!("{}/ui/logout", r.base))
        .header(header::ORIGIN, &r.base)
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_with(&r.base, "/ui", &cookie).await.status(),
        StatusCode::SEE_OTHER
    );
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn pages_show_real_runs_with_their_outcomes() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    for job in ["hello", "flaky", "spin"] {
        r.upload(&acme, job, job).await;
    }
    let ok = run_to_end(
        &r,
        &acme,
        "hello",
        json!({"name": "<img src=x onerror=alert(1)>"}),
    )
    .await;
    let failed = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let fuel = r
        .enqueue(&acme, "spin", json!({"max_attempts": 1, "fuel": 1_000_000}))
        .await;
    let fuel = r.wait_terminal(&acme, fuel["id"].as_str().unwrap()).await;
    assert_eq!(ok["state"], "succeeded");
    assert_eq!(failed["state"], "failed");
    assert_eq!(fuel["state"], "failed");

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    let overview = browser.text().await;
    assert!(overview.contains("out_of_fuel"), "{overview}");
    browser.screenshot("overview").await;
    browser.assert_clean("overview").await;

    browser.goto(&format!("{}/ui/runs", r.base)).await;
    let table = browser.text_of("#runs").await;
    for needle in [
        "hello@v1",
        "flaky@v1",
        "spin@v1",
        "ok",
        "error",
        "out_of_fuel",
    ] {
        assert!(
            table.contains(needle),
            "the runs table lacks {needle}:\n{table}"
        );
    }
    browser.screenshot("runs").await;
    browser.assert_clean("runs").await;
    // Dark mode follows the system setting.
    browser
        .cmd(
            Method::POST,
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [
                {"name": "prefers-color-scheme", "value": "dark"}]}}),
            ),
        )
        .await;
    let bg = browser
        .exec(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        )
        .await;
    assert_eq!(bg, json!("rgb(13, 17, 23)"), "dark mode");
    browser.screenshot("runs-dark").await;

    // The failed tab holds exactly the two failed runs; a job filter narrows the list.
    browser
        .goto(&format!("{}/ui/runs?state=failed", r.base))
        .await;
    assert_eq!(browser.find_all("#runs tbody tr").await.len(), 2);
    browser.goto(&format!("{}/ui/runs?job=hello", r.base)).await;
    let rows = browser.find_all("#runs tbody tr").await;
    assert_eq!(rows.len(), 1);
    browser
        .goto(&format!("{}/ui/runs?outcome=out_of_fuel", r.base))
        .await;
    assert_eq!(browser.find_all("#runs tbody tr").await.len(), 1);
    // Created-time filters (UTC): the three runs were created between the spin run's creation
    // time minus an hour and now; nothing after a minute from now, nothing before an hour ago.
    let created = |offset: chrono::Duration| {
        (chrono::Utc::now() + offset)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    for (query, rows) in [
        (format!("from={}", created(chrono::Duration::hours(-1))), 3),
        (format!("from={}", created(chrono::Duration::minutes(2))), 0),
        (format!("to={}", created(chrono::Duration::hours(-1))), 0),
        (
            format!(
                "job=spin&from={}&to={}",
                created(chrono::Duration::hours(-1)),
                created(chrono::Duration::minutes(2))
            ),
            1,
        ),
    ] {
        browser.goto(&format!("{}/ui/runs?{query}", r.base)).await;
        assert_eq!(
            browser.find_all("#runs tbody tr").await.len(),
            rows,
            "{query}"
        );
    }
    // The quick range link keeps the other filters.
    browser.goto(&format!("{}/ui/runs?job=hello", r.base)).await;
    browser.click(".filters .ranges a").await;
    assert!(browser.current_url().await.contains("job=hello"));
    assert_eq!(browser.find_all("#runs tbody tr").await.len(), 1);
    let bad = get_with(
        &r.base,
        "/ui/runs?from=yesterday",
        &cookie_for(&r.base, &acme.key).await,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("is not a time"));

    // The run page: the input is text, not markup; attempts are measured against the limits.
    let id = fuel["id"].as_str().unwrap();
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    let attempts = browser.text_of("#attempts").await;
    assert!(attempts.contains("out_of_fuel"), "{attempts}");
    assert!(attempts.contains("raise the run's fuel"), "{attempts}");
    assert!(attempts.contains("of 1 000 000"), "{attempts}");
    browser.screenshot("run-failed").await;
    browser.assert_clean("run page").await;
    let id = ok["id"].as_str().unwrap();
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    assert!(
        browser
            .text_of("#input")
            .await
            .contains("<img src=x onerror=alert(1)>")
    );
    assert!(browser.find_all("#input img").await.is_empty());
    browser.screenshot("run").await;
    browser.assert_clean("run page").await;
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_retry_from_the_run_page_names_the_dashboard_without_a_reload() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "flaky", "flaky").await;
    let failed = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let id = failed["id"].as_str().unwrap();

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    browser.exec("window.__sf = 1;", json!([])).await;
    browser.click("#retry").await;
    let prefix = &acme.key[..12];
    let history = browser
        .wait_text(
            "#history",
            &format!("retried via dashboard (key {prefix}…)"),
            Duration::from_secs(5),
        )
        .await;
    assert!(history.contains("failed"), "{history}");
    assert_eq!(
        browser.exec("return window.__sf;", json!([])).await,
        json!(1),
        "the page was reloaded"
    );
    let run = r.wait_terminal(&acme, id).await;
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["attempt"], 2);
    browser.assert_clean("run page after retry").await;
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_ticker_runs_log_lines_appear_live() {
    let r = TestRunner::start_with(|s| s.ui.log_poll = Duration::from_millis(200)).await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "ticker", "ticker").await;
    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    let run = r
        .enqueue(
            &acme,
            "ticker",
            json!({"input": {"ticks": 12, "interval_ms": 250}, "max_attempts": 1}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    r.wait_for(&acme, id, Duration::from_secs(10), |run| {
        run["state"] == "running"
    })
    .await;
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    browser.exec("window.__sf = 1;", json!([])).await;
    let log = browser
        .wait_text("#log", "tick 6", Duration::from_secs(10))
        .await;
    assert!(log.contains("tick 5"), "{log}");
    browser
        .exec(
            "document.querySelector('#logs').scrollIntoView();",
            json!([]),
        )
        .await;
    browser.screenshot("run-live").await;
    browser
        .wait_text("#log", "tick 12", Duration::from_secs(10))
        .await;
    browser
        .wait_text("#run-state", "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(
        browser.exec("return window.__sf;", json!([])).await,
        json!(1),
        "the page was reloaded"
    );
    browser.assert_clean("live log").await;
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_read_only_key_sees_no_actions_and_its_posts_get_403() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "flaky", "flaky").await;
    let failed = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let id = failed["id"].as_str().unwrap();
    let read = read_key(&r, "acme").await;

    let browser = Browser::start().await;
    browser.login(&r.base, &read).await;
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    assert!(browser.text_of("#history").await.contains("failed"));
    assert!(
        browser.find_all("form[method=post] button").await.len() == 1,
        "only sign-out"
    );
    assert!(
        browser
            .find_all("#retry, #cancel, #delete")
            .await
            .is_empty()
    );
    browser.goto(&format!("{}/ui/runs", r.base)).await;
    assert!(
        browser
            .find_all("input[type=checkbox][name=id]")
            .await
            .is_empty()
    );
    let status = browser
        .exec(
            "return fetch(arguments[0], {method: 'POST'}).then(r => r.status);",
            json!([format!("/ui/runs/{id}/retry")]),
        )
        .await;
    assert_eq!(status, json!(403));
    let (status, _) = r
        .call(
            Method::POST,
            &format!("/v1/runs/{id}/retry"),
            Some(&read),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(r.run(&acme, id).await["state"], "failed");
    browser.screenshot("runs-read-only").await;
    // The 403 of the fetch above is the one error this page may log.
    let logged = browser.log().await;
    assert!(
        logged
            .iter()
            .all(|e| e["message"].as_str().unwrap_or("").contains("403")),
        "{logged:#?}"
    );
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn tenants_see_only_their_runs_and_the_admin_sees_all() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    let globex = r.tenant("globex").await;
    r.upload(&acme, "hello", "hello").await;
    r.upload(&globex, "hello", "hello").await;
    let a = run_to_end(&r, &acme, "hello", json!({"name": "a"})).await;
    let g = run_to_end(&r, &globex, "hello", json!({"name": "g"})).await;
    let (a, g) = (a["id"].as_str().unwrap(), g["id"].as_str().unwrap());

    let cookie = cookie_for(&r.base, &globex.key).await;
    let other = get_with(&r.base, &format!("/ui/runs/{a}"), &cookie).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let random = get_with(
        &r.base,
        &format!("/ui/runs/{}", uuid::Uuid::now_v7()),
        &cookie,
    )
    .await;
    assert_eq!(random.status(), StatusCode::NOT_FOUND);
    let logs = get_with(&r.base, &format!("/ui/runs/{a}/logs"), &cookie).await;
    assert_eq!(logs.status(), StatusCode::NOT_FOUND);
    let list = get_with(&r.base, "/ui/runs", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(g) && !list.contains(a));

    let browser = Browser::start().await;
    browser.login(&r.base, &globex.key).await;
    browser.goto(&format!("{}/ui/runs/{a}", r.base)).await;
    assert!(browser.text().await.contains("Not found"));
    let _ = browser.log().await; // the 404 itself is logged by the browser
    browser.goto(&format!("{}/ui/login", r.base)).await;
    browser
        .exec(
            "document.querySelector('form[action=\"/ui/logout\"]')?.submit();",
            json!([]),
        )
        .await;

    // The admin sees both tenants, with a tenant column and filter.
    let admin = Browser::start().await;
    admin.login(&r.base, ADMIN_TOKEN).await;
    admin.goto(&format!("{}/ui/runs", r.base)).await;
    let table = admin.text_of("#runs").await;
    assert!(
        table.contains("acme") && table.contains("globex"),
        "{table}"
    );
    admin.screenshot("runs-admin").await;
    admin.goto(&format!("{}/ui/runs?tenant=acme", r.base)).await;
    assert_eq!(admin.find_all("#runs tbody tr").await.len(), 1);
    admin.goto(&format!("{}/ui/runs/{g}", r.base)).await;
    assert!(admin.text().await.contains("tenant globex"));
    admin.assert_clean("admin pages").await;
    admin.close().await;
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_cross_origin_post_is_refused() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "hello", "hello").await;
    let run = r
        .enqueue(
            &acme,
            "hello",
            json!({"input": {"name": "x"}, "delay": "1h"}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["state"], "scheduled");

    // Another origin (another port on the same host: same site, so the cookie goes along).
    let target = format!("{}/ui/runs/{id}/cancel", r.base);
    let page = format!(
        "<!doctype html><title>elsewhere</title><form method=post action=\"{target}\">\
         <button id=go type=submit>go</button></form>"
    );
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_url = format!("http://{}/", evil.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(evil, app).await });

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.goto(&evil_url).await;
    browser.click("#go").await;
    let start = Instant::now();
    while !browser.text().await.contains("cross-origin") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            browser.text().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r.run(&acme, &id).await["state"], "scheduled");

    // The same over HTTP: a foreign Origin, or no origin at all, is refused with 403.
    let cookie = cookie_for(&r.base, &acme.key).await;
    for origin in [Some("http://evil.example"), None] {
        let mut req = raw_client().post(&target).header(header::COOKIE, &cookie);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(r.run(&acme, &id).await["state"], "scheduled");
    // And from the dashboard's own origin it works (303 back to the run).
    let ok = raw_client()
        .post(&target)
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &r.base)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let run = r.run(&acme, &id).await;
    assert_eq!(run["state"], "cancelled");
    assert!(
        run["history"]
            .to_string()
            .contains("cancelled via dashboard (key sfk_"),
        "{run:#}"
    );
    server.abort();
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn bulk_retry_reports_each_run() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "flaky", "flaky").await;
    r.upload(&acme, "hello", "hello").await;
    let f1 = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let f2 = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let ok = run_to_end(&r, &acme, "hello", json!({"name": "x"})).await;
    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.goto(&format!("{}/ui/runs", r.base)).await;
    browser.click("input[data-select-all]").await;
    browser.click("button[value=retry]").await;
    let result = browser
        .wait_text("#bulk", "skipped: it is succeeded", Duration::from_secs(5))
        .await;
    assert!(
        browser.text().await.contains("2 done, 1 skipped"),
        "{result}"
    );
    browser.screenshot("bulk").await;
    browser.assert_clean("bulk result").await;
    for f in [&f1, &f2] {
        let run = r.wait_terminal(&acme, f["id"].as_str().unwrap()).await;
        assert_eq!(run["attempt"], 2, "{run:#}");
    }
    assert_eq!(r.run(&acme, ok["id"].as_str().unwrap()).await["attempt"], 1);
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn no_ui_serves_no_dashboard() {
    let r = TestRunner::start_with(|s| s.ui.enabled = false).await;
    for path in ["/ui", "/ui/login", "/ui/static/app.css"] {
        let resp = raw_client()
            .get(format!("{}{path}", r.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    r.shutdown().await;
}

/// Sets a form field's value (replacing what it holds).
async fn set_value(browser: &Browser, css: &str, value: &str) {
    browser
        .exec(
            "document.querySelector(arguments[0]).value = arguments[1];",
            json!([css, value]),
        )
        .await;
}

/// Waits until the browser's URL contains `needle`; returns it.
async fn wait_url(browser: &Browser, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let url = browser.current_url().await;
        if url.contains(needle) {
            return url;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the browser did not reach {needle:?}; it is at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_jobs_pages_show_versions_with_their_outcomes_and_enqueue_a_run() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    // Two versions of one job: v1 succeeds, v2 (other bytes) fails.
    r.upload(&acme, "greet", "hello").await;
    let ok = run_to_end(&r, &acme, "greet", json!({"name": "v1"})).await;
    assert_eq!(ok["state"], "succeeded");
    r.upload(&acme, "greet", "flaky").await;
    let failed = run_to_end(&r, &acme, "greet", json!({"succeed_on_attempt": 2})).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["version"], 2);

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.click("nav.main a[href='/ui/jobs']").await;
    wait_url(&browser, "/ui/jobs").await;
    let table = browser.text_of("#jobs").await;
    assert!(table.contains("greet"), "{table}");
    assert!(table.contains("v2"), "{table}");
    browser.screenshot("jobs").await;
    browser.assert_clean("jobs").await;

    browser.click("#jobs a[href='/ui/jobs/greet']").await;
    wait_url(&browser, "/ui/jobs/greet").await;
    let versions = browser.text_of("#versions").await;
    assert!(versions.contains("v1"), "{versions}");
    assert!(versions.contains("ok 1"), "{versions}");
    assert!(versions.contains("error 1"), "{versions}");
    assert!(versions.contains("sha256:"), "{versions}");
    assert!(browser.text().await.contains("newest 1 000 runs"));
    browser.assert_clean("job").await;

    // Not JSON: the form comes back with the reason and the text as typed.
    set_value(&browser, "#input", "{\"name\": ").await;
    browser.click("#enqueue-submit").await;
    let error = browser
        .wait_text("#enqueue-error", "not JSON", Duration::from_secs(5))
        .await;
    assert!(error.contains("not JSON"), "{error}");
    assert_eq!(
        browser
            .exec("return document.querySelector('#input').value;", json!([]))
            .await,
        json!("{\"name\": ")
    );
    browser.screenshot("job-bad-input").await;
    // The 422 of the refused form is the one error this page may log.
    let logged = browser.log().await;
    assert!(
        logged
            .iter()
            .all(|e| e["message"].as_str().unwrap_or("").contains("422")),
        "{logged:#?}"
    );

    // JSON: a run of the current version, and the browser lands on its page.
    set_value(&browser, "#input", "{\"succeed_on_attempt\": 1}").await;
    browser.click("#enqueue-submit").await;
    let url = wait_url(&browser, "/ui/runs/").await;
    let id = url.rsplit('/').next().unwrap().to_string();
    let run = r.wait_terminal(&acme, &id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["version"], 2);
    assert_eq!(run["input"], json!({"succeed_on_attempt": 1}));
    let prefix = &acme.key[..12];
    browser
        .wait_text(
            "#history",
            &format!("enqueued via dashboard (key {prefix}…)"),
            Duration::from_secs(5),
        )
        .await;
    browser.assert_clean("run enqueued from the job page").await;
    browser.goto(&format!("{}/ui/jobs/greet", r.base)).await;
    browser.screenshot("job").await;
    browser.assert_clean("job").await;

    // A read key sees the job but no enqueue form, and its POST gets 403.
    let read = read_key(&r, "acme").await;
    let reader = Browser::start().await;
    reader.login(&r.base, &read).await;
    reader.goto(&format!("{}/ui/jobs/greet", r.base)).await;
    assert!(reader.text_of("#versions").await.contains("v2"));
    assert!(reader.find_all("#enqueue, textarea").await.is_empty());
    assert_eq!(
        reader.find_all("form[method=post] button").await.len(),
        1,
        "only sign-out"
    );
    let status = reader
        .exec(
            "return fetch('/ui/jobs/greet/runs', {method: 'POST', headers: \
             {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'input=%7B%7D'}) \
             .then(r => r.status);",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(403));
    reader.close().await;

    // Another tenant's job answers 404 like a missing one; the admin sees the tenant column.
    let other = r.tenant("other").await;
    let cookie = cookie_for(&r.base, &other.key).await;
    assert_eq!(
        get_with(&r.base, "/ui/jobs/greet", &cookie).await.status(),
        StatusCode::NOT_FOUND
    );
    let list = get_with(&r.base, "/ui/jobs", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("greet"), "{list}");
    let admin = cookie_for(&r.base, ADMIN_TOKEN).await;
    let list = get_with(&r.base, "/ui/jobs", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("/ui/jobs/greet?tenant=acme"), "{list}");
    let page = get_with(&r.base, "/ui/jobs/greet?tenant=acme", &admin).await;
    assert_eq!(page.status(), StatusCode::OK);
    // The admin enqueues into the tenant named by the link, as the admin.
    let resp = raw_client()
        .post(format!("{}/ui/jobs/greet/runs?tenant=acme", r.base))
        .header(header::COOKIE, &admin)
        .header(header::ORIGIN, &r.base)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("input=%7B%22succeed_on_attempt%22%3A1%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let id = to.strip_prefix("/ui/runs/").expect("a run page");
    let run = r.wait_terminal(&acme, id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let (_, history) = r
        .call(
            Method::GET,
            &format!("/v1/runs/{id}"),
            Some(&acme.key),
            None,
        )
        .await;
    assert!(
        history
            .to_string()
            .contains("enqueued via dashboard (admin)"),
        "{history}"
    );
    browser.close().await;
    r.shutdown().await;
}

async fn put_schedule(r: &TestRunner, t: &TestTenant, name: &str, body: Value) {
    let (status, resp) = r
        .call(
            Method::PUT,
            &format!("/v1/schedules/{name}"),
            Some(&t.key),
            Some(Body::Json(body)),
        )
        .await;
    assert!(status.is_success(), "{status} {resp}");
}

async fn schedule_json(r: &TestRunner, t: &TestTenant, name: &str) -> (StatusCode, Value) {
    r.call(
        Method::GET,
        &format!("/v1/schedules/{name}"),
        Some(&t.key),
        None,
    )
    .await
}

#[tokio::test]
async fn the_schedules_page_shows_fire_times_and_pauses_triggers_and_deletes() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "hello", "hello").await;
    put_schedule(
        &r,
        &acme,
        "weekday-report",
        json!({"job": "hello", "cron": "30 9 * * 1-5", "timezone": "Europe/Berlin",
               "input": {"name": "report"}}),
    )
    .await;
    put_schedule(
        &r,
        &acme,
        "cleanup",
        json!({"job": "hello", "cron": "0 3 1 1 *", "input": {"name": "cleanup"}}),
    )
    .await;

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.click("nav.main a[href='/ui/schedules']").await;
    wait_url(&browser, "/ui/schedules").await;
    let row = browser.text_of("#schedule-weekday-report").await;
    for needle in [
        "30 9 * * 1-5",
        "at 09:30 on Monday to Friday",
        "Europe/Berlin",
        "none yet",
        "active",
    ] {
        assert!(row.contains(needle), "{needle} missing:\n{row}");
    }
    assert_eq!(
        browser
            .find_all("#schedule-weekday-report ol.fires li")
            .await
            .len(),
        5
    );
    browser.screenshot("schedules").await;
    browser.assert_clean("schedules").await;

    // Pause and resume swap the list in place (no reload).
    browser.exec("window.__sf = 1;", json!([])).await;
    browser
        .click("#schedule-weekday-report button[data-action=pause]")
        .await;
    browser
        .wait_text("#schedule-weekday-report", "paused", Duration::from_secs(5))
        .await;
    assert_eq!(
        schedule_json(&r, &acme, "weekday-report").await.1["paused"],
        true
    );
    assert!(
        browser
            .text_of("#schedule-weekday-report")
            .await
            .contains("none while paused")
    );
    browser.screenshot("schedules-paused").await;
    browser
        .click("#schedule-weekday-report button[data-action=resume]")
        .await;
    browser
        .wait_text("#schedule-weekday-report", "active", Duration::from_secs(5))
        .await;
    assert_eq!(
        schedule_json(&r, &acme, "weekday-report").await.1["paused"],
        false
    );
    assert_eq!(
        browser.exec("return window.__sf;", json!([])).await,
        json!(1),
        "the page was reloaded"
    );
    browser
        .assert_clean("schedules after pause and resume")
        .await;

    // Trigger now: a run of the schedule, and the browser lands on its page.
    browser
        .click("#schedule-weekday-report button[data-action=trigger]")
        .await;
    let url = wait_url(&browser, "/ui/runs/").await;
    let id = url.rsplit('/').next().unwrap().to_string();
    let run = r.wait_terminal(&acme, &id).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    assert_eq!(run["input"], json!({"name": "report"}));
    browser.goto(&format!("{}/ui/schedules", r.base)).await;
    let row = browser.text_of("#schedule-weekday-report").await;
    assert!(row.contains(&id[24..]), "{row}");
    assert!(row.contains("succeeded"), "{row}");
    browser.assert_clean("schedules after a trigger").await;

    // The schedule's page: its runs (the triggered one), and a fire time it skipped, with why.
    sqlx::query(
        "INSERT INTO schedule_fires (schedule_id, fire_at, skipped)
         SELECT id, now() - interval '1 day', 'overlap skip: run 0190 was still running'
         FROM schedules WHERE name = 'weekday-report'",
    )
    .execute(r.store.pool())
    .await
    .unwrap();
    browser
        .click("#schedule-weekday-report a[href='/ui/schedules/weekday-report']")
        .await;
    wait_url(&browser, "/ui/schedules/weekday-report").await;
    let runs = browser.text_of("#schedule-runs").await;
    assert!(
        runs.contains(&id[24..]) && runs.contains("triggered"),
        "{runs}"
    );
    let skipped = browser.text_of("#schedule-skipped").await;
    assert!(
        skipped.contains("overlap skip: run 0190 was still running"),
        "{skipped}"
    );
    assert!(browser.text_of("#schedule-input").await.contains("report"));
    assert_eq!(browser.find_all("ol.fires li").await.len(), 5);
    browser.screenshot("schedule").await;
    browser.assert_clean("schedule page").await;
    // Pause from its page comes back to its page.
    browser.click("button[data-action=pause]").await;
    browser
        .wait_text("h1", "paused", Duration::from_secs(5))
        .await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/ui/schedules/weekday-report")
    );
    browser.click("button[data-action=resume]").await;
    browser
        .wait_text("h1", "active", Duration::from_secs(5))
        .await;
    browser.goto(&format!("{}/ui/schedules", r.base)).await;

    // Delete (behind a disclosure).
    browser.click("#schedule-cleanup details summary").await;
    browser
        .click("#schedule-cleanup button[data-action=delete]")
        .await;
    let start = Instant::now();
    while !browser.find_all("#schedule-cleanup").await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "not deleted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        schedule_json(&r, &acme, "cleanup").await.0,
        StatusCode::NOT_FOUND
    );
    browser.assert_clean("schedules after a delete").await;
    browser.screenshot("schedules").await;

    // A read key sees the schedules and no action controls; its POST gets 403.
    let read = read_key(&r, "acme").await;
    let reader = Browser::start().await;
    reader.login(&r.base, &read).await;
    reader.goto(&format!("{}/ui/schedules", r.base)).await;
    assert!(
        reader
            .text_of("#schedules")
            .await
            .contains("weekday-report")
    );
    assert!(reader.find_all("button[data-action]").await.is_empty());
    assert_eq!(
        reader.find_all("form[method=post] button").await.len(),
        1,
        "only sign-out"
    );
    let status = reader
        .exec(
            "return fetch('/ui/schedules/weekday-report/pause', {method: 'POST'}) \
             .then(r => r.status);",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(403));
    assert_eq!(
        schedule_json(&r, &acme, "weekday-report").await.1["paused"],
        false
    );
    reader.close().await;

    // Another tenant sees none of them; the admin sees them with their tenant.
    let other = r.tenant("other").await;
    let cookie = cookie_for(&r.base, &other.key).await;
    let page = get_with(&r.base, "/ui/schedules", &cookie).await;
    assert!(!page.text().await.unwrap().contains("weekday-report"));
    let admin = cookie_for(&r.base, ADMIN_TOKEN).await;
    let page = get_with(&r.base, "/ui/schedules", &admin).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("weekday-report/pause?tenant=acme"), "{page}");
    browser.close().await;
    r.shutdown().await;
}

async fn queue_json(r: &TestRunner, t: &TestTenant, name: &str) -> Value {
    let (status, body) = r.call(Method::GET, "/v1/queues", Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_queues_page_shows_waiting_runs_and_pauses_and_resumes() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "hello", "hello").await;
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/queues/default",
            Some(&acme.key),
            Some(Body::Json(json!({"paused": true, "concurrency_limit": 3}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let waiting = r
        .enqueue(&acme, "hello", json!({"input": {"name": "q"}}))
        .await;
    let id = waiting["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(r.run(&acme, &id).await["state"], "enqueued");

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.click("nav.main a[href='/ui/queues']").await;
    wait_url(&browser, "/ui/queues").await;
    let row = browser.text_of("#queue-acme-default").await;
    for needle in ["default", "paused", "3", "1", " s"] {
        assert!(row.contains(needle), "{needle:?} missing:\n{row}");
    }
    browser.screenshot("queues").await;
    browser.assert_clean("queues").await;

    // Resume in place: the waiting run starts and ends.
    browser.exec("window.__sf = 1;", json!([])).await;
    browser
        .click("#queue-acme-default button[data-action=resume]")
        .await;
    browser
        .wait_text("#queue-acme-default", "active", Duration::from_secs(5))
        .await;
    assert_eq!(queue_json(&r, &acme, "default").await["paused"], false);
    let run = r.wait_terminal(&acme, &id).await;
    assert_eq!(run["state"], "succeeded");
    // And pause again.
    browser
        .click("#queue-acme-default button[data-action=pause]")
        .await;
    browser
        .wait_text("#queue-acme-default", "paused", Duration::from_secs(5))
        .await;
    assert_eq!(queue_json(&r, &acme, "default").await["paused"], true);
    assert_eq!(
        browser.exec("return window.__sf;", json!([])).await,
        json!(1),
        "the page was reloaded"
    );
    browser.assert_clean("queues after resume and pause").await;

    // A read key: no action controls, and its POST gets 403.
    let read = read_key(&r, "acme").await;
    let reader = Browser::start().await;
    reader.login(&r.base, &read).await;
    reader.goto(&format!("{}/ui/queues", r.base)).await;
    assert!(reader.text_of("#queues").await.contains("default"));
    assert!(reader.find_all("button[data-action]").await.is_empty());
    let status = reader
        .exec(
            "return fetch('/ui/queues/default/resume', {method: 'POST'}).then(r => r.status);",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(403));
    assert_eq!(queue_json(&r, &acme, "default").await["paused"], true);
    reader.close().await;

    // Another tenant's page does not show acme's queue; the admin's does, with the tenant.
    let other = r.tenant("other").await;
    let cookie = cookie_for(&r.base, &other.key).await;
    let page = get_with(&r.base, "/ui/queues", &cookie).await;
    assert!(!page.text().await.unwrap().contains("queue-acme-default"));
    let admin = cookie_for(&r.base, ADMIN_TOKEN).await;
    let page = get_with(&r.base, "/ui/queues", &admin).await;
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("/ui/queues/default/resume?tenant=acme")
    );
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn the_runners_page_shows_slots_heartbeats_and_hides_hosts_from_tenants() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "ticker", "ticker").await;
    let run = r
        .enqueue(
            &acme,
            "ticker",
            json!({"input": {"ticks": 40, "interval_ms": 250}, "max_attempts": 1}),
        )
        .await;
    let id = run["id"].as_str().unwrap().to_string();
    r.wait_for(&acme, &id, Duration::from_secs(10), |run| {
        run["state"] == "running"
    })
    .await;
    let (_, admin_view) = r
        .call(Method::GET, "/v1/runners", Some(ADMIN_TOKEN), None)
        .await;
    let host = admin_view["runners"][0]["host"]
        .as_str()
        .unwrap()
        .to_string();

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.click("nav.main a[href='/ui/runners']").await;
    wait_url(&browser, "/ui/runners").await;
    let runners = browser.text_of("#runners").await;
    assert!(runners.contains("1 yours of"), "{runners}");
    assert!(runners.contains("default"), "{runners}");
    assert!(runners.contains("ago"), "{runners}");
    assert!(
        !browser.text().await.contains(&host),
        "a tenant sees the host"
    );
    assert!(!runners.contains("leader"), "{runners}");
    let in_flight = browser.text_of("#in-flight").await;
    assert!(in_flight.contains("ticker"), "{in_flight}");
    assert!(in_flight.contains(&id[24..]), "{in_flight}");
    assert!(browser.find_all("button[data-action]").await.is_empty());
    browser.screenshot("runners").await;
    browser.assert_clean("runners").await;
    // The overview's runner table shows a tenant the same (no leader, no host).
    browser.goto(&format!("{}/ui", r.base)).await;
    let overview = browser.text().await;
    assert!(
        !overview.contains("leader") && !overview.contains(&host),
        "{overview}"
    );
    browser.assert_clean("runners").await;

    // Another tenant sees the runner but not acme's attempt.
    let other = r.tenant("other").await;
    let cookie = cookie_for(&r.base, &other.key).await;
    let page = get_with(&r.base, "/ui/runners", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("0 yours of"), "{page}");
    assert!(!page.contains(&id[24..]), "{page}");
    // The admin sees the host, the leader and every attempt.
    let admin = Browser::start().await;
    admin.login(&r.base, ADMIN_TOKEN).await;
    admin.goto(&format!("{}/ui/runners", r.base)).await;
    let runners = admin.text_of("#runners").await;
    assert!(runners.contains(&host), "{runners}");
    assert!(runners.contains("leader"), "{runners}");
    assert!(runners.contains("1 of"), "{runners}");
    assert!(admin.text_of("#in-flight").await.contains(&id[24..]));
    admin.screenshot("runners-admin").await;
    admin.assert_clean("runners (admin)").await;
    admin.close().await;
    r.call(
        Method::POST,
        &format!("/v1/runs/{id}/cancel"),
        Some(&acme.key),
        None,
    )
    .await;
    browser.close().await;
    r.shutdown().await;
}

#[tokio::test]
async fn a_batch_page_shows_its_progress_members_and_continuations() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "hello", "hello").await;
    let hello = json!({"job": "hello", "input": {"name": "b"}});
    let (status, created) = r
        .call(
            Method::POST,
            "/v1/batches",
            Some(&acme.key),
            Some(Body::Json(json!({
                "runs": [hello, hello, hello],
                "then": [{"job": "hello", "on": "succeeded", "input": {"name": "after"}}],
            }))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let batch = created["id"].as_str().unwrap().to_string();
    let then = created["then"][0].as_str().unwrap().to_string();
    let member = created["runs"][0].as_str().unwrap().to_string();
    assert_eq!(r.wait_terminal(&acme, &then).await["state"], "succeeded");

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    browser.goto(&format!("{}/ui/runs/{member}", r.base)).await;
    browser
        .click(&format!("a[href='/ui/batches/{batch}']"))
        .await;
    wait_url(&browser, &format!("/ui/batches/{batch}")).await;
    let progress = browser.text_of("#batch-progress").await;
    assert!(progress.contains("100 % of 3 runs ended"), "{progress}");
    assert!(browser.text().await.contains("finished"));
    assert_eq!(browser.find_all("#members tbody tr").await.len(), 3);
    let conts = browser.text_of("#continuations").await;
    assert!(
        conts.contains(&then[24..]) && conts.contains("succeeded"),
        "{conts}"
    );
    assert!(browser.find_all("button[data-action]").await.is_empty());
    // A finished batch offers no cancel.
    assert!(browser.find_all("#cancel-batch").await.is_empty());
    browser.screenshot("batch").await;
    browser.assert_clean("batch").await;

    // A second batch of long runs, cancelled from its page: the list shows both, the new one
    // first, and the cancel ends every member.
    r.upload(&acme, "sleep", "sleep").await;
    let sleep = json!({"job": "sleep", "timeout_ms": 30_000, "max_attempts": 1});
    let (status, created) = r
        .call(
            Method::POST,
            "/v1/batches",
            Some(&acme.key),
            Some(Body::Json(json!({"runs": [sleep, sleep]}))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let long = created["id"].as_str().unwrap().to_string();
    browser.goto(&format!("{}/ui/batches", r.base)).await;
    let rows = browser.find_all("#batches tbody tr").await;
    assert_eq!(rows.len(), 2);
    let list = browser.text_of("#batches").await;
    let (first, second) = (list.find(&long[24..]), list.find(&batch[24..]));
    assert!(first.is_some() && first < second, "newest first:\n{list}");
    assert!(
        list.contains("finished") && list.contains("running"),
        "{list}"
    );
    browser.screenshot("batches").await;
    browser.assert_clean("batches").await;
    // A read key sees the running batch without its cancel button, and its POST gets 403.
    let read = read_key(&r, "acme").await;
    let read_cookie = cookie_for(&r.base, &read).await;
    let page = get_with(&r.base, &format!("/ui/batches/{long}"), &read_cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("running") && !page.contains("cancel-batch"),
        "{page}"
    );
    let refused = raw_client()
        .post(format!("{}/ui/batches/{long}/cancel", r.base))
        .header(header::ORIGIN, &r.base)
        .header(header::COOKIE, &read_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    browser
        .click(&format!("a[href='/ui/batches/{long}']"))
        .await;
    wait_url(&browser, &format!("/ui/batches/{long}")).await;
    browser.click("#cancel-batch").await;
    browser
        .wait_text("h1", "cancelled", Duration::from_secs(10))
        .await;
    for id in created["runs"].as_array().unwrap() {
        let run = r.wait_terminal(&acme, id.as_str().unwrap()).await;
        assert_eq!(run["state"], "cancelled", "{run:#}");
    }

    // Another tenant's view of the batch is a 404, like a random id; the admin sees it.
    let other = r.tenant("other").await;
    let cookie = cookie_for(&r.base, &other.key).await;
    let path = format!("/ui/batches/{batch}");
    assert_eq!(
        get_with(&r.base, &path, &cookie).await.status(),
        StatusCode::NOT_FOUND
    );
    let random = format!("/ui/batches/{}", uuid_like());
    assert_eq!(
        get_with(&r.base, &random, &cookie).await.status(),
        StatusCode::NOT_FOUND
    );
    let admin = cookie_for(&r.base, ADMIN_TOKEN).await;
    assert_eq!(
        get_with(&r.base, &path, &admin).await.status(),
        StatusCode::OK
    );
    browser.close().await;
    r.shutdown().await;
}

fn uuid_like() -> String {
    "01890a5d-ac96-774b-bcce-b302099a8057".to_string()
}

/// The overview's charts and the usage page read the rollup the runners write (`run_stats`):
/// their numbers match the attempts the API reports, the realtime chart follows new attempts
/// without a reload, and the usage page shows the tenant's quotas and their refusals.
#[tokio::test]
async fn the_charts_and_usage_come_from_the_rollup_and_match_the_api() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    for job in ["hello", "flaky", "spin"] {
        r.upload(&acme, job, job).await;
    }
    run_to_end(&r, &acme, "hello", json!({"name": "chart"})).await;
    run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let spin = r
        .enqueue(&acme, "spin", json!({"max_attempts": 1, "fuel": 1_000_000}))
        .await;
    let spin = r.wait_terminal(&acme, spin["id"].as_str().unwrap()).await;
    assert_eq!(spin["attempts"][0]["outcome"], "out_of_fuel", "{spin:#}");
    // What the API says about every attempt: the figures every chart must add up to.
    let (status, list) = r.call(Method::GET, "/v1/runs", Some(&acme.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut by_outcome = std::collections::BTreeMap::<String, i64>::new();
    for run in list["runs"].as_array().unwrap() {
        let run = r.run(&acme, run["id"].as_str().unwrap()).await;
        for a in run["attempts"].as_array().unwrap() {
            *by_outcome
                .entry(a["outcome"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(
        by_outcome,
        [("error", 1), ("ok", 1), ("out_of_fuel", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    );
    // A quota refusal, counted for the usage page: a fourth job over max_jobs 3.
    let (status, _) = r
        .call(
            Method::PUT,
            "/v1/tenants/acme/limits",
            Some(ADMIN_TOKEN),
            Some(Body::Json(json!({"max_jobs": 3}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = r
        .call(
            Method::PUT,
            "/v1/jobs/noop",
            Some(&acme.key),
            Some(Body::Raw(example("noop"), None)),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    // The runner writes its sums every 100 ms here: reload until they are in.
    let start = Instant::now();
    loop {
        browser.goto(&format!("{}/ui", r.base)).await;
        if browser
            .text_of("#history figcaption")
            .await
            .contains("out_of_fuel 1")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the history never showed the attempts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The 24-hour tiles: runs ended by an attempt, by how they ended.
    let tiles = browser.text_of("#day-tiles").await;
    let tile = |label: &str| {
        let lines: Vec<&str> = tiles.lines().collect();
        let i = lines
            .iter()
            .position(|l| *l == label)
            .unwrap_or_else(|| panic!("{tiles}"));
        lines[i - 1].to_string()
    };
    assert_eq!(tile("succeeded"), "1", "{tiles}");
    assert_eq!(tile("did not succeed"), "2", "{tiles}");
    assert_eq!(tile("attempts"), "3", "{tiles}");
    for (chart, outcome_count) in [("#history", 1), ("#realtime", 1)] {
        let legend = browser.text_of(&format!("{chart} figcaption")).await;
        for (outcome, n) in &by_outcome {
            assert!(
                legend.contains(&format!("{outcome} {n}")),
                "{chart} legend lacks {outcome} {n}: {legend}"
            );
        }
        assert!(legend.contains("timeout 0"), "{legend}");
        assert_eq!(
            browser
                .find_all(&format!("{chart} rect.seg.o-out_of_fuel"))
                .await
                .len(),
            outcome_count,
            "{chart} draws one out_of_fuel segment"
        );
    }
    // The data table (closed by default) has the same numbers: its columns, in legend order,
    // add up to the API's counts.
    let sums = browser
        .exec(
            "const sums = new Array(8).fill(0);
             document.querySelectorAll('#history tbody tr').forEach(r => {
               [...r.querySelectorAll('td')].slice(0, 8).forEach((td, i) => {
                 sums[i] += parseInt(td.textContent.replace(/\\s/g, ''), 10);
               });
             });
             return sums;",
            json!([]),
        )
        .await;
    assert_eq!(
        sums,
        json!([1, 1, 1, 0, 0, 0, 0, 0]),
        "ok, error, out_of_fuel, …"
    );
    browser.screenshot("overview-charts").await;
    browser.assert_clean("overview").await;

    // The realtime chart follows a new attempt without a reload.
    browser.exec("window.__sf = 1; return 1;", json!([])).await;
    let spin = r
        .enqueue(&acme, "spin", json!({"max_attempts": 1, "fuel": 1_000_000}))
        .await;
    r.wait_terminal(&acme, spin["id"].as_str().unwrap()).await;
    browser
        .wait_text(
            "#realtime figcaption",
            "out_of_fuel 2",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        browser.exec("return window.__sf;", json!([])).await,
        json!(1),
        "the page was reloaded"
    );

    // Usage: today's row adds up every attempt, and names the refusal; the quotas table shows
    // max_jobs 3 with 3 in use.
    browser.goto(&format!("{}/ui/usage", r.base)).await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let first = browser.text_of("#usage-table tbody tr").await;
    assert!(first.contains(&today), "{first}");
    let attempts = browser
        .exec(
            "return document.querySelector('#usage-table tbody tr').children[2].innerText;",
            json!([]),
        )
        .await;
    assert_eq!(attempts, json!("4"), "{first}");
    assert!(first.contains("max_jobs 1"), "{first}");
    let quotas = browser.text_of("#quota-table").await;
    let max_jobs = quotas
        .lines()
        .find(|l| l.contains("max_jobs"))
        .unwrap_or_default();
    assert!(max_jobs.contains('3'), "{quotas}");
    let top = browser.text_of("#top-jobs-table").await;
    let first_job = top
        .lines()
        .find(|l| ["spin", "hello", "flaky"].iter().any(|j| l.contains(j)))
        .unwrap_or_default();
    assert!(first_job.contains("spin"), "{top}");
    browser.screenshot("usage").await;
    browser.assert_clean("usage").await;
    browser.close().await;

    // The admin sees every tenant's usage, with a tenant column.
    let globex = r.tenant("globex").await;
    r.upload(&globex, "hello", "hello").await;
    run_to_end(&r, &globex, "hello", json!({"name": "g"})).await;
    let admin = cookie_for(&r.base, ADMIN_TOKEN).await;
    let start = Instant::now();
    loop {
        let page = get_with(&r.base, "/ui/usage", &admin)
            .await
            .text()
            .await
            .unwrap();
        if page.contains("<td>acme</td>") && page.contains("<td>globex</td>") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And a tenant never sees another's.
    let acme_cookie = cookie_for(&r.base, &acme.key).await;
    let page = get_with(&r.base, "/ui/usage", &acme_cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("globex"), "{page}");
    r.shutdown().await;
}

/// The dashboard reads through a pool of its own whose statements the database cancels at
/// `ui.statement_timeout`: a page stuck behind a lock answers 503 in words instead of holding
/// a connection, and the page works again once the lock is gone.
#[tokio::test]
async fn a_slow_dashboard_query_is_cancelled_at_the_statement_timeout() {
    let r = TestRunner::start_with(|s| {
        s.ui.statement_timeout = Duration::from_millis(300);
    })
    .await;
    let acme = r.tenant("acme").await;
    let cookie = cookie_for(&r.base, &acme.key).await;
    assert_eq!(
        get_with(&r.base, "/ui/runs", &cookie).await.status(),
        StatusCode::OK
    );
    // Another session holds a lock every read of `runs` waits for.
    use sqlx::Connection as _;
    let mut locker = sqlx::PgConnection::connect_with(r.store.pool().connect_options().as_ref())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let started = Instant::now();
    let page = get_with(&r.base, "/ui/runs", &cookie).await;
    let waited = started.elapsed();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = page.text().await.unwrap();
    assert!(body.contains("took too long"), "{body}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(
        get_with(&r.base, "/ui/runs", &cookie).await.status(),
        StatusCode::OK
    );
    r.shutdown().await;
}

/// With JavaScript off, the lists and the run page render and Retry works as a plain form
/// POST answered with a redirect (htmx only enhances the pages).
#[tokio::test]
async fn without_javascript_the_pages_render_and_retry_works_by_redirect() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "flaky", "flaky").await;
    let failed = run_to_end(&r, &acme, "flaky", json!({"succeed_on_attempt": 2})).await;
    let id = failed["id"].as_str().unwrap().to_string();

    let browser = Browser::start_with(false).await;
    browser.login(&r.base, &acme.key).await;
    // Scripts do not run: the time-zone toggle, which a script reveals, stays hidden.
    assert!(!browser.displayed("button[data-time-toggle]").await);
    browser
        .goto(&format!("{}/ui/runs?state=failed", r.base))
        .await;
    assert_eq!(browser.find_all("#runs tbody tr").await.len(), 1);
    assert!(browser.element_text("#runs").await.contains("flaky@v1"));
    browser.screenshot("no-js-runs").await;
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    assert!(browser.element_text("#attempts").await.contains("error"));
    browser.click("#retry").await;
    let start = Instant::now();
    loop {
        // With JavaScript off the click submits a form: the next page may still be loading.
        let history = browser
            .element_text_if_any("#history")
            .await
            .unwrap_or_default();
        if history.contains("retried via dashboard") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{history}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        browser
            .current_url()
            .await
            .ends_with(&format!("/ui/runs/{id}"))
    );
    let run = r.wait_terminal(&acme, &id).await;
    assert_eq!(run["attempt"], 2, "{run:#}");
    assert_eq!(run["state"], "succeeded", "{run:#}");
    browser.screenshot("no-js-run").await;
    for page in [
        "/ui",
        "/ui/jobs",
        "/ui/schedules",
        "/ui/batches",
        "/ui/queues",
        "/ui/runners",
        "/ui/usage",
    ] {
        browser.goto(&format!("{}{page}", r.base)).await;
        assert!(
            browser.find_all("h1").await.len() == 1,
            "{page} rendered no heading"
        );
    }
    browser.close().await;
    r.shutdown().await;
}

/// The link of a run-list page with `rel` (`next`: Older, `prev`: Newer), unescaped.
fn pager_link(html: &str, rel: &str) -> Option<String> {
    let (before, _) = html.split_once(&format!("rel=\"{rel}\""))?;
    let start = before.rfind("href=\"")? + 6;
    let link = &before[start..];
    Some(
        link[..link.find('"')?]
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

/// The run ids a run-list page shows, and its "Older" link (HTML as served).
fn run_list_page(html: &str) -> (Vec<String>, Option<String>) {
    let mut ids = Vec::new();
    for part in html.split("href=\"/ui/runs/").skip(1) {
        let id: String = part.chars().take(36).collect();
        if id.len() == 36
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    let older = pager_link(html, "next");
    (ids, older.filter(|l| l.starts_with("/ui/runs?")))
}

/// The state tabs of rare states walk smaller sets (failed: the attempts that did not end ok;
/// waiting and running: the hot table) and still page through every run of the tenant, in
/// order, without gaps or another tenant's runs.
#[tokio::test]
async fn state_tabs_page_through_their_runs_without_gaps() {
    let r = TestRunner::start().await;
    let acme = r.tenant("acme").await;
    let other = r.tenant("other").await;
    for t in [&acme, &other] {
        r.upload(t, "flaky", "flaky").await;
        r.upload(t, "noop", "noop").await;
    }
    let fail =
        json!((0..55)
        .map(|_| json!({"job": "flaky", "input": {"succeed_on_attempt": 2}, "max_attempts": 1}))
        .collect::<Vec<_>>());
    let mut failed = Vec::new();
    for t in [&acme, &other] {
        let (status, body) = r
            .call(
                Method::POST,
                "/v1/runs",
                Some(&t.key),
                Some(Body::Json(fail.clone())),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ids: Vec<String> = body["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        for id in &ids {
            assert_eq!(r.wait_terminal(t, id).await["state"], "failed");
        }
        if std::ptr::eq(t, &acme) {
            failed = ids;
        }
    }
    // 60 waiting runs in a paused queue.
    let (status, _) = r
        .call(
            Method::POST,
            "/v1/queues/default/pause",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let wait = json!((0..60).map(|_| json!({"job": "noop"})).collect::<Vec<_>>());
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/runs",
            Some(&acme.key),
            Some(Body::Json(wait)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let waiting: Vec<String> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();

    // 52 of them cancelled (one of those retried and cancelled again: two events, one run),
    // and 3 continuations awaiting one of the others.
    let mut cancelled = Vec::new();
    for id in &waiting[..52] {
        let (status, _) = r
            .call(
                Method::POST,
                &format!("/v1/runs/{id}/cancel"),
                Some(&acme.key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        cancelled.push(id.clone());
    }
    for action in ["retry", "cancel"] {
        let (status, body) = r
            .call(
                Method::POST,
                &format!("/v1/runs/{}/{action}", waiting[0]),
                Some(&acme.key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let still_waiting = waiting[52..].to_vec();
    let mut awaiting = Vec::new();
    for _ in 0..3 {
        let run = r
            .enqueue(
                &acme,
                "noop",
                json!({"after": {"run": still_waiting[0], "on": "succeeded"}}),
            )
            .await;
        assert_eq!(run["state"], "awaiting");
        awaiting.push(run["id"].as_str().unwrap().to_string());
    }

    let cookie = cookie_for(&r.base, &acme.key).await;
    for (tab, expected, pages_expected) in [
        ("failed", &failed, 2),
        ("enqueued", &still_waiting, 1),
        ("cancelled", &cancelled, 2),
        ("awaiting", &awaiting, 1),
    ] {
        let mut seen = Vec::new();
        let mut next = Some(format!("/ui/runs?state={tab}"));
        let mut pages = 0;
        while let Some(link) = next {
            let html = get_with(&r.base, &link, &cookie)
                .await
                .text()
                .await
                .unwrap();
            let (ids, older) = run_list_page(&html);
            assert!(ids.len() <= 50, "{tab}: {} on one page", ids.len());
            seen.extend(ids);
            next = older;
            pages += 1;
            assert!(
                pages <= 3,
                "{tab}: too many pages; seen {} ids, next {next:?}",
                seen.len()
            );
        }
        assert_eq!(pages, pages_expected, "{tab}");
        let mut want = expected.clone();
        want.sort();
        want.reverse();
        assert_eq!(seen, want, "{tab}: every run once, newest first");
        if pages < 2 {
            continue;
        }
        // Back from the second page: Newer shows the first page again.
        let first = get_with(&r.base, &format!("/ui/runs?state={tab}"), &cookie)
            .await
            .text()
            .await
            .unwrap();
        let second_link = pager_link(&first, "next").unwrap();
        let second = get_with(&r.base, &second_link, &cookie)
            .await
            .text()
            .await
            .unwrap();
        let newer = pager_link(&second, "prev").expect("a Newer link on the second page");
        let back = get_with(&r.base, &newer, &cookie)
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            run_list_page(&back).0,
            run_list_page(&first).0,
            "{tab}: Newer"
        );
    }
    r.shutdown().await;
}

/// An attempt that called out shows its network use on the run page, refused requests
/// included.
#[tokio::test]
async fn the_run_page_shows_an_attempts_network_use() {
    let web = crate::support::web::WebServer::start().await;
    let r = TestRunner::start_with(|s| s.sandbox.outbound.allow_loopback = true).await;
    let acme = r.tenant("acme").await;
    r.upload(&acme, "fetch", "fetch").await;
    let host = format!("http://{}", web.addr);
    for (path, key, body) in [
        (
            "/v1/tenants/acme/policy".to_owned(),
            ADMIN_TOKEN.to_owned(),
            json!({"allowed_outbound_hosts": [host.clone()], "max_requests_per_attempt": 2}),
        ),
        (
            "/v1/jobs/fetch/capabilities".to_owned(),
            acme.key.clone(),
            json!({"allowed_outbound_hosts": [host], "config": []}),
        ),
    ] {
        let (status, answer) = r
            .call(
                reqwest::Method::PUT,
                &path,
                Some(&key),
                Some(Body::Json(body)),
            )
            .await;
        assert!(status.is_success(), "{path}: {answer}");
    }
    let run = run_to_end(
        &r,
        &acme,
        "fetch",
        json!({"url": web.url("/ok"), "repeat": 3, "keep_going": true}),
    )
    .await;
    assert_eq!(run["state"], "succeeded", "{run:#}");

    let browser = Browser::start().await;
    browser.login(&r.base, &acme.key).await;
    let id = run["id"].as_str().unwrap();
    browser.goto(&format!("{}/ui/runs/{id}", r.base)).await;
    let attempts = browser.text_of("#attempts").await;
    assert!(
        attempts.contains("network: 3 requests (1 denied)"),
        "{attempts}"
    );
    browser.screenshot("run-network").await;
    browser.assert_clean("run page").await;
    browser.close().await;
    r.shutdown().await;
}
