//! Helpers for the tests against a real NocoBase 2.2.15 (`tests/real_nocobase.rs`,
//! `tests/conformance.rs`, feature `real-nocobase`): where the server is, how to restart it
//! (`tests/nocobase/nocobase.sh`), its admin API (token policy, device approval), the
//! product's core wired to it, and the headless Chromium that plays the user's browser
//! (`tests/browser/sign-in.js`).
//!
//! The server is shared by all tests of a run, so these run one at a time
//! (`--test-threads=1`, as `scripts/test` does) and every test that changes the token policy
//! puts the default back, even when it fails ([`ShortPolicy`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nocobase_wecom_companion::core::opener::UrlOpener;
use nocobase_wecom_companion::core::paths::Paths;
use nocobase_wecom_companion::core::profile::{Origin, Profile, ProfileName};
use nocobase_wecom_companion::core::secrets::MemoryStore;
use nocobase_wecom_companion::core::Context;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use url::Url;

/// The browser seam: URLs the app opens arrive on a channel (like `app::CapturingOpener`).
pub struct Opened(mpsc::UnboundedSender<Url>);

impl UrlOpener for Opened {
    fn open(&self, url: &Url) -> nocobase_wecom_companion::core::Result<()> {
        let _ = self.0.send(url.clone());
        Ok(())
    }
}

/// The root account `tests/nocobase/nocobase.sh install` creates.
pub const ADMIN_ACCOUNT: &str = "admin@nocobase.com";
pub const ADMIN_PASSWORD: &str = "admin123";
pub const ADMIN_USERNAME: &str = "nocobase";

