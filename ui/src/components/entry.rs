//! One line of a patient's record, with who wrote it and whether it is
//! still waiting to be sent.

use careshare_view::api::{Entry, Source};
use yew::prelude::*;

use crate::clock::Clock;

#[derive(Properties, PartialEq)]
pub struct SourceProps {
    pub source: Source,
}

/// The authoring organisation, as a small label (the user's own
/// organisation styled apart).
#[component]
pub fn SourceLabel(props: &SourceProps) -> Html {
    let class = classes!("source-label", props.source.own.then_some("source-own"));
    let title = if props.source.own {
        "Written by your organisation"
    } else {
        "Written by another organisation"
    };
    html! {
        <span {class} title={title}>{ &props.source.organisation }</span>
    }
}

/// "Pending": saved on this device, not yet accepted by the hub.
#[component]
pub fn PendingBadge() -> Html {
    html! {
        <span class="pending-badge" title="Saved on this device, waiting to be sent">
            { "Pending" }
        </span>
    }
}

#[derive(Properties, PartialEq)]
pub struct EntryProps {
    pub entry: Entry,
    pub clock: Clock,
    /// Extra classes for the item (e.g. `alert-item`).
    #[prop_or_default]
    pub class: Classes,
    /// Shown under the line (e.g. a document's text).
    #[prop_or_default]
    pub children: Html,
}

/// One entry as a list item: title, detail, date and status, source, pending.
#[component]
pub fn EntryItem(props: &EntryProps) -> Html {
    let e = &props.entry;
    let class = classes!(
        "entry",
        props.class.clone(),
        e.pending.then_some("is-pending")
    );
    let mut meta: Vec<String> = Vec::new();
    if let Some(date) = &e.date {
        meta.push(props.clock.fhir(date));
    }
    if let Some(status) = &e.status {
        meta.push(status.clone());
    }
    html! {
        <li {class} data-reference={e.reference.clone()}>
            <div class="entry-line">
                <span class="entry-title">{ &e.title }</span>
                if e.pending { <PendingBadge /> }
                <SourceLabel source={e.source.clone()} />
            </div>
            if !e.detail.is_empty() {
                <div class="entry-detail">{ &e.detail }</div>
            }
            if !meta.is_empty() {
                <div class="entry-meta">{ meta.join(" · ") }</div>
            }
            { props.children.clone() }
        </li>
    }
}
