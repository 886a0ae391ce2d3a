//! The blue header and the main navigation.

use careshare_view::api::UserInfo;
use yew::prelude::*;

use crate::state::Route;

#[derive(Properties, PartialEq)]
pub struct HeaderProps {
    pub user: Option<UserInfo>,
    pub locking: bool,
    pub on_lock: Callback<()>,
}

/// Careshare, who is signed in on which device, and "Lock now".
#[component]
pub fn AppHeader(props: &HeaderProps) -> Html {
    let on_lock = props.on_lock.reform(|_: MouseEvent| ());
    html! {
        <header id="app-header" class="app-header">
            <div class="brand">{ "Careshare" }</div>
            if let Some(user) = &props.user {
                <div class="user">
                    <span class="user-name">{ &user.username }</span>
                    <span class="device-name">{ format!("on {}", user.device_name) }</span>
                </div>
            }
            <button id="lock-now" type="button" class="button button-header"
                onclick={on_lock} disabled={props.locking}>
                { if props.locking { "Locking…" } else { "Lock now" } }
            </button>
        </header>
    }
}

#[derive(Properties, PartialEq)]
pub struct NavProps {
    pub route: Route,
    pub conflicts: usize,
    pub on_navigate: Callback<Route>,
}

/// Caseload · Conflicts (count) · Emergency access.
#[component]
pub fn MainNav(props: &NavProps) -> Html {
    let link = |id: &'static str, label: Html, target: Route, active: bool| {
        let onclick = props
            .on_navigate
            .reform(move |_: MouseEvent| target.clone());
        html! {
            <li>
                <button {id} type="button" class={classes!("nav-link", active.then_some("active"))}
                    aria-current={active.then_some("page")} {onclick}>
                    { label }
                </button>
            </li>
        }
    };
    let on_caseload = matches!(
        props.route,
        Route::Caseload | Route::Patient(_) | Route::Visit(_)
    );
    let count = props.conflicts;
    let conflicts_label = html! {
        <>
            { "Conflicts " }
            <span class={classes!("count-badge", (count > 0).then_some("count-badge-alert"))}>
                { count }<span class="visually-hidden">{ " open" }</span>
            </span>
        </>
    };
    html! {
        <nav class="main-nav" aria-label="Main">
            <ul>
                { link("nav-caseload", html! { "Caseload" }, Route::Caseload, on_caseload) }
                { link("nav-conflicts", conflicts_label, Route::Conflicts, props.route == Route::Conflicts) }
                { link("nav-break-glass", html! { "Emergency access" }, Route::BreakGlass, props.route == Route::BreakGlass) }
            </ul>
        </nav>
    }
}
