//! The Redis side of the Beaver transport (compat-spec 6.7 b): enough RESP2 for
//! Beaver, redis-py and the Logstash redis output to push log lines at
//! instantops as if it were Redis on 6379. Pure: [`parse`] cuts one command off
//! the front of a connection's buffer, [`dispatch`] runs it and appends its
//! reply; pushed values leave through the [`Sink`] trait.
//!
//! Framing follows Redis 7 `networking.c`: a buffer starting with `*` is a
//! multibulk array of `$` bulk strings, anything else is an inline command
//! split like `sdssplitargs` (double quotes with `\xHH` escapes, single
//! quotes). An empty command (`*0`, `*-1`, a blank inline line) parses as no
//! arguments and gets no reply, as in Redis. Replies and error texts are
//! Redis's own, word for word, because clients show them to users and some
//! match on them (`NOAUTH`, `WRONGPASS`, `unknown command`); that is why the
//! error messages here start with a capital, unlike the rest of the crate.
//!
//! Deliberate leniencies, all for clients that connect to "a Redis":
//! - `AUTH` when no password is configured answers `+OK` (Redis: an error);
//!   the user name of `AUTH user pass` is ignored, only the password counts;
//! - `CLIENT` subcommands other than `GETNAME`, `ID` and `INFO` answer `+OK`;
//! - `LPUSH` hands its values to the sink in the order sent, like `RPUSH`
//!   (instantops is the only reader of the "list");
//! - `EXISTS`, `LLEN` and `DBSIZE` answer `:0`: nothing is ever stored.
//!
//! Not here: sockets, timeouts and connection limits (the listener), what a
//! pushed value means (the sink decodes Beaver's JSON), and the client side of
//! Redis (`[[logs.redis]]` uses the `redis` crate).

use std::io::Write as _;

/// The longest `*<count>\r` or `$<len>\r` line worth waiting for: the type
/// byte, a sign, the 19 digits of an `i64` and the `\r` make 22 bytes, so a
/// longer line can only be garbage and is refused without reading further
/// (Redis waits up to 64 KiB before saying the same).
const LENGTH_LINE_MAX: usize = 32;

/// The longest inline command line (Redis's `PROTO_INLINE_MAX_SIZE`). It also
/// bounds the rescan when an inline command arrives byte by byte.
const INLINE_MAX: usize = 64 * 1024;

/// The most bytes of a command name or of its arguments quoted in an
/// `unknown command` error (Redis's `%.128s`).
const QUOTE_LIMIT: usize = 128;

/// The largest multibulk count Redis accepts (`INT_MAX`).
const MULTIBULK_MAX: i64 = i32::MAX as i64;

/// The databases `SELECT` accepts: Redis's default `databases 16`.
const DATABASES: i64 = 16;

/// Why a connection's bytes are not a command. The caller replies with
/// [`error`] and closes the connection: after any of these the stream is out
/// of step. The texts are Redis's (`-ERR Protocol error: ...`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RespError {
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    #[error("Protocol error: too big mbulk count string")]
    MultibulkLine,
    #[error("Protocol error: too many arguments: {count} (the limit is {max})")]
    TooManyArgs { count: i64, max: usize },
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0).escape_default())]
    ExpectedBulk(u8),
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    #[error("Protocol error: too big bulk count string")]
    BulkLine,
    #[error("Protocol error: invalid bulk length {len} (the limit is {max} bytes)")]
    BulkTooBig { len: i64, max: usize },
    #[error("Protocol error: expected '\\r\\n' after a bulk string")]
    BulkEnd,
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// One command and the bytes it took, or `None` while it is incomplete.
type Parsed = Option<(Vec<Vec<u8>>, usize)>;

/// Parses one command at the start of `buf`: a RESP array of bulk strings
/// (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`) or an inline command (`PING\r\n`,
/// space-separated, quotes allowed). `Ok(None)`: incomplete, read more.
/// `Ok(Some((args, consumed)))`: `args` is empty for an empty command, which
/// Redis skips. `max_arg` bounds each argument's bytes and `max_args` their
/// count. Linear in the bytes looked at; bulk payloads are not scanned until
/// the whole command is there, so a command arriving byte by byte costs
/// little per call.
pub fn parse(buf: &[u8], max_arg: usize, max_args: usize) -> Result<Parsed, RespError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => multibulk(buf, max_arg, max_args),
        Some(_) => inline(buf, max_arg, max_args),
    }
}

/// A multibulk command: first walked without copying to find its end, then,
/// once complete, walked again to copy its arguments.
fn multibulk(buf: &[u8], max_arg: usize, max_args: usize) -> Result<Parsed, RespError> {
    let Some(consumed) = walk_multibulk(buf, max_arg, max_args, &mut |_| {})? else {
        return Ok(None);
    };
    let mut args = Vec::new();
    walk_multibulk(buf, max_arg, max_args, &mut |arg| args.push(arg.to_vec()))?;
    Ok(Some((args, consumed)))
}

/// Checks a multibulk command, handing each argument to `each`; the bytes it
/// takes, or `None` if it is incomplete.
fn walk_multibulk(buf: &[u8], max_arg: usize, max_args: usize, each: &mut dyn FnMut(&[u8])) -> Result<Option<usize>, RespError> {
    let (digits, mut pos) = match length_line(buf, 0) {
        Line::Incomplete => return Ok(None),
        Line::TooLong => return Err(RespError::MultibulkLine),
        Line::Malformed => return Err(RespError::MultibulkLength),
        Line::Done(digits, next) => (digits, next),
    };
    let count = parse_int(digits).ok_or(RespError::MultibulkLength)?;
    if count > MULTIBULK_MAX {
        return Err(RespError::MultibulkLength);
    }
    if usize::try_from(count).is_ok_and(|n| n > max_args) {
        return Err(RespError::TooManyArgs { count, max: max_args });
    }
    for _ in 0..count.max(0) {
        let Some((arg, next)) = bulk(buf, pos, max_arg)? else {
            return Ok(None);
        };
        each(arg);
        pos = next;
    }
    Ok(Some(pos))
}

