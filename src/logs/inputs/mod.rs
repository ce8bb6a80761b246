//! The wire formats of the log inputs, one file per protocol: pure decoders,
//! bytes in and fields or a small error out, no I/O. The listeners that own
//! sockets and hand events on live in `logs::listener`.

pub mod bulk;
pub mod gelf;
pub mod resp;
pub mod syslog;
