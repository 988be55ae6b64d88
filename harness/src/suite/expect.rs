//! A case's expectation checked against the reference's outcome. The host's view (trap,
//! result, import arguments, host destructors) and a guest's log (realloc calls, params, heap
//! bytes, ...) are checked apart, so that a fused case checks the caller's log and the
//! callee's log with the same fields.

use anyhow::{Result, anyhow, bail};

use crate::encode::protocol::{HEAP, callback_entry, dtor_entry, export_entry, post_return_entry};
use crate::encode::script::Event;
use crate::reference::types::StringEncoding;
use crate::runtime::fused::FusedPrepared;
use crate::runtime::prepared::ImportType;
use crate::runtime::{HostEvent, Outcome, Prepared};
use crate::suite::cases::{CaseSpec, ExpectSpec};
use crate::world::wave::{parse_value, print_value};

/// A plain case: the host's view, then the guest's log.
pub fn check_plain(prepared: &Prepared, c: &CaseSpec, o: &Outcome) -> Result<()> {
    let e = &c.expect;
    if e.callee.is_some() {
        bail!("`expect.callee` is for fused cases (give `callee`)");
    }
    check_trap(e, o)?;
    check_result(prepared, c, o)?;
    check_import_args(prepared, c, o)?;
    check_host_dtors(e, o)?;
    check_log(prepared, e, o.log.as_deref(), "guest")
}

/// A fused case: the trap, the caller's log (`expect`), the callee's log (`expect.callee`).
pub fn check_fused(fp: &FusedPrepared, c: &CaseSpec, o: &Outcome) -> Result<()> {
    let e = &c.expect;
    if e.result.is_some() || e.import_args.is_some() || e.host_dtors.is_some() {
        bail!("a fused case's host only calls `run`: expect no result, import-args or host-dtors");
    }
    check_trap(e, o)?;
    check_log(&fp.caller, e, o.log.as_deref(), "caller")?;
    let Some(callee) = &e.callee else { return Ok(()) };
    if callee.trap.is_some()
        || callee.result.is_some()
        || callee.import_args.is_some()
        || callee.host_dtors.is_some()
        || callee.callee.is_some()
    {
        bail!("`expect.callee` takes the callee's log only: realloc, params, heap, heap-at-return, ...");
    }
    check_log(&fp.callee, callee, o.callee_log.as_deref(), "callee")
}

fn check_trap(e: &ExpectSpec, o: &Outcome) -> Result<()> {
    let Some(trap) = &e.trap else { return Ok(()) };
    let got = o.trap_kind().map_or("none", |k| k.name());
    if got != trap {
        bail!(
            "expected trap {trap}, the reference gives {got}{}",
            o.trap.as_ref().map_or(String::new(), |t| format!(" ({})", t.message))
        );
    }
    Ok(())
}

fn check_result(prepared: &Prepared, c: &CaseSpec, o: &Outcome) -> Result<()> {
    let Some(want) = &c.expect.result else { return Ok(()) };
    let ft = &prepared.exports.iter().find(|(n, _)| *n == c.call).ok_or_else(|| anyhow!("no export"))?.1;
    let t = ft.result.as_ref().ok_or_else(|| anyhow!("`{}` has no result", c.call))?;
    let want_v = parse_value(t, want, StringEncoding::Utf8)?;
    let got = o.events.iter().find_map(|ev| match ev {
        HostEvent::Returned { result: Some(v), .. } => Some(v),
        _ => None,
    });
    match got {
        Some(v) if v.matches(&want_v) => Ok(()),
        Some(v) => bail!("expected result {want}, the reference gives {}", print_value(t, v).unwrap_or_default()),
        None => bail!("expected result {want}, the call returned nothing"),
    }
}

