//! Break-glass banners: one per grant in force, always visible.

use careshare_view::api::GrantView;
use yew::prelude::*;

use crate::clock::Clock;
use crate::state::Route;

#[derive(Properties, PartialEq)]
pub struct BannersProps {
    pub grants: Vec<GrantView>,
    pub clock: Clock,
    pub on_navigate: Callback<Route>,
}

#[component]
pub fn BreakGlassBanners(props: &BannersProps) -> Html {
    if props.grants.is_empty() {
        return html! {};
    }
    html! {
        <div class="break-glass-banners">
            { for props.grants.iter().map(|g| {
                let who = g.patient_name.clone().unwrap_or_else(|| "a patient (record arriving)".to_owned());
                let open = g.patient_name.is_some().then(|| {
                    let id = g.patient_id.clone();
                    let onclick = props.on_navigate.reform(move |_: MouseEvent| Route::Patient(id.clone()));
                    html! {
                        <button type="button" class="link-button banner-open" {onclick}>
                            { "Open record" }
                        </button>
                    }
                });
                html! {
                    <div class="break-glass-banner" role="status" data-patient-id={g.patient_id.clone()}>
                        <span class="banner-text">
                            { format!("Emergency access to {who} until {} — audited and reviewed", props.clock.when(g.expires_at)) }
                        </span>
                        { for open }
                    </div>
                }
            }) }
        </div>
    }
}
