//! A fixed-capacity IPv4 -> MAC cache for a small cluster. No allocation, no clock.
//!
//! Entries are *static* (configured; never replaced by learning) or *dynamic* (learned from
//! ARP). When the cache is full a new dynamic entry evicts dynamic entries round-robin; static
//! entries are never evicted. Lookups are a linear scan, which for a handful of peers is faster
//! than hashing. Ageing is the caller's business (e.g. `clear_dynamic` on a timer) since the
//! cache has no notion of time.
//!
//! Only unicast MACs and unicast, specified IPv4 addresses are stored, so a forged ARP packet
//! cannot point a peer at the broadcast address.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    ip: Ipv4Addr,
    mac: MacAddr,
    is_static: bool,
}

/// A fixed-capacity ARP cache holding at most `N` entries.
#[derive(Debug, Clone)]
pub struct ArpCache<const N: usize> {
    entries: [Option<Entry>; N],
    /// Where the next round-robin eviction scan starts.
    next_victim: usize,
}

impl<const N: usize> Default for ArpCache<N> {
    fn default() -> Self {
        ArpCache::new()
    }
}

fn storable(ip: Ipv4Addr, mac: MacAddr) -> bool {
    mac.is_unicast() && !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast()
}

impl<const N: usize> ArpCache<N> {
    /// An empty cache.
    pub const fn new() -> ArpCache<N> {
        ArpCache { entries: [None; N], next_victim: 0 }
    }

    /// Maximum number of entries (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }

    /// The MAC for `ip`, if known.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.entries.iter().flatten().find(|e| e.ip == ip).map(|e| e.mac)
    }

    /// Is the entry for `ip` static?
    pub fn is_static(&self, ip: Ipv4Addr) -> bool {
        self.entries.iter().flatten().any(|e| e.ip == ip && e.is_static)
    }

    /// Learns `ip -> mac` (a dynamic entry). Returns true if stored or refreshed; false if the
    /// pair is not storable (non-unicast MAC, unspecified/broadcast/multicast IP), a static
    /// entry already owns `ip`, or every slot is static.
    pub fn insert(&mut self, ip: Ipv4Addr, mac: MacAddr) -> bool {
        self.store(Entry { ip, mac, is_static: false })
    }

    /// Configures `ip -> mac` as a static entry, replacing any entry for `ip`. Returns false if
    /// the pair is not storable or every slot already holds another static entry.
    #[must_use = "a static entry may not fit"]
    pub fn insert_static(&mut self, ip: Ipv4Addr, mac: MacAddr) -> bool {
        self.store(Entry { ip, mac, is_static: true })
    }

    fn store(&mut self, new: Entry) -> bool {
        if !storable(new.ip, new.mac) {
            return false;
        }
        if let Some(slot) = self.entries.iter_mut().flatten().find(|e| e.ip == new.ip) {
            if slot.is_static && !new.is_static {
                return false;
            }
            *slot = new;
            return true;
        }
        if let Some(slot) = self.entries.iter_mut().find(|e| e.is_none()) {
            *slot = Some(new);
            return true;
        }
        for step in 0..N {
            let i = (self.next_victim + step) % N;
            if matches!(self.entries[i], Some(Entry { is_static: false, .. })) {
                self.entries[i] = Some(new);
                self.next_victim = (i + 1) % N;
                return true;
            }
        }
        false
    }

    /// Removes the entry for `ip` (static or dynamic). Returns whether there was one.
    pub fn remove(&mut self, ip: Ipv4Addr) -> bool {
        for slot in self.entries.iter_mut() {
            if matches!(slot, Some(e) if e.ip == ip) {
                *slot = None;
                return true;
            }
        }
        false
    }

    /// Forgets every dynamic entry, keeping static ones.
    pub fn clear_dynamic(&mut self) {
        for slot in self.entries.iter_mut() {
            if matches!(slot, Some(e) if !e.is_static) {
                *slot = None;
            }
        }
    }

    /// Every entry as `(ip, mac, is_static)`, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, MacAddr, bool)> + '_ {
        self.entries.iter().flatten().map(|e| (e.ip, e.mac, e.is_static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, last])
    }

    #[test]
    fn insert_update_lookup() {
        let mut cache = ArpCache::<4>::new();
        assert!(cache.is_empty());
        assert_eq!(cache.lookup(ip(1)), None);
        assert!(cache.insert(ip(1), mac(1)));
        assert_eq!(cache.lookup(ip(1)), Some(mac(1)));
        assert!(cache.insert(ip(1), mac(9)));
        assert_eq!(cache.lookup(ip(1)), Some(mac(9)));
        assert_eq!(cache.len(), 1);
        assert!(cache.remove(ip(1)));
        assert!(!cache.remove(ip(1)));
        assert!(cache.is_empty());
        assert_eq!(cache.capacity(), 4);
    }

    #[test]
    fn static_entries_win_over_learning() {
        let mut cache = ArpCache::<2>::new();
        assert!(cache.insert(ip(1), mac(1)));
        assert!(cache.insert_static(ip(1), mac(2)));
        assert!(cache.is_static(ip(1)));
        assert!(!cache.insert(ip(1), mac(3)), "learning must not override a static entry");
        assert_eq!(cache.lookup(ip(1)), Some(mac(2)));
        cache.clear_dynamic();
        assert_eq!(cache.lookup(ip(1)), Some(mac(2)));
    }

    #[test]
    fn eviction_is_round_robin_over_dynamic_entries() {
        let mut cache = ArpCache::<3>::new();
        assert!(cache.insert_static(ip(1), mac(1)));
        assert!(cache.insert(ip(2), mac(2)));
        assert!(cache.insert(ip(3), mac(3)));
        assert!(cache.insert(ip(4), mac(4))); // evicts ip(2)
        assert_eq!(cache.lookup(ip(2)), None);
        assert!(cache.insert(ip(5), mac(5))); // evicts ip(3)
        assert_eq!(cache.lookup(ip(3)), None);
        assert_eq!(cache.lookup(ip(1)), Some(mac(1)));
        assert_eq!(cache.lookup(ip(4)), Some(mac(4)));
        assert_eq!(cache.lookup(ip(5)), Some(mac(5)));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn full_of_static_entries_refuses() {
        let mut cache = ArpCache::<2>::new();
        assert!(cache.insert_static(ip(1), mac(1)));
        assert!(cache.insert_static(ip(2), mac(2)));
        assert!(!cache.insert(ip(3), mac(3)));
        assert!(!cache.insert_static(ip(3), mac(3)));
        assert_eq!(cache.iter().count(), 2);
        assert!(cache.iter().all(|(_, _, is_static)| is_static));
    }

    #[test]
    fn rejects_non_unicast_pairs() {
        let mut cache = ArpCache::<4>::default();
        assert!(!cache.insert(ip(1), MacAddr::BROADCAST));
        assert!(!cache.insert(ip(1), MacAddr::ZERO));
        assert!(!cache.insert(ip(1), MacAddr([0x01, 0, 0x5e, 0, 0, 1])));
        assert!(!cache.insert(Ipv4Addr::UNSPECIFIED, mac(1)));
        assert!(!cache.insert(Ipv4Addr::BROADCAST, mac(1)));
        assert!(!cache.insert(Ipv4Addr::new(224, 0, 0, 1), mac(1)));
        assert!(cache.is_empty());
    }

    #[test]
    fn zero_capacity_is_harmless() {
        let mut cache = ArpCache::<0>::new();
        assert!(!cache.insert(ip(1), mac(1)));
        assert_eq!(cache.lookup(ip(1)), None);
    }
}
