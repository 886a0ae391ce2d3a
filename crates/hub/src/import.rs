//! Loading FHIR R4 JSON from files (resources, Bundles, NDJSON) and the demo region.
//!
//! Everything goes through [`crate::engine`], so imported data is validated exactly like
//! data written over the API. Ids come from the input (resource ids, `urn:uuid` fullUrls, or
//! a hash of the content), so importing the same input twice changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use careshare_fhir::bundle::{parse_bundle, Bundle, BundleType};
use careshare_fhir::{validate, Issue, ReferenceRules};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::engine::{self, EngineError, IdMode, Outcome, WriteStatus};
use crate::store::{Store, StoreError};

/// Resources per write transaction when importing in bulk: large enough that commits and
/// lookups stay a small share of the work (PostgreSQL loads them with COPY).
const CHUNK: usize = 10_000;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// (where, why) for each refused resource or Bundle.
    pub rejected: Vec<(String, String)>,
}

impl Summary {
    fn count(&mut self, o: &Outcome) {
        match o.status {
            WriteStatus::Created => self.created += 1,
            WriteStatus::Updated | WriteStatus::Deleted => self.updated += 1,
            WriteStatus::Unchanged | WriteStatus::Existing | WriteStatus::Read => {
                self.unchanged += 1
            }
        }
    }

    fn record(&mut self, at: String, r: Result<Outcome, EngineError>) -> Result<(), ImportError> {
        match r {
            Ok(o) => self.count(&o),
            Err(EngineError::Store(e)) => return Err(e.into()),
            Err(e) => self.rejected.push((at, describe(&e))),
        }
        Ok(())
    }

    /// Resources written or confirmed unchanged.
    pub fn accepted(&self) -> usize {
        self.created + self.updated + self.unchanged
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "created {}, updated {}, unchanged {}, rejected {}",
            self.created,
            self.updated,
            self.unchanged,
            self.rejected.len()
        )?;
        for (at, why) in &self.rejected {
            writeln!(f, "  rejected {at}: {why}")?;
        }
        Ok(())
    }
}

/// An import that could not run (as opposed to input that was refused).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A refusal in words, with the element it concerns.
pub fn describe(e: &EngineError) -> String {
    let join = |issues: &[Issue]| {
        issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    match e {
        EngineError::Invalid(inv) => join(&inv.issues),
        EngineError::BadRequest(issues) => join(issues),
        other => other.to_string(),
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ImportError::Io(path.into(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            collect_files(&p, out)?;
        }
    } else {
        let name = path.to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".ndjson") || !path.is_dir() {
            out.push(path.to_path_buf());
        }
    }
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb
}

/// Imports files and folders (recursively: `.json` resources and Bundles, `.ndjson`).
pub async fn import_paths(store: &Store, paths: &[PathBuf]) -> Result<Summary, ImportError> {
    let mut files = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(ImportError::Io(
                p.clone(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        }
        collect_files(p, &mut files)?;
    }
    // Two files may give the same resource (same type and id). The last one is imported;
    // the earlier ones are reported, so that importing the same input again changes nothing.
    let mut last_seen: HashMap<(String, String), String> = HashMap::new();
    for_each_single_resource(&files, |at, key, v| {
        if validate(v, ReferenceRules::InBundle).is_ok() {
            last_seen.insert(key, at.to_string());
        }
    })?;
    let superseded = |at: &str, key: &(String, String), v: &Value| -> Option<String> {
        match last_seen.get(key) {
            Some(last) if last != at && validate(v, ReferenceRules::InBundle).is_ok() => Some(format!(
                "superseded: the same resource ({}/{}) is given again in {last}, which is imported instead",
                key.0, key.1
            )),
            _ => None,
        }
    };
    let pb = bar(files.len() as u64, "files");
    let mut summary = Summary::default();
    let mut pending: Vec<(String, Value)> = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        pb.set_message(name.clone());
        let bytes = std::fs::read(file).map_err(|e| ImportError::Io(file.clone(), e))?;
        let mut take = |at: String, v: Value, summary: &mut Summary| match superseded(
            &at,
            &engine::import_key(&v),
            &v,
        ) {
            Some(why) => summary.rejected.push((at, why)),
            None => pending.push((at, v)),
        };
        if is_ndjson(file) {
            for (n, line) in ndjson_lines(&bytes) {
                let at = format!("{name}:{n}");
                match careshare_fhir::parse_json(line) {
                    Ok(v) => take(at, v, &mut summary),
                    Err(e) => summary.rejected.push((at, format!("not valid JSON: {e}"))),
                }
            }
        } else {
            match careshare_fhir::parse_json(&bytes) {
                Ok(v) if is_bundle(&v) => {
                    flush(store, &mut pending, &mut summary).await?;
                    import_bundle(store, &name, v, &mut summary, &superseded).await?;
                }
                Ok(v) => take(name, v, &mut summary),
                Err(e) => summary
                    .rejected
                    .push((name, format!("not valid JSON: {e}"))),
            }
        }
        if pending.len() >= CHUNK {
            flush(store, &mut pending, &mut summary).await?;
        }
        pb.inc(1);
    }
    flush(store, &mut pending, &mut summary).await?;
    pb.finish_and_clear();
    Ok(summary)
}

fn is_ndjson(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "ndjson")
}