fn check_import_args(prepared: &Prepared, c: &CaseSpec, o: &Outcome) -> Result<()> {
    let Some(want) = &c.expect.import_args else { return Ok(()) };
    let got: Vec<&Vec<crate::reference::Value>> = o
        .events
        .iter()
        .filter_map(|ev| match ev {
            HostEvent::Import { args, .. } => Some(args),
            _ => None,
        })
        .collect();
    if got.len() != want.len() {
        bail!("expected {} import call(s), the reference makes {}", want.len(), got.len());
    }
    for (imp, (want, got)) in c.imports.iter().zip(want.iter().zip(got)) {
        let Some(ImportType::Func { ft, .. }) =
            prepared.imports.iter().find(|ty| matches!(ty, ImportType::Func { name, .. } if *name == imp.call))
        else {
            bail!("no import `{}`", imp.call)
        };
        for ((_, t), (w, g)) in ft.params.iter().zip(want.iter().zip(got)) {
            if !parse_value(t, w, StringEncoding::Utf8)?.matches(g) {
                bail!(
                    "import `{}` expected argument {w}, the reference gives {}",
                    imp.call,
                    print_value(t, g).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn check_host_dtors(e: &ExpectSpec, o: &Outcome) -> Result<()> {
    let Some(want) = &e.host_dtors else { return Ok(()) };
    let got: Vec<u32> = o
        .events
        .iter()
        .filter_map(|ev| match ev {
            HostEvent::Dtor { rep } => Some(*rep),
            _ => None,
        })
        .collect();
    if &got != want {
        bail!("expected host destructor calls {want:?}, the reference gives {got:?}");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex as written in a case: whitespace separates groups and means nothing.
fn unspaced(hex: &str) -> String {
    hex.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The fields of `e` that one guest's log answers (`whose`: guest, caller or callee).
fn check_log(prepared: &Prepared, e: &ExpectSpec, log: Option<&[Event]>, whose: &str) -> Result<()> {
    let log = || log.ok_or_else(|| anyhow!("no {whose} log (the case trapped)"));
    if let Some(want) = &e.realloc {
        let got: Vec<[u32; 4]> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Realloc { old_ptr, old_size, align, new_size, .. } => {
                    Some([*old_ptr, *old_size, *align, *new_size])
                }
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected {whose} realloc calls {want:?}, the reference makes {got:?}");
        }
    }
    for (want, at_return) in [(&e.heap, false), (&e.heap_at_return, true)] {
        let Some(want) = want else { continue };
        let mut dumps = log()?.iter().filter_map(|ev| match ev {
            Event::Memory { addr, bytes } if u64::from(*addr) == HEAP => Some(bytes),
            _ => None,
        });
        let got = if at_return { dumps.next_back() } else { dumps.next() };
        let got = hex(got.ok_or_else(|| anyhow!("no heap dump in the {whose} log"))?);
        let want = unspaced(want);
        if got != want {
            let when = if at_return { "by the return" } else { "while lowering the arguments" };
            bail!("expected {whose} heap {want} {when}, the reference writes {got}");
        }
    }
    if let Some(want) = &e.ret_area {
        // The script logs nothing but heap dumps and return areas.
        let got: Vec<String> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Memory { addr, bytes } if u64::from(*addr) != HEAP => Some(hex(bytes)),
                _ => None,
            })
            .collect();
        let want: Vec<String> = want.iter().map(|w| unspaced(w)).collect();
        if got != want {
            bail!("expected {whose} return areas {want:?}, the reference writes {got:?}");
        }
    }
    if let Some(want) = &e.builtin_results {
        let builtin = |t: u32| !matches!(prepared.imports.get(t as usize), Some(ImportType::Func { .. }));
        let got: Vec<u64> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Import { thunk, results } if builtin(*thunk) => Some(results.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if &got != want {
            bail!("expected {whose} built-in results {want:?}, the reference gives {got:?}");
        }
    }
    let entered = |range: std::ops::Range<u32>| -> Result<Vec<Vec<u64>>> {
        Ok(log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Enter { entry, params } if range.contains(entry) => Some(params.clone()),
                _ => None,
            })
            .collect())
    };
    if let Some(want) = &e.params {
        let got = entered(export_entry(0)..post_return_entry(0))?;
        if &got != want {
            bail!("expected {whose} export params {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.post_return {
        let got = entered(post_return_entry(0)..dtor_entry(0))?;
        if &got != want {
            bail!("expected {whose} post-return calls with {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.dtors {
        let got: Vec<u32> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Enter { entry, params } if (dtor_entry(0)..callback_entry(0)).contains(entry) => {
                    params.first().map(|p| *p as u32)
                }
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected {whose} destructor calls {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.events {
        let got: Vec<Vec<u64>> = entered(callback_entry(0)..u32::MAX)?;
        let want: Vec<Vec<u64>> = want.iter().map(|e| e.iter().map(|&w| u64::from(w)).collect()).collect();
        if got != want {
            bail!("expected {whose} callback events {want:?}, the reference gives {got:?}");
        }
    }
    Ok(())
}
