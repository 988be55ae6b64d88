//! The case driver, for every runtime: a fresh instance, each scripted guest reset and its
//! script loaded (through its control functions, or straight into its memory where the runtime
//! reaches it), the host's steps, then each guest's log read back. The host answers imports
//! from the case's plan and records what it saw.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use anyhow::{Result, anyhow, bail};

use super::artifact::{Artifact, Control};
use super::{Case, Compiled, Host, HostEvent, ImportAnswer, Instance, Outcome, Step};
use crate::encode::guest::LOAD_CHUNK;
use crate::encode::protocol;
use crate::encode::script::{Event, Script, parse_log};
use crate::reference::types::ResourceType;
use crate::reference::value::Value;

/// The host of a case: planned import answers, in call order, and the events so far.
#[derive(Debug, Default)]
pub struct PlannedHost {
    pub answers: VecDeque<ImportAnswer>,
    pub events: Vec<HostEvent>,
    /// Whether the last answer given is delivered later.
    later: bool,
}

impl PlannedHost {
    /// The host of `case`, before any call.
    pub fn new(case: &Case) -> PlannedHost {
        PlannedHost { answers: case.import_answers.iter().cloned().collect(), events: vec![], later: false }
    }
}

impl Host for PlannedHost {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        self.events.push(HostEvent::Import { thunk, args });
        let answer =
            self.answers.pop_front().ok_or_else(|| anyhow!("the case gives no result for this import call"))?;
        self.later = answer.later;
        Ok(answer.result)
    }

    fn answered_later(&self) -> bool {
        self.later
    }

    fn dtor(&mut self, _: &ResourceType, rep: u32) -> Result<()> {
        self.events.push(HostEvent::Dtor { rep });
        Ok(())
    }
}

/// Run `case` on a fresh instance of `compiled`. `more` are the scripts of the artifact's
/// further guests (a composition's callee), in order.
pub fn run_case(compiled: &mut dyn Compiled, artifact: &Artifact, case: &Case, more: &[&Script]) -> Result<Outcome> {
    let scripts: Vec<&Script> = std::iter::once(&case.script).chain(more.iter().copied()).collect();
    if scripts.len() != artifact.guests.len() {
        bail!("{} scripts for {} guests", scripts.len(), artifact.guests.len());
    }
    let host = Rc::new(RefCell::new(PlannedHost::new(case)));
    let mut instance =
        compiled.instantiate(Box::new(host.clone()))?.map_err(|trap| anyhow!("the instantiation trapped: {trap}"))?;
    for (guest, (control, script)) in artifact.guests.iter().zip(&scripts).enumerate() {
        load_script(instance.as_mut(), guest, control, script)?;
    }
    let record = |e: HostEvent| host.borrow_mut().events.push(e);
    let mut outcome = Outcome::default();
    for step in &case.steps {
        let done = match step {
            Step::Call(call) => instance
                .call(call.export as usize, &call.args)?
                .map(|result| HostEvent::Returned { export: call.export, result }),
            Step::Drop { slot } => instance.drop_resource(*slot)?.map(|()| HostEvent::Dropped { slot: *slot }),
        };
        match done {
            Ok(event) => record(event),
            Err(trap) => {
                outcome.trap = Some(trap);
                break;
            }
        }
    }
    outcome.events = std::mem::take(&mut host.borrow_mut().events);
    if outcome.trap.is_none() {
        let mut logs =
            artifact.guests.iter().enumerate().map(|(guest, control)| read_log(instance.as_mut(), guest, control));
        outcome.log = logs.next().transpose()?;
        outcome.callee_log = logs.next().transpose()?;
    }
    Ok(outcome)
}

/// A control call, which must not trap.
fn control(instance: &mut dyn Instance, export: usize, args: &[Value]) -> Result<Option<Value>> {
    instance.call(export, args)?.map_err(|trap| anyhow!("control call trapped: {trap}"))
}

/// Reset guest `guest` (its index in the artifact's guests) and load a script into it: into
/// its memory at once where the runtime reaches it (`Instance::with_guest_memory`), else with
/// `load` calls, `LOAD_CHUNK` bytes a call. Chunks of zeros are not sent: a fresh instance's
/// control region is zero (no state survives an instance).
pub fn load_script(instance: &mut dyn Instance, guest: usize, control_fns: &Control, script: &Script) -> Result<()> {
    control(instance, control_fns.reset, &[])?;
    let image = script.control_image()?;
    if instance.with_guest_memory(guest, &mut |memory| {
        memory.write(protocol::CONTROL, &image).map_err(|t| anyhow!("cannot write the script: {t}"))
    })? {
        return Ok(());
    }
    for (i, chunk) in image.chunks(LOAD_CHUNK).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let mut padded = chunk.to_vec();
        padded.resize(LOAD_CHUNK, 0);
        let mut args = vec![Value::U32((i * LOAD_CHUNK) as u32)];
        args.extend(padded.chunks(8).map(|w| Value::U64(u64::from_le_bytes(w.try_into().expect("8-byte words")))));
        control(instance, control_fns.load, &args)?;
    }
    Ok(())
}

/// Read and parse the log of guest `guest`: from its memory where the runtime reaches it (what
/// `read-log` returns: LOG up to the log cursor), else with a `read-log` call.
pub fn read_log(instance: &mut dyn Instance, guest: usize, control_fns: &Control) -> Result<Vec<Event>> {
    let mut direct = None;
    instance.with_guest_memory(guest, &mut |memory| {
        let mut cursor = [0; 4];
        memory.read(protocol::LOG_CURSOR, &mut cursor).map_err(|t| anyhow!("cannot read the log cursor: {t}"))?;
        let end = u64::from(u32::from_le_bytes(cursor));
        if !(protocol::LOG..=protocol::MEMORY_SIZE).contains(&end) {
            bail!("the guest's log cursor {end} is outside its memory's log");
        }
        let mut bytes = vec![0; (end - protocol::LOG) as usize];
        memory.read(protocol::LOG, &mut bytes).map_err(|t| anyhow!("cannot read the log: {t}"))?;
        direct = Some(bytes);
        Ok(())
    })?;
    if let Some(bytes) = direct {
        return parse_log(&bytes);
    }
    let bytes = match control(instance, control_fns.read_log, &[])? {
        Some(Value::List(bytes)) => bytes
            .iter()
            .map(|b| match b {
                Value::U8(b) => Ok(*b),
                other => Err(anyhow!("read-log returned a non-byte {other:?}")),
            })
            .collect::<Result<Vec<u8>>>()?,
        other => bail!("read-log returned {other:?}"),
    };
    parse_log(&bytes)
}
