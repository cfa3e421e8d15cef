//! What this process learnt lately about credentials it saw, kept a few minutes in memory under
//! an HMAC-SHA256 tag made with a key drawn at random when the process starts and never stored.
//! A tag says nothing of what it was made from, and only the same inputs make it again, so what
//! is kept is found only by whoever presents those inputs (a secret among them) again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

/// How long a thing is remembered.
const REMEMBERED_FOR: Duration = Duration::from_secs(300);

/// The HMAC of what something is remembered under.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tag([u8; 32]);

pub(crate) struct Remembered<V> {
    key: hmac::Key,
    entries: Mutex<HashMap<Tag, (Instant, V)>>,
    /// At most this many are remembered; beyond it, the expired go, or else all.
    capacity: usize,
}

impl<V: Clone> Remembered<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // As elsewhere: nothing safe can be done without the OS RNG.
        #[allow(clippy::expect_used)]
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the OS RNG works");
        Self {
            key,
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The tag of `parts`, each length-prefixed so that no two lists of parts share one.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0; 32];
        tag.copy_from_slice(context.sign().as_ref());
        Tag(tag)
    }

    /// What was remembered under `tag` within the last few minutes.
    pub(crate) fn recall(&self, tag: &Tag) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(tag)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value` under `tag`, for a few minutes from now.
    pub(crate) fn remember(&self, tag: Tag, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= self.capacity {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(tag, (now + REMEMBERED_FOR, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_parts_in_the_same_process_recall_what_was_remembered() {
        let remembered = Remembered::new(10);
        remembered.remember(remembered.tag(&[b"ab", b"c"]), 7);
        assert_eq!(remembered.recall(&remembered.tag(&[b"ab", b"c"])), Some(7));
        assert_eq!(
            remembered.recall(&remembered.tag(&[b"a", b"bc"])),
            None,
            "the same bytes cut elsewhere"
        );
        let other = Remembered::<i32>::new(10);
        assert_eq!(
            other.recall(&other.tag(&[b"ab", b"c"])),
            None,
            "another process"
        );
    }
}
