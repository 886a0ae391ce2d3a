//! The caseload (home): today's visits first, searchable as you type.

use careshare_view::api::{AppError, Caseload, CaseloadRow};
use careshare_view::format::matches;
use yew::prelude::*;

use crate::clock::Clock;
use crate::components::{text_state, TextHandlers};

#[derive(Properties, PartialEq)]
pub struct CaseloadProps {
    pub caseload: Option<Caseload>,
    pub error: Option<AppError>,
    pub clock: Clock,
    pub on_open: Callback<String>,
}

#[component]
pub fn CaseloadScreen(props: &CaseloadProps) -> Html {
    let query = use_state(String::new);
    let TextHandlers { oninput, onchange } = text_state(&query);
    let body = match &props.caseload {
        None if props.error.is_none() => html! { <p class="loading">{ "Loading caseload…" }</p> },
        None => html! {},
        Some(caseload) if caseload.patients.is_empty() => html! {
            <p class="empty-state">
                { "No patients on this device yet. Your team's caseload arrives with the first sync." }
            </p>
        },
        Some(caseload) => {
            let shown: Vec<&CaseloadRow> = caseload
                .patients
                .iter()
                .filter(|row| matches(row, &query))
                .collect();
            let count = if query.trim().is_empty() {
                format!("{} patients", caseload.patients.len())
            } else {
                format!("{} of {} patients", shown.len(), caseload.patients.len())
            };
            html! {
                <>
                    <p id="caseload-count" class="result-count" aria-live="polite">{ count }</p>
                    if shown.is_empty() {
                        <p class="empty-state">{ "No patient matches. Try a surname, an NHS number or a postcode." }</p>
                    } else {
                        <ul class="caseload-list">
                            { for shown.into_iter().map(|row| html! {
                                <li key={row.patient_id.clone()}>
                                    <PatientRow row={row.clone()} clock={props.clock} on_open={props.on_open.clone()} />
                                </li>
                            }) }
                        </ul>
                    }
                </>
            }
        }
    };
    let today = props
        .caseload
        .as_ref()
        .map(|c| format!("Today: {}", c.today))
        .unwrap_or_default();
    html! {
        <section id="caseload" aria-labelledby="caseload-title">
            <div class="screen-heading">
                <h1 id="caseload-title" tabindex="-1">{ "Caseload" }</h1>
                <span class="muted">{ today }</span>
            </div>
            <div class="field search-field">
                <label for="caseload-search">{ "Search by name, NHS number or postcode" }</label>
                <input id="caseload-search" type="search" autocomplete="off" spellcheck="false"
                    value={(*query).clone()} {oninput} {onchange} />
            </div>
            if let Some(error) = &props.error {
                <p id="caseload-error" class="error-message" role="alert">{ &error.message }</p>
            }
            { body }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RowProps {
    row: CaseloadRow,
    clock: Clock,
    on_open: Callback<String>,
}

#[component]
fn PatientRow(props: &RowProps) -> Html {
    let r = &props.row;
    let clock = props.clock;
    let onclick = {
        let id = r.patient_id.clone();
        props.on_open.reform(move |_: MouseEvent| id.clone())
    };
    let age = r.age.map(|a| format!("{a} y")).unwrap_or_default();
    let alerts = r.alerts;
    let alerts_text = if alerts == 1 {
        "1 alert".to_owned()
    } else {
        format!("{alerts} alerts")
    };
    let tasks = match r.open_tasks {
        0 => "No open tasks".to_owned(),
        1 => "1 open task".to_owned(),
        n => format!("{n} open tasks"),
    };
    html! {
        <button type="button" class="caseload-row" data-patient-id={r.patient_id.clone()} {onclick}>
            <span class="row-main">
                <span class="patient-name">{ &r.name }</span>
                <span class="row-ids">
                    <span class="nhs-number">
                        <span class="visually-hidden">{ "NHS number " }</span>
                        { if r.nhs_number.is_empty() { "No NHS number" } else { r.nhs_number.as_str() } }
                    </span>
                    if !age.is_empty() { <span class="age">{ age }</span> }
                </span>
                <span class="address">{ &r.address }</span>
                <span class="freshness">{ clock.freshness(r.data_as_of) }</span>
            </span>
            <span class="row-side">
                if let Some(at) = r.visit_today {
                    <span class="visit-time">{ format!("Visit {}", clock.clock(at)) }</span>
                }
                <span class={classes!("alerts-badge", (alerts > 0).then_some("alerts-badge-on"))}
                    data-count={alerts.to_string()}>
                    { alerts_text }
                </span>
                <span class="tasks-count">{ tasks }</span>
                if let Some(until) = r.break_glass_until {
                    <span class="bg-badge">{ format!("Emergency access until {}", clock.when(until)) }</span>
                }
            </span>
        </button>
    }
}
