//! Fused suite cases: the case's guest is a caller composed with a callee guest (`callee`), each
//! with its own memory and string encoding. The caller's `run` calls the callee's exports
//! through its imports; the reference chains the two guest models with canon_lower and
//! canon_lift, and each selected runtime in its `-fused` mode (`wasmtime-fused`) runs the
//! composite with its fused adapters.

use anyhow::{Result, anyhow, bail};

use crate::encode::names::NameScheme;
use crate::engine::Selection;
use crate::oracle::compare_fused;
use crate::plan::{CallPlan, GuestOp, GuestValues, ImportPlan, Misses, StepPlan, build_case};
use crate::reference::types::StringEncoding;
use crate::runtime::fused::{FusedCase, FusedPrepared};
use crate::runtime::model::NAME as REFERENCE;
use crate::suite::cases::{
    CalleeSpec, CaseId, CaseSpec, Ran, Ready, WorldCache, corruption, expectation_status, import_call, parse_encoding,
    parse_names, realloc_answers, result_values,
};
use crate::suite::expect::check_fused;
use crate::suite::expectations::Expectations;

/// (caller encoding, callee encoding, name scheme).
pub(crate) type FusedKey = (StringEncoding, StringEncoding, NameScheme);

/// Run a fused case on the reference and on the selected runtimes' composition modes.
pub(crate) fn run_fused(
    worlds: &mut WorldCache<'_, FusedKey, Ready<FusedPrepared>>,
    id: CaseId<'_>,
    c: &CaseSpec,
    callee: &CalleeSpec,
    engines: &[Selection],
    expectations: &Expectations,
) -> Result<Vec<Ran>> {
    let key = (
        parse_encoding(c.encoding.as_deref())?,
        parse_encoding(callee.encoding.as_deref())?,
        parse_names(c.names.as_deref())?,
    );
    let ready = worlds.get(key, |world, (caller, callee, scheme)| {
        let fp = FusedPrepared::new(world, None, scheme, caller, callee)?;
        let artifact = fp.artifact()?;
        Ok(Ready::new(fp, artifact))
    })?;
    let case = plan_fused(&ready.prepared, c, callee)?;
    let expected = ready.expected(&case.caller, &[&case.callee])?;
    let status = expectation_status(check_fused(&ready.prepared, c, &expected));
    let mut out = vec![Ran::new(REFERENCE, status, Some(&expected))];
    let fused = engines.iter().filter(|s| s.fused()).cloned();
    let run = (id, &case.caller, &[&case.callee][..]);
    out.extend(ready.rows(run, fused, expectations, compare_fused, &expected));
    Ok(out)
}

/// The caller runs `run`, making the case's import calls in order; the callee answers each
/// call with the import entry's `returns` (laid out in the callee's encoding).
fn plan_fused(fp: &FusedPrepared, c: &CaseSpec, callee: &CalleeSpec) -> Result<FusedCase> {
    if !c.call.is_empty()
        || !c.args.is_empty()
        || c.returns.is_some()
        || c.corrupt.is_some()
        || !c.builtins.is_empty()
        || !c.steps.is_empty()
    {
        bail!("a fused case's caller runs `run`: give its calls of the callee as `imports` only");
    }
    if c.imports.is_empty() {
        bail!("a fused case calls the callee: give `imports`");
    }
    let mut ops = vec![];
    let mut callee_steps = vec![];
    let mut callee_realloc = Some(realloc_answers(&fp.callee, &callee.realloc)?);
    for imp in &c.imports {
        let (thunk, ft, args) = import_call(&fp.caller, imp)?;
        let export = fp.thunk_to_export[thunk as usize]
            .ok_or_else(|| anyhow!("import `{}` does not reach the callee", imp.call))?;
        ops.push(GuestOp::Import(ImportPlan { thunk, args, result: None, later: false }));
        let what = format!("the callee's `{}`", imp.call);
        let values = result_values(ft, imp.returns.as_ref(), fp.callee.encoding, &what)?;
        callee_steps.push(StepPlan::Call(CallPlan {
            export,
            args: vec![],
            ops: vec![],
            result: GuestValues { values, corruption: corruption(&imp.returns_corrupt)? },
            realloc: callee_realloc.take().unwrap_or_default(),
        }));
    }
    let result = GuestValues { values: vec![], corruption: None };
    let run = CallPlan { export: 0, args: vec![], ops, result, realloc: realloc_answers(&fp.caller, &c.realloc)? };
    let caller = build_case(&fp.caller, &[StepPlan::Call(run)], Misses::Refuse)?;
    let callee = build_case(&fp.callee, &callee_steps, Misses::Refuse)?.script;
    Ok(FusedCase { caller, callee })
}
