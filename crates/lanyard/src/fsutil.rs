//! Files and folders that hold secrets: the data dir is private to the user running Lanyard
//! (mode 0700 on Unix), the files in it 0600. New files are created with that mode before
//! any byte is written; files and folders left with wider modes by an earlier start (or an
//! earlier version) are narrowed at startup.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    // A temporary file left by an interrupted write may have any mode, and opening it would
    // keep that mode: start from a new file.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", tmp.display()));
        }
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Creates `dir` if missing (mode 0700) and narrows an existing one to its owner.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    restrict(dir);
    Ok(())
}

/// Narrows each of `paths` that exists to its owner (0600 for a file); missing ones are
/// skipped (SQLite's -wal and -shm come and go).
pub fn restrict_files<P: AsRef<Path>>(paths: &[P]) {
    for p in paths {
        restrict(p.as_ref());
    }
}

/// Takes the group and other permission bits off `path`, when it has any. A refusal (the
/// path belongs to another user, as a mounted volume may) is logged, not fatal: Lanyard can
/// still work, and the operator learns the folder is wider open than it should be.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the permissions");
                return;
            }
        };
        if mode & 0o077 == 0 {
            return;
        }
        let narrowed = std::fs::Permissions::from_mode(mode & 0o700);
        if let Err(e) = std::fs::set_permissions(path, narrowed) {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot make this private to the user running Lanyard; other local users may read it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn existing_folders_and_files_are_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("lanyard.db");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_dir(&dir).unwrap();
        restrict_files(&[file.clone(), dir.join("missing")]);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        let new = tmp.path().join("new/nested");
        private_dir(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
    }

    #[test]
    fn a_stale_temporary_file_does_not_lend_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("master.key");
        let stale = path.with_extension("tmp");
        std::fs::write(&stale, b"old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"secret").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }
}
