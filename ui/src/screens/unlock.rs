//! Unlock, and the lockout after too many wrong passphrases.

use careshare_view::api::{AppError, UserInfo};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::components::strength::{new_passphrase_problem, strength_meter};
use crate::components::{text_state, TextHandlers};
use crate::hooks::use_passphrase_strength;

#[derive(Properties, PartialEq)]
pub struct UnlockProps {
    pub user: Option<UserInfo>,
    pub attempts_left: Option<u32>,
    pub busy: bool,
    pub error: Option<AppError>,
    /// The replica passphrase, and the hub passphrase when the hub asked for a sign-in.
    pub on_unlock: Callback<(String, Option<String>)>,
}

/// The error line: for a wrong passphrase, how many attempts are left (as
/// the shell counts them); otherwise the shell's message.
fn error_text(error: &AppError, attempts_left: Option<u32>) -> String {
    match attempts_left {
        Some(n) if error.code == "wrong-passphrase" => {
            let plural = if n == 1 { "attempt" } else { "attempts" };
            format!("That passphrase is not right. {n} {plural} left before this device locks.")
        }
        _ => error.message.clone(),
    }
}

#[component]
pub fn Unlock(props: &UnlockProps) -> Html {
    let passphrase = use_state(String::new);
    let hub_passphrase = use_state(String::new);
    // The lease and the device's sign-in both ran out: the check-in needs a sign-in.
    let needs_sign_in = props
        .error
        .as_ref()
        .is_some_and(|e| e.code == "sign-in-required");
    let input = use_node_ref();
    {
        // Focus the passphrase field on arrival, and again after an error.
        let input = input.clone();
        use_effect_with(props.error.clone(), move |_| {
            if let Some(el) = input.cast::<HtmlInputElement>() {
                let _ = el.focus();
            }
        });
    }
    let TextHandlers { oninput, onchange } = text_state(&passphrase);
    let hub_handlers = text_state(&hub_passphrase);
    let onsubmit = {
        let passphrase = passphrase.clone();
        let hub_passphrase = hub_passphrase.clone();
        let on_unlock = props.on_unlock.clone();
        let busy = props.busy;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if busy || passphrase.is_empty() {
                return;
            }
            let hub =
                (needs_sign_in && !hub_passphrase.is_empty()).then(|| (*hub_passphrase).clone());
            on_unlock.emit(((*passphrase).clone(), hub));
            // The passphrases cross once; the fields forget them at once.
            passphrase.set(String::new());
            hub_passphrase.set(String::new());
        })
    };
    html! {
        <main class="gate" id="unlock-screen">
            <div class="gate-card">
                <h1>{ "Unlock Careshare" }</h1>
                if let Some(user) = &props.user {
                    <p class="lead">
                        { format!("Signed in as {} on {}.", user.username, user.device_name) }
                    </p>
                }
                <form id="unlock-form" {onsubmit}>
                    <div class="field">
                        <label for="unlock-passphrase">{ "Passphrase for this device" }</label>
                        <input id="unlock-passphrase" ref={input} type="password" autocomplete="current-password"
                            aria-invalid={props.error.is_some().then_some("true")}
                            aria-describedby={props.error.is_some().then_some("unlock-error")}
                            value={(*passphrase).clone()} {oninput} {onchange} />
                    </div>
                    if needs_sign_in {
                        <div class="field">
                            <label for="unlock-hub-passphrase">
                                { "Your hub passphrase (this device has been offline too long: sign in to renew it)" }
                            </label>
                            <input id="unlock-hub-passphrase" type="password" autocomplete="off"
                                value={(*hub_passphrase).clone()}
                                oninput={hub_handlers.oninput} onchange={hub_handlers.onchange} />
                        </div>
                    }
                    if let Some(error) = &props.error {
                        <p id="unlock-error" class="error-message" role="alert">
                            { error_text(error, props.attempts_left) }
                        </p>
                    }
                    <div class="actions">
                        <button id="unlock-submit" type="submit" class="button" disabled={props.busy}>
                            { if props.busy { "Unlocking…" } else { "Unlock" } }
                        </button>
                    </div>
                </form>
                <p class="small">
                    { "Careshare locks itself after a period without use. After 5 wrong passphrases \
                       this device locks until you sign in to the hub again." }
                </p>
            </div>
        </main>
    }
}

#[derive(Properties, PartialEq)]
pub struct LockedOutProps {
    /// The enrolled user, when the shell knows it.
    pub user: Option<UserInfo>,
    pub busy: bool,
    pub error: Option<AppError>,
    /// The hub passphrase and the new passphrase for this device.
    pub on_reauthorise: Callback<(String, String)>,
}

