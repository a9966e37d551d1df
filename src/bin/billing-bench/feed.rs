//! Violation feed figures: how soon a subscriber on either instance hears of a
//! violation, and what idle subscribers cost in memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use billing::proto::v1 as pb;
use billing::proto::v1::usage_service_client::UsageServiceClient;
use billing::proto::v1::violation_service_client::ViolationServiceClient;
use billing::proto::v1::watch_violations_request::Start;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::cluster::{Scrape, connect};
use crate::load::{Target, authed};
use crate::seed::MAX_USAGE_PER_TRANSACTION;

/// Receipt times by event id, from one subscriber.
async fn subscribe(
    channel: Channel,
    key: &str,
) -> anyhow::Result<mpsc::UnboundedReceiver<(String, Instant)>> {
    let req = pb::WatchViolationsRequest { start: Some(Start::FromNow(true)), ..Default::default() };
    let mut stream =
        ViolationServiceClient::new(channel).watch_violations(authed(req, key)).await?.into_inner();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let at = Instant::now();
            if let Some(v) = msg.violation
                && tx.send((v.event_id, at)).is_err()
            {
                return;
            }
        }
    });
    Ok(rx)
}

/// Latency percentiles in ms of each subscriber: (p50, p99, samples).
pub struct FeedLatency {
    pub same: (f64, f64, u64),
    pub other: (f64, f64, u64),
}

/// Sends `count` blocked events through instance `target` (one violation each at
/// least), `interval` apart, and times their arrival at a subscriber on `same` and one
/// on `other`, from the moment the causing call was sent: an upper bound of the time
/// from its commit.
pub async fn violation_latency(
    target: &Target,
    same: SocketAddr,
    other: SocketAddr,
    count: usize,
    interval: Duration,
) -> anyhow::Result<FeedLatency> {
    let mut subscribers = [
        subscribe(connect(same).await?, &target.key).await?,
        subscribe(connect(other).await?, &target.key).await?,
    ];
    let mut client = UsageServiceClient::new(target.channels[0].clone());
    let mut rng = StdRng::from_os_rng();
    let over = (MAX_USAGE_PER_TRANSACTION * 5).to_string();
    // Until both subscribers hear of a first violation, their streams may not be live.
    let deadline = Instant::now() + Duration::from_secs(20);
    for sub in subscribers.iter_mut() {
        loop {
            let event = target.event(&mut rng, &over);
            client.record_usage(authed(pb::RecordUsageRequest { event: Some(event) }, &target.key)).await?;
            if tokio::time::timeout(Duration::from_secs(2), sub.recv()).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("subscribers received no violation within 20 s");
            }
        }
    }
    for sub in subscribers.iter_mut() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        while sub.try_recv().is_ok() {}
    }
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(count);
    for _ in 0..count {
        let event = target.event(&mut rng, &over);
        sent.insert(event.event_id.clone(), Instant::now());
        client.record_usage(authed(pb::RecordUsageRequest { event: Some(event) }, &target.key)).await?;
        tokio::time::sleep(interval).await;
    }
    let mut figures = Vec::new();
    for sub in subscribers.iter_mut() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut heard: HashMap<String, Instant> = HashMap::new();
        let wait_until = Instant::now() + Duration::from_secs(10);
        while heard.len() < sent.len() {
            let Ok(Some((event_id, at))) = tokio::time::timeout_at(wait_until.into(), sub.recv()).await
            else {
                break;
            };
            if sent.contains_key(&event_id) {
                heard.entry(event_id).or_insert(at);
            }
        }
        if heard.len() < sent.len() {
            bail!("a subscriber heard of {} of {} violations", heard.len(), sent.len());
        }
        for (event_id, at) in heard {
            hist.record(at.duration_since(sent[&event_id]).as_micros() as u64)?;
        }
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        figures.push((ms(0.5), ms(0.99), hist.len()));
    }
    Ok(FeedLatency { same: figures[0], other: figures[1] })
}

/// Server memory around idle subscribers, in bytes.
pub struct IdleSubscribers {
    pub count: usize,
    pub rss_before: f64,
    pub rss_with: f64,
    pub rss_after_close: f64,
}

