//! [`RoutedIo`]: one endpoint over several point-to-point links (e.g. one `net_memif` port
//! per peer: a memif connects exactly two processes), as one [`PacketIo`].
//!
//! - Receive: polls every link in turn (round-robin start, so no link starves), up to the
//!   burst size. The source IPv4 address of each datagram teaches the route back to it
//!   (for clients, whose addresses are not in the cluster file).
//! - Transmit: by destination IPv4 address: a static route (`--route DEV=MEMBER`), else a
//!   learned one, else the default link (the first link without a static route, or link 0).
//!
//! With one link this is a thin pass-through. Bounded: at most [`MAX_LEARNED_ROUTES`]
//! learned routes (the oldest is replaced).

use dataplane::io::{Datagram, Endpoint, PacketIo, TxError};
use std::net::Ipv4Addr;

/// Learned routes kept (clients seen on the links).
pub const MAX_LEARNED_ROUTES: usize = 1024;

pub struct RoutedIo<Io: PacketIo> {
    links: Vec<Io>,
    statics: Vec<(Ipv4Addr, usize)>,
    learned: Vec<(Ipv4Addr, usize)>,
    next_evict: usize,
    default_link: usize,
    next_rx: usize,
}

impl<Io: PacketIo> RoutedIo<Io> {
    /// `links` (at least one) with static routes `(destination, link index)`.
    ///
    /// # Panics
    /// If `links` is empty or a route names a link that does not exist.
    pub fn new(links: Vec<Io>, statics: Vec<(Ipv4Addr, usize)>) -> RoutedIo<Io> {
        assert!(!links.is_empty(), "RoutedIo: no links");
        assert!(statics.iter().all(|(_, l)| *l < links.len()), "RoutedIo: route to no link");
        let default_link =
            (0..links.len()).find(|l| statics.iter().all(|(_, s)| s != l)).unwrap_or(0);
        RoutedIo { links, statics, learned: Vec::new(), next_evict: 0, default_link, next_rx: 0 }
    }

    pub fn links(&self) -> &[Io] {
        &self.links
    }

    /// The link datagrams to `ip` leave on.
    pub fn link_for(&self, ip: Ipv4Addr) -> usize {
        if self.links.len() == 1 {
            return 0;
        }
        self.statics
            .iter()
            .chain(self.learned.iter())
            .find(|(d, _)| *d == ip)
            .map_or(self.default_link, |(_, l)| *l)
    }

    fn learn(&mut self, ip: Ipv4Addr, link: usize) {
        if self.statics.iter().any(|(d, _)| *d == ip) {
            return;
        }
        if let Some(e) = self.learned.iter_mut().find(|(d, _)| *d == ip) {
            e.1 = link;
        } else if self.learned.len() < MAX_LEARNED_ROUTES {
            self.learned.push((ip, link));
        } else {
            self.learned[self.next_evict] = (ip, link);
            self.next_evict = (self.next_evict + 1) % MAX_LEARNED_ROUTES;
        }
    }
}

impl<Io: PacketIo> PacketIo for RoutedIo<Io> {
    type Buf = Io::Buf;
    type Builder = Io::Builder;

    fn value_builder(&mut self) -> Io::Builder {
        self.links[0].value_builder()
    }

    fn recv_burst(&mut self, out: &mut Vec<Datagram<Io::Buf>>, max: usize) -> usize {
        let n_links = self.links.len();
        if n_links == 1 {
            return self.links[0].recv_burst(out, max);
        }
        let mut got = 0;
        let start = self.next_rx;
        self.next_rx = (self.next_rx + 1) % n_links;
        for k in 0..n_links {
            if got >= max {
                break;
            }
            let l = (start + k) % n_links;
            let before = out.len();
            got += self.links[l].recv_burst(out, max - got);
            for dg in &out[before..] {
                let ip = dg.src.ip;
                if self.link_for(ip) != l {
                    self.learn(ip, l);
                }
            }
        }
        got
    }

    fn send_with<F: FnOnce(&mut [u8])>(
        &mut self,
        to: &Endpoint,
        len: usize,
        fill: F,
    ) -> Result<(), TxError> {
        let l = self.link_for(to.ip);
        self.links[l].send_with(to, len, fill)
    }

    fn flush(&mut self) {
        for l in &mut self.links {
            l.flush();
        }
    }

    fn local(&self) -> Endpoint {
        self.links[0].local()
    }

    fn max_payload(&self) -> usize {
        self.links.iter().map(PacketIo::max_payload).min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::counters::Counters;
    use dataplane::memio::MemNetwork;
    use std::sync::Arc;

    #[test]
    fn routes_by_destination_and_learns_sources() {
        // Two "links" of node A (two networks), peers B (static route) and C (learned).
        let (n1, n2) = (MemNetwork::new(), MemNetwork::new());
        let c = || Arc::new(Counters::default());
        let a1 = n1.attach(Endpoint::udp(Ipv4Addr::new(10, 0, 0, 1), 7000), c());
        let a2 = n2.attach(Endpoint::udp(Ipv4Addr::new(10, 0, 0, 1), 7000), c());
        let mut b = n1.attach(Endpoint::udp(Ipv4Addr::new(10, 0, 0, 2), 7000), c());
        let mut cc = n2.attach(Endpoint::udp(Ipv4Addr::new(10, 0, 0, 3), 9000), c());
        let mut a = RoutedIo::new(vec![a1, a2], vec![(Ipv4Addr::new(10, 0, 0, 2), 0)]);
        assert_eq!(a.link_for(Ipv4Addr::new(10, 0, 0, 9)), 1, "default: the unrouted link");
        a.send_with(&b.local(), 2, |buf| buf.copy_from_slice(b"hi")).unwrap();
        a.flush();
        let mut got = Vec::new();
        assert_eq!(b.recv_burst(&mut got, 8), 1);
        // C talks first over link 1; A answers it there.
        let dst = a.local();
        cc.send_with(&dst, 1, |buf| buf[0] = 1).unwrap();
        cc.flush();
        got.clear();
        assert_eq!(a.recv_burst(&mut got, 8), 1);
        assert_eq!(a.link_for(Ipv4Addr::new(10, 0, 0, 3)), 1);
        a.send_with(&got[0].src, 1, |buf| buf[0] = 2).unwrap();
        a.flush();
        got.clear();
        assert_eq!(cc.recv_burst(&mut got, 8), 1);
    }
}
