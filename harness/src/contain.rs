//! Panics of dependencies on bad input, contained as errors. wit-parser, wit-component and
//! wasm-smith assert on some malformed input instead of returning an error (their bugs, to
//! report upstream); a loader of user files must still end with an error that names the file,
//! never a panic. (`witness fuzz-report` uses it too, for a fuzz target that signals a finding
//! by panicking.) `contain` catches the unwinding and keeps the panic hook quiet for it: the
//! hook stays installed for every other panic, on every thread (libFuzzer's hook, which aborts,
//! included), so a panic of witness itself is still reported.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use anyhow::{Result, bail};

thread_local! {
    /// Whether this thread is inside `contain`.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Put a hook in front of the installed one that stays quiet while this thread is inside
/// `contain` (the panic becomes its error).
fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.get() {
                installed(info)
            }
        }));
    });
}

/// Run `f` (a dependency's code); a panic in it becomes an error saying that `what` panicked,
/// with the panic's message.
pub fn contain<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_quiet_hook();
    let outer = CONTAINING.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.set(outer);
    match result {
        Ok(r) => r,
        Err(payload) => bail!("{what} panicked: {}", panic_message(payload.as_ref()).unwrap_or_default()),
    }
}

/// The message of a panic (`panic!` with a literal or with a format), if it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let e = contain::<()>("dep", || panic!("duplicate interface")).unwrap_err();
        assert_eq!(format!("{e}"), "dep panicked: duplicate interface");
    }

    #[test]
    fn results_and_errors_pass_through() {
        assert_eq!(contain("dep", || Ok(7)).unwrap(), 7);
        assert_eq!(format!("{}", contain::<()>("dep", || anyhow::bail!("bad input")).unwrap_err()), "bad input");
    }

    #[test]
    fn panics_outside_stay_panics() {
        let _ = contain("dep", || Ok(()));
        assert!(std::panic::catch_unwind(|| panic!("ours")).is_err());
    }
}
