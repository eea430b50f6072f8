//! Atomic, private on-disk copies of what a service learned from the auth server (keys,
//! revocations).
//!
//! A crash mid-write must never leave a half-written file that the next start would trust or
//! choke on: we write a temporary file in the same directory, fsync it, and rename it over the
//! old copy, which POSIX makes atomic.
//!
//! A service trusts these copies at start (keys it has never fetched in this run, a revocation
//! list), so only its own user may write them, or read them: directories this module creates
//! are 0700, and files are created 0600 from the start (the temporary file, so the rename never
//! exposes a file with wider permissions, whatever the umask).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of the directories this module creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files this module writes.
pub const FILE_MODE: u32 = 0o600;

/// Writes `bytes` to `path` atomically, as a 0600 file, creating missing directories 0700.
/// Blocking: call from `spawn_blocking`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dirs(directory)?;
    let temporary = temporary_path(path);
    // A leftover of a crashed process that had our pid; ours to remove.
    let _ = std::fs::remove_file(&temporary);
    let result = (|| {
        let mut file = private_file_options().open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Creates `directory` and its missing parents as 0700; existing ones are left as they are
/// (the cache file may sit in a directory the service does not own).
fn create_private_dirs(directory: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(directory)
}

/// A new file, never an existing one (so nothing else's mode or content is reused), 0600.
fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options
}

/// A name no other write uses: two writes of the same file in one process (a refresh and a
/// refetch) must not share a temporary file.
fn temporary_path(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}-{}", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
    path.with_file_name(name)
}

/// The file's modification time in Unix seconds; `None` if it cannot be read. A disk copy is
/// never taken as younger than this: whatever the file says of itself, it was not confirmed
/// after it was last written.
pub fn modified_at(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok()?;
    modified.duration_since(std::time::UNIX_EPOCH).ok().map(|since| since.as_secs())
}

/// Writes `bytes` to `path` atomically on the blocking pool and waits for it; a failure is
/// logged (the caller goes on with what it has in memory).
pub async fn write(path: PathBuf, bytes: Vec<u8>, what: &'static str) {
    let shown = path.display().to_string();
    let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    if let Err(error) = result {
        tracing::warn!(%error, path = shown, "failed to persist {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("keys.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn two_writes_never_share_a_temporary_file() {
        let path = Path::new("/cache/keys.json");
        assert_ne!(temporary_path(path), temporary_path(path));
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_created_0700_and_the_file_written_0600_over_a_looser_one() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-cache").join("keys.json");
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let fresh = dir.path().join("new").join("deeper").join("keys.json");

        write_atomically(&path, b"new").unwrap();
        write_atomically(&fresh, b"new").unwrap();

        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(fresh.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }
}
