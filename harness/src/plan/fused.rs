//! Plans for compositions: the caller calls one or two of the callee's functions with values
//! laid out in the caller's memory and encoding; the callee answers with values laid out in
//! its own. Either side may hand over corrupted data or answer realloc adversarially, but not
//! both in one direction: the spec lifts every value before lowering any, and allows an
//! implementation to fuse the two (CanonicalABI.md, `lower_flat_values` and `may_leave`), so
//! which of a bad value and a bad realloc answer traps first is the implementation's choice.

use anyhow::Result;
use arbitrary::Unstructured;

use super::{
    CallPlan, GuestOp, GuestValues, ImportPlan, Misses, PlanConfig, StepPlan, arbitrary_values, build_case, corruption,
    realloc_answers,
};
use crate::runtime::fused::{FusedCase, FusedPrepared};
use crate::runtime::prepared::ImportType;

/// An arbitrary fused case, or `None` when the callee has no plannable function.
pub fn arbitrary_fused_case(
    u: &mut Unstructured<'_>,
    fp: &FusedPrepared,
    cfg: &PlanConfig,
) -> Result<Option<FusedCase>> {
    let ar = |e: arbitrary::Error| anyhow::anyhow!("plan generator: {e}");
    let thunks: Vec<u32> = (0..fp.caller.imports.len() as u32)
        .filter(|&t| {
            fp.thunk_to_export[t as usize].is_some()
                && matches!(&fp.caller.imports[t as usize], ImportType::Func { ft, .. } if super::plannable(ft))
        })
        .collect();
    if thunks.is_empty() {
        return Ok(None);
    }
    let mut ops = vec![];
    let mut callee_steps = vec![];
    let (mut args_corrupt, mut results_corrupt) = (false, false);
    for _ in 0..u.int_in_range(1..=2).map_err(ar)? {
        let thunk = *u.choose(&thunks).map_err(ar)?;
        let ImportType::Func { ft, .. } = &fp.caller.imports[thunk as usize] else { continue };
        let values = arbitrary_values(u, &ft.param_types(), fp.caller.encoding).map_err(ar)?;
        let args = GuestValues { values, corruption: corruption(u, cfg).map_err(ar)? };
        args_corrupt |= args.corruption.is_some();
        ops.push(GuestOp::Import(ImportPlan { thunk, args, result: None, later: false }));
        let values = arbitrary_values(u, &ft.result_type(), fp.callee.encoding).map_err(ar)?;
        let result = GuestValues { values, corruption: corruption(u, cfg).map_err(ar)? };
        results_corrupt |= result.corruption.is_some();
        callee_steps.push(CallPlan {
            export: fp.thunk_to_export[thunk as usize].unwrap_or_default(),
            args: vec![],
            ops: vec![],
            result,
            realloc: vec![],
        });
    }
    // Adversarial realloc answers for the callee only when no argument is corrupt: the callee
    // takes its answers in order across its calls, so one planned for the first call can be
    // taken by the second; and a fused adapter may call the callee's realloc before it finds
    // a corrupt argument, so which trap comes first would not be the reference's to say.
    if !args_corrupt {
        for step in &mut callee_steps {
            step.realloc = realloc_answers(u, cfg).map_err(ar)?;
        }
    }
    let callee_steps: Vec<StepPlan> = callee_steps.into_iter().map(StepPlan::Call).collect();
    let caller = build_case(
        &fp.caller,
        &[StepPlan::Call(CallPlan {
            export: 0,
            args: vec![],
            ops,
            result: GuestValues { values: vec![], corruption: None },
            realloc: if results_corrupt { vec![] } else { realloc_answers(u, cfg).map_err(ar)? },
        })],
        Misses::Ignore,
    )?;
    let callee = build_case(&fp.callee, &callee_steps, Misses::Ignore)?.script;
    Ok(Some(FusedCase { caller, callee }))
}
