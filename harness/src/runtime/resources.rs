//! Resources as the host sees them. Host-defined resources (imported by the guest) are named
//! by their rep. Guest-defined resources the host holds live in host *slots*, numbered in the
//! order the host received them, so every engine names them alike (an engine may not expose
//! the rep of a guest resource).

use anyhow::{Result, anyhow};

use super::Prepared;
use crate::reference::types::{ResourceType, ValType, despecialize};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};
use crate::world::wit::GUEST_INSTANCE;

/// Whether the guest implements `rt` (else the host does).
pub fn is_guest_resource(rt: &ResourceType) -> bool {
    rt.impl_instance == GUEST_INSTANCE
}

/// The instance that defines `rt`, on the side that implements it: an imported interface for
/// a host resource, an exported one for a guest resource (`None`: the world's root).
pub fn resource_owner(prepared: &Prepared, rt: &ResourceType) -> Result<Option<String>> {
    let resolve = &prepared.wit.resolve;
    let index = crate::world::wit::resource_type_index(rt);
    let (_, def) =
        resolve.types.iter().find(|(id, _)| id.index() == index).ok_or_else(|| anyhow!("no resource {}", rt.name))?;
    match def.owner {
        wit_parser::TypeOwner::Interface(i) => Ok(Some(prepared.interface_name(i, !is_guest_resource(rt))?)),
        _ => Ok(None),
    }
}

/// A copy of `v` (of type `t`) with each handle replaced by `f(resource, own, handle)`.
pub fn map_handles(
    t: &ValType,
    v: &Value,
    f: &mut dyn FnMut(&ResourceType, bool, u32) -> Result<u32, Trap>,
) -> Result<Value, Trap> {
    let bad = || Trap::new(TrapKind::Assertion, format!("value {v:?} does not have type {t:?}"));
    Ok(match (despecialize(t).as_ref(), v) {
        (ValType::Own(rt), Value::Handle(x)) => Value::Handle(f(rt, true, *x)?),
        (ValType::Borrow(rt), Value::Handle(x)) => Value::Handle(f(rt, false, *x)?),
        (ValType::List(e, _), Value::List(xs)) => {
            Value::List(xs.iter().map(|x| map_handles(e, x, f)).collect::<Result<_, _>>()?)
        }
        (ValType::Record(fields), Value::Record(xs)) => Value::Record(
            fields
                .iter()
                .map(|fd| {
                    let (l, x) = xs.iter().find(|(l, _)| *l == fd.label).ok_or_else(bad)?;
                    Ok((l.clone(), map_handles(&fd.t, x, f)?))
                })
                .collect::<Result<_, Trap>>()?,
        ),
        (ValType::Variant(cases), Value::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(Box::new(map_handles(t, p, f)?)),
                _ => p.clone(),
            };
            Value::Variant(label.clone(), payload)
        }
        _ => v.clone(),
    })
}

/// Whether a type holds any handle.
pub fn has_handles(t: &ValType) -> bool {
    has_handle_of(t, &|_| true)
}

/// Whether a type holds a handle of a resource type for which `which` holds.
pub fn has_handle_of(t: &ValType, which: &dyn Fn(&ResourceType) -> bool) -> bool {
    match despecialize(t).as_ref() {
        ValType::Own(rt) | ValType::Borrow(rt) => which(rt),
        ValType::List(e, _) => has_handle_of(e, which),
        ValType::Record(fs) => fs.iter().any(|f| has_handle_of(&f.t, which)),
        ValType::Variant(cs) => cs.iter().filter_map(|c| c.t.as_ref()).any(|t| has_handle_of(t, which)),
        _ => false,
    }
}
