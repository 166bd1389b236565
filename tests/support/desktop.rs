//! The desktop app as a user's desktop sees it, for `tests/desktop_e2e.rs`: the real
//! binary on a headless X server (Xvfb, started here on a free display), its tray read
//! and clicked over D-Bus (the test plays the StatusNotifier host), the URLs it opens
//! arriving on a FIFO, its windows seen on the X server, links handed over by `gio`.
//!
//! Nothing here sleeps to wait: every wait is on a real signal (a line on a pipe, a
//! D-Bus signal, an X event, a process exit), bounded by [`WAIT`].
//!
//! Needs the private session bus and unlocked keyring of `scripts/test`. The app's
//! single-instance name, the StatusNotifier watcher name and the keyring are shared on
//! that bus, so the desktop tests take turns ([`Desktop::start`] holds the turn).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io::{BufRead as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use nocobase_wecom_companion::core::paths::APP_ID;
use nocobase_wecom_companion::core::secrets::KeyringStore;
use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch, MutexGuard};
use zbus::fdo::DBusProxy;
use zbus::message::{Header, Type as MessageType};
use zbus::names::BusName;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value as Variant};
use zbus::{Connection, MatchRule, MessageStream};

use super::browser::Browser;

pub const BIN: &str = env!("CARGO_BIN_EXE_nocobase-wecom-companion");
/// The app's deep-link scheme.
pub const SCHEME: &str = "com.nocobase.wecomcompanion";
/// The D-Bus name the running app holds (tauri-plugin-single-instance).
pub const SINGLE_INSTANCE: &str = "com.nocobase.wecomcompanion.SingleInstance";
/// The StatusNotifierItem watcher that libayatana-appindicator registers with.
pub const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";
pub const WATCHER_PATH: &str = "/StatusNotifierWatcher";
pub const ITEM_INTERFACE: &str = "org.kde.StatusNotifierItem";
pub const MENU_INTERFACE: &str = "com.canonical.dbusmenu";
/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// One desktop test at a time (see the module docs).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Awaits `future`, failing the test with `what` after [`WAIT`].
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A throw-away desktop: an X display, a StatusNotifier host, a browser seam, a sandbox
/// server and XDG directories with one profile (a unique name) pointing at it.
pub struct Desktop {
    pub sandbox: Sandbox,
    /// The active profile's name, unique to this test (keyring entries are per name).
    pub profile: String,
    /// URLs the app opened "in the browser".
    pub seam: Seam,
    /// The test's own connection to the session bus.
    pub bus: Connection,
    registrations: mpsc::UnboundedReceiver<Registration>,
    _watcher: Connection,
    pub display: Xvfb,
    home: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Desktop {
    pub async fn start() -> Desktop {
        let turn = TURN.lock().await;
        let bus = Connection::session().await.unwrap_or_else(|e| {
            panic!("the desktop tests need a session bus: run them with scripts/test ({e})")
        });
        KeyringStore::new(APP_ID).probe().unwrap_or_else(|e| {
            panic!("the desktop tests need the OS keyring: run them with scripts/test ({e})")
        });
        become_subreaper();
        let display = Xvfb::start().await;
        let (watcher, registrations) = Watcher::serve().await;
        let sandbox = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox starts");
        let home = tempfile::tempdir().expect("temp dir");
        let profile = unique_profile_name();
        let config = home.path().join("config").join(APP_ID);
        std::fs::create_dir_all(&config).unwrap();
        for dir in ["data", "cache"] {
            std::fs::create_dir_all(home.path().join(dir)).unwrap();
        }
        let profiles = serde_json::json!({
            "active": profile,
            "profiles": [{ "name": profile, "origin": sandbox.origin(), "authenticator": "wecom" }],
        });
        std::fs::write(config.join("profiles.json"), profiles.to_string()).unwrap();
        let seam = Seam::create(home.path());
        Desktop {
            sandbox,
            profile,
            seam,
            bus,
            registrations,
            _watcher: watcher,
            display,
            home,
            _turn: turn,
        }
    }

    /// The sandbox's origin, e.g. `http://127.0.0.1:41234`.
    pub fn origin(&self) -> String {
        self.sandbox.origin()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    pub fn profiles_file(&self) -> PathBuf {
        self.config_dir().join(APP_ID).join("profiles.json")
    }

    /// `program args…` with this desktop's environment: its XDG directories, display,
    /// browser seam and English.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("XDG_DATA_HOME", self.data_dir())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("DISPLAY", &self.display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("GDK_BACKEND", "x11")
            // No accessibility bus to start, no GVfs daemons to look for.
            .env("NO_AT_BRIDGE", "1")
            .env("GIO_USE_VFS", "local")
            .env("NWC_BROWSER", &self.seam.script)
            .env("NWC_LANG", "en-US")
            .env_remove("NWC_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Starts the app (`args` after the binary: none for the tray app, or one deep link)
    /// without waiting for it.
    pub async fn spawn(&self, args: &[&str]) -> App {
        // The previous app of this test (or of the test before) must be gone from the
        // bus, or this one would hand its arguments over to it and exit.
        wait_until_unowned(&self.bus, SINGLE_INSTANCE).await;
        let mut child = self
            .command(BIN, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the app starts");
        let pid = child.id().expect("a running child has a pid");
        let (sink, stderr) = watch::channel(String::new());
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                sink.send_modify(|all| {
                    all.push_str(&line);
                    all.push('\n');
                });
            }
        });
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        App {
            child,
            pid,
            stdout,
            stderr,
        }
    }

    /// Starts the tray app and waits for its `ready` line.
    pub async fn launch(&self, args: &[&str]) -> App {
        let mut app = self.spawn(args).await;
        app.wait_ready().await;
        app
    }

    /// The tray of `app`, once it has registered it with the watcher.
    pub async fn tray(&mut self, app: &App) -> Tray {
        let dbus = DBusProxy::new(&self.bus).await.unwrap();
        let registration = within("the app to register its tray icon", async {
            loop {
                let r = self
                    .registrations
                    .recv()
                    .await
                    .expect("the watcher is running");
                let sender = BusName::try_from(r.sender.as_str()).unwrap();
                // An earlier app of this test may have registered too: take this app's.
                match dbus.get_connection_unix_process_id(sender).await {
                    Ok(pid) if pid == app.pid => break r,
                    _ => continue,
                }
            }
        })
        .await;
        Tray::of(&self.bus, &registration).await
    }

    /// Runs the CLI (same binary, same files and keyring) with `--profile` set.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let mut all = vec!["--profile", self.profile.as_str()];
        all.extend_from_slice(args);
        let out = self
            .command(BIN, &all)
            .env("NWC_BROWSER", "none")
            .output()
            .await
            .unwrap();
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `status --json`.
    pub async fn status(&self) -> Value {
        let out = self.cli(&["status", "--json"]).await;
        assert_eq!(
            out.code, 0,
            "status failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `signin --method device` with the CLI, the test playing 张三's phone in WeCom.
    pub async fn device_sign_in(&self) {
        let mut child = self
            .command(
                BIN,
                &["--profile", &self.profile, "signin", "--method", "device"],
            )
            .env("NWC_BROWSER", "none")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut transcript = String::new();
        let url = within("the CLI to print the device link", async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("no device link:\n{transcript}"));
                transcript.push_str(&line);
                transcript.push('\n');
                if let Some(at) = line.find("http") {
                    if line.contains("user_code=") {
                        break line[at..].trim().to_owned();
                    }
                }
            }
        })
        .await;
        let mut phone = Browser::wecom("ZhangSan");
        let confirm = phone.goto(&url).await.unwrap().page().unwrap();
        assert!(confirm.has_id("device-approve"), "{}", confirm.url);
        phone.click("device-approve").await.unwrap();
        let status = within("the CLI sign-in to finish", async {
            while let Some(line) = lines.next_line().await.unwrap() {
                transcript.push_str(&line);
                transcript.push('\n');
            }
            child.wait().await.unwrap()
        })
        .await;
        assert!(status.success(), "{transcript}");
        assert!(transcript.contains("Signed in as 张三"), "{transcript}");
    }

