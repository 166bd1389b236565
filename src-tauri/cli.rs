//! The command line: the same binary as the tray app, over the same core.
//!
//! Every failure is one clear line on stderr and exit code 1; never a panic or a
//! backtrace. Nothing here prints a token, except `token`, which exists to do that.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rust_i18n::t;
use serde_json::json;

use crate::core::error::{Error, Result};
use crate::core::keeper::{self, Kept};
use crate::core::nocobase::choose_wecom;
use crate::core::oauth::discover;
use crate::core::paths::{Paths, SCHEME};
use crate::core::profile::{Origin, Profile, ProfileName, SignInMethod};
use crate::core::secrets::KeyringStore;
use crate::core::session::{now, Grant};
use crate::core::signin::{self, browser, device};
use crate::core::workbench::{self, Workbench};
use crate::core::Context;
use crate::sandbox::{Sandbox, SandboxOptions, TokenPolicy};

#[derive(Parser, Debug)]
#[command(name = "nocobase-wecom-companion", version, about, long_about = None)]
struct Cli {
    /// Profile to use (default: the active one).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Language: zh-CN, en-US or id-ID (default: the system's).
    #[arg(long, global = true)]
    lang: Option<String>,
    /// Use a built-in sandbox server instead of a real NocoBase.
    #[arg(long, global = true)]
    sandbox: bool,
    /// Started by the OS at login (the tray app stays quiet).
    #[arg(long, hide = true)]
    autostart: bool,
    /// Test-only: open this window at start (signin, settings, provision, guide).
    #[arg(long, hide = true)]
    open_window: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Who is signed in, where, and until when.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Sign in with WeCom.
    Signin {
        /// auto, browser or device (embedded needs the desktop app's window).
        #[arg(long, default_value = "auto")]
        method: String,
    },
    /// Sign out: revoke on the server and forget the session here.
    Signout,
    /// Print a currently valid access token (refreshing it first if needed).
    Token {
        /// Refresh now, even if the current token is still fresh.
        #[arg(long)]
        refresh: bool,
    },
    /// Open the workbench in the browser.
    Open {
        /// The mobile workbench instead of the desktop one.
        #[arg(long)]
        mobile: bool,
        /// A path on the server, e.g. /admin/orders.
        path: Option<String>,
    },
    /// Add, list, switch and remove servers.
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Check the server, the WeCom authenticator, the keyring and the link handler.
    Doctor,
    /// Run the sandbox server (a stand-in NocoBase + WeCom) until Ctrl-C.
    Sandbox(SandboxArgs),
}

#[derive(Subcommand, Debug)]
enum ProfilesCommand {
    /// Add a server: `profiles add work https://nocobase.example.com`.
    Add(AddArgs),
    /// List the profiles (* marks the active one).
    List,
    /// Make a profile the active one.
    Use { name: String },
    /// Remove a profile and forget its session.
    Remove { name: String },
}

#[derive(Args, Debug)]
struct AddArgs {
    name: String,
    origin: String,
    /// The WeCom authenticator's name (needed when the server has several).
    #[arg(long)]
    authenticator: Option<String>,
    #[arg(long)]
    desktop_path: Option<String>,
    #[arg(long)]
    mobile_path: Option<String>,
    /// The WeCom workbench home link (default: origin + mobile path).
    #[arg(long)]
    home_link: Option<String>,
    #[arg(long)]
    method: Option<String>,
    /// Do not contact the server.
    #[arg(long)]
    no_check: bool,
}

#[derive(Args, Debug)]
struct SandboxArgs {
    #[arg(long, default_value_t = 13080)]
    port: u16,
    /// Accept custom-scheme redirects, like a standard OAuth provider (2.2 does not).
    #[arg(long)]
    custom_scheme_redirects: bool,
    /// Behave like a NocoBase without the OAuth provider (1.x).
    #[arg(long)]
    no_oauth_provider: bool,
    /// Turn off the WeCom authenticator's automatic login.
    #[arg(long)]
    no_auto_login: bool,
    /// Token policy as token/renew-limit/session, e.g. 30s/40s/150s.
    #[arg(long)]
    token_policy: Option<String>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // The OS starts the app with a deep link as its only argument: that is the tray
    // app (the deep-link plugin reads the link itself).
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 && args[1].starts_with(&format!("{}:", crate::core::paths::SCHEME)) {
        return run_shell(None, crate::shell::ShellOptions::default());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.command.is_none() {
        let options = crate::shell::ShellOptions {
            sandbox: cli.sandbox,
            open_window: cli.open_window.clone(),
            autostart: cli.autostart,
            desktop: true,
        };
        return run_shell(cli.lang.as_deref(), options);
    }
    crate::i18n::apply(crate::i18n::choose(cli.lang.as_deref()));
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", t!("cli.error", message = e.message()));
            ExitCode::FAILURE
        }
    }
}

