//! Scripts for the scripted guest (what it does when called) and its log (what it saw), in the
//! byte format of `protocol`.

use anyhow::{Result, bail};

use super::protocol::{self, answer, log, op};

/// What the guest's realloc answers to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReallocAnswer {
    /// The documented bump allocation.
    Bump,
    /// This pointer, whatever was asked (misaligned or out of bounds on purpose).
    Value(u32),
    /// Trap inside realloc.
    Trap,
    /// Call import `thunk` (a resource built-in) with `arg`, then bump-allocate.
    Call { thunk: u32, arg: u32 },
}

/// A script: realloc answers, then frames of instructions, one per guest entry that runs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub realloc: Vec<ReallocAnswer>,
    code: Vec<u8>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "realloc answers: {:?}", self.realloc)?;
        f.write_str(&self.disassemble())
    }
}

impl Script {
    fn insn(&mut self, tag: u32, a: u32, b: u64) -> &mut Self {
        self.code.extend_from_slice(&tag.to_le_bytes());
        self.code.extend_from_slice(&a.to_le_bytes());
        self.code.extend_from_slice(&b.to_le_bytes());
        self
    }

    /// Begin the frame that entry `entry` runs (see `protocol::export_entry` etc.).
    pub fn frame(&mut self, entry: u32) -> &mut Self {
        self.insn(op::FRAME, entry, 0)
    }

    /// Write `bytes` at `addr`.
    pub fn write(&mut self, addr: u32, bytes: &[u8]) -> &mut Self {
        self.insn(op::WRITE, addr, bytes.len() as u64);
        self.code.extend_from_slice(bytes);
        self.code.resize(self.code.len().next_multiple_of(16), 0);
        self
    }

    pub fn arg(&mut self, raw: u64) -> &mut Self {
        self.insn(op::ARG, 0, raw)
    }

    /// Call import thunk `thunk` with the arguments pushed so far.
    pub fn call(&mut self, thunk: u32) -> &mut Self {
        self.insn(op::CALL, thunk, 0)
    }

    pub fn log_memory(&mut self, addr: u32, len: u32) -> &mut Self {
        self.insn(op::LOG_MEMORY, addr, len.into())
    }

    /// Log memory from `from` up to the heap's `next`.
    pub fn log_heap(&mut self, from: u32) -> &mut Self {
        self.insn(op::LOG_HEAP, from, 0)
    }

    pub fn trap(&mut self) -> &mut Self {
        self.insn(op::TRAP, 0, 0)
    }

    pub fn result(&mut self, raw: u64) -> &mut Self {
        self.insn(op::RESULT, 0, raw)
    }

    pub fn ret(&mut self) -> &mut Self {
        self.insn(op::RETURN, 0, 0)
    }

