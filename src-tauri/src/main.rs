//! The Careshare desktop app (skeleton; commands come next).
fn main() {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .expect("the Careshare window could not start");
}
