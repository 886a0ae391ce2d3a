//! One patient's summary: alerts and allergies first (in a banner that
//! stays in view), then the record, each entry with its source.

use careshare_view::api::{Entry, PatientSummary};
use yew::prelude::*;

use crate::clock::Clock;
use crate::components::entry::EntryItem;
use crate::components::trend_chart::TrendChart;

#[derive(Properties, PartialEq)]
pub struct PatientProps {
    pub summary: PatientSummary,
    pub clock: Clock,
    pub on_record_visit: Callback<String>,
    pub on_back: Callback<()>,
}

/// A titled section of entries, or what to say when there are none.
fn section(id: &str, title: &str, entries: &[Entry], none: &str, clock: Clock) -> Html {
    let heading = format!("{id}-title");
    html! {
        <section id={id.to_owned()} class="summary-section" aria-labelledby={heading.clone()}>
            <h2 id={heading}>{ title }</h2>
            if entries.is_empty() {
                <p class="none">{ none }</p>
            } else {
                <ul class="entries">
                    { for entries.iter().map(|e| html! {
                        <EntryItem key={e.reference.clone()} entry={e.clone()} {clock} />
                    }) }
                </ul>
            }
        </section>
    }
}

#[component]
pub fn PatientScreen(props: &PatientProps) -> Html {
    let s = &props.summary;
    let p = &s.patient;
    let clock = props.clock;
    let on_record = {
        let id = p.patient_id.clone();
        props
            .on_record_visit
            .reform(move |_: MouseEvent| id.clone())
    };
    let on_back = props.on_back.reform(|_: MouseEvent| ());

    let banner_lists = if s.alerts.is_empty() && s.allergies.is_empty() {
        html! {
            <p class="banner-none">{ "No alerts · No allergies recorded on this device" }</p>
        }
    } else {
        html! {
            <div class="banner-lists">
                <div class="banner-col banner-alerts">
                    <h2>{ "Alerts" }</h2>
                    if s.alerts.is_empty() {
                        <p class="none">{ "No alerts" }</p>
                    } else {
                        <ul class="entries">
                            { for s.alerts.iter().map(|e| html! {
                                <EntryItem key={e.reference.clone()} entry={e.clone()} {clock}
                                    class={classes!("alert-item")} />
                            }) }
                        </ul>
                    }
                </div>
                <div class="banner-col banner-allergies">
                    <h2>{ "Allergies and intolerances" }</h2>
                    if s.allergies.is_empty() {
                        <p class="none">{ "No allergies recorded on this device" }</p>
                    } else {
                        <ul class="entries">
                            { for s.allergies.iter().map(|e| html! {
                                <EntryItem key={e.reference.clone()} entry={e.clone()} {clock}
                                    class={classes!("allergy-item")} />
                            }) }
                        </ul>
                    }
                </div>
            </div>
        }
    };

    let mut ids: Vec<String> = Vec::new();
    if !p.nhs_number.is_empty() {
        ids.push(format!("NHS number {}", p.nhs_number));
    }
    if let Some(born) = &p.birth_date {
        match p.age {
            Some(age) => ids.push(format!("Born {born} ({age} y)")),
            None => ids.push(format!("Born {born}")),
        }
    }

    let tasks = html! {
        <section id="tasks" class="summary-section" aria-labelledby="tasks-title">
            <h2 id="tasks-title">{ "Tasks" }</h2>
            if s.tasks.is_empty() {
                <p class="none">{ "No tasks on this device" }</p>
            } else {
                <ul class="entries">
                    { for s.tasks.iter().map(|t| html! {
                        <EntryItem key={t.id.clone()} entry={t.entry.clone()} {clock}
                            class={classes!("task", if t.open { "task-open" } else { "task-done" })} />
                    }) }
                </ul>
            }
        </section>
    };

    let documents = html! {
        <section id="documents" class="summary-section" aria-labelledby="documents-title">
            <h2 id="documents-title">{ "Documents" }</h2>
            if s.documents.is_empty() {
                <p class="none">{ "No documents on this device" }</p>
            } else {
                <ul class="entries">
                    { for s.documents.iter().map(|d| html! {
                        <EntryItem key={d.entry.reference.clone()} entry={d.entry.clone()} {clock}
                            class={classes!("document")}>
                            if let Some(text) = &d.text {
                                <details class="document-text">
                                    <summary>{ "Show the text" }</summary>
                                    <div class="document-body">{ text }</div>
                                </details>
                            } else {
                                <p class="muted small">{ "The text of this document is not held on this device." }</p>
                            }
                        </EntryItem>
                    }) }
                </ul>
            }
        </section>
    };

    let charts: Vec<_> = s.vitals.iter().filter(|v| !v.points.is_empty()).collect();
    let observations = html! {
        <section id="observations" class="summary-section" aria-labelledby="observations-title">
            <h2 id="observations-title">{ "Recent observations" }</h2>
            if !charts.is_empty() {
                <div class="trend-grid">
                    { for charts.iter().map(|v| html! {
                        <TrendChart key={v.key.clone()} series={(*v).clone()} {clock} />
                    }) }
                </div>
            }
            if s.recent_observations.is_empty() {
                <p class="none">{ "No observations on this device" }</p>
            } else {
                <ul class="entries">
                    { for s.recent_observations.iter().map(|e| html! {
                        <EntryItem key={e.reference.clone()} entry={e.clone()} {clock} />
                    }) }
                </ul>
            }
        </section>
    };

    html! {
        <>
            <div class="screen-top">
                <button type="button" class="link-button back-link" onclick={on_back}>
                    { "← Back to caseload" }
                </button>
            </div>
            <article id="patient-summary" data-patient-id={p.patient_id.clone()}
                aria-labelledby="patient-title">
                <section id="patient-banner" class="patient-banner" aria-label="Patient, alerts and allergies">
                    <div class="banner-identity">
                        <h1 id="patient-title" class="patient-name" tabindex="-1">{ &p.name }</h1>
                        <span class="banner-ids">{ ids.join(" · ") }</span>
                        if !p.address.is_empty() {
                            <span class="banner-address">{ &p.address }</span>
                        }
                        <span class="freshness">{ clock.freshness(p.data_as_of) }</span>
                        if let Some(until) = p.break_glass_until {
                            <span class="bg-badge">{ format!("Emergency access until {}", clock.when(until)) }</span>
                        }
                    </div>
                    { banner_lists }
                </section>
                <div class="summary-actions">
                    <button id="record-visit" type="button" class="button" onclick={on_record}>
                        { "Record a visit" }
                    </button>
                </div>
                { section("conditions", "Conditions", &s.conditions, "No conditions recorded on this device", clock) }
                { section("medicines", "Current medicines", &s.medicines, "No medicines recorded on this device", clock) }
                { observations }
                { section("care-plans", "Care plan", &s.care_plans, "No care plan on this device", clock) }
                { tasks }
                { documents }
                { section("visits", "Visits", &s.visits, "No visits booked", clock) }
            </article>
        </>
    }
}
