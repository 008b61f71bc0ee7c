//! A small WebDriver (W3C) client over reqwest, driving Debian's headless
//! chromium through chromedriver: enough for the page's tests (navigate,
//! find, read text and attributes, click, type, screenshots) without the
//! build weight of a WebDriver crate on a 2-core machine.
//!
//! Logging in: the page takes HTTP basic auth, whose prompt WebDriver
//! cannot fill. The session sends the `Authorization` header the prompt
//! would produce on every request, through chromedriver's DevTools bridge
//! (`Network.setExtraHTTPHeaders`); no credentials go in any URL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::harness::need;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium with a
    /// fresh profile and no background networking (the network is closed).
    pub async fn start() -> Browser {
        need("chromium", "apt-get install chromium");
        need("chromedriver", "apt-get install chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let status: Value = r.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1100,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_owned();
        Browser {
            driver,
            http,
            session: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// A command's value, or the WebDriver error it got.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res: Value = req.send().await.unwrap().json().await.unwrap();
        match res["value"]["error"].as_str() {
            Some(error) => Err(format!("{error}: {}", res["value"]["message"])),
            None => Ok(res["value"].clone()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Sends `Authorization: Basic` for `user` on every request from now
    /// on, as the browser does once its login prompt was answered.
    pub async fn log_in(&self, user: &str, password: &str) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        for (cmd, params) in [
            ("Network.enable", json!({})),
            (
                "Network.setExtraHTTPHeaders",
                json!({"headers": {"Authorization": format!("Basic {token}")}}),
            ),
        ] {
            self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
                .await;
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `act`, which loads another page (a link clicked, a form sent), and waits
    /// until that page replaced this one and loaded: the driver may answer the click
    /// or key press before the navigation it starts, and elements found meanwhile on
    /// the old page go stale.
    async fn navigating(&self, act: impl std::future::Future<Output = Value>) {
        self.eval("window.__oldPage = true; return null;").await;
        act.await;
        let script = "return window.__oldPage === undefined && document.readyState === 'complete';";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Mid-navigation the script may find no page to run in: not loaded yet.
            let loaded = self
                .try_call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": script, "args": []})),
                )
                .await;
            if loaded == Ok(Value::Bool(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page loaded after 10 s (still at {}: {loaded:?})",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The current page's HTML, for failure messages.
    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let found = self.find_all(css).await;
        if let Some(first) = found.into_iter().next() {
            return first;
        }
        let (url, source) = (self.url().await, self.source().await);
        panic!("no element {css:?} on {url}:\n{source}")
    }

    /// The rendered text of an element.
    pub async fn text(&self, element: &Element) -> String {
        let v = self.get(&format!("/element/{}/text", element.0)).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute of an element.
    pub async fn attr(&self, element: &Element, name: &str) -> Option<String> {
        let v = self
            .get(&format!("/element/{}/attribute/{name}", element.0))
            .await;
        v.as_str().map(str::to_owned)
    }

    /// The text of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all(css).await {
            out.push(self.text(&e).await);
        }
        out
    }

    /// An attribute of every element matching `css`.
    pub async fn attrs(&self, css: &str, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all(css).await {
            out.extend(self.attr(&e, name).await);
        }
        out
    }

    /// Clicks a link or button that loads another page, and waits for that page.
    pub async fn click(&self, element: &Element) {
        let path = format!("/element/{}/click", element.0);
        self.navigating(self.post(&path, json!({}))).await;
    }

    /// Types `text` into a form's field and presses Enter, which sends the form, and
    /// waits for the page it loads.
    pub async fn submit_typing(&self, element: &Element, text: &str) {
        let path = format!("/element/{}/value", element.0);
        let keys = json!({ "text": format!("{text}\u{E007}") });
        self.navigating(self.post(&path, keys)).await;
    }

    /// Runs `script` in the page (WebDriver's own channel, which the page's
    /// Content-Security-Policy does not govern) and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Resizes the window (a phone is about 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a PNG of the viewport under `target/ui-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// `<target>/ui-screenshots`: beside cargo's `tmp` folder for integration tests.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser; chromedriver is then stopped by its PID.
        let session = self.session.clone();
        let http = self.http.clone();
        let ended = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let end = http.delete(&session).timeout(Duration::from_secs(10));
                let _ = runtime.block_on(async move { end.send().await });
            }
        });
        let _ = ended.join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
