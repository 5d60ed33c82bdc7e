//! Files hopscope writes (`--record`, `--dot`, `-o`, the explorer's graph
//! exports), created so that nobody can redirect them: hopscope runs as
//! root, often in a world-writable directory.
//!
//! - A new file is created with `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600: a
//!   link planted at the path (dangling or not) is never followed, and what
//!   is written is readable by its owner only (traffic is private).
//! - An existing path is refused (a usage error, exit status 2) unless the
//!   user said `--force`. Even then a symbolic link is not followed, and a
//!   regular file with other hard links is not truncated; a regular file is
//!   truncated and made 0600, a device or FIFO (`/dev/null`) is written to.
//! - Paths are checked when the run starts, before anything is loaded, so
//!   a bad path never costs a whole trace.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

use crate::safe_text::Shown;
use crate::UsageError;

/// Why an output file was not opened. `Refused` is the user's to fix
/// (exit status 2); `Io` is the system's.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot create the {what} {path}: {source}")]
    Io {
        what: String,
        path: String,
        source: io::Error,
    },
}

/// A path that cannot be written is bad input (exit status 2), as documented.
impl From<OutputError> for UsageError {
    fn from(e: OutputError) -> UsageError {
        UsageError(e.to_string())
    }
}

/// Creates `path` for writing as described in the module doc. `what` names
/// the file in messages (`recording`, `DOT graph`, `trace output`).
pub fn create(path: &Path, force: bool, what: &str) -> Result<File, OutputError> {
    let shown = Shown(&path.to_string_lossy()).to_string();
    let nofollow = OFlag::O_NOFOLLOW.bits() | OFlag::O_CLOEXEC.bits();
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow)
        .open(path)
    {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(OutputError::Io {
                what: what.to_owned(),
                path: shown,
                source,
            })
        }
    }
    let meta = std::fs::symlink_metadata(path).map_err(|source| OutputError::Io {
        what: what.to_owned(),
        path: shown.clone(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(OutputError::Refused(format!(
            "{shown} is a symbolic link; hopscope does not write its {what} through one \
             (not even with --force): choose another path"
        )));
    }
    if !force {
        return Err(OutputError::Refused(format!(
            "{shown} exists; hopscope does not overwrite it unless --force is given"
        )));
    }
    if meta.is_dir() {
        return Err(OutputError::Refused(format!("{shown} is a directory")));
    }
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(nofollow)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(nix::libc::ELOOP) => OutputError::Refused(format!(
                "{shown} became a symbolic link; hopscope does not write through one"
            )),
            _ => OutputError::Io {
                what: what.to_owned(),
                path: shown.clone(),
                source,
            },
        })?;
    // What was opened, not what the path named a moment ago.
    let meta = file.metadata().map_err(|source| OutputError::Io {
        what: what.to_owned(),
        path: shown.clone(),
        source,
    })?;
    if meta.is_file() {
        if meta.nlink() > 1 {
            return Err(OutputError::Refused(format!(
                "{shown} has {} hard links; hopscope does not truncate a file that has others",
                meta.nlink()
            )));
        }
        file.set_len(0)
            .and_then(|()| file.set_permissions(Permissions::from_mode(0o600)))
            .map_err(|source| OutputError::Io {
                what: what.to_owned(),
                path: shown.clone(),
                source,
            })?;
    }
    Ok(file)
}

/// A file name no one can guess in advance: `{stem}-{random}.{ext}`.
pub fn unpredictable_name(stem: &str, ext: &str) -> String {
    let mut b = [0u8; 6];
    let ok = File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut b));
    if ok.is_err() {
        // Still unguessable enough to an attacker who cannot see the clock.
        let t = crate::clock::monotonic_ns() ^ u64::from(std::process::id()) << 40;
        b.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{stem}-{hex}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut f = create(&p, false, "test").unwrap();
        f.write_all(b"x").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn existing_files_need_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, "old").unwrap();
        let e = create(&p, false, "test").unwrap_err();
        assert!(
            matches!(e, OutputError::Refused(ref m) if m.contains("exists")),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        create(&p, true, "test").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nothing"), &dangling).unwrap();
        for force in [false, true] {
            for p in [&link, &dangling] {
                let e = create(p, force, "test").unwrap_err();
                assert!(
                    matches!(e, OutputError::Refused(ref m) if m.contains("symbolic link")),
                    "{e}"
                );
            }
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o7777, 0o644);
        assert!(!dir.path().join("nothing").exists());
        // A second hard link is not truncated either.
        let hard = dir.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        assert!(create(&hard, true, "test").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn devices_take_force() {
        assert!(create(Path::new("/dev/null"), false, "test").is_err());
        create(Path::new("/dev/null"), true, "test").unwrap();
    }

    #[test]
    fn names_differ() {
        let a = unpredictable_name("hopscope-flow-3", "dot");
        let b = unpredictable_name("hopscope-flow-3", "dot");
        assert_ne!(a, b);
        assert!(
            a.starts_with("hopscope-flow-3-") && a.ends_with(".dot"),
            "{a}"
        );
    }
}
