//! The hub's store: every version of every resource, its search index and its patient
//! compartments, on SQLite (embedded default) or PostgreSQL (production), through one
//! set of SQL statements.
//!
//! Invariant: all writes go through [`WriteTx`], which holds the hub's write lock (and on
//! PostgreSQL a transaction-scoped advisory lock), so change sequence numbers are assigned
//! and committed in order. A reader that has seen `seq = N` has seen every change up to N;
//! the sync feed relies on this.

mod checkpoint;
mod conn;
mod search;
mod write;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use careshare_policy::{FactsError, ResourceFacts};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;
use sqlx::{AnyPool, PgPool, Row};

pub use conn::{Arg, Conn};
use tokio::sync::Mutex;
pub use write::copy_text;

pub use search::{HistoryScope, Page};
pub use write::{WriteTx, Written};

/// Which database engine holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A failure in the store. Its text may name tables and SQL: it is logged, never sent to
/// a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://HOST/DB")]
    UnsupportedUrl(String),
    #[error("stored resource {0} is not valid JSON: {1}")]
    Corrupt(String, serde_json::Error),
}

/// One stored version of a resource.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub content: Option<String>,
}

/// A value read from one row of a query, on either engine ([`Conn::fetch_rows`]).
pub(crate) trait FromStoreRow: Sized {
    fn from_row<R>(row: &R) -> Result<Self, sqlx::Error>
    where
        R: Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>;
}

impl FromStoreRow for Stored {
    /// Reads a row of the version columns.
    fn from_row<R>(row: &R) -> Result<Stored, sqlx::Error>
    where
        R: Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Stored {
            seq: row.try_get("seq")?,
            res_type: row.try_get("res_type")?,
            id: row.try_get("res_id")?,
            version: row.try_get("version")?,
            last_updated: row.try_get("last_updated")?,
            deleted: row.try_get::<i64, _>("deleted")? != 0,
            content: row.try_get("content")?,
        })
    }
}

impl Stored {
    /// The stored JSON, parsed.
    pub fn resource(&self) -> Result<Option<serde_json::Value>, StoreError> {
        self.content
            .as_deref()
            .map(|c| {
                serde_json::from_str(c)
                    .map_err(|e| StoreError::Corrupt(format!("{}/{}", self.res_type, self.id), e))
            })
            .transpose()
    }
}

/// A stored version without its content, with the access facts kept with it
/// (`resource_facts`, None when it has none).
#[derive(Debug, Clone)]
pub struct VersionFacts {
    pub seq: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub deleted: bool,
    pub facts: Option<String>,
}

impl FromStoreRow for VersionFacts {
    /// Reads a row of [`VERSION_FACTS_COLUMNS`].
    fn from_row<R>(row: &R) -> Result<VersionFacts, sqlx::Error>
    where
        R: Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(VersionFacts {
            seq: row.try_get("seq")?,
            res_type: row.try_get("res_type")?,
            id: row.try_get("res_id")?,
            version: row.try_get("version")?,
            deleted: row.try_get::<i64, _>("deleted")? != 0,
            facts: row.try_get("facts")?,
        })
    }
}

/// The columns of [`VersionFacts`], from `resource_version v LEFT JOIN resource_facts f`.
pub(crate) const VERSION_FACTS_COLUMNS: &str =
    "v.seq, v.res_type, v.res_id, v.version, v.deleted, f.facts";

/// The access facts of each version (None for a deletion): as stored with it, or read
/// from its JSON when it has none stored (or none this hub can read).
pub async fn version_facts(
    conn: &mut Conn<'_>,
    versions: &[VersionFacts],
) -> Result<Vec<Option<Result<ResourceFacts, FactsError>>>, StoreError> {
    let mut out: Vec<Option<Result<ResourceFacts, FactsError>>> = versions
        .iter()
        .map(|v| {
            v.facts
                .as_deref()
                .and_then(ResourceFacts::from_stored)
                .map(Ok)
        })
        .collect();
    let missing: Vec<i64> = versions
        .iter()
        .zip(&out)
        .filter(|(v, f)| !v.deleted && f.is_none())
        .map(|(v, _)| v.seq)
        .collect();
    let mut from_json: HashMap<i64, Result<ResourceFacts, FactsError>> = HashMap::new();
    for chunk in missing.chunks(100) {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM resource_version WHERE seq IN ({})",
            numbered_params(1, chunk.len())
        );
        let args: Vec<Arg> = chunk.iter().map(|s| Arg::I(*s)).collect();
        for s in conn.fetch_stored(&sql, &args).await? {
            if let Some(resource) = s.resource()? {
                from_json.insert(s.seq, ResourceFacts::from_json(&resource));
            }
        }
    }
    for (v, f) in versions.iter().zip(out.iter_mut()) {
        if f.is_none() && !v.deleted {
            *f = from_json.remove(&v.seq);
        }
    }
    Ok(out)
}

