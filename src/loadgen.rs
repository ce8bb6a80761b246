//! What every `instantops bench` sender shares: a write that waits out the
//! receiver's backpressure but gives up once the run is long over, so a load
//! generator always stops by itself, even against a receiver that stopped
//! reading for good.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The write timeout senders set on their streams: how often a blocked
/// write looks at the clock.
pub const WRITE_WAIT: Duration = Duration::from_secs(1);

/// How long past its deadline a sender waits for a receiver that stopped
/// reading (backpressure that never lifts) before it gives up.
pub const STALL_GRACE: Duration = Duration::from_secs(10);

/// Writes all of `buf`, waiting out backpressure until `give_up` (a run's
/// deadline plus [`STALL_GRACE`]): a load generator stops by itself.
pub fn send(stream: &mut TcpStream, buf: &[u8], give_up: Instant) -> Result<(), String> {
    let mut off = 0;
    while off < buf.len() {
        match stream.write(&buf[off..]) {
            Ok(0) => return Err("send failed: the receiver closed the connection".into()),
            Ok(n) => off += n,
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) =>
            {
                if Instant::now() >= give_up {
                    return Err("send failed: the receiver stopped reading".into());
                }
            }
            Err(e) => return Err(format!("send failed: {e}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_that_never_reads_does_not_hold_the_sender() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let _accepted = listener.accept().expect("accept");
        stream.set_write_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let started = Instant::now();
        let result = send(&mut stream, &vec![b'x'; 64 << 20], started + Duration::from_millis(500));
        assert_eq!(result, Err("send failed: the receiver stopped reading".to_string()));
        assert!(started.elapsed() < Duration::from_secs(30), "gave up after {:?}", started.elapsed());
    }

    #[test]
    fn a_reading_receiver_gets_every_byte() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut accepted, _) = listener.accept().expect("accept");
        let reader = std::thread::spawn(move || std::io::copy(&mut accepted, &mut std::io::sink()).expect("read"));
        stream.set_write_timeout(Some(WRITE_WAIT)).expect("timeout");
        send(&mut stream, &vec![b'x'; 8 << 20], Instant::now() + Duration::from_secs(60)).expect("send");
        drop(stream);
        assert_eq!(reader.join().expect("reader"), 8 << 20);
    }
}
