//! LISTEN on PostgreSQL channels over one dedicated connection per instance, and hand
//! each notification to the channel's owner: the violation feed's fetcher, and the API
//! key cache. Notifications can be missed (while the connection is down), so every
//! owner is also told when the link comes up and goes down, and must treat that as
//! "anything may have changed".

use std::sync::Arc;
use std::time::Duration;

use futures::future::poll_fn;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::conninfo::{BadConnInfo, ConnInfo};

/// Whether notifications are being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Listening: from now on, every notification arrives.
    Up,
    /// The connection failed: notifications are missed until the next `Up`.
    Down,
}

/// One channel and what its owner does with it.
#[derive(Clone)]
pub struct Channel {
    pub name: &'static str,
    /// Called with each notification's payload.
    pub on_notify: Arc<dyn Fn(&str) + Send + Sync>,
    /// Called when the link comes up (after every connect) and goes down.
    pub on_link: Arc<dyn Fn(Link) + Send + Sync>,
}

/// Names the listener's session in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "billing-commitments notifications";

/// Why a listening connection ended.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error(transparent)]
    Settings(#[from] BadConnInfo),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// LISTENs on `channels` until `stop`, reconnecting after any failure, over a
/// connection made from the libpq settings `url` (TLS as their `sslmode` says); starts once
/// `migrated` says the database and the role it logs in as exist (before, a failed
/// connection is no trouble to warn of).
pub async fn run(
    url: String,
    channels: Vec<Channel>,
    mut migrated: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => return,
        ready = migrated.wait_for(|done| *done) => if ready.is_err() { return },
    }
    loop {
        match listen_once(&url, &channels, &stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "notification listener lost its connection; reconnecting"),
        }
        for c in &channels {
            (c.on_link)(Link::Down);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One connection's life: Ok when stopped, Err when the connection failed.
async fn listen_once(url: &str, channels: &[Channel], stop: &CancellationToken) -> Result<(), ListenError> {
    // Settings and certificate files are read on every connect, so renewed ones apply.
    let (mut config, tls) = url.parse::<ConnInfo>()?.listener_config()?;
    config.application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect(tls.connector()?).await?;
    let handlers = channels.to_vec();
    let mut driver = tokio::spawn(async move {
        poll_fn(move |cx| {
            loop {
                match std::task::ready!(connection.poll_message(cx)) {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if let Some(c) = handlers.iter().find(|c| c.name == n.channel()) {
                            (c.on_notify)(n.payload());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    None => return std::task::Poll::Ready(Ok(())),
                }
            }
        })
        .await
    });
    let listen: String = channels.iter().map(|c| format!("LISTEN {};", c.name)).collect();
    client.batch_execute(&listen).await?;
    tracing::info!(channels = channels.len(), "notification listener connected");
    for c in channels {
        (c.on_link)(Link::Up);
    }
    tokio::select! {
        _ = stop.cancelled() => {
            driver.abort();
            Ok(())
        }
        ended = &mut driver => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Ok(()),
        },
    }
}
