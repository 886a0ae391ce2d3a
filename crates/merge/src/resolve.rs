//! Applying a person's decisions to a conflicted merge.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::path::pointer_tokens;
use crate::{Choice, Conflict, ResolveError};

/// Applies one choice per conflict to `merged_so_far`.
pub(crate) fn apply<I, S>(
    mut merged: Option<Value>,
    conflicts: &[Conflict],
    choices: I,
) -> Result<Option<Value>, ResolveError>
where
    I: IntoIterator<Item = (S, Choice)>,
    S: Into<String>,
{
    let mut by_path: BTreeMap<String, Choice> = BTreeMap::new();
    for (path, choice) in choices {
        let path = path.into();
        if by_path.contains_key(&path) {
            return Err(ResolveError::DuplicateChoice(path));
        }
        by_path.insert(path, choice);
    }
    let known: HashSet<&str> = conflicts.iter().map(|c| c.path.as_str()).collect();
    if let Some(unknown) = by_path.keys().find(|path| !known.contains(path.as_str())) {
        return Err(ResolveError::UnknownPath(unknown.clone()));
    }

    let mut edits = Vec::with_capacity(conflicts.len());
    for conflict in conflicts {
        let choice = by_path
            .get(&conflict.path)
            .ok_or_else(|| ResolveError::MissingChoice(conflict.path.clone()))?;
        let tokens = pointer_tokens(&conflict.pointer).ok_or_else(|| invalid(conflict))?;
        let value = match choice {
            Choice::Ours => conflict.ours.clone(),
            Choice::Theirs => conflict.theirs.clone(),
            Choice::Base => conflict.base.clone(),
            Choice::Combined(value) => Some(value.clone()),
        };
        edits.push((tokens, value, conflict));
    }

    // Conflicts never nest, so applying them from the last location to the
    // first keeps every array index valid even when a choice removes an item.
    edits.sort_by(|a, b| compare_tokens(&b.0, &a.0));
    for (tokens, value, conflict) in edits {
        set(&mut merged, &tokens, value).ok_or_else(|| invalid(conflict))?;
    }
    Ok(merged)
}

fn invalid(conflict: &Conflict) -> ResolveError {
    ResolveError::InvalidPointer {
        path: conflict.path.clone(),
        pointer: conflict.pointer.clone(),
    }
}

fn compare_tokens(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<usize>(), y.parse::<usize>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Puts `value` at the location (or removes what is there when `None`).
/// `None` when the location's parent does not exist.
fn set(root: &mut Option<Value>, tokens: &[String], value: Option<Value>) -> Option<()> {
    let Some((last, parents)) = tokens.split_last() else {
        *root = value;
        return Some(());
    };
    let mut node = root.as_mut()?;
    for token in parents {
        node = match node {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match (node, value) {
        (Value::Object(map), Some(value)) => {
            map.insert(last.clone(), value);
        }
        (Value::Object(map), None) => {
            map.shift_remove(last);
        }
        (Value::Array(items), value) => {
            let index = last.parse::<usize>().ok()?;
            match value {
                Some(value) => *items.get_mut(index)? = value,
                None if index < items.len() => {
                    items.remove(index);
                }
                None => return None,
            }
        }
        _ => return None,
    }
    Some(())
}
