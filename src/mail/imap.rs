//! The IMAP watcher: one task per configured mailbox. It takes new messages by
//! UID checkpoint (never by the \Seen flag: a message a person already opened
//! still counts), fetches with `BODY.PEEK[]`, hands each to ingest, and only
//! after the database commit flags it \Seen and moves it to the processed
//! folder. It waits with IDLE where the server has it, else polls, and
//! reconnects with backoff after any failure. A mailbox with `auth =
//! "oauth2"` signs in with XOAUTH2 and an access token of its grant's
//! [`TokenManager`]; a revoked grant is retried with the same backoff.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::ingest::{Delivery, IngestError, Ingestor, Kept, Parsed, Source};
use super::oauth2::{self, OAuthError, TokenManager};
use super::parse;
use crate::config::{MailboxConfig, TlsMode};
use crate::db::inbound::{self, MailboxUid};
use crate::storage::{BlobKind, BlobStore, StorageError};

/// Messages fetched per round trip.
const CHUNK: usize = 500;
/// Messages applied per database transaction.
const APPLY_BATCH: usize = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}
type ImapSession = Session<Box<dyn ImapStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("IMAP connect: {0}")]
    Connect(String),
    #[error("IMAP: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("IMAP server closed the connection")]
    Closed,
    #[error("the folder's UIDVALIDITY changed: syncing it again in a new session")]
    UidValidityChanged,
    #[error("ingest: {0}")]
    Ingest(#[from] IngestError),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

/// The XOAUTH2 exchange: the initial response, then an empty line to any
/// error challenge (the server then answers NO).
struct XOAuth2 {
    response: Option<String>,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

/// Watches `mailbox` (signing in with its password) until `cancel`.
pub async fn watch(ingestor: Ingestor, mailbox: MailboxConfig, cancel: CancellationToken) {
    watch_with(ingestor, mailbox, None, cancel).await
}

/// Watches `mailbox` until `cancel`; `tokens` signs in an OAuth2 mailbox.
pub async fn watch_with(
    ingestor: Ingestor,
    mailbox: MailboxConfig,
    tokens: Option<Arc<TokenManager>>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let connected = ingestor.metrics.mailbox(&mailbox.name);
    connected.set(0);
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let result = run_session(&ingestor, &mailbox, tokens.as_deref(), &cancel).await;
        connected.set(0);
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(mailbox = %mailbox.name, error = %e, "IMAP session ended; reconnecting");
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::info!(mailbox = %mailbox.name, "IMAP watcher stopped");
}

/// Opens a session and signs in with the mailbox's password.
pub async fn connect(mailbox: &MailboxConfig) -> Result<ImapSession, ImapError> {
    connect_with(mailbox, None).await
}

/// Opens a session and signs in: with an access token of `tokens` when the
/// mailbox uses OAuth2, else with its password.
pub async fn connect_with(
    mailbox: &MailboxConfig,
    tokens: Option<&TokenManager>,
) -> Result<ImapSession, ImapError> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect((mailbox.imap_host.as_str(), mailbox.imap_port)),
    )
    .await
    .map_err(|_| ImapError::Connect("timed out".into()))?
    .map_err(|e| ImapError::Connect(e.to_string()))?;
    tcp.set_nodelay(true)
        .map_err(|e| ImapError::Connect(e.to_string()))?;
    let tls_config = || {
        crate::tls::client_config(mailbox.ca_file.as_deref())
            .map_err(|e| ImapError::Connect(e.to_string()))
    };
    let stream: Box<dyn ImapStream> = match mailbox.imap_tls {
        TlsMode::None => Box::new(tcp),
        TlsMode::Tls => Box::new(
            crate::tls::wrap(tcp, &mailbox.imap_host, tls_config()?)
                .await
                .map_err(|e| ImapError::Connect(e.to_string()))?,
        ),
        TlsMode::StartTls => {
            let mut client = async_imap::Client::new(tcp);
            read_greeting(&mut client).await?;
            client.run_command_and_check_ok("STARTTLS", None).await?;
            let tcp = client.into_inner();
            Box::new(
                crate::tls::wrap(tcp, &mailbox.imap_host, tls_config()?)
                    .await
                    .map_err(|e| ImapError::Connect(e.to_string()))?,
            )
        }
    };
    let mut client = async_imap::Client::new(stream);
    if mailbox.imap_tls != TlsMode::StartTls {
        read_greeting(&mut client).await?;
    }
    match (&mailbox.oauth2, tokens) {
        (None, _) => client
            .login(&mailbox.username, &mailbox.password)
            .await
            .map_err(|(e, _)| ImapError::Protocol(e)),
        (Some(_), None) => Err(ImapError::Connect(
            "the mailbox signs in with OAuth2 and has no token manager".into(),
        )),
        (Some(_), Some(tokens)) => {
            let token = tokens.access_token().await?;
            let auth = XOAuth2 {
                response: Some(oauth2::xoauth2_response(&mailbox.username, &token)),
            };
            match client.authenticate("XOAUTH2", auth).await {
                Ok(session) => Ok(session),
                Err((e, _)) => {
                    // Refused although unexpired: the next try gets a new one.
                    tokens.forget(&token).await;
                    Err(ImapError::Protocol(e))
                }
            }
        }
    }
}

