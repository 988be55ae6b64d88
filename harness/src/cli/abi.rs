//! `witness abi ...`: the reference Canonical ABI on the command line.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::encode::names::NameScheme;
use crate::encode::signature::async_core_signature;
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use crate::reference::flatten::flatten_type;
use crate::reference::layout::{alignment, elem_size, field_offsets, payload_offset};
use crate::reference::lift_flat::lift_value;
use crate::reference::lower_flat::lower_flat;
use crate::reference::memory::{BumpHeap, ReallocCall};
use crate::reference::types::{CoreType, PtrType, StringEncoding, ValType, despecialize};
use crate::reference::value::Flat;
use crate::reference::{Trap, TrapKind};
use crate::world::typexpr::parse_type;
use crate::world::wave::{parse_value, print_value};
use crate::world::wit::{GUEST_INSTANCE, Wit};

#[derive(Subcommand)]
pub enum AbiCommand {
    /// Size, alignment, flattening and field offsets of a type.
    Layout {
        /// A WIT type, e.g. `list<tuple<string, option<u32>>>` (names refer to --wit).
        #[arg(value_name = "TYPE", required_unless_present = "type_name")]
        ty: Option<String>,
        #[command(flatten)]
        named: TypeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Lower a WAVE value into a fresh memory: flat values, bytes written, realloc calls.
    Lower {
        /// TYPE then VALUE, or only VALUE with --type NAME. The value is in WAVE
        /// (e.g. `["a", "b"]`, `{x: 1, y: 2}`, `some(7)`).
        #[arg(value_name = "[TYPE] VALUE", num_args = 1..=2, required = true, allow_negative_numbers = true)]
        args: Vec<String>,
        #[command(flatten)]
        named: TypeArgs,
        #[command(flatten)]
        mem: MemoryArgs,
        /// The encoding the string values come from (decides the transcoding path).
        #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
        source_encoding: Encoding,
        #[arg(long)]
        json: bool,
    },
    /// Lift flat values (and memory contents) into a value, or say which trap fires.
    Lift {
        /// A WIT type, e.g. `list<tuple<string, option<u32>>>` (names refer to --wit).
        #[arg(value_name = "TYPE", required_unless_present = "type_name")]
        ty: Option<String>,
        #[command(flatten)]
        named: TypeArgs,
        /// Flat values, comma-separated TYPE:VALUE (e.g. `i32:16,i32:3`).
        #[arg(long, allow_hyphen_values = true)]
        flat: String,
        /// Bytes to place in memory first, ADDR:HEX (repeatable).
        #[arg(long = "memory-hex")]
        memory_hex: Vec<String>,
        #[command(flatten)]
        mem: MemoryArgs,
        #[arg(long)]
        json: bool,
    },
    /// The core-module type of a world for the core-module build target.
    Signature {
        /// A WIT file, a WIT directory with deps/, or a wasm-encoded WIT package.
        wit_path: PathBuf,
        #[arg(long)]
        world: Option<String>,
        #[arg(long, value_enum, default_value_t = Names::Standard)]
        names: Names,
        #[arg(long)]
        json: bool,
    },
}

/// Where a type comes from: an inline WIT type expression (a positional TYPE), or a named
/// type of a WIT file.
#[derive(Args)]
pub struct TypeArgs {
    /// A named type (record, variant, enum, flags, resource) of the --wit file.
    #[arg(long = "type", value_name = "NAME")]
    type_name: Option<String>,
    /// A WIT file, WIT directory or wasm-encoded WIT package that defines named types.
    #[arg(long)]
    wit: Option<PathBuf>,
}

impl TypeArgs {
    fn resolve(&self, ty: Option<&str>) -> Result<(ValType, String)> {
        let wit = self.wit.as_deref().map(Wit::load).transpose()?;
        let text = match (ty, self.type_name.as_deref()) {
            (Some(_), Some(_)) => bail!("give either a TYPE or --type NAME, not both"),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => bail!("give a TYPE or --type NAME"),
        };
        if self.type_name.is_some() && wit.is_none() {
            bail!("--type NAME needs --wit FILE");
        }
        Ok((parse_type(text, wit.as_ref())?, text.to_string()))
    }
}

#[derive(Args)]
pub struct MemoryArgs {
    /// The guest's string encoding.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    encoding: Encoding,
    /// Where the bump allocator starts.
    #[arg(long, default_value_t = BumpHeap::DEFAULT_HEAP_BASE)]
    heap_base: u64,
    /// The size of linear memory in bytes.
    #[arg(long, default_value_t = BumpHeap::DEFAULT_MEMORY_SIZE)]
    memory_size: u64,
}

impl MemoryArgs {
    fn heap(&self) -> Result<BumpHeap> {
        if self.memory_size > 1 << 32 {
            bail!("--memory-size {} is larger than a 32-bit memory", self.memory_size);
        }
        Ok(BumpHeap::new(self.memory_size, self.heap_base))
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Encoding {
    Utf8,
    Utf16,
    #[value(name = "latin1+utf16")]
    Latin1Utf16,
}

impl From<Encoding> for StringEncoding {
    fn from(e: Encoding) -> StringEncoding {
        match e {
            Encoding::Utf8 => StringEncoding::Utf8,
            Encoding::Utf16 => StringEncoding::Utf16,
            Encoding::Latin1Utf16 => StringEncoding::Latin1Utf16,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Names {
    Standard,
    Legacy,
}

/// A stream or future value is the state its ends share, behind a handle: a lift moves an end
/// out of the instance's table (empty here, so it could only trap) and WAVE has no syntax for
/// the value to lower. The async runtime runs them (reference::concurrency).
fn refuse_async_values(t: &ValType) -> Result<()> {
    if crate::reference::types::contains_async_value(t) {
        bail!(
            "stream and future values are handles to the state their ends share: `abi lift` runs on \
             an empty handle table and WAVE has no syntax for them, so `lift` and `lower` take no \
             such type (`abi layout` and `abi signature` do)"
        );
    }
    Ok(())
}

pub fn run(command: AbiCommand) -> Result<()> {
    match command {
        AbiCommand::Layout { ty, named, json } => {
            let (t, text) = named.resolve(ty.as_deref())?;
            emit(json, &layout(&t), |l| print_layout(&text, l))
        }
        AbiCommand::Lower { args, named, mem, source_encoding, json } => {
            let (ty, value) = match args.as_slice() {
                [value] => (None, value),
                [ty, value] => (Some(ty.as_str()), value),
                _ => bail!("expected [TYPE] VALUE"),
            };
            let (t, _) = named.resolve(ty)?;
            refuse_async_values(&t)?;
            let v = parse_value(&t, value, source_encoding.into())?;
            let mut heap = mem.heap()?;
            let out = lower(&t, &v, mem.encoding.into(), &mut heap);
            emit(json, &out, print_lowered)
        }
        AbiCommand::Lift { ty, named, flat, memory_hex, mem, json } => {
            let (t, _) = named.resolve(ty.as_deref())?;
            refuse_async_values(&t)?;
            let flats = parse_flats(&flat)?;
            let want = flatten_type(&t, PtrType::I32);
            let got: Vec<CoreType> = flats.iter().map(|f| f.core_type()).collect();
            if got != want {
                let names: Vec<&str> = want.iter().map(|t| t.name()).collect();
                bail!(
                    "the type flattens to ({}), but --flat gives {} value(s) of other types",
                    names.join(" "),
                    got.len()
                );
            }
            let mut heap = mem.heap()?;
            for arg in &memory_hex {
                let (addr, bytes) = parse_memory_hex(arg)?;
                heap.preload(addr, &bytes).map_err(|e| anyhow!("--memory-hex {arg}: {e}"))?;
            }
            let out = lift(&t, flats, mem.encoding.into(), &mut heap);
            emit(json, &out, print_lifted)
        }
        AbiCommand::Signature { wit_path, world, names, json } => {
            let wit = Wit::load(&wit_path)?;
            let world = wit.world(world.as_deref())?;
            let scheme = match names {
                Names::Standard => NameScheme::Standard,
                Names::Legacy => NameScheme::Legacy,
            };
            let sig = async_core_signature(&wit.resolve, world, scheme)?;
            emit(json, &sig, print_signature)
        }
    }
}

fn emit<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T)) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        text(value);
    }
    Ok(())
}

#[derive(Serialize)]
pub struct Layout {
    pub size: u64,
    pub align: u64,
    pub flat: Vec<CoreType>,
    /// Field offsets of a record or tuple.
    pub fields: Vec<u64>,
    /// The payload offset of a variant, enum, option or result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_offset: Option<u64>,
}

pub fn layout(t: &ValType) -> Layout {
    let pt = PtrType::I32;
    let (fields, payload) = match despecialize(t).as_ref() {
        ValType::Record(fields) => (field_offsets(fields, pt), None),
        ValType::Variant(cases) => (vec![], Some(payload_offset(cases, pt))),
        _ => (vec![], None),
    };
    Layout {
        size: elem_size(t, pt),
        align: alignment(t, pt),
        flat: flatten_type(t, pt),
        fields,
        payload_offset: payload,
    }
}

fn print_layout(text: &str, l: &Layout) {
    let flat: Vec<&str> = l.flat.iter().map(|t| t.name()).collect();
    println!("type    {text}");
    println!("size    {}", l.size);
    println!("align   {}", l.align);
    println!("flat    ({})", flat.join(" "));
    if !l.fields.is_empty() {
        let offs: Vec<String> = l.fields.iter().map(u64::to_string).collect();
        println!("fields  at {}", offs.join(", "));
    }
    if let Some(p) = l.payload_offset {
        println!("payload at {p}");
    }
}

#[derive(Serialize)]
pub struct FlatJson {
    #[serde(rename = "type")]
    pub ty: CoreType,
    pub value: serde_json::Value,
}

fn flat_json(f: Flat) -> FlatJson {
    let value = match f {
        Flat::I32(v) => v.into(),
        Flat::I64(v) => v.into(),
        Flat::F32(v) if v.is_finite() => f64::from(v).into(),
        Flat::F64(v) if v.is_finite() => v.into(),
        // NaN and infinities have no JSON number: give the bit pattern.
        other => format!("{:#x}", other.bits()).into(),
    };
    FlatJson { ty: f.core_type(), value }
}

#[derive(Serialize)]
pub struct MemoryJson {
    pub addr: u64,
    pub hex: String,
}

#[derive(Serialize)]
pub struct TrapJson {
    pub kind: TrapKind,
    pub message: String,
}

impl From<Trap> for TrapJson {
    fn from(t: Trap) -> TrapJson {
        TrapJson { kind: t.kind, message: t.message }
    }
}

#[derive(Serialize)]
pub struct Lowered {
    pub flat: Vec<FlatJson>,
    pub memory: Vec<MemoryJson>,
    /// `[old_ptr, old_size, align, new_size, returned]` per realloc call.
    pub realloc: Vec<(u64, u64, u64, u64, Option<u64>)>,
    pub trap: Option<TrapJson>,
}

/// Lower `v` into `heap` as the guest's memory (`lower_flat`, with a Task borrow scope).
pub fn lower(t: &ValType, v: &crate::reference::Value, encoding: StringEncoding, heap: &mut BumpHeap) -> Lowered {
    let mut inst = ComponentInstance::new(GUEST_INSTANCE);
    let task = inst.start_task();
    let result = {
        let mut cx = LiftLowerContext::new(encoding, heap, &mut inst, BorrowScope::Task(task));
        lower_flat(&mut cx, v, t)
    };
    let (flat, trap) = match result {
        Ok(flat) => (flat.into_iter().map(flat_json).collect(), None),
        Err(trap) => (vec![], Some(trap.into())),
    };
    let memory = heap.written_ranges().into_iter().map(|(addr, bytes)| MemoryJson { addr, hex: hex(&bytes) }).collect();
    let realloc = heap
        .calls
        .iter()
        .map(|&ReallocCall { old_ptr, old_size, align, new_size, returned }| {
            (old_ptr, old_size, align, new_size, returned)
        })
        .collect();
    Lowered { flat, memory, realloc, trap }
}

fn print_lowered(l: &Lowered) {
    let flat: Vec<String> = l.flat.iter().map(|f| format!("{}:{}", f.ty.name(), f.value)).collect();
    println!("flat     {}", flat.join(", "));
    for (old_ptr, old_size, align, new_size, returned) in &l.realloc {
        let ret = returned.map_or("trap".to_string(), |r| r.to_string());
        println!("realloc  ({old_ptr}, {old_size}, {align}, {new_size}) -> {ret}");
    }
    for m in &l.memory {
        println!("memory   {}: {}", m.addr, m.hex);
    }
    if let Some(t) = &l.trap {
        println!("trap     {}: {}", t.kind, t.message);
    }
}

#[derive(Serialize)]
pub struct Lifted {
    pub value: Option<String>,
    pub trap: Option<TrapJson>,
}

/// `lift_value`, with the value printed in WAVE.
pub fn lift(t: &ValType, flats: Vec<Flat>, encoding: StringEncoding, heap: &mut BumpHeap) -> Lifted {
    match lift_value(&mut ComponentInstance::new(GUEST_INSTANCE), t, flats, encoding, heap) {
        Ok(v) => match print_value(t, &v) {
            Ok(text) => Lifted { value: Some(text), trap: None },
            Err(e) => Lifted { value: Some(format!("{v:?} ({e})")), trap: None },
        },
        Err(trap) => Lifted { value: None, trap: Some(trap.into()) },
    }
}

fn print_lifted(l: &Lifted) {
    match (&l.value, &l.trap) {
        (Some(v), _) => println!("{v}"),
        (_, Some(t)) => println!("trap {}: {}", t.kind, t.message),
        _ => {}
    }
}

fn print_signature(s: &crate::encode::signature::CoreSignature) {
    let sig = |ty: &crate::reference::flatten::CoreFuncType| {
        let mut out = "(func".to_string();
        for (word, types) in [("param", &ty.params), ("result", &ty.results)] {
            if !types.is_empty() {
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                out.push_str(&format!(" ({word} {})", names.join(" ")));
            }
        }
        out + ")"
    };
    println!("world {} ({} names)", s.world, s.names);
    println!("imports:");
    for i in &s.imports {
        println!("  {:<14} \"{}\" \"{}\" {}", i.kind, i.module, i.name, sig(&i.ty));
    }
    println!("exports:");
    for e in &s.exports {
        let need = if e.required { "required" } else { "optional" };
        let ty = e.ty.as_ref().map_or("(memory 0)".to_string(), sig);
        println!("  {:<14} \"{}\" {} {}", e.kind, e.name, ty, need);
    }
    println!("memory {}, realloc {}", yes(s.memory_required), yes(s.realloc_required));
}

fn yes(b: bool) -> &'static str {
    if b { "required" } else { "not required" }
}

fn parse_flats(text: &str) -> Result<Vec<Flat>> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    text.split(',').map(|s| Flat::parse(s.trim()).map_err(|e| anyhow!("--flat: {e}"))).collect()
}

fn parse_memory_hex(arg: &str) -> Result<(u64, Vec<u8>)> {
    let (addr, hexs) = arg.split_once(':').ok_or_else(|| anyhow!("--memory-hex `{arg}`: expected ADDR:HEX"))?;
    let addr: u64 = addr.parse().with_context(|| format!("--memory-hex `{arg}`: bad address"))?;
    let digits: Vec<u8> = hexs
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            c.to_digit(16).map(|d| d as u8).ok_or_else(|| anyhow!("--memory-hex `{arg}`: `{c}` is not a hex digit"))
        })
        .collect::<Result<_>>()?;
    if !digits.len().is_multiple_of(2) {
        bail!("--memory-hex `{arg}`: odd number of hex digits");
    }
    Ok((addr, digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
