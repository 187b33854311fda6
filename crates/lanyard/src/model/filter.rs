//! SCIM filter expressions (RFC 7644 §3.4.2.2, PingOne's subset): a parser to an AST.
//! The store compiles the AST to SQL; nothing filters a full list in memory.

use crate::error::{ApiError, Detail};

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        attr: String,
        op: Op,
        value: Literal,
    },
    Present {
        attr: String,
    },
    /// `attr[subfilter]`, e.g. `memberOfGroups[id eq "..."]`.
    ValuePath {
        attr: String,
        filter: Box<Filter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Co => "co",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

pub fn invalid_filter(message: impl Into<String>) -> ApiError {
    ApiError::one(Detail::new(
        "INVALID_FILTER",
        Some("filter".into()),
        message,
    ))
}

const MAX_FILTER_LEN: usize = 4096;
const MAX_DEPTH: usize = 32;

pub fn parse(input: &str) -> Result<Filter, ApiError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(invalid_filter("The filter is too long."));
    }
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(invalid_filter(format!(
            "Unexpected token at position {} of the filter.",
            p.pos + 1
        )));
    }
    Ok(f)
}

fn lex(input: &str) -> Result<Vec<Tok>, ApiError> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(invalid_filter("Unterminated string in the filter.")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('"') => s.push('"'),
                                Some('\\') => s.push('\\'),
                                Some('/') => s.push('/'),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                _ => {
                                    return Err(invalid_filter(
                                        "Invalid escape in a filter string.",
                                    ));
                                }
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || ".eE+-".contains(chars[i])) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| {
                    invalid_filter(format!("Invalid number '{text}' in the filter."))
                })?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_.:-$".contains(chars[i]))
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(invalid_filter(format!(
                    "Unexpected character '{other}' in the filter."
                )));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), ApiError> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(invalid_filter(format!("Expected {what} in the filter.")))
        }
    }
    fn enter(&mut self) -> Result<(), ApiError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(invalid_filter("The filter is nested too deeply."))
        } else {
            Ok(())
        }
    }

    fn or(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ApiError> {
        self.enter()?;
        let result =
            if self.peek_word("not") && matches!(self.toks.get(self.pos + 1), Some(Tok::LParen)) {
                self.pos += 2;
                let inner = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(Filter::Not(Box::new(inner)))
            } else if matches!(self.toks.get(self.pos), Some(Tok::LParen)) {
                self.pos += 1;
                let inner = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                Ok(inner)
            } else {
                self.attr_expr()
            };
        self.depth -= 1;
        result
    }

    fn attr_expr(&mut self) -> Result<Filter, ApiError> {
        let attr = match self.next() {
            Some(Tok::Word(w)) => w,
            _ => return Err(invalid_filter("Expected an attribute name in the filter.")),
        };
        if matches!(self.toks.get(self.pos), Some(Tok::LBracket)) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::RBracket, "']'")?;
            return Ok(Filter::ValuePath {
                attr,
                filter: Box::new(inner),
            });
        }
        let op_word = match self.next() {
            Some(Tok::Word(w)) => w,
            _ => {
                return Err(invalid_filter(format!(
                    "Expected an operator after '{attr}' in the filter."
                )));
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present { attr });
        }
        let op = Op::parse(&op_word).ok_or_else(|| {
            invalid_filter(format!("Unknown operator '{op_word}' in the filter."))
        })?;
        let value = match self.next() {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Num(n)) => Literal::Num(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => {
                return Err(invalid_filter(format!(
                    "Expected a value after '{attr} {op_word}' in the filter."
                )));
            }
        };
        Ok(Filter::Compare { attr, op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(attr: &str, op: Op, v: Literal) -> Filter {
        Filter::Compare {
            attr: attr.into(),
            op,
            value: v,
        }
    }

    #[test]
    fn precedence_and_parentheses() {
        let f = parse(r#"a eq "1" or b eq "2" and not (c pr)"#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(cmp("a", Op::Eq, Literal::Str("1".into()))),
                Box::new(Filter::And(
                    Box::new(cmp("b", Op::Eq, Literal::Str("2".into()))),
                    Box::new(Filter::Not(Box::new(Filter::Present { attr: "c".into() })))
                ))
            )
        );
        let g = parse(r#"(a eq "1" or b eq "2") and c eq true"#).unwrap();
        assert!(matches!(g, Filter::And(..)));
    }

    #[test]
    fn values_and_value_paths() {
        assert_eq!(
            parse("count ge 10").unwrap(),
            cmp("count", Op::Ge, Literal::Num(10.0))
        );
        assert_eq!(
            parse(r#"name.family EQ "O\"Brien""#).unwrap(),
            cmp("name.family", Op::Eq, Literal::Str("O\"Brien".into()))
        );
        assert!(matches!(
            parse(r#"memberOfGroups[id eq "x"]"#).unwrap(),
            Filter::ValuePath { .. }
        ));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "name",
            "name eq",
            "name xx \"a\"",
            "(name eq \"a\"",
            "name eq \"a",
            "name eq 'a'",
            "a eq \"1\" b",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        let deep = "(".repeat(100) + "a pr" + &")".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