    /// `gio open LINK`: the OS's way to a link handler, resolved through the XDG
    /// directories (the `.desktop` file and `mimeapps.list` the app registered). `gio`
    /// does not wait for the handler; as this process is a child subreaper, the handler
    /// becomes its child when `gio` exits, and this waits for it to exit. Returns the
    /// handler's exit code.
    pub async fn gio_open(&self, link: &str) -> i32 {
        let before: HashSet<u32> = children().into_iter().map(|(pid, _)| pid).collect();
        let out = within(
            "gio open",
            self.command("gio", &["open", link])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output(),
        )
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "gio open {link} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // New among this process's children, and the app's binary.
        let adopted: Vec<u32> = children()
            .into_iter()
            .filter(|(pid, comm)| !before.contains(pid) && BIN_COMM.starts_with(comm.as_str()))
            .map(|(pid, _)| pid)
            .collect();
        let [pid] = adopted[..] else {
            panic!("gio started no single handler process (adopted: {adopted:?})");
        };
        wait_adopted(pid).await
    }

    /// Waits until a top-level window titled `title` is mapped on the display.
    pub async fn wait_for_window(&self, title: &str) {
        let (tx, rx) = oneshot::channel();
        let (display, wanted) = (self.display.name.clone(), title.to_owned());
        // x11rb blocks: the thread ends with the match, or when the X server goes away.
        std::thread::spawn(move || {
            let _ = tx.send(watch_for_window(&display, &wanted));
        });
        let found = tokio::time::timeout(WAIT, rx).await;
        match found {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("watching the X server failed: {e}"),
            Ok(Err(_)) => panic!("the X watcher ended"),
            Err(_) => panic!(
                "no window “{title}” appeared within {WAIT:?}; windows: {:?}",
                window_titles(&self.display.name)
            ),
        }
    }
}

