//! The recursive three-way merge. See the crate documentation for the rules.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::identity::{identify, ArrayPlace};
use crate::path::{self, Step};
use crate::{Conflict, ConflictKind};

/// Nesting deeper than this is compared as a whole value instead of merged
/// element by element, so hostile input cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// What the element being merged is, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place<'a> {
    /// The resource itself.
    Root,
    /// A property of an object, by name.
    Field(&'a str),
    /// An item of an array.
    Item,
    /// The `meta` element of a resource.
    Meta,
    /// `meta.versionId` / `meta.lastUpdated`: bookkeeping, never a conflict.
    Bookkeeping,
    /// `meta.tag` / `meta.security`.
    MetaCodings,
    /// `meta.profile`.
    MetaProfile,
}

impl<'a> Place<'a> {
    fn child(self, parent_is_resource: bool, key: &'a str) -> Place<'a> {
        match (self, key) {
            (Place::Meta, "versionId" | "lastUpdated") => Place::Bookkeeping,
            (Place::Meta, "tag" | "security") => Place::MetaCodings,
            (Place::Meta, "profile") => Place::MetaProfile,
            (_, "meta") if parent_is_resource => Place::Meta,
            _ => Place::Field(key),
        }
    }

    fn array_place(self) -> ArrayPlace<'a> {
        match self {
            Place::Field(name) => ArrayPlace::Field(name),
            Place::MetaCodings => ArrayPlace::MetaCodings,
            Place::MetaProfile => ArrayPlace::MetaProfile,
            Place::Root | Place::Item | Place::Meta | Place::Bookkeeping => ArrayPlace::Nested,
        }
    }
}

/// Merges three versions of a resource (all present), returning the merged
/// value and the conflicts found on the way.
pub(crate) fn merge_values(base: &Value, ours: &Value, theirs: &Value) -> (Value, Vec<Conflict>) {
    let mut merger = Merger::default();
    let merged = merger
        .slot(Place::Root, 0, Some(base), Some(ours), Some(theirs))
        .unwrap_or_else(|| base.clone());
    (merged, merger.conflicts)
}

/// Builds the conflict for the whole resource (used when one side deleted it).
pub(crate) fn root_conflict(
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
) -> Conflict {
    Merger::default().make_conflict(base, ours, theirs)
}

#[derive(Default)]
struct Merger<'a> {
    steps: Vec<Step<'a>>,
    conflicts: Vec<Conflict>,
}

impl<'a> Merger<'a> {
    /// Merges one element. `None` means absent on that side (or in the result).
    fn slot(
        &mut self,
        place: Place<'a>,
        depth: usize,
        base: Option<&'a Value>,
        ours: Option<&'a Value>,
        theirs: Option<&'a Value>,
    ) -> Option<Value> {
        if ours == theirs {
            return ours.cloned();
        }
        if ours == base {
            return theirs.cloned();
        }
        if theirs == base {
            return ours.cloned();
        }
        if place == Place::Bookkeeping {
            return theirs.cloned();
        }
        if depth < MAX_DEPTH && place == Place::Meta {
            if let Some(merged) = self.meta(depth, base, ours, theirs) {
                return merged;
            }
        }
        if depth < MAX_DEPTH {
            match (base, ours, theirs) {
                (
                    None | Some(Value::Object(_)),
                    Some(Value::Object(ours)),
                    Some(Value::Object(theirs)),
                ) => {
                    let base = base.and_then(Value::as_object);
                    return Some(self.object(place, depth, base, ours, theirs));
                }
                (
                    None | Some(Value::Array(_)),
                    Some(Value::Array(ours)),
                    Some(Value::Array(theirs)),
                ) => {
                    let base = base
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    if let Some(merged) = self.array(place, depth, base, ours, theirs) {
                        return Some(merged);
                    }
                }
                _ => {}
            }
        }
        let conflict = self.make_conflict(base, ours, theirs);
        self.conflicts.push(conflict);
        base.cloned()
    }

