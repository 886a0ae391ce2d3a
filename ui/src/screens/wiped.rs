//! The device's access was revoked and its local records deleted.

use yew::prelude::*;

#[component]
pub fn Wiped() -> Html {
    html! {
        <main class="gate" id="wiped-screen">
            <div class="gate-card">
                <h1>{ "Access to records on this device has ended" }</h1>
                <p class="lead">
                    { "Your organisation has revoked this device's access to the shared care record, \
                       and the copy of records that was kept on it has been deleted." }
                </p>
                <p>
                    { "If you think this is a mistake, or you need to use this device again, please \
                       contact the service desk." }
                </p>
            </div>
        </main>
    }
}
