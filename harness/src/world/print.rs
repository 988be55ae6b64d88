//! Printing reference types as WIT text: anonymous types inline, records/variants/enums/flags
//! as named type definitions (WIT has no anonymous forms for them).

use std::fmt::Write as _;

use crate::reference::types::ValType;

/// Collects the type definitions a set of type expressions needs.
#[derive(Default)]
pub struct WitPrinter {
    /// `record t0 { ... }`, `variant t1 { ... }`, ... in dependency order.
    pub typedefs: Vec<String>,
    /// The type of each of `typedefs`, with its name.
    pub defined: Vec<(ValType, String)>,
    /// Named types in scope from elsewhere (`use`d), printed by name instead of defined again.
    pub used: Vec<(ValType, String)>,
}

impl WitPrinter {
    /// The WIT expression for `t`, adding named definitions to `self.typedefs` as needed.
    /// Resources are referred to by name and must be declared by the caller.
    pub fn expr(&mut self, t: &ValType) -> String {
        if let Some((_, name)) = self.used.iter().find(|(u, _)| u == t) {
            return escape(name);
        }
        match t {
            ValType::Bool => "bool".into(),
            ValType::S8 => "s8".into(),
            ValType::U8 => "u8".into(),
            ValType::S16 => "s16".into(),
            ValType::U16 => "u16".into(),
            ValType::S32 => "s32".into(),
            ValType::U32 => "u32".into(),
            ValType::S64 => "s64".into(),
            ValType::U64 => "u64".into(),
            ValType::F32 => "f32".into(),
            ValType::F64 => "f64".into(),
            ValType::Char => "char".into(),
            ValType::String => "string".into(),
            ValType::List(e, None) => format!("list<{}>", self.expr(e)),
            ValType::Map(k, v) => format!("map<{}, {}>", self.expr(k), self.expr(v)),
            ValType::List(e, Some(n)) => format!("list<{}, {n}>", self.expr(e)),
            ValType::Tuple(ts) => {
                let parts: Vec<String> = ts.iter().map(|t| self.expr(t)).collect();
                format!("tuple<{}>", parts.join(", "))
            }
            ValType::Option(t) => format!("option<{}>", self.expr(t)),
            ValType::Stream(None) => "stream".into(),
            ValType::Stream(Some(t)) => format!("stream<{}>", self.expr(t)),
            ValType::Future(None) => "future".into(),
            ValType::Future(Some(t)) => format!("future<{}>", self.expr(t)),
            ValType::ErrorContext => "error-context".into(),
            ValType::Result(None, None) => "result".into(),
            ValType::Result(ok, err) => {
                let ok = ok.as_deref().map_or("_".to_string(), |t| self.expr(t));
                match err {
                    Some(e) => format!("result<{ok}, {}>", self.expr(e)),
                    None => format!("result<{ok}>"),
                }
            }
            ValType::Own(rt) => format!("own<{}>", escape(&rt.name)),
            ValType::Borrow(rt) => format!("borrow<{}>", escape(&rt.name)),
            ValType::Record(fields) => {
                let mut body = String::new();
                for f in fields.iter() {
                    let t = self.expr(&f.t);
                    let _ = write!(body, "{}: {t}, ", escape(&f.label));
                }
                self.define(t, "record", &body)
            }
            ValType::Variant(cases) => {
                let mut body = String::new();
                for c in cases.iter() {
                    match &c.t {
                        Some(t) => {
                            let t = self.expr(t);
                            let _ = write!(body, "{}({t}), ", escape(&c.label));
                        }
                        None => {
                            let _ = write!(body, "{}, ", escape(&c.label));
                        }
                    }
                }
                self.define(t, "variant", &body)
            }
            ValType::Enum(labels) => {
                let body: String = labels.iter().map(|l| format!("{}, ", escape(l))).collect();
                self.define(t, "enum", &body)
            }
            ValType::Flags(labels) => {
                let body: String = labels.iter().map(|l| format!("{}, ", escape(l))).collect();
                self.define(t, "flags", &body)
            }
        }
    }

    fn define(&mut self, t: &ValType, kind: &str, body: &str) -> String {
        let name = format!("t{}", self.typedefs.len());
        self.typedefs.push(format!("{kind} {name} {{ {body}}}"));
        self.defined.push((t.clone(), name.clone()));
        name
    }
}

/// `%name` where a label is a WIT keyword.
pub fn escape(label: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "use",
        "type",
        "func",
        "u8",
        "u16",
        "u32",
        "u64",
        "s8",
        "s16",
        "s32",
        "s64",
        "f32",
        "f64",
        "float32",
        "float64",
        "char",
        "resource",
        "own",
        "borrow",
        "record",
        "flags",
        "variant",
        "enum",
        "bool",
        "string",
        "option",
        "result",
        "future",
        "stream",
        "list",
        "map",
        "tuple",
        "interface",
        "package",
        "world",
        "import",
        "export",
        "include",
        "with",
        "as",
        "from",
        "static",
        "constructor",
        "async",
        "error-context",
        "_",
    ];
    if KEYWORDS.contains(&label) { format!("%{label}") } else { label.to_string() }
}