/// One `$<len>\r\n<bytes>\r\n` at `pos`, and where the next one starts.
fn bulk(buf: &[u8], pos: usize, max_arg: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    match buf.get(pos) {
        None => return Ok(None),
        Some(b'$') => {}
        Some(&other) => return Err(RespError::ExpectedBulk(other)),
    }
    let (digits, start) = match length_line(buf, pos) {
        Line::Incomplete => return Ok(None),
        Line::TooLong => return Err(RespError::BulkLine),
        Line::Malformed => return Err(RespError::BulkLength),
        Line::Done(digits, next) => (digits, next),
    };
    let len = parse_int(digits).ok_or(RespError::BulkLength)?;
    let size = usize::try_from(len).map_err(|_| RespError::BulkLength)?;
    if size > max_arg {
        return Err(RespError::BulkTooBig { len, max: max_arg });
    }
    let end = start.saturating_add(size);
    let Some(terminator) = buf.get(end..end.saturating_add(2)) else {
        return Ok(None);
    };
    if terminator != b"\r\n" {
        return Err(RespError::BulkEnd);
    }
    Ok(Some((&buf[start..end], end + 2)))
}

/// A `*<n>\r\n` or `$<n>\r\n` line, seen from its type byte.
enum Line<'a> {
    Incomplete,
    TooLong,
    /// A `\r` not followed by `\n`.
    Malformed,
    /// The digits and where the line's successor starts.
    Done(&'a [u8], usize),
}

fn length_line(buf: &[u8], pos: usize) -> Line<'_> {
    let rest = buf.get(pos + 1..).unwrap_or_default();
    let window = &rest[..rest.len().min(LENGTH_LINE_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if rest.len() >= LENGTH_LINE_MAX { Line::TooLong } else { Line::Incomplete };
    };
    match rest.get(cr + 1) {
        None => Line::Incomplete,
        Some(b'\n') => Line::Done(&rest[..cr], pos + 1 + cr + 2),
        Some(_) => Line::Malformed,
    }
}

/// A decimal integer as Redis's `string2ll` reads it: an optional `-`, no
/// `+`, no leading zeros, no spaces.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulated below zero so that i64::MIN fits.
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// An inline command: one line up to `\n` (a `\r` before it is dropped).
fn inline(buf: &[u8], max_arg: usize, max_args: usize) -> Result<Parsed, RespError> {
    let window = &buf[..buf.len().min(INLINE_MAX + 1)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX { Err(RespError::InlineTooBig) } else { Ok(None) };
    };
    let line = &buf[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let args = split_args(line, max_arg, max_args)?;
    Ok(Some((args, newline + 1)))
}

/// Splits an inline line into arguments as Redis's `sdssplitargs` does.
fn split_args(line: &[u8], max_arg: usize, max_args: usize) -> Result<Vec<Vec<u8>>, RespError> {
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|&b| is_space(b)) {
            pos += 1;
        }
        if pos >= line.len() {
            return Ok(args);
        }
        let (arg, next) = one_arg(line, pos)?;
        if arg.len() > max_arg {
            let len = i64::try_from(arg.len()).unwrap_or(i64::MAX);
            return Err(RespError::BulkTooBig { len, max: max_arg });
        }
        if args.len() >= max_args {
            let count = i64::try_from(args.len() + 1).unwrap_or(i64::MAX);
            return Err(RespError::TooManyArgs { count, max: max_args });
        }
        args.push(arg);
        pos = next;
    }
}

/// C's `isspace`, which `sdssplitargs` skips between arguments.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// One argument from `pos`; a quote may open mid-argument (`a"b c"` is `ab c`).
fn one_arg(line: &[u8], mut pos: usize) -> Result<(Vec<u8>, usize), RespError> {
    let mut arg = Vec::new();
    while let Some(&b) = line.get(pos) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => break,
            b'"' => return double_quoted(line, pos + 1, arg),
            b'\'' => return single_quoted(line, pos + 1, arg),
            _ => arg.push(b),
        }
        pos += 1;
    }
    Ok((arg, pos))
}

/// The rest of a `"..."` argument: `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and
/// `\<any>` escapes; the closing quote must end the argument.
fn double_quoted(line: &[u8], mut pos: usize, mut arg: Vec<u8>) -> Result<(Vec<u8>, usize), RespError> {
    loop {
        match line.get(pos..) {
            None | Some([]) => return Err(RespError::UnbalancedQuotes),
            Some([b'\\', first, tail @ ..]) => {
                let (byte, used) = escape(*first, tail);
                arg.push(byte);
                pos += 1 + used;
            }
            Some([b'"', ..]) => return closing_quote(line, pos, arg),
            Some([b, ..]) => {
                arg.push(*b);
                pos += 1;
            }
        }
    }
}

/// The rest of a `'...'` argument: only `\'` is an escape.
fn single_quoted(line: &[u8], mut pos: usize, mut arg: Vec<u8>) -> Result<(Vec<u8>, usize), RespError> {
    loop {
        match line.get(pos..) {
            None | Some([]) => return Err(RespError::UnbalancedQuotes),
            Some([b'\\', b'\'', ..]) => {
                arg.push(b'\'');
                pos += 2;
            }
            Some([b'\'', ..]) => return closing_quote(line, pos, arg),
            Some([b, ..]) => {
                arg.push(*b);
                pos += 1;
            }
        }
    }
}