fn is_bundle(v: &Value) -> bool {
    v.get("resourceType").and_then(Value::as_str) == Some("Bundle")
}

/// Non-blank lines with their 1-based numbers.
fn ndjson_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| (i + 1, l))
}

/// Calls `f` with each resource that is imported as it is (on its own, in NDJSON, or as an
/// entry of a collection), with its location and import identity.
fn for_each_single_resource(
    files: &[PathBuf],
    mut f: impl FnMut(&str, (String, String), &Value),
) -> Result<(), ImportError> {
    for file in files {
        let name = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|e| ImportError::Io(file.clone(), e))?;
        if is_ndjson(file) {
            for (n, line) in ndjson_lines(&bytes) {
                if let Ok(v) = careshare_fhir::parse_json(line) {
                    f(&format!("{name}:{n}"), engine::import_key(&v), &v);
                }
            }
        } else if let Ok(v) = careshare_fhir::parse_json(&bytes) {
            if !is_bundle(&v) {
                f(&name, engine::import_key(&v), &v);
            } else if let Ok(b) = parse_bundle(v) {
                if is_collection(&b.bundle_type) {
                    for e in &b.entries {
                        if let Some(r) = &e.resource {
                            f(
                                &entry_location(&name, e.index),
                                entry_key(e.full_url.as_deref(), r),
                                r,
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn is_collection(t: &BundleType) -> bool {
    matches!(
        t,
        BundleType::Collection | BundleType::Searchset | BundleType::History
    )
}

fn entry_location(file: &str, index: usize) -> String {
    format!("{file} entry {index}")
}

fn entry_key(full_url: Option<&str>, r: &Value) -> (String, String) {
    (
        r.get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        engine::import_id(full_url, r),
    )
}

async fn flush(
    store: &Store,
    pending: &mut Vec<(String, Value)>,
    summary: &mut Summary,
) -> Result<(), ImportError> {
    if pending.is_empty() {
        return Ok(());
    }
    let (names, resources): (Vec<String>, Vec<Value>) = std::mem::take(pending).into_iter().unzip();
    let results = engine::upsert_many(store, resources).await?;
    for (name, r) in names.into_iter().zip(results) {
        summary.record(name, r)?;
    }
    Ok(())
}

/// Tells whether the resource at a location is set aside for a later one with the same
/// identity, and why.
type Superseded<'a> = dyn Fn(&str, &(String, String), &Value) -> Option<String> + 'a;

async fn import_bundle(
    store: &Store,
    name: &str,
    value: Value,
    summary: &mut Summary,
    superseded: &Superseded<'_>,
) -> Result<(), ImportError> {
    let keep = value.clone();
    let bundle = match parse_bundle(value) {
        Ok(b) => b,
        Err(issues) => {
            summary.rejected.push((
                name.to_string(),
                issues
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
            return Ok(());
        }
    };
    match bundle.bundle_type {
        BundleType::Transaction => {
            match engine::transaction(store, &mut engine::Trusted, bundle, IdMode::Import).await {
                Ok(outcomes) => outcomes.iter().for_each(|o| summary.count(o)),
                Err(EngineError::Store(e)) => return Err(e.into()),
                Err(e) => summary.rejected.push((name.to_string(), describe(&e))),
            }
        }
        BundleType::Batch => {
            for (i, r) in engine::batch(store, &mut engine::Trusted, bundle, IdMode::Import)
                .await
                .into_iter()
                .enumerate()
            {
                summary.record(format!("{name} entry {i}"), r)?;
            }
        }
        BundleType::Collection | BundleType::Searchset | BundleType::History => {
            let mut entries = Vec::new();
            for mut e in bundle.entries {
                let Some(r) = &e.resource else { continue };
                let at = entry_location(name, e.index);
                if let Some(why) = superseded(&at, &entry_key(e.full_url.as_deref(), r), r) {
                    summary.rejected.push((at, why));
                    continue;
                }
                e.request = None;
                entries.push(e);
            }
            // All together first, so entries that refer to each other by fullUrl are
            // linked; if any entry is refused, each on its own so the rest still load.
            let together = Bundle {
                bundle_type: BundleType::Transaction,
                entries: entries.clone(),
            };
            match engine::transaction(store, &mut engine::Trusted, together, IdMode::Import).await {
                Ok(outcomes) => outcomes.iter().for_each(|o| summary.count(o)),
                Err(EngineError::Store(e)) => return Err(e.into()),
                Err(_) => {
                    let each = Bundle {
                        bundle_type: BundleType::Batch,
                        entries,
                    };
                    let indices: Vec<usize> = each.entries.iter().map(|e| e.index).collect();
                    for (i, r) in indices
                        .into_iter()
                        .zip(engine::batch(store, &mut engine::Trusted, each, IdMode::Import).await)
                    {
                        summary.record(entry_location(name, i), r)?;
                    }
                }
            }
        }
        _ => {
            // Documents and messages are resources in their own right.
            let mut results = engine::upsert_many(store, vec![keep]).await?;
            summary.record(name.to_string(), results.remove(0))?;
        }
    }
    Ok(())
}

/// Loads a generated demo region: its structure, then patients in chunks, with a progress bar.
pub async fn load_demo_region(
    store: &Store,
    region: &careshare_demo::Region,
    patients: usize,
) -> Result<Summary, ImportError> {
    load_batches(store, region.structure(), region.patients(), patients).await
}

/// Loads resources given as a structure (organisations, staff…) and then per-patient
/// batches, `CHUNK` resources per write transaction, with a progress bar over patients.
pub async fn load_batches(
    store: &Store,
    structure: Vec<Value>,
    patients: impl IntoIterator<Item = Vec<Value>>,
    patient_count: usize,
) -> Result<Summary, ImportError> {
    let mut summary = Summary::default();
    let mut pending: Vec<(String, Value)> = structure
        .into_iter()
        .map(|r| (resource_key(&r), r))
        .collect();
    flush(store, &mut pending, &mut summary).await?;
    let pb = bar(patient_count as u64, "patients");
    for patient in patients {
        pending.extend(patient.into_iter().map(|r| (resource_key(&r), r)));
        if pending.len() >= CHUNK {
            flush(store, &mut pending, &mut summary).await?;
        }
        pb.inc(1);
    }
    flush(store, &mut pending, &mut summary).await?;
    pb.finish_and_clear();
    Ok(summary)
}

fn resource_key(r: &Value) -> String {
    format!(
        "{}/{}",
        r.get("resourceType").and_then(Value::as_str).unwrap_or("?"),
        r.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}
