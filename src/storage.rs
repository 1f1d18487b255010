//! Content-addressed blob store under `storage.dir`: raw inbound mail and
//! attachments, each kept once under the SHA-256 of its bytes
//! (`<dir>/<kind>/ab/<sha256>`: 256 directories per kind, so
//! a backlog does not pay a `mkdir` for almost every blob). Files are written to a temporary name and
//! renamed, so a crash never leaves a half-written blob under a real name.
//! Nothing here knows about tickets or SQL.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum BlobKind {
    RawMail,
    Attachment,
}

impl BlobKind {
    fn dir(self) -> &'static str {
        match self {
            BlobKind::RawMail => "raw",
            BlobKind::Attachment => "attachments",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl BlobStore {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        for kind in [BlobKind::RawMail, BlobKind::Attachment] {
            let dir = root.join(kind.dir());
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn path_of(&self, kind: BlobKind, sha256: &str) -> PathBuf {
        self.root.join(kind.dir()).join(&sha256[0..2]).join(sha256)
    }

    /// Stores `bytes` and returns their SHA-256. With `sync`, the file and its
    /// directory are flushed to disk before this returns; without, the caller
    /// promises to call [`BlobStore::sync_all`] before it relies on the blobs.
    pub fn put(&self, kind: BlobKind, bytes: &[u8], sync: bool) -> Result<String, StorageError> {
        let sha = sha256_hex(bytes);
        let path = self.path_of(kind, &sha);
        if path.exists() {
            return Ok(sha);
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let tmp = dir.join(format!(".{sha}.{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        if sync {
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        if sync {
            if let Ok(d) = std::fs::File::open(&dir) {
                d.sync_all().map_err(io("sync", &dir))?;
            }
        }
        Ok(sha)
    }

    /// Flushes everything written to the file system holding the store
    /// (one `syncfs` instead of one `fsync` per blob of a batch).
    pub fn sync_all(&self) -> Result<(), StorageError> {
        let f = std::fs::File::open(&self.root).map_err(|source| StorageError::Io {
            action: "open",
            path: self.root.clone(),
            source,
        })?;
        f.sync_all().map_err(|source| StorageError::Io {
            action: "sync",
            path: self.root.clone(),
            source,
        })?;
        // SAFETY: syncfs takes a valid open file descriptor, which `f` holds.
        let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        if rc != 0 {
            return Err(StorageError::Io {
                action: "syncfs",
                path: self.root.clone(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    pub fn get(&self, kind: BlobKind, sha256: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path_of(kind, sha256);
        std::fs::read(&path).map_err(|source| StorageError::Io {
            action: "read",
            path,
            source,
        })
    }

    /// Deletes a blob (the retention purge); false when it was not there.
    pub fn remove(&self, kind: BlobKind, sha256: &str) -> Result<bool, StorageError> {
        let path = self.path_of(kind, sha256);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StorageError::Io {
                action: "delete",
                path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(BlobKind::RawMail, b"hello", true).unwrap();
        let b = store.put(BlobKind::RawMail, b"hello", false).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, sha256_hex(b"hello"));
        assert_eq!(store.get(BlobKind::RawMail, &a).unwrap(), b"hello");
        assert!(store.remove(BlobKind::RawMail, &a).unwrap());
        assert!(!store.remove(BlobKind::RawMail, &a).unwrap());
        assert!(store.get(BlobKind::RawMail, &a).is_err());
        store.sync_all().unwrap();
    }
}
