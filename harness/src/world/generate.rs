//! Arbitrary WIT worlds (in the manner of wit-smith): a package `witness:gen` with interfaces
//! `i0`, `i1`, ... that the world `w` imports, exports or both, world-level imported and
//! exported functions, resources with constructors, methods and static functions, and
//! functions over every synchronous value type, some of which spill their params (more than
//! `MAX_FLAT_PARAMS` flat values) or their results (more than `MAX_FLAT_RESULTS`).
//!
//! Names are fixed so that they never collide with each other or with WIT keywords:
//! interfaces `i<n>`, resources `r<n>`, type definitions `t<n>` (from [`WitPrinter`]),
//! functions `f<n>` (interface functions and world imports), `g<n>` (world exports), methods
//! `m<n>`, static functions `s<n>`, params `p<n>`.
//!
//! Rules of WIT and the Canonical ABI the generator respects (wit-parser rejects the rest):
//! * `borrow<R>` only in params, never in results ("function returns a type which contains a
//!   `borrow<T>` which is not supported");
//! * every type definition is named and lives in the interface (or world) whose functions
//!   use it; resources are referred to only inside the interface (or world) declaring them;
//! * the world has at least one function (a world-level import is added if the input chose
//!   none).
//!
//! Running out of input is not an error: like `arbitrary`, missing bytes read as zeros, which
//! pick the smallest choices, so every input yields a world.

use std::fmt::Write as _;
use std::sync::Arc;

use arbitrary::{Result, Unstructured};

use crate::reference::flatten::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_type, flatten_types};
use crate::reference::types::{FieldType, InstanceId, PtrType, ResourceType, ValType, contains};
use crate::world::arbitrary::{TypeConfig, arbitrary_type, labels};
use crate::world::print::{WitPrinter, escape};

/// Knobs of the world generator, like wit-smith's `Config`.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// Most interfaces the world imports or exports (an interface may be both), a dependency
    /// package's interface aside.
    pub max_interfaces: usize,
    /// Most world-level imported functions, and most world-level exported functions.
    pub max_world_funcs: usize,
    /// Most plain functions per interface (resource members come on top).
    pub max_funcs_per_interface: usize,
    /// Most params of a function drawn from `type_config`; a function may get one more
    /// (an `own`/`borrow` of a resource in scope), and spilling ones get more.
    pub max_params: usize,
    /// Ratio of functions forced to have more than `MAX_FLAT_PARAMS` flat params
    /// (`(0, _)` never forces).
    pub spill_params_prob: (u32, u32),
    /// Ratio of functions (constructors excepted) forced to have more than
    /// `MAX_FLAT_RESULTS` flat results (`(0, _)` never forces).
    pub spill_results_prob: (u32, u32),
    /// Resources with constructors, methods and static functions, and `own`/`borrow` params.
    pub resources: bool,
    /// 🔀 Ratio of plain functions declared `async func` (`(0, _)`: none, and no input byte
    /// is read for it, so the synchronous worlds of a seed stay as they were).
    pub async_prob: (u32, u32),
    /// Ratio of worlds with a dependency package (`witness:dep`, nested in the text) whose
    /// interface `d0` the world imports, by name or only through the `use`s of others.
    pub dependency_prob: (u32, u32),
    /// Ratio of scopes (interfaces, the world) that `use` resources and types of an imported
    /// interface that comes before them.
    pub use_prob: (u32, u32),
    /// Param and result types. Its `resources` and `borrows` are replaced per scope: the
    /// resources of the interface (or world) being generated, `borrows` in params only.
    pub type_config: TypeConfig,
}

impl Default for WorldConfig {
    fn default() -> WorldConfig {
        WorldConfig {
            max_interfaces: 2,
            max_world_funcs: 2,
            max_funcs_per_interface: 3,
            max_params: 4,
            spill_params_prob: (1, 8),
            spill_results_prob: (1, 4),
            resources: true,
            async_prob: (0, 1),
            dependency_prob: (1, 2),
            use_prob: (1, 2),
            type_config: TypeConfig::default(),
        }
    }
}

