//! The sync bar: online or not, what waits to be sent, conflicts, the last
//! sync, progress, the last error, and "Sync now".

use careshare_view::api::{AppError, SyncState};
use yew::prelude::*;

use crate::clock::Clock;
use crate::state::Route;

#[derive(Properties, PartialEq)]
pub struct SyncBarProps {
    pub sync: SyncState,
    pub clock: Clock,
    pub starting: bool,
    /// Why "Sync now" itself failed.
    pub start_error: Option<AppError>,
    pub on_sync: Callback<()>,
    pub on_navigate: Callback<Route>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[component]
pub fn SyncBar(props: &SyncBarProps) -> Html {
    let s = &props.sync;
    let (online_attr, online_text) = match s.online {
        Some(true) => ("true", "Online"),
        Some(false) => ("false", "Offline"),
        None => ("unknown", "Not yet connected"),
    };
    let last = match s.last_sync {
        Some(at) => format!("Last synced {}", props.clock.when(at)),
        None => "Not synced yet".to_owned(),
    };
    let on_sync = props.on_sync.reform(|_: MouseEvent| ());
    let on_conflicts = props.on_navigate.reform(|_: MouseEvent| Route::Conflicts);
    let progress = s.running.then(|| {
        let (label, fraction) = match &s.progress {
            Some(p) => (p.label.clone(), p.fraction),
            None => ("Syncing…".to_owned(), None),
        };
        let bar = match fraction {
            Some(f) => html! {
                <progress id="sync-progress-bar" max="1" value={f.clamp(0.0, 1.0).to_string()}
                    aria-labelledby="sync-progress-label"></progress>
            },
            // No value: the engine shows a busy (indeterminate) bar.
            None => html! {
                <progress id="sync-progress-bar" aria-labelledby="sync-progress-label"></progress>
            },
        };
        html! {
            <div id="sync-progress" class="sync-progress">
                { bar }
                <span id="sync-progress-label">{ label }</span>
            </div>
        }
    });
    html! {
        <section id="sync-bar" class="sync-bar" data-online={online_attr} aria-label="Sync">
            <div class="sync-items">
                <span class={classes!("sync-online", format!("sync-online-{online_attr}"))}>
                    <span class="dot" aria-hidden="true"></span>
                    { online_text }
                </span>
                <span id="sync-pending" class={classes!((s.pending > 0).then_some("sync-has-pending"))}>
                    { plural(s.pending, "change waiting to send", "changes waiting to send") }
                </span>
                if s.rejected > 0 {
                    <span id="sync-rejected" class="sync-warning">
                        { plural(s.rejected, "change refused by the hub", "changes refused by the hub") }
                    </span>
                }
                if s.conflicts > 0 {
                    <button id="sync-conflicts" type="button" class="link-button sync-warning"
                        onclick={on_conflicts}>
                        { plural(s.conflicts, "conflict to resolve", "conflicts to resolve") }
                    </button>
                }
                <span id="sync-last">{ last }</span>
                <button id="sync-now" type="button" class="button button-secondary button-small"
                    onclick={on_sync} disabled={s.running || props.starting}>
                    { if s.running { "Syncing…" } else { "Sync now" } }
                </button>
            </div>
            <div class="sync-live" role="status" aria-live="polite">
                { for progress }
                if let Some(error) = &s.last_error {
                    if error.code == "unreachable" {
                        // No signal is normal on the road: say what it means, calmly.
                        <p id="sync-error" class="sync-offline-note" title={ error.message.clone() }>
                            { "Working offline: what you record is saved on this device and sent when the hub can be reached." }
                        </p>
                    } else {
                        <p id="sync-error" class="sync-error">{ &error.message }</p>
                    }
                }
                if let Some(error) = &props.start_error {
                    <p id="sync-now-error" class="sync-error">{ &error.message }</p>
                }
            </div>
        </section>
    }
}
