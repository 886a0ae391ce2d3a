//! Identity of repeating elements: how the items of a JSON array are matched
//! between base, ours and theirs.
//!
//! Every rule renders an item's identity as the text that appears between the
//! brackets of a conflict path (`note[id=n1]`, `component[code=http://loinc.org|8480-6]`),
//! so two items have the same identity exactly when their selectors are equal.

use std::collections::HashSet;

use serde_json::Value;

use crate::path::escape_selector;

/// Where an array sits in the resource; decides which identity rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArrayPlace<'a> {
    /// An ordinary element, named by its key.
    Field(&'a str),
    /// `meta.tag` or `meta.security` of a resource.
    MetaCodings,
    /// `meta.profile` of a resource.
    MetaProfile,
    /// An array directly inside another array (not FHIR, handled for completeness).
    Nested,
}

/// One way of identifying the items of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The FHIR element `id`: `[id=n1]`.
    ElementId,
    /// `system|value` (Identifier, ContactPoint): `[https://fhir.nhs.uk/Id/nhs-number|9434765919]`.
    SystemValue,
    /// `system|code` (Coding, meta.tag, meta.security): `[http://snomed.info/sct|91936005]`.
    SystemCode,
    /// Questionnaire / QuestionnaireResponse `linkId`: `[linkId=1.2]`.
    LinkId,
    /// Observation.component by the first coding of its `code`: `[code=http://loinc.org|8480-6]`.
    ComponentCode,
    /// Extension `url`: `[url=http://example.org/fhir/StructureDefinition/x]`.
    Url,
    /// The item itself, for arrays of strings such as meta.profile: `[http://...]`.
    Itself,
}

impl Rule {
    /// The identity of one item under this rule, or `None` when the item
    /// does not carry what the rule needs.
    pub(crate) fn selector(self, item: &Value) -> Option<String> {
        match self {
            Rule::ElementId => Some(format!("id={}", escape_selector(string_field(item, "id")?))),
            Rule::SystemValue => token(item, "value"),
            Rule::SystemCode => token(item, "code"),
            Rule::LinkId => Some(format!(
                "linkId={}",
                escape_selector(string_field(item, "linkId")?)
            )),
            Rule::ComponentCode => {
                let first = item.get("code")?.get("coding")?.as_array()?.first()?;
                Some(format!("code={}", token(first, "code")?))
            }
            Rule::Url => Some(format!(
                "url={}",
                escape_selector(string_field(item, "url")?)
            )),
            Rule::Itself => Some(escape_selector(item.as_str()?)),
        }
    }
}

fn string_field<'v>(item: &'v Value, name: &str) -> Option<&'v str> {
    item.get(name)?.as_str()
}

/// `system|value` in FHIR token style; an absent system renders as `|value`.
fn token(item: &Value, name: &str) -> Option<String> {
    let value = string_field(item, name)?;
    let system = match item.get("system") {
        None => "",
        Some(Value::String(system)) => system.as_str(),
        Some(_) => return None,
    };
    Some(format!(
        "{}|{}",
        escape_selector(system),
        escape_selector(value)
    ))
}

/// The rules tried for an array, most specific first. The element `id` comes
/// first everywhere because FHIR gives every element one.
fn candidates(place: ArrayPlace<'_>) -> &'static [Rule] {
    match place {
        ArrayPlace::Field("identifier" | "telecom") => &[Rule::ElementId, Rule::SystemValue],
        ArrayPlace::Field("coding") | ArrayPlace::MetaCodings => {
            &[Rule::ElementId, Rule::SystemCode]
        }
        ArrayPlace::Field("item") => &[Rule::ElementId, Rule::LinkId],
        ArrayPlace::Field("component") => &[Rule::ElementId, Rule::ComponentCode],
        ArrayPlace::Field("extension" | "modifierExtension") => &[Rule::ElementId, Rule::Url],
        ArrayPlace::MetaProfile => &[Rule::Itself],
        ArrayPlace::Field(_) | ArrayPlace::Nested => &[Rule::ElementId],
    }
}

/// Selectors of every item of the three versions of an array, under the
/// first rule that identifies every item of every version uniquely within
/// its own version. `None` means the array has no identity and merges as a
/// whole value.
pub(crate) fn identify(place: ArrayPlace<'_>, sides: [&[Value]; 3]) -> Option<[Vec<String>; 3]> {
    candidates(place)
        .iter()
        .find_map(|rule| identify_with(*rule, sides))
}

fn identify_with(rule: Rule, sides: [&[Value]; 3]) -> Option<[Vec<String>; 3]> {
    let [base, ours, theirs] = sides;
    Some([
        side_selectors(rule, base)?,
        side_selectors(rule, ours)?,
        side_selectors(rule, theirs)?,
    ])
}

fn side_selectors(rule: Rule, items: &[Value]) -> Option<Vec<String>> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut selectors = Vec::with_capacity(items.len());
    for item in items {
        let selector = rule.selector(item)?;
        if !seen.insert(selector.clone()) {
            return None;
        }
        selectors.push(selector);
    }
    Some(selectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(place: ArrayPlace<'_>, items: &Value) -> Option<Vec<String>> {
        let items = items.as_array()?;
        identify(place, [items, items, items]).map(|[base, _, _]| base)
    }

    #[test]
    fn element_id_wins_when_every_item_has_one() {
        let telecom = json!([
            {"id": "t1", "system": "phone", "value": "01632 960 123"},
            {"id": "t2", "system": "phone", "value": "01632 960 123"}
        ]);
        assert_eq!(
            ids(ArrayPlace::Field("telecom"), &telecom),
            Some(vec!["id=t1".into(), "id=t2".into()])
        );
    }

    #[test]
    fn falls_back_to_the_named_rule_then_to_none() {
        let telecom = json!([
            {"id": "t1", "system": "phone", "value": "1"},
            {"system": "email", "value": "a@example.org"}
        ]);
        assert_eq!(
            ids(ArrayPlace::Field("telecom"), &telecom),
            Some(vec!["phone|1".into(), "email|a@example.org".into()])
        );
        let duplicated = json!([
            {"system": "phone", "value": "1"},
            {"system": "phone", "value": "1", "use": "work"}
        ]);
        assert_eq!(ids(ArrayPlace::Field("telecom"), &duplicated), None);
    }

    #[test]
    fn extension_urls_must_be_unique() {
        let unique = json!([{"url": "a", "valueString": "x"}, {"url": "b"}]);
        let repeated = json!([{"url": "a", "valueString": "x"}, {"url": "a"}]);
        assert!(ids(ArrayPlace::Field("extension"), &unique).is_some());
        assert_eq!(ids(ArrayPlace::Field("extension"), &repeated), None);
    }

    #[test]
    fn name_and_address_have_no_natural_identity() {
        let name = json!([{"family": "Smith", "given": ["Ann"]}]);
        assert_eq!(ids(ArrayPlace::Field("name"), &name), None);
        assert_eq!(
            ids(ArrayPlace::Field("address"), &json!([{"city": "Leeds"}])),
            None
        );
    }

    #[test]
    fn selectors_escape_their_separators() {
        let coding = json!([{"system": "a|b", "code": "c]"}]);
        assert_eq!(
            ids(ArrayPlace::Field("coding"), &coding),
            Some(vec!["a\\|b|c\\]".into()])
        );
        let component = json!([{"code": {"coding": [{"code": "8480-6"}]}}]);
        assert_eq!(
            ids(ArrayPlace::Field("component"), &component),
            Some(vec!["code=|8480-6".into()])
        );
    }
}
