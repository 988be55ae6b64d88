//! insta snapshots (under snapshots/) of reference behaviour worth reviewing as a whole:
//! tricky layouts, the realloc trace of every string-encoding pair on tricky strings, a
//! handle-table sequence, the trap class of every trapping suite case, and 🔀 the guest's log
//! in tricky async scenarios. A change in any of them is a change in what witness says the spec
//! requires, so it must be reviewed (`cargo insta review`, see README).

use std::fmt::Write as _;

use witness::cli::abi::{hex, layout};
use witness::reference::concurrency::subtask::{Subtask, SubtaskState};
use witness::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use witness::reference::handles::{
    DropEffect, canon_resource_drop, canon_resource_new, canon_resource_rep, lift_borrow, lift_own,
};
use witness::reference::lower_flat::lower_flat;
use witness::reference::types::{InstanceId, ResourceType, StringEncoding, ValType};
use witness::reference::{BumpHeap, HostString, Value};
use witness::world::typexpr::parse_type;

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn tricky_layouts() {
    let types = [
        "bool",
        "char",
        "string",
        "list<u8>",
        "option<u8>",
        "option<u32>",
        "option<u64>",
        "option<string>",
        "option<option<u8>>",
        "result",
        "result<u8, u64>",
        "result<f32, u32>",
        "result<f32, f64>",
        "result<_, string>",
        "tuple<u8, u32>",
        "tuple<u8, u16, u8>",
        "tuple<u64, u8>",
        "tuple<u8, tuple<u8, u64>, u8>",
        "list<tuple<string, option<u32>>>",
        "option<tuple<f32, f32>>",
        "result<tuple<f32, f32>, u64>",
        "option<result<f64, s8>>",
        "tuple<char, option<f64>, bool>",
    ];
    let mut out = String::new();
    writeln!(out, "{:<34} {:>4} {:>5}  {:<22} offsets", "type", "size", "align", "flat").unwrap();
    for text in types {
        let t = parse_type(text, None).unwrap();
        let l = layout(&t);
        let flat: Vec<&str> = l.flat.iter().map(|t| t.name()).collect();
        let offs = match l.payload_offset {
            Some(p) => format!("payload {p}"),
            None => format!("{:?}", l.fields),
        };
        writeln!(out, "{text:<34} {:>4} {:>5}  {:<22} {offs}", l.size, l.align, format!("({})", flat.join(" ")))
            .unwrap();
    }
    snapshot!("layouts", out);
}

#[test]
fn string_realloc_traces_for_every_encoding_pair() {
    let strings = ["", "abc", "é ÿ", "€uro", "😀", "aé€", "héllo 😀"];
    let mut out = String::new();
    for text in strings {
        writeln!(out, "== {text:?}").unwrap();
        for src in StringEncoding::ALL {
            for dst in StringEncoding::ALL {
                let v = Value::String(HostString::new(text, src));
                let mut heap = BumpHeap::new(256, 16);
                let mut inst = ComponentInstance::new(InstanceId(1));
                let mut cx = LiftLowerContext::new(dst, &mut heap, &mut inst, BorrowScope::None);
                let result = lower_flat(&mut cx, &v, &ValType::String);
                let calls: Vec<String> = heap
                    .calls
                    .iter()
                    .map(|c| format!("({},{},{},{})", c.old_ptr, c.old_size, c.align, c.new_size))
                    .collect();
                let res = match result {
                    Ok(flat) => {
                        let ptr = flat[0].bits();
                        let len = flat[1].bits();
                        let tag =
                            if len & (1 << 31) != 0 { format!("utf16 {}", len ^ (1 << 31)) } else { len.to_string() };
                        let bytes_len = match dst {
                            StringEncoding::Utf8 => len,
                            StringEncoding::Utf16 => 2 * len,
                            StringEncoding::Latin1Utf16 if len & (1 << 31) != 0 => 2 * (len ^ (1 << 31)),
                            StringEncoding::Latin1Utf16 => len,
                        };
                        let bytes = &heap.bytes[ptr as usize..(ptr + bytes_len) as usize];
                        format!("ptr {ptr} len {tag} bytes {}", hex(bytes))
                    }
                    Err(trap) => format!("trap {trap}"),
                };
                writeln!(out, "{:>12} -> {:<12} realloc {} => {res}", src.name(), dst.name(), calls.join(" ")).unwrap();
            }
        }
    }
    snapshot!("string_realloc_traces", out);
}