/// The binary's name; the kernel keeps its first 15 bytes as `comm`.
const BIN_COMM: &str = "nocobase-wecom-companion";

/// A run of the CLI.
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A running app process.
pub struct App {
    child: Child,
    pub pid: u32,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: watch::Receiver<String>,
}

impl App {
    /// Waits for the `ready` line the app prints once built (setup done).
    pub async fn wait_ready(&mut self) {
        let stdout = &mut self.stdout;
        let stderr = &self.stderr;
        within("the app's ready line", async {
            loop {
                match stdout.next_line().await {
                    Ok(Some(line)) if line.trim() == "ready" => return,
                    Ok(Some(_)) => continue,
                    _ => panic!("the app ended before it was ready:\n{}", *stderr.borrow()),
                }
            }
        })
        .await;
    }

    /// Waits for the app to exit and returns its exit code.
    pub async fn wait_exit(&mut self) -> i32 {
        let status = within("the app to exit", self.child.wait()).await.unwrap();
        status
            .code()
            .unwrap_or_else(|| panic!("the app was killed ({status}):\n{}", self.stderr()))
    }

    /// Kills the app (no clean-up of its own, like a crash or a power cut) and waits.
    pub async fn kill(&mut self) {
        within("the app to die", self.child.kill()).await.unwrap();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What the app wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.borrow().clone()
    }

    /// Waits until the app's stderr (its log) contains `text`; returns all of it.
    pub async fn wait_for_log(&mut self, text: &str) -> String {
        let log = &mut self.stderr;
        let found = tokio::time::timeout(WAIT, log.wait_for(|all| all.contains(text)))
            .await
            .ok()
            .and_then(|r| r.ok().map(|all| all.clone()));
        found.unwrap_or_else(|| panic!("the app did not log “{text}”:\n{}", *log.borrow()))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // A failing test shows what the app said (kill_on_drop ends the process).
        if std::thread::panicking() {
            eprintln!(
                "--- the app ({}) wrote on stderr ---\n{}",
                self.pid,
                self.stderr()
            );
        }
    }
}

/// `Xvfb` on a display number it picks itself (`-displayfd`), stopped on drop.
pub struct Xvfb {
    /// `:N`
    pub name: String,
    child: std::process::Child,
}

