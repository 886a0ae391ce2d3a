//! First run: sign in to the hub, register this device and create the
//! encrypted replica.

use careshare_view::api::{AppError, EnrolRequest, UserInfo};
use yew::prelude::*;

use crate::components::strength::{new_passphrase_problem, strength_meter};
use crate::components::text_state;
use crate::hooks::use_passphrase_strength;

#[derive(Properties, PartialEq)]
pub struct EnrolProps {
    /// What the shell already knows (prefills the form).
    pub user: Option<UserInfo>,
    pub busy: bool,
    pub error: Option<AppError>,
    pub on_enrol: Callback<EnrolRequest>,
}

#[component]
pub fn Enrol(props: &EnrolProps) -> Html {
    let user = props.user.clone();
    let hub_url = use_state(|| user.as_ref().map(|u| u.hub_url.clone()).unwrap_or_default());
    let username = use_state(|| {
        user.as_ref()
            .map(|u| u.username.clone())
            .unwrap_or_default()
    });
    let hub_passphrase = use_state(String::new);
    let device_name = use_state(|| {
        user.as_ref()
            .map(|u| u.device_name.clone())
            .unwrap_or_default()
    });
    let passphrase = use_state(String::new);
    let confirm = use_state(String::new);
    let strength = use_passphrase_strength((*passphrase).clone());

    let mut missing: Vec<&str> = Vec::new();
    if hub_url.trim().is_empty() {
        missing.push("the hub address");
    }
    if username.trim().is_empty() {
        missing.push("your user name");
    }
    if hub_passphrase.is_empty() {
        missing.push("your hub passphrase");
    }
    if device_name.trim().is_empty() {
        missing.push("a name for this device");
    }
    if passphrase.is_empty() {
        missing.push("a new passphrase for this device");
    }
    let matching = !confirm.is_empty() && *passphrase == *confirm;
    let hint = if !missing.is_empty() {
        Some(format!("Still needed: {}.", missing.join(", ")))
    } else {
        new_passphrase_problem(&passphrase, &confirm, &strength)
    };
    let ready = hint.is_none() && !props.busy;

    let onsubmit = {
        let (hub_url, username, hub_passphrase, device_name, passphrase, confirm) = (
            hub_url.clone(),
            username.clone(),
            hub_passphrase.clone(),
            device_name.clone(),
            passphrase.clone(),
            confirm.clone(),
        );
        let on_enrol = props.on_enrol.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if !ready {
                return;
            }
            on_enrol.emit(EnrolRequest {
                hub_url: hub_url.trim().to_owned(),
                username: username.trim().to_owned(),
                hub_passphrase: (*hub_passphrase).clone(),
                passphrase: (*passphrase).clone(),
                device_name: device_name.trim().to_owned(),
            });
            // Passphrases cross once; the fields forget them at once.
            hub_passphrase.set(String::new());
            passphrase.set(String::new());
            confirm.set(String::new());
        })
    };

    let [h_hub_url, h_username, h_hub_passphrase, h_device_name, h_passphrase, h_confirm] = [
        &hub_url,
        &username,
        &hub_passphrase,
        &device_name,
        &passphrase,
        &confirm,
    ]
    .map(text_state);

    let meter = strength_meter(passphrase.is_empty(), &strength);

    html! {
        <main class="gate" id="enrol-screen">
            <div class="gate-card gate-card-wide">
                <h1>{ "Set up Careshare on this device" }</h1>
                <p class="lead">
                    { "Sign in to your region's hub once to register this device. Records you may see \
                       are then kept on this device, encrypted with a new passphrase that you choose." }
                </p>
                <form id="enrol-form" {onsubmit} novalidate=true>
                    <fieldset>
                        <legend>{ "Your hub account" }</legend>
                        <div class="field">
                            <label for="enrol-hub-url">{ "Hub address" }</label>
                            <span class="hint" id="enrol-hub-url-hint">{ "For example https://hub.example.nhs.uk" }</span>
                            <input id="enrol-hub-url" type="url" autocomplete="url" spellcheck="false"
                                aria-describedby="enrol-hub-url-hint"
                                value={(*hub_url).clone()} oninput={h_hub_url.oninput} onchange={h_hub_url.onchange} />
                        </div>
                        <div class="field">
                            <label for="enrol-username">{ "User name" }</label>
                            <input id="enrol-username" type="text" autocomplete="username" spellcheck="false"
                                value={(*username).clone()} oninput={h_username.oninput} onchange={h_username.onchange} />
                        </div>
                        <div class="field">
                            <label for="enrol-hub-passphrase">{ "Hub passphrase" }</label>
                            <input id="enrol-hub-passphrase" type="password" autocomplete="current-password"
                                value={(*hub_passphrase).clone()} oninput={h_hub_passphrase.oninput} onchange={h_hub_passphrase.onchange} />
                        </div>
                    </fieldset>
                    <fieldset>
                        <legend>{ "This device" }</legend>
                        <div class="field">
                            <label for="enrol-device-name">{ "Device name" }</label>
                            <span class="hint" id="enrol-device-name-hint">{ "How your organisation will know this laptop or desktop" }</span>
                            <input id="enrol-device-name" type="text" aria-describedby="enrol-device-name-hint"
                                value={(*device_name).clone()} oninput={h_device_name.oninput} onchange={h_device_name.onchange} />
                        </div>
                        <div class="field">
                            <label for="enrol-passphrase">{ "New passphrase for this device" }</label>
                            <span class="hint" id="enrol-passphrase-hint">
                                { "Unlocks the records kept on this device. Several unrelated words are easy to remember and hard to guess." }
                            </span>
                            <input id="enrol-passphrase" type="password" autocomplete="new-password"
                                aria-describedby="enrol-passphrase-hint passphrase-strength"
                                value={(*passphrase).clone()} oninput={h_passphrase.oninput} onchange={h_passphrase.onchange} />
                            { meter }
                        </div>
                        <div class="field">
                            <label for="enrol-passphrase-confirm">{ "Type the new passphrase again" }</label>
                            <input id="enrol-passphrase-confirm" type="password" autocomplete="new-password"
                                aria-invalid={(!confirm.is_empty() && !matching).then_some("true")}
                                value={(*confirm).clone()} oninput={h_confirm.oninput} onchange={h_confirm.onchange} />
                            if !confirm.is_empty() && !matching {
                                <span class="field-error">{ "The passphrases do not match." }</span>
                            }
                        </div>
                    </fieldset>
                    if let Some(error) = &props.error {
                        <div id="enrol-error" class="error-summary" role="alert">
                            <h2>{ "Setup did not complete" }</h2>
                            <p>{ &error.message }</p>
                        </div>
                    }
                    <div class="actions">
                        <button id="enrol-submit" type="submit" class="button"
                            disabled={!ready} aria-describedby="enrol-hint">
                            { if props.busy { "Setting up…" } else { "Set up this device" } }
                        </button>
                        if let Some(hint) = hint {
                            <p id="enrol-hint" class="hint">{ hint }</p>
                        }
                    </div>
                </form>
            </div>
        </main>
    }
}