async fn read_greeting<T: ImapStream>(client: &mut async_imap::Client<T>) -> Result<(), ImapError> {
    // async-imap does not read the server greeting itself.
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Closed),
        Err(e) => Err(ImapError::Connect(e.to_string())),
    }
}

async fn run_session(
    ingestor: &Ingestor,
    mailbox: &MailboxConfig,
    tokens: Option<&TokenManager>,
    cancel: &CancellationToken,
) -> Result<(), ImapError> {
    let mut session = connect_with(mailbox, tokens).await?;
    let caps = session.capabilities().await?;
    let has_idle = caps.has_str("IDLE");
    let has_move = caps.has_str("MOVE");
    if let Some(folder) = &mailbox.processed_folder {
        // Creating an existing folder fails harmlessly; any real problem shows
        // up when we move into it.
        let _ = session.create(folder).await;
    }
    let selected = session.select(&mailbox.folder).await?;
    let uidvalidity = selected.uid_validity.unwrap_or(0);
    tracing::info!(mailbox = %mailbox.name, uidvalidity, idle = has_idle, "IMAP session ready");
    ingestor.metrics.mailbox(&mailbox.name).set(1);

    // Messages applied before a crash but never flagged/moved: finish them.
    let last = {
        let mut conn = ingestor.db.conn().await?;
        inbound::checkpoint(&mut conn, &mailbox.name, uidvalidity).await?
    };
    if let Some(last) = last.filter(|l| *l > 0) {
        let leftover: Vec<u32> = session
            .uid_search(format!("UID 1:{last}"))
            .await?
            .into_iter()
            .filter(|u| *u <= last)
            .collect();
        mark_processed(&mut session, mailbox, has_move, &leftover).await?;
    }

    loop {
        loop {
            if cancel.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
            let n = ingest_new(
                ingestor,
                mailbox,
                &mut session,
                uidvalidity,
                has_move,
                cancel,
            )
            .await?;
            if n == 0 {
                break;
            }
        }
        if has_idle {
            let mut idle = session.idle();
            idle.init().await?;
            let (wait, stop) = idle.wait_with_timeout(mailbox.idle_timeout);
            let cancelled = tokio::select! {
                r = wait => { r?; false }
                _ = cancel.cancelled() => { drop(stop); true }
            };
            session = idle.done().await?;
            if cancelled {
                let _ = session.logout().await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = session.logout().await;
                    return Ok(());
                }
                _ = tokio::time::sleep(mailbox.poll_interval) => {}
            }
        }
        // Selecting the folder again shows whether it is still the one the
        // checkpoint is about: a folder deleted and recreated by another
        // client has a new UIDVALIDITY (and the server may not say so to a
        // session that has the old one selected). A new session re-syncs.
        let reselected = session.select(&mailbox.folder).await?;
        if reselected.uid_validity.unwrap_or(0) != uidvalidity {
            let _ = session.logout().await;
            return Err(ImapError::UidValidityChanged);
        }
    }
}

/// A message as fetched: whole, or only its header when over the size limit.
struct Fetched {
    uid: u32,
    raw: Vec<u8>,
    /// The real size of a message too large to download whole.
    oversized_bytes: Option<u64>,
}