impl Xvfb {
    async fn start() -> Xvfb {
        let mut child = std::process::Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset"])
            .args(["-screen", "0", "1280x800x24"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (scripts/setup installs it)");
        // Xvfb writes the display number once it accepts connections.
        let stdout = child.stdout.take().unwrap();
        let reading = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        });
        let number = match tokio::time::timeout(WAIT, reading).await {
            Ok(Ok(Ok(line))) if !line.trim().is_empty() => line.trim().to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("Xvfb did not report a display within {WAIT:?}");
            }
        };
        Xvfb {
            name: format!(":{number}"),
            child,
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM: Xvfb removes its socket and lock file, and exits at once.
        // SAFETY: signals our own child, which has not been waited for yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The browser seam: `NWC_BROWSER` is a script that appends its argument to a FIFO,
/// and a thread here reads the FIFO with blocking reads.
pub struct Seam {
    pub script: PathBuf,
    fifo: PathBuf,
    urls: mpsc::UnboundedReceiver<String>,
}

/// Written to the FIFO on drop, to end the reading thread.
const SEAM_STOP: &str = "\u{1}stop";

impl Seam {
    fn create(dir: &Path) -> Seam {
        let fifo = dir.join("browser.fifo");
        let path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        let made = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
        assert_eq!(made, 0, "mkfifo: {}", std::io::Error::last_os_error());
        let script = dir.join("browser");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# The desktop tests' browser: hands the URL to the test.\nprintf '%s\\n' \"$1\" >> '{}'\n",
                fifo.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Read and write: the FIFO always has a writer (no end of file between URLs)
        // and a reader (the script's open never blocks).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let (tx, urls) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(file).lines() {
                let Ok(line) = line else { return };
                if line == SEAM_STOP || tx.send(line).is_err() {
                    return;
                }
            }
        });
        Seam { script, fifo, urls }
    }

    /// The next URL the app opened.
    pub async fn next_url(&mut self) -> String {
        within("a URL through the browser seam", self.urls.recv())
            .await
            .expect("the seam is open")
    }

    /// URLs that already arrived and were not taken yet.
    pub fn arrived(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.urls.try_recv().ok()).collect()
    }
}

impl Drop for Seam {
    fn drop(&mut self) {
        // The reading thread holds a reader, so this open does not block.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo)
        {
            let _ = writeln!(f, "{SEAM_STOP}");
        }
    }
}

/// An item registered with the watcher.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The unique name of the registering connection.
    pub sender: String,
    /// The item's bus name and object path.
    pub service: String,
    pub path: String,
}

/// The StatusNotifierWatcher: the part of a desktop's tray host that apps register with.
struct Watcher {
    items: Vec<String>,
    registered: mpsc::UnboundedSender<Registration>,
}

impl Watcher {
    /// Serves the watcher under its well-known name, taking the name over from an
    /// earlier test's watcher whose connection is still closing.
    async fn serve() -> (Connection, mpsc::UnboundedReceiver<Registration>) {
        let (registered, rx) = mpsc::unbounded_channel();
        let watcher = Watcher {
            items: Vec::new(),
            registered,
        };
        let conn = zbus::connection::Builder::session()
            .unwrap()
            .serve_at(WATCHER_PATH, watcher)
            .unwrap()
            .name(WATCHER_NAME)
            .unwrap()
            .replace_existing_names(true)
            .allow_name_replacements(true)
            .build()
            .await
            .expect("own org.kde.StatusNotifierWatcher");
        (conn, rx)
    }
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// `service` is a bus name (the item is at `/StatusNotifierItem`) or, as
    /// libayatana-appindicator sends it, an object path on the caller's connection.
    async fn register_status_notifier_item(
        &mut self,
        service: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let sender = header
            .sender()
            .map(|s| s.to_string())
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs("no sender".into()))?;
        let (bus, path) = if service.starts_with('/') {
            (sender.clone(), service)
        } else {
            (service, "/StatusNotifierItem".to_owned())
        };
        let id = format!("{bus}{path}");
        self.items.push(id.clone());
        let _ = self.registered.send(Registration {
            sender,
            service: bus,
            path,
        });
        Self::status_notifier_item_registered(&emitter, &id).await?;
        Ok(())
    }

    fn register_status_notifier_host(&mut self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn status_notifier_item_unregistered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn status_notifier_host_registered(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

/// A menu entry as the tray host sees it (com.canonical.dbusmenu).
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i32,
    /// Without GTK's mnemonic underscores.
    pub label: String,
    pub enabled: bool,
    pub visible: bool,
    pub separator: bool,
    pub children: Vec<Entry>,
}

/// Which entry to click: by label, or by position among the top-level entries that
/// are not separators (0 is the status line).
#[derive(Debug, Clone, Copy)]
pub enum Pick<'a> {
    Label(&'a str),
    Position(usize),
}

impl<'a> From<&'a str> for Pick<'a> {
    fn from(label: &'a str) -> Self {
        Pick::Label(label)
    }
}

