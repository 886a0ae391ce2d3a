//! Record a visit (works offline): NEWS2 observations with the live panel,
//! a wound assessment, a note, and the tasks completed.

use careshare_view::api::{AppError, ObservationsForm, PatientSummary, VisitForm, WoundForm};
use careshare_view::news2::{assess, News2View};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::components::{on_text, text_state, TextHandlers};

#[derive(Properties, PartialEq)]
pub struct VisitProps {
    pub summary: PatientSummary,
    pub busy: bool,
    pub error: Option<AppError>,
    pub on_save: Callback<VisitForm>,
    pub on_cancel: Callback<()>,
}

type ObsField = fn(&mut ObservationsForm) -> &mut String;
type WoundField = fn(&mut WoundForm) -> &mut String;

/// A wound measurement is a number of centimetres, or nothing.
fn cm_error(text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => None,
        _ => Some("Enter centimetres as a number, for example 3.5".to_owned()),
    }
}

fn wound_is_empty(w: &WoundForm) -> bool {
    [
        &w.site,
        &w.length_cm,
        &w.width_cm,
        &w.depth_cm,
        &w.description,
    ]
    .iter()
    .all(|s| s.trim().is_empty())
}

fn obs_is_empty(o: &ObservationsForm) -> bool {
    [
        &o.respiration_rate,
        &o.spo2,
        &o.air_or_oxygen,
        &o.systolic_bp,
        &o.diastolic_bp,
        &o.pulse,
        &o.consciousness,
        &o.temperature,
    ]
    .iter()
    .all(|s| s.trim().is_empty())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[component]
pub fn VisitScreen(props: &VisitProps) -> Html {
    let s = &props.summary;
    let scale2 = s.spo2_scale2;
    let obs = use_state(|| ObservationsForm {
        spo2_scale2: scale2,
        ..ObservationsForm::default()
    });
    let wound = use_state(WoundForm::default);
    let note = use_state(String::new);
    let done = use_state(Vec::<String>::new);
    let tried = use_state(|| false);

    let view: News2View = assess(&obs);
    let row_error = |field: &str| -> Option<String> {
        view.rows
            .iter()
            .find(|r| r.field == field)
            .and_then(|r| r.error.clone())
    };

    // Client-side checks (the shell checks again).
    let wound_errors: Vec<(&str, String)> = [
        ("wound-length", cm_error(&wound.length_cm)),
        ("wound-width", cm_error(&wound.width_cm)),
        ("wound-depth", cm_error(&wound.depth_cm)),
        (
            "wound-site",
            (!wound_is_empty(&wound) && wound.site.trim().is_empty())
                .then(|| "Say where the wound is, for example left lower leg".to_owned()),
        ),
    ]
    .into_iter()
    .filter_map(|(id, e)| e.map(|e| (id, e)))
    .collect();
    let wound_error = |id: &str| {
        wound_errors
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, e)| e.clone())
    };
    let nothing =
        obs_is_empty(&obs) && wound_is_empty(&wound) && note.trim().is_empty() && done.is_empty();
    let form_problem = if view.has_errors || !wound_errors.is_empty() {
        Some("Some values cannot be saved: correct the fields marked below.".to_owned())
    } else if nothing {
        Some(
            "Nothing to save yet: record observations, a wound assessment, a note or a completed task."
                .to_owned(),
        )
    } else {
        None
    };

    // Inputs.
    let obs_input = |id: &'static str,
                     label: &'static str,
                     unit: &'static str,
                     field: &'static str,
                     get: ObsField,
                     error: Option<String>| {
        let value = get(&mut (*obs).clone()).clone();
        let TextHandlers { oninput, onchange } = {
            let obs = obs.clone();
            on_text(move |text| {
                let mut next = (*obs).clone();
                *get(&mut next) = text;
                obs.set(next);
            })
        };
        let error_id = format!("{id}-error");
        let score = view
            .rows
            .iter()
            .find(|r| r.field == field)
            .and_then(|r| r.score);
        html! {
            <div class={classes!("field", "obs-field", error.is_some().then_some("field-invalid"))}>
                <label for={id}>{ label }</label>
                <div class="input-with-unit">
                    <input id={id} type="text" inputmode="decimal" autocomplete="off" class="input-short"
                        aria-invalid={error.is_some().then_some("true")}
                        aria-describedby={error.is_some().then(|| error_id.clone())}
                        {value} {oninput} {onchange} />
                    <span class="unit">{ unit }</span>
                    if let Some(score) = score {
                        <span class={classes!("score-chip", format!("score-{score}"))}>
                            { format!("scores {score}") }
                        </span>
                    }
                </div>
                if let Some(e) = error {
                    <span id={error_id} class="field-error">{ e }</span>
                }
            </div>
        }
    };
    let wound_input =
        |id: &'static str, label: &'static str, unit: &'static str, get: WoundField| {
            let value = get(&mut (*wound).clone()).clone();
            let error = wound_error(id);
            let TextHandlers { oninput, onchange } = {
                let wound = wound.clone();
                on_text(move |text| {
                    let mut next = (*wound).clone();
                    *get(&mut next) = text;
                    wound.set(next);
                })
            };
            let error_id = format!("{id}-error");
            let short = !unit.is_empty();
            html! {
                <div class={classes!("field", error.is_some().then_some("field-invalid"))}>
                    <label for={id}>{ label }</label>
                    <div class="input-with-unit">
                        <input id={id} type="text" autocomplete="off"
                            class={classes!(short.then_some("input-short"))}
                            inputmode={short.then_some("decimal")}
                            aria-invalid={error.is_some().then_some("true")}
                            aria-describedby={error.is_some().then(|| error_id.clone())}
                            {value} {oninput} {onchange} />
                        if short { <span class="unit">{ unit }</span> }
                    </div>
                    if let Some(e) = error {
                        <span id={error_id} class="field-error">{ e }</span>
                    }
                </div>
            }
        };

    let on_scale2 = {
        let obs = obs.clone();
        Callback::from(move |e: Event| {
            let mut next = (*obs).clone();
            next.spo2_scale2 = e.target_unchecked_into::<HtmlInputElement>().checked();
            obs.set(next);
        })
    };
    let on_air = |value: &'static str| {
        let obs = obs.clone();
        Callback::from(move |_: Event| {
            let mut next = (*obs).clone();
            next.air_or_oxygen = value.to_owned();
            obs.set(next);
        })
    };
    let on_consciousness = {
        let obs = obs.clone();
        Callback::from(move |e: Event| {
            let mut next = (*obs).clone();
            next.consciousness = e.target_unchecked_into::<HtmlSelectElement>().value();
            obs.set(next);
        })
    };
    let on_description = {
        let wound = wound.clone();
        on_text(move |text| {
            let mut next = (*wound).clone();
            next.description = text;
            wound.set(next);
        })
    };
    let on_note = text_state(&note);
    let on_task = |id: String| {
        let done = done.clone();
        Callback::from(move |e: Event| {
            let checked = e.target_unchecked_into::<HtmlInputElement>().checked();
            let mut next: Vec<String> = (*done).iter().filter(|t| **t != id).cloned().collect();
            if checked {
                next.push(id.clone());
            }
            done.set(next);
        })
    };

    let onsubmit = {
        let (obs, wound, note, done, tried) = (
            obs.clone(),
            wound.clone(),
            note.clone(),
            done.clone(),
            tried.clone(),
        );
        let patient_id = s.patient.patient_id.clone();
        let on_save = props.on_save.clone();
        let blocked = form_problem.is_some() || props.busy;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            tried.set(true);
            if blocked {
                return;
            }
            let w = (*wound).clone();
            on_save.emit(VisitForm {
                patient_id: patient_id.clone(),
                observations: (*obs).clone(),
                wound: (!wound_is_empty(&w)).then_some(w),
                note: note.trim().to_owned(),
                completed_tasks: (*done).clone(),
            });
        })
    };
    let on_cancel = props.on_cancel.reform(|_: MouseEvent| ());

    let consciousness_options = [
        ("", "Choose…"),
        ("A", "A — Alert"),
        ("C", "C — New confusion"),
        ("V", "V — Responds to voice"),
        ("P", "P — Responds to pain"),
        ("U", "U — Unresponsive"),
    ];
    let open_tasks: Vec<_> = s.tasks.iter().filter(|t| t.open).collect();
    let shown_error: Option<String> = match (&props.error, *tried, &form_problem) {
        (Some(e), _, _) => Some(e.message.clone()),
        (None, true, Some(p)) => Some(p.clone()),
        _ => None,
    };

    html! {
        <>
            <div class="screen-top">
                <button type="button" class="link-button back-link" onclick={on_cancel.clone()}>
                    { "← Back to summary" }
                </button>
            </div>
            <div class="screen-heading">
                <h1 tabindex="-1">{ "Record a visit" }</h1>
                <span class="muted">{ format!("{} · NHS number {}", s.patient.name, s.patient.nhs_number) }</span>
            </div>
            <p class="muted small">{ "Saved on this device first; sent to the hub at the next sync." }</p>
            <form id="visit-form" class="visit-layout" {onsubmit} novalidate=true>
                <div class="visit-fields">
                    <fieldset class="obs-fieldset">
                        <legend>{ "Observations (NEWS2)" }</legend>
                        { obs_input("obs-respiration-rate", "Respiration rate", "breaths/min", "respiration_rate",
                            |o| &mut o.respiration_rate, row_error("respiration_rate")) }
                        { obs_input("obs-spo2", "SpO2", "%", "spo2", |o| &mut o.spo2, row_error("spo2")) }
                        <div class="field checkbox-field">
                            <input id="obs-spo2-scale2" type="checkbox" checked={obs.spo2_scale2} onchange={on_scale2} />
                            <label for="obs-spo2-scale2">
                                { "Use SpO2 scale 2 (prescribed target 88–92 %, e.g. hypercapnic respiratory failure)" }
                            </label>
                        </div>
                        <fieldset class={classes!("radio-group", row_error("air_or_oxygen").is_some().then_some("field-invalid"))}>
                            <legend>{ "Breathing" }</legend>
                            <div class="radio">
                                <input id="obs-air" type="radio" name="air-or-oxygen" value="air"
                                    checked={obs.air_or_oxygen == "air"} onchange={on_air("air")} />
                                <label for="obs-air">{ "Air" }</label>
                            </div>
                            <div class="radio">
                                <input id="obs-oxygen" type="radio" name="air-or-oxygen" value="oxygen"
                                    checked={obs.air_or_oxygen == "oxygen"} onchange={on_air("oxygen")} />
                                <label for="obs-oxygen">{ "Oxygen" }</label>
                            </div>
                            if let Some(e) = row_error("air_or_oxygen") {
                                <span class="field-error">{ e }</span>
                            }
                        </fieldset>
                        <div class="field-pair">
                            { obs_input("obs-systolic", "Systolic blood pressure", "mmHg", "systolic_bp",
                                |o| &mut o.systolic_bp, row_error("systolic_bp")) }
                            { obs_input("obs-diastolic", "Diastolic blood pressure", "mmHg", "diastolic_bp",
                                |o| &mut o.diastolic_bp, view.diastolic_error.clone()) }
                        </div>
                        { obs_input("obs-pulse", "Pulse", "beats/min", "pulse", |o| &mut o.pulse, row_error("pulse")) }
                        <div class={classes!("field", row_error("consciousness").is_some().then_some("field-invalid"))}>
                            <label for="obs-consciousness">{ "Consciousness (ACVPU)" }</label>
                            <select id="obs-consciousness" onchange={on_consciousness}>
                                { for consciousness_options.iter().map(|(value, label)| html! {
                                    <option value={*value} selected={obs.consciousness == *value}>{ *label }</option>
                                }) }
                            </select>
                            if let Some(e) = row_error("consciousness") {
                                <span class="field-error">{ e }</span>
                            }
                        </div>
                        { obs_input("obs-temperature", "Temperature", "°C", "temperature",
                            |o| &mut o.temperature, row_error("temperature")) }
                    </fieldset>

                    <fieldset>
                        <legend>{ "Wound assessment (if a wound was assessed)" }</legend>
                        { wound_input("wound-site", "Site", "", |w| &mut w.site) }
                        <div class="field-row">
                            { wound_input("wound-length", "Length", "cm", |w| &mut w.length_cm) }
                            { wound_input("wound-width", "Width", "cm", |w| &mut w.width_cm) }
                            { wound_input("wound-depth", "Depth", "cm", |w| &mut w.depth_cm) }
                        </div>
                        <div class="field">
                            <label for="wound-description">{ "Description" }</label>
                            <span class="hint" id="wound-description-hint">{ "Wound bed, exudate, surrounding skin, dressing applied" }</span>
                            <textarea id="wound-description" rows="3" aria-describedby="wound-description-hint"
                                value={wound.description.clone()} oninput={on_description.oninput} onchange={on_description.onchange} />
                        </div>
                    </fieldset>

                    <div class="field">
                        <label for="visit-note">{ "Visit note" }</label>
                        <textarea id="visit-note" rows="5" value={(*note).clone()} oninput={on_note.oninput} onchange={on_note.onchange} />
                    </div>

                    <fieldset>
                        <legend>{ "Tasks completed at this visit" }</legend>
                        if open_tasks.is_empty() {
                            <p class="none">{ "No open tasks for this patient." }</p>
                        } else {
                            { for open_tasks.iter().map(|t| {
                                let cb_id = format!("task-{}", t.id);
                                html! {
                                    <div class="field checkbox-field" key={t.id.clone()}>
                                        <input id={cb_id.clone()} type="checkbox" class="task-complete"
                                            data-task-id={t.id.clone()} checked={done.contains(&t.id)}
                                            onchange={on_task(t.id.clone())} />
                                        <label for={cb_id}>
                                            { &t.entry.title }
                                            if !t.entry.detail.is_empty() {
                                                <span class="muted">{ format!(" — {}", t.entry.detail) }</span>
                                            }
                                        </label>
                                    </div>
                                }
                            }) }
                        }
                    </fieldset>

                    if let Some(e) = shown_error {
                        <div id="visit-error" class="error-summary" role="alert">
                            <h2>{ "The visit was not saved" }</h2>
                            <p>{ e }</p>
                        </div>
                    }
                    <div class="actions">
                        <button id="visit-save" type="submit" class="button" disabled={props.busy}>
                            { if props.busy { "Saving…" } else { "Save visit" } }
                        </button>
                        <button type="button" class="button button-secondary" onclick={on_cancel}>
                            { "Cancel" }
                        </button>
                    </div>
                </div>
                <News2Panel view={view.clone()} />
            </form>
        </>
    }
}

