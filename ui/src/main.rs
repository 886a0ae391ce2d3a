//! The Careshare desktop UI: Yew function components over the shell's
//! commands (`careshare_view::api`).
//!
//! * `App` (here) holds the state (`state::State`, a reducer) and every side
//!   effect: the `app_status` poll, loading what the screen shows, `touch`.
//! * `effects` makes the calls (through `api::call`, the one `invoke`
//!   wrapper) and reports to the reducer.
//! * `screens` and `components` are (mostly) pure: props in, callbacks out.

mod api;
mod chart;
mod clock;
mod components;
mod effects;
mod hooks;
mod screens;
mod state;

use std::cell::Cell;
use std::rc::Rc;

use careshare_view::api::Phase;
use gloo_timers::callback::Interval;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::components::banners::BreakGlassBanners;
use crate::components::header::{AppHeader, MainNav};
use crate::components::sign_in::SignInDialog;
use crate::components::sync_bar::SyncBar;
use crate::screens::break_glass::BreakGlassScreen;
use crate::screens::caseload::CaseloadScreen;
use crate::screens::conflicts::ConflictsScreen;
use crate::screens::enrol::Enrol;
use crate::screens::patient::PatientScreen;
use crate::screens::unlock::{LockedOut, Unlock};
use crate::screens::visit::VisitScreen;
use crate::screens::wiped::Wiped;
use crate::state::{Action, Op, Route, State};

/// How often the shell is asked where the app stands.
const POLL_MS: u32 = 1_000;
/// At most one `touch` per this many milliseconds.
const TOUCH_EVERY_MS: f64 = 10_000.0;