impl From<usize> for Pick<'_> {
    fn from(position: usize) -> Self {
        Pick::Position(position)
    }
}

/// The app's tray icon and its menu, over D-Bus.
pub struct Tray {
    conn: Connection,
    /// The unique bus name of the app's connection that serves the item and menu.
    pub bus: String,
    pub item_path: String,
    pub menu_path: OwnedObjectPath,
}

type RawLayout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

impl Tray {
    async fn of(conn: &Connection, registration: &Registration) -> Tray {
        let reply = conn
            .call_method(
                Some(registration.service.as_str()),
                registration.path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(ITEM_INTERFACE, "Menu"),
            )
            .await
            .expect("the item has a Menu property");
        let menu: OwnedValue = reply.body().deserialize().unwrap();
        let menu_path = OwnedObjectPath::try_from(menu).expect("Menu is an object path");
        Tray {
            conn: conn.clone(),
            bus: registration.service.clone(),
            item_path: registration.path.clone(),
            menu_path,
        }
    }

    /// The top-level menu entries, read now (`GetLayout(0, -1, [])`).
    pub async fn entries(&self) -> Vec<Entry> {
        let reply = self
            .conn
            .call_method(
                Some(self.bus.as_str()),
                &self.menu_path,
                Some(MENU_INTERFACE),
                "GetLayout",
                &(0i32, -1i32, Vec::<String>::new()),
            )
            .await
            .expect("GetLayout");
        let (_revision, (_, _, children)): (u32, RawLayout) = reply.body().deserialize().unwrap();
        children.iter().filter_map(|c| entry(c)).collect()
    }

    /// The labels of the top-level entries, separators left out.
    pub async fn labels(&self) -> Vec<String> {
        self.entries()
            .await
            .into_iter()
            .filter(|e| !e.separator && e.visible)
            .map(|e| e.label)
            .collect()
    }

    /// The first line of the menu: who is signed in where.
    pub async fn status(&self) -> String {
        self.labels().await.into_iter().next().unwrap_or_default()
    }

    /// The top-level entry labelled `label`.
    pub async fn entry(&self, label: &str) -> Entry {
        let entries = self.entries().await;
        entries
            .iter()
            .find(|e| e.label == label)
            .cloned()
            .unwrap_or_else(|| panic!("no “{label}” in the tray menu: {entries:#?}"))
    }

    /// Clicks an entry as a tray host does when the user picks it. It must be enabled.
    pub async fn click<'a>(&self, pick: impl Into<Pick<'a>>) {
        let pick = pick.into();
        let entries: Vec<Entry> = self
            .entries()
            .await
            .into_iter()
            .filter(|e| !e.separator && e.visible)
            .collect();
        let found = match pick {
            Pick::Label(label) => entries.iter().find(|e| e.label == label),
            Pick::Position(n) => entries.get(n),
        };
        let Some(item) = found else {
            panic!("no {pick:?} in the tray menu: {entries:#?}");
        };
        assert!(item.enabled, "{pick:?} is disabled: {item:#?}");
        self.conn
            .call_method(
                Some(self.bus.as_str()),
                &self.menu_path,
                Some(MENU_INTERFACE),
                "Event",
                &(item.id, "clicked", Variant::from(0i32), 0u32),
            )
            .await
            .expect("Event(clicked)");
    }

    /// Waits until `check` accepts the top-level entries, re-reading the menu each time
    /// the app says it changed (`LayoutUpdated`, `ItemsPropertiesUpdated`).
    pub async fn wait_for<T>(&self, what: &str, check: impl Fn(&[Entry]) -> Option<T>) -> T {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(self.bus.as_str())
            .unwrap()
            .interface(MENU_INTERFACE)
            .unwrap()
            .path(self.menu_path.as_ref())
            .unwrap()
            .build();
        // Subscribed before the first read: no change can slip between the two.
        let mut changes = MessageStream::for_match_rule(rule, &self.conn, None)
            .await
            .unwrap();
        let mut last = Vec::new();
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                last = self.entries().await;
                if let Some(found) = check(&last) {
                    return found;
                }
                changes
                    .next()
                    .await
                    .expect("the bus connection stays open")
                    .expect("a message");
            }
        })
        .await;
        match waited {
            Ok(found) => found,
            Err(_) => panic!("timed out after {WAIT:?} waiting for {what}; the menu: {last:#?}"),
        }
    }

    /// Waits until some top-level label satisfies `accept`, and returns it.
    pub async fn wait_for_label(&self, accept: impl Fn(&str) -> bool) -> String {
        self.wait_for("a tray label", |entries| {
            entries
                .iter()
                .filter(|e| !e.separator && e.visible)
                .find(|e| accept(&e.label))
                .map(|e| e.label.clone())
        })
        .await
    }

    /// Waits until the status line (the first entry) satisfies `accept`, and returns it.
    pub async fn wait_for_status(&self, accept: impl Fn(&str) -> bool) -> String {
        self.wait_for("the tray's status line", |entries| {
            entries
                .iter()
                .find(|e| !e.separator && e.visible)
                .filter(|e| accept(&e.label))
                .map(|e| e.label.clone())
        })
        .await
    }
}

