// The same binary is the tray app and the CLI; `cli` decides which.
#![cfg_attr(all(not(debug_assertions), windows), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    nocobase_wecom_companion::cli::main()
}