#[component]
fn App() -> Html {
    let state = use_reducer(State::default);
    let dispatch = state.dispatcher();
    let phase = state.phase();
    let unlocked = phase == Some(Phase::Unlocked);

    // Poll `app_status` every second (never two calls at once).
    {
        let dispatch = dispatch.clone();
        use_effect_with((), move |_| {
            let in_flight = Rc::new(Cell::new(false));
            let tick = move || {
                if in_flight.replace(true) {
                    return;
                }
                let in_flight = in_flight.clone();
                effects::poll_status(dispatch.clone(), move || in_flight.set(false));
            };
            tick.clone()();
            let interval = Interval::new(POLL_MS, tick);
            move || drop(interval)
        });
    }

    // The caseload: on entering the screen and after each sync.
    {
        let dispatch = dispatch.clone();
        let on_caseload = unlocked && state.route == Route::Caseload;
        use_effect_with((on_caseload, state.last_sync()), move |(on, _)| {
            if *on {
                effects::load_caseload(dispatch);
            }
        });
    }

    // After break-glass: look for the patient every 2 s until they arrive.
    {
        let dispatch = dispatch.clone();
        let waiting = if unlocked {
            state.granted.as_ref().map(|g| g.patient_id.clone())
        } else {
            None
        };
        use_effect_with((waiting, state.waiting_tick / 2), move |(waiting, _)| {
            if waiting.is_some() {
                effects::load_caseload(dispatch);
            }
        });
    }

    // The patient's summary: on opening it, after a visit is saved, and after
    // a sync while it is on screen (not while the visit form is open).
    {
        let dispatch = dispatch.clone();
        let seen_sync = use_mut_ref(|| None);
        let on_summary = matches!(state.route, Route::Patient(_));
        if on_summary {
            *seen_sync.borrow_mut() = state.last_sync();
        }
        let patient = if unlocked {
            state.route.patient_id().map(str::to_owned)
        } else {
            None
        };
        let epoch = *seen_sync.borrow();
        use_effect_with(
            (patient, state.summary_nonce, epoch),
            move |(patient, _, _)| {
                if let Some(id) = patient {
                    effects::load_summary(dispatch, id.clone());
                }
            },
        );
    }

    // Conflicts: on entering the inbox, when the count or a sync changes,
    // after a resolution.
    {
        let dispatch = dispatch.clone();
        let on_conflicts = unlocked && state.route == Route::Conflicts;
        let count = state.status.as_ref().map(|s| s.sync.conflicts);
        use_effect_with(
            (
                on_conflicts,
                count,
                state.last_sync(),
                state.conflicts_nonce,
            ),
            move |(on, _, _, _)| {
                if *on {
                    effects::load_conflicts(dispatch);
                }
            },
        );
    }

    // A new screen: move focus to its heading (for keyboard and screen
    // reader users) and start at the top.
    {
        let route = state.route.clone();
        // A patient's screen has its heading once the summary is in.
        let ready = match route.patient_id() {
            Some(id) => state
                .summary
                .as_ref()
                .is_some_and(|s| s.patient.patient_id == id),
            None => true,
        };
        let first = use_mut_ref(|| true);
        use_effect_with((route, ready), move |_| {
            if first.replace(false) {
                return;
            }
            focus_heading();
        });
    }

    // Activity anywhere restarts the shell's idle timer (throttled).
    let last_touch = use_mut_ref(|| 0.0_f64);
    let activity = {
        let last_touch = last_touch.clone();
        Callback::from(move |_: ()| {
            if !unlocked {
                return;
            }
            let now = js_sys::Date::now();
            let mut last = last_touch.borrow_mut();
            if now - *last >= TOUCH_EVERY_MS {
                *last = now;
                effects::touch();
            }
        })
    };
    let onclick = activity.reform(|_: MouseEvent| ());
    let onkeydown = activity.reform(|_: KeyboardEvent| ());
    let oninput = activity.reform(|_: InputEvent| ());

    let Some(status) = state.status.clone() else {
        return html! {
            <div class="app gate-wrap">
                <main class="gate">
                    <div class="gate-card">
                        if let Some(e) = &state.status_error {
                            <h1>{ "Careshare cannot start" }</h1>
                            <p id="startup-error" class="error-message" role="alert">{ &e.message }</p>
                            <p>{ "Close and reopen the app. If this keeps happening, contact the service desk." }</p>
                        } else {
                            <p class="loading">{ "Starting Careshare…" }</p>
                        }
                    </div>
                </main>
            </div>
        };
    };

    let screen = match status.phase {
        Phase::FirstRun => html! {
            <Enrol user={status.user.clone()} busy={state.is_busy(Op::Enrol)}
                error={state.error(Op::Enrol)}
                on_enrol={{ let d = dispatch.clone(); Callback::from(move |r| effects::enrol(d.clone(), r)) }} />
        },
        Phase::Locked => html! {
            <Unlock user={status.user.clone()} attempts_left={status.attempts_left}
                busy={state.is_busy(Op::Unlock)} error={state.error(Op::Unlock)}
                on_unlock={{ let d = dispatch.clone(); Callback::from(move |(p, h)| effects::unlock(d.clone(), p, h)) }} />
        },
        Phase::LockedOut => html! {
            <LockedOut user={status.user.clone()}
                busy={state.is_busy(Op::Reauthorise)} error={state.error(Op::Reauthorise)}
                on_reauthorise={{ let d = dispatch.clone(); Callback::from(move |(h, p)| effects::reauthorise(d.clone(), h, p)) }} />
        },
        Phase::Wiped => html! { <Wiped /> },
        Phase::Unlocked => {
            return html! {
                <div class="app" {onclick} {onkeydown} {oninput}>
                    { unlocked_shell(&state, &status, &dispatch) }
                </div>
            }
        }
    };
    html! {
        <div class="app gate-wrap" {onclick} {onkeydown} {oninput}>{ screen }</div>
    }
}