pub(crate) const VERSION_COLUMNS: &str =
    "seq, res_type, res_id, version, last_updated, deleted, content";

/// [`VERSION_COLUMNS`] of the table aliased `v`, for queries that join it.
pub(crate) const VERSION_COLUMNS_V: &str =
    "v.seq, v.res_type, v.res_id, v.version, v.last_updated, v.deleted, v.content";

/// `count` numbered parameters from `$first` on, for an `IN (…)` list: `$2,$3,$4`.
pub(crate) fn numbered_params(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// How much of a SQLite database its connections read through the memory map rather than
/// copying each page into their own cache (which they drop whenever another connection
/// writes).
const MMAP_BYTES: u64 = 1 << 30;

/// The settings of every connection to a SQLite store, whichever pool it is in: WAL lets
/// readers proceed while the single writer commits; a writer waits up to 10 s for another
/// process's; checkpoints are the [`checkpoint`] task's.
fn sqlite_pragmas() -> [(&'static str, String); 5] {
    [
        ("journal_mode", "WAL".into()),
        ("synchronous", "NORMAL".into()),
        ("busy_timeout", "10000".into()),
        ("mmap_size", MMAP_BYTES.to_string()),
        ("wal_autocheckpoint", checkpoint::BACKSTOP_PAGES.to_string()),
    ]
}

/// The store: a connection pool plus the write lock.
pub struct Store {
    pool: AnyPool,
    /// On PostgreSQL, a native pool for write transactions (they bulk-load with COPY).
    pg: Option<PgPool>,
    /// On SQLite, a native pool for reads of many rows (the sync feed's), which the
    /// dialect-neutral pool would convert value by value.
    sqlite: Option<SqlitePool>,
    dialect: Dialect,
    writer: Mutex<write::WriterState>,
    audit: Mutex<()>,
    /// On SQLite, taken by every write transaction of this process in turn ([`Store::begin`]).
    gate: Arc<Mutex<()>>,
    /// On SQLite, the task that checkpoints the write-ahead log.
    checkpointer: std::sync::Mutex<Option<checkpoint::Checkpointer>>,
}

/// A write transaction on the dialect-neutral pool ([`Store::begin`]). Dropped without
/// [`StoreTx::commit`], it rolls back.
pub struct StoreTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl StoreTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for StoreTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for StoreTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating a SQLite file if
    /// needed, and applies the migrations of that dialect.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Postgres {
                        use sqlx::Executor;
                        // See the native pool below: plan for the tables as they are now.
                        conn.execute("SET plan_cache_mode = force_custom_plan")
                            .await?;
                    }
                    if dialect == Dialect::Sqlite {
                        use sqlx::Executor;
                        let pragmas: String = sqlite_pragmas()
                            .iter()
                            .map(|(name, value)| format!("PRAGMA {name}={value}; "))
                            .collect();
                        conn.execute(&*pragmas).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match dialect {
            Dialect::Sqlite => sqlx::migrate!("../../migrations/sqlite").run(&pool).await?,
            Dialect::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&pool)
                    .await?
            }
        }
        let last = sqlx::query("SELECT COALESCE(MAX(last_updated), 0) AS lu FROM resource_version")
            .fetch_one(&pool)
            .await?
            .try_get::<i64, _>("lu")?;
        let pg = match dialect {
            Dialect::Postgres => Some(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            // A bulk load grows tables faster than statistics follow: plan
                            // each lookup for the table as it is now, not as it was when
                            // the statement was first prepared.
                            conn.execute("SET plan_cache_mode = force_custom_plan")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?,
            ),
            Dialect::Sqlite => None,
        };
        let (sqlite, checkpointer) = match dialect {
            Dialect::Sqlite => {
                let options = sqlite_pragmas()
                    .into_iter()
                    .fold(SqliteConnectOptions::from_str(&url)?, |o, (name, value)| {
                        o.pragma(name, value)
                    });
                let reader = SqlitePoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    // A page of the feed is read whole: fewer hand-offs between the
                    // connection's thread and the reader.
                    .connect_with(options.clone().row_buffer_size(1024))
                    .await?;
                (
                    Some(reader),
                    Some(checkpoint::Checkpointer::start(&options).await?),
                )
            }
            Dialect::Postgres => (None, None),
        };
        Ok(Store {
            pool,
            pg,
            sqlite,
            dialect,
            writer: Mutex::new(write::WriterState { last_updated: last }),
            audit: Mutex::new(()),
            gate: Arc::default(),
            checkpointer: std::sync::Mutex::new(checkpointer),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Serialises appends to the audit trail (its hash chain needs one writer at a time).
    pub async fn audit_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.audit.lock().await
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that writes. On SQLite, which has one writer at a time, the
    /// process's write transactions take turns first (first come, first served: a long
    /// series of writes, such as a sync feed's, lets each waiting one in between), then
    /// take the database's write lock at once (`BEGIN IMMEDIATE`, waiting up to the busy
    /// timeout for another process): a transaction that read first and wrote later would
    /// otherwise fail outright ("database is locked") whenever another connection wrote
    /// in between.
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        Ok(match self.dialect {
            Dialect::Sqlite => {
                let gate = self.gate.clone().lock_owned().await;
                // In a task of its own: a caller dropped half-way through a custom BEGIN
                // (a request whose client went away) would leave the connection in a
                // transaction nobody ends (sqlx checks the connection's state after the
                // statement, and no transaction exists yet to roll back when dropped).
                // Finished here, the transaction is rolled back when its answer is dropped.
                let pool = self.pool.clone();
                let tx = tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
                    .await
                    .map_err(|_| sqlx::Error::WorkerCrashed)??;
                StoreTx {
                    tx,
                    _gate: Some(gate),
                }
            }
            Dialect::Postgres => StoreTx {
                tx: self.pool.begin().await?,
                _gate: None,
            },
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(checkpointer) = checkpointer {
            checkpointer.close().await;
        }
        self.pool.close().await;
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
    }

    /// On SQLite, the native pool for reads of many rows (None on PostgreSQL: use
    /// [`Store::pool`]).
    pub fn sqlite_reader(&self) -> Option<&SqlitePool> {
        self.sqlite.as_ref()
    }

    /// A pooled connection for reads.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }
}

/// The current version of `Type/id` (which may be a deletion), if it ever existed.
pub async fn read_current(
    conn: &mut Conn<'_>,
    res_type: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version \
         WHERE res_type = $1 AND res_id = $2 AND superseded_seq IS NULL"
    );
    let args = [Arg::S(res_type.into()), Arg::S(id.into())];
    Ok(conn.fetch_stored(&sql, &args).await?.pop())
}

/// One version of `Type/id`.
pub async fn read_version(
    conn: &mut Conn<'_>,
    res_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version \
         WHERE res_type = $1 AND res_id = $2 AND version = $3"
    );
    let args = [Arg::S(res_type.into()), Arg::S(id.into()), Arg::I(version)];
    Ok(conn.fetch_stored(&sql, &args).await?.pop())
}