/// How a handle operation ended, for the sequence snapshot.
fn drop_result(r: Result<DropEffect, witness::reference::Trap>) -> String {
    match r {
        Ok(DropEffect::Destructor { rep, .. }) => format!("dropped, destructor(rep={rep})"),
        Ok(DropEffect::None) => "dropped".into(),
        Err(t) => format!("trap {}", t.kind),
    }
}

fn index(r: Result<u32, witness::reference::Trap>) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(t) => format!("trap {}", t.kind),
    }
}

/// A trap poisons the instance (definitions.py), so each trapping step runs on a copy and the
/// sequence goes on with the instance as it was before.
#[test]
fn handle_table_sequence() {
    let r = ResourceType { id: 1, name: "r".into(), impl_instance: InstanceId(1) };
    let s = ResourceType { id: 2, name: "s".into(), impl_instance: InstanceId(1) };
    let host = ResourceType { id: 3, name: "host".into(), impl_instance: InstanceId(0) };
    let own_r = ValType::Own(r.clone());
    let borrow_r = ValType::Borrow(r.clone());
    let mut inst = ComponentInstance::new(InstanceId(1));
    let mut heap = BumpHeap::new(64, 8);
    let mut out = String::new();
    let mut log = |what: &str, result: String| writeln!(out, "{what:<44} {result}").unwrap();
    for rep in [10, 20, 30] {
        log(&format!("resource.new r rep={rep}"), index(canon_resource_new(&mut inst, &r, rep)));
    }
    log("resource.drop r 2", drop_result(canon_resource_drop(&mut inst, &r, 2)));
    log("resource.new r rep=40 (reuses 2)", index(canon_resource_new(&mut inst, &r, 40)));
    log("resource.rep r 2", index(canon_resource_rep(&inst, &r, 2)));
    log("resource.rep s 1 (type confusion)", index(canon_resource_rep(&inst, &s, 1)));
    log("resource.rep r 0", index(canon_resource_rep(&inst, &r, 0)));
    log("resource.rep r 9 (never allocated)", index(canon_resource_rep(&inst, &r, 9)));
    log("resource.rep r 0xffffffff", index(canon_resource_rep(&inst, &r, u32::MAX)));
    for i in [1, 2, 3] {
        log(&format!("resource.drop r {i}"), drop_result(canon_resource_drop(&mut inst, &r, i)));
    }
    log("resource.drop r 3 (twice)", drop_result(canon_resource_drop(&mut inst.clone(), &r, 3)));
    for rep in [50, 60, 70, 80] {
        log(&format!("resource.new r rep={rep}"), index(canon_resource_new(&mut inst, &r, rep)));
    }
    let mut subtask = Subtask::default();
    {
        let mut cx =
            LiftLowerContext::new(StringEncoding::Utf8, &mut heap, &mut inst, BorrowScope::Subtask(&mut subtask));
        log("lift_borrow 3 (lent to a call)", index(lift_borrow(&mut cx, 3, &borrow_r)));
    }
    {
        let mut probe = inst.clone();
        let mut cx = LiftLowerContext::new(StringEncoding::Utf8, &mut heap, &mut probe, BorrowScope::None);
        log("lift_own 3 while lent", index(lift_own(&mut cx, 3, &own_r)));
    }
    log("resource.drop r 3 while lent", drop_result(canon_resource_drop(&mut inst.clone(), &r, 3)));
    subtask.resolve(SubtaskState::Returned, vec![]).expect("an unresolved subtask");
    subtask.deliver_resolve(&mut inst).expect("a resolved subtask");
    {
        let mut cx = LiftLowerContext::new(StringEncoding::Utf8, &mut heap, &mut inst, BorrowScope::None);
        log("lift_own 3 after the call resolved", index(lift_own(&mut cx, 3, &own_r)));
    }
    let task = inst.start_task();
    {
        let mut cx = LiftLowerContext::new(StringEncoding::Utf8, &mut heap, &mut inst, BorrowScope::Task(task));
        let borrow_host = ValType::Borrow(host.clone());
        let lowered =
            |r: Result<Vec<witness::reference::Flat>, witness::reference::Trap>| index(r.map(|f| f[0].bits() as u32));
        log(
            "lower_borrow host rep=5 (new borrow handle)",
            lowered(lower_flat(&mut cx, &Value::Handle(5), &borrow_host)),
        );
        log("lower_borrow r rep=6 (implementer: the rep)", lowered(lower_flat(&mut cx, &Value::Handle(6), &borrow_r)));
    }
    log("lift_own 3 of a borrow handle", {
        let mut probe = inst.clone();
        let mut cx = LiftLowerContext::new(StringEncoding::Utf8, &mut heap, &mut probe, BorrowScope::None);
        index(lift_own(&mut cx, 3, &ValType::Own(host.clone())))
    });
    log("task.return with the borrow held", format!("{:?}", inst.clone().task_return(task).map_err(|t| t.kind)));
    log("resource.drop r 3 (wrong type)", drop_result(canon_resource_drop(&mut inst.clone(), &r, 3)));
    log("resource.drop host 3 (ends the borrow)", drop_result(canon_resource_drop(&mut inst, &host, 3)));
    log("task.return", format!("{:?}", inst.task_return(task).map_err(|t| t.kind)));
    let entries: Vec<String> = inst
        .handles
        .resources()
        .map(|(i, h)| format!("{i}:{} {}={}", if h.own { "own" } else { "borrow" }, h.rt.name, h.rep))
        .collect();
    log("table", entries.join(", "));
    snapshot!("handle_table_sequence", out);
}

