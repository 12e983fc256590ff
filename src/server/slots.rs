//! Connection slots: a bound on connections served at once, a bound per
//! client address, and word to every connection when the server is
//! nearly full.
//!
//! SECURITY: with only the global bound, one address could hold every
//! slot, and the health check and every other client would be refused.
//! Each address (an IPv6 client by its /64, which one host usually has to
//! itself) gets at most `per_address` of them. Near the global bound
//! (nine in ten slots taken) every connection is asked to close once its
//! current request is answered, so idle keep-alive connections give their
//! slots back first and no stream in flight is cut.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// The key a client address is limited under: an IPv4 address, an IPv6
/// address's /64 (an IPv4 address mapped into IPv6 is that IPv4 address).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken.
    Full,
    /// Its address holds as many as one address may.
    AddressFull,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::AddressFull => "per_address",
        }
    }
}

#[derive(Default)]
struct Taken {
    total: usize,
    /// Only addresses holding a slot: an entry goes with its last slot.
    by_address: HashMap<IpAddr, usize>,
}

/// The server's slots.
pub struct Slots {
    max: usize,
    per_address: usize,
    taken: Mutex<Taken>,
    /// Whether nine in ten slots are taken (until fewer than eight in ten
    /// are), and how many times that has begun.
    crowded: watch::Sender<Crowding>,
    /// Slots taken, for the drain at shutdown.
    count: watch::Sender<usize>,
}

/// Whether the server is nearly full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Crowding {
    pub now: bool,
    /// Times it became so: a connection that saw another number since it
    /// looked last is asked to close, even if the crowd is gone by the time
    /// it looks (closing idle connections is what ends the crowd).
    pub episode: u64,
}

/// One connection's slot, given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    key: IpAddr,
}

impl Slots {
    pub fn new(max: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            per_address: per_address.max(1),
            taken: Mutex::default(),
            crowded: watch::Sender::new(Crowding::default()),
            count: watch::Sender::new(0),
        })
    }

    /// A slot for a connection from `ip`, if there is one.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let mut t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if t.total >= self.max {
            return Err(Refusal::Full);
        }
        let held = t.by_address.entry(key).or_insert(0);
        if *held >= self.per_address {
            return Err(Refusal::AddressFull);
        }
        *held += 1;
        t.total += 1;
        self.changed(t.total);
        Ok(Slot {
            slots: self.clone(),
            key,
        })
    }

    fn give_back(&self, key: IpAddr) {
        let mut t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = t.by_address.get_mut(&key) {
            *held -= 1;
            if *held == 0 {
                t.by_address.remove(&key);
            }
        }
        t.total = t.total.saturating_sub(1);
        self.changed(t.total);
    }

    /// Called under the lock, so the signals follow the counts in order.
    fn changed(&self, total: usize) {
        let (max, n) = (self.max as u128, total as u128);
        self.crowded.send_if_modified(|c| {
            let now = if c.now {
                n * 10 >= max * 8
            } else {
                n * 10 >= max * 9
            };
            if now == c.now {
                return false;
            }
            c.now = now;
            c.episode += u64::from(now);
            true
        });
        self.count.send_replace(total);
    }

    /// Changes to "nearly full"; each connection watches it.
    pub fn crowded(&self) -> watch::Receiver<Crowding> {
        self.crowded.subscribe()
    }

    /// Resolves once every slot is given back.
    pub async fn drained(&self) {
        let mut count = self.count.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }

    /// Addresses holding a slot now.
    pub fn addresses(&self) -> usize {
        let t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        t.by_address.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_its_ipv4() {
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let slots = Slots::new(10, 3);
        let mine: Vec<Slot> = (0..3)
            .map(|_| slots.take(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(
            slots.take(ip("192.0.2.1")).err(),
            Some(Refusal::AddressFull)
        );
        assert!(
            slots.take(ip("192.0.2.2")).is_ok(),
            "another address still gets in"
        );
        // One /64 is one client; a v4-mapped address is its IPv4 address.
        let v6: Vec<Slot> = (1..=3)
            .map(|n| slots.take(ip(&format!("2001:db8::{n}"))).unwrap())
            .collect();
        assert_eq!(
            slots.take(ip("2001:db8::ffff")).err(),
            Some(Refusal::AddressFull)
        );
        assert!(slots.take(ip("2001:db8:0:1::1")).is_ok());
        assert_eq!(
            slots.take(ip("::ffff:192.0.2.1")).err(),
            Some(Refusal::AddressFull)
        );
        drop(mine);
        assert!(slots.take(ip("192.0.2.1")).is_ok(), "slots come back");
        drop(v6);
    }

    #[test]
    fn the_global_bound_holds_and_addresses_are_forgotten() {
        let slots = Slots::new(4, 4);
        let held: Vec<Slot> = (1..=4)
            .map(|n| slots.take(ip(&format!("192.0.2.{n}"))).unwrap())
            .collect();
        assert_eq!(slots.take(ip("192.0.2.9")).err(), Some(Refusal::Full));
        assert_eq!(slots.addresses(), 4);
        drop(held);
        assert_eq!(slots.addresses(), 0, "no address outlives its slots");
    }

    #[test]
    fn crowding_is_told_near_the_bound_and_cleared_below_it() {
        let slots = Slots::new(10, 10);
        let crowded = slots.crowded();
        let mut held: Vec<Slot> = (0..8)
            .map(|_| slots.take(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(*crowded.borrow(), Crowding::default());
        held.push(slots.take(ip("192.0.2.1")).unwrap());
        assert_eq!(
            *crowded.borrow(),
            Crowding {
                now: true,
                episode: 1
            },
            "nine in ten"
        );
        held.pop();
        assert!(crowded.borrow().now, "still eight in ten");
        held.pop();
        assert_eq!(
            *crowded.borrow(),
            Crowding {
                now: false,
                episode: 1
            },
            "seven in ten"
        );
        held.push(slots.take(ip("192.0.2.1")).unwrap());
        held.push(slots.take(ip("192.0.2.1")).unwrap());
        assert_eq!(crowded.borrow().episode, 2, "a second crowd");
    }
}
