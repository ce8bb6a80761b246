//! Reading a running instance's `/metrics` from the outside: the benches use
//! it to see when every sent point or event has been counted as ingested.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Polls `url` until the sum of the sample lines starting with `metric`
/// reaches `target`. Gives up after 10 minutes.
pub fn wait_for(url: &str, metric: &str, target: f64, started: Instant) -> Result<f64, String> {
    let give_up = Instant::now() + Duration::from_secs(600);
    loop {
        let counted = metric_sum(url, metric)?;
        if counted >= target {
            return Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() > give_up {
            return Err(format!("{metric} reached {counted}, not {target}, within 10 minutes"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sum of the Prometheus sample lines at `url` that start with `metric`.
pub fn metric_sum(url: &str, metric: &str) -> Result<f64, String> {
    let body = http_get(url)?;
    Ok(body.lines().filter(|l| l.starts_with(metric)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum())
}

/// A plain HTTP/1.1 GET, enough for a metrics endpoint on loopback.
fn http_get(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("only http:// URLs are supported, not {url:?}"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).map_err(|e| format!("cannot connect to {host}: {e}"))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body.split_once("\r\n\r\n").map_or(body.clone(), |(_, b)| b.to_string()))
}
