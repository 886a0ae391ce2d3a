//! Choosing a new passphrase for this device: the strength meter and what
//! still stands in the way (shared by first-run setup and re-authorisation).

use yew::prelude::*;

use crate::hooks::Strength;

/// The live strength meter under a new-passphrase field.
pub fn strength_meter(passphrase_empty: bool, strength: &Strength) -> Html {
    let (score, label, feedback) = match &strength.value {
        Some(s) => (i32::from(s.score), s.label.clone(), s.feedback.clone()),
        None => (-1, String::new(), None),
    };
    let text = if passphrase_empty {
        "Strength: type a passphrase".to_owned()
    } else if let Some(e) = &strength.error {
        format!("Strength: could not be checked ({e})")
    } else if score < 0 {
        "Strength: checking…".to_owned()
    } else {
        format!("Strength: {label}")
    };
    let acceptable_class = match &strength.value {
        Some(s) if s.acceptable => "strength-ok",
        Some(_) => "strength-weak",
        None => "strength-unknown",
    };
    html! {
        <div id="passphrase-strength" class={classes!("strength", acceptable_class)} aria-live="polite">
            <div class="strength-bar" aria-hidden="true">
                { for (0..5).map(|i| html! {
                    <span class={classes!("strength-step", (i <= score && !passphrase_empty).then_some("on"))}></span>
                }) }
            </div>
            <span class="strength-label">{ text }</span>
            if let (Some(f), false) = (feedback, passphrase_empty) {
                <span class="strength-feedback">{ f }</span>
            }
        </div>
    }
}

/// What keeps a typed new passphrase (and its confirmation) from being
/// used, or `None` when it is strong enough and confirmed.
pub fn new_passphrase_problem(
    passphrase: &str,
    confirm: &str,
    strength: &Strength,
) -> Option<String> {
    let acceptable = strength.current && strength.value.as_ref().is_some_and(|s| s.acceptable);
    if passphrase.is_empty() {
        Some("Choose a new passphrase for this device.".to_owned())
    } else if !strength.current {
        Some("Checking the new passphrase…".to_owned())
    } else if !acceptable {
        Some("Choose a stronger passphrase for this device.".to_owned())
    } else if confirm.is_empty() {
        Some("Type the new passphrase again to confirm it.".to_owned())
    } else if passphrase != confirm {
        Some("The two new passphrases do not match.".to_owned())
    } else {
        None
    }
}
