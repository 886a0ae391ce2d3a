//! Writing versions: one [`WriteTx`] at a time, rows buffered and inserted in batches.

use careshare_fhir::datetime::format_instant;
use careshare_fhir::search::IndexEntries;
use careshare_policy::ResourceFacts;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Postgres, Transaction};
use tokio::sync::MutexGuard;

use super::conn::{Arg as ConnArg, Conn};
use super::{read_current, FromStoreRow, Store, StoreError, Stored, VERSION_COLUMNS};

pub(crate) struct WriterState {
    pub(crate) last_updated: i64,
}

/// What a write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub seq: i64,
    pub version: i64,
    pub last_updated: i64,
}

/// One row of `resource_version`.
struct VersionRow {
    seq: i64,
    res_type: String,
    id: String,
    version: i64,
    last_updated: i64,
    deleted: i64,
    content: Option<String>,
}

/// Rows waiting to be inserted. Flushed before any read inside the transaction and at
/// commit, so the transaction always reads its own writes.
#[derive(Default)]
struct Buffer {
    versions: Vec<VersionRow>,
    tokens: Vec<(i64, String, &'static str, String, String)>,
    strings: Vec<(i64, String, &'static str, String, String)>,
    dates: Vec<(i64, String, &'static str, i64, i64)>,
    refs: Vec<(i64, String, &'static str, String)>,
    compartments: Vec<(i64, String)>,
    /// Each version's access facts ([`careshare_policy::ResourceFacts::to_stored`]).
    facts: Vec<(i64, String)>,
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

/// A database transaction of either kind.
enum Tx {
    Any(super::StoreTx),
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Any(t) => Conn::Any(&mut *t),
            Tx::Pg(t) => Conn::Pg(&mut *t),
        }
    }
}

/// The single write transaction. Holding it holds the hub's write lock.
pub struct WriteTx<'a> {
    _guard: MutexGuard<'a, WriterState>,
    tx: Tx,
    next_seq: i64,
    now: i64,
    buffer: Buffer,
}

/// A bind value for a batched statement.
enum Arg<'v> {
    I(i64),
    S(&'v str),
    OptS(Option<&'v str>),
}

/// Rows per multi-row INSERT (SQLite): well under its bind-parameter limit.
const ROWS_PER_INSERT: usize = 400;
/// Versions buffered before a COPY (PostgreSQL).
const ROWS_PER_COPY: usize = 5000;

async fn insert_rows<'v>(
    conn: &mut AnyConnection,
    table_and_columns: &str,
    width: usize,
    rows: impl Iterator<Item = Vec<Arg<'v>>>,
) -> Result<(), StoreError> {
    let rows: Vec<Vec<Arg<'v>>> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = format!("INSERT INTO {table_and_columns} VALUES ");
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            // Positional `?` placeholders: SQLite looks a numbered or named parameter up by
            // scanning the statement's parameter list, which is quadratic for wide batches.
            for c in 0..width {
                if c > 0 {
                    sql.push(',');
                }
                sql.push('?');
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for a in row {
                q = match a {
                    Arg::I(i) => q.bind(*i),
                    Arg::S(s) => q.bind(*s),
                    Arg::OptS(s) => q.bind(*s),
                };
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Puts `meta.versionId` and `meta.lastUpdated` into `resource`, placing a new `meta`
/// right after `id` as FHIR examples do.
pub fn stamp_meta(resource: &mut Value, version: i64, last_updated: i64) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let stamp = |meta: &mut Map<String, Value>| {
        meta.insert("versionId".into(), Value::String(version.to_string()));
        meta.insert(
            "lastUpdated".into(),
            Value::String(format_instant(last_updated)),
        );
    };
    if let Some(Value::Object(meta)) = obj.get_mut("meta") {
        stamp(meta);
        return;
    }
    let mut meta = Map::new();
    stamp(&mut meta);
    let old = std::mem::take(obj);
    let anchor = if old.contains_key("id") {
        "id"
    } else {
        "resourceType"
    };
    for (k, v) in old {
        let at_anchor = k == anchor;
        obj.insert(k, v);
        if at_anchor {
            obj.insert("meta".into(), Value::Object(meta.clone()));
        }
    }
    if !obj.contains_key("meta") {
        obj.insert("meta".into(), Value::Object(meta));
    }
}

impl Store {
    /// Starts the write transaction, waiting for the write lock.
    pub async fn begin_write(&self) -> Result<WriteTx<'_>, StoreError> {
        let mut guard = self.writer.lock().await;
        let mut tx = match &self.pg {
            Some(pg) => {
                let mut t = pg.begin().await?;
                // Serialises writers across hub processes sharing one database.
                sqlx::query("SELECT pg_advisory_xact_lock(7270613)")
                    .execute(&mut *t)
                    .await?;
                Tx::Pg(t)
            }
            None => Tx::Any(self.begin().await?),
        };
        let max_seq = super::max_seq(&mut tx.conn()).await?;
        let wall = chrono::Utc::now().timestamp_micros();
        let now = wall.max(guard.last_updated + 1);
        guard.last_updated = now;
        Ok(WriteTx {
            _guard: guard,
            tx,
            next_seq: max_seq + 1,
            now,
            buffer: Buffer::default(),
        })
    }
}

impl WriteTx<'_> {
    /// The instant every version written in this transaction carries.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The transaction's connection, for reads: buffered writes are flushed first.
    pub async fn conn(&mut self) -> Result<Conn<'_>, StoreError> {
        self.flush().await?;
        Ok(self.tx.conn())
    }

    /// The current version of `Type/id` as this transaction sees it.
    pub async fn current(
        &mut self,
        res_type: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let mut conn = self.conn().await?;
        read_current(&mut conn, res_type, id).await
    }

    /// The current versions of many ids of one type (for bulk import).
    pub async fn current_many(
        &mut self,
        res_type: &str,
        ids: &[&str],
    ) -> Result<Vec<Stored>, StoreError> {
        self.flush().await?;
        if let Tx::Pg(tx) = &mut self.tx {
            // One array parameter: a short statement PostgreSQL plans once, however many ids.
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let rows = sqlx::query::<Postgres>(&format!(
                "SELECT {VERSION_COLUMNS} FROM resource_version \
                 WHERE res_type = $1 AND superseded_seq IS NULL AND res_id = ANY($2)"
            ))
            .bind(res_type)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
            return Ok(rows
                .iter()
                .map(Stored::from_row)
                .collect::<Result<_, _>>()?);
        }
        let mut conn = self.conn().await?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT {VERSION_COLUMNS} FROM resource_version \
                 WHERE res_type = $1 AND superseded_seq IS NULL AND res_id IN ({})",
                super::numbered_params(2, chunk.len())
            );
            let mut args = vec![ConnArg::S(res_type.to_string())];
            args.extend(chunk.iter().map(|i| ConnArg::S(i.to_string())));
            out.extend(conn.fetch_stored(&sql, &args).await?);
        }
        Ok(out)
    }

    /// Writes a new version of `Type/id` after `previous` (None: first version). `resource`
    /// None writes a deletion. The resource's `meta.versionId` and `meta.lastUpdated` are
    /// set here; `entries` are its search index entries.
    pub async fn put_version(
        &mut self,
        res_type: &str,
        id: &str,
        previous: Option<&Stored>,
        resource: Option<(&mut Value, &IndexEntries)>,
    ) -> Result<Written, StoreError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let version = previous.map_or(1, |p| p.version + 1);
        if let Some(prev) = previous {
            self.conn()
                .await?
                .execute(
                    "UPDATE resource_version SET superseded_seq = $1 WHERE seq = $2",
                    &[ConnArg::I(seq), ConnArg::I(prev.seq)],
                )
                .await?;
        }
        let content = match resource {
            Some((resource, entries)) => {
                stamp_meta(resource, version, self.now);
                let b = &mut self.buffer;
                let ty = res_type.to_string();
                for (p, s, c) in &entries.tokens {
                    b.tokens.push((seq, ty.clone(), p, s.clone(), c.clone()));
                }
                for (p, v, exact) in &entries.strings {
                    b.strings
                        .push((seq, ty.clone(), p, v.clone(), exact.clone()));
                }
                for (p, lo, hi) in &entries.dates {
                    b.dates.push((seq, ty.clone(), p, *lo, *hi));
                }
                for (p, t) in &entries.references {
                    b.refs.push((seq, ty.clone(), p, t.clone()));
                }
                for pid in &entries.patients {
                    b.compartments.push((seq, pid.clone()));
                }
                // The facts the access policy decides on, worked out once per version (a
                // resource they cannot be read from has none; it is decided from its JSON).
                if let Ok(facts) = ResourceFacts::from_json(resource) {
                    b.facts.push((seq, facts.to_stored()));
                }
                Some(
                    serde_json::to_string(resource)
                        .map_err(|e| StoreError::Corrupt(format!("{res_type}/{id}"), e))?,
                )
            }
            None => None,
        };
        let deleted = i64::from(content.is_none());
        self.buffer.versions.push(VersionRow {
            seq,
            res_type: res_type.to_string(),
            id: id.to_string(),
            version,
            last_updated: self.now,
            deleted,
            content,
        });
        // SQLite takes the rows in multi-row INSERTs as they come; PostgreSQL takes them in
        // as few COPYs as the transaction allows (each COPY has a fixed cost).
        let limit = match self.tx {
            Tx::Any(_) => ROWS_PER_INSERT,
            Tx::Pg(_) => ROWS_PER_COPY,
        };
        if self.buffer.versions.len() >= limit {
            self.flush().await?;
        }
        Ok(Written {
            seq,
            version,
            last_updated: self.now,
        })
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(&mut self.buffer);
        let conn: &mut AnyConnection = match &mut self.tx {
            Tx::Any(t) => t,
            Tx::Pg(t) => return copy_rows(t, &b).await,
        };
        insert_rows(
            conn,
            "resource_version (seq, res_type, res_id, version, last_updated, deleted, content)",
            7,
            b.versions.iter().map(|r| {
                vec![
                    Arg::I(r.seq),
                    Arg::S(&r.res_type),
                    Arg::S(&r.id),
                    Arg::I(r.version),
                    Arg::I(r.last_updated),
                    Arg::I(r.deleted),
                    Arg::OptS(r.content.as_deref()),
                ]
            }),
        )
        .await?;
        insert_rows(
            conn,
            "idx_token (seq, res_type, param, system, code)",
            5,
            b.tokens.iter().map(|(s, t, p, sy, c)| {
                vec![Arg::I(*s), Arg::S(t), Arg::S(p), Arg::S(sy), Arg::S(c)]
            }),
        )
        .await?;
        insert_rows(
            conn,
            "idx_string (seq, res_type, param, value, exact)",
            5,
            b.strings.iter().map(|(s, t, p, v, e)| {
                vec![Arg::I(*s), Arg::S(t), Arg::S(p), Arg::S(v), Arg::S(e)]
            }),
        )
        .await?;
        insert_rows(
            conn,
            "idx_date (seq, res_type, param, lo, hi)",
            5,
            b.dates.iter().map(|(s, t, p, lo, hi)| {
                vec![Arg::I(*s), Arg::S(t), Arg::S(p), Arg::I(*lo), Arg::I(*hi)]
            }),
        )
        .await?;
        insert_rows(
            conn,
            "idx_reference (seq, res_type, param, target)",
            4,
            b.refs
                .iter()
                .map(|(s, t, p, tg)| vec![Arg::I(*s), Arg::S(t), Arg::S(p), Arg::S(tg)]),
        )
        .await?;
        insert_rows(
            conn,
            "compartment (seq, patient_id)",
            2,
            b.compartments
                .iter()
                .map(|(s, p)| vec![Arg::I(*s), Arg::S(p)]),
        )
        .await?;
        insert_rows(
            conn,
            "resource_facts (seq, facts)",
            2,
            b.facts.iter().map(|(s, f)| vec![Arg::I(*s), Arg::S(f)]),
        )
        .await?;
        Ok(())
    }

    /// Commits everything written. Dropping a WriteTx without committing rolls it back.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        match self.tx {
            Tx::Any(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Appends `s` escaped for PostgreSQL's COPY text format (backslash, tab, newline, return).
pub fn copy_text(s: &str, out: &mut String) {
    // Most values need no escaping: copy them whole.
    if !s
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// One COPY (text format) per table: PostgreSQL's bulk-load path.
async fn copy_rows(tx: &mut Transaction<'static, Postgres>, b: &Buffer) -> Result<(), StoreError> {
    async fn copy(
        tx: &mut Transaction<'static, Postgres>,
        statement: &str,
        text: String,
    ) -> Result<(), StoreError> {
        if text.is_empty() {
            return Ok(());
        }
        let mut c = tx.copy_in_raw(statement).await?;
        c.send(text.into_bytes()).await?;
        c.finish().await?;
        Ok(())
    }
    let mut t = String::new();
    for r in &b.versions {
        t.push_str(&format!("{}\t", r.seq));
        copy_text(&r.res_type, &mut t);
        t.push('\t');
        copy_text(&r.id, &mut t);
        t.push_str(&format!(
            "\t{}\t{}\t{}\t",
            r.version, r.last_updated, r.deleted
        ));
        match &r.content {
            Some(c) => copy_text(c, &mut t),
            None => t.push_str("\\N"),
        }
        t.push('\n');
    }
    copy(tx, "COPY resource_version (seq, res_type, res_id, version, last_updated, deleted, content) FROM STDIN", t).await?;
    let five = |rows: &mut dyn Iterator<Item = (i64, &str, &str, String, String)>| {
        let mut t = String::new();
        for (seq, ty, p, a, c) in rows {
            t.push_str(&format!("{seq}\t"));
            copy_text(ty, &mut t);
            t.push('\t');
            copy_text(p, &mut t);
            t.push('\t');
            copy_text(&a, &mut t);
            t.push('\t');
            copy_text(&c, &mut t);
            t.push('\n');
        }
        t
    };
    let tokens = five(
        &mut b
            .tokens
            .iter()
            .map(|(s, t, p, sy, c)| (*s, t.as_str(), *p, sy.clone(), c.clone())),
    );
    copy(
        tx,
        "COPY idx_token (seq, res_type, param, system, code) FROM STDIN",
        tokens,
    )
    .await?;
    let strings = five(
        &mut b
            .strings
            .iter()
            .map(|(s, t, p, v, e)| (*s, t.as_str(), *p, v.clone(), e.clone())),
    );
    copy(
        tx,
        "COPY idx_string (seq, res_type, param, value, exact) FROM STDIN",
        strings,
    )
    .await?;
    let dates = five(
        &mut b
            .dates
            .iter()
            .map(|(s, t, p, lo, hi)| (*s, t.as_str(), *p, lo.to_string(), hi.to_string())),
    );
    copy(
        tx,
        "COPY idx_date (seq, res_type, param, lo, hi) FROM STDIN",
        dates,
    )
    .await?;
    let mut t = String::new();
    for (s, ty, p, tg) in &b.refs {
        t.push_str(&format!("{s}\t"));
        copy_text(ty, &mut t);
        t.push('\t');
        copy_text(p, &mut t);
        t.push('\t');
        copy_text(tg, &mut t);
        t.push('\n');
    }
    copy(
        tx,
        "COPY idx_reference (seq, res_type, param, target) FROM STDIN",
        t,
    )
    .await?;
    let seq_and_text = |rows: &[(i64, String)]| {
        let mut t = String::new();
        for (seq, text) in rows {
            t.push_str(&format!("{seq}\t"));
            copy_text(text, &mut t);
            t.push('\n');
        }
        t
    };
    copy(
        tx,
        "COPY compartment (seq, patient_id) FROM STDIN",
        seq_and_text(&b.compartments),
    )
    .await?;
    copy(
        tx,
        "COPY resource_facts (seq, facts) FROM STDIN",
        seq_and_text(&b.facts),
    )
    .await?;
    Ok(())
}