/// The app once unlocked: header, navigation, sync bar, banners, screen.
fn unlocked_shell(
    state: &State,
    status: &careshare_view::api::AppStatus,
    dispatch: &effects::Dispatch,
) -> Html {
    let clock = state.clock;
    let navigate = {
        let d = dispatch.clone();
        Callback::from(move |route: Route| d.dispatch(Action::Navigate(route)))
    };
    let open_patient = navigate.reform(Route::Patient);
    let on_lock = {
        let d = dispatch.clone();
        Callback::from(move |_| effects::lock_now(d.clone()))
    };
    let on_sync = {
        let d = dispatch.clone();
        Callback::from(move |_| effects::sync_now(d.clone()))
    };
    let sign_in_required = status
        .sync
        .last_error
        .as_ref()
        .is_some_and(|e| e.code == "sign-in-required");

    let screen = match &state.route {
        Route::Caseload => html! {
            <CaseloadScreen caseload={state.caseload.clone()} error={state.caseload_error.clone()}
                {clock} on_open={open_patient} />
        },
        Route::Patient(id) | Route::Visit(id) => {
            let summary = state
                .summary
                .as_ref()
                .filter(|s| &s.patient.patient_id == id)
                .cloned();
            match summary {
                Some(summary) if matches!(state.route, Route::Patient(_)) => html! {
                    <PatientScreen {summary} {clock}
                        on_record_visit={navigate.reform(Route::Visit)}
                        on_back={navigate.reform(|_| Route::Caseload)} />
                },
                Some(summary) => {
                    let back = {
                        let id = id.clone();
                        navigate.reform(move |_| Route::Patient(id.clone()))
                    };
                    html! {
                        <VisitScreen key={id.clone()} {summary} busy={state.is_busy(Op::RecordVisit)}
                            error={state.error(Op::RecordVisit)}
                            on_save={{ let d = dispatch.clone(); Callback::from(move |v| effects::record_visit(d.clone(), v)) }}
                            on_cancel={back} />
                    }
                }
                None => html! {
                    <section class="screen-loading">
                        <div class="screen-top">
                            <button type="button" class="link-button back-link"
                                onclick={navigate.reform(|_: MouseEvent| Route::Caseload)}>
                                { "← Back to caseload" }
                            </button>
                        </div>
                        if let Some(e) = &state.summary_error {
                            <h1 tabindex="-1">{ "This record cannot be shown" }</h1>
                            <p id="patient-error" class="error-message" role="alert">{ &e.message }</p>
                        } else {
                            <p class="loading">{ "Opening the record…" }</p>
                        }
                    </section>
                },
            }
        }
        Route::Conflicts => html! {
            <ConflictsScreen conflicts={state.conflicts.clone()} load_error={state.conflicts_error.clone()}
                busy={state.is_busy(Op::Resolve)} error={state.error(Op::Resolve)}
                resolved={state.resolved} {clock}
                on_resolve={{ let d = dispatch.clone(); Callback::from(move |(id, choice)| effects::resolve(d.clone(), id, choice)) }} />
        },
        Route::BreakGlass => html! {
            <BreakGlassScreen busy={state.is_busy(Op::BreakGlass)} error={state.error(Op::BreakGlass)}
                granted={state.granted.clone()} online={status.sync.online} {clock}
                on_request={{ let d = dispatch.clone(); Callback::from(move |r| effects::break_glass(d.clone(), r)) }} />
        },
    };

    html! {
        <>
            <a class="skip-link" href="#content">{ "Skip to main content" }</a>
            <AppHeader user={status.user.clone()} locking={state.is_busy(Op::Lock)} {on_lock} />
            <MainNav route={state.route.clone()} conflicts={status.sync.conflicts} on_navigate={navigate.clone()} />
            <SyncBar sync={status.sync.clone()} {clock} starting={state.is_busy(Op::SyncNow)}
                start_error={state.error(Op::SyncNow).or_else(|| state.error(Op::Lock))}
                {on_sync} on_navigate={navigate.clone()} />
            <BreakGlassBanners grants={status.break_glass.clone()} {clock} on_navigate={navigate} />
            if sign_in_required {
                <SignInDialog busy={state.is_busy(Op::SignIn)} error={state.error(Op::SignIn)}
                    on_sign_in={{ let d = dispatch.clone(); Callback::from(move |p| effects::sign_in(d.clone(), p)) }} />
            }
            if let Some(e) = &state.status_error {
                <p class="error-message app-warning" role="alert">
                    { format!("The app is not answering: {}", e.message) }
                </p>
            }
            <main id="content" class="content" tabindex="-1">
                { screen }
            </main>
        </>
    }
}

/// Focuses the main heading of the screen and scrolls to the top.
fn focus_heading() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(content) = document.get_element_by_id("content") {
        content.set_scroll_top(0);
    }
    let target = document
        .query_selector("#content h1")
        .ok()
        .flatten()
        .or_else(|| document.get_element_by_id("content"));
    if let Some(Ok(target)) = target.map(|t| t.dyn_into::<web_sys::HtmlElement>()) {
        let _ = target.focus();
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
