//! Rich (boolean) dependencies: `(a or b)`, `(a and b)`, `(a if b)`, `(a if b else c)`, `(a unless b)`,
//! `(a unless b else c)`, `(a with b)`, `(a without b)`, nested with parentheses, as rpm's `rpmrichParse`
//! reads them (rpm `lib/rpmds.c`). A simple term is `name [op evr]`; a name may itself contain balanced
//! parentheses (`libc.so.6()(64bit)`).

use super::metadata::Dep;
use super::vercmp::{Evr, Op};
use super::Error;

/// A parsed rich dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    /// A simple dependency.
    Dep(Dep),
    /// All of them.
    And(Vec<Rich>),
    /// Any of them.
    Or(Vec<Rich>),
    /// One package satisfying all of them.
    With(Vec<Rich>),
    /// A package satisfying the first but not the second.
    Without(Box<Rich>, Box<Rich>),
    /// `(a if b [else c])`.
    If(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    /// `(a unless b [else c])`.
    Unless(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
}

/// Whether a dependency name is a rich dependency.
pub fn is_rich(name: &str) -> bool {
    name.starts_with('(')
}

/// Parses a rich dependency `(…)`.
pub fn parse(s: &str) -> Result<Rich, Error> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    p.ws();
    let r = p.group()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(Error::RichTrailing { dep: s.to_string() });
    }
    Ok(r)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, msg: &str) -> Error {
        Error::Rich {
            dep: String::from_utf8_lossy(self.s).into_owned(),
            message: msg.to_string(),
            offset: self.i,
        }
    }

    /// A token of non-space characters that stops at a `)` which closes nothing opened inside it.
    fn token(&mut self) -> &str {
        let start = self.i;
        let mut depth = 0i32;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace() || (c == b')' && depth == 0) {
                break;
            }
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                depth -= 1;
            }
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn peek_word(&mut self) -> String {
        let save = self.i;
        let w = self.token().to_string();
        self.i = save;
        w
    }

    /// `( term op term [op term]... )`
    fn group(&mut self) -> Result<Rich, Error> {
        if self.s.get(self.i) != Some(&b'(') {
            return Err(self.err("expected '('"));
        }
        self.i += 1;
        self.ws();
        let first = self.term()?;
        self.ws();
        if self.s.get(self.i) == Some(&b')') {
            self.i += 1;
            return Ok(first);
        }
        let op = self.token().to_string();
        self.ws();
        let second = self.term()?;
        self.ws();
        let r = match op.as_str() {
            "and" | "or" | "with" => {
                let mut items = vec![first, second];
                while self.peek_word() == op {
                    self.token();
                    self.ws();
                    items.push(self.term()?);
                    self.ws();
                }
                match op.as_str() {
                    "and" => Rich::And(items),
                    "or" => Rich::Or(items),
                    _ => Rich::With(items),
                }
            }
            "without" => Rich::Without(Box::new(first), Box::new(second)),
            "if" | "unless" => {
                let otherwise = if self.peek_word() == "else" {
                    self.token();
                    self.ws();
                    let t = self.term()?;
                    self.ws();
                    Some(Box::new(t))
                } else {
                    None
                };
                if op == "if" {
                    Rich::If(Box::new(first), Box::new(second), otherwise)
                } else {
                    Rich::Unless(Box::new(first), Box::new(second), otherwise)
                }
            }
            other => return Err(self.err(&format!("unknown operator '{other}'"))),
        };
        if self.s.get(self.i) != Some(&b')') {
            return Err(self.err("expected ')' (mixing operators needs parentheses)"));
        }
        self.i += 1;
        Ok(r)
    }

    /// A nested group or `name [op evr]`.
    fn term(&mut self) -> Result<Rich, Error> {
        if self.s.get(self.i) == Some(&b'(') {
            return self.group();
        }
        let name = self.token().to_string();
        if name.is_empty() {
            return Err(self.err("expected a dependency"));
        }
        self.ws();
        let save = self.i;
        let word = self.token().to_string();
        if let Some(op) = Op::from_symbol(&word) {
            self.ws();
            let evr = self.token().to_string();
            if evr.is_empty() {
                return Err(self.err(&format!("'{name} {word}' has no version")));
            }
            let evr = Evr::parse(&evr).map_err(|e| Error::RichVersion {
                dep: String::from_utf8_lossy(self.s).into_owned(),
                offset: self.i,
                evr: Box::new(e),
            })?;
            return Ok(Rich::Dep(Dep {
                name,
                range: Some((op, evr)),
            }));
        }
        self.i = save;
        Ok(Rich::Dep(Dep { name, range: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str) -> Rich {
        Rich::Dep(Dep {
            name: name.into(),
            range: None,
        })
    }

    #[test]
    fn parses_rpm_rich_forms() {
        assert_eq!(
            parse("(ebtables-legacy or iptables)").unwrap(),
            Rich::Or(vec![d("ebtables-legacy"), d("iptables")])
        );
        assert_eq!(
            parse("(a or b or libc.so.6()(64bit))").unwrap(),
            Rich::Or(vec![d("a"), d("b"), d("libc.so.6()(64bit)")])
        );
        let r = parse("(foo >= 1.2-3 and (bar if baz else qux))").unwrap();
        let Rich::And(items) = r else { panic!() };
        assert_eq!(
            items[0],
            Rich::Dep(Dep {
                name: "foo".into(),
                range: Some((Op::Ge, Evr::parse("1.2-3").unwrap()))
            })
        );
        assert_eq!(
            items[1],
            Rich::If(
                Box::new(d("bar")),
                Box::new(d("baz")),
                Some(Box::new(d("qux")))
            )
        );
        assert_eq!(
            parse("(a unless b)").unwrap(),
            Rich::Unless(Box::new(d("a")), Box::new(d("b")), None)
        );
        assert_eq!(
            parse("(a without b)").unwrap(),
            Rich::Without(Box::new(d("a")), Box::new(d("b")))
        );
        for bad in ["(a or b and c)", "(a or", "(a frob b)", "a or b", "(a >= )"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
