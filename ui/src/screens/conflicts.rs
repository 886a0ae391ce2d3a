//! The conflicts inbox: both versions side by side; the person decides.

use careshare_view::api::{AppError, ConflictChoice, ConflictItem, ElementPick};
use yew::prelude::*;

use crate::clock::Clock;
use crate::components::value_of;

#[derive(Properties, PartialEq)]
pub struct ConflictsProps {
    pub conflicts: Option<Vec<ConflictItem>>,
    pub load_error: Option<AppError>,
    pub busy: bool,
    pub error: Option<AppError>,
    pub resolved: Option<i64>,
    pub clock: Clock,
    pub on_resolve: Callback<(i64, ConflictChoice)>,
}

/// One element's choice while combining.
#[derive(Debug, Clone, PartialEq)]
struct Pick {
    path: String,
    take: String,
    value: String,
}

fn shown(value: &str) -> Html {
    if value.is_empty() {
        html! { <span class="absent">{ "(absent)" }</span> }
    } else {
        html! { <span class="value">{ value }</span> }
    }
}

#[component]
pub fn ConflictsScreen(props: &ConflictsProps) -> Html {
    // The conflict being combined, with its picks (one at a time).
    let combining = use_state(|| None::<(i64, Vec<Pick>)>);
    let clock = props.clock;

    // A combine in progress for a conflict that is gone is dropped.
    if let (Some((id, _)), Some(list)) = (&*combining, &props.conflicts) {
        if !list.iter().any(|c| c.id == *id) {
            combining.set(None);
        }
    }

    let body = match &props.conflicts {
        None if props.load_error.is_none() => {
            html! { <p class="loading">{ "Loading conflicts…" }</p> }
        }
        None => html! {},
        Some(list) if list.is_empty() => html! {
            <p id="no-conflicts" class="empty-state">
                { "No conflicts. Every change on this device agrees with the hub." }
            </p>
        },
        Some(list) => html! {
            <ul class="conflict-list">
                { for list.iter().map(|c| {
                    let picks = combining.as_ref().filter(|(id, _)| *id == c.id).map(|(_, p)| p.clone());
                    let keep = |choice: ConflictChoice| {
                        let on_resolve = props.on_resolve.clone();
                        let id = c.id;
                        let combining = combining.clone();
                        Callback::from(move |_: MouseEvent| {
                            combining.set(None);
                            on_resolve.emit((id, choice.clone()));
                        })
                    };
                    let on_combine = {
                        let combining = combining.clone();
                        let id = c.id;
                        let start: Vec<Pick> = c.elements.iter().map(|e| Pick {
                            path: e.path.clone(),
                            take: "theirs".to_owned(),
                            value: String::new(),
                        }).collect();
                        Callback::from(move |_: MouseEvent| combining.set(Some((id, start.clone()))))
                    };
                    let on_cancel_combine = {
                        let combining = combining.clone();
                        Callback::from(move |_: MouseEvent| combining.set(None))
                    };
                    let set_pick = |index: usize, take: Option<&'static str>| {
                        let combining = combining.clone();
                        Callback::from(move |e: Event| {
                            if let Some((id, mut picks)) = (*combining).clone() {
                                if let Some(p) = picks.get_mut(index) {
                                    match take {
                                        Some(t) => p.take = t.to_owned(),
                                        None => p.value = value_of(&e),
                                    }
                                }
                                combining.set(Some((id, picks)));
                            }
                        })
                    };
                    let on_save_combined = {
                        let on_resolve = props.on_resolve.clone();
                        let id = c.id;
                        let picks = picks.clone().unwrap_or_default();
                        let combining = combining.clone();
                        Callback::from(move |_: MouseEvent| {
                            let picks = picks.iter().map(|p| ElementPick {
                                path: p.path.clone(),
                                take: p.take.clone(),
                                value: (p.take == "value").then(|| p.value.clone()),
                            }).collect();
                            combining.set(None);
                            on_resolve.emit((id, ConflictChoice::Combined { picks }));
                        })
                    };
                    let patient = c.patient_name.clone().unwrap_or_else(|| c.patient_id.clone());
                    let mine_head = match &c.mine_at {
                        Some(at) => format!("Mine (this device, {})", clock.fhir(at)),
                        None => "Mine (this device)".to_owned(),
                    };
                    let theirs_head = match (&c.theirs_by, &c.theirs_at) {
                        (Some(by), Some(at)) => format!("Theirs (hub: {by}, {})", clock.fhir(at)),
                        (Some(by), None) => format!("Theirs (hub: {by})"),
                        (None, Some(at)) => format!("Theirs (hub, {})", clock.fhir(at)),
                        (None, None) => "Theirs (hub)".to_owned(),
                    };
                    let title_id = format!("conflict-{}-title", c.id);
                    html! {
                        <li key={c.id.to_string()} class="conflict card" data-conflict-id={c.id.to_string()}
                            aria-labelledby={title_id.clone()}>
                            <h2 id={title_id} class="conflict-title">{ &c.title }</h2>
                            <p class="conflict-meta">
                                { format!("{patient} · found {}", clock.when(c.detected_at)) }
                            </p>
                            <table class="conflict-table">
                                <thead>
                                    <tr>
                                        <th scope="col">{ "Item" }</th>
                                        <th scope="col">{ "Before either change" }</th>
                                        <th scope="col">{ mine_head }</th>
                                        <th scope="col">{ theirs_head }</th>
                                        if picks.is_some() { <th scope="col">{ "Keep" }</th> }
                                    </tr>
                                </thead>
                                <tbody>
                                    { for c.elements.iter().enumerate().map(|(i, e)| {
                                        let pick = picks.as_ref().and_then(|p| p.get(i).cloned());
                                        let name = format!("pick-{}-{i}", c.id);
                                        html! {
                                            <tr key={e.path.clone()} class="conflict-element" data-path={e.path.clone()}>
                                                <th scope="row">{ &e.label }</th>
                                                <td class="base">{ shown(&e.base) }</td>
                                                <td class="mine">{ shown(&e.mine) }</td>
                                                <td class="theirs">{ shown(&e.theirs) }</td>
                                                if let Some(pick) = pick {
                                                    <td class="pick">
                                                        <fieldset class="pick-group">
                                                            <legend class="visually-hidden">{ format!("Keep for {}", e.label) }</legend>
                                                            <div class="radio">
                                                                <input type="radio" id={format!("{name}-mine")} name={name.clone()}
                                                                    class="pick-mine" checked={pick.take == "mine"}
                                                                    onchange={set_pick(i, Some("mine"))} />
                                                                <label for={format!("{name}-mine")}>{ "Mine" }</label>
                                                            </div>
                                                            <div class="radio">
                                                                <input type="radio" id={format!("{name}-theirs")} name={name.clone()}
                                                                    class="pick-theirs" checked={pick.take == "theirs"}
                                                                    onchange={set_pick(i, Some("theirs"))} />
                                                                <label for={format!("{name}-theirs")}>{ "Theirs" }</label>
                                                            </div>
                                                            <div class="radio">
                                                                <input type="radio" id={format!("{name}-value")} name={name.clone()}
                                                                    class="pick-value" checked={pick.take == "value"}
                                                                    onchange={set_pick(i, Some("value"))} />
                                                                <label for={format!("{name}-value")}>{ "Type a value" }</label>
                                                            </div>
                                                            if pick.take == "value" {
                                                                <input type="text" class="pick-text" id={format!("{name}-text")}
                                                                    aria-label={format!("Value for {}", e.label)}
                                                                    value={pick.value.clone()}
                                                                    oninput={set_pick(i, None).reform(|ev: InputEvent| ev.into())}
                                                                    onchange={set_pick(i, None)} />
                                                            }
                                                        </fieldset>
                                                    </td>
                                                }
                                            </tr>
                                        }
                                    }) }
                                </tbody>
                            </table>
                            <div class="actions">
                                if picks.is_some() {
                                    <button id="combine-save" type="button" class="button"
                                        disabled={props.busy} onclick={on_save_combined}>
                                        { "Save combined" }
                                    </button>
                                    <button type="button" class="button button-secondary" onclick={on_cancel_combine}>
                                        { "Cancel" }
                                    </button>
                                } else {
                                    <button type="button" class="button keep-mine" disabled={props.busy}
                                        onclick={keep(ConflictChoice::Mine)}>{ "Keep mine" }</button>
                                    <button type="button" class="button keep-theirs" disabled={props.busy}
                                        onclick={keep(ConflictChoice::Theirs)}>{ "Keep theirs" }</button>
                                    <button type="button" class="button button-secondary combine" disabled={props.busy}
                                        onclick={on_combine}>{ "Combine…" }</button>
                                }
                            </div>
                        </li>
                    }
                }) }
            </ul>
        },
    };

    html! {
        <section id="conflicts" aria-labelledby="conflicts-title">
            <div class="screen-heading">
                <h1 id="conflicts-title" tabindex="-1">{ "Conflicts" }</h1>
            </div>
            <p class="lead">
                { "Someone else changed the same item while this device was offline. Nothing has been lost: \
                   compare both versions and decide which to keep. Your decision is recorded with your name and the time." }
            </p>
            if props.resolved.is_some() {
                <p id="conflict-resolved" class="success-message" role="status">{ "Conflict resolved. Your decision will be sent at the next sync." }</p>
            }
            if let Some(e) = &props.error {
                <p id="conflict-error" class="error-message" role="alert">{ &e.message }</p>
            }
            if let Some(e) = &props.load_error {
                <p class="error-message" role="alert">{ &e.message }</p>
            }
            { body }
        </section>
    }
}
