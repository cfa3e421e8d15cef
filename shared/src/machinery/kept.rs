//! A value read from the store, kept a few seconds in memory: what every request of a public
//! page reads (the portal's branding) costs a store read at most that often per process.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Kept<V> {
    value: Mutex<Option<(Instant, V)>>,
    /// How long a value kept stays fresh.
    fresh_for: Duration,
}

impl<V: Clone> Kept<V> {
    pub(crate) fn new(fresh_for: Duration) -> Self {
        Self {
            value: Mutex::new(None),
            fresh_for,
        }
    }

    /// The value kept, if it was kept within the last `fresh_for`.
    pub(crate) fn fresh(&self) -> Option<V> {
        let value = self.value.lock().ok()?;
        (value.as_ref())
            .filter(|(at, _)| at.elapsed() < self.fresh_for)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` (read now, or just written by this process).
    pub(crate) fn keep(&self, value: V) {
        if let Ok(mut kept) = self.value.lock() {
            *kept = Some((Instant::now(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_fresh_for_its_time_then_read_again() {
        let kept = Kept::new(Duration::from_millis(50));
        assert_eq!(kept.fresh(), None::<u8>);
        kept.keep(1);
        assert_eq!(kept.fresh(), Some(1));
        kept.keep(2);
        assert_eq!(kept.fresh(), Some(2), "the newest kept");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(kept.fresh(), None);
    }
}
