//! Search: the parameter table, index extraction and request parsing.

pub mod extract;
pub mod params;
pub mod query;

pub use extract::{extract, normalize_string, patient_compartment, ExtractError, IndexEntries};
pub use params::{param, params_for, ParamKind, SearchParam, INDEXED_TYPES};
pub use query::{
    matches, parse_search, Clause, ClauseValue, PageToken, Prefix, SearchError, SearchRequest,
    Sort, StringMode, Token, DEFAULT_COUNT, MAX_COUNT,
};