/// The trap class of every suite case that traps on the reference (`area/case: class`): a
/// change in which rule fires first for a case shows up here for review.
#[test]
fn suite_trap_classes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance");
    let none = witness::suite::expectations::Expectations::default();
    let mut lines = vec![];
    for file in witness::suite::cases::suite_files(&dir).unwrap() {
        let area = file.file_stem().unwrap().to_string_lossy().to_string();
        for r in witness::suite::cases::run_file(&file, &[], &none, &|_, _, _| true).unwrap() {
            if let Some(trap) = &r.trap {
                lines.push(format!("{area}/{}: {trap}", r.name));
            }
        }
    }
    assert!(lines.len() >= 30, "only {} trapping cases", lines.len());
    snapshot!("suite_trap_classes", lines.join("\n"));
}

/// 🔀 What the guest logs on the reference in tricky async scenarios (the cases' own
/// expectations check the key values; the trace shows the whole order for review). Entry k
/// is export k's first call, 0x3000 + k (12288 + k) its callback (params: event code, p1,
/// p2); `Import` is a built-in's or an import's flat results (by thunk); `Memory` what the
/// guest logged of its memory (its heap at each entry, what it peeked, return areas).
#[test]
fn async_event_traces() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance");
    let scenarios = [
        ("streams", "stream: two partial reads before the writer hears: its one event counts both"),
        (
            "streams",
            "stream: the reader drops its end after a partial copy: the writer's event says DROPPED with the progress",
        ),
        ("streams", "stream: a read meeting a pending zero-length write completes the writer and waits itself"),
        ("streams", "stream: cancelling a write that already copied: the event it had wins"),
        ("streams", "future: a cancelled write may be written again, and the value arrives"),
        ("async", "an async import answered later: STARTED, then a SUBTASK event with RETURNED and the result"),
        ("async", "two calls waiting for the host, the second cancelled: WAIT gets the first's answer only"),
        ("async", "a set's pending event goes to the callback of a WAIT"),
    ];
    let none = witness::suite::expectations::Expectations::default();
    let mut out = String::new();
    for (area, name) in scenarios {
        let file = dir.join(format!("{area}.toml"));
        let keep = |_: &str, n: &str, _: &[String]| n == name;
        let rows = witness::suite::cases::run_file(&file, &[], &none, &keep).unwrap();
        let row = rows.iter().find(|r| r.engine == "reference").unwrap_or_else(|| panic!("no case {area}/{name}"));
        assert!(matches!(row.status, witness::suite::cases::Status::Passed), "{area}/{name}: {:?}", row.status);
        writeln!(out, "{area}/{name}").unwrap();
        for event in &row.trace {
            writeln!(out, "  {event}").unwrap();
        }
    }
    snapshot!("async_event_traces", out);
}
