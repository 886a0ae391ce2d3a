//! The one way the UI talks to the shell: Tauri's `invoke`.
//!
//! Arguments are the `*Args` structs of [`careshare_view::api`], sent as
//! plain JSON-compatible objects; results are read back as the contract's
//! types. Every failure comes back as an [`AppError`] (`{code, message}`).

use careshare_view::api::AppError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], catch)]
    async fn invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

/// Calls `cmd` with `args` (one of the contract's `*Args` structs).
pub async fn call<A, R>(cmd: &str, args: &A) -> Result<R, AppError>
where
    A: Serialize + ?Sized,
    R: DeserializeOwned,
{
    // Plain objects, not JS `Map`s: the shell parses the arguments as JSON.
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let args = args
        .serialize(&serializer)
        .map_err(|e| AppError::new("invalid-input", format!("could not send the request: {e}")))?;
    reply(invoke(cmd, args).await)
}

/// Calls a command that takes no arguments.
pub async fn call0<R: DeserializeOwned>(cmd: &str) -> Result<R, AppError> {
    reply(invoke(cmd, js_sys::Object::new().into()).await)
}

fn reply<R: DeserializeOwned>(result: Result<JsValue, JsValue>) -> Result<R, AppError> {
    let value = result.map_err(to_error)?;
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        AppError::new(
            "bad-reply",
            format!("The app gave an answer this screen cannot read ({e})."),
        )
    })
}

/// Reads a rejected `invoke` as an [`AppError`]: the shell's `{code, message}`,
/// or, for anything else (no shell, a JavaScript error), a generic one.
fn to_error(value: JsValue) -> AppError {
    if let Ok(error) = serde_wasm_bindgen::from_value::<AppError>(value.clone()) {
        return error;
    }
    if let Some(text) = value.as_string() {
        return AppError::new("error", text);
    }
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return AppError::new(
            "no-shell",
            format!(
                "The desktop app is not answering ({}).",
                String::from(error.message())
            ),
        );
    }
    AppError::new("error", "Something went wrong.")
}
