//! Subscribers by organization: one broadcast channel per org with subscribers, and
//! where that org's live broadcast stands. A subscription unregisters itself when
//! dropped; the org's channel goes with its last subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::domain::ids::OrgId;
use crate::domain::violation::Violation;

/// Messages a lagging subscriber may fall behind by before it re-reads from the table.
pub const CHANNEL_CAPACITY: usize = 1024;

struct Entry {
    tx: broadcast::Sender<Arc<Violation>>,
    subscribers: usize,
    /// Sequence number of the last violation broadcast (`None` until the fetcher
    /// learns where the feed stands).
    last_broadcast: Option<i64>,
}

/// Every live subscription of this instance.
pub struct Registry {
    orgs: Mutex<HashMap<OrgId, Entry>>,
    /// Messages each org's channel holds for its slowest subscriber.
    capacity: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_capacity(CHANNEL_CAPACITY)
    }
}

/// A live subscription to one org's violations; unregisters on drop.
pub struct Subscription {
    pub rx: broadcast::Receiver<Arc<Violation>>,
    registry: Arc<Registry>,
    org: OrgId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        metrics::gauge!("violation_feed_subscribers").decrement(1.0);
        let mut orgs = self.registry.lock();
        if let Some(entry) = orgs.get_mut(&self.org) {
            entry.subscribers -= 1;
            if entry.subscribers == 0 {
                orgs.remove(&self.org);
            }
        }
    }
}

impl Registry {
    /// A registry whose org channels hold `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { orgs: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<OrgId, Entry>> {
        // A panic while holding this lock leaves plain counters behind: keep going.
        self.orgs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes to `org`'s live violations.
    pub fn subscribe(self: &Arc<Self>, org: OrgId) -> Subscription {
        let mut orgs = self.lock();
        let entry = orgs.entry(org).or_insert_with(|| Entry {
            tx: broadcast::channel(self.capacity).0,
            subscribers: 0,
            last_broadcast: None,
        });
        entry.subscribers += 1;
        metrics::gauge!("violation_feed_subscribers").increment(1.0);
        Subscription { rx: entry.tx.subscribe(), registry: Arc::clone(self), org }
    }

    /// Orgs with subscribers, and the last sequence number broadcast to each.
    pub fn orgs(&self) -> Vec<(OrgId, Option<i64>)> {
        self.lock().iter().map(|(org, e)| (*org, e.last_broadcast)).collect()
    }

    /// Records where `org`'s broadcast starts, unless it has started: the head of the
    /// feed as its first subscriber read it.
    pub fn start_at(&self, org: OrgId, seq: i64) {
        if let Some(e) = self.lock().get_mut(&org)
            && e.last_broadcast.is_none()
        {
            e.last_broadcast = Some(seq);
        }
    }

    /// Sends `violations` (the next ones of `org`'s feed, in order) to its subscribers.
    pub fn publish(&self, org: OrgId, violations: Vec<Violation>) {
        let mut orgs = self.lock();
        let Some(entry) = orgs.get_mut(&org) else { return };
        for v in violations {
            if entry.last_broadcast.is_some_and(|last| v.seq <= last) {
                continue;
            }
            entry.last_broadcast = Some(v.seq);
            let lag = (chrono::Utc::now() - v.recorded_at).to_std().unwrap_or_default();
            metrics::histogram!("violation_feed_publish_lag_seconds").record(lag.as_secs_f64());
            // No receiver is not an error: they come and go.
            let _ = entry.tx.send(Arc::new(v));
        }
    }

    /// Live subscriptions of this instance.
    pub fn subscribers(&self) -> usize {
        self.lock().values().map(|e| e.subscribers).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::violation::{NewViolation, ViolationDetail, ViolationKind};

    fn violation(seq: i64) -> Violation {
        Violation {
            seq,
            recorded_at: chrono::DateTime::UNIX_EPOCH,
            violation: NewViolation::new(
                uuid::Uuid::now_v7(),
                ViolationKind::LimitBlock,
                None,
                chrono::DateTime::UNIX_EPOCH,
                ViolationDetail::default(),
            ),
        }
    }

    #[test]
    fn subscribers_of_an_org_receive_its_violations_in_order() {
        let r = Arc::new(Registry::default());
        let org = OrgId::generate();
        let mut a = r.subscribe(org);
        let mut b = r.subscribe(org);
        r.start_at(org, 0);
        r.publish(org, vec![violation(1), violation(2)]);
        for sub in [&mut a, &mut b] {
            assert_eq!(sub.rx.try_recv().unwrap().seq, 1);
            assert_eq!(sub.rx.try_recv().unwrap().seq, 2);
        }
    }

    #[test]
    fn other_orgs_receive_nothing() {
        let r = Arc::new(Registry::default());
        let (mine, theirs) = (OrgId::generate(), OrgId::generate());
        let mut sub = r.subscribe(mine);
        let _other = r.subscribe(theirs);
        r.publish(theirs, vec![violation(1)]);
        assert!(sub.rx.try_recv().is_err());
    }

    #[test]
    fn dropping_the_last_subscription_forgets_the_org() {
        let r = Arc::new(Registry::default());
        let org = OrgId::generate();
        let a = r.subscribe(org);
        let b = r.subscribe(org);
        assert_eq!((r.subscribers(), r.orgs().len()), (2, 1));
        drop(a);
        assert_eq!(r.subscribers(), 1);
        drop(b);
        assert_eq!((r.subscribers(), r.orgs().len()), (0, 0));
    }

    #[test]
    fn republishing_what_was_broadcast_is_ignored() {
        let r = Arc::new(Registry::default());
        let org = OrgId::generate();
        let mut sub = r.subscribe(org);
        r.start_at(org, 5);
        r.publish(org, vec![violation(4), violation(5), violation(6)]);
        assert_eq!(sub.rx.try_recv().unwrap().seq, 6);
        assert!(sub.rx.try_recv().is_err());
        assert_eq!(r.orgs(), vec![(org, Some(6))]);
    }

    #[test]
    fn a_slow_receiver_lags_instead_of_blocking_the_sender() {
        let r = Arc::new(Registry::default());
        let org = OrgId::generate();
        let mut slow = r.subscribe(org);
        r.start_at(org, 0);
        r.publish(org, (1..=(CHANNEL_CAPACITY as i64 + 10)).map(violation).collect());
        assert!(matches!(slow.rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
    }
}
