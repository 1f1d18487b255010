//! The in-flight journal of the outbox sender: closes the gap between "the
//! SMTP server has the whole message" and "the database says sent".
//!
//! Once the final `.` of DATA is on the wire the server delivers the message,
//! even if we die before reading its reply (the kernel still hands it the
//! bytes). The database, though, is only told after the reply — on SQLite
//! possibly after waiting for the write lock behind an ingest transaction.
//! A `kill -9` in that gap used to leave the row claimed but unsent, and the
//! mail went out twice after the lease ran out.
//!
//! So each sender owns one small journal file, locked with `flock` for as long
//! as the sender lives. Right before the final `.` is written it records the
//! outbox id; once the database has recorded the outcome it blanks the file.
//! A file that can be locked belongs to a dead sender, and an id in it is a
//! mail the server already has: [`recover`] marks it sent. The only window
//! left is between the journal write and the `.` write — two syscalls apart —
//! where a crash loses that one mail's send (it is marked sent unconfirmed,
//! with a note) instead of doubling it.
//!
//! Nothing else belongs here: the SMTP dialogue is in `mail::smtp`, the rows
//! in `db::outbox`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Fixed record size: a 20-digit id and a newline. The file is written in
/// place, never grown or truncated, so recording needs no new disk blocks.
const RECORD: usize = 21;
const BLANK: [u8; RECORD] = [b' '; RECORD];

#[derive(Debug, thiserror::Error)]
#[error("send journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory holding every sender's journal under `storage.dir`.
pub fn journal_dir(storage_dir: &Path) -> PathBuf {
    storage_dir.join("outbox-inflight")
}

/// One sender's journal; the lock is held until it is dropped. Its file name
/// is the sender's identity, which the outbox rows it claims carry.
#[derive(Debug)]
pub struct SendJournal {
    /// `None` once abandoned.
    file: Option<File>,
    path: PathBuf,
    owner: String,
}

impl SendJournal {
    /// Creates and locks a fresh journal file in `dir`.
    pub fn create(dir: &Path) -> Result<SendJournal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let path = dir.join(&owner);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        if !crate::run_lock::try_lock_exclusive(&file) {
            return Err(JournalError {
                path,
                source: std::io::Error::other("could not lock a file we just created"),
            });
        }
        file.write_all_at(&BLANK, 0).map_err(io(&path))?;
        Ok(SendJournal {
            file: Some(file),
            path,
            owner,
        })
    }

    /// The sender's identity, for the rows it claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn write(&self, record: &[u8; RECORD]) -> Result<(), JournalError> {
        match &self.file {
            Some(f) => f.write_all_at(record, 0).map_err(io(&self.path)),
            None => Ok(()),
        }
    }

    /// Records that outbox row `id` is about to be committed to the server.
    pub fn record(&self, id: i64) -> Result<(), JournalError> {
        let mut buf = BLANK;
        let text = format!("{id}");
        buf[..text.len()].copy_from_slice(text.as_bytes());
        buf[RECORD - 1] = b'\n';
        self.write(&buf)
    }

    /// The database now knows the outcome of the recorded row.
    pub fn clear(&self) -> Result<(), JournalError> {
        self.write(&BLANK)
    }

    /// Gives the journal up with its record in place, as a crash would: the
    /// next [`recover`] settles it. For when the database could not be told.
    pub fn abandon(mut self) {
        self.file = None; // closing the descriptor releases the lock
    }
}

impl Drop for SendJournal {
    fn drop(&mut self) {
        // A clean stop leaves nothing to recover. Removing while still locked
        // means a concurrent `recover` finds the file gone or blank.
        if let Some(file) = &self.file {
            let _ = file.write_all_at(&BLANK, 0);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A sender that died: who it was, and the mail it had handed to the server
/// without hearing back, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadSender {
    pub owner: String,
    pub committed: Option<i64>,
}

/// Finds the journals of senders that died, each removed from disk once
/// `settle` has dealt with it. Journals of live senders (locked) are skipped.
/// Returns how many were settled.
pub async fn recover<F, Fut, E>(dir: &Path, mut settle: F) -> Result<usize, E>
where
    F: FnMut(DeadSender) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: From<JournalError>,
{
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(dir)(e).into()),
    };
    let mut recovered = 0;
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            // Removed by its owner or another recoverer meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e).into()),
        };
        if !crate::run_lock::try_lock_exclusive(&file) {
            continue; // its sender is alive
        }
        let mut buf = [0u8; RECORD];
        let n = file.read_at(&mut buf, 0).map_err(io(&path))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let owner = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        settle(DeadSender {
            owner,
            committed: text.trim().parse::<i64>().ok(),
        })
        .await?;
        recovered += 1;
        // Blank before unlinking: a recoverer that opened the file before
        // the unlink and locks it after us finds nothing to do.
        file.write_all_at(&BLANK, 0).map_err(io(&path))?;
        let _ = std::fs::remove_file(&path);
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ids_recovered(dir: &Path) -> Vec<i64> {
        let mut ids = Vec::new();
        recover::<_, _, JournalError>(dir, |dead| {
            assert!(!dead.owner.is_empty());
            ids.extend(dead.committed);
            async { Ok(()) }
        })
        .await
        .unwrap();
        ids
    }

    #[tokio::test]
    async fn a_live_senders_journal_is_left_alone_a_dead_ones_is_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = journal_dir(tmp.path());
        let live = SendJournal::create(&dir).unwrap();
        live.record(42).unwrap();
        assert!(ids_recovered(&dir).await.is_empty(), "owner still holds it");

        // A dead sender: the kernel dropped its lock with its descriptors;
        // what it wrote stays.
        let path = dir.join("4242-dead");
        std::fs::write(&path, b"12345678901         \n").unwrap();
        assert_eq!(ids_recovered(&dir).await, vec![12345678901]);
        assert!(!path.exists(), "a recovered journal is removed");
        assert!(ids_recovered(&dir).await.is_empty(), "recovered once only");

        let given_up = SendJournal::create(&dir).unwrap();
        given_up.record(9).unwrap();
        given_up.abandon();
        assert_eq!(ids_recovered(&dir).await, vec![9]);

        live.clear().unwrap();
        drop(live);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_dead_sender_with_a_blank_journal_leaves_nothing_to_settle() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = journal_dir(tmp.path());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("4243-dead"), BLANK).unwrap();
        assert!(ids_recovered(&dir).await.is_empty());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "and it is removed"
        );
    }
}
