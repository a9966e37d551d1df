//! Groups concurrent single-event `RecordUsage` calls of one organization into shared
//! transactions. Each org has a queue and a worker: while its transactions are busy,
//! calls wait in the queue, and the next transaction takes all of them (up to a limit).
//! A lone call therefore runs at once, and under load one commit serves many calls. A
//! transaction that would start with fewer calls than the org's last one took waits a
//! moment (`wait`, 1 ms by default) for the rest: the callers just answered are on their
//! way back.
//!
//! Answers stay exactly those of separate calls: `record_usage` already decides a batch
//! event by event, in order, with repeats of an event id answered as replays. When a
//! shared transaction fails for a reason of its data, every event is run again on its
//! own so one bad event cannot fail the others; when it fails for a reason of the
//! database (down, timed out, conflicting), every event gets that error.
//!
//! An org's queue is bounded: past `max_queued` waiting calls, a call is refused at once
//! with RESOURCE_EXHAUSTED (and a retry delay) instead of waiting behind work the
//! database cannot finish in time, so latency stays bounded past capacity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::usage::{EventInput, EventResult};
use super::{App, AppError};
use crate::db::DbError;
use crate::domain::ids::OrgId;

/// How calls are grouped.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    /// Most events one shared transaction takes.
    pub max_group: usize,
    /// Most shared transactions of one org running at once.
    pub max_in_flight: usize,
    /// Most calls of one org waiting for a transaction; past it calls are refused.
    pub max_queued: usize,
    /// An org's worker stops after this long without calls.
    pub idle: Duration,
    /// Longest a transaction waits for as many calls as the org's last one took (see
    /// [`waits_for`]); zero never waits.
    pub wait: Duration,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            max_group: 256,
            max_in_flight: 1,
            max_queued: 1024,
            idle: Duration::from_secs(30),
            wait: Duration::from_millis(1),
        }
    }
}

/// How many calls a transaction waits for (up to the configured wait) when it starts with
/// `have`: as many as the org's last transaction took. The callers a transaction answered
/// send their next calls a moment after it commits; without the wait, a closed loop of N
/// callers alternates between a transaction of the first to arrive and one of the other
/// N - 1. A lone caller (last transaction of one) never waits.
pub fn waits_for(have: usize, last: usize, max_group: usize) -> usize {
    last.min(max_group).saturating_sub(have)
}

/// What a refused caller is told to wait before retrying: about one shared transaction.
const RETRY_AFTER: Duration = Duration::from_millis(50);

struct Pending {
    input: EventInput,
    reply: oneshot::Sender<EventResult>,
    queued: Instant,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct UsageBatcher {
    inner: Arc<Inner>,
}

struct Inner {
    app: App,
    config: BatcherConfig,
    queues: Mutex<HashMap<OrgId, mpsc::Sender<Pending>>>,
}

impl UsageBatcher {
    pub fn new(app: App, config: BatcherConfig) -> Self {
        let config = BatcherConfig {
            max_group: config.max_group.max(1),
            max_in_flight: config.max_in_flight.max(1),
            max_queued: config.max_queued.max(1),
            ..config
        };
        Self { inner: Arc::new(Inner { app, config, queues: Mutex::new(HashMap::new()) }) }
    }

    /// Records one event, in a transaction shared with whatever else `org` records now;
    /// RESOURCE_EXHAUSTED when `org`'s queue is full.
    pub async fn record(&self, org: OrgId, input: EventInput) -> EventResult {
        let (reply, answer) = oneshot::channel();
        if !self.inner.enqueue(org, Pending { input, reply, queued: Instant::now() }) {
            return Err(AppError::Overloaded {
                reason: "USAGE_QUEUE_FULL",
                message: format!(
                    "too many usage events of this organization are waiting (at most {}); retry shortly",
                    self.inner.config.max_queued
                ),
                retry_after: RETRY_AFTER,
            });
        }
        answer.await.unwrap_or_else(|_| Err(DbError::Other("usage worker stopped".into()).into()))
    }

