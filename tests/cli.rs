//! The CLI as a user runs it: real processes, the OS keyring (GNOME Keyring on a private
//! D-Bus session, set up by `scripts/test`), throw-away XDG directories, the sandbox
//! over real HTTP. Asserted through the CLI's own output, the files and the keyring.

mod support;

use std::path::Path;
use std::process::Stdio;

use nocobase_wecom_companion::core::paths::APP_ID;
use nocobase_wecom_companion::core::secrets::{KeyringStore, SecretStore};
use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;
use support::browser::Browser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nocobase-wecom-companion");

struct Cli {
    home: tempfile::TempDir,
    profile: String,
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new() -> Cli {
        // Keyring entries are per profile name: make it unique to this test run.
        let profile = format!("t{}", std::process::id()) + &rand_suffix();
        Cli {
            home: tempfile::tempdir().unwrap(),
            profile,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("NWC_BROWSER", "none")
            .env("NWC_LANG", "en-US")
            .env_remove("NWC_LOG")
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().await.unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(
            out.code, 0,
            "{args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    async fn status(&self) -> Value {
        serde_json::from_str(
            &self
                .ok(&["--profile", &self.profile, "status", "--json"])
                .await,
        )
        .unwrap()
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!(
        "{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn assert_keyring_works() {
    KeyringStore::new(APP_ID).probe().unwrap_or_else(|e| {
        panic!("these tests need the OS keyring; run them with scripts/test ({e})")
    });
}

/// Every file under `dir`, read as text.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.clone(),
                    std::fs::read_to_string(&path).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

/// `signin --method device`, with the test playing 张三's phone inside WeCom.
async fn device_sign_in(cli: &Cli) -> String {
    let mut child = cli
        .command(&["--profile", &cli.profile, "signin", "--method", "device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut transcript = String::new();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the CLI printed the device link");
        transcript.push_str(&line);
        transcript.push('\n');
        if let Some(at) = line.find("http") {
            if line.contains("user_code=") {
                break line[at..].trim().to_owned();
            }
        }
    };
    assert!(
        transcript.contains("Scan this QR code with WeCom"),
        "{transcript}"
    );
    let mut phone = Browser::wecom("ZhangSan");
    let confirm = phone.goto(&url).await.unwrap().page().unwrap();
    assert!(confirm.has_id("device-approve"), "{}", confirm.url);
    phone.click("device-approve").await.unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        transcript.push_str(&line);
        transcript.push('\n');
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{transcript}");
    transcript
}

async fn auth_check(origin: &str, token: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{origin}/api/auth:check"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_user_session_from_the_shell() {
    assert_keyring_works();
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let origin = sandbox.origin();
    let cli = Cli::new();
    let p = cli.profile.as_str();

    let added = cli.ok(&["profiles", "add", p, &origin]).await;
    assert!(added.contains("WeCom authenticator “wecom”"), "{added}");
    assert_eq!(cli.status().await["signedIn"], false);

    let transcript = device_sign_in(&cli).await;
    assert!(transcript.contains("Signed in as 张三"), "{transcript}");

    let status = cli.status().await;
    assert_eq!(status["signedIn"], true, "{status}");
    assert_eq!(status["user"]["nickname"], "张三");
    assert_eq!(status["method"], "device");

    // `token` prints a token that works on NocoBase's API.
    let token = cli.ok(&["--profile", p, "token"]).await.trim().to_owned();
    assert_eq!(auth_check(&origin, &token).await, 200);

    // The token is in the keyring and nowhere on disk; settings files are private.
    assert!(KeyringStore::new(APP_ID)
        .get(&format!("session:{p}"))
        .unwrap()
        .is_some());
    for (path, text) in all_files(cli.home.path()) {
        assert!(
            !text.contains(&token),
            "token leaked into {}",
            path.display()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if path.extension().is_some_and(|e| e == "json") {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
    }
    assert!(!cli
        .run(&["--profile", p, "status"])
        .await
        .stdout
        .contains(&token));

    // Two processes refreshing at once: single-flight, so the grant survives.
    let refresh = ["--profile", p, "token", "--refresh"];
    let (a, b) = tokio::join!(cli.run(&refresh), cli.run(&refresh));
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    let fresh = cli.ok(&["--profile", p, "token"]).await.trim().to_owned();
    assert_eq!(auth_check(&origin, &fresh).await, 200);
    cli.ok(&["--profile", p, "token", "--refresh"]).await;

    // `open` opens only workbench URLs on the origin.
    let opened = cli.ok(&["--profile", p, "open", "--mobile"]).await;
    assert!(opened.contains(&format!("{origin}/m")), "{opened}");
    let opened = cli.ok(&["--profile", p, "open", "/admin/orders"]).await;
    assert!(
        opened.contains(&format!("{origin}/admin/orders")),
        "{opened}"
    );
    let hostile = cli.run(&["--profile", p, "open", "//evil.example/x"]).await;
    assert_eq!(hostile.code, 1);
    assert!(
        hostile.stderr.contains("is not a path on this server"),
        "{}",
        hostile.stderr
    );

    // Sign-out revokes on the server and wipes the keyring entry.
    let last = cli.ok(&["--profile", p, "token"]).await.trim().to_owned();
    assert!(cli
        .ok(&["--profile", p, "signout"])
        .await
        .contains("Signed out"));
    assert_eq!(auth_check(&origin, &last).await, 401);
    assert!(KeyringStore::new(APP_ID)
        .get(&format!("session:{p}"))
        .unwrap()
        .is_none());
    let status = cli.status().await;
    assert_eq!(status["signedIn"], false);
    assert_eq!(status["lastEnd"]["reason"], "signedOut");
    let token = cli.run(&["--profile", p, "token"]).await;
    assert_eq!(token.code, 1);
    assert!(token.stderr.contains("Not signed in"), "{}", token.stderr);
    assert!(token.stdout.is_empty());
    cli.ok(&["profiles", "remove", p]).await;
}

#[tokio::test]
async fn doctor_explains_a_wrong_address() {
    let cli = Cli::new();
    let p = cli.profile.as_str();
    cli.ok(&["profiles", "add", p, "http://127.0.0.1:9", "--no-check"])
        .await;
    let out = cli.run(&["--profile", p, "doctor"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("FAIL  Cannot reach http://127.0.0.1:9"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("→ Check the address"), "{}", out.stdout);

    let zh = cli
        .run(&["--lang", "zh-CN", "--profile", p, "doctor"])
        .await;
    assert!(zh.stdout.contains("无法连接"), "{}", zh.stdout);
}

#[tokio::test]
async fn bad_input_gets_one_line_and_a_nonzero_exit() {
    let cli = Cli::new();
    for (args, expect) in [
        (
            vec!["profiles", "add", "x", "http://nocobase.example.com"],
            "must use https",
        ),
        (
            vec!["profiles", "add", "../x", "https://h"],
            "not a valid profile name",
        ),
        (vec!["--profile", "nope", "status"], "no profile named"),
        (vec!["status"], "No server set up yet"),
        (vec!["signin", "--method", "qr"], "“qr” is not valid"),
    ] {
        let out = cli.run(&args).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    }
}

#[tokio::test]
async fn a_corrupt_settings_file_is_set_aside_and_reported() {
    let cli = Cli::new();
    let dir = cli.home.path().join("config").join(APP_ID);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("profiles.json"), "{ not json").unwrap();
    let out = cli.run(&["profiles", "list"]).await;
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("was damaged"), "{}", out.stderr);
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("profiles.json.corrupt-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        "{ not json"
    );
}

#[tokio::test]
async fn the_sandbox_command_serves_until_stopped() {
    let cli = Cli::new();
    let mut child = cli
        .command(&["sandbox", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the URL")
        .to_owned();
    let info: Value = reqwest::get(format!("{url}/api/app:getInfo"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["data"]["version"], "2.2.15");
    child.kill().await.unwrap();
}
