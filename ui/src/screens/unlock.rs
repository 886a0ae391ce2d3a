//! Unlock, and the lockout after too many wrong passphrases.

use careshare_view::api::{AppError, UserInfo};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::components::{on_text, TextHandlers};

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
    let TextHandlers { oninput, onchange } = {
        let passphrase = passphrase.clone();
        on_text(move |text| passphrase.set(text))
    };
    let hub_handlers = {
        let hub_passphrase = hub_passphrase.clone();
        on_text(move |text| hub_passphrase.set(text))
    };
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
                       this device is locked until your organisation re-authorises it." }
                </p>
            </div>
        </main>
    }
}

/// Too many wrong passphrases: the replica refuses every passphrase until
/// the hub re-authorises the device.
#[component]
pub fn LockedOut() -> Html {
    html! {
        <main class="gate" id="lockout-screen">
            <div class="gate-card">
                <h1>{ "This device is locked" }</h1>
                <p class="lead">
                    { "The wrong passphrase was entered 5 times, so the records on this device have \
                       been locked to protect them." }
                </p>
                <p>
                    { "The device must be re-authorised by your organisation before it can be used \
                       again. Please contact the service desk and tell them the name of this device." }
                </p>
                <p class="small">{ "Records already sent from this device are safe on the hub." }</p>
            </div>
        </main>
    }
}
