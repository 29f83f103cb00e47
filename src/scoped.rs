//! Thread-local settings that hold for the length of a closure (tests and benches force a
//! kernel path this way), restored when it returns and when it panics, so that a failed
//! assertion inside one cannot leak its setting into what runs next on the thread.

use std::cell::Cell;
use std::thread::LocalKey;

/// Runs `f` with `key` set to `value`, then puts the previous value back (also on unwind).
pub(crate) fn with_cell<V: Copy + 'static, T>(
    key: &'static LocalKey<Cell<V>>,
    value: V,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore<V: Copy + 'static> {
        key: &'static LocalKey<Cell<V>>,
        previous: V,
    }
    impl<V: Copy + 'static> Drop for Restore<V> {
        fn drop(&mut self) {
            self.key.with(|c| c.set(self.previous));
        }
    }
    let _restore = Restore {
        key,
        previous: key.with(|c| c.replace(value)),
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::with_cell;
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    thread_local! {
        static SETTING: Cell<u32> = const { Cell::new(1) };
    }

    #[test]
    fn the_setting_holds_inside_and_is_restored_after_a_panic() {
        let seen = with_cell(&SETTING, 2, || with_cell(&SETTING, 3, || SETTING.get()));
        assert_eq!((seen, SETTING.get()), (3, 1));
        let failed = catch_unwind(AssertUnwindSafe(|| {
            with_cell(&SETTING, 4, || panic!("an assertion failed"))
        }));
        assert!(failed.is_err());
        assert_eq!(SETTING.get(), 1, "restored on unwind");
    }
}