    /// A resource's `meta` changed on both sides, one of which has none:
    /// the missing `meta` counts as an empty one, so that dropping `meta`
    /// conflicts only over the elements the other side changed, never over
    /// its bookkeeping. `None` when this does not apply.
    fn meta(
        &mut self,
        depth: usize,
        base: Option<&'a Value>,
        ours: Option<&'a Value>,
        theirs: Option<&'a Value>,
    ) -> Option<Option<Value>> {
        static NO_META: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
        let as_map = |side: Option<&'a Value>| match side {
            None => Some(&*NO_META),
            Some(Value::Object(map)) => Some(map),
            Some(_) => None,
        };
        let (Some(Value::Object(base)), Some(ours_map), Some(theirs_map)) =
            (base, as_map(ours), as_map(theirs))
        else {
            return None;
        };
        let merged = self.object(Place::Meta, depth, Some(base), ours_map, theirs_map);
        let dropped = ours.is_none() || theirs.is_none();
        Some(match merged {
            Value::Object(map) if map.is_empty() && dropped => None,
            merged => Some(merged),
        })
    }

    /// Objects merge key by key. Key order: base's keys, then keys new in
    /// ours, then keys new in theirs.
    fn object(
        &mut self,
        place: Place<'a>,
        depth: usize,
        base: Option<&'a Map<String, Value>>,
        ours: &'a Map<String, Value>,
        theirs: &'a Map<String, Value>,
    ) -> Value {
        let is_resource = place == Place::Root
            || base.is_some_and(|b| b.contains_key("resourceType"))
            || ours.contains_key("resourceType")
            || theirs.contains_key("resourceType");
        let in_base = |key: &str| base.is_some_and(|b| b.contains_key(key));
        let keys = base
            .into_iter()
            .flat_map(|b| b.keys())
            .chain(ours.keys().filter(|k| !in_base(k)))
            .chain(
                theirs
                    .keys()
                    .filter(|k| !in_base(k) && !ours.contains_key(k.as_str())),
            );
        let mut merged = Map::new();
        for key in keys {
            let child = place.child(is_resource, key);
            self.steps.push(Step::Key(key));
            let value = self.slot(
                child,
                depth + 1,
                base.and_then(|b| b.get(key)),
                ours.get(key),
                theirs.get(key),
            );
            self.steps.pop();
            if let Some(value) = value {
                merged.insert(key.clone(), value);
            }
        }
        Value::Object(merged)
    }

    /// Arrays merge item by item when their items have an identity, append
    /// both sides' new notes for `note`, and otherwise do not merge (`None`).
    fn array(
        &mut self,
        place: Place<'a>,
        depth: usize,
        base: &'a [Value],
        ours: &'a [Value],
        theirs: &'a [Value],
    ) -> Option<Value> {
        let array_place = place.array_place();
        if let Some(selectors) = identify(array_place, [base, ours, theirs]) {
            return Some(self.identified(depth, [base, ours, theirs], selectors));
        }
        if array_place == ArrayPlace::Field("note") {
            return appended(base, ours, theirs);
        }
        None
    }

    /// Items matched by identity. Order: base's items, then items new in
    /// ours, then items new in theirs.
    fn identified(
        &mut self,
        depth: usize,
        sides: [&'a [Value]; 3],
        selectors: [Vec<String>; 3],
    ) -> Value {
        let [base, ours, theirs] = sides;
        let [base_sel, ours_sel, theirs_sel] = &selectors;
        fn index(selectors: &[String]) -> HashMap<&str, usize> {
            selectors
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect()
        }
        let (base_at, ours_at, theirs_at) = (index(base_sel), index(ours_sel), index(theirs_sel));
        let order = base_sel
            .iter()
            .chain(
                ours_sel
                    .iter()
                    .filter(|s| !base_at.contains_key(s.as_str())),
            )
            .chain(theirs_sel.iter().filter(|s| {
                !base_at.contains_key(s.as_str()) && !ours_at.contains_key(s.as_str())
            }));
        fn item<'v>(
            items: &'v [Value],
            at: &HashMap<&str, usize>,
            selector: &str,
        ) -> Option<&'v Value> {
            at.get(selector).and_then(|&i| items.get(i))
        }
        let mut merged = Vec::new();
        for selector in order {
            self.steps.push(Step::Item {
                index: merged.len(),
                selector: selector.clone(),
            });
            let value = self.slot(
                Place::Item,
                depth + 1,
                item(base, &base_at, selector),
                item(ours, &ours_at, selector),
                item(theirs, &theirs_at, selector),
            );
            self.steps.pop();
            if let Some(value) = value {
                merged.push(value);
            }
        }
        Value::Array(merged)
    }

    fn make_conflict(
        &self,
        base: Option<&Value>,
        ours: Option<&Value>,
        theirs: Option<&Value>,
    ) -> Conflict {
        let kind = match (base, ours, theirs) {
            (None, _, _) => ConflictKind::BothAdded,
            (Some(_), None, _) => ConflictKind::DeletedByOurs,
            (Some(_), _, None) => ConflictKind::DeletedByTheirs,
            (Some(_), Some(_), Some(_)) => ConflictKind::BothChanged,
        };
        Conflict {
            path: path::readable(&self.steps),
            pointer: path::pointer(&self.steps),
            kind,
            base: base.cloned(),
            ours: ours.cloned(),
            theirs: theirs.cloned(),
        }
    }
}

/// Annotations carry no identity, but notes are written one at a time and
/// never replace each other: when both sides only appended notes after the
/// base ones, keep base's notes, then ours' new notes, then theirs' new notes
/// (a note appended identically on both sides is kept once). Any other
/// change to the notes on both sides does not merge.
fn appended(base: &[Value], ours: &[Value], theirs: &[Value]) -> Option<Value> {
    let ours_new = ours.strip_prefix(base)?;
    let theirs_new = theirs.strip_prefix(base)?;
    let mut merged: Vec<Value> = ours.to_vec();
    let mut unmatched: Vec<&Value> = ours_new.iter().collect();
    for note in theirs_new {
        if let Some(i) = unmatched.iter().position(|seen| *seen == note) {
            unmatched.swap_remove(i);
        } else {
            merged.push(note.clone());
        }
    }
    Some(Value::Array(merged))
}
