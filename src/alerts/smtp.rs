//! A small SMTP client for alert email (RFC 5321): EHLO, STARTTLS (rustls,
//! the Mozilla roots plus an optional CA file), AUTH PLAIN, one message.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::{SmtpConfig, Starttls};

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Reads one reply: its code and its lines' text (multi-line replies joined).
fn reply(conn: &mut Conn) -> Result<(u16, Vec<String>), String> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            match conn.read(&mut byte) {
                Ok(0) => return Err("the SMTP server closed the connection".into()),
                Ok(_) => line.push(byte[0]),
                Err(e) => return Err(format!("reading the SMTP reply: {e}")),
            }
            if line.len() > 4096 {
                return Err("an SMTP reply line is over 4 KiB".into());
            }
        }
        let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
        let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not an SMTP reply: {text:?}"))?;
        let last = text.as_bytes().get(3) != Some(&b'-');
        lines.push(text.get(4..).unwrap_or("").to_owned());
        if last {
            return Ok((code, lines));
        }
    }
}

fn command(conn: &mut Conn, line: &str, want: &[u16]) -> Result<Vec<String>, String> {
    conn.write_all(format!("{line}\r\n").as_bytes()).map_err(|e| format!("SMTP write: {e}"))?;
    let (code, text) = reply(conn)?;
    if !want.contains(&code) {
        let shown = if line.starts_with("AUTH") { "AUTH" } else { line };
        return Err(format!("SMTP {shown:?} answered {code} {}", text.join(" ")));
    }
    Ok(text)
}

fn tls_config(cfg: &SmtpConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = cfg.ca_file.as_deref().filter(|p| !p.is_empty()) {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| format!("alerts.smtp.ca_file {path}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("alerts.smtp.ca_file {path}: {e}"))?;
            roots.add(cert).map_err(|e| format!("alerts.smtp.ca_file {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Sends one plain-text message to `to`.
pub fn send(cfg: &SmtpConfig, to: &str, subject: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let addr = cfg
        .server
        .to_socket_addrs()
        .map_err(|e| format!("alerts.smtp.server {}: {e}", cfg.server))?
        .next()
        .ok_or_else(|| format!("alerts.smtp.server {} has no address", cfg.server))?;
    let host = cfg.server.rsplit_once(':').map_or(cfg.server.as_str(), |(h, _)| h).trim_matches(['[', ']']).to_owned();
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect to {}: {e}", cfg.server))?;
    stream.set_read_timeout(Some(timeout)).and_then(|_| stream.set_write_timeout(Some(timeout))).map_err(|e| e.to_string())?;
    let mut conn = Conn::Plain(stream);
    let (code, text) = reply(&mut conn)?;
    if code != 220 {
        return Err(format!("SMTP greeting {code} {}", text.join(" ")));
    }
    let mut caps = command(&mut conn, &format!("EHLO {}", cfg.helo), &[250])?;
    let offered = caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS"));
    let upgrade = match cfg.starttls {
        Starttls::Never => false,
        Starttls::Auto => offered,
        Starttls::Always if offered => true,
        Starttls::Always => return Err(format!("{} does not offer STARTTLS (alerts.smtp.starttls = \"always\")", cfg.server)),
    };
    if upgrade {
        command(&mut conn, "STARTTLS", &[220])?;
        let Conn::Plain(tcp) = conn else { return Err("STARTTLS twice".into()) };
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("server name {host:?}: {e}"))?;
        let client = rustls::ClientConnection::new(tls_config(cfg)?, name).map_err(|e| e.to_string())?;
        conn = Conn::Tls(Box::new(rustls::StreamOwned::new(client, tcp)));
        caps = command(&mut conn, &format!("EHLO {}", cfg.helo), &[250])?;
    }
    if let (Some(user), Some(pass)) = (cfg.username.as_deref().filter(|u| !u.is_empty()), cfg.password.as_deref()) {
        if !caps.iter().any(|c| c.to_ascii_uppercase().starts_with("AUTH")) {
            return Err(format!("{} offers no AUTH (after STARTTLS: {upgrade})", cfg.server));
        }
        let token = base64(format!("\0{user}\0{pass}").as_bytes());
        command(&mut conn, &format!("AUTH PLAIN {token}"), &[235])?;
    }
    command(&mut conn, &format!("MAIL FROM:<{}>", cfg.from), &[250])?;
    command(&mut conn, &format!("RCPT TO:<{to}>"), &[250, 251])?;
    command(&mut conn, "DATA", &[354])?;
    let date = crate::logs::time::format_ms(crate::logs::time::now_ms());
    let mut msg = format!(
        "From: {}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Mailer: instantops\r\n\r\n",
        cfg.from,
        subject.replace(['\r', '\n'], " ")
    );
    for line in body.lines() {
        // Dot-stuffing (RFC 5321 4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    conn.write_all(msg.as_bytes()).map_err(|e| format!("SMTP write: {e}"))?;
    let (code, text) = reply(&mut conn)?;
    if code != 250 {
        return Err(format!("SMTP message refused: {code} {}", text.join(" ")));
    }
    let _ = command(&mut conn, "QUIT", &[221]);
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy"), ("\0u\0p", "AHUAcA==")] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