/// A closing quote at `pos` ends the argument only before a space or the end.
fn closing_quote(line: &[u8], pos: usize, arg: Vec<u8>) -> Result<(Vec<u8>, usize), RespError> {
    match line.get(pos + 1) {
        Some(&b) if !is_space(b) => Err(RespError::UnbalancedQuotes),
        _ => Ok((arg, pos + 1)),
    }
}

/// The byte an escape inside double quotes stands for (`first` follows the
/// backslash) and how many bytes after the backslash it takes.
fn escape(first: u8, tail: &[u8]) -> (u8, usize) {
    match (first, tail) {
        (b'x', [hi, lo, ..]) => hex_pair(*hi, *lo).map_or((b'x', 1), |byte| (byte, 3)),
        _ => (unescape(first), 1),
    }
}

/// The byte two hex digits spell, as in `"\x41"`.
fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    u8::try_from(digit(hi)? * 16 + digit(lo)?).ok()
}

fn unescape(b: u8) -> u8 {
    match b {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    }
}

/// Where pushed values go: the values of one `RPUSH`/`LPUSH` (or the message
/// of one `PUBLISH`) under their key or channel.
pub trait Sink {
    /// Takes the values and returns how many were accepted once they are
    /// durable, or a message (e.g. "overloaded, retry") that the client gets
    /// as `-ERR <message>`.
    fn push(&mut self, key: &[u8], values: &[Vec<u8>]) -> Result<u64, String>;
}

/// Per-connection state.
pub struct Session {
    /// The one password `AUTH` must give; `None` (or empty, as Redis's
    /// `requirepass ""`) lets everyone in.
    password: Option<String>,
    authenticated: bool,
    /// What `SELECT` chose; only reported back, values land in one place.
    db: i64,
    /// What `CLIENT SETNAME` set.
    name: Option<Vec<u8>>,
}

impl Session {
    pub fn new(password: Option<String>) -> Session {
        let password = password.filter(|p| !p.is_empty());
        Session { authenticated: password.is_none(), password, db: 0, name: None }
    }
}

/// What the connection does after the reply.
#[derive(Debug, PartialEq)]
pub enum After {
    Continue,
    Close,
}

/// What a command does.
#[derive(Clone, Copy)]
enum Kind {
    Ping,
    Auth,
    Select,
    Echo,
    Quit,
    Client,
    Info,
    Command,
    Push,
    Publish,
    Zero,
    Hello,
}

/// A command as Redis's command table describes it.
struct Spec {
    /// Lowercase, as Redis names it in arity errors.
    name: &'static str,
    /// Redis's convention: `n` exactly n arguments (the name included), `-n`
    /// at least n.
    arity: i32,
    /// Allowed before `AUTH` (Redis's `NO_AUTH` flag).
    no_auth: bool,
    kind: Kind,
}

const fn spec(name: &'static str, arity: i32, kind: Kind) -> Spec {
    Spec { name, arity, no_auth: false, kind }
}

const COMMANDS: &[Spec] = &[
    spec("rpush", -3, Kind::Push),
    spec("lpush", -3, Kind::Push),
    spec("rpushx", -3, Kind::Push),
    spec("lpushx", -3, Kind::Push),
    spec("publish", 3, Kind::Publish),
    spec("ping", -1, Kind::Ping),
    Spec { no_auth: true, ..spec("auth", -2, Kind::Auth) },
    Spec { no_auth: true, ..spec("quit", -1, Kind::Quit) },
    spec("select", 2, Kind::Select),
    spec("echo", 2, Kind::Echo),
    spec("client", -2, Kind::Client),
    spec("info", -1, Kind::Info),
    spec("command", -1, Kind::Command),
    spec("exists", -2, Kind::Zero),
    spec("llen", 2, Kind::Zero),
    spec("dbsize", 1, Kind::Zero),
    Spec { no_auth: true, ..spec("hello", -1, Kind::Hello) },
];

/// `CLIENT` subcommands whose arity is checked, as `client|<name>`.
const CLIENT_ARITY: &[(&str, usize)] = &[("setname", 3), ("getname", 2), ("id", 2), ("setinfo", 4), ("info", 2)];

/// The `INFO` reply: enough for clients that check the server's version or
/// role. 7.2.0 is the Redis whose behaviour this module copies.
const INFO: &str = concat!(
    "# Server\r\n",
    "redis_version:7.2.0\r\n",
    "redis_git_sha1:00000000\r\n",
    "redis_mode:standalone\r\n",
    "os:instantops\r\n",
    "arch_bits:64\r\n",
    "instantops_version:",
    env!("CARGO_PKG_VERSION"),
    "\r\n",
    "\r\n# Replication\r\n",
    "role:master\r\n",
    "connected_slaves:0\r\n",
    "\r\n# Keyspace\r\n",
);

const NOAUTH: &str = "-NOAUTH Authentication required.";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.";

/// Runs one command, appending its reply to `out`. An empty command gets no
/// reply. As in Redis, an unknown command or a wrong argument count is
/// reported before a missing `AUTH`.
pub fn dispatch(session: &mut Session, args: &[Vec<u8>], sink: &mut dyn Sink, out: &mut Vec<u8>) -> After {
    let Some(name) = args.first() else {
        return After::Continue;
    };
    let Some(spec) = COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name)) else {
        unknown_command(out, args);
        return After::Continue;
    };
    // PING takes at most one argument, which Redis checks before AUTH too.
    if !arity_ok(spec.arity, args.len()) || (spec.name == "ping" && args.len() > 2) {
        wrong_arity(out, spec.name);
        return After::Continue;
    }
    if !session.authenticated && !spec.no_auth {
        error(out, NOAUTH);
        return After::Continue;
    }
    run(spec.kind, session, args, sink, out)
}

