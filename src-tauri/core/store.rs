//! Atomic JSON files for settings and session metadata (never secrets).
//!
//! A save writes a temporary file in the same directory, fsyncs it and renames it over
//! the old one, so a crash leaves either the old or the new file, never half of one.
//! A file that does not parse is moved aside (`<name>.corrupt-<unix time>`) and
//! reported, never silently overwritten. Files are created 0600: other local users
//! have no business reading which servers and accounts someone uses.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{Error, Result};

/// Reads `path`. A missing file is `T::default()`. A corrupt one is moved aside and
/// comes back as `Err(SettingsCorrupt)`, so the caller can tell the user and go on with
/// defaults without losing the bad file.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(value),
        Err(_) => {
            let moved_to = corrupt_name(path);
            fs::rename(path, &moved_to).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
            Err(Error::SettingsCorrupt {
                path: path.to_owned(),
                moved_to,
            })
        }
    }
}

/// Like [`load`], but a corrupt file yields the defaults plus the error to report.
pub fn load_or_recover<T: DeserializeOwned + Default>(path: &Path) -> Result<(T, Option<Error>)> {
    match load(path) {
        Ok(value) => Ok((value, None)),
        Err(e @ Error::SettingsCorrupt { .. }) => Ok((T::default(), Some(e))),
        Err(e) => Err(e),
    }
}

/// Writes `value` to `path` atomically and durably, mode 0600.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec_pretty(value).expect("settings types always serialise");
    // NamedTempFile is created 0600 on Unix.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.write_all(b"\n").map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Makes the rename itself durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn corrupt_name(path: &Path) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{secs}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Settings {
        name: String,
    }

    #[test]
    fn missing_file_is_default_and_saves_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        let loaded: Settings = load(&path).unwrap();
        assert_eq!(loaded, Settings::default());
        save(
            &path,
            &Settings {
                name: "张三".into(),
            },
        )
        .unwrap();
        let loaded: Settings = load(&path).unwrap();
        assert_eq!(loaded.name, "张三");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        save(&path, &Settings::default()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        fs::write(&path, b"{ not json").unwrap();
        let (value, problem) = load_or_recover::<Settings>(&path).unwrap();
        assert_eq!(value, Settings::default());
        let Some(Error::SettingsCorrupt { moved_to, .. }) = problem else {
            panic!("expected SettingsCorrupt, got {problem:?}");
        };
        assert_eq!(fs::read(&moved_to).unwrap(), b"{ not json");
        assert!(!path.exists());
    }
}