/// `NOCOBASE_URL`, e.g. `http://127.0.0.1:13000` (no trailing slash).
pub fn nocobase_url() -> String {
    match std::env::var("NOCOBASE_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "NOCOBASE_URL is not set. These tests need a real NocoBase 2.2.15:\n  \
             tests/nocobase/nocobase.sh install && tests/nocobase/nocobase.sh reset-db\n  \
             NOCOBASE_URL=$(tests/nocobase/nocobase.sh url) cargo test --features real-nocobase \
             --test real_nocobase --test conformance -- --test-threads=1\n\
             (or simply scripts/test, which does all of it)"
        ),
    }
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `tests/nocobase/nocobase.sh <command>` (same `NOCOBASE_HOME`/`NOCOBASE_PORT` as the
/// environment), panicking with its output when it fails.
pub fn nocobase_sh(command: &str) {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(repo_file("tests/nocobase/nocobase.sh"))
        .arg(command)
        .output()
        .expect("run tests/nocobase/nocobase.sh");
    assert!(
        out.status.success(),
        "nocobase.sh {command} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "[real] nocobase.sh {command}: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// A server restart: the OAuth provider reads the token policy only when it is built, at
/// the first OAuth request after a start (nocobase-idp-oauth.md §6).
pub async fn restart_server() {
    tokio::task::spawn_blocking(|| nocobase_sh("restart"))
        .await
        .expect("restart task");
}

/// Signs in as root with the basic authenticator; the NocoBase session token.
pub async fn admin_token(origin: &str) -> String {
    super::sign_in_admin(&super::api_client(), origin).await
}

/// NocoBase's token policy as `ms` strings (`tokenControlConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub token: &'static str,
    pub renew: &'static str,
    pub session: &'static str,
}

/// NocoBase's defaults: 1 d / 1 d / 7 d.
pub const DEFAULT_POLICY: Policy = Policy {
    token: "1d",
    renew: "1d",
    session: "7d",
};

/// `POST tokenControlConfig:update` as root. NocoBase session tokens follow at once; the
/// OAuth provider only after [`restart_server`].
pub async fn set_token_policy(origin: &str, policy: Policy) {
    let http = super::api_client();
    let admin = admin_token(origin).await;
    let resp = http
        .post(format!(
            "{origin}/api/tokenControlConfig:update?filterByTk=token-policy-config"
        ))
        .bearer_auth(&admin)
        .header("X-Authenticator", "basic")
        .json(&json!({ "config": {
            "tokenExpirationTime": policy.token,
            "expiredTokenRenewLimit": policy.renew,
            "sessionExpirationTime": policy.session,
        }}))
        .send()
        .await
        .expect("tokenControlConfig:update");
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "tokenControlConfig:update: {body}");
    let _ = http
        .post(format!("{origin}/api/auth:signOut"))
        .bearer_auth(&admin)
        .send()
        .await;
}

/// The policy in force, as `tokenControlConfig:get` reports it.
pub async fn token_policy(origin: &str) -> Value {
    let http = super::api_client();
    let admin = admin_token(origin).await;
    let body: Value = http
        .get(format!(
            "{origin}/api/tokenControlConfig:get?filterByTk=token-policy-config"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("tokenControlConfig:get")
        .json()
        .await
        .expect("tokenControlConfig:get body");
    body["data"]["config"].clone()
}

/// A short token policy for the duration of a test. Time cannot be moved on a real server,
/// so tests that cross expiry shorten the policy instead, and wait.
///
/// Creating it sets the policy and (with `restart`) restarts the server so the OAuth
/// provider reads it. Dropping it, also when the test panics, sets the default back and
/// restarts again, so later tests start from the defaults.
pub struct ShortPolicy {
    origin: String,
    restarted: bool,
}

impl ShortPolicy {
    pub async fn apply(origin: &str, policy: Policy, restart: bool) -> ShortPolicy {
        set_token_policy(origin, policy).await;
        if restart {
            restart_server().await;
        }
        ShortPolicy {
            origin: origin.to_owned(),
            restarted: restart,
        }
    }
}

impl Drop for ShortPolicy {
    fn drop(&mut self) {
        let origin = self.origin.clone();
        let restart = self.restarted;
        // Drop cannot await: restore on a thread of its own with its own runtime.
        let restored = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(set_token_policy(&origin, DEFAULT_POLICY));
            if restart {
                nocobase_sh("restart");
            }
        })
        .join();
        if restored.is_err() && !std::thread::panicking() {
            panic!("could not restore the default token policy");
        }
    }
}

/// Approves a device sign-in the way NocoBase's device page does after the user confirms:
/// `POST /api/idpOAuth/device/verification:approve` with a NocoBase token.
pub async fn approve_device(origin: &str, user_code: &str, nocobase_token: &str) -> Value {
    let resp = super::api_client()
        .post(format!("{origin}/api/idpOAuth/device/verification:approve"))
        .bearer_auth(nocobase_token)
        .json(&json!({ "user_code": user_code }))
        .send()
        .await
        .expect("verification:approve");
    let status = resp.status();
    let body: Value = resp.json().await.expect("verification:approve body");
    assert_eq!(status, 200, "verification:approve: {body}");
    body
}

/// The product's core on a real server: throw-away directories, an in-memory secret store,
/// and the URL-opener seam handing every URL to the test.
pub struct RealApp {
    pub ctx: Context,
    pub profile: Profile,
    pub origin: String,
    /// URLs the app asked the system browser to open.
    pub opened: mpsc::UnboundedReceiver<Url>,
    _dir: tempfile::TempDir,
}

impl RealApp {
    /// `authenticator` is the profile's: WeCom cannot be reached from here, so `basic`
    /// stands in for it.
    pub fn new(authenticator: &str) -> RealApp {
        let origin = nocobase_url();
        let dir = tempfile::tempdir().expect("temp dir");
        let (tx, opened) = mpsc::unbounded_channel();
        let ctx = Context::new(
            Paths::under(dir.path()),
            Arc::new(MemoryStore::default()),
            Arc::new(Opened(tx)),
        );
        let profile = Profile::new(
            ProfileName::parse("real").unwrap(),
            Origin::parse(&origin).unwrap(),
            authenticator,
        );
        RealApp {
            ctx,
            profile,
            origin,
            opened,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

/// What `tests/browser/sign-in.js` reports.
#[derive(Debug, Deserialize)]
pub struct BrowserReport {
    pub ok: bool,
    #[serde(default)]
    pub callback: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub steps: Value,
    #[serde(default)]
    pub ms: Option<u64>,
}

/// Headless Chromium plays the user: opens `authorize`, signs in on NocoBase's real sign-in
/// page as root, clicks Continue on the consent card and lets the redirect reach the
/// `redirect_uri`. Panics (with the page it was on) if it cannot.
pub async fn browser_sign_in(authorize: &Url) -> BrowserReport {
    let script = repo_file("tests/browser/sign-in.js");
    assert!(
        repo_file("tests/browser/node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` \
         (scripts/test does)"
    );
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .arg(authorize.as_str())
        .env("NWC_SIGNIN_ACCOUNT", ADMIN_ACCOUNT)
        .env("NWC_SIGNIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node tests/browser/sign-in.js");
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the browser finished within 150 s")
        .expect("the browser ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: BrowserReport = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no report from the browser (exit {:?}):\n{stdout}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        report.ok && out.status.success(),
        "the browser could not finish the sign-in: {report:#?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "[real] browser leg: {:.1}s",
        report.ms.unwrap_or_default() as f64 / 1000.0
    );
    report
}

/// Waits for time to pass on the server: a real server's clock cannot be moved, so tests
/// that cross a token's expiry sleep. Never used to wait for another task.
pub async fn let_server_time_pass(secs: f64) {
    eprintln!("[real] waiting {secs:.0}s for server time to pass");
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

/// Unix seconds (the real server's clock is this machine's).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until the unix time `at` (plus nothing: callers add their own margin).
pub async fn wait_until(at: f64) {
    let now = unix_now();
    if at > now {
        let_server_time_pass(at - now).await;
    }
}
