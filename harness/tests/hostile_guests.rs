//! A guest must never take witness down: whatever its code does, a run ends in an outcome
//! (a value or a trap), on every runtime that runs core modules.

use std::sync::Arc;

use witness::encode::names::NameScheme;
use witness::engine::{Selection, compile};
use witness::reference::{HostString, StringEncoding, Value};
use witness::runtime::NoHost;
use witness::smith::SmithWorld;

/// A module of the world `export f: func(s: string)` whose realloc first executes
/// `memory.grow` (of 0 pages: it always succeeds) `n` times in a loop.
fn growing_guest(n: u32) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $i i32)
    (loop $grow
      (drop (memory.grow (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $grow (i32.lt_u (local.get $i) (i32.const {n}))))
    (global.get $next))
  (func (export "f") (param i32 i32)))"#
    )
}

#[test]
fn a_loop_of_memory_grow_is_an_outcome_not_a_crash() {
    let wit = "package t:t; world w { export f: func(s: string); }";
    let sw = SmithWorld::new(wit, None, NameScheme::Legacy, StringEncoding::Utf8).unwrap();
    let core = wat::parse_str(growing_guest(200_000)).unwrap();
    let component = sw.componentize(&core).unwrap();
    let artifact = Arc::new(sw.artifact.with_guest(core, component));
    for engine in ["core", "wasmtime-core", "wasmtime"] {
        let mut compiled = compile(&Selection::parse(engine).unwrap(), &artifact).unwrap();
        let mut instance = compiled.instantiate(Box::new(NoHost)).unwrap().unwrap();
        // Lowering the string calls realloc: 200,000 grows, well within the fuel of one call.
        let ended = instance.call(0, &[Value::String(HostString::utf8("abc"))]).unwrap();
        assert!(ended.is_ok(), "{engine}: {ended:?}");
    }
}