/// A generated world: WIT text holding one package (`witness:gen`, sometimes versioned) with
/// one world named `w`.
#[derive(Clone, Debug)]
pub struct GeneratedWorld {
    pub wit: String,
}

/// Package versions: none, or one whose cm32p2 canonical form differs from the full version
/// (`@0.1.0` keeps `0.1`, `@1.2.3` keeps `1`).
const VERSIONS: &[&str] = &["", "", "@0.1.0", "@1.2.3"];

/// How the world uses an interface.
#[derive(Clone, Copy)]
enum Direction {
    Import,
    Export,
    Both,
}

/// An arbitrary world; see the module documentation for its shape.
pub fn arbitrary_world(u: &mut Unstructured<'_>, cfg: &WorldConfig) -> Result<GeneratedWorld> {
    let version = *u.choose(VERSIONS)?;
    let mut wit = format!("package witness:gen{version};\n");
    let mut world_body = String::new();
    let mut funcs = 0usize;
    // Interfaces whose resources and types later scopes may `use`: the imported ones only, as
    // in WASI (an exported interface may use an imported one, as wasi:http's handler does).
    let mut sources: Vec<Source> = vec![];
    let mut nested = String::new();

    // Sometimes a dependency package (nested in the text, as `deps/` would give it), whose
    // interface the world imports by name or only through the `use`s of others.
    if cfg.max_interfaces > 0 && ratio(u, cfg.dependency_prob)? {
        let dep_version = *u.choose(VERSIONS)?;
        let mut scope = Scope::new(u, cfg, true, &[])?;
        for f in 0..mostly_some(u, cfg.max_funcs_per_interface)? {
            scope.plain_func(u, &format!("f{f}"), "")?;
        }
        let _ = write!(nested, "\npackage witness:dep{dep_version} {{\ninterface d0 {{\n{}}}\n}}\n", scope.body());
        let path = format!("witness:dep/d0{dep_version}");
        if u.arbitrary()? {
            let _ = writeln!(world_body, "  import {path};");
        }
        sources.push(scope.source(path, "d0"));
    }

    let n_interfaces = mostly_some(u, cfg.max_interfaces)?;
    for i in 0..n_interfaces {
        let name = format!("i{i}");
        let direction = match u.int_in_range(0..=4u8)? {
            0 | 1 => Direction::Import,
            2 | 3 => Direction::Export,
            _ => Direction::Both,
        };
        let mut scope = Scope::new(u, cfg, true, &sources)?;
        let n = mostly_some(u, cfg.max_funcs_per_interface)?;
        for f in 0..n {
            scope.plain_func(u, &format!("f{f}"), "")?;
        }
        funcs += scope.funcs;
        let _ = write!(wit, "\ninterface {name} {{\n{}}}\n", scope.body());
        if matches!(direction, Direction::Import | Direction::Both) {
            let _ = writeln!(world_body, "  import {name};");
        }
        if matches!(direction, Direction::Export | Direction::Both) {
            let _ = writeln!(world_body, "  export {name};");
        }
        if matches!(direction, Direction::Import) {
            sources.push(scope.source(name.clone(), &name));
        }
    }

    // World-level resources are rarer than interface ones; they are always imported.
    let world_resources = cfg.resources && ratio(u, (1, 5))?;
    let mut scope = Scope::new(u, cfg, world_resources, &sources)?;
    let n_imports = u.int_in_range(0..=cfg.max_world_funcs)?;
    for f in 0..n_imports {
        scope.plain_func(u, &format!("f{f}"), "import ")?;
    }
    let n_exports = u.int_in_range(0..=cfg.max_world_funcs)?;
    for g in 0..n_exports {
        scope.plain_func(u, &format!("g{g}"), "export ")?;
    }
    if funcs + scope.funcs == 0 {
        scope.plain_func(u, &format!("f{n_imports}"), "import ")?;
    }
    let _ = write!(wit, "\nworld w {{\n{world_body}{}}}\n{nested}", scope.body());
    Ok(GeneratedWorld { wit })
}

