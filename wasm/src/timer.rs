//! A one-shot `setTimeout` that is cancelled when dropped.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// A pending timeout; dropping it clears it.
pub struct Timer {
    handle: i32,
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `ms` milliseconds; `None` without a window.
    pub fn after(ms: f64, f: impl FnOnce() + 'static) -> Option<Timer> {
        let window = web_sys::window()?;
        let mut f = Some(f);
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = f.take() {
                f();
            }
        });
        let handle = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                callback.as_ref().unchecked_ref(),
                ms.clamp(0.0, 2_000_000_000.0) as i32,
            )
            .ok()?;
        Some(Timer {
            handle,
            _callback: callback,
        })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(w) = web_sys::window() {
            w.clear_timeout_with_handle(self.handle);
        }
    }
}