/// One dbusmenu layout node `(ia{sv}av)`, as found in a parent's children.
fn entry(value: &Variant<'_>) -> Option<Entry> {
    let value = match value {
        Variant::Value(inner) => inner,
        other => other,
    };
    let Variant::Structure(s) = value else {
        return None;
    };
    let [Variant::I32(id), Variant::Dict(props), Variant::Array(children)] = s.fields() else {
        return None;
    };
    let mut e = Entry {
        id: *id,
        label: String::new(),
        enabled: true,
        visible: true,
        separator: false,
        children: children.inner().iter().filter_map(entry).collect(),
    };
    for (key, value) in props.iter() {
        let value = match value {
            Variant::Value(inner) => inner,
            other => other,
        };
        match (key, value) {
            (Variant::Str(k), Variant::Str(v)) if k.as_str() == "label" => {
                e.label = without_mnemonics(v.as_str())
            }
            (Variant::Str(k), Variant::Str(v)) if k.as_str() == "type" => {
                e.separator = v.as_str() == "separator"
            }
            (Variant::Str(k), Variant::Bool(b)) if k.as_str() == "enabled" => e.enabled = *b,
            (Variant::Str(k), Variant::Bool(b)) if k.as_str() == "visible" => e.visible = *b,
            _ => {}
        }
    }
    Some(e)
}

/// GTK mnemonics: `_` marks the access key, `__` is a literal underscore.
fn without_mnemonics(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                out.push('_');
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits until nobody owns `name` on the bus (`NameOwnerChanged`).
pub async fn wait_until_unowned(bus: &Connection, name: &str) {
    let dbus = DBusProxy::new(bus).await.unwrap();
    let mut changes = dbus
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .unwrap();
    let wanted = BusName::try_from(name).unwrap();
    if !dbus.name_has_owner(wanted).await.unwrap() {
        return;
    }
    within(&format!("{name} to be released"), async {
        loop {
            let signal = changes.next().await.expect("the bus connection stays open");
            if signal.args().is_ok_and(|a| a.new_owner().is_none()) {
                return;
            }
        }
    })
    .await;
}

/// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER),
/// so a process `gio` starts and leaves behind can be waited for here.
fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl: {}", std::io::Error::last_os_error());
}

/// This process's children, running or not yet reaped, with their `comm`.
fn children() -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            out.push((pid, comm));
        }
    }
    out
}

/// Waits for an adopted child (not a `tokio::process::Child`) to exit; its exit code.
async fn wait_adopted(pid: u32) -> i32 {
    let waiting = tokio::task::spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: waits for one specific child of this process; `status` is valid.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(
            r,
            pid as libc::pid_t,
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -libc::WTERMSIG(status)
        }
    });
    match tokio::time::timeout(WAIT, waiting).await {
        Ok(code) => code.unwrap(),
        Err(_) => {
            // SAFETY: signals our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the handler process {pid} did not exit within {WAIT:?}");
        }
    }
}

