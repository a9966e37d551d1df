//! Load: closed loops (N callers, each sending its next call when the last answers) and
//! an open loop (calls sent on a fixed schedule, latency counted from the scheduled
//! time, so a slow server cannot hide its queueing), spread over a few HTTP/2
//! connections.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing::proto::v1 as pb;
use billing::proto::v1::usage_service_client::UsageServiceClient;
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tonic::Request;
use tonic::transport::Channel;

/// A request carrying the bench's API key.
pub fn authed<T>(msg: T, key: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ascii key"));
    req
}

pub fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 })
}

/// Where load goes and what it is made of.
#[derive(Clone)]
pub struct Target {
    pub channels: Vec<Channel>,
    pub key: String,
    pub customers: Arc<Vec<String>>,
    pub codes: [&'static str; 2],
}

impl Target {
    fn client(&self, i: usize) -> UsageServiceClient<Channel> {
        UsageServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    /// A fresh event of a random customer and service, well within every limit.
    pub fn event(&self, rng: &mut StdRng, quantity: &str) -> pb::UsageEvent {
        let customer = &self.customers[rng.random_range(0..self.customers.len())];
        pb::UsageEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            customer: billing::proto::customer_id(customer.clone()),
            product: Some(pb::usage_event::Product::ProductCode(
                self.codes[rng.random_range(0..2)].to_owned(),
            )),
            quantity: quantity.into(),
            rated_amount: "0.05".into(),
            timestamp: ts(Utc::now()),
            ..Default::default()
        }
    }
}

/// What one load phase measured.
pub struct Measured {
    pub events: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Call latencies in microseconds.
    pub latency: Histogram<u64>,
}

impl Measured {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency quantile `q` in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

struct Worker {
    events: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

fn merge(workers: Vec<Worker>, elapsed: Duration) -> Measured {
    let mut m = Measured { events: 0, errors: 0, first_error: None, elapsed, latency: histogram() };
    for w in workers {
        m.events += w.events;
        m.errors += w.errors;
        m.first_error = m.first_error.or(w.first_error);
        m.latency.add(&w.latency).expect("same bounds");
    }
    m
}

/// `callers` closed-loop callers, each sending `batch` events per call (RecordUsage when
/// `batch` is 0, RecordUsageBatch otherwise); only calls started after `warmup` count.
pub async fn closed_loop(
    target: &Target,
    callers: usize,
    batch: usize,
    warmup: Duration,
    duration: Duration,
) -> Measured {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut client = target.client(i);
                let mut rng = StdRng::from_os_rng();
                let mut w = Worker { events: 0, errors: 0, first_error: None, latency: histogram() };
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        return w;
                    }
                    let (ok, n) = if batch == 0 {
                        let req = pb::RecordUsageRequest { event: Some(target.event(&mut rng, "1")) };
                        (client.record_usage(authed(req, &target.key)).await.map(|_| ()), 1)
                    } else {
                        let events = (0..batch).map(|_| target.event(&mut rng, "1")).collect();
                        let req = pb::RecordUsageBatchRequest { events };
                        (client.record_usage_batch(authed(req, &target.key)).await.map(|_| ()), batch as u64)
                    };
                    if sent < measure_from {
                        continue;
                    }
                    match ok {
                        Ok(()) => {
                            w.events += n;
                            let _ = w.latency.record(sent.elapsed().as_micros() as u64);
                        }
                        Err(e) => {
                            w.errors += 1;
                            w.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    let mut workers = Vec::with_capacity(callers);
    for t in tasks {
        workers.push(t.await.expect("load task"));
    }
    merge(workers, end.saturating_duration_since(measure_from))
}

/// RecordUsage calls at `rate` per second for `duration` (after `warmup`), each on its
/// own task; latency runs from when a call was due, not when it was sent.
pub async fn open_loop(target: &Target, rate: f64, warmup: Duration, duration: Duration) -> Measured {
    let shared =
        Arc::new(Mutex::new(Worker { events: 0, errors: 0, first_error: None, latency: histogram() }));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut rng = StdRng::from_os_rng();
    let mut sent: u64 = 0;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let scheduled = start + Duration::from_secs_f64(sent as f64 / rate);
            let req = pb::RecordUsageRequest { event: Some(target.event(&mut rng, "1")) };
            let mut client = target.client(sent as usize);
            let (key, shared) = (target.key.clone(), Arc::clone(&shared));
            tasks.spawn(async move {
                let result = client.record_usage(authed(req, &key)).await;
                if scheduled < measure_from {
                    return;
                }
                let mut w = shared.lock().expect("not poisoned");
                match result {
                    Ok(_) => {
                        w.events += 1;
                        let _ = w.latency.record(scheduled.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        w.errors += 1;
                        w.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            });
            sent += 1;
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    let worker = Arc::try_unwrap(shared).ok().expect("all tasks done").into_inner().expect("not poisoned");
    merge(vec![worker], duration)
}

/// What the reserve -> commit phase measured: whole pairs (one pair is one event), and
/// each of the two calls on its own.
pub struct PairsMeasured {
    pub pairs: Measured,
    pub reserve: Histogram<u64>,
    pub commit: Histogram<u64>,
}

impl PairsMeasured {
    /// Quantile `q` of `h` in milliseconds.
    pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// `callers` closed-loop callers, each reserving a usage and committing a little less
/// than it held, as a caller of credit control does around the work it serves.
pub async fn reserve_commit(
    target: &Target,
    callers: usize,
    warmup: Duration,
    duration: Duration,
) -> PairsMeasured {
    use billing::proto::v1::reservation_service_client::ReservationServiceClient;
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut client =
                    ReservationServiceClient::new(target.channels[i % target.channels.len()].clone());
                let mut rng = StdRng::from_os_rng();
                let mut w = Worker { events: 0, errors: 0, first_error: None, latency: histogram() };
                let (mut reserve, mut commit) = (histogram(), histogram());
                while Instant::now() < end {
                    let e = target.event(&mut rng, "1");
                    let sent = Instant::now();
                    let hold = pb::ReserveUsageRequest {
                        request_id: e.event_id.clone(),
                        customer: e.customer.map(|c| match c {
                            pb::usage_event::Customer::CustomerId(id) => {
                                pb::reserve_usage_request::Customer::CustomerId(id)
                            }
                            pb::usage_event::Customer::CustomerExternalId(x) => {
                                pb::reserve_usage_request::Customer::CustomerExternalId(x)
                            }
                        }),
                        product: e.product.map(|p| match p {
                            pb::usage_event::Product::ProductId(id) => {
                                pb::reserve_usage_request::Product::ProductId(id)
                            }
                            pb::usage_event::Product::ProductCode(c) => {
                                pb::reserve_usage_request::Product::ProductCode(c)
                            }
                        }),
                        quantity: e.quantity,
                        rated_amount: e.rated_amount,
                        allow_overage: true,
                        ..Default::default()
                    };
                    let result = match client.reserve_usage(authed(hold, &target.key)).await {
                        Ok(held) => {
                            let reserved = sent.elapsed();
                            let id = held.into_inner().reservation.map(|r| r.id).unwrap_or_default();
                            let settle = pb::CommitReservationRequest {
                                reservation_id: id,
                                event_id: e.event_id,
                                quantity: "1".into(),
                                rated_amount: "0.04".into(),
                                timestamp: None,
                            };
                            let committing = Instant::now();
                            client
                                .commit_reservation(authed(settle, &target.key))
                                .await
                                .map(|_| (reserved, committing.elapsed()))
                        }
                        Err(e) => Err(e),
                    };
                    if sent < measure_from {
                        continue;
                    }
                    match result {
                        Ok((reserved, committed)) => {
                            w.events += 1;
                            let _ = w.latency.record(sent.elapsed().as_micros() as u64);
                            let _ = reserve.record(reserved.as_micros() as u64);
                            let _ = commit.record(committed.as_micros() as u64);
                        }
                        Err(e) => {
                            w.errors += 1;
                            w.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (w, reserve, commit)
            })
        })
        .collect();
    let (mut workers, mut reserve, mut commit) = (Vec::with_capacity(callers), histogram(), histogram());
    for t in tasks {
        let (w, r, c) = t.await.expect("reservation load task");
        reserve.add(&r).expect("same bounds");
        commit.add(&c).expect("same bounds");
        workers.push(w);
    }
    PairsMeasured { pairs: merge(workers, end.saturating_duration_since(measure_from)), reserve, commit }
}