fn run(kind: Kind, session: &mut Session, args: &[Vec<u8>], sink: &mut dyn Sink, out: &mut Vec<u8>) -> After {
    match kind {
        Kind::Ping => match args {
            [_] => simple(out, "PONG"),
            [_, message] => bulk_reply(out, message),
            _ => wrong_arity(out, "ping"),
        },
        Kind::Auth => auth(session, args, out),
        Kind::Select => select(session, &args[1], out),
        Kind::Echo => bulk_reply(out, &args[1]),
        Kind::Quit => {
            simple(out, "OK");
            return After::Close;
        }
        Kind::Client => client(session, args, out),
        Kind::Info => bulk_reply(out, INFO.as_bytes()),
        Kind::Command => out.extend_from_slice(b"*0\r\n"),
        Kind::Push => push(sink, &args[1], &args[2..], false, out),
        Kind::Publish => push(sink, &args[1], &args[2..], true, out),
        Kind::Zero => integer(out, 0),
        Kind::Hello => hello(session, args, out),
    }
    After::Continue
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let needed = usize::try_from(arity.unsigned_abs()).unwrap_or(usize::MAX);
    if arity >= 0 { argc == needed } else { argc >= needed }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: clients such as
/// redis-py 5+ open with `HELLO 3`. Both protocol versions are answered; the
/// replies this server sends (simple strings, errors, integers, bulk strings,
/// arrays) are the same in RESP2 and RESP3, except HELLO's own, a map in 3.
fn hello(session: &mut Session, args: &[Vec<u8>], out: &mut Vec<u8>) {
    let version = match args.get(1).map(|v| std::str::from_utf8(v).ok().and_then(|v| v.parse::<i64>().ok())) {
        None => 2,
        Some(Some(v @ (2 | 3))) => v,
        Some(Some(_)) => return error(out, "-NOPROTO unsupported protocol version"),
        Some(None) => return error(out, "Protocol version is not an integer or out of range"),
    };
    let mut i = 2;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        match (option.as_slice(), args.len() - i) {
            (b"auth", 3..) => {
                let given = &args[i + 2];
                match &session.password {
                    Some(p) if !same_secret(given, p.as_bytes()) => return error(out, WRONGPASS),
                    _ => session.authenticated = true,
                }
                i += 3;
            }
            (b"setname", 2..) => {
                session.name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => return error(out, &format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(&args[i]))),
        }
    }
    if !session.authenticated {
        return error(out, NOAUTH);
    }
    let fields: [(&str, Field); 7] = [
        ("server", Field::Text("redis")),
        ("version", Field::Text("7.2.0")),
        ("proto", Field::Int(version)),
        ("id", Field::Int(1)),
        ("mode", Field::Text("standalone")),
        ("role", Field::Text("master")),
        ("modules", Field::Empty),
    ];
    if version == 3 {
        out.extend_from_slice(format!("%{}\r\n", fields.len()).as_bytes());
    } else {
        out.extend_from_slice(format!("*{}\r\n", fields.len() * 2).as_bytes());
    }
    for (name, value) in fields {
        bulk_reply(out, name.as_bytes());
        match value {
            Field::Text(t) => bulk_reply(out, t.as_bytes()),
            Field::Int(n) => integer(out, n),
            Field::Empty => out.extend_from_slice(b"*0\r\n"),
        }
    }
}

enum Field {
    Text(&'static str),
    Int(i64),
    Empty,
}

/// `AUTH pass` or `AUTH user pass`.
fn auth(session: &mut Session, args: &[Vec<u8>], out: &mut Vec<u8>) {
    if args.len() > 3 {
        return error(out, "syntax error");
    }
    let Some(password) = &session.password else {
        return simple(out, "OK");
    };
    let given = &args[args.len() - 1];
    if same_secret(given, password.as_bytes()) {
        session.authenticated = true;
        simple(out, "OK");
    } else {
        error(out, WRONGPASS);
    }
}

/// Compares without stopping at the first difference, so the time taken does
/// not tell how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let diff = given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    diff == 0 && given.len() == expected.len()
}

fn select(session: &mut Session, index: &[u8], out: &mut Vec<u8>) {
    match parse_int(index).filter(|n| i32::try_from(*n).is_ok()) {
        None => error(out, "value is not an integer or out of range"),
        Some(db) if !(0..DATABASES).contains(&db) => error(out, "DB index is out of range"),
        Some(db) => {
            session.db = db;
            simple(out, "OK");
        }
    }
}

fn client(session: &mut Session, args: &[Vec<u8>], out: &mut Vec<u8>) {
    let sub = args[1].to_ascii_lowercase();
    let checked = CLIENT_ARITY.iter().find(|(name, _)| name.as_bytes() == sub.as_slice());
    if let Some((name, arity)) = checked
        && args.len() != *arity
    {
        return wrong_arity(out, &format!("client|{name}"));
    }
    match sub.as_slice() {
        b"setname" => set_name(session, &args[2], out),
        b"getname" => match &session.name {
            Some(name) => bulk_reply(out, name),
            None => null(out),
        },
        b"id" => integer(out, 1),
        b"info" => {
            let name = String::from_utf8_lossy(session.name.as_deref().unwrap_or_default());
            bulk_reply(out, format!("id=1 name={name} db={} resp=2\n", session.db).as_bytes());
        }
        _ => simple(out, "OK"),
    }
}

fn set_name(session: &mut Session, name: &[u8], out: &mut Vec<u8>) {
    if name.iter().any(|b| !(b'!'..=b'~').contains(b)) {
        return error(out, "Client names cannot contain spaces, newlines or special characters.");
    }
    session.name = (!name.is_empty()).then(|| name.to_vec());
    simple(out, "OK");
}