    /// How many calls of `org` wait for a transaction now.
    pub fn queued(&self, org: OrgId) -> usize {
        self.inner.lock().get(&org).map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OrgId, mpsc::Sender<Pending>>> {
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends under the map's lock, so a worker that retires (also under it) can never
    /// leave a call behind in its queue. False when the queue is full.
    fn enqueue(self: &Arc<Self>, org: OrgId, pending: Pending) -> bool {
        let mut queues = self.lock();
        let tx = queues.entry(org).or_insert_with(|| self.spawn_worker(org));
        match tx.try_send(pending) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
            Err(mpsc::error::TrySendError::Closed(pending)) => {
                // The worker is gone (its task panicked): start a fresh one.
                let tx = self.spawn_worker(org);
                let sent = tx.try_send(pending).is_ok();
                queues.insert(org, tx);
                sent
            }
        }
    }

    /// Starts `org`'s worker and returns its queue.
    fn spawn_worker(self: &Arc<Self>, org: OrgId) -> mpsc::Sender<Pending> {
        let (tx, rx) = mpsc::channel(self.config.max_queued);
        tokio::spawn(Arc::clone(self).work(org, rx));
        tx
    }

    async fn work(self: Arc<Self>, org: OrgId, mut rx: mpsc::Receiver<Pending>) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight));
        // How many calls the last transaction took.
        let mut last = 1;
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            let first = match tokio::time::timeout(self.config.idle, rx.recv()).await {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(_) => {
                    let mut queues = self.lock();
                    if rx.is_empty() {
                        queues.remove(&org);
                        return;
                    }
                    continue;
                }
            };
            let mut group = vec![first];
            take_waiting(&mut rx, &mut group, self.config.max_group);
            let until = tokio::time::Instant::now() + self.config.wait;
            while waits_for(group.len(), last, self.config.max_group) > 0 {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(p)) => {
                        group.push(p);
                        take_waiting(&mut rx, &mut group, self.config.max_group);
                    }
                    // Waited the whole `wait` (at once when it is zero), or the queue closed.
                    Ok(None) | Err(_) => break,
                }
            }
            last = group.len();
            let app = self.app.clone();
            tokio::spawn(async move {
                run_group(&app, org, group).await;
                drop(slot);
            });
        }
    }
}

/// Moves the calls already waiting into `group`, up to `max_group`.
fn take_waiting(rx: &mut mpsc::Receiver<Pending>, group: &mut Vec<Pending>, max_group: usize) {
    while group.len() < max_group {
        match rx.try_recv() {
            Ok(p) => group.push(p),
            Err(_) => break,
        }
    }
}

async fn run_group(app: &App, org: OrgId, group: Vec<Pending>) {
    let queue = metrics::histogram!("usage_queue_seconds");
    let (inputs, replies): (Vec<EventInput>, Vec<oneshot::Sender<EventResult>>) = group
        .into_iter()
        .map(|p| {
            queue.record(p.queued.elapsed().as_secs_f64());
            (p.input, p.reply)
        })
        .unzip();
    let inputs: Arc<[EventInput]> = inputs.into();
    match app.record_usage(org, Arc::clone(&inputs)).await {
        Ok(results) => answer(replies, results),
        Err(e) if inputs.len() == 1 => answer(replies, vec![Err(e)]),
        Err(AppError::Db(e)) if e.is_transient() => {
            answer(replies, inputs.iter().map(|_| Err(AppError::Db(e.clone()))).collect())
        }
        Err(e) => {
            tracing::warn!(error = %e, events = inputs.len(), "shared usage transaction failed; recording its events one by one");
            answer(replies, app.record_each(org, &inputs).await);
        }
    }
}

fn answer(replies: Vec<oneshot::Sender<EventResult>>, results: Vec<EventResult>) {
    for (reply, result) in replies.into_iter().zip(results) {
        // The caller may have gone (deadline, cancel): what was recorded stays recorded.
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::waits_for;

    #[test]
    fn a_transaction_waits_for_as_many_calls_as_the_last_one_took_within_the_group_bound() {
        assert_eq!(waits_for(1, 1, 256), 0, "a lone caller never waits");
        assert_eq!(waits_for(1, 4, 256), 3, "the other callers of the last transaction");
        assert_eq!(waits_for(4, 4, 256), 0, "all of them are here");
        assert_eq!(waits_for(5, 4, 256), 0, "more than last time");
        assert_eq!(waits_for(1, 300, 256), 255, "never past the group bound");
    }
}
