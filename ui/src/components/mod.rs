//! Pieces shared by screens, and the parts of the unlocked shell.

pub mod banners;
pub mod entry;
pub mod header;
pub mod sign_in;
pub mod strength;
pub mod sync_bar;
pub mod trend_chart;

use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::{Callback, Event, InputEvent, UseStateHandle};

/// The text of the input, textarea or select an event came from.
pub fn value_of(e: &Event) -> String {
    let Some(target) = e.target() else {
        return String::new();
    };
    if let Some(input) = target.dyn_ref::<HtmlInputElement>() {
        input.value()
    } else if let Some(area) = target.dyn_ref::<HtmlTextAreaElement>() {
        area.value()
    } else if let Some(select) = target.dyn_ref::<HtmlSelectElement>() {
        select.value()
    } else {
        String::new()
    }
}

/// Handlers that follow a text field both as it is typed (`input`) and when
/// it is changed another way (`change`, e.g. cleared by a script).
pub struct TextHandlers {
    pub oninput: Callback<InputEvent>,
    pub onchange: Callback<Event>,
}

/// [`TextHandlers`] keeping a text state in step with its field.
pub fn text_state(state: &UseStateHandle<String>) -> TextHandlers {
    let state = state.clone();
    on_text(move |text| state.set(text))
}

/// [`TextHandlers`] passing the field's new text to `set`.
pub fn on_text(set: impl Fn(String) + 'static) -> TextHandlers {
    let onchange = Callback::from(move |e: Event| set(value_of(&e)));
    TextHandlers {
        oninput: onchange.reform(|e: InputEvent| e.into()),
        onchange,
    }
}