/// `RPUSH`-like commands answer how many values the sink took, `PUBLISH`
/// whether its one message reached a "subscriber".
fn push(sink: &mut dyn Sink, key: &[u8], values: &[Vec<u8>], publish: bool, out: &mut Vec<u8>) {
    match sink.push(key, values) {
        Ok(accepted) if publish => integer(out, i64::from(accepted > 0)),
        Ok(accepted) => integer(out, i64::try_from(accepted).unwrap_or(i64::MAX)),
        Err(message) => error_line(out, &[b"ERR ", message.as_bytes()]),
    }
}

/// Redis 7's wording, quoting at most about 128 bytes of the arguments.
fn unknown_command(out: &mut Vec<u8>, args: &[Vec<u8>]) {
    let mut quoted = Vec::new();
    for arg in &args[1..] {
        if quoted.len() >= QUOTE_LIMIT {
            break;
        }
        let room = QUOTE_LIMIT - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&arg[..arg.len().min(room)]);
        quoted.extend_from_slice(b"' ");
    }
    let name = &args[0][..args[0].len().min(QUOTE_LIMIT)];
    error_line(out, &[b"ERR unknown command '", name, b"', with args beginning with: ", &quoted]);
}

fn wrong_arity(out: &mut Vec<u8>, name: &str) {
    error(out, &format!("wrong number of arguments for '{name}' command"));
}

/// `+<text>\r\n`.
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An error reply. As Redis's `addReplyError`, a message that starts with `-`
/// carries its own code (`-NOAUTH ...`), any other gets `-ERR `; line breaks
/// become spaces so the reply stays one line.
pub fn error(out: &mut Vec<u8>, message: &str) {
    match message.strip_prefix('-') {
        Some(coded) => error_line(out, &[coded.as_bytes()]),
        None => error_line(out, &[b"ERR ", message.as_bytes()]),
    }
}

/// `-` and the parts, with `\r` and `\n` turned into spaces.
fn error_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.push(b'-');
    for part in parts {
        out.extend(part.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    }
    out.extend_from_slice(b"\r\n");
}

