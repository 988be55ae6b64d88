//! Arbitrary types and values for property tests and fuzzing, biased toward the edges the
//! Canonical ABI is touchy about: empty/Latin-1/astral strings, NaNs and signed zeros, integer
//! extremes, empty lists, every variant case, all-set and no-set flags.

use arbitrary::{Result, Unstructured};
use std::sync::Arc;

use crate::reference::StringEncoding;
use crate::reference::types::{CaseType, FieldType, KEY_TYPES, ResourceType, ValType, map_entries};
use crate::reference::value::{HostString, Value};

/// Knobs of the type generator.
#[derive(Clone, Debug)]
pub struct TypeConfig {
    /// Nesting depth of compound types.
    pub max_depth: u32,
    /// Most fields, cases, flags or tuple elements in one type.
    pub max_width: usize,
    /// Resources `own<R>` / `borrow<R>` may refer to; none means no handle types.
    pub resources: Vec<ResourceType>,
    /// Whether `borrow<R>` may appear.
    pub borrows: bool,
    /// Whether `map<K, V>` (🗺️) may appear.
    pub maps: bool,
}

impl Default for TypeConfig {
    fn default() -> TypeConfig {
        TypeConfig { max_depth: 3, max_width: 6, resources: vec![], borrows: false, maps: true }
    }
}

/// An arbitrary valid type (`validate_type` accepts it).
pub fn arbitrary_type(u: &mut Unstructured<'_>, cfg: &TypeConfig) -> Result<ValType> {
    ty(u, cfg, cfg.max_depth)
}

fn ty(u: &mut Unstructured<'_>, cfg: &TypeConfig, depth: u32) -> Result<ValType> {
    let leaves = 13 + usize::from(!cfg.resources.is_empty());
    let choices = if depth == 0 { leaves } else { leaves + 9 + usize::from(cfg.maps) };
    let pick = u.choose_index(choices)?;
    if pick < leaves {
        return Ok(match pick {
            0 => ValType::Bool,
            1 => ValType::S8,
            2 => ValType::U8,
            3 => ValType::S16,
            4 => ValType::U16,
            5 => ValType::S32,
            6 => ValType::U32,
            7 => ValType::S64,
            8 => ValType::U64,
            9 => ValType::F32,
            10 => ValType::F64,
            11 => ValType::Char,
            12 => ValType::String,
            _ => {
                let rt = u.choose(&cfg.resources)?.clone();
                if cfg.borrows && u.arbitrary()? { ValType::Borrow(rt) } else { ValType::Own(rt) }
            }
        });
    }
    let d = depth - 1;
    let width = |u: &mut Unstructured<'_>| u.int_in_range(1..=cfg.max_width.max(1));
    Ok(match pick - leaves {
        0 | 1 => ValType::list(ty(u, cfg, d)?),
        2 => {
            let n = width(u)?;
            let names = labels(u, "f", n)?;
            ValType::Record(
                names.into_iter().map(|label| Ok(FieldType { label, t: ty(u, cfg, d)? })).collect::<Result<_>>()?,
            )
        }
        3 => ValType::Tuple((0..width(u)?).map(|_| ty(u, cfg, d)).collect::<Result<_>>()?),
        4 => {
            let n = width(u)?;
            ValType::Variant(
                labels(u, "c", n)?
                    .into_iter()
                    .map(|label| Ok(CaseType { label, t: if u.arbitrary()? { Some(ty(u, cfg, d)?) } else { None } }))
                    .collect::<Result<_>>()?,
            )
        }
        5 => {
            let n = width(u)?;
            ValType::Enum(labels(u, "e", n)?.into())
        }
        6 => ValType::option(ty(u, cfg, d)?),
        7 => {
            let ok = if u.arbitrary()? { Some(ty(u, cfg, d)?) } else { None };
            let err = if u.arbitrary()? { Some(ty(u, cfg, d)?) } else { None };
            ValType::result(ok, err)
        }
        // `keytype` (Explainer.md, 🗺️).
        9 => ValType::Map(Arc::new(u.choose(KEY_TYPES)?.clone()), Arc::new(ty(u, cfg, d)?)),
        _ => {
            // Flags straddle the 8/16/32 size steps.
            let n = *u.choose(&[1usize, 2, 7, 8, 9, 15, 16, 17, 31, 32])?;
            ValType::Flags(labels(u, "g", n)?.into())
        }
    })
}

/// `n` distinct labels `<prefix><k>`, never in sorted order (from 2 on): fields, cases and
/// flags are laid out in declaration order, and an implementation that sorts them by name
/// must not get the same layout by luck.
pub fn labels(u: &mut Unstructured<'_>, prefix: &str, n: usize) -> Result<Vec<String>> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, u.int_in_range(0..=i)?);
    }
    let mut names: Vec<String> = order.into_iter().map(|k| format!("{prefix}{k}")).collect();
    if names.windows(2).all(|w| w[0] < w[1]) {
        names.swap(0, 1.min(n.saturating_sub(1)));
    }
    Ok(names)
}

/// Strings that stress transcoding: empty, ASCII, Latin-1, BMP, astral, mixed.
pub const TRICKY_STRINGS: &[&str] = &[
    "",
    "a",
    "hello world",
    "\u{0}",
    "\u{7f}",
    "\u{80}",
    "é",
    "ÿ",
    "Ā",
    "€",
    "\u{ffff}",
    "😀",
    "𐍈",
    "héllo wörld",
    "abc€",
    "ÿ😀",
    "long ascii string that goes on for a while to make lists of bytes longer",
];

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 2)? {
        let parts = u.int_in_range(1..=3)?;
        let mut s = String::new();
        for _ in 0..parts {
            s.push_str(u.choose(TRICKY_STRINGS)?);
        }
        Ok(s)
    } else {
        u.arbitrary()
    }
}

