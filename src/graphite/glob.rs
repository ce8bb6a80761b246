//! Path globs as graphite-web's finders match them: a pattern is split on
//! dots, each node's `{a,b}` alternatives are expanded, and each variant is
//! matched with fnmatch (`*`, `?`, `[a-z]`, `[!x]`) against one node of a
//! name. No wildcard ever crosses a dot.

/// A compiled path pattern: per node, the fnmatch variants of its braces.
#[derive(Debug, Clone)]
pub struct Glob {
    nodes: Vec<Vec<Vec<Token>>>,
    literal: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Lit(char),
    Any,
    One,
    Class { negated: bool, items: Vec<(char, char)> },
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let nodes = pattern.split('.').map(|node| expand_braces(node).iter().map(|v| compile(v)).collect()).collect();
        let literal = !pattern.contains(['*', '?', '[', '{']);
        Glob { nodes, literal }
    }

    pub fn depth(&self) -> usize {
        self.nodes.len()
    }

    /// Whether node `i` of the pattern matches `node`.
    pub fn matches_node(&self, i: usize, node: &str) -> bool {
        let chars: Vec<char> = node.chars().collect();
        self.nodes.get(i).is_some_and(|variants| variants.iter().any(|v| fnmatch(v, &chars)))
    }

    /// Node `i`'s alternatives when every one is a plain name (`web01` or
    /// `{web01,web02}`): a finder looks those up instead of listing siblings.
    pub fn literal_variants(&self, i: usize) -> Option<Vec<String>> {
        self.nodes.get(i)?.iter().map(|v| v.iter().map(|t| if let Token::Lit(c) = t { Some(*c) } else { None }).collect()).collect()
    }

    /// For a dotted name: `Some(is_leaf)` when its first `depth` nodes match
    /// (a leaf when the name has exactly that many nodes, else a branch).
    #[cfg(test)]
    fn match_name(&self, name: &str) -> Option<bool> {
        let mut nodes = name.split('.');
        for i in 0..self.depth() {
            let node = nodes.next()?;
            if !self.matches_node(i, node) {
                return None;
            }
        }
        Some(nodes.next().is_none())
    }

    /// Whether the whole pattern is a literal path (no wildcard, no braces).
    pub fn is_literal(&self) -> bool {
        self.literal
    }
}

/// graphite-web's `expand_braces`: the last `{...}` group first, recursively.
fn expand_braces(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(s, &mut out, 0);
    out.sort();
    out.dedup();
    out
}

fn expand_into(s: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 16 || out.len() > 4096 {
        out.push(s.to_string());
        return;
    }
    // The last '{' that has a '}' after it, and the first '}' after that.
    let group = s.rmatch_indices('{').find_map(|(open, _)| s[open..].find('}').map(|close| (open, open + close)));
    match group {
        Some((open, close)) => {
            let inner = &s[open + 1..close];
            for alternative in inner.split(',') {
                expand_into(&format!("{}{}{}", &s[..open], alternative, &s[close + 1..]), out, depth + 1);
            }
        }
        None => out.push(s.to_string()),
    }
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if tokens.last() != Some(&Token::Any) {
                    tokens.push(Token::Any);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '[' => {
                // fnmatch: `[!...]` negates, a `]` right after `[` or `[!` is literal,
                // and a `[` with no closing `]` is a literal `[`.
                let mut j = i + 1;
                let negated = chars.get(j) == Some(&'!');
                if negated {
                    j += 1;
                }
                let body_start = j;
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    tokens.push(Token::Lit('['));
                    i += 1;
                    continue;
                }
                let body = &chars[body_start..j];
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        items.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                tokens.push(Token::Class { negated, items });
                i = j + 1;
            }
            c => {
                tokens.push(Token::Lit(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Glob matching with backtracking over the last `*` (linear in practice).
fn fnmatch(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        let step = match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, s));
                t += 1;
                continue;
            }
            Some(Token::One) => true,
            Some(Token::Lit(c)) => *c == text[s],
            Some(Token::Class { negated, items }) => items.iter().any(|&(lo, hi)| lo <= text[s] && text[s] <= hi) != *negated,
            None => false,
        };
        if step {
            t += 1;
            s += 1;
        } else if let Some((st, ss)) = star {
            t = st + 1;
            s = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matrix() {
        let m = |p: &str, name: &str| Glob::new(p).match_name(name);
        assert_eq!(m("a.*", "a.b"), Some(true));
        assert_eq!(m("a.*", "a.b.c"), Some(false), "a.* reaches a.b as a branch, never a.b.c as a leaf");
        assert_eq!(m("a.b?", "a.bc"), Some(true));
        assert_eq!(m("a.b?", "a.b"), None);
        assert_eq!(m("a.[0-9]x", "a.5x"), Some(true));
        assert_eq!(m("a.[0-9]x", "a.ax"), None);
        assert_eq!(m("a.{b,c}.d", "a.c.d"), Some(true));
        assert_eq!(m("a.{b,c}{1,2}", "a.c2"), Some(true));
        assert_eq!(m("a.{b,c}{1,2}", "a.c3"), None);
        assert_eq!(m("a.b*c*", "a.bxxcyy"), Some(true));
        assert_eq!(m("a.b*c*", "a.bxx"), None);
        assert_eq!(m("a.[!b]", "a.c"), Some(true));
        assert_eq!(m("a.[!b]", "a.b"), None);
        assert_eq!(m("a.[b", "a.[b"), Some(true));
        assert_eq!(m("*", "x"), Some(true));
        assert_eq!(m("*.*", "x"), None);
        assert_eq!(m("a.*-*", "a.web-01"), Some(true));
    }

    #[test]
    fn literals() {
        let g = Glob::new("servers.{web01,web02}.c[pP]u");
        assert_eq!(g.literal_variants(0), Some(vec!["servers".to_string()]));
        assert_eq!(g.literal_variants(1), Some(vec!["web01".to_string(), "web02".to_string()]));
        assert_eq!(g.literal_variants(2), None);
        assert!(Glob::new("a.b").is_literal());
        assert!(!Glob::new("a.{b}").is_literal());
    }

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a{b,c}d{e,f}"), vec!["abde", "abdf", "acde", "acdf"]);
        assert_eq!(expand_braces("{a,{b,c}}"), vec!["a", "b", "c"]);
        assert_eq!(expand_braces("plain"), vec!["plain"]);
    }
}