#[derive(Properties, PartialEq)]
struct PanelProps {
    view: News2View,
}

/// The live NEWS2 panel: each parameter's score, the total only when the set
/// is complete, the band and the clinical response.
#[component]
fn News2Panel(props: &PanelProps) -> Html {
    let v = &props.view;
    let complete = v.total.is_some();
    html! {
        <aside class={classes!("news2-panel", format!("band-{}", v.band), v.escalate.then_some("news2-escalate"))}
            aria-labelledby="news2-title">
            <h2 id="news2-title">{ "NEWS2" }</h2>
            <table class="news2-table">
                <caption class="visually-hidden">{ "Score of each parameter" }</caption>
                <thead>
                    <tr><th scope="col">{ "Parameter" }</th><th scope="col">{ "Score" }</th></tr>
                </thead>
                <tbody>
                    { for v.rows.iter().map(|r| html! {
                        <tr key={r.field.clone()} data-field={r.field.clone()}
                            class={classes!(r.error.is_some().then_some("row-invalid"))}>
                            <th scope="row">{ &r.label }</th>
                            <td class={classes!("news2-score", r.score.map(|s| format!("score-{s}")))}>
                                { match (r.score, &r.error) {
                                    (Some(s), _) => s.to_string(),
                                    (None, Some(_)) => "invalid".to_owned(),
                                    (None, None) => "—".to_owned(),
                                } }
                            </td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <div class="news2-result" aria-live="polite">
                <div class="news2-total-line">
                    <span class="news2-total-label">{ "Total" }</span>
                    <span id="news2-total" class={classes!("news2-total", (!complete).then_some("news2-incomplete"))}>
                        { match v.total { Some(t) => t.to_string(), None => "Incomplete".to_owned() } }
                    </span>
                </div>
                if !complete {
                    <p id="news2-missing" class="news2-missing">
                        { format!(
                            "Incomplete — {} missing; partial sum is not a NEWS2 score.",
                            plural(v.missing.len(), "parameter", "parameters")
                        ) }
                        if !v.missing.is_empty() {
                            <span class="news2-missing-list">{ format!(" Still to record: {}.", v.missing.join(", ")) }</span>
                        }
                    </p>
                }
                <div class="news2-band-line">
                    <span>{ if complete { "Risk: " } else { "Risk at least: " } }</span>
                    <span id="news2-band" class={classes!("band-chip", format!("band-chip-{}", v.band))}>{ &v.band }</span>
                </div>
                <h3 id="news2-heading" class="news2-heading">{ &v.heading }</h3>
                <p id="news2-prompt" class={classes!("news2-prompt", v.escalate.then_some("news2-prompt-escalate"))}>
                    { &v.prompt }
                </p>
            </div>
        </aside>
    }
}
