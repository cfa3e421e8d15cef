//! Uses of each API token per minute, counted in memory (see [`EmbeddedStore`]'s `uses`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::ports::RateStore;

/// Counts of the current and past windows; those of past windows go at the next count.
#[derive(Default)]
pub(super) struct Uses(Mutex<HashMap<(ClientId, i64), u32>>);

#[async_trait]
impl RateStore for EmbeddedStore {
    async fn reserve_uses(
        &self,
        client_id: &ClientId,
        window: i64,
        want: u32,
        limit: u32,
    ) -> Result<u32> {
        let mut counts = self
            .uses
            .0
            .lock()
            .map_err(|_| Error::internal("rate counts lock"))?;
        counts.retain(|(_, w), _| *w >= window);
        let used = counts.entry((*client_id, window)).or_insert(0);
        let room = limit.saturating_sub(*used);
        let added = if want <= room { want } else { room.min(1) };
        *used += added;
        Ok(added)
    }
}
