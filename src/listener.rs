//! Accepting connections so that hostile or broken clients cannot take the process
//! down: a cap on open connections (past it a new one is closed at once), a deadline
//! for a new connection's opening message (a client that connects and never speaks is
//! dropped, instead of holding a file descriptor forever), back-off and a warning when
//! accepting fails (out of file descriptors: the loop would otherwise spin a core), and
//! the soft open-file limit raised to the hard one at start.
//!
//! The deadline covers the client's whole opening message: the HTTP/2 preface with its
//! SETTINGS frame, or the TLS record carrying the ClientHello. A client that sends part
//! of it and stalls is dropped like one that sends nothing; once the connection is up,
//! HTTP/2 keepalive watches it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How connections are admitted.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once, including those still in their handshake.
    pub max_connections: usize,
    /// How long a new connection may take to send its whole opening message.
    pub handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { max_connections: 10_000, handshake_timeout: Duration::from_secs(5) }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const LAST_BACKOFF: Duration = Duration::from_secs(1);

/// Raises the soft open-file limit to the hard limit, logging both.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(_, hard)| hard).unwrap_or(soft);
            tracing::info!(soft, hard, "open-file limit");
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// The connections accepted on `listener` under `limits`, ready for the gRPC server;
/// the stream ends, and the listener closes, when `stop` is cancelled.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> ReceiverStream<io::Result<Admitted>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept(listener, limits, tx, stop));
    ReceiverStream::new(rx)
}

async fn accept(
    listener: TcpListener,
    limits: ConnectionLimits,
    admitted: mpsc::Sender<io::Result<Admitted>>,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accepting a connection failed; backing off");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(LAST_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
            continue;
        };
        // Without TCP_NODELAY small responses wait for the client's delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let admitted = admitted.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            match tokio::time::timeout(limits.handshake_timeout, read_opening(&mut stream)).await {
                Ok(Ok(opening)) => {
                    let _ = admitted.send(Ok(Admitted { stream, opening, read: 0, _permit: permit })).await;
                }
                // Closed or failed before its opening message was complete: nothing to serve.
                Ok(Err(_)) => {}
                Err(_) => tracing::info!(
                    %peer,
                    "connection closed: its opening message was not complete within the handshake deadline"
                ),
            }
        });
    }
}

/// The HTTP/2 client preface; a SETTINGS frame follows it.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Largest opening message read before the connection is handed over: a TLS record
/// holds at most 16 KB; an HTTP/2 SETTINGS frame is far smaller.
const MAX_OPENING: usize = 16 * 1024 + 5;

/// How many bytes the opening message that starts with `bytes` has, once enough of it
/// is known to tell; `Some(bytes.len())` or less when it is complete. A connection
/// speaking neither protocol is handed over after its first byte, for the server to
/// refuse.
fn opening_length(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.first()?;
    if first == TLS_HANDSHAKE {
        let header = bytes.get(..5)?;
        return Some(5 + usize::from(u16::from_be_bytes([header[3], header[4]])));
    }
    let known = bytes.len().min(PREFACE.len());
    if bytes[..known] != PREFACE[..known] {
        return Some(1);
    }
    let frame = bytes.get(PREFACE.len()..PREFACE.len() + 9)?;
    let payload = (usize::from(frame[0]) << 16) | (usize::from(frame[1]) << 8) | usize::from(frame[2]);
    Some(PREFACE.len() + 9 + payload)
}

/// Reads the client's whole opening message (see [`opening_length`]); the caller bounds
/// the time it may take.
async fn read_opening(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut opening = Vec::with_capacity(64);
    loop {
        if let Some(length) = opening_length(&opening)
            && opening.len() >= length.min(MAX_OPENING)
        {
            return Ok(opening);
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        opening.extend_from_slice(&chunk[..n]);
    }
}

/// An admitted connection; it holds its place under the cap until dropped. What was
/// read of it to judge its opening is read again first.
pub struct Admitted {
    stream: TcpStream,
    opening: Vec<u8>,
    /// How much of `opening` has been read again.
    read: usize,
    _permit: OwnedSemaphorePermit,
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.opening.len() {
            let n = buf.remaining().min(self.opening.len() - self.read);
            let start = self.read;
            buf.put_slice(&self.opening[start..start + n]);
            self.read += n;
            if self.read == self.opening.len() {
                self.opening = Vec::new();
                self.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h2_opening(settings_payload: usize) -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend([0, 0, settings_payload as u8, 4, 0, 0, 0, 0, 0]);
        bytes.extend(std::iter::repeat_n(0u8, settings_payload));
        bytes
    }

    #[test]
    fn an_http2_opening_is_complete_with_its_settings_frame() {
        let whole = h2_opening(12);
        assert_eq!(opening_length(&whole), Some(whole.len()));
        assert_eq!(opening_length(&whole[..10]), None, "part of the preface: not known yet");
        assert_eq!(opening_length(&whole[..PREFACE.len() + 3]), None, "frame header cut");
        assert_eq!(opening_length(&whole[..PREFACE.len() + 9]), Some(whole.len()), "payload to come");
    }

    #[test]
    fn a_tls_opening_is_one_whole_record() {
        let record = [TLS_HANDSHAKE, 3, 1, 0x01, 0x00];
        assert_eq!(opening_length(&record[..4]), None);
        assert_eq!(opening_length(&record), Some(5 + 256));
    }

    #[test]
    fn anything_else_is_handed_over_after_its_first_byte() {
        assert_eq!(opening_length(b"GET / HTTP/1.1\r\n"), Some(1));
        assert_eq!(opening_length(b"PRX"), Some(1));
        assert_eq!(opening_length(b""), None);
    }
}
