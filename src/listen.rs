//! The accept loop every TCP input shares (carbon plaintext and pickle,
//! statsd, its admin console): connections are served on blocking threads,
//! because parsing is CPU work and stores are blocking, while the accept loop
//! itself is async so that it stops promptly. It owns connection accounting
//! and the read timeout that lets a served connection notice a stop; the
//! protocol is the `serve` function's.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::telemetry::InputStats;

/// How often a blocked read wakes to check for a stop. Short enough that an
/// orderly stop finishes within its deadline, long enough to cost nothing.
pub const POLL: Duration = Duration::from_millis(200);

/// Accepts connections until `stop`, serving each with `serve(stream, ctx,
/// stopping)` on a blocking thread; on stop, sets `stopping` and waits for
/// the connections to finish.
pub async fn accept<T: Clone + Send + 'static>(
    listener: tokio::net::TcpListener,
    ctx: T,
    stats: Arc<InputStats>,
    mut stop: watch::Receiver<bool>,
    serve: fn(TcpStream, &T, &AtomicBool),
) -> std::io::Result<()> {
    let stopping = Arc::new(AtomicBool::new(false));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(input = stats.input(), error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(POLL))?;
                let (ctx, stats, stopping) = (ctx.clone(), stats.clone(), stopping.clone());
                connections.spawn_blocking(move || {
                    stats.connection_opened();
                    serve(stream, &ctx, &stopping);
                    stats.connection_closed();
                });
                while connections.try_join_next().is_some() {}
            }
        }
    }
    stopping.store(true, Ordering::Release);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Whether a read error only means "nothing yet" (the timeout or a signal).
pub fn is_idle(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted)
}
