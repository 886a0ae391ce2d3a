//! The connection the store reads and writes through: the dialect-neutral pool's
//! (`sqlx::Any`), or — inside a PostgreSQL write transaction — the native one, which can
//! also bulk-load with COPY. The same SQL text runs on both.

use sqlx::{AnyConnection, PgConnection, Row};

use super::{FromStoreRow, StoreError, Stored, VersionFacts};

/// A bind value.
#[derive(Debug, Clone)]
pub enum Arg {
    I(i64),
    S(String),
    OptS(Option<String>),
}

/// A connection to run store SQL on.
pub enum Conn<'c> {
    Any(&'c mut AnyConnection),
    Pg(&'c mut PgConnection),
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::I(i) => q.bind(*i),
                Arg::S(s) => q.bind(s.as_str()),
                Arg::OptS(s) => q.bind(s.as_deref()),
            };
        }
        q
    }};
}

impl Conn<'_> {
    /// Rows of `resource_version` columns.
    pub async fn fetch_stored(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<Stored>, StoreError> {
        self.fetch_rows(sql, args).await
    }

    /// Rows of [`super::VERSION_FACTS_COLUMNS`].
    pub async fn fetch_version_facts(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<VersionFacts>, StoreError> {
        self.fetch_rows(sql, args).await
    }

    /// Every row of `sql`, each read as a `T`.
    async fn fetch_rows<T: FromStoreRow>(
        &mut self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Conn::Any(c) => bind_all!(sqlx::query::<sqlx::Any>(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(T::from_row)
                .collect::<Result<_, _>>()?,
            Conn::Pg(c) => bind_all!(sqlx::query::<sqlx::Postgres>(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(T::from_row)
                .collect::<Result<_, _>>()?,
        })
    }

    /// One integer column of one row.
    pub async fn fetch_i64(
        &mut self,
        sql: &str,
        args: &[Arg],
        column: &str,
    ) -> Result<i64, StoreError> {
        Ok(match self {
            Conn::Any(c) => bind_all!(sqlx::query::<sqlx::Any>(sql), args)
                .fetch_one(&mut **c)
                .await?
                .try_get(column)?,
            Conn::Pg(c) => bind_all!(sqlx::query::<sqlx::Postgres>(sql), args)
                .fetch_one(&mut **c)
                .await?
                .try_get(column)?,
        })
    }

    /// One text column of every row.
    pub async fn fetch_strings(
        &mut self,
        sql: &str,
        args: &[Arg],
        column: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(match self {
            Conn::Any(c) => bind_all!(sqlx::query::<sqlx::Any>(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| r.try_get(column))
                .collect::<Result<_, _>>()?,
            Conn::Pg(c) => bind_all!(sqlx::query::<sqlx::Postgres>(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| r.try_get(column))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Runs a statement.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(match self {
            Conn::Any(c) => bind_all!(sqlx::query::<sqlx::Any>(sql), args)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Pg(c) => bind_all!(sqlx::query::<sqlx::Postgres>(sql), args)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }
}