/// The re-authorisation error line, in the person's terms.
fn reauthorise_error_text(error: &AppError) -> String {
    match error.code.as_str() {
        "sign-in-required" => "The hub did not accept that passphrase. Use the passphrase you \
                               sign in to the hub with (not the one for this device)."
            .to_owned(),
        "unreachable" => {
            "The hub cannot be reached. Connect to the network and try again.".to_owned()
        }
        _ => error.message.clone(),
    }
}

/// Too many wrong passphrases: the replica refuses every passphrase until
/// the hub re-authorises the device. The device's user signs in to the hub
/// again and chooses a new passphrase for this device.
#[component]
pub fn LockedOut(props: &LockedOutProps) -> Html {
    let hub_passphrase = use_state(String::new);
    let passphrase = use_state(String::new);
    let confirm = use_state(String::new);
    let strength = use_passphrase_strength((*passphrase).clone());
    let hint = if hub_passphrase.is_empty() {
        Some("Still needed: your hub passphrase.".to_owned())
    } else {
        new_passphrase_problem(&passphrase, &confirm, &strength)
    };
    let ready = hint.is_none() && !props.busy;
    let matching = !confirm.is_empty() && *passphrase == *confirm;
    let [h_hub, h_pass, h_confirm] = [&hub_passphrase, &passphrase, &confirm].map(text_state);
    let onsubmit = {
        let (hub_passphrase, passphrase, confirm) =
            (hub_passphrase.clone(), passphrase.clone(), confirm.clone());
        let on_reauthorise = props.on_reauthorise.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if !ready {
                return;
            }
            on_reauthorise.emit(((*hub_passphrase).clone(), (*passphrase).clone()));
            // The passphrases cross once; the fields forget them at once.
            hub_passphrase.set(String::new());
            passphrase.set(String::new());
            confirm.set(String::new());
        })
    };
    html! {
        <main class="gate" id="lockout-screen">
            <div class="gate-card gate-card-wide">
                <h1>{ "This device is locked" }</h1>
                <p class="lead">
                    { "The wrong passphrase was entered 5 times, so the records on this device have \
                       been locked to protect them. Records already sent from this device are safe on the hub." }
                </p>
                <p>
                    if let Some(user) = &props.user {
                        { format!("To unlock it, {} signs in to the hub again and chooses a new passphrase \
                                   for this device.", user.username) }
                    } else {
                        { "To unlock it, the person this device belongs to signs in to the hub again \
                           and chooses a new passphrase for this device." }
                    }
                </p>
                <form id="lockout-form" {onsubmit} novalidate=true>
                    <div class="field">
                        <label for="lockout-hub-passphrase">{ "Your hub passphrase" }</label>
                        <span class="hint" id="lockout-hub-passphrase-hint">
                            { "The one you sign in to the hub with. Wrong attempts count towards locking your hub account." }
                        </span>
                        <input id="lockout-hub-passphrase" type="password" autocomplete="current-password"
                            aria-describedby="lockout-hub-passphrase-hint"
                            value={(*hub_passphrase).clone()} oninput={h_hub.oninput} onchange={h_hub.onchange} />
                    </div>
                    <div class="field">
                        <label for="lockout-passphrase">{ "New passphrase for this device" }</label>
                        <input id="lockout-passphrase" type="password" autocomplete="new-password"
                            aria-describedby="passphrase-strength"
                            value={(*passphrase).clone()} oninput={h_pass.oninput} onchange={h_pass.onchange} />
                        { strength_meter(passphrase.is_empty(), &strength) }
                    </div>
                    <div class="field">
                        <label for="lockout-passphrase-confirm">{ "Type the new passphrase again" }</label>
                        <input id="lockout-passphrase-confirm" type="password" autocomplete="new-password"
                            aria-invalid={(!confirm.is_empty() && !matching).then_some("true")}
                            value={(*confirm).clone()} oninput={h_confirm.oninput} onchange={h_confirm.onchange} />
                    </div>
                    if let Some(error) = &props.error {
                        <p id="lockout-error" class="error-message" role="alert">
                            { reauthorise_error_text(error) }
                        </p>
                    }
                    <div class="actions">
                        <button id="lockout-submit" type="submit" class="button"
                            disabled={!ready} aria-describedby="lockout-hint">
                            { if props.busy { "Signing in…" } else { "Sign in and unlock" } }
                        </button>
                        if let Some(hint) = hint {
                            <p id="lockout-hint" class="hint">{ hint }</p>
                        }
                    </div>
                </form>
                <p class="small">
                    { "Cannot sign in to the hub? Contact the service desk: they can enrol this device again." }
                </p>
            </div>
        </main>
    }
}