/// `:<n>\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    write!(out, ":{n}\r\n").expect("writing to a Vec cannot fail");
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn bulk_reply(out: &mut Vec<u8>, bytes: &[u8]) {
    write!(out, "${}\r\n", bytes.len()).expect("writing to a Vec cannot fail");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The null bulk string, `$-1\r\n`.
pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_ARG: usize = 1024;
    const MAX_ARGS: usize = 16;

    /// Records every push; answers with `reply` when set, else the count.
    #[derive(Default)]
    struct VecSink {
        pushed: Vec<(Vec<u8>, Vec<u8>)>,
        reply: Option<Result<u64, String>>,
    }

    impl Sink for VecSink {
        fn push(&mut self, key: &[u8], values: &[Vec<u8>]) -> Result<u64, String> {
            if let Some(reply) = &self.reply {
                return reply.clone();
            }
            self.pushed.extend(values.iter().map(|v| (key.to_vec(), v.clone())));
            Ok(values.len() as u64)
        }
    }

    /// What the listener does: parse and dispatch until the buffer runs dry
    /// or the connection closes. Returns the replies, whether it closed and
    /// how many bytes were left unparsed.
    fn serve(session: &mut Session, sink: &mut VecSink, input: &[u8]) -> (String, bool, usize) {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((args, used)) = parse(&input[pos..], MAX_ARG, MAX_ARGS).unwrap() {
            pos += used;
            if dispatch(session, &args, sink, &mut out) == After::Close {
                return (String::from_utf8(out).unwrap(), true, input.len() - pos);
            }
        }
        (String::from_utf8(out).unwrap(), false, input.len() - pos)
    }

    /// The replies to `input` on a fresh connection with `password`.
    fn check(password: Option<&str>, input: &str, expected: &str) {
        let mut session = Session::new(password.map(String::from));
        let (out, _, left) = serve(&mut session, &mut VecSink::default(), input.as_bytes());
        assert_eq!(out, expected, "input {input:?}");
        assert_eq!(left, 0, "input {input:?}");
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn encode(list: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", list.len()).into_bytes();
        for arg in list {
            bulk_reply(&mut out, arg);
        }
        out
    }

    fn check_parse(input: &str, expected: Result<Option<(&[&str], usize)>, RespError>) {
        let got = parse(input.as_bytes(), MAX_ARG, MAX_ARGS);
        let expected = expected.map(|o| o.map(|(a, n)| (args(a), n)));
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn parses_commands() {
        check_parse("*1\r\n$4\r\nPING\r\n", Ok(Some((&["PING"], 14))));
        check_parse("*2\r\n$4\r\nECHO\r\n$0\r\n\r\nrest", Ok(Some((&["ECHO", ""], 20))));
        check_parse("PING\r\n", Ok(Some((&["PING"], 6))));
        check_parse("PING\n*1", Ok(Some((&["PING"], 5))));
        check_parse("  ping   a\tb  \r\n", Ok(Some((&["ping", "a", "b"], 16))));
        check_parse(r#"SET "a b" 'c d'"#, Ok(None));
        check_parse("SET \"a b\" 'c d'\r\n", Ok(Some((&["SET", "a b", "c d"], 17))));
        check_parse("X \"\\x41\\n\\t\\\"q\\\\\"\r\n", Ok(Some((&["X", "A\n\t\"q\\"], 19))));
        check_parse("X \"\\xZZ\"\n", Ok(Some((&["X", "xZZ"], 9))));
        check_parse("X 'it\\'s' '\\n'\n", Ok(Some((&["X", "it's", "\\n"], 15))));
        check_parse("X a\"b c\"d\n", Err(RespError::UnbalancedQuotes));
        check_parse("X a\"b c\" d\n", Ok(Some((&["X", "ab c", "d"], 11))));
        check_parse("X \"\" ''\n", Ok(Some((&["X", "", ""], 8))));
        check_parse("X \"abc\n", Err(RespError::UnbalancedQuotes));
        check_parse("X 'abc\n", Err(RespError::UnbalancedQuotes));
        check_parse("X \"a\"b\n", Err(RespError::UnbalancedQuotes));
    }

    #[test]
    fn parses_empty_commands_as_no_arguments() {
        check_parse("*0\r\n", Ok(Some((&[], 4))));
        check_parse("*-1\r\nPING", Ok(Some((&[], 5))));
        check_parse("\r\n", Ok(Some((&[], 2))));
        check_parse("\n", Ok(Some((&[], 1))));
        check_parse("   \r\n", Ok(Some((&[], 5))));
        check(None, "\r\n\r\n*0\r\nPING\r\n\n", "+PONG\r\n");
    }

    #[test]
    fn waits_for_incomplete_commands() {
        for input in [
            "",
            "*",
            "*2",
            "*2\r",
            "*2\r\n",
            "*2\r\n$4",
            "*2\r\n$4\r\nECHO\r\n$2\r\nhi",
            "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r",
            "PING",
            "PING\r",
        ] {
            check_parse(input, Ok(None));
        }
    }

    #[test]
    fn refuses_bad_lengths() {
        use RespError::*;
        check_parse("*x\r\n", Err(MultibulkLength));
        check_parse("*\r\n", Err(MultibulkLength));
        check_parse("*01\r\n", Err(MultibulkLength));
        check_parse("*+1\r\n", Err(MultibulkLength));
        check_parse("*1 \r\n", Err(MultibulkLength));
        check_parse("*1\rx", Err(MultibulkLength));
        check_parse("*2147483648\r\n", Err(MultibulkLength));
        check_parse("*99999999999999999999\r\n", Err(MultibulkLength));
        check_parse("*17\r\n", Err(TooManyArgs { count: 17, max: MAX_ARGS }));
        check_parse(&format!("*{}", "1".repeat(40)), Err(MultibulkLine));
        check_parse("*1\r\n$-1\r\n", Err(BulkLength));
        check_parse("*1\r\n$abc\r\n", Err(BulkLength));
        check_parse("*1\r\n$-0\r\n", Err(BulkLength));
        check_parse("*1\r\n$\r\n", Err(BulkLength));
        check_parse("*1\r\n$1025\r\n", Err(BulkTooBig { len: 1025, max: MAX_ARG }));
        check_parse("*1\r\n$9223372036854775807\r\n", Err(BulkTooBig { len: i64::MAX, max: MAX_ARG }));
        check_parse("*1\r\n$9223372036854775808\r\n", Err(BulkLength));
        check_parse(&format!("*1\r\n${}", "1".repeat(40)), Err(BulkLine));
        check_parse("*1\r\n:1\r\n", Err(ExpectedBulk(b':')));
        check_parse("*1\r\n$2\r\nabcd\r\n", Err(BulkEnd));
    }

    #[test]
    fn bounds_arguments() {
        let big = format!("*2\r\n$4\r\nECHO\r\n${}\r\n{}\r\n", MAX_ARG + 1, "x".repeat(MAX_ARG + 1));
        check_parse(&big, Err(RespError::BulkTooBig { len: 1025, max: MAX_ARG }));
        let fits = format!("*2\r\n$4\r\nECHO\r\n${MAX_ARG}\r\n{}\r\n", "x".repeat(MAX_ARG));
        assert!(parse(fits.as_bytes(), MAX_ARG, MAX_ARGS).unwrap().is_some());
        check_parse(&format!("ECHO {}\n", "x".repeat(MAX_ARG + 1)), Err(RespError::BulkTooBig { len: 1025, max: MAX_ARG }));
        check_parse(&format!("{}\n", "a ".repeat(MAX_ARGS)), Ok(Some((&["a"; MAX_ARGS], MAX_ARGS * 2 + 1))));
        check_parse(&format!("{}\n", "a ".repeat(MAX_ARGS + 1)), Err(RespError::TooManyArgs { count: 17, max: MAX_ARGS }));
        check_parse(&"x".repeat(INLINE_MAX), Ok(None));
        check_parse(&"x".repeat(INLINE_MAX + 1), Err(RespError::InlineTooBig));
    }

    #[test]
    fn error_messages_are_redis_ones() {
        assert_eq!(RespError::BulkLength.to_string(), "Protocol error: invalid bulk length");
        assert_eq!(RespError::ExpectedBulk(b'x').to_string(), "Protocol error: expected '$', got 'x'");
        assert_eq!(RespError::ExpectedBulk(b'\r').to_string(), "Protocol error: expected '$', got '\\r'");
        let mut out = Vec::new();
        error(&mut out, &RespError::UnbalancedQuotes.to_string());
        assert_eq!(out, b"-ERR Protocol error: unbalanced quotes in request\r\n");
    }

    fn beaver_stream(n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let events: Vec<Vec<u8>> = (0..n)
            .map(|i| format!(r#"{{"type": "", "tags": [], "@timestamp": "2024-01-01T00:00:00.{i:03}Z", "host": "h", "file": "/var/log/app.log", "message": "line {i}\r\nwith crlf", "@version": 1}}"#).into_bytes())
            .collect();
        let stream = events.iter().flat_map(|e| encode(&[b"RPUSH".to_vec(), b"logstash:beaver".to_vec(), e.clone()])).collect();
        (stream, events)
    }

    #[test]
    fn pipelined_rpush_gets_every_reply_in_order() {
        let (stream, events) = beaver_stream(50);
        let mut sink = VecSink::default();
        let (out, closed, left) = serve(&mut Session::new(None), &mut sink, &stream);
        assert_eq!(out, ":1\r\n".repeat(50));
        assert!(!closed);
        assert_eq!(left, 0);
        let expected: Vec<_> = events.into_iter().map(|e| (b"logstash:beaver".to_vec(), e)).collect();
        assert_eq!(sink.pushed, expected);
    }

    #[test]
    fn byte_by_byte_gives_the_same_commands() {
        let (mut stream, _) = beaver_stream(5);
        stream.extend_from_slice(b"PING\r\n\r\nECHO \"a b\"\r\n*0\r\n");
        let mut whole = Vec::new();
        let mut pos = 0;
        while let Some((args, used)) = parse(&stream[pos..], MAX_ARG, MAX_ARGS).unwrap() {
            whole.push(args);
            pos += used;
        }
        assert_eq!(pos, stream.len());
        assert_eq!(whole.len(), 9);
        let mut trickled = Vec::new();
        let mut buf = Vec::new();
        for &b in &stream {
            buf.push(b);
            if let Some((args, used)) = parse(&buf, MAX_ARG, MAX_ARGS).unwrap() {
                assert_eq!(used, buf.len(), "a command ends exactly at the byte that completes it");
                trickled.push(args);
                buf.clear();
            }
        }
        assert_eq!(trickled, whole);
    }

    #[test]
    fn basic_commands() {
        check(None, "PING\r\n", "+PONG\r\n");
        check(None, "ping hello\r\n", "$5\r\nhello\r\n");
        check(None, "PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
        check(None, "*2\r\n$4\r\necho\r\n$3\r\na\r\n\r\n", "$3\r\na\r\n\r\n");
        check(None, "ECHO\r\n", "-ERR wrong number of arguments for 'echo' command\r\n");
        check(None, "COMMAND\r\nCOMMAND DOCS\r\n", "*0\r\n*0\r\n");
        check(None, "EXISTS k\r\nLLEN k\r\nDBSIZE\r\n", ":0\r\n:0\r\n:0\r\n");
        check(None, "RPUSH k\r\n", "-ERR wrong number of arguments for 'rpush' command\r\n");
        check(None, "lpushx k\r\n", "-ERR wrong number of arguments for 'lpushx' command\r\n");
        check(None, "PUBLISH ch\r\n", "-ERR wrong number of arguments for 'publish' command\r\n");
    }

    #[test]
    fn quit_closes_after_its_reply() {
        let mut session = Session::new(None);
        let (out, closed, left) = serve(&mut session, &mut VecSink::default(), b"QUIT\r\nPING\r\n");
        assert_eq!((out.as_str(), closed, left), ("+OK\r\n", true, 6));
    }

    #[test]
    fn select_bounds() {
        check(None, "SELECT 0\r\nSELECT 15\r\n", "+OK\r\n+OK\r\n");
        check(None, "SELECT 16\r\n", "-ERR DB index is out of range\r\n");
        check(None, "SELECT -1\r\n", "-ERR DB index is out of range\r\n");
        check(None, "SELECT x\r\n", "-ERR value is not an integer or out of range\r\n");
        check(None, "SELECT 01\r\n", "-ERR value is not an integer or out of range\r\n");
        check(None, "SELECT 2147483648\r\n", "-ERR value is not an integer or out of range\r\n");
        check(None, "SELECT\r\n", "-ERR wrong number of arguments for 'select' command\r\n");
        check(None, "SELECT 3\r\nCLIENT INFO\r\n", "+OK\r\n$23\r\nid=1 name= db=3 resp=2\n\r\n");
    }

    #[test]
    fn auth() {
        check(None, "AUTH anything\r\nAUTH user pass\r\n", "+OK\r\n+OK\r\n");
        check(None, "AUTH a b c\r\n", "-ERR syntax error\r\n");
        check(None, "AUTH\r\n", "-ERR wrong number of arguments for 'auth' command\r\n");
        check(Some(""), "PING\r\n", "+PONG\r\n");
        check(Some("s3cret"), "PING\r\n", "-NOAUTH Authentication required.\r\n");
        check(Some("s3cret"), "RPUSH k v\r\n", "-NOAUTH Authentication required.\r\n");
        check(Some("s3cret"), "SELECT 1\r\n", "-NOAUTH Authentication required.\r\n");
        check(
            Some("s3cret"),
            "AUTH wrong\r\nPING\r\n",
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n",
        );
        check(Some("s3cret"), "AUTH s3cre\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        check(Some("s3cret"), "AUTH s3cret\r\nPING\r\n", "+OK\r\n+PONG\r\n");
        check(Some("s3cret"), "AUTH default s3cret\r\nRPUSH k v\r\n", "+OK\r\n:1\r\n");
        check(Some("s3cret"), "QUIT\r\n", "+OK\r\n");
        // Unknown commands and arity errors come before NOAUTH, as in Redis.
        check(Some("s3cret"), "HELLO 3\r\n", "-NOAUTH Authentication required.\r\n");
        check(Some("s3cret"), "HELLO 3 AUTH default s3cret\r\nPING\r\n", &format!("{}+PONG\r\n", hello_map(3)));
        check(Some("s3cret"), "PING a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");
    }

    fn hello_map(version: i64) -> String {
        let head = if version == 3 { "%7\r\n".to_string() } else { "*14\r\n".to_string() };
        format!(
            "{head}$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:{version}\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
        )
    }

    #[test]
    fn unknown_commands() {
        check(None, "HELLO\r\n", &hello_map(2));
        check(None, "hello 3 AUTH u p\r\n", &hello_map(3));
        check(None, "HELLO 4\r\n", "-NOPROTO unsupported protocol version\r\n");
        check(None, "HELLO x\r\n", "-ERR Protocol version is not an integer or out of range\r\n");
        check(None, "*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n", "-ERR unknown command 'GET', with args beginning with: 'a  b' \r\n");
        let long = "y".repeat(200);
        let expected = format!("-ERR unknown command '{}', with args beginning with: '{}' \r\n", &long[..128], &long[..128]);
        check(None, &format!("{long} {long} z\r\n"), &expected);
        let expected = format!("-ERR unknown command 'x', with args beginning with: '{}' '{}' \r\n", "a".repeat(100), "b".repeat(25));
        check(None, &format!("x {} {} c\r\n", "a".repeat(100), "b".repeat(100)), &expected);
    }

    #[test]
    fn client_subcommands() {
        check(None, "CLIENT GETNAME\r\n", "$-1\r\n");
        check(None, "CLIENT SETNAME beaver\r\nclient getname\r\n", "+OK\r\n$6\r\nbeaver\r\n");
        check(None, "CLIENT SETNAME \"a b\"\r\n", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
        check(None, "CLIENT SETNAME\r\n", "-ERR wrong number of arguments for 'client|setname' command\r\n");
        check(None, "CLIENT SETINFO LIB-NAME redis-py\r\nCLIENT SETINFO LIB-VER 5.0.1\r\n", "+OK\r\n+OK\r\n");
        check(None, "CLIENT SETINFO LIB-NAME\r\n", "-ERR wrong number of arguments for 'client|setinfo' command\r\n");
        check(None, "CLIENT ID\r\nCLIENT NO-EVICT on\r\n", ":1\r\n+OK\r\n");
        check(None, "CLIENT\r\n", "-ERR wrong number of arguments for 'client' command\r\n");
    }

    #[test]
    fn info_names_a_redis_version() {
        let mut out = Vec::new();
        dispatch(&mut Session::new(None), &args(&["INFO", "server"]), &mut VecSink::default(), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("${}\r\n# Server\r\n", INFO.len())));
        assert!(text.contains("\r\nredis_version:7.2.0\r\n"));
        assert!(text.contains("\r\nredis_mode:standalone\r\n"));
    }

    #[test]
    fn push_and_publish_reach_the_sink() {
        let mut sink = VecSink::default();
        let mut session = Session::new(None);
        let input = b"RPUSH a 1 2 3\r\nLPUSH b 4\r\nRPUSHX c 5\r\nPUBLISH ch msg\r\n";
        let (out, _, _) = serve(&mut session, &mut sink, input);
        assert_eq!(out, ":3\r\n:1\r\n:1\r\n:1\r\n");
        let pushed: Vec<_> = sink.pushed.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        let expected: &[(&[u8], &[u8])] = &[(b"a", b"1"), (b"a", b"2"), (b"a", b"3"), (b"b", b"4"), (b"c", b"5"), (b"ch", b"msg")];
        assert_eq!(pushed, expected);
    }

    #[test]
    fn sink_answers_become_replies() {
        let cases: &[(Result<u64, String>, &str)] = &[
            (Ok(0), ":0\r\n:0\r\n"),
            (Ok(7), ":7\r\n:1\r\n"),
            (Ok(u64::MAX), ":9223372036854775807\r\n:1\r\n"),
            (Err("overloaded, retry".into()), "-ERR overloaded, retry\r\n-ERR overloaded, retry\r\n"),
            (Err("-BUSY\r\nx".into()), "-ERR -BUSY  x\r\n-ERR -BUSY  x\r\n"),
        ];
        for (reply, expected) in cases {
            let mut sink = VecSink { reply: Some(reply.clone()), ..VecSink::default() };
            let (out, _, _) = serve(&mut Session::new(None), &mut sink, b"RPUSH k a b\r\nPUBLISH ch m\r\n");
            assert_eq!(&out, expected);
        }
    }

    #[test]
    fn encoders() {
        let mut out = Vec::new();
        simple(&mut out, "OK");
        error(&mut out, "bad\r\nthing");
        error(&mut out, "-WRONGTYPE nope");
        integer(&mut out, -3);
        bulk_reply(&mut out, b"");
        null(&mut out);
        assert_eq!(out, b"+OK\r\n-ERR bad  thing\r\n-WRONGTYPE nope\r\n:-3\r\n$0\r\n\r\n$-1\r\n");
    }

    #[test]
    fn parse_int_is_string2ll() {
        for (s, n) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("42", Some(42)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775807", Some(i64::MAX)),
        ] {
            assert_eq!(parse_int(s.as_bytes()), n, "{s}");
        }
        for s in ["", "-", "-0", "00", "+1", " 1", "1 ", "1x", "9223372036854775808", "-9223372036854775809"] {
            assert_eq!(parse_int(s.as_bytes()), None, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn multibulk_round_trips(list in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..MAX_ARGS)) {
            let bytes = encode(&list);
            proptest::prop_assert_eq!(parse(&bytes, MAX_ARG, MAX_ARGS), Ok(Some((list, bytes.len()))));
        }

        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for end in 0..=bytes.len() {
                if let Ok(Some((args, used))) = parse(&bytes[..end], 8, 4) {
                    proptest::prop_assert!(used > 0 && used <= end);
                    let mut out = Vec::new();
                    dispatch(&mut Session::new(Some("p".into())), &args, &mut VecSink::default(), &mut out);
                }
            }
        }

        #[test]
        fn inline_text_parses_without_panic(line in "[ a-z\"'\\\\x0-9\t]{0,40}\r?\n") {
            if let Ok(Some((args, used))) = parse(line.as_bytes(), MAX_ARG, MAX_ARGS) {
                proptest::prop_assert_eq!(used, line.len());
                proptest::prop_assert!(args.len() <= line.len());
            }
        }
    }
}