fn unique_profile_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "e2e-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Watches the X server until a top-level window titled `wanted` is mapped.
fn watch_for_window(display: &str, wanted: &str) -> Result<(), String> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{
        ChangeWindowAttributesAux, ConnectionExt as _, EventMask, MapState,
    };
    use x11rb::protocol::Event;

    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (conn, screen) = x11rb::connect(Some(display)).map_err(|e| err(&e))?;
    let root = conn.setup().roots[screen].root;
    let names = Names::intern(&conn).map_err(|e| err(&e))?;
    let watch = |w| {
        let aux = ChangeWindowAttributesAux::new()
            .event_mask(EventMask::PROPERTY_CHANGE | EventMask::STRUCTURE_NOTIFY);
        // The window may be gone already: then there is nothing to watch.
        let _ = conn.change_window_attributes(w, &aux);
    };
    let matches = |w| {
        let mapped = conn
            .get_window_attributes(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE);
        mapped && names.title(&conn, w).as_deref() == Some(wanted)
    };
    let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY);
    conn.change_window_attributes(root, &aux)
        .map_err(|e| err(&e))?
        .check()
        .map_err(|e| err(&e))?;
    // Windows that exist already (after subscribing: none can be missed in between).
    let tree = conn
        .query_tree(root)
        .map_err(|e| err(&e))?
        .reply()
        .map_err(|e| err(&e))?;
    for &w in &tree.children {
        watch(w);
        if matches(w) {
            return Ok(());
        }
    }
    conn.flush().map_err(|e| err(&e))?;
    loop {
        let window = match conn.wait_for_event().map_err(|e| err(&e))? {
            Event::CreateNotify(e) => {
                watch(e.window);
                conn.flush().map_err(|e| err(&e))?;
                e.window
            }
            Event::MapNotify(e) => e.window,
            Event::PropertyNotify(e) if names.is_title(e.atom) => e.window,
            _ => continue,
        };
        if matches(window) {
            return Ok(());
        }
    }
}

/// The titles of the mapped top-level windows (for failure messages).
pub fn window_titles(display: &str) -> Vec<String> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;

    let Ok((conn, screen)) = x11rb::connect(Some(display)) else {
        return vec!["<no X server>".into()];
    };
    let root = conn.setup().roots[screen].root;
    let Ok(names) = Names::intern(&conn) else {
        return Vec::new();
    };
    let Some(tree) = conn.query_tree(root).ok().and_then(|c| c.reply().ok()) else {
        return Vec::new();
    };
    tree.children
        .iter()
        .filter_map(|&w| names.title(&conn, w))
        .collect()
}

/// The atoms of a window title.
struct Names {
    net_wm_name: u32,
    utf8_string: u32,
}

impl Names {
    fn intern(
        conn: &impl x11rb::connection::Connection,
    ) -> Result<Names, x11rb::errors::ReplyError> {
        use x11rb::protocol::xproto::ConnectionExt as _;
        Ok(Names {
            net_wm_name: conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom,
            utf8_string: conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom,
        })
    }

    fn is_title(&self, atom: u32) -> bool {
        atom == self.net_wm_name || atom == u32::from(x11rb::protocol::xproto::AtomEnum::WM_NAME)
    }

    /// `_NET_WM_NAME`, else `WM_NAME`.
    fn title(&self, conn: &impl x11rb::connection::Connection, w: u32) -> Option<String> {
        use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
        let get = |property: u32, kind: u32| {
            conn.get_property(false, w, property, kind, 0, 1024)
                .ok()?
                .reply()
                .ok()
                .filter(|r| !r.value.is_empty())
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        };
        get(self.net_wm_name, self.utf8_string)
            .or_else(|| get(AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()))
    }
}

/// A link of the app's scheme: `route?query` → `com.nocobase.wecomcompanion://route?query`.
pub fn link(route_and_query: &str) -> String {
    format!("{SCHEME}://{route_and_query}")
}

/// An English string of the app's UI catalogue (`ui/locales/ui.json`).
pub fn ui_text(key: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/locales/ui.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    all[key]["en-US"]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not in {}", path.display()))
        .to_owned()
}