/// The tray app: language from `--lang`, else Settings, else the system.
fn run_shell(lang: Option<&str>, options: crate::shell::ShellOptions) -> ExitCode {
    init_logging();
    let ctx = if options.sandbox {
        Context::for_os_at(Paths::from_os().for_sandbox())
    } else {
        Context::for_os()
    };
    let saved = ctx.load_profiles().ok().and_then(|(p, _)| p.language);
    crate::i18n::apply(crate::i18n::choose(lang.or(saved.as_deref())));
    let ctx = ctx.with_locale(rust_i18n::locale().to_string());
    crate::shell::run(ctx, options)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NWC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(Command::Sandbox(args)) = &cli.command {
        return run_sandbox(args).await;
    }
    // `--sandbox`: an in-process sandbox, with files of its own.
    let ctx = if cli.sandbox {
        Context::for_os_at(Paths::from_os().for_sandbox())
    } else {
        Context::for_os()
    }
    .with_locale(rust_i18n::locale().to_string());
    let _sandbox = match cli.sandbox {
        true => Some(crate::sandbox::start_in_process(&ctx).await?),
        false => None,
    };
    let profile = cli.profile.as_deref();
    match cli.command {
        None => unreachable!("no subcommand runs the tray app"),
        Some(Command::Status { json }) => status(&ctx, profile, json).await,
        Some(Command::Signin { method }) => {
            signin(&ctx, profile, method.parse()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Signout) => signout(&ctx, profile).await,
        Some(Command::Token { refresh }) => token(&ctx, profile, refresh).await,
        Some(Command::Open { mobile, path }) => open(&ctx, profile, mobile, path.as_deref()),
        Some(Command::Profiles(cmd)) => profiles(&ctx, cmd).await,
        Some(Command::Doctor) => doctor(&ctx, profile).await,
        Some(Command::Sandbox(_)) => unreachable!("handled above"),
    }
}

/// Loads the profiles, telling the user (once) if the file was corrupt and set aside.
fn load_profiles(ctx: &Context) -> Result<crate::core::profile::Profiles> {
    let (profiles, problem) = ctx.load_profiles()?;
    if let Some(problem) = problem {
        eprintln!("{}", t!("cli.warning", message = problem.message()));
    }
    Ok(profiles)
}

fn selected(ctx: &Context, name: Option<&str>) -> Result<Profile> {
    Ok(load_profiles(ctx)?.select(name)?.clone())
}

async fn status(ctx: &Context, name: Option<&str>, as_json: bool) -> Result<ExitCode> {
    let profile = selected(ctx, name)?;
    let (session, ended) = ctx.sessions.peek(profile.name.as_str())?;
    // Only a session whose tokens are really in the store counts as signed in.
    let session = match session {
        Some(_) => ctx.sessions.load(profile.name.as_str())?.map(|(s, _)| s),
        None => None,
    };
    if as_json {
        let value = json!({
            "profile": profile.name.as_str(),
            "origin": profile.origin.as_str(),
            "authenticator": profile.authenticator,
            "signedIn": session.is_some(),
            "user": session.as_ref().map(|s| &s.user),
            "method": session.as_ref().map(|s| s.method.as_str()),
            "grant": session.as_ref().map(|s| match s.grant { Grant::OAuth { .. } => "oauth", Grant::NocoBaseToken => "nocobase-token" }),
            "signedInAt": session.as_ref().map(|s| s.signed_in_at),
            "expiresAt": session.as_ref().and_then(|s| s.expires_at),
            "renewedAt": session.as_ref().and_then(|s| s.renewed_at),
            "lastEnd": ended.as_ref().map(|e| json!({"reason": e.reason, "at": e.at, "message": e.reason.message()})),
            "keyring": ctx.keyring_problem.is_none(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}",
        t!(
            "cli.status.profile",
            name = profile.name,
            origin = profile.origin
        )
    );
    match &session {
        Some(s) => {
            println!(
                "{}",
                t!(
                    "cli.status.signed_in",
                    name = s.user.display_name(),
                    host = profile.origin.host(),
                    method = s.method
                )
            );
            if let Some(exp) = s.expires_at {
                println!("{}", t!("cli.status.expires", when = relative(exp - now())));
            }
        }
        None => {
            println!("{}", t!("cli.status.signed_out"));
            if let Some(e) = ended {
                println!("{}", t!("cli.status.last_end", reason = e.reason.message()));
            }
        }
    }
    if let Some(problem) = &ctx.keyring_problem {
        println!("{}", t!("cli.keyring_memory_only", detail = problem));
    }
    Ok(ExitCode::SUCCESS)
}

fn relative(secs: i64) -> String {
    if secs <= 0 {
        return t!("time.now").into();
    }
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        t!("time.days_hours", d = d, h = h).into()
    } else if h > 0 {
        t!("time.hours_minutes", h = h, m = m).into()
    } else {
        t!("time.minutes", m = m.max(1)).into()
    }
}

fn has_display() -> bool {
    cfg!(any(windows, target_os = "macos"))
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

async fn signin(ctx: &Context, name: Option<&str>, wanted: SignInMethod) -> Result<()> {
    let profile = selected(ctx, name)?;
    if let Some(problem) = &ctx.keyring_problem {
        eprintln!("{}", t!("cli.keyring_memory_only", detail = problem));
    }
    let wanted = if wanted == SignInMethod::Auto {
        profile.method
    } else {
        wanted
    };
    let metadata = discover(&ctx.http, &profile.origin).await?;
    let method = signin::resolve_method(
        wanted,
        metadata.is_some(),
        metadata.as_ref().is_some_and(|m| m.supports_device_flow()),
        false,
        has_display(),
    )
    .map_err(|e| match e {
        Error::ProviderMissing { .. } => Error::ProviderMissing {
            origin: profile.origin.to_string(),
        },
        other => other,
    })?;
    let session = match method {
        SignInMethod::Device => {
            let started = device::begin(ctx, &profile).await?;
            let url = started.verification_uri_complete();
            println!("{}", t!("cli.device.scan"));
            if let Some(qr) = device::terminal_qr(&url) {
                println!("{qr}");
            }
            println!(
                "{}",
                t!(
                    "cli.device.or_open",
                    url = started.verification_uri(),
                    code = started.user_code()
                )
            );
            println!("{}", t!("cli.device.link", url = url));
            println!("{}", t!("cli.device.first_time"));
            let _ = std::io::stdout().flush();
            started.finish(ctx, &profile).await?
        }
        _ => {
            let progress = |p: browser::Progress| {
                if let browser::Progress::OpenBrowser { url } = p {
                    println!("{}", t!("cli.browser.opening"));
                    println!("{}", t!("cli.browser.url", url = url));
                    let _ = std::io::stdout().flush();
                }
            };
            browser::sign_in(ctx, &profile, browser::BrowserOptions::default(), &progress).await?
        }
    };
    remember_wecom_authorized(ctx, &profile)?;
    println!(
        "{}",
        t!(
            "cli.signed_in",
            name = session.user.display_name(),
            host = profile.origin.host()
        )
    );
    Ok(())
}

/// A WeCom sign-in that worked means the first-time authorization is done.
fn remember_wecom_authorized(ctx: &Context, profile: &Profile) -> Result<()> {
    if profile.wecom_authorized {
        return Ok(());
    }
    let mut all = load_profiles(ctx)?;
    if let Some(p) = all.get_mut(profile.name.as_str()) {
        p.wecom_authorized = true;
        ctx.save_profiles(&all)?;
    }
    Ok(())
}

async fn signout(ctx: &Context, name: Option<&str>) -> Result<ExitCode> {
    let profile = selected(ctx, name)?;
    if crate::core::signout::sign_out(ctx, &profile).await? {
        println!("{}", t!("cli.signed_out", host = profile.origin.host()));
    } else {
        println!("{}", t!("cli.signout.not_signed_in"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn token(ctx: &Context, name: Option<&str>, refresh: bool) -> Result<ExitCode> {
    let profile = selected(ctx, name)?;
    let kept = keeper::keep_alive(ctx, &profile, refresh).await?;
    let (_, tokens) = match kept {
        Kept::Fresh(s, t) | Kept::Renewed(s, t) => (s, t),
    };
    println!("{}", tokens.access.expose());
    Ok(ExitCode::SUCCESS)
}

fn open(ctx: &Context, name: Option<&str>, mobile: bool, path: Option<&str>) -> Result<ExitCode> {
    let profile = selected(ctx, name)?;
    let which = if mobile {
        Workbench::Mobile
    } else {
        Workbench::Desktop
    };
    let url = workbench::url(&profile, which, path)?;
    ctx.opener.open(&url)?;
    println!("{}", t!("cli.opened", url = url));
    Ok(ExitCode::SUCCESS)
}

async fn profiles(ctx: &Context, cmd: ProfilesCommand) -> Result<ExitCode> {
    let mut all = load_profiles(ctx)?;
    match cmd {
        ProfilesCommand::Add(args) => {
            let name = ProfileName::parse(&args.name)?;
            let origin = Origin::parse(&args.origin)?;
            if all.get(name.as_str()).is_some() {
                return Err(Error::ProfileExists {
                    name: name.to_string(),
                });
            }
            let authenticator = if args.no_check {
                args.authenticator.clone().unwrap_or_else(|| "wecom".into())
            } else {
                let nocobase = ctx.nocobase(&origin);
                let list = nocobase.public_authenticators().await?;
                let chosen = choose_wecom(&origin, &list, args.authenticator.as_deref())?;
                let provider = discover(&ctx.http, &origin).await.ok().flatten().is_some();
                println!(
                    "{}",
                    if provider {
                        t!("cli.profiles.provider_found")
                    } else {
                        t!("cli.profiles.provider_missing")
                    }
                );
                chosen
            };
            let mut profile = Profile::new(name, origin, authenticator);
            if let Some(p) = &args.desktop_path {
                profile.desktop_path = crate::core::profile::WorkbenchPath::parse(p)?;
            }
            if let Some(p) = &args.mobile_path {
                profile.mobile_path = crate::core::profile::WorkbenchPath::parse(p)?;
            }
            if let Some(link) = &args.home_link {
                profile.set_home_link(link)?;
            }
            if let Some(m) = &args.method {
                profile.method = m.parse()?;
            }
            let summary = t!(
                "cli.profiles.added",
                name = profile.name,
                origin = profile.origin,
                authenticator = profile.authenticator
            );
            all.add(profile)?;
            ctx.save_profiles(&all)?;
            println!("{summary}");
        }
        ProfilesCommand::List => {
            if all.profiles.is_empty() {
                println!("{}", t!("cli.profiles.none"));
            }
            for p in &all.profiles {
                let mark = if all.active.as_ref() == Some(&p.name) {
                    "*"
                } else {
                    " "
                };
                println!("{mark} {:<16} {}  ({})", p.name, p.origin, p.authenticator);
            }
        }
        ProfilesCommand::Use { name } => {
            all.use_profile(&name)?;
            ctx.save_profiles(&all)?;
            println!("{}", t!("cli.profiles.now_active", name = name));
        }
        ProfilesCommand::Remove { name } => {
            let removed = all.remove(&name)?;
            ctx.save_profiles(&all)?;
            ctx.sessions.forget(removed.name.as_str())?;
            println!("{}", t!("cli.profiles.removed", name = name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(PartialEq, Clone, Copy)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

fn report(verdict: Verdict, line: String, fix: Option<String>) {
    let tag = match verdict {
        Verdict::Ok => "ok  ",
        Verdict::Warn => "warn",
        Verdict::Fail => "FAIL",
    };
    match fix {
        Some(fix) => println!("{tag}  {line}\n      → {fix}"),
        None => println!("{tag}  {line}"),
    }
}

async fn doctor(ctx: &Context, name: Option<&str>) -> Result<ExitCode> {
    let mut worst = Verdict::Ok;
    let mut note = |v: Verdict, line: String, fix: Option<String>| {
        if v == Verdict::Fail || (v == Verdict::Warn && worst == Verdict::Ok) {
            worst = v;
        }
        report(v, line, fix);
    };
    let profile = match selected(ctx, name) {
        Ok(p) => p,
        Err(e) => {
            note(
                Verdict::Fail,
                e.message(),
                Some(t!("doctor.fix.add_profile").into()),
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    note(
        Verdict::Ok,
        t!(
            "doctor.profile",
            name = profile.name,
            origin = profile.origin
        )
        .into(),
        None,
    );
    let nocobase = ctx.nocobase(&profile.origin);
    match nocobase.app_info().await {
        Ok(info) => {
            note(
                Verdict::Ok,
                t!("doctor.reachable", origin = profile.origin).into(),
                None,
            );
            if profile.origin.url().scheme() == "https" {
                note(Verdict::Ok, t!("doctor.tls_ok").into(), None);
            } else {
                note(Verdict::Warn, t!("doctor.tls_http_loopback").into(), None);
            }
            let version = info.version.unwrap_or_else(|| "?".into());
            note(
                Verdict::Ok,
                t!("doctor.version", version = version).into(),
                None,
            );
        }
        Err(e) => {
            let fix = match &e {
                Error::Tls { .. } => t!("doctor.fix.tls"),
                Error::NotFound { .. } | Error::NotJson { .. } => t!("doctor.fix.not_nocobase"),
                _ => t!("doctor.fix.unreachable"),
            };
            note(Verdict::Fail, e.message(), Some(fix.into()));
            return Ok(ExitCode::FAILURE);
        }
    }
    match nocobase.public_authenticators().await {
        Ok(list) => match choose_wecom(&profile.origin, &list, Some(&profile.authenticator)) {
            Ok(_)
                if list
                    .iter()
                    .any(|a| a.name == profile.authenticator && a.is_wecom()) =>
            {
                note(
                    Verdict::Ok,
                    t!("doctor.wecom_found", name = profile.authenticator).into(),
                    None,
                )
            }
            Ok(_) => note(
                Verdict::Warn,
                t!("doctor.wecom_not_wecom", name = profile.authenticator).into(),
                None,
            ),
            Err(e) => note(
                Verdict::Fail,
                e.message(),
                Some(t!("doctor.fix.authenticator").into()),
            ),
        },
        Err(e) => note(Verdict::Fail, e.message(), None),
    }
    match discover(&ctx.http, &profile.origin).await {
        Ok(Some(m)) => note(
            Verdict::Ok,
            t!(
                "doctor.provider_found",
                device = if m.supports_device_flow() {
                    "✓"
                } else {
                    "✗"
                }
            )
            .into(),
            None,
        ),
        Ok(None) => note(
            Verdict::Warn,
            t!("doctor.provider_missing").into(),
            Some(t!("doctor.fix.provider").into()),
        ),
        Err(e) => note(Verdict::Warn, e.message(), None),
    }
    match KeyringStore::new(crate::core::paths::APP_ID).probe() {
        Ok(()) => note(Verdict::Ok, t!("doctor.keyring_ok").into(), None),
        Err(e) => note(
            Verdict::Warn,
            t!("doctor.keyring_missing", detail = e.message()).into(),
            Some(t!("doctor.fix.keyring").into()),
        ),
    }
    match scheme_handler() {
        Some(handler) => note(
            Verdict::Ok,
            t!("doctor.scheme_ok", scheme = SCHEME, handler = handler).into(),
            None,
        ),
        None => note(
            Verdict::Warn,
            t!("doctor.scheme_missing", scheme = SCHEME).into(),
            Some(t!("doctor.fix.scheme").into()),
        ),
    }
    if !profile.wecom_authorized {
        note(
            Verdict::Warn,
            t!("doctor.never_signed_in").into(),
            Some(t!("doctor.fix.first_login").into()),
        );
    }
    Ok(if worst == Verdict::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The desktop entry registered for our scheme, where the OS can tell.
fn scheme_handler() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let out = std::process::Command::new("xdg-mime")
        .args(["query", "default", &format!("x-scheme-handler/{SCHEME}")])
        .output()
        .ok()?;
    let handler = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!handler.is_empty()).then_some(handler)
}

fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

fn sandbox_options(args: &SandboxArgs) -> Result<SandboxOptions> {
    let mut options = SandboxOptions {
        port: args.port,
        custom_scheme_redirects: args.custom_scheme_redirects,
        oauth_provider: !args.no_oauth_provider,
        wecom_auto_login: !args.no_auto_login,
        ..SandboxOptions::default()
    };
    if let Some(policy) = &args.token_policy {
        let parts: Vec<_> = policy.split('/').map(parse_duration).collect();
        match parts.as_slice() {
            [Some(token), Some(renew), Some(session)] => {
                options.token_policy = TokenPolicy {
                    token_expiration: *token,
                    expired_token_renew_limit: *renew,
                    session_expiration: *session,
                }
            }
            _ => {
                return Err(Error::InvalidMethod {
                    input: policy.clone(),
                })
            }
        }
    }
    Ok(options)
}

async fn run_sandbox(args: &SandboxArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::start(sandbox_options(args)?)
        .await
        .map_err(|source| Error::Io {
            path: format!("127.0.0.1:{}", args.port).into(),
            source,
        })?;
    let origin = sandbox.origin();
    println!("{}", t!("cli.sandbox.running", url = origin));
    println!("{}", t!("cli.sandbox.try", url = origin));
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_policies() {
        assert_eq!(
            parse_duration("30s"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            parse_duration("7d"),
            Some(std::time::Duration::from_secs(604800))
        );
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("10y"), None);
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
