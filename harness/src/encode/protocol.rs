//! The scripted guest's protocol: its memory map, the script it runs, and the log it keeps.
//! The encoder (`guest.rs`) compiles this into wasm; the guest model (`engine::sim`) and the
//! script builder (`script.rs`) implement the same numbers in Rust.
//!
//! Memory (2 pages, never grown):
//!
//! | range            | what                                                          |
//! |------------------|---------------------------------------------------------------|
//! | 0 .. 64          | zeros (so that 0 is never a valid allocation)                 |
//! | STATE .. +1024   | cursors, the argument and result buffers, read-log's return area |
//! | CONTROL .. LOG   | realloc answers (REALLOC_QUEUE) then the script (SCRIPT)      |
//! | LOG .. SCRATCH   | the log: 16-byte records                                      |
//! | SCRATCH .. HEAP  | data the script writes (values the guest hands over)          |
//! | HEAP .. end      | the bump allocator's heap (`realloc`)                         |
//!
//! Instructions and log records are 16 bytes: `u32 tag, u32 a, u64 b`, little-endian.

pub const PAGE: u64 = 65536;
pub const MEMORY_PAGES: u64 = 2;
pub const MEMORY_SIZE: u64 = MEMORY_PAGES * PAGE;

pub const STATE: u64 = 64;
/// The next script instruction (u32).
pub const SCRIPT_CURSOR: u64 = STATE;
/// The next free log byte (u32).
pub const LOG_CURSOR: u64 = STATE + 4;
/// The bump allocator's `next` (u32).
pub const HEAP_NEXT: u64 = STATE + 8;
/// The next realloc answer (u32).
pub const REALLOC_CURSOR: u64 = STATE + 12;
/// Number of values pushed into ARG_BUF / RESULT_BUF (u32 each).
pub const ARG_COUNT: u64 = STATE + 16;
pub const RESULT_COUNT: u64 = STATE + 20;
/// Set when the log is full (u32): later records are dropped.
pub const LOG_OVERFLOW: u64 = STATE + 24;
/// `read-log`'s return area: (ptr, len).
pub const RET_AREA: u64 = STATE + 32;
/// Up to MAX_VALUES raw 64-bit values each.
pub const ARG_BUF: u64 = STATE + 64;
pub const RESULT_BUF: u64 = ARG_BUF + 8 * MAX_VALUES;
pub const MAX_VALUES: u64 = 32;

/// What `reset` stores: every cursor rewound, every count zero. (It also zeroes LOG..end.)
pub const RESET: [(u64, u64); 7] = [
    (SCRIPT_CURSOR, SCRIPT),
    (LOG_CURSOR, LOG),
    (HEAP_NEXT, HEAP),
    (REALLOC_CURSOR, REALLOC_QUEUE),
    (ARG_COUNT, 0),
    (RESULT_COUNT, 0),
    (LOG_OVERFLOW, 0),
];

pub const CONTROL: u64 = 1024;
pub const REALLOC_QUEUE: u64 = CONTROL;
/// Realloc answers: `u32 kind, u32 value` each.
pub const MAX_REALLOC_ANSWERS: u64 = 256;
pub const SCRIPT: u64 = REALLOC_QUEUE + 8 * MAX_REALLOC_ANSWERS;
pub const LOG: u64 = 40 * 1024;
pub const SCRATCH: u64 = 56 * 1024;
pub const HEAP: u64 = PAGE;

/// Opcodes of script instructions (`tag`).
pub mod op {
    /// End of the script: an entry point that finds it traps (an unplanned call).
    pub const END: u32 = 0;
    /// Start of the frame of entry `a`: the instructions up to RETURN run when entry `a` runs.
    pub const FRAME: u32 = 1;
    /// Copy the next `b` bytes of the script (padded to 16) to address `a`.
    pub const WRITE: u32 = 2;
    /// Push raw value `b` onto the argument buffer.
    pub const ARG: u32 = 3;
    /// Call import thunk `a` with the argument buffer; log its results; clear the buffer.
    pub const CALL: u32 = 4;
    /// Log `b` bytes of memory at `a`.
    pub const LOG_MEMORY: u32 = 5;
    /// Log memory from `a` up to the heap's `next`.
    pub const LOG_HEAP: u32 = 6;
    /// Execute `unreachable`.
    pub const TRAP: u32 = 7;
    /// Push raw value `b` onto the result buffer.
    pub const RESULT: u32 = 8;
    /// End of the frame: return the result buffer.
    pub const RETURN: u32 = 9;
}

/// Kinds of realloc answers (`u32 kind, u32 value`).
pub mod answer {
    /// No more scripted answers: bump-allocate.
    pub const END: u32 = 0;
    /// Bump-allocate this once.
    pub const BUMP: u32 = 1;
    /// Return `value` as is (misaligned or out of bounds on purpose).
    pub const VALUE: u32 = 2;
    /// Trap inside realloc.
    pub const TRAP: u32 = 3;
    /// Call import thunk `value` with one i32 argument (the next slot's first word), then
    /// bump-allocate: guest code that reaches the host from inside realloc.
    pub const CALL: u32 = 4;
}

/// Log record tags.
pub mod log {
    /// Entry `a` was called (an export, a post-return, a destructor or a callback).
    pub const ENTER: u32 = 1;
    /// One flat parameter of the entry, raw bits in `b`.
    pub const PARAM: u32 = 2;
    /// realloc called: `a` = old_ptr, `b` = old_size; followed by REALLOC_ARGS.
    pub const REALLOC: u32 = 3;
    /// `a` = align, `b` = new_size; followed by REALLOC_RET unless realloc trapped.
    pub const REALLOC_ARGS: u32 = 4;
    /// `a` = the pointer realloc returned.
    pub const REALLOC_RET: u32 = 5;
    /// Import thunk `a` returned; one IMPORT_RESULT per flat result follows.
    pub const IMPORT_DONE: u32 = 6;
    /// One flat result of an import, raw bits in `b`.
    pub const IMPORT_RESULT: u32 = 7;
    /// `b` bytes of memory at `a` follow, padded to 16.
    pub const MEMORY: u32 = 8;
}

/// Entry ids: which guest function runs a frame.
pub fn export_entry(k: u32) -> u32 {
    k
}
pub fn post_return_entry(k: u32) -> u32 {
    0x1000 + k
}
pub fn dtor_entry(k: u32) -> u32 {
    0x2000 + k
}
/// 🔀 The callback of async export k: each call logs the event it received (code, p1, p2 as
/// its params) and returns the callback code its frame pushed as its one result.
pub fn callback_entry(k: u32) -> u32 {
    0x3000 + k
}
