//! The desktop app: a thin Tauri shell over the core. A tray that knows who is signed
//! in, windows created on demand, deep links, notifications, start at login.
//!
//! Built through [`build`], generic over the runtime, so MockRuntime tests run the
//! same setup as the real app.

pub mod actions;
pub mod commands;
pub mod deeplink;
pub mod notify;
pub mod state;
pub mod tray;
pub mod tray_model;
pub mod windows;

use std::process::ExitCode;
use std::sync::Arc;

use tauri::{Builder, Manager, RunEvent, Runtime};

use crate::core::paths::SCHEME;
use crate::core::Context;
use state::Shell;

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct ShellOptions {
    /// Point the app at an in-process sandbox (a `sandbox` profile, made active).
    pub sandbox: bool,
    /// Test-only: open this window at start (WebDriver needs a window to attach to).
    pub open_window: Option<String>,
    /// Started by the OS at login: stay quiet.
    pub autostart: bool,
    /// Whether to register single-instance and build the tray (off in MockRuntime tests).
    pub desktop: bool,
}

/// Registers plugins, commands and the start-up work. Single-instance comes first, so
/// a second launch hands its link over before anything else runs.
pub fn build<R: Runtime>(builder: Builder<R>, shell: Shell, options: ShellOptions) -> Builder<R> {
    let mut builder = builder;
    if options.desktop {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // Links among the arguments were already handled by the deep-link plugin.
            let only_links = argv
                .iter()
                .skip(1)
                .all(|a| a.starts_with(&format!("{SCHEME}:")));
            if argv.len() <= 1 || !only_links {
                let label = if app.state::<Shell>().tray_state().signed_in() {
                    windows::SETTINGS
                } else {
                    windows::SIGNIN
                };
                let _ = windows::open(app, label);
            }
        }));
    }
    builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--autostart"]),
        ))
        .manage(shell)
        .invoke_handler(tauri::generate_handler![
            commands::ui_strings,
            commands::app_status,
            commands::signin_start,
            commands::signin_wait,
            commands::signin_cancel,
            commands::guide_open,
            commands::workbench_open,
            commands::window_close,
            commands::settings_get,
            commands::server_check,
            commands::profile_save,
            commands::profile_use,
            commands::profile_remove,
            commands::language_set,
            commands::autostart_set,
            commands::provision_get,
            commands::provision_apply,
            commands::provision_cancel,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            if options.desktop && !tray::create(&handle) {
                // No tray on this desktop: keep the app reachable through a window.
                let _ = windows::open(&handle, windows::SIGNIN);
            }
            state::start(&handle);
            deeplink::setup(&handle, options.desktop);
            let shell = handle.state::<Shell>();
            let no_profile = shell.active_profile().is_err();
            if let Some(label) = &options.open_window {
                let _ = windows::open(&handle, label);
            } else if no_profile && !options.autostart {
                // First launch: nothing to sign in to yet.
                let _ = windows::open(&handle, windows::SETTINGS);
            } else if options.sandbox && !shell.derive_state().signed_in() {
                // Trying the app out: show the sign-in right away (a tray icon alone can
                // be invisible, e.g. on GNOME without the AppIndicator extension).
                let _ = windows::open(&handle, windows::SIGNIN);
            }
            Ok(())
        })
}

/// The app's configuration and assets, compiled in from `tauri.conf.json` and `ui/`.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Runs the tray app until Quit.
pub fn run(ctx: Context, options: ShellOptions) -> ExitCode {
    let ctx = Arc::new(ctx);
    let shell = Shell::new(ctx.clone());
    if options.sandbox {
        match tauri::async_runtime::block_on(crate::sandbox::start_in_process(&ctx)) {
            Ok(sandbox) => *shell.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(sandbox),
            Err(e) => {
                eprintln!("{}", e.message());
                return ExitCode::FAILURE;
            }
        }
    }
    let options = ShellOptions {
        desktop: true,
        ..options
    };
    let app =
        match build(tauri::Builder::default(), shell, options).build(tauri::generate_context!()) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
    println!("ready");
    app.run(|_app, event| {
        // Closing the last window must not quit a tray app; only Quit does (exit code set).
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}
