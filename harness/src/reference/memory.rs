//! Linear memory and `realloc` as the reference sees them: a small trait, so the same ABI code
//! runs over a `Vec<u8>` heap (here), wasmi memory and Wasmtime memory.

use super::layout::align_to;
use super::trap::{Result, Trap, TrapKind};
use super::types::PtrType;

/// One call of `realloc(old_ptr, old_size, align, new_size)` and what it returned (`None`
/// when the call trapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReallocCall {
    pub old_ptr: u64,
    pub old_size: u64,
    pub align: u64,
    pub new_size: u64,
    pub returned: Option<u64>,
}

/// A guest's linear memory plus its `realloc` export (the `memory` and `realloc` canonopts).
/// `read`/`write` are only called after the ABI's own bounds checks, so an out-of-range access
/// means the caller broke an invariant (an `Assertion` trap), never a guest-visible trap.
pub trait Memory {
    /// The memory's address type.
    fn ptr_type(&self) -> PtrType {
        PtrType::I32
    }
    /// `len(cx.opts.memory)` in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<()>;
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<()>;
    /// Call the guest's realloc. A trap inside the guest comes back as `TrapKind::GuestTrap`.
    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64>;
}

impl<M: Memory + ?Sized> Memory for &mut M {
    fn ptr_type(&self) -> PtrType {
        (**self).ptr_type()
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<()> {
        (**self).read(ptr, out)
    }
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<()> {
        (**self).write(ptr, bytes)
    }
    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64> {
        (**self).realloc(old_ptr, old_size, align, new_size)
    }
}

/// `ptr + len > mem_len` without wrap-around (definitions.py's integers are unbounded).
pub fn exceeds(ptr: u64, len: u128, mem_len: u64) -> bool {
    u128::from(ptr) + len > u128::from(mem_len)
}

/// Copy `out.len()` bytes at `ptr` out of `data`. The ABI bounds-checks before it reads, so an
/// access outside `data` is the caller's bug (an `Assertion` trap), never the guest's.
pub fn read_at(data: &[u8], ptr: u64, out: &mut [u8]) -> Result<()> {
    let r = range(data.len(), ptr, out.len())?;
    out.copy_from_slice(&data[r]);
    Ok(())
}

/// Copy `bytes` into `data` at `ptr` (see `read_at`).
pub fn write_at(data: &mut [u8], ptr: u64, bytes: &[u8]) -> Result<()> {
    let r = range(data.len(), ptr, bytes.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

fn range(mem_len: usize, ptr: u64, len: usize) -> Result<std::ops::Range<usize>> {
    if exceeds(ptr, len as u128, mem_len as u64) {
        return Err(Trap::new(
            TrapKind::Assertion,
            format!("access of {len} bytes at {ptr} outside memory of {mem_len} bytes"),
        ));
    }
    Ok(ptr as usize..ptr as usize + len)
}

/// A zeroed `Vec<u8>` memory with the documented bump allocator, so that anyone can reproduce
/// the addresses witness prints: `next` starts at `heap_base`; `realloc(old_ptr, old_size,
/// align, new_size)` returns `old_ptr` if `old_ptr != 0 && new_size <= old_size`; otherwise
/// `ptr = align_to(next, align)`, `next = ptr + new_size` (a trap if that passes the end of
/// memory), the first `min(old_size, new_size)` bytes are copied from `old_ptr`, and `ptr` is
/// returned. It records every call and every byte range written.
#[derive(Clone, Debug)]
pub struct BumpHeap {
    pub bytes: Vec<u8>,
    pub next: u64,
    pub calls: Vec<ReallocCall>,
    /// Every `write` (and realloc copy) as (address, length), in order.
    pub writes: Vec<(u64, u64)>,
}

impl BumpHeap {
    pub const DEFAULT_HEAP_BASE: u64 = 16;
    pub const DEFAULT_MEMORY_SIZE: u64 = 65536;

    pub fn new(memory_size: u64, heap_base: u64) -> BumpHeap {
        BumpHeap { bytes: vec![0; memory_size as usize], next: heap_base, calls: vec![], writes: vec![] }
    }

    /// Place bytes without recording them as written by the ABI (test setup, `--memory-hex`).
    pub fn preload(&mut self, ptr: u64, bytes: &[u8]) -> std::result::Result<(), String> {
        let start = usize::try_from(ptr).map_err(|_| "address too large".to_string())?;
        let end = start.checked_add(bytes.len()).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!("{} bytes at {ptr} do not fit in a memory of {} bytes", bytes.len(), self.bytes.len())
        })?;
        self.bytes[start..end].copy_from_slice(bytes);
        Ok(())
    }

    /// The written byte ranges, merged and sorted, with their final contents.
    pub fn written_ranges(&self) -> Vec<(u64, Vec<u8>)> {
        let mut spans: Vec<(u64, u64)> = self.writes.iter().filter(|(_, n)| *n > 0).map(|&(a, n)| (a, a + n)).collect();
        spans.sort();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged.into_iter().map(|(s, e)| (s, self.bytes[s as usize..e as usize].to_vec())).collect()
    }
}

impl Memory for BumpHeap {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<()> {
        read_at(&self.bytes, ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<()> {
        write_at(&mut self.bytes, ptr, bytes)?;
        self.writes.push((ptr, bytes.len() as u64));
        Ok(())
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64> {
        let result = self.bump(old_ptr, old_size, align, new_size);
        let returned = result.as_ref().ok().copied();
        self.calls.push(ReallocCall { old_ptr, old_size, align, new_size, returned });
        result
    }
}

impl BumpHeap {
    fn bump(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64> {
        if old_ptr != 0 && new_size <= old_size {
            Ok(old_ptr)
        } else {
            let ptr = align_to(self.next, align);
            let next = u128::from(ptr) + u128::from(new_size);
            if next > u128::from(self.len()) {
                return Err(Trap::new(
                    TrapKind::GuestTrap,
                    format!("bump allocator: {new_size} bytes at {ptr} exceed memory of {} bytes", self.len()),
                ));
            }
            self.next = next as u64;
            let keep = old_size.min(new_size);
            if keep > 0 {
                let mut buf = vec![0; keep as usize];
                self.read(old_ptr, &mut buf).map_err(|_| {
                    Trap::new(
                        TrapKind::GuestTrap,
                        format!("bump allocator: old block {old_ptr}+{old_size} outside memory"),
                    )
                })?;
                self.write(ptr, &buf)?;
            }
            Ok(ptr)
        }
    }
}