/// A count in `0..=max`, rarely 0 (one time in eight).
fn mostly_some(u: &mut Unstructured<'_>, max: usize) -> Result<usize> {
    if max == 0 || ratio(u, (1, 8))? { Ok(0) } else { u.int_in_range(1..=max) }
}

/// `u.ratio` that accepts any pair: `(0, _)` and `(_, 0)` are never, `n >= d` always.
fn ratio(u: &mut Unstructured<'_>, (n, d): (u32, u32)) -> Result<bool> {
    if n == 0 || d == 0 {
        Ok(false)
    } else if n >= d {
        Ok(true)
    } else {
        u.ratio(n, d)
    }
}

/// Which kind of function is generated (the implicit params and results differ).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Constructor,
    Method,
    Static,
}

/// What an interface offers the scopes that `use` it: its resources and its named types that
/// hold no handles (so they may appear in results too).
struct Source {
    /// How a `use` names the interface: `i0`, or `witness:dep/d0@0.1.0` in another package.
    path: String,
    /// The prefix of the aliases its items get where they are used (`i0-r0`).
    tag: String,
    resources: Vec<String>,
    types: Vec<(ValType, String)>,
}

/// The body of one interface or of the world: its `use`s, resources, type definitions and
/// functions.
struct Scope<'c> {
    cfg: &'c WorldConfig,
    printer: WitPrinter,
    /// The resources in scope: its own (declared), then the `use`d ones (by alias).
    resources: Vec<ResourceType>,
    /// How many of `resources` the scope declares.
    own_resources: usize,
    /// Named types `use`d from another interface.
    used_types: Vec<ValType>,
    /// The `use` line, if any.
    uses: String,
    /// Resource declarations and function lines, indented, each ending in a newline.
    items: String,
    /// Functions (resource members included) generated so far.
    funcs: usize,
}

