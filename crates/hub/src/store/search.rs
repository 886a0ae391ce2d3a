//! Search and history as SQL over the version table and its index tables.
//!
//! Every query reads "as of" a snapshot: the change sequence number current when the first
//! page was asked for. The versions visible at snapshot S are those with `seq <= S` that
//! were not superseded by S. Later pages carry S in their `next` link, so paging visits each
//! match exactly once even while the data changes.

use super::conn::{Arg, Conn};
use super::{max_seq, StoreError, Stored, VERSION_COLUMNS, VERSION_COLUMNS_V};
use careshare_fhir::datetime::Range;
use careshare_fhir::search::{
    Clause, ClauseValue, PageToken, ParamKind, Prefix, SearchRequest, Sort, StringMode,
};

/// A page of results.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Stored>,
    /// Resources brought in by `_include`.
    pub included: Vec<Stored>,
    /// How many match in all (at the snapshot).
    pub total: i64,
    /// Where the next page starts, if there is one.
    pub next: Option<PageToken>,
    pub snapshot: i64,
}

/// Which history `_history` lists.
#[derive(Debug, Clone)]
pub enum HistoryScope {
    Instance(String, String),
    Type(String),
    System,
}

#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn i(&mut self, v: i64) -> String {
        self.args.push(Arg::I(v));
        format!("${}", self.args.len())
    }
    fn s(&mut self, v: impl Into<String>) -> String {
        self.args.push(Arg::S(v.into()));
        format!("${}", self.args.len())
    }
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

