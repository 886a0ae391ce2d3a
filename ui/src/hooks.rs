//! Hooks with side effects used by screens.

use std::cell::Cell;
use std::rc::Rc;

use careshare_view::api::{self as cmd, PassphraseArgs, PassphraseStrength};
use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::api::call;

/// The strength of a proposed passphrase, as last answered by the shell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Strength {
    /// The last answer (kept while a newer one is on its way).
    pub value: Option<PassphraseStrength>,
    /// Whether `value` is about the passphrase as it stands now.
    pub current: bool,
    /// Why the shell could not say.
    pub error: Option<String>,
}

/// The strength of a proposed passphrase, asked of the shell ~250 ms after
/// the typing stops.
#[hook]
pub fn use_passphrase_strength(passphrase: String) -> Strength {
    // The answer, with a hash of the passphrase it is about (not the
    // passphrase itself: no copy of it is kept).
    let answer = use_state(|| None::<(u64, Result<PassphraseStrength, String>)>);
    let fingerprint = fingerprint(&passphrase);
    // Each new passphrase is a new generation; older answers are ignored.
    let generation = use_mut_ref(|| Rc::new(Cell::new(0u32)));
    let generation = generation.borrow().clone();
    let empty = passphrase.is_empty();
    {
        // The effect's dependency is the fingerprint: only this render's
        // closure holds the passphrase.
        let answer = answer.clone();
        use_effect_with(fingerprint, move |_| {
            let this = generation.get().wrapping_add(1);
            generation.set(this);
            let timeout = if empty {
                answer.set(None);
                None
            } else {
                Some(Timeout::new(250, move || {
                    wasm_bindgen_futures::spawn_local(async move {
                        let args = PassphraseArgs { passphrase };
                        let result =
                            call::<_, PassphraseStrength>(cmd::PASSPHRASE_STRENGTH, &args).await;
                        if generation.get() == this {
                            answer.set(Some((fingerprint, result.map_err(|e| e.message))));
                        }
                    });
                }))
            };
            move || drop(timeout)
        });
    }
    if empty {
        return Strength::default();
    }
    match &*answer {
        Some((at, Ok(value))) => Strength {
            value: Some(value.clone()),
            current: *at == fingerprint,
            error: None,
        },
        Some((at, Err(e))) => Strength {
            value: None,
            current: *at == fingerprint,
            error: Some(e.clone()),
        },
        None => Strength::default(),
    }
}

fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