impl<'c> Scope<'c> {
    /// A scope with its resources (when `cfg.resources` and `allow_resources`) declared, and
    /// sometimes a `use` of some of what one of `sources` offers.
    fn new(
        u: &mut Unstructured<'_>,
        cfg: &'c WorldConfig,
        allow_resources: bool,
        sources: &[Source],
    ) -> Result<Scope<'c>> {
        let mut scope = Scope {
            cfg,
            printer: WitPrinter::default(),
            resources: vec![],
            own_resources: 0,
            used_types: vec![],
            uses: String::new(),
            items: String::new(),
            funcs: 0,
        };
        let n = if cfg.resources && allow_resources { *u.choose(&[0usize, 0, 1, 1, 2])? } else { 0 };
        scope.own_resources = n;
        scope.resources = (0..n)
            .map(|i| ResourceType { id: i as u32, name: format!("r{i}"), impl_instance: InstanceId(0) })
            .collect();
        if !sources.is_empty() && ratio(u, cfg.use_prob)? {
            let source = u.choose(sources)?;
            scope.use_from(u, source)?;
        }
        for r in 0..n {
            let name = escape(&scope.resources[r].name);
            let mut members = String::new();
            if ratio(u, (2, 3))? {
                let sig = scope.signature(u, Kind::Constructor)?;
                let _ = writeln!(members, "    constructor{sig};");
                scope.funcs += 1;
            }
            for m in 0..u.int_in_range(0..=2usize)? {
                let sig = scope.signature(u, Kind::Method)?;
                let _ = writeln!(members, "    m{m}: func{sig};");
                scope.funcs += 1;
            }
            for s in 0..u.int_in_range(0..=2usize)? {
                let sig = scope.signature(u, Kind::Static)?;
                let _ = writeln!(members, "    s{s}: static func{sig};");
                scope.funcs += 1;
            }
            if members.is_empty() {
                let _ = writeln!(scope.items, "  resource {name};");
            } else {
                let _ = writeln!(scope.items, "  resource {name} {{\n{members}  }}");
            }
        }
        Ok(scope)
    }

    /// `use` some of `source`'s resources and types, under aliases of their own.
    fn use_from(&mut self, u: &mut Unstructured<'_>, source: &Source) -> Result<()> {
        let mut names = vec![];
        for r in &source.resources {
            if self.cfg.resources && ratio(u, (2, 3))? {
                let alias = format!("{}-{r}", source.tag);
                names.push(format!("{} as {}", escape(r), escape(&alias)));
                let id = 1000 + self.resources.len() as u32;
                self.resources.push(ResourceType { id, name: alias, impl_instance: InstanceId(0) });
            }
        }
        for (t, name) in &source.types {
            if u.arbitrary()? {
                let alias = format!("{}-{name}", source.tag);
                names.push(format!("{} as {}", escape(name), escape(&alias)));
                self.printer.used.push((t.clone(), alias));
                self.used_types.push(t.clone());
            }
        }
        if !names.is_empty() {
            self.uses = format!("  use {}.{{{}}};\n", source.path, names.join(", "));
        }
        Ok(())
    }

    /// What this scope offers the scopes that `use` it, as interface `path`.
    fn source(&self, path: String, tag: &str) -> Source {
        Source {
            path,
            tag: tag.to_string(),
            resources: self.resources[..self.own_resources].iter().map(|r| r.name.clone()).collect(),
            types: self.printer.defined.iter().filter(|(t, _)| !holds_handles(t)).cloned().collect(),
        }
    }

    /// Adds `<prefix>name: func(...) -> ...;`.
    fn plain_func(&mut self, u: &mut Unstructured<'_>, name: &str, prefix: &str) -> Result<()> {
        let sig = self.signature(u, Kind::Plain)?;
        let kind = if ratio(u, self.cfg.async_prob)? { "async func" } else { "func" };
        let _ = writeln!(self.items, "  {prefix}{}: {kind}{sig};", escape(name));
        self.funcs += 1;
        Ok(())
    }

    /// The `use`, the type definitions, then the items.
    fn body(&self) -> String {
        let mut out = self.uses.clone();
        for def in &self.printer.typedefs {
            let _ = writeln!(out, "  {def}");
        }
        out.push_str(&self.items);
        out
    }

    fn type_config(&self, borrows: bool) -> TypeConfig {
        TypeConfig {
            resources: self.resources.clone(),
            borrows: borrows && !self.resources.is_empty(),
            ..self.cfg.type_config.clone()
        }
    }

    /// `(p0: T0, ...) -> R` (no result for constructors).
    fn signature(&mut self, u: &mut Unstructured<'_>, kind: Kind) -> Result<String> {
        let param_cfg = self.type_config(true);
        let mut params = vec![];
        for _ in 0..u.int_in_range(0..=self.cfg.max_params)? {
            params.push(arbitrary_type(u, &param_cfg)?);
        }
        // A handle param of its own, so that `own`/`borrow` params are common.
        // Resource members favour `use`d resources, as a WASI stream's methods take another
        // interface's `pollable`.
        let used = &self.resources[self.own_resources..];
        let member = matches!(kind, Kind::Method | Kind::Constructor | Kind::Static);
        if member && !used.is_empty() && ratio(u, (1, 2))? {
            let r = u.choose(used)?.clone();
            let t = if u.arbitrary()? { ValType::Own(r) } else { ValType::Borrow(r) };
            let at = u.int_in_range(0..=params.len())?;
            params.insert(at, t);
        } else if !self.resources.is_empty() && ratio(u, (1, 3))? {
            let r = u.choose(&self.resources)?.clone();
            let t = if u.arbitrary()? { ValType::Own(r) } else { ValType::Borrow(r) };
            let at = u.int_in_range(0..=params.len())?;
            params.insert(at, t);
        }
        // A type of another interface, as WASI's functions take `descriptor-stat`s and the like.
        if !self.used_types.is_empty() && !params.is_empty() && ratio(u, (1, 2))? {
            let at = u.int_in_range(0..=params.len() - 1)?;
            params[at] = u.choose(&self.used_types)?.clone();
        }
        if ratio(u, self.cfg.spill_params_prob)? {
            spill_params(u, &mut params, kind)?;
        }

        let result = match kind {
            Kind::Constructor => None,
            _ if ratio(u, self.cfg.spill_results_prob)? => {
                let t = arbitrary_type(u, &self.type_config(false))?;
                Some(spill_result(u, t)?)
            }
            _ if ratio(u, (1, 3))? => None,
            _ if !self.used_types.is_empty() && ratio(u, (1, 4))? => Some(u.choose(&self.used_types)?.clone()),
            _ => Some(arbitrary_type(u, &self.type_config(false))?),
        };

        let params: Vec<String> =
            params.iter().enumerate().map(|(i, t)| format!("p{i}: {}", self.printer.expr(t))).collect();
        let mut sig = format!("({})", params.join(", "));
        if let Some(t) = &result {
            let _ = write!(sig, " -> {}", self.printer.expr(t));
        }
        Ok(sig)
    }
}