/// A fetched message whose raw bytes are durably kept, parsed: ready to apply.
struct Ready {
    fetched: Fetched,
    raw_sha256: String,
    parsed: Parsed,
}

/// Ingests every message above the checkpoint; returns how many were applied.
///
/// A backlog goes through in chunks, pipelined: while one chunk is applied
/// to the database, the IMAP session flags and moves the chunk applied
/// before it and fetches the next one, which is then written to the blob
/// store, synced and parsed on a blocking thread. A chunk is applied only
/// after its own sync, so no commit ever refers to raw mail that a crash
/// could lose, and a message is moved only after its commit.
async fn ingest_new(
    ingestor: &Ingestor,
    mailbox: &MailboxConfig,
    session: &mut ImapSession,
    uidvalidity: u32,
    has_move: bool,
    cancel: &CancellationToken,
) -> Result<usize, ImapError> {
    let last = {
        let mut conn = ingestor.db.conn().await?;
        inbound::checkpoint(&mut conn, &mailbox.name, uidvalidity)
            .await?
            .unwrap_or(0)
    };
    // Sizes first, so a message over the limit is never downloaded whole.
    let sizes: Vec<(u32, u32)> = session
        .uid_fetch(format!("{}:*", last + 1), "(UID RFC822.SIZE)")
        .await?
        .try_filter_map(|f| async move { Ok(f.uid.map(|u| (u, f.size.unwrap_or(0)))) })
        .try_collect()
        .await?;
    // `n:*` also returns the highest message when every UID is below n.
    let mut sizes: Vec<(u32, u32)> = sizes.into_iter().filter(|(uid, _)| *uid > last).collect();
    sizes.sort_unstable();
    let mut chunks = sizes.chunks(CHUNK);
    let limit = ingestor.config.limits.max_message_bytes;
    let mut keeping: Option<Keeping> = None;
    // Applied (committed) but not yet flagged and moved.
    let mut unmarked: Vec<u32> = Vec::new();
    let mut applied = 0;
    loop {
        let next_chunk = if cancel.is_cancelled() {
            None
        } else {
            chunks.next()
        };
        let current = keeping.take();
        // The IMAP session marks what the last round applied and fetches the
        // next chunk while the database applies the current one.
        let session_side = async {
            mark_processed(session, mailbox, has_move, &unmarked).await?;
            let Some(chunk) = next_chunk else {
                return Ok::<_, ImapError>(None);
            };
            let fetched = fetch_chunk(session, chunk, limit).await?;
            let store = ingestor.store.clone();
            Ok(Some(tokio::task::spawn_blocking(move || {
                keep_chunk(&store, fetched)
            })))
        };
        let database_side = async {
            let Some(current) = current else {
                return Ok(None);
            };
            let ready = current
                .await
                .map_err(|e| IngestError::Temporary(e.to_string()))??;
            Ok::<_, ImapError>(Some(
                apply_chunk(ingestor, mailbox, uidvalidity, &ready, cancel).await,
            ))
        };
        let (next, done) = tokio::join!(session_side, database_side);
        unmarked.clear();
        let (next, done) = (next?, done?);
        if let Some((processed, failure)) = done {
            applied += processed.len();
            unmarked = processed;
            if let Some(e) = failure {
                // This and later messages stay on the server for the next try
                // (the next chunk's blobs are kept; applying them later is the same).
                mark_processed(session, mailbox, has_move, &unmarked).await?;
                return Err(e.into());
            }
        }
        match next {
            Some(handle) => keeping = Some(handle),
            None => {
                mark_processed(session, mailbox, has_move, &unmarked).await?;
                return Ok(applied);
            }
        }
    }
}

/// A chunk being kept on a blocking thread.
type Keeping = tokio::task::JoinHandle<Result<Vec<Ready>, StorageError>>;

