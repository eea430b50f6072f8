//! Files only the service's own user may read: the data directory, SQLite databases, secrets.
//!
//! A database under the data dir holds password hashes, refresh-token hashes and, without a
//! key encryption key, private signing keys: a local user who can read it can forge tokens.
//! So the data directory is 0700 and what it holds 0600, whatever the umask, and an existing
//! directory or file with looser permissions is tightened (and said so) at start.

use std::path::Path;

use anyhow::Context as _;

/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents as 0700 (parents that exist are left alone), and
/// tightens `dir` itself to 0700 if it exists with more.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    tighten(dir, DIR_MODE)
}

/// Creates `file` empty as 0600 if it is missing, and tightens it to 0600 if it exists with
/// more. Its content is left alone.
pub fn private_file(file: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(FILE_MODE);
    }
    options.open(file).with_context(|| format!("failed to create {}", file.display()))?;
    tighten(file, FILE_MODE)
}

/// Tightens `path` to `mode` if it grants more than `mode` (only on Unix; elsewhere a no-op).
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let current = std::fs::metadata(path)
            .with_context(|| format!("failed to read the permissions of {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if current & !mode != 0 {
            tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"),
                "tightening permissions: only this service's user may read it");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("failed to restrict {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        private_dir(&dir).unwrap();
        private_file(&dir.join("auth.sqlite")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("auth.sqlite")), 0o600);
    }

    #[test]
    fn loose_existing_ones_are_tightened_and_keep_their_content() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "kept").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

        private_dir(&dir).unwrap();
        private_file(&file).unwrap();

        assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept");
    }
}
