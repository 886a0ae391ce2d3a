//! Emergency access ("break-glass") to a patient outside the caseload:
//! time-limited, audited and reviewed.

use careshare_view::api::{AppError, BreakGlassRequest, GrantView};
use yew::prelude::*;

use crate::clock::Clock;
use crate::components::text_state;

#[derive(Properties, PartialEq)]
pub struct BreakGlassProps {
    pub busy: bool,
    pub error: Option<AppError>,
    /// The grant just given, while its patient is on the way.
    pub granted: Option<GrantView>,
    pub online: Option<bool>,
    pub clock: Clock,
    pub on_request: Callback<BreakGlassRequest>,
}

#[component]
pub fn BreakGlassScreen(props: &BreakGlassProps) -> Html {
    let nhs = use_state(String::new);
    let reason = use_state(String::new);
    let problem = use_state(|| None::<String>);

    let on_nhs = text_state(&nhs);
    let on_reason = text_state(&reason);
    let onsubmit = {
        let (nhs, reason, problem) = (nhs.clone(), reason.clone(), problem.clone());
        let on_request = props.on_request.clone();
        let busy = props.busy;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if busy {
                return;
            }
            let digits: String = nhs.chars().filter(|c| !c.is_whitespace()).collect();
            let check = if digits.is_empty() {
                Some("Enter the patient's NHS number.")
            } else if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                Some("An NHS number is 10 digits, for example 943 476 5919.")
            } else if reason.trim().is_empty() {
                Some("Give the reason you need emergency access. It is required.")
            } else {
                None
            };
            problem.set(check.map(str::to_owned));
            if check.is_none() {
                on_request.emit(BreakGlassRequest {
                    nhs_number: nhs.trim().to_owned(),
                    reason: reason.trim().to_owned(),
                });
            }
        })
    };

    let error = (*problem)
        .clone()
        .or_else(|| props.error.as_ref().map(|e| e.message.clone()));

    html! {
        <section id="break-glass" aria-labelledby="bg-title">
            <div class="screen-heading">
                <h1 id="bg-title" tabindex="-1">{ "Emergency access" }</h1>
            </div>
            <div class="warning-callout" role="note">
                <h2>{ "Only in an emergency" }</h2>
                <p>
                    { "Use this only when you need a patient's record to give care now and the patient is not on your caseload. Access:" }
                </p>
                <ul>
                    <li>{ "lasts 4 hours, then ends by itself;" }</li>
                    <li>{ "is recorded with your name, the time and your reason;" }</li>
                    <li>{ "is reviewed by the privacy officer (Caldicott guardian), and the patient can see who looked at their record and why." }</li>
                </ul>
                if props.online == Some(false) {
                    <p class="strong">{ "This device is offline: emergency access needs a connection to the hub." }</p>
                }
            </div>
            if let Some(grant) = &props.granted {
                <div id="bg-granted" class="success-message" role="status">
                    <h2>{ "Emergency access granted" }</h2>
                    <p>
                        { format!(
                            "Access to {} ends at {}.",
                            grant.patient_name.clone().unwrap_or_else(|| "the patient".to_owned()),
                            props.clock.when(grant.expires_at)
                        ) }
                    </p>
                    <p>{ "Bringing the record to this device… It opens as soon as it arrives." }</p>
                </div>
            }
            <form id="break-glass-form" {onsubmit} novalidate=true>
                <div class="field">
                    <label for="bg-nhs-number">{ "Patient's NHS number" }</label>
                    <input id="bg-nhs-number" type="text" inputmode="numeric" autocomplete="off"
                        class="input-medium" value={(*nhs).clone()} oninput={on_nhs.oninput} onchange={on_nhs.onchange} />
                </div>
                <div class="field">
                    <label for="bg-reason">{ "Reason for access (required)" }</label>
                    <span class="hint" id="bg-reason-hint">
                        { "For example: covering for a colleague, patient's condition worsening, GP asked for a review." }
                    </span>
                    <textarea id="bg-reason" rows="4" required=true aria-describedby="bg-reason-hint"
                        value={(*reason).clone()} oninput={on_reason.oninput} onchange={on_reason.onchange} />
                </div>
                if let Some(e) = error {
                    <p id="bg-error" class="error-message" role="alert">{ e }</p>
                }
                <div class="actions">
                    <button id="bg-submit" type="submit" class="button button-warning" disabled={props.busy}>
                        { if props.busy { "Requesting…" } else { "Request emergency access" } }
                    </button>
                </div>
            </form>
        </section>
    }
}