async fn rss(metrics: SocketAddr) -> anyhow::Result<f64> {
    // The server samples its memory every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok(Scrape::from(metrics).await?.sum("process_resident_memory_bytes", &[]))
}

/// Opened subscribers: dropping them closes their streams and connections.
struct Opened {
    _streams: Vec<tonic::Response<tonic::Streaming<pb::WatchViolationsResponse>>>,
    _channels: Vec<Channel>,
}

/// The subscribers the instance reports.
async fn subscribers(metrics: SocketAddr) -> anyhow::Result<f64> {
    Ok(Scrape::from(metrics).await?.sum("violation_feed_subscribers", &[]))
}

/// Waits until the instance's subscriber count satisfies `reached`.
async fn wait_for_subscribers(
    metrics: SocketAddr,
    what: &str,
    reached: impl Fn(f64) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached(subscribers(metrics).await?) {
        if Instant::now() > deadline {
            bail!("the server did not report {what} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Opens `count` WatchViolations streams on the instance at `grpc`, over connections of
/// at most 500 streams each, once the instance reports them all (beyond the `baseline`
/// it had).
async fn open_subscribers(
    (grpc, metrics): (SocketAddr, SocketAddr),
    key: &str,
    count: usize,
    baseline: usize,
) -> anyhow::Result<Opened> {
    let mut channels = Vec::new();
    for _ in 0..count.div_ceil(500) {
        channels.push(connect(grpc).await?);
    }
    let streams: Vec<_> = futures::stream::iter(0..count)
        .map(|i| {
            let channel = channels[i % channels.len()].clone();
            let key = key.to_owned();
            async move {
                let req =
                    pb::WatchViolationsRequest { start: Some(Start::FromNow(true)), ..Default::default() };
                ViolationServiceClient::new(channel).watch_violations(authed(req, &key)).await
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let streams = streams.into_iter().collect::<Result<Vec<_>, _>>().context("opening a subscriber")?;
    let all = (baseline + count) as f64;
    wait_for_subscribers(metrics, &format!("{count} more subscribers"), |n| n >= all).await?;
    Ok(Opened { _streams: streams, _channels: channels })
}

/// Opens `count` idle subscribers on the instance at `grpc` and reads its memory before,
/// while they are open, and after.
pub async fn idle_subscribers(
    grpc: SocketAddr,
    metrics: SocketAddr,
    key: &str,
    count: usize,
) -> anyhow::Result<IdleSubscribers> {
    let rss_before = rss(metrics).await?;
    let baseline = subscribers(metrics).await?;
    let opened = open_subscribers((grpc, metrics), key, count, baseline as usize).await?;
    let rss_with = rss(metrics).await?;
    drop(opened);
    wait_for_subscribers(metrics, "its subscribers gone", |n| n <= baseline).await?;
    let rss_after_close = rss(metrics).await?;
    Ok(IdleSubscribers { count, rss_before, rss_with, rss_after_close })
}

/// Server memory over waves of streams opened and closed, in bytes.
pub struct StreamWaves {
    pub per_wave: usize,
    pub rss_before: f64,
    /// Memory at each wave's peak, and once its streams are gone.
    pub waves: Vec<(f64, f64)>,
}

/// Opens `per_wave` streams and closes them, `waves` times: memory that is not given
/// back after a wave (a leak, or an allocator that keeps it) shows as growth here.
pub async fn stream_waves(
    grpc: SocketAddr,
    metrics: SocketAddr,
    key: &str,
    (waves, per_wave): (usize, usize),
) -> anyhow::Result<StreamWaves> {
    let rss_before = rss(metrics).await?;
    let baseline = subscribers(metrics).await?;
    let mut figures = Vec::with_capacity(waves);
    for _ in 0..waves {
        let opened = open_subscribers((grpc, metrics), key, per_wave, baseline as usize).await?;
        let peak = rss(metrics).await?;
        drop(opened);
        wait_for_subscribers(metrics, "the wave's subscribers gone", |n| n <= baseline).await?;
        figures.push((peak, rss(metrics).await?));
    }
    Ok(StreamWaves { per_wave, rss_before, waves: figures })
}