fn edge_int<T: Copy>(u: &mut Unstructured<'_>, edges: &[T]) -> Result<Option<T>> {
    if u.ratio(1, 2)? { Ok(Some(*u.choose(edges)?)) } else { Ok(None) }
}

/// An arbitrary value of type `t`; strings come from `encoding` (their size hint).
/// Handle values are drawn from `reps`.
pub fn arbitrary_value(u: &mut Unstructured<'_>, t: &ValType, encoding: StringEncoding, reps: &[u32]) -> Result<Value> {
    macro_rules! int {
        ($variant:ident, $ty:ty) => {{
            let edges = [<$ty>::MIN, <$ty>::MAX, 0 as $ty, 1 as $ty, <$ty>::MAX / 2 + 1];
            Value::$variant(match edge_int(u, &edges)? {
                Some(v) => v,
                None => u.arbitrary()?,
            })
        }};
    }
    Ok(match t {
        // No async values yet (the reference cannot lift or lower them).
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => {
            return Err(arbitrary::Error::IncorrectFormat);
        }
        ValType::Bool => Value::Bool(u.arbitrary()?),
        ValType::S8 => int!(S8, i8),
        ValType::U8 => int!(U8, u8),
        ValType::S16 => int!(S16, i16),
        ValType::U16 => int!(U16, u16),
        ValType::S32 => int!(S32, i32),
        ValType::U32 => int!(U32, u32),
        ValType::S64 => int!(S64, i64),
        ValType::U64 => int!(U64, u64),
        ValType::F32 => {
            let edges = [
                0.0,
                -0.0,
                f32::NAN,
                -f32::NAN,
                f32::from_bits(0x7f80_0001),
                f32::INFINITY,
                f32::MIN_POSITIVE,
                f32::MAX,
            ];
            Value::F32(match edge_int(u, &edges)? {
                Some(v) => v,
                None => f32::from_bits(u.arbitrary()?),
            })
        }
        ValType::F64 => {
            let edges = [
                0.0,
                -0.0,
                f64::NAN,
                f64::from_bits(0x7ff0_0000_0000_0001),
                f64::NEG_INFINITY,
                f64::MIN_POSITIVE,
                f64::MAX,
            ];
            Value::F64(match edge_int(u, &edges)? {
                Some(v) => v,
                None => f64::from_bits(u.arbitrary()?),
            })
        }
        ValType::Char => {
            let edges =
                ['\0', '\u{7f}', '\u{ff}', '\u{100}', '\u{d7ff}', '\u{e000}', '\u{ffff}', '\u{10000}', '\u{10ffff}'];
            Value::Char(match edge_int(u, &edges)? {
                Some(c) => c,
                None => u.arbitrary()?,
            })
        }
        ValType::String => Value::String(HostString::new(&string(u)?, encoding)),
        ValType::List(e, Some(n)) => {
            Value::List((0..*n).map(|_| arbitrary_value(u, e, encoding, reps)).collect::<Result<_>>()?)
        }
        ValType::Map(k, v) => arbitrary_value(u, &map_entries(k, v), encoding, reps)?,
        ValType::List(e, None) => {
            let n = if u.ratio(1, 4)? { 0 } else { u.int_in_range(0..=8)? };
            Value::List((0..n).map(|_| arbitrary_value(u, e, encoding, reps)).collect::<Result<_>>()?)
        }
        ValType::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|f| Ok((f.label.clone(), arbitrary_value(u, &f.t, encoding, reps)?)))
                .collect::<Result<_>>()?,
        ),
        ValType::Tuple(ts) => {
            Value::tuple(ts.iter().map(|t| arbitrary_value(u, t, encoding, reps)).collect::<Result<Vec<_>>>()?)
        }
        ValType::Variant(cases) => {
            let c = u.choose(cases)?;
            let payload = c.t.as_ref().map(|t| arbitrary_value(u, t, encoding, reps)).transpose()?;
            Value::case(&c.label, payload)
        }
        ValType::Enum(labels) => Value::case(u.choose(labels)?, None),
        ValType::Option(t) => {
            if u.arbitrary()? {
                Value::case("some", Some(arbitrary_value(u, t, encoding, reps)?))
            } else {
                Value::case("none", None)
            }
        }
        ValType::Result(ok, err) => {
            let (label, t) = if u.arbitrary()? { ("ok", ok) } else { ("error", err) };
            let payload = t.as_deref().map(|t| arbitrary_value(u, t, encoding, reps)).transpose()?;
            Value::case(label, payload)
        }
        ValType::Flags(labels) => Value::Flags(match u.int_in_range(0..=2)? {
            0 => vec![],
            1 => labels.to_vec(),
            _ => labels.iter().filter(|_| u.arbitrary().unwrap_or(false)).cloned().collect(),
        }),
        ValType::Own(_) | ValType::Borrow(_) => {
            Value::Handle(if reps.is_empty() { u.arbitrary()? } else { *u.choose(reps)? })
        }
    })
}

/// `n` pseudo-random bytes from `seed` (xorshift64*): the input of `arbitrary` for seeded
/// runs, so a seed names a world or case for good.
pub fn seed_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}