/// The newest version of `Type/id` that has content (the current one, or the one before
/// its deletion).
pub async fn read_latest_content(
    conn: &mut Conn<'_>,
    res_type: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version \
         WHERE res_type = $1 AND res_id = $2 AND deleted = 0 ORDER BY version DESC LIMIT 1"
    );
    let args = [Arg::S(res_type.into()), Arg::S(id.into())];
    Ok(conn.fetch_stored(&sql, &args).await?.pop())
}

/// The latest change sequence number (0 for an empty store).
pub async fn max_seq(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    conn.fetch_i64(
        "SELECT COALESCE(MAX(seq), 0) AS s FROM resource_version",
        &[],
        "s",
    )
    .await
}

pub use search::{history_rows, include, search, search_key, search_rows, snapshot_of};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every version's stored facts, and its content.
    async fn facts_and_content(store: &Store) -> Vec<(i64, Option<String>, String)> {
        sqlx::query(
            "SELECT v.seq, f.facts, v.content FROM resource_version v \
             LEFT JOIN resource_facts f ON f.seq = v.seq WHERE v.deleted = 0",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("seq").unwrap(),
                r.try_get("facts").unwrap(),
                r.try_get("content").unwrap(),
            )
        })
        .collect()
    }

    /// The facts kept with each version are exactly those the policy reads from its JSON,
    /// and [`version_facts`] gives them (for a version without any, from its JSON).
    async fn stored_facts_are_the_facts_of_the_json(store: &Store, at_least: usize) {
        let rows = facts_and_content(store).await;
        assert!(rows.len() >= at_least, "only {} versions", rows.len());
        for (seq, facts, content) in &rows {
            let json: serde_json::Value = serde_json::from_str(content).unwrap();
            let expected = ResourceFacts::from_json(&json).unwrap();
            let stored = facts
                .as_deref()
                .unwrap_or_else(|| panic!("version {seq} has no facts"));
            assert_eq!(
                ResourceFacts::from_stored(stored),
                Some(expected),
                "version {seq}"
            );
        }
        // What the feed decides on, including versions written before facts were kept.
        let seqs: Vec<i64> = rows.iter().map(|(s, _, _)| *s).take(300).collect();
        sqlx::query(&format!(
            "DELETE FROM resource_facts WHERE seq IN ({})",
            seqs.iter()
                .step_by(2)
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ))
        .execute(store.pool())
        .await
        .unwrap();
        let mut pooled = store.reader().await.unwrap();
        let mut conn = Conn::Any(&mut pooled);
        let versions = conn
            .fetch_version_facts(
                &format!(
                    "SELECT {VERSION_FACTS_COLUMNS} FROM resource_version v \
                     LEFT JOIN resource_facts f ON f.seq = v.seq WHERE v.seq IN ({})",
                    seqs.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(versions.len(), seqs.len());
        let decided = version_facts(&mut conn, &versions).await.unwrap();
        for (v, f) in versions.iter().zip(decided) {
            let (_, _, content) = rows.iter().find(|(s, _, _)| *s == v.seq).unwrap();
            let json: serde_json::Value = serde_json::from_str(content).unwrap();
            assert_eq!(
                f.map(Result::unwrap),
                Some(ResourceFacts::from_json(&json).unwrap()),
                "version {}",
                v.seq
            );
        }
    }

    #[tokio::test]
    async fn the_demo_regions_stored_facts_are_those_of_its_json() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let region =
            careshare_demo::Region::new(careshare_demo::RegionConfig::new(40, 7, today)).unwrap();
        crate::import::load_demo_region(&store, &region, 40)
            .await
            .unwrap();
        stored_facts_are_the_facts_of_the_json(&store, 1000).await;
    }

    #[tokio::test]
    async fn the_fhir_examples_stored_facts_are_those_of_their_json() {
        let data = std::env::var_os("CARESHARE_FHIR_DATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
            });
        let folders = [
            data.join("fhir-r4-examples"),
            data.join("fhir-r4-validator-bundles"),
        ];
        for f in &folders {
            assert!(f.exists(), "no FHIR examples at {}", f.display());
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.sqlite").display());
        let store = Store::connect(&url).await.unwrap();
        crate::import::import_paths(&store, &folders).await.unwrap();
        stored_facts_are_the_facts_of_the_json(&store, 80).await;
    }

    #[test]
    fn the_aliased_columns_are_the_version_columns() {
        let aliased: Vec<String> = VERSION_COLUMNS
            .split(", ")
            .map(|c| format!("v.{c}"))
            .collect();
        assert_eq!(VERSION_COLUMNS_V, aliased.join(", "));
    }
}
