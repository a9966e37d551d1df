//! One WatchViolations stream: it subscribes to live violations first, then reads what
//! is stored after its start position, then forwards live ones, skipping what it has
//! already sent. Whenever the live channel shows a gap or lagged, it reads the missing
//! violations from the table: the table is the truth, so nothing is ever dropped.
//! Whatever ends a stream (shutdown, pruning, a database error, its key revoked) is
//! told to the reader through its own channel, which a full buffer cannot block.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::FeedStats;
use super::registry::Subscription;
use crate::app::{App, Revocation};
use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::violation::{Violation, ViolationFilter};

/// Most violations read from the table per query.
const PAGE: i64 = 500;

/// Why a stream ended early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The server is shutting down: resume from the last cursor elsewhere.
    Shutdown,
    /// The violations after the reader's position were pruned while it lagged.
    NotRetained,
    /// The database could not be read.
    Unavailable(String),
    /// The key the stream was opened with was revoked.
    KeyRevoked,
    /// The key the stream was opened with reached its expiry.
    KeyExpired,
    /// The stream's task ended without saying why (it panicked): a bug, not the
    /// database; the reader resumes from its last cursor.
    Interrupted,
}

/// The state of one stream's task.
pub struct Subscriber {
    pub app: App,
    pub org: OrgId,
    /// The key the stream was opened with.
    pub key: ApiKeyId,
    /// When that key expires.
    pub expiry: Option<Instant>,
    pub filter: ViolationFilter,
    pub subscription: Subscription,
    /// Revocations of keys; `None` once the cache is gone.
    pub revocations: Option<broadcast::Receiver<Revocation>>,
    /// The org sequence number this stream has accounted for (sent, or filtered out).
    pub seen: i64,
    pub tx: mpsc::Sender<Violation>,
    /// Where the reason the stream ended goes; taken when sent.
    pub end: Option<oneshot::Sender<StreamEnd>>,
    pub stop: CancellationToken,
    pub stats: Arc<FeedStats>,
}

enum Flow {
    Continue,
    End,
}

/// What stopped a send from waiting for room.
enum Interrupt {
    Shutdown,
    Expired,
    Revocation(Result<Revocation, broadcast::error::RecvError>),
}

impl Subscriber {
    /// Runs until the client goes away, the server stops, or the stream fails.
    pub async fn run(mut self) {
        if let Flow::End = self.catch_up().await {
            return;
        }
        loop {
            let received = tokio::select! {
                _ = self.stop.cancelled() => {
                    self.end(StreamEnd::Shutdown);
                    return;
                }
                _ = self.tx.closed() => return,
                _ = until(self.expiry) => {
                    self.end(StreamEnd::KeyExpired);
                    return;
                }
                revocation = next_revocation(&mut self.revocations) => {
                    if let Flow::End = self.on_revocation(revocation).await {
                        return;
                    }
                    continue;
                }
                received = self.subscription.rx.recv() => received,
            };
            let flow = match received {
                Ok(v) => self.on_live(v).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.stats.lagged.fetch_add(1, Ordering::Relaxed);
                    self.catch_up().await
                }
                Err(broadcast::error::RecvError::Closed) => self.end(StreamEnd::Shutdown),
            };
            if let Flow::End = flow {
                return;
            }
        }
    }

    /// Ends the stream if its key was revoked; asks the database when revocations may
    /// have been missed (a database error then leaves the stream open: the next
    /// revocation or doubt asks again).
    async fn on_revocation(&mut self, revocation: Result<Revocation, broadcast::error::RecvError>) -> Flow {
        let unsure = match revocation {
            Ok(Revocation::Key(id)) if id == self.key => return self.end(StreamEnd::KeyRevoked),
            Ok(Revocation::Key(_)) => false,
            Ok(Revocation::Unsure) | Err(broadcast::error::RecvError::Lagged(_)) => true,
            Err(broadcast::error::RecvError::Closed) => {
                self.revocations = None;
                false
            }
        };
        if unsure && matches!(self.app.api_key_is_live(self.key).await, Ok(false)) {
            return self.end(StreamEnd::KeyRevoked);
        }
        Flow::Continue
    }

    async fn on_live(&mut self, v: Arc<Violation>) -> Flow {
        if v.seq <= self.seen {
            self.stats.duplicates_skipped.fetch_add(1, Ordering::Relaxed);
            return Flow::Continue;
        }
        if v.seq > self.seen + 1 {
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            // Something between was not received live: read it from the table (which
            // also covers `v` itself).
            return self.catch_up().await;
        }
        self.seen = v.seq;
        if self.filter.matches(&v) { self.send((*v).clone()).await } else { Flow::Continue }
    }

    /// Reads and sends everything stored after `seen`, up to where the feed stands.
    async fn catch_up(&mut self) -> Flow {
        let mut head: Option<i64> = None;
        loop {
            let read =
                self.app.violations_between(self.org, self.filter.clone(), self.seen, head, PAGE).await;
            let (batch, position) = match read {
                Ok(r) => r,
                Err(e) => return self.end(StreamEnd::Unavailable(e.to_string())),
            };
            if !position.retains_after(self.seen) {
                return self.end(StreamEnd::NotRetained);
            }
            let head = *head.get_or_insert(position.last_seq);
            let full = batch.len() as i64 == PAGE;
            for v in batch {
                self.seen = v.seq;
                if let Flow::End = self.send(v).await {
                    return Flow::End;
                }
            }
            if !full {
                // Nothing more matches up to `head`: everything up to it is accounted for.
                self.seen = self.seen.max(head);
                return Flow::Continue;
            }
        }
    }

    /// Sends one item, waiting for a slow client but not past shutdown, its leaving, or
    /// the revocation or expiry of its key.
    async fn send(&mut self, item: Violation) -> Flow {
        loop {
            let revocation = tokio::select! {
                room = self.tx.reserve() => {
                    return match room {
                        Ok(room) => {
                            room.send(item);
                            Flow::Continue
                        }
                        Err(_) => Flow::End,
                    };
                }
                _ = self.stop.cancelled() => Interrupt::Shutdown,
                _ = until(self.expiry) => Interrupt::Expired,
                revocation = next_revocation(&mut self.revocations) => Interrupt::Revocation(revocation),
            };
            let flow = match revocation {
                Interrupt::Shutdown => self.end(StreamEnd::Shutdown),
                Interrupt::Expired => self.end(StreamEnd::KeyExpired),
                Interrupt::Revocation(revocation) => self.on_revocation(revocation).await,
            };
            if let Flow::End = flow {
                return Flow::End;
            }
        }
    }

    fn end(&mut self, why: StreamEnd) -> Flow {
        if let Some(end) = self.end.take() {
            // The reader may be gone already; then nobody needs to know.
            let _ = end.send(why);
        }
        Flow::End
    }
}

/// Completes at `at`, or never without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next revocation, or never once there are none to receive.
async fn next_revocation(
    revocations: &mut Option<broadcast::Receiver<Revocation>>,
) -> Result<Revocation, broadcast::error::RecvError> {
    match revocations {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
