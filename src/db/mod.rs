//! Every SQL statement of Postdesk lives under this module; nothing else talks
//! to the database. The SQL is portable between SQLite and PostgreSQL (runtime
//! queries through sqlx's `Any` driver, `$n` placeholders, BIGINT times written
//! from the application's `Clock`), with one migrations folder per backend.
//! Functions take `&mut AnyConnection`, so a caller decides whether they run
//! inside its transaction.

pub mod audit;
pub mod contacts;
pub mod conversation;
pub mod expiring;
pub mod hours;
pub mod inbound;
pub mod invoices;
pub mod job_runs;
pub mod link_requests;
pub mod mailbox_leases;
pub mod oauth_tokens;
pub mod outbox;
pub mod payment_methods;
pub mod payments;
pub mod portal;
pub mod preferences;
pub mod recurring;
pub mod reports;
pub mod ticket_watch;
pub mod tickets;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};

pub use sqlx::AnyConnection as Conn;
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: unexpected stored value in {column}: {value}")]
    Corrupt { column: &'static str, value: String },
}

impl DbError {
    /// True for failures that may pass by themselves (connection lost, locked,
    /// serialization conflict): the caller should retry later rather than
    /// quarantine anything.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sql(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(db) => {
                    let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                    // SQLite BUSY/LOCKED (5, 6 and extended codes), PostgreSQL
                    // serialization failure, deadlock, connection and admin classes.
                    code == "5"
                        || code == "6"
                        || code.starts_with("5") && code.len() == 3
                        || code == "40001"
                        || code == "40P01"
                        || code.starts_with("08")
                        || code.starts_with("57P")
                }
                _ => false,
            },
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). A SQLite file is
    /// created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // Short: an MTA waiting on `postdesk ingest` should hear "try later" soon.
            .acquire_timeout(Duration::from_secs(5))
            // A SQLite file does not drop connections; the ping before every
            // acquire would be one more round trip to the worker thread per
            // use. A PostgreSQL server can restart: check those.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL syncs at
                        // checkpoints, which survives a process crash (kill -9)
                        // and keeps thousands of commits per second possible.
                        // Temporary storage in memory: ingest runs each message
                        // of a batch under a savepoint, whose sub-journal would
                        // otherwise be a temporary file written for every page.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; \
                             PRAGMA temp_store = MEMORY;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes
    /// later can fail with SQLITE_BUSY without waiting when another connection
    /// wrote in between.
    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A plain connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, DbError> {
        Ok(self.pool.acquire().await?)
    }

    /// One round trip: is the database there?
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Converts a stored 0/1 flag.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}

/// Allocates the next value of a named counter (ticket numbers), inside the
/// caller's transaction so a rolled-back ticket does not burn a number.
pub async fn next_counter(
    conn: &mut AnyConnection,
    name: &str,
    first: i64,
) -> Result<i64, DbError> {
    let (value,): (i64,) = sqlx::query_as(
        "INSERT INTO counters (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(name)
    .bind(first)
    .fetch_one(&mut *conn)
    .await?;
    Ok(value)
}

/// Sets counter `name` to `value` (it exists: [`next_counter`] made it).
pub async fn set_counter(conn: &mut AnyConnection, name: &str, value: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE counters SET value = $1 WHERE name = $2")
        .bind(value)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `($1, $2), ($3, $4)…`: the placeholders of a multi-row `VALUES` (or an
/// `IN` list, with one column) of `rows` rows of `columns` values each,
/// numbered from `$first`.
pub(crate) fn placeholder_rows(first: usize, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        if columns > 1 {
            sql.push('(');
        }
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", first + r * columns + c));
        }
        if columns > 1 {
            sql.push(')');
        }
    }
    sql
}

#[cfg(test)]
mod placeholder_tests {
    use super::placeholder_rows;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholder_rows(1, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholder_rows(3, 3, 1), "$3, $4, $5");
    }
}
