//! Periodic jobs on their own threads (alert evaluation, host metrics): run
//! a job at once and then every interval, at a fixed rate (a late run is not
//! caught up, the next is a whole interval later), until the stop signal;
//! the stop is noticed within 100 ms.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How often a waiting job looks at the stop signal.
const POLL: Duration = Duration::from_millis(100);

pub fn every(interval: Duration, stop: &watch::Receiver<bool>, mut job: impl FnMut()) {
    let mut next = Instant::now();
    while !*stop.borrow() {
        if Instant::now() >= next {
            job();
            next += interval;
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
        std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)));
    }
}
