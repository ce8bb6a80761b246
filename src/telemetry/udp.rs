//! UDP has no acknowledgement, so what the kernel drops must at least be
//! visible: this module sizes a UDP socket's receive buffer and exposes the
//! kernel's per-socket drop count (the last column of /proc/net/udp and
//! /proc/net/udp6) as `instantops_udp_drops_total{input}`.

use std::net::{SocketAddr, UdpSocket};

use super::registry::Registry;

/// Receive buffer asked for: 16 MiB absorbed every burst in limits.md's
/// measurements (the default 208 KiB dropped 1-1.5 %). Without the privilege
/// to force it, the kernel caps it at net.core.rmem_max (4 MiB on these
/// machines; the packaged box raises it), and whatever is still dropped shows
/// in `instantops_udp_drops_total`.
const RECEIVE_BUFFER: usize = 16 << 20;

/// Binds a UDP socket with a large receive buffer.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // SO_RCVBUFFORCE passes net.core.rmem_max when the process may
    // (CAP_NET_ADMIN, root); else SO_RCVBUF, which the kernel caps at it.
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err()
        && let Err(e) = socket.set_recv_buffer_size(RECEIVE_BUFFER)
    {
        tracing::debug!(error = %e, "cannot enlarge a UDP receive buffer");
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Publishes the kernel's drop count of the socket bound to `local` on every read.
pub fn watch_drops(registry: &Registry, input: &'static str, local: SocketAddr) {
    let gauge = registry.gauge(
        "instantops_udp_drops_total",
        "Datagrams the kernel dropped on this input's socket (receive buffer full).",
        &[("input", input)],
    );
    registry.on_collect(move || {
        if let Some(drops) = socket_drops(local) {
            gauge.set(drops as i64);
        }
    });
}

/// The drop counter of the UDP socket bound to `local`, from /proc/net/udp{,6}.
/// The kernel fills that file a page at a time from a table other threads
/// change meanwhile, so a socket can be missing from one read: a few are tried.
fn socket_drops(local: SocketAddr) -> Option<u64> {
    (0..3).find_map(|_| socket_drops_once(local))
}

fn socket_drops_once(local: SocketAddr) -> Option<u64> {
    let table = if local.is_ipv4() { "/proc/net/udp" } else { "/proc/net/udp6" };
    let text = std::fs::read_to_string(table).ok()?;
    let port = format!(":{:04X}", local.port());
    text.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let address = fields.nth(1)?;
        if !address.ends_with(&port) {
            return None;
        }
        line.split_whitespace().last()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_buffer_is_enlarged() {
        let socket = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let size = socket2::SockRef::from(&socket).recv_buffer_size().expect("size");
        // The kernel reports twice what was set; at least rmem_max's cap is granted.
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok().and_then(|t| t.trim().parse::<usize>().ok()).unwrap_or(0);
        assert!(size >= RECEIVE_BUFFER.min(cap), "receive buffer {size}, rmem_max {cap}");
    }

    #[test]
    fn a_bound_socket_has_a_drop_counter() {
        let socket = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let local = socket.local_addr().expect("addr");
        assert_eq!(socket_drops(local), Some(0));
    }
}
