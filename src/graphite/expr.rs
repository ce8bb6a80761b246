//! The target grammar of graphite-web (`render/grammar_unsafe.py`): paths with
//! globs, calls with positional then keyword arguments, numbers, quoted strings
//! (kept raw, as graphite-web keeps them), booleans, `none`, `inf`, and pipes
//! (`a.b | scale(2) | alias("x")` is `alias(scale(a.b,2),"x")`).

/// A parsed target or argument expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path expression, escapes removed (`a\,b` is `a,b`).
    Path(String),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
    pub kwargs: Vec<(String, Arg)>,
    /// The call's source text (`seriesByTag` names its series by it).
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Float(f64),
    /// The text between the quotes, backslashes kept.
    Str(String),
    Bool(bool),
    None,
    Expr(Expr),
}

/// A syntax error at a byte position of the target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid target {target:?}: {message} at position {pos}")]
pub struct ParseError {
    pub target: String,
    pub pos: usize,
    pub message: String,
}

/// Characters that end a path element unless escaped by a backslash.
const SYMBOLS: &str = "(){},.'\"\\|";

/// Parses one whole target.
pub fn parse(target: &str) -> Result<Expr, ParseError> {
    let mut p = Parser { s: target, pos: 0, depth: 0 };
    let expr = p.expression()?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.error(format!("unexpected {:?}", p.rest().chars().next().unwrap_or(' '))));
    }
    Ok(expr)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError { target: self.s.to_string(), pos: self.pos, message: message.into() }
    }

    fn skip_ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.pos += n;
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*` at the cursor, without consuming it.
    fn identifier(&self) -> Option<&str> {
        let r = self.rest();
        let first = r.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let len = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(r.len());
        Some(&r[..len])
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH}")));
        }
        self.skip_ws();
        let mut expr = match self.call()? {
            Some(call) => Expr::Call(call),
            None => Expr::Path(self.path()?),
        };
        loop {
            let save = self.pos;
            while self.eat(' ') {}
            if !self.eat('|') {
                self.pos = save;
                break;
            }
            while self.eat(' ') {}
            let Some(mut call) = self.call()? else {
                return Err(self.error("a function call must follow '|'"));
            };
            call.args.insert(0, Arg::Expr(expr));
            expr = Expr::Call(call);
        }
        self.depth -= 1;
        Ok(expr)
    }

    /// A call at the cursor, or `None` (cursor unmoved) when there is none.
    fn call(&mut self) -> Result<Option<Call>, ParseError> {
        let start = self.pos;
        let Some(name) = self.identifier() else { return Ok(None) };
        let name = name.to_string();
        if !self.rest()[name.len()..].starts_with('(') {
            return Ok(None);
        }
        self.pos += name.len() + 1;
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        self.skip_ws();
        if !self.eat(')') {
            loop {
                self.skip_ws();
                if let Some(key) = self.keyword() {
                    let value = self.arg()?;
                    kwargs.push((key, value));
                } else if !kwargs.is_empty() {
                    return Err(self.error("positional argument after a keyword argument"));
                } else {
                    args.push(self.arg()?);
                }
                self.skip_ws();
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(match self.peek() {
                        Some(c) => self.error(format!("expected ',' or ')' in the arguments of {name}, found {c:?}")),
                        None => self.error(format!("the arguments of {name} are not closed by ')'")),
                    });
                }
            }
        }
        Ok(Some(Call { name, args, kwargs, raw: self.s[start..self.pos].to_string() }))
    }

    /// `name =` at the cursor: consumes it and returns the name.
    fn keyword(&mut self) -> Option<String> {
        let name = self.identifier()?.to_string();
        let after = &self.rest()[name.len()..];
        let trimmed = after.trim_start();
        if trimmed.starts_with('=') {
            self.pos += name.len() + (after.len() - trimmed.len()) + 1;
            self.skip_ws();
            Some(name)
        } else {
            None
        }
    }

    fn arg(&mut self) -> Result<Arg, ParseError> {
        self.skip_ws();
        // Keywords, as pyparsing's CaselessKeyword: not followed by an identifier character.
        if let Some(word) = self.identifier() {
            let lower = word.to_ascii_lowercase();
            let value = match lower.as_str() {
                "true" => Some(Arg::Bool(true)),
                "false" => Some(Arg::Bool(false)),
                "none" => Some(Arg::None),
                "inf" => Some(Arg::Float(f64::INFINITY)),
                _ => None,
            };
            if let Some(value) = value
                && !self.rest()[word.len()..].starts_with('$')
            {
                self.pos += word.len();
                return Ok(value);
            }
        }
        if let Some(number) = self.number() {
            return Ok(number);
        }
        if let Some(q) = self.peek().filter(|c| *c == '\'' || *c == '"') {
            let body_start = self.pos + 1;
            let mut chars = self.s[body_start..].char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    let text = self.s[body_start..body_start + i].to_string();
                    self.pos = body_start + i + 1;
                    return Ok(Arg::Str(text));
                }
            }
            return Err(self.error("unterminated string"));
        }
        Ok(Arg::Expr(self.expression()?))
    }

    /// `-?\d+(\.\d+)?([eE]-?\d+)?` followed by `,`, `)` or the end.
    fn number(&mut self) -> Option<Arg> {
        let r = self.rest();
        let b = r.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'-'));
        let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let int_len = digits(i);
        if int_len == 0 {
            return None;
        }
        i += int_len;
        let mut float = false;
        if b.get(i) == Some(&b'.') && digits(i + 1) > 0 {
            i += 1 + digits(i + 1);
            float = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let sign = usize::from(b.get(i + 1) == Some(&b'-'));
            let exp = digits(i + 1 + sign);
            if exp > 0 {
                i += 1 + sign + exp;
                float = true;
            }
        }
        let after = r[i..].trim_start();
        if !(after.is_empty() || after.starts_with(',') || after.starts_with(')')) {
            return None;
        }
        let text = &r[..i];
        let arg = if float {
            Arg::Float(text.parse().ok()?)
        } else {
            text.parse().map(Arg::Int).or_else(|_| text.parse().map(Arg::Float)).ok()?
        };
        self.pos += i;
        Some(arg)
    }

    /// Dot-separated elements of metric characters, escapes and `{a,b}`.
    fn path(&mut self) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            let element_start = out.len();
            loop {
                match self.peek() {
                    Some('\\') => {
                        let next = self.rest()[1..].chars().next();
                        match next {
                            Some(c) if SYMBOLS.contains(c) || c == '=' => {
                                out.push(c);
                                self.pos += 1 + c.len_utf8();
                            }
                            _ => return Err(self.error("a backslash in a path must escape one of (){},.'\"\\|=")),
                        }
                    }
                    Some('{') => {
                        let close = self.rest().find('}').ok_or_else(|| self.error("'{' without a closing '}'"))?;
                        let inner = &self.rest()[1..close];
                        if inner.is_empty()
                            || inner.contains(['.', '(', ')', '{', '\'', '"', '|'])
                            || inner.chars().any(char::is_whitespace)
                        {
                            return Err(self.error("bad alternatives in '{...}'"));
                        }
                        out.push_str(&self.rest()[..=close]);
                        self.pos += close + 1;
                    }
                    Some(c) if !c.is_whitespace() && !c.is_control() && !SYMBOLS.contains(c) => {
                        out.push(c);
                        self.pos += c.len_utf8();
                    }
                    _ => break,
                }
            }
            if out.len() == element_start {
                return Err(match self.peek() {
                    Some(c) => self.error(format!("expected a path or function, found {c:?}")),
                    None => self.error("expected a path or function, found the end"),
                });
            }
            // A dot continues the path only when another element follows.
            let next = self.rest().chars().nth(1);
            if self.peek() == Some('.') && next.is_some_and(|c| c == '\\' || c == '{' || (!c.is_whitespace() && !SYMBOLS.contains(c))) {
                out.push('.');
                self.pos += 1;
            } else {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Arg {
        Arg::Expr(Expr::Path(s.into()))
    }

    fn call(e: &Expr) -> &Call {
        match e {
            Expr::Call(c) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        for p in [
            "a.b.c",
            "a.*.c",
            "a.b?",
            "a.[0-9]x",
            "a.{b,c}.d",
            "a.{b,c}{1,2}",
            "a.b*c*",
            "a.[!b]",
            "servers.web-01:80.cpu",
            "1abc",
            "a;b=c",
        ] {
            assert_eq!(parse(p), Ok(Expr::Path(p.into())), "{p}");
        }
        assert_eq!(parse(r"a\,b.c"), Ok(Expr::Path("a,b.c".into())));
        assert_eq!(parse("  a.b  "), Ok(Expr::Path("a.b".into())));
    }

    #[test]
    fn calls() {
        let e = parse("sumSeries(a.*, b.c)").unwrap();
        let c = call(&e);
        assert_eq!(c.name, "sumSeries");
        assert_eq!(c.args, vec![path("a.*"), path("b.c")]);
        assert_eq!(c.raw, "sumSeries(a.*, b.c)");

        let e = parse("f(x, 1, -2.5, 1e3, key=3, other='v')").unwrap();
        let c = call(&e);
        assert_eq!(c.args[1], Arg::Int(1));
        assert_eq!(c.args[2], Arg::Float(-2.5));
        assert_eq!(c.args[3], Arg::Float(1000.0));
        assert_eq!(c.kwargs, vec![("key".into(), Arg::Int(3)), ("other".into(), Arg::Str("v".into()))]);

        let e = parse("f(\"a\\\"b\", true, False, none, inf, 1abc)").unwrap();
        let c = call(&e);
        assert_eq!(
            c.args,
            vec![Arg::Str("a\\\"b".into()), Arg::Bool(true), Arg::Bool(false), Arg::None, Arg::Float(f64::INFINITY), path("1abc")]
        );
        assert_eq!(call(&parse("f()").unwrap()).args, vec![]);
        assert_eq!(call(&parse("seriesByTag('name=a', 'b=~c')").unwrap()).args, vec![Arg::Str("name=a".into()), Arg::Str("b=~c".into())]);
    }

    #[test]
    fn pipes_equal_nesting() {
        let nested = parse("alias(scale(a.b,2),'x')").unwrap();
        for form in ["a.b|scale(2)|alias('x')", "a.b | scale(2) | alias('x')", "scale(a.b,2)|alias('x')", "alias(a.b|scale(2),'x')"] {
            let mut piped = parse(form).unwrap();
            strip_raw(&mut piped);
            let mut want = nested.clone();
            strip_raw(&mut want);
            assert_eq!(piped, want, "{form}");
        }
    }

    fn strip_raw(e: &mut Expr) {
        if let Expr::Call(c) = e {
            c.raw.clear();
            for a in &mut c.args {
                if let Arg::Expr(e) = a {
                    strip_raw(e);
                }
            }
        }
    }

    #[test]
    fn errors() {
        let err = |s: &str, pos: usize, fragment: &str| {
            let e = parse(s).expect_err(s);
            assert_eq!(e.pos, pos, "{s}: {e}");
            assert!(e.message.contains(fragment), "{s}: {e}");
        };
        err("sumSeries(a.b", 13, "not closed");
        err("sumSeries(a.b c)", 14, "expected ',' or ')'");
        err("f(a=1, b)", 7, "positional argument after a keyword");
        err("a.b)", 3, "unexpected ')'");
        err("f('abc)", 2, "unterminated string");
        err("", 0, "found the end");
        err("a.b|c", 4, "must follow '|'");
        err(&format!("{}a{}", "f(".repeat(100), ")".repeat(100)), 128, "nesting deeper");
    }
}