/// Whether `t` holds an `own` or `borrow` anywhere.
fn holds_handles(t: &ValType) -> bool {
    contains(t, &|u| matches!(u, ValType::Own(_) | ValType::Borrow(_)))
}

/// Scalars whose flat form is one core value each.
const SCALARS: &[ValType] = &[
    ValType::Bool,
    ValType::S8,
    ValType::U8,
    ValType::S16,
    ValType::U16,
    ValType::S32,
    ValType::U32,
    ValType::S64,
    ValType::U64,
    ValType::F32,
    ValType::F64,
    ValType::Char,
];

/// Appends params until the flat params exceed `MAX_FLAT_PARAMS` (a method's `self` counts):
/// many scalars of one type (`17 × u8`), mixed scalars, or a few wide records or tuples.
fn spill_params(u: &mut Unstructured<'_>, params: &mut Vec<ValType>, kind: Kind) -> Result<()> {
    let implicit = usize::from(kind == Kind::Method);
    let mut flat = flatten_types(params, PtrType::I32).len() + implicit;
    let strategy = u.int_in_range(0..=3u8)?;
    let same = u.choose(SCALARS)?.clone();
    while flat <= MAX_FLAT_PARAMS {
        let t = match strategy {
            0 => same.clone(),
            1 => u.choose(SCALARS)?.clone(),
            _ => {
                let width = u.int_in_range(1..=8usize)?;
                let ts = (0..width).map(|_| Ok(u.choose(SCALARS)?.clone())).collect::<Result<Vec<_>>>()?;
                if strategy == 2 {
                    let names = labels(u, "f", ts.len())?;
                    ValType::Record(names.into_iter().zip(ts).map(|(label, t)| FieldType { label, t }).collect())
                } else {
                    ValType::Tuple(ts.into())
                }
            }
        };
        flat += flatten_type(&t, PtrType::I32).len();
        params.push(t);
    }
    Ok(())
}

/// `t`, or a type around it, whose flat form exceeds `MAX_FLAT_RESULTS`.
fn spill_result(u: &mut Unstructured<'_>, t: ValType) -> Result<ValType> {
    if flatten_type(&t, PtrType::I32).len() > MAX_FLAT_RESULTS {
        return Ok(t);
    }
    let other = u.choose(SCALARS)?.clone();
    Ok(match u.int_in_range(0..=3u8)? {
        0 => ValType::String,
        1 => ValType::list(t),
        2 => ValType::Tuple(Arc::new([t, other])),
        _ => {
            let names = labels(u, "f", 2)?;
            ValType::Record(Arc::new([
                FieldType { label: names[0].clone(), t },
                FieldType { label: names[1].clone(), t: other },
            ]))
        }
    })
}
