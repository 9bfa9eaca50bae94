//! [`PeerSlots`]: how many connections (streams) each peer has being served,
//! and the limit on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

use crate::sync::lock;

/// Live connections per peer, up to a limit.
#[derive(Debug)]
pub(super) struct PeerSlots {
    max: Option<usize>,
    counts: Mutex<HashMap<PeerId, usize>>,
}

impl PeerSlots {
    /// Slots for at most `max` connections per peer (`None`: no limit).
    pub(super) fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(PeerSlots {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// The limit.
    pub(super) fn max(&self) -> Option<usize> {
        self.max
    }

    /// Connections of `peer` being served now.
    pub(super) fn count(&self, peer: &PeerId) -> usize {
        lock(&self.counts).get(peer).copied().unwrap_or_default()
    }

    /// Counts a connection of `peer`, unless it has reached the limit.
    pub(super) fn enter(self: &Arc<Self>, peer: PeerId) -> Option<PeerSlot> {
        let mut counts = lock(&self.counts);
        let count = counts.entry(peer).or_default();
        if self.max.is_some_and(|max| *count >= max) {
            if *count == 0 {
                counts.remove(&peer);
            }
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            slots: self.clone(),
            peer,
        })
    }
}

/// One live connection of a peer; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct PeerSlot {
    slots: Arc<PeerSlots>,
    peer: PeerId,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.slots.counts);
        if let Some(count) = counts.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_peer_up_to_the_limit_and_freed() {
        let slots = PeerSlots::new(Some(2));
        let (a, b) = (PeerId::random(), PeerId::random());
        let first = slots.enter(a).unwrap();
        let second = slots.enter(a).unwrap();
        assert!(slots.enter(a).is_none());
        let other = slots.enter(b).unwrap();
        assert_eq!((slots.count(&a), slots.count(&b)), (2, 1));
        drop(first);
        assert_eq!(slots.count(&a), 1);
        let again = slots.enter(a).unwrap();
        drop((second, again, other));
        assert_eq!((slots.count(&a), slots.count(&b)), (0, 0));
        assert!(lock(&slots.counts).is_empty(), "no entry left behind");
    }

    #[test]
    fn without_a_limit_any_number_is_served() {
        let slots = PeerSlots::new(None);
        let peer = PeerId::random();
        let held: Vec<_> = (0..100).map(|_| slots.enter(peer).unwrap()).collect();
        assert_eq!(slots.count(&peer), 100);
        drop(held);
        assert_eq!(slots.count(&peer), 0);
    }
}
