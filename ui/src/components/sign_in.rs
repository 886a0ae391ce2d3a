//! "Sign in again": the hub sign-in ran out; syncing waits for the hub
//! passphrase. The app stays usable offline meanwhile.

use yew::prelude::*;

use careshare_view::api::AppError;

use crate::components::{text_state, TextHandlers};

#[derive(Properties, PartialEq)]
pub struct SignInProps {
    pub busy: bool,
    pub error: Option<AppError>,
    pub on_sign_in: Callback<String>,
}

#[component]
pub fn SignInDialog(props: &SignInProps) -> Html {
    let passphrase = use_state(String::new);
    let TextHandlers { oninput, onchange } = text_state(&passphrase);
    let onsubmit = {
        let passphrase = passphrase.clone();
        let on_sign_in = props.on_sign_in.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if passphrase.is_empty() {
                return;
            }
            on_sign_in.emit((*passphrase).clone());
            // The passphrase crosses once; the field forgets it at once.
            passphrase.set(String::new());
        })
    };
    html! {
        <div class="signin-dialog" role="dialog" aria-labelledby="signin-title" aria-describedby="signin-help">
            <h2 id="signin-title">{ "Sign in to the hub again" }</h2>
            <p id="signin-help">
                { "Your sign-in to the hub has run out, so changes cannot be sent or received. \
                   Your records on this device stay available." }
            </p>
            <form class="inline-form" {onsubmit}>
                <div class="field">
                    <label for="signin-passphrase">{ "Hub passphrase" }</label>
                    <input id="signin-passphrase" type="password" autocomplete="current-password"
                        value={(*passphrase).clone()} {oninput} {onchange} />
                </div>
                <button id="signin-submit" type="submit" class="button" disabled={props.busy}>
                    { if props.busy { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
            if let Some(error) = &props.error {
                <p id="signin-error" class="error-message" role="alert">{ &error.message }</p>
            }
        </div>
    }
}
