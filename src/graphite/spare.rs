//! One spare thread that a render can hand half of its JSON formatting to,
//! when the thread is idle. It owns nothing but that thread: a caller claims
//! it or is told it is busy, and then does all of its work itself, so a
//! burst of renders never queues behind the spare (each waits at most for
//! its own half), and a machine whose cores are all busy loses only a failed
//! claim.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// Set while a claim is held or its job runs.
static BUSY: AtomicBool = AtomicBool::new(false);

/// The spare thread's queue (`None` if the thread could not be started).
static QUEUE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

/// The right to run one job on the spare thread; released when dropped unused.
pub struct Claim {
    used: bool,
}

/// The spare thread, if no one else holds it.
pub fn claim() -> Option<Claim> {
    if BUSY.swap(true, Ordering::Acquire) {
        return None;
    }
    Some(Claim { used: false })
}

impl Claim {
    /// Runs `work` on the spare thread; its result arrives on the receiver.
    /// If the thread is gone (it could not start, or a job panicked), the
    /// receiver reports a disconnect and the caller does the work itself.
    pub fn run<T: Send + 'static>(mut self, work: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        if queue().and_then(|q| q.lock().ok()?.send(job).ok()).is_some() {
            // The spare thread releases the claim when the job is done.
            self.used = true;
        }
        answer
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.used {
            BUSY.store(false, Ordering::Release);
        }
    }
}

fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    QUEUE
        .get_or_init(|| {
            let (jobs, queue) = mpsc::channel::<Job>();
            let spare = std::thread::Builder::new().name("graphite-spare".into()).spawn(move || {
                for job in queue {
                    job();
                    BUSY.store(false, Ordering::Release);
                }
            });
            spare.ok().map(|_| Mutex::new(jobs))
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims the spare, waiting while another test's render holds it.
    fn claim_within(seconds: u64) -> Claim {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            if let Some(c) = claim() {
                return c;
            }
            assert!(std::time::Instant::now() < deadline, "the spare was never released");
            std::thread::yield_now();
        }
    }

    #[test]
    fn one_claim_at_a_time_and_released_after_its_job() {
        let first = claim_within(10);
        assert!(claim().is_none(), "a second claim while one is held");
        let (go, wait) = mpsc::channel::<()>();
        let answer = first.run(move || {
            wait.recv().expect("the test says go");
            7
        });
        assert!(claim().is_none(), "a claim while the job runs");
        go.send(()).expect("the job waits");
        assert_eq!(answer.recv(), Ok(7));
        // Released after the job, and at once when dropped unused.
        drop(claim_within(10));
        drop(claim_within(10));
    }
}
