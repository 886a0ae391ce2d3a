//! Rendering of conflict locations: the readable path shown to a person and
//! the JSON pointer into the merged resource.

/// One step from a parent element to a child element.
#[derive(Clone, Debug)]
pub(crate) enum Step<'a> {
    /// A property of an object.
    Key(&'a str),
    /// An identified item of an array, at `index` in the merged array.
    Item { index: usize, selector: String },
}

/// The readable path, e.g. `component[code=http://loinc.org|8480-6].valueQuantity.value`.
/// The whole resource is the empty path.
pub(crate) fn readable(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                for c in key.chars() {
                    if matches!(c, '.' | '[' | ']' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Step::Item { selector, .. } => {
                out.push('[');
                out.push_str(selector);
                out.push(']');
            }
        }
    }
    out
}

/// The RFC 6901 JSON pointer of the location in the merged resource.
pub(crate) fn pointer(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in steps {
        out.push('/');
        match step {
            Step::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Step::Item { index, .. } => out.push_str(&index.to_string()),
        }
    }
    out
}

/// Splits a JSON pointer into its unescaped reference tokens; `None` when it
/// is not a valid pointer.
pub(crate) fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Escapes the characters that delimit a selector (`\`, `|`, `]`) so that
/// distinct identities always render as distinct selectors.
pub(crate) fn escape_selector(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '|' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_readable_and_pointer_forms() {
        let steps = [
            Step::Key("component"),
            Step::Item {
                index: 1,
                selector: "code=http://loinc.org|8480-6".into(),
            },
            Step::Key("valueQuantity"),
            Step::Key("value"),
        ];
        assert_eq!(
            readable(&steps),
            "component[code=http://loinc.org|8480-6].valueQuantity.value"
        );
        assert_eq!(pointer(&steps), "/component/1/valueQuantity/value");
        assert_eq!(readable(&[]), "");
        assert_eq!(pointer(&[]), "");
    }

    #[test]
    fn escapes_awkward_keys() {
        let steps = [Step::Key("a.b[c]"), Step::Key("x/y~z")];
        assert_eq!(readable(&steps), "a\\.b\\[c\\].x/y~z");
        assert_eq!(pointer(&steps), "/a.b[c]/x~1y~0z");
        assert_eq!(
            pointer_tokens("/a.b[c]/x~1y~0z"),
            Some(vec!["a.b[c]".to_string(), "x/y~z".to_string()])
        );
        assert_eq!(pointer_tokens("no-slash"), None);
    }
}
