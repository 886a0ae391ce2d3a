//! The Careshare desktop UI (skeleton; screens come next).
use yew::prelude::*;

#[function_component]
fn App() -> Html {
    html! { <main><h1>{ "Careshare" }</h1></main> }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