/// Fetches one chunk of `(uid, size)`: whole messages, and only the header of
/// those over `limit`.
async fn fetch_chunk(
    session: &mut ImapSession,
    chunk: &[(u32, u32)],
    limit: u64,
) -> Result<Vec<Fetched>, ImapError> {
    let (whole, oversized): (Vec<_>, Vec<_>) = chunk
        .iter()
        .partition(|(_, size)| u64::from(*size) <= limit);
    let mut raw: BTreeMap<u32, Fetched> = BTreeMap::new();
    if !whole.is_empty() {
        let set = uid_set(whole.iter().map(|(u, _)| *u));
        let fetched: Vec<_> = session
            .uid_fetch(set, "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        for f in fetched {
            if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                let raw_bytes = body.to_vec();
                raw.insert(
                    uid,
                    Fetched {
                        uid,
                        raw: raw_bytes,
                        oversized_bytes: None,
                    },
                );
            }
        }
    }
    if !oversized.is_empty() {
        let set = uid_set(oversized.iter().map(|(u, _)| *u));
        let fetched: Vec<_> = session
            .uid_fetch(set, "(UID RFC822.SIZE BODY.PEEK[HEADER])")
            .await?
            .try_collect()
            .await?;
        for f in fetched {
            if let (Some(uid), Some(header)) = (f.uid, f.header()) {
                raw.insert(
                    uid,
                    Fetched {
                        uid,
                        raw: header.to_vec(),
                        oversized_bytes: Some(u64::from(f.size.unwrap_or(0))),
                    },
                );
            }
        }
    }
    Ok(raw.into_values().collect())
}

/// Keeps a chunk's raw mail in the blob store, makes it durable with one
/// sync, and parses each message (CPU work kept off the apply path).
fn keep_chunk(store: &BlobStore, fetched: Vec<Fetched>) -> Result<Vec<Ready>, StorageError> {
    let mut ready = Vec::with_capacity(fetched.len());
    for f in fetched {
        let raw_sha256 = store.put(BlobKind::RawMail, &f.raw, false)?;
        let parsed = parse::parse(&f.raw);
        ready.push(Ready {
            fetched: f,
            raw_sha256,
            parsed,
        });
    }
    store.sync_all()?;
    Ok(ready)
}

/// Applies a kept chunk in batches, one transaction each: a backlog pays one
/// commit per batch, and a batch is small enough not to hold the write lock
/// for long. Returns the UIDs applied and the temporary failure that stopped
/// it, if any; it also stops between batches when cancelled.
async fn apply_chunk(
    ingestor: &Ingestor,
    mailbox: &MailboxConfig,
    uidvalidity: u32,
    ready: &[Ready],
    cancel: &CancellationToken,
) -> (Vec<u32>, Option<IngestError>) {
    let mut processed = Vec::with_capacity(ready.len());
    for batch in ready.chunks(APPLY_BATCH) {
        if cancel.is_cancelled() {
            break;
        }
        let kept: Vec<Kept<'_>> = batch
            .iter()
            .map(|r| Kept {
                delivery: Delivery {
                    source: Source::Mailbox {
                        mailbox,
                        at: MailboxUid {
                            uidvalidity,
                            uid: r.fetched.uid,
                        },
                    },
                    raw: &r.fetched.raw,
                    oversized_bytes: r.fetched.oversized_bytes,
                },
                raw_sha256: &r.raw_sha256,
                parsed: &r.parsed,
            })
            .collect();
        let (outcomes, error) = ingestor.ingest_kept_batch(&kept).await;
        for (r, outcome) in batch.iter().zip(&outcomes) {
            tracing::debug!(mailbox = %mailbox.name, uid = r.fetched.uid, ?outcome, "message applied");
            processed.push(r.fetched.uid);
        }
        if let Some(e) = error {
            return (processed, Some(e));
        }
    }
    (processed, None)
}

/// Flags applied messages \Seen and moves them to the processed folder.
async fn mark_processed(
    session: &mut ImapSession,
    mailbox: &MailboxConfig,
    has_move: bool,
    uids: &[u32],
) -> Result<(), ImapError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids.iter().copied());
    let _: Vec<_> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
        .await?
        .try_collect()
        .await?;
    if let Some(folder) = &mailbox.processed_folder {
        if has_move {
            session.uid_mv(&set, folder).await?;
        } else {
            session.uid_copy(&set, folder).await?;
            let _: Vec<_> = session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect()
                .await?;
            let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
        }
    }
    Ok(())
}

/// A compact UID set: `1:5,8,10:12`.
pub fn uid_set(uids: impl IntoIterator<Item = u32>) -> String {
    let mut sorted: Vec<u32> = uids.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set([5, 1, 2, 3, 8, 10, 11, 12]), "1:3,5,8,10:12");
        assert_eq!(uid_set([7]), "7");
    }
}