    /// The instructions, one per line (data of WRITE shown in hex).
    pub fn disassemble(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i + 16 <= self.code.len() {
            let tag = u32::from_le_bytes(self.code[i..i + 4].try_into().unwrap());
            let a = u32::from_le_bytes(self.code[i + 4..i + 8].try_into().unwrap());
            let b = u64::from_le_bytes(self.code[i + 8..i + 16].try_into().unwrap());
            i += 16;
            let line = match tag {
                op::FRAME => format!("frame entry={a:#x}"),
                op::WRITE => {
                    let n = b as usize;
                    let data: String =
                        self.code[i..(i + n).min(self.code.len())].iter().map(|x| format!("{x:02x}")).collect();
                    i += n.next_multiple_of(16);
                    format!("  write {a} <- {data}")
                }
                op::ARG => format!("  arg {b:#x}"),
                op::CALL => format!("  call thunk {a}"),
                op::LOG_MEMORY => format!("  log-memory {a} {b}"),
                op::LOG_HEAP => format!("  log-heap from {a}"),
                op::TRAP => "  trap".into(),
                op::RESULT => format!("  result {b:#x}"),
                op::RETURN => "  return".into(),
                other => format!("  ?{other}"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The bytes of the control region (`protocol::CONTROL` .. `protocol::LOG`): the realloc
    /// answers (END-terminated) then the instructions (END-terminated).
    pub fn control_image(&self) -> Result<Vec<u8>> {
        // Each answer is one slot of (kind, value); `Call` takes a second for its argument.
        let slots: Vec<(u32, u32)> = self
            .realloc
            .iter()
            .flat_map(|a| match a {
                ReallocAnswer::Bump => vec![(answer::BUMP, 0)],
                ReallocAnswer::Value(v) => vec![(answer::VALUE, *v)],
                ReallocAnswer::Trap => vec![(answer::TRAP, 0)],
                ReallocAnswer::Call { thunk, arg } => vec![(answer::CALL, *thunk), (*arg, 0)],
            })
            .collect();
        if slots.len() as u64 >= protocol::MAX_REALLOC_ANSWERS {
            bail!("script has {} realloc answer slots; at most {}", slots.len(), protocol::MAX_REALLOC_ANSWERS - 1);
        }
        let mut out = vec![0u8; (protocol::SCRIPT - protocol::CONTROL) as usize];
        for (i, (kind, value)) in slots.iter().enumerate() {
            out[8 * i..8 * i + 4].copy_from_slice(&kind.to_le_bytes());
            out[8 * i + 4..8 * i + 8].copy_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&self.code);
        out.extend_from_slice(&[0u8; 16]); // op::END
        let room = (protocol::LOG - protocol::CONTROL) as usize;
        if out.len() > room {
            bail!("script needs {} bytes; the guest has room for {room}", out.len());
        }
        Ok(out)
    }
}

/// One event of the guest's log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// An entry ran with these flat params (raw bits).
    Enter { entry: u32, params: Vec<u64> },
    /// realloc was called; `returned` is `None` when it trapped.
    Realloc { old_ptr: u32, old_size: u32, align: u32, new_size: u32, returned: Option<u32> },
    /// An import thunk returned these flat results (raw bits).
    Import { thunk: u32, results: Vec<u64> },
    /// Memory contents the script asked for.
    Memory { addr: u32, bytes: Vec<u8> },
}

/// Parse the guest's log. A malformed log (a guest or encoder bug) is an error.
pub fn parse_log(bytes: &[u8]) -> Result<Vec<Event>> {
    let rec = |i: usize| -> Option<(u32, u32, u64)> {
        let r = bytes.get(i..i + 16)?;
        Some((
            u32::from_le_bytes(r[0..4].try_into().ok()?),
            u32::from_le_bytes(r[4..8].try_into().ok()?),
            u64::from_le_bytes(r[8..16].try_into().ok()?),
        ))
    };
    let mut events = vec![];
    // Reallocs not returned yet: the guest's realloc may call an import before it returns.
    let mut open = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let Some((tag, a, b)) = rec(i) else { bail!("log ends inside a record at byte {i}") };
        i += 16;
        match tag {
            log::ENTER => events.push(Event::Enter { entry: a, params: vec![] }),
            log::PARAM => match events.last_mut() {
                Some(Event::Enter { params, .. }) => params.push(b),
                _ => bail!("PARAM record at byte {} outside an ENTER", i - 16),
            },
            log::REALLOC => {
                // A full log (LOG_OVERFLOW) drops the records that do not fit, so the log may
                // end between the two records of a realloc: it is not logged.
                if i == bytes.len() {
                    break;
                }
                let Some((log::REALLOC_ARGS, align, new_size)) = rec(i) else {
                    bail!("REALLOC without REALLOC_ARGS at byte {i}")
                };
                i += 16;
                open.push(events.len());
                events.push(Event::Realloc {
                    old_ptr: a,
                    old_size: b as u32,
                    align,
                    new_size: new_size as u32,
                    returned: None,
                });
            }
            log::REALLOC_RET => match open.pop().and_then(|k| events.get_mut(k)) {
                Some(Event::Realloc { returned, .. }) => *returned = Some(a),
                _ => bail!("REALLOC_RET record at byte {} outside a realloc", i - 16),
            },
            log::IMPORT_DONE => events.push(Event::Import { thunk: a, results: vec![] }),
            log::IMPORT_RESULT => match events.last_mut() {
                Some(Event::Import { results, .. }) => results.push(b),
                _ => bail!("IMPORT_RESULT record at byte {} outside an import", i - 16),
            },
            log::MEMORY => {
                let len = b as usize;
                let Some(data) = bytes.get(i..i + len) else {
                    bail!("MEMORY record at byte {} runs past the log", i - 16)
                };
                events.push(Event::Memory { addr: a, bytes: data.to_vec() });
                i += len.next_multiple_of(16);
            }
            other => bail!("unknown log tag {other} at byte {}", i - 16),
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tag: u32, a: u32, b: u64) -> Vec<u8> {
        [tag.to_le_bytes().as_slice(), &a.to_le_bytes(), &b.to_le_bytes()].concat()
    }

    /// Found by the composition fuzz target: a log that filled up right after a REALLOC
    /// record (its REALLOC_ARGS dropped by LOG_OVERFLOW) is a log cut there, not a malformed one.
    #[test]
    fn a_full_log_may_end_between_the_records_of_a_realloc() {
        let enter = record(log::ENTER, 3, 0);
        let cut = [enter.clone(), record(log::REALLOC, 0, 0)].concat();
        assert_eq!(parse_log(&cut).unwrap(), vec![Event::Enter { entry: 3, params: vec![] }]);
        // Anywhere else, a REALLOC must be followed by its arguments.
        let broken = [record(log::REALLOC, 0, 0), enter].concat();
        assert!(parse_log(&broken).is_err());
    }
}