/// SQL for "stored range [lo_col, hi_col) satisfies prefix against s".
fn date_condition(sql: &mut Sql, prefix: Prefix, lo: &str, hi: &str, s: Range) -> String {
    match prefix {
        Prefix::Eq => format!("({lo} >= {} AND {hi} <= {})", sql.i(s.lo), sql.i(s.hi)),
        Prefix::Ne => format!("NOT ({lo} >= {} AND {hi} <= {})", sql.i(s.lo), sql.i(s.hi)),
        Prefix::Gt => format!("{hi} > {}", sql.i(s.hi)),
        Prefix::Lt => format!("{lo} < {}", sql.i(s.lo)),
        Prefix::Ge => format!("{hi} > {}", sql.i(s.lo)),
        Prefix::Le => format!("{lo} < {}", sql.i(s.hi)),
        Prefix::Sa => format!("{lo} >= {}", sql.i(s.hi)),
        Prefix::Eb => format!("{hi} <= {}", sql.i(s.lo)),
    }
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    "\u{10FFFF}".to_string()
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn push_visibility(sql: &mut Sql, snapshot: i64) {
    let s1 = sql.i(snapshot);
    let s2 = sql.i(snapshot);
    sql.push(&format!(
        " AND v.deleted = 0 AND v.seq <= {s1} AND (v.superseded_seq IS NULL OR v.superseded_seq > {s2})"
    ));
}

fn push_clauses(sql: &mut Sql, req: &SearchRequest) {
    let ty = req.resource_type.as_str();
    for clause in &req.clauses {
        match clause {
            Clause::Id(ids) => {
                let ps: Vec<String> = ids.iter().map(|i| sql.s(i.as_str())).collect();
                sql.push(&format!(" AND v.res_id IN ({})", ps.join(",")));
            }
            Clause::LastUpdated(values) => {
                let conds: Vec<String> = values
                    .iter()
                    .map(|(p, r)| {
                        date_condition(sql, *p, "v.last_updated", "(v.last_updated + 1)", *r)
                    })
                    .collect();
                sql.push(&format!(" AND ({})", conds.join(" OR ")));
            }
            Clause::Param { param, values } => {
                let table = match param.kind {
                    ParamKind::Token => "idx_token",
                    ParamKind::String => "idx_string",
                    ParamKind::Date => "idx_date",
                    ParamKind::Reference => "idx_reference",
                };
                let t = sql.s(ty);
                let p = sql.s(param.name);
                let conds: Vec<String> = values
                    .iter()
                    .map(|v| match v {
                        ClauseValue::Token(tok) => match (&tok.system, &tok.code) {
                            (Some(s), Some(c)) => {
                                format!(
                                    "(x.code = {} AND x.system = {})",
                                    sql.s(c.as_str()),
                                    sql.s(s.as_str())
                                )
                            }
                            (None, Some(c)) => format!("x.code = {}", sql.s(c.as_str())),
                            (Some(s), None) => format!("x.system = {}", sql.s(s.as_str())),
                            (None, None) => "1 = 0".to_string(),
                        },
                        ClauseValue::String(value, mode) => match mode {
                            StringMode::StartsWith => format!(
                                "(x.value >= {} AND x.value < {})",
                                sql.s(value.as_str()),
                                sql.s(prefix_upper_bound(value))
                            ),
                            StringMode::Exact => format!("x.exact = {}", sql.s(value.as_str())),
                            StringMode::Contains => format!(
                                "x.value LIKE {} ESCAPE '\\'",
                                sql.s(format!("%{}%", like_escape(value)))
                            ),
                        },
                        ClauseValue::Date(prefix, range) => {
                            date_condition(sql, *prefix, "x.lo", "x.hi", *range)
                        }
                        ClauseValue::Reference(target) => {
                            format!("x.target = {}", sql.s(target.as_str()))
                        }
                    })
                    .collect();
                sql.push(&format!(
                    " AND v.seq IN (SELECT x.seq FROM {table} x WHERE x.res_type = {t} AND x.param = {p} AND ({}))",
                    conds.join(" OR ")
                ));
            }
        }
    }
}

async fn fetch(conn: &mut Conn<'_>, sql: &Sql) -> Result<Vec<Stored>, StoreError> {
    conn.fetch_stored(&sql.text, &sql.args).await
}

async fn count(conn: &mut Conn<'_>, sql: &Sql) -> Result<i64, StoreError> {
    conn.fetch_i64(&sql.text, &sql.args, "n").await
}

fn search_sql(req: &SearchRequest, snapshot: i64, after: Option<&str>, select: &str) -> Sql {
    let mut sql = Sql::default();
    let t = sql.s(req.resource_type.as_str());
    sql.push(&format!(
        "SELECT {select} FROM resource_version v WHERE v.res_type = {t}"
    ));
    push_visibility(&mut sql, snapshot);
    push_clauses(&mut sql, req);
    if let Some(after) = after {
        match req.sort {
            Sort::Id => {
                let a = sql.s(after);
                sql.push(&format!(" AND v.res_id > {a}"));
            }
            Sort::LastUpdatedAsc | Sort::LastUpdatedDesc => {
                let after: i64 = after.parse().unwrap_or(0);
                let a = sql.i(after);
                let op = if req.sort == Sort::LastUpdatedAsc {
                    ">"
                } else {
                    "<"
                };
                sql.push(&format!(" AND v.seq {op} {a}"));
            }
        }
    }
    sql
}

/// The snapshot a search or history reads as of: the page token's, or the latest change.
pub async fn snapshot_of(conn: &mut Conn<'_>, page: Option<&PageToken>) -> Result<i64, StoreError> {
    match page {
        Some(p) => Ok(p.snapshot),
        None => max_seq(conn).await,
    }
}

/// Where a row sits in a search's order: what a page token's `after` holds.
pub fn search_key(req: &SearchRequest, s: &Stored) -> String {
    match req.sort {
        Sort::Id => s.id.clone(),
        _ => s.seq.to_string(),
    }
}

/// Up to `limit` matches of a search, in its order, as of `snapshot`, after the row whose
/// [`search_key`] is `after`.
pub async fn search_rows(
    conn: &mut Conn<'_>,
    req: &SearchRequest,
    snapshot: i64,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let cols = VERSION_COLUMNS_V;
    let mut sql = search_sql(req, snapshot, after, cols);
    sql.push(match req.sort {
        Sort::Id => " ORDER BY v.res_id",
        Sort::LastUpdatedAsc => " ORDER BY v.seq",
        Sort::LastUpdatedDesc => " ORDER BY v.seq DESC",
    });
    let l = sql.i(limit as i64);
    sql.push(&format!(" LIMIT {l}"));
    fetch(conn, &sql).await
}

/// Runs a search with no access filter (conditional operations inside a write): the
/// first page reads as of the latest change, later pages as of their token's snapshot.
pub async fn search(conn: &mut Conn<'_>, req: &SearchRequest) -> Result<Page, StoreError> {
    let snapshot = snapshot_of(conn, req.page.as_ref()).await?;
    let after = req.page.as_ref().map(|p| p.after.as_str());
    let total = count(conn, &search_sql(req, snapshot, None, "COUNT(*) AS n")).await?;
    if req.summary_count {
        return Ok(Page {
            total,
            snapshot,
            ..Page::default()
        });
    }
    let mut entries = search_rows(conn, req, snapshot, after, req.count + 1).await?;
    let next = if entries.len() > req.count {
        entries.truncate(req.count);
        entries.last().map(|last| PageToken {
            snapshot,
            after: search_key(req, last),
        })
    } else {
        None
    };
    let included = include(conn, req, &entries, snapshot).await?;
    Ok(Page {
        entries,
        included,
        total,
        next,
        snapshot,
    })
}

/// Resources referenced from `entries` through the request's `_include` parameters, as of
/// the snapshot, each once.
pub async fn include(
    conn: &mut Conn<'_>,
    req: &SearchRequest,
    entries: &[Stored],
    snapshot: i64,
) -> Result<Vec<Stored>, StoreError> {
    if req.includes.is_empty() || entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let seqs: Vec<String> = entries.iter().map(|e| sql.i(e.seq)).collect();
    let params: Vec<String> = req.includes.iter().map(|p| sql.s(p.name)).collect();
    sql.push(&format!(
        "SELECT DISTINCT target FROM idx_reference WHERE seq IN ({}) AND param IN ({})",
        seqs.join(","),
        params.join(",")
    ));
    let targets = conn.fetch_strings(&sql.text, &sql.args, "target").await?;
    let mut out = Vec::new();
    for target in targets {
        let Some((ty, id)) = target.split_once('/') else {
            continue;
        };
        let mut sql = Sql::default();
        let t = sql.s(ty);
        let i = sql.s(id);
        sql.push(&format!(
            "SELECT {VERSION_COLUMNS} FROM resource_version v WHERE v.res_type = {t} AND v.res_id = {i}"
        ));
        push_visibility(&mut sql, snapshot);
        out.extend(fetch(conn, &sql).await?);
    }
    out.sort_by(|a, b| (&a.res_type, &a.id).cmp(&(&b.res_type, &b.id)));
    Ok(out)
}

/// Up to `limit` versions in a history scope, newest first, as of `snapshot`, changed at
/// or after `since`, older than the change `before` (a seq).
pub async fn history_rows(
    conn: &mut Conn<'_>,
    scope: &HistoryScope,
    since: Option<i64>,
    snapshot: i64,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let mut sql = Sql::default();
    let s = sql.i(snapshot);
    sql.push(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version WHERE seq <= {s}"
    ));
    match scope {
        HistoryScope::Instance(t, i) => {
            let t = sql.s(t.as_str());
            let i = sql.s(i.as_str());
            sql.push(&format!(" AND res_type = {t} AND res_id = {i}"));
        }
        HistoryScope::Type(t) => {
            let t = sql.s(t.as_str());
            sql.push(&format!(" AND res_type = {t}"));
        }
        HistoryScope::System => {}
    }
    if let Some(since) = since {
        let s = sql.i(since);
        sql.push(&format!(" AND last_updated >= {s}"));
    }
    if let Some(before) = before {
        let a = sql.i(before);
        sql.push(&format!(" AND seq < {a}"));
    }
    let lim = sql.i(limit as i64);
    sql.push(&format!(" ORDER BY seq DESC LIMIT {lim}"));
    fetch(conn, &sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_strings() {
        let hi = prefix_upper_bound("kha");
        assert_eq!(hi, "khb");
        for s in ["kha", "khan", "kha\u{10FFFF}"] {
            assert!(s >= "kha" && s < hi.as_str());
        }
        assert!("khb" >= hi.as_str());
    }
}
