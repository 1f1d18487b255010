//! SQLite is single-process: `postdesk run` holds an exclusive `flock` on
//! `<database file>.lock` while it runs, and a second `postdesk run` on the
//! same database stops at once with a message saying so (several replicas
//! need PostgreSQL). One-shot commands (`ingest`, `import`, …) do not take
//! the lock: SQLite serialises their writes itself. The lock goes with the
//! process, however it ends.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error(
        "another `postdesk run` is already using the SQLite database {0}: SQLite serves one \
         daemon; stop the other one, or use PostgreSQL to run several replicas"
    )]
    Held(String),
    #[error("cannot open the lock file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

/// Held while the daemon runs.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes an exclusive `flock` on `file` without waiting; false when another
/// open file (of this process or another) holds it. Released on close.
pub fn try_lock_exclusive(file: &File) -> bool {
    // SAFETY: flock on a file descriptor the caller owns; no memory is involved.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The database file of a `sqlite:` URL (`None`: not SQLite, or in memory).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Takes the daemon's lock for the database at `url`; `Ok(None)` for
/// PostgreSQL, where replicas share the work.
pub fn acquire(url: &str) -> Result<Option<RunLock>, RunLockError> {
    let Some(db) = sqlite_path(url) else {
        return Ok(None);
    };
    let mut lock_path = db.clone().into_os_string();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| RunLockError::Open {
            path: lock_path.display().to_string(),
            source,
        })?;
    if !try_lock_exclusive(&file) {
        return Err(RunLockError::Held(db.display().to_string()));
    }
    Ok(Some(RunLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_file_comes_out_of_the_url() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/postdesk/postdesk.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/postdesk/postdesk.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data.db"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://db/postdesk"), None);
    }

    #[test]
    fn a_second_daemon_on_the_same_file_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let first = acquire(&url).unwrap().expect("a lock for SQLite");
        let second = acquire(&url).unwrap_err();
        assert!(second.to_string().contains("use PostgreSQL"), "{second}");
        drop(first);
        assert!(acquire(&url).unwrap().is_some());
        assert!(acquire("postgres://x/y").unwrap().is_none());
    }
}
