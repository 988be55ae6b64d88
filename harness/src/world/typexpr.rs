//! Anonymous WIT types written inline on the command line (`list<tuple<string, option<u32>>>`),
//! with names (records, variants, resources, ...) looked up in a loaded WIT package.

use anyhow::{Result, anyhow, bail};
use std::sync::Arc;

use super::wit::{Converter, MAX_TYPE_DEPTH, Wit, resource_root};
use crate::reference::types::ValType;
use crate::reference::validate::validate_type;

/// Parse a WIT type expression. Names are resolved in `wit`; without it only anonymous types
/// work. The type is validated (`validate_type`) before it is returned.
pub fn parse_type(text: &str, wit: Option<&Wit>) -> Result<ValType> {
    let tokens = tokenize(text)?;
    let mut p = Parser { text, tokens, pos: 0, wit, depth: 0 };
    let t = p.ty()?;
    if let Some((at, tok)) = p.tokens.get(p.pos) {
        bail!("unexpected `{tok}` at column {} of `{text}`", at + 1);
    }
    validate_type(&t).map_err(|e| anyhow!("invalid type `{text}`: {e}"))?;
    Ok(t)
}

/// `text`, or its start when it is long.
fn brief(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, String)>> {
    let mut out = vec![];
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "<>,".contains(c) {
            out.push((i, c.to_string()));
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '%' || c == '.' {
            let mut word = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '%' || c == '.' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((i, word));
        } else {
            bail!("unexpected character `{c}` at column {} of `{text}`", i + 1);
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, String)>,
    pos: usize,
    wit: Option<&'a Wit>,
    /// How deep the type being parsed nests here.
    depth: u32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(|(_, t)| t.as_str())
    }

    fn next(&mut self) -> Result<String> {
        let tok = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        tok.ok_or_else(|| anyhow!("`{}` ends too early", self.text))
    }

    fn expect(&mut self, want: &str) -> Result<()> {
        let at = self.tokens.get(self.pos).map_or(self.text.len(), |(i, _)| *i);
        let got = self.next()?;
        if got != want {
            bail!("expected `{want}` but found `{got}` at column {} of `{}`", at + 1, self.text);
        }
        Ok(())
    }

    fn ty(&mut self) -> Result<ValType> {
        if self.depth > MAX_TYPE_DEPTH {
            bail!("`{}`: types nest deeper than {MAX_TYPE_DEPTH} levels", brief(self.text));
        }
        self.depth += 1;
        let t = self.ty_here();
        self.depth -= 1;
        t
    }

    fn ty_here(&mut self) -> Result<ValType> {
        let word = self.next()?;
        let name = word.strip_prefix('%').unwrap_or(&word);
        if let Some(t) = ValType::primitive(&word) {
            return Ok(t);
        }
        Ok(match word.as_str() {
            "float32" => ValType::F32,
            "float64" => ValType::F64,
            "list" => {
                self.expect("<")?;
                let t = self.ty()?;
                let len = if self.peek() == Some(",") {
                    self.next()?;
                    let n = self.next()?;
                    Some(n.parse::<u32>().map_err(|_| anyhow!("list length `{n}` is not a u32"))?)
                } else {
                    None
                };
                self.expect(">")?;
                ValType::List(Arc::new(t), len)
            }
            "tuple" => ValType::Tuple(self.type_list()?.into()),
            "error-context" => ValType::ErrorContext,
            "stream" | "future" => {
                let payload = if self.peek() == Some("<") {
                    self.next()?;
                    let t = self.ty()?;
                    self.expect(">")?;
                    Some(Arc::new(t))
                } else {
                    None
                };
                if word == "stream" { ValType::Stream(payload) } else { ValType::Future(payload) }
            }
            "map" => {
                self.expect("<")?;
                let k = self.ty()?;
                self.expect(",")?;
                let v = self.ty()?;
                self.expect(">")?;
                ValType::Map(Arc::new(k), Arc::new(v))
            }
            "option" => {
                self.expect("<")?;
                let t = self.ty()?;
                self.expect(">")?;
                ValType::option(t)
            }
            "result" => {
                if self.peek() != Some("<") {
                    return Ok(ValType::result(None, None));
                }
                self.next()?;
                let ok = if self.peek() == Some("_") {
                    self.next()?;
                    None
                } else {
                    Some(self.ty()?)
                };
                let err = if self.peek() == Some(",") {
                    self.next()?;
                    Some(self.ty()?)
                } else {
                    None
                };
                self.expect(">")?;
                ValType::result(ok, err)
            }
            "own" | "borrow" => {
                self.expect("<")?;
                let r = self.next()?;
                self.expect(">")?;
                let (wit, id) = self.named(&r)?;
                let conv = Converter::with_async(&wit.resolve);
                let rt = conv.resource(id);
                if !matches!(wit.resolve.types[resource_root(&wit.resolve, id)].kind, wit_parser::TypeDefKind::Resource)
                {
                    bail!("`{r}` is not a resource");
                }
                if word == "own" { ValType::Own(rt) } else { ValType::Borrow(rt) }
            }
            _ => {
                let (wit, id) = self.named(name)?;
                let conv = Converter::with_async(&wit.resolve);
                if matches!(wit.resolve.types[resource_root(&wit.resolve, id)].kind, wit_parser::TypeDefKind::Resource)
                {
                    // A bare resource name in a type position means `own<R>`, as in WIT.
                    ValType::Own(conv.resource(id))
                } else {
                    conv.type_id(id)?
                }
            }
        })
    }

    fn type_list(&mut self) -> Result<Vec<ValType>> {
        self.expect("<")?;
        let mut ts = vec![self.ty()?];
        while self.peek() == Some(",") {
            self.next()?;
            ts.push(self.ty()?);
        }
        self.expect(">")?;
        Ok(ts)
    }

    fn named(&self, name: &str) -> Result<(&Wit, wit_parser::TypeId)> {
        let wit = self.wit.ok_or_else(|| {
            anyhow!("`{name}` is not a built-in type; give the WIT file that defines it with --wit FILE")
        })?;
        Ok((wit, wit.find_type(name)?))
    }
}
