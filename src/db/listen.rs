//! The wake-up: a dedicated connection LISTENs on the feed channel and pokes the fetcher
//! on every notification. Notifications carry nothing (the table is the truth), so one
//! missed is harmless: after every (re)connect the fetcher is woken to catch up, and it
//! also polls on a timer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::poll_fn;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use crate::db::violations::NOTIFY_CHANNEL;

/// LISTENs until `stop`, reconnecting after any failure.
pub async fn run(url: String, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        match listen_once(&url, &wake, &stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "violation feed listener lost its connection; reconnecting"),
        }
        // Whatever was committed meanwhile is found by the fetcher's catch-up.
        wake.notify_one();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One connection's life: Ok when stopped, Err when the connection failed.
async fn listen_once(
    url: &str,
    wake: &Arc<Notify>,
    stop: &CancellationToken,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let notify = Arc::clone(wake);
    let mut driver = tokio::spawn(async move {
        poll_fn(move |cx| {
            loop {
                match std::task::ready!(connection.poll_message(cx)) {
                    Some(Ok(AsyncMessage::Notification(_))) => notify.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    None => return std::task::Poll::Ready(Ok(())),
                }
            }
        })
        .await
    });
    client.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}")).await?;
    tracing::info!("violation feed listener connected");
    wake.notify_one();
    tokio::select! {
        _ = stop.cancelled() => {
            driver.abort();
            Ok(())
        }
        ended = &mut driver => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(()),
        },
    }
}
