//! Which functions of definitions.py ran: each function of the synchronous ABI that the
//! reference mirrors marks itself (`reached!`, one relaxed atomic OR), so a fuzzing run can
//! report what its cases exercised (`witness fuzz-report`). `take` reads and clears the marks.

use std::cell::Cell;

/// The definitions.py functions whose rules a synchronous Canonical ABI implementation must
/// follow (the ones the reference mirrors), in the spec's order.
pub const SYNC_RULES: &[&str] = &[
    "despecialize",
    "alignment",
    "alignment_list",
    "alignment_record",
    "alignment_variant",
    "discriminant_type",
    "max_case_alignment",
    "alignment_flags",
    "elem_size",
    "elem_size_list",
    "elem_size_record",
    "align_to",
    "elem_size_variant",
    "elem_size_flags",
    "load",
    "load_int",
    "convert_int_to_bool",
    "canonicalize_nan32",
    "canonicalize_nan64",
    "decode_i32_as_float",
    "decode_i64_as_float",
    "convert_i32_to_char",
    "load_string",
    "load_string_from_range",
    "load_list",
    "load_list_from_range",
    "load_list_from_valid_range",
    "load_record",
    "load_variant",
    "load_flags",
    "unpack_flags_from_int",
    "lift_own",
    "lift_borrow",
    "store",
    "store_int",
    "maybe_scramble_nan32",
    "maybe_scramble_nan64",
    "encode_float_as_i32",
    "encode_float_as_i64",
    "char_to_i32",
    "store_string",
    "store_string_into_range",
    "store_string_copy",
    "store_utf16_to_utf8",
    "store_latin1_to_utf8",
    "store_string_to_utf8",
    "store_utf8_to_utf16",
    "store_string_to_latin1_or_utf16",
    "store_probably_utf16_to_latin1_or_utf16",
    "store_list",
    "store_list_into_range",
    "store_list_into_valid_range",
    "store_record",
    "store_variant",
    "match_case",
    "store_flags",
    "pack_flags_into_int",
    "lower_own",
    "lower_borrow",
    "flatten_functype",
    "flatten_type",
    "flatten_variant",
    "join",
    "lift_flat",
    "lift_flat_unsigned",
    "lift_flat_signed",
    "lift_flat_string",
    "lift_flat_list",
    "lift_flat_record",
    "lift_flat_variant",
    "wrap_i64_to_i32",
    "lift_flat_flags",
    "lower_flat",
    "lower_flat_signed",
    "lower_flat_string",
    "lower_flat_list",
    "lower_flat_record",
    "lower_flat_variant",
    "lower_flat_flags",
    "lift_flat_values",
    "lower_flat_values",
    "canon_lift",
    "canon_lower",
    "canon_resource_new",
    "canon_resource_drop",
    "canon_resource_rep",
];

thread_local! {
    /// The marks of this thread: the reference runs on the thread that runs the case (every
    /// runtime calls its host on the caller's thread), so cases on other threads (parallel
    /// tests, suite workers) do not mix their marks in.
    static REACHED: [Cell<u64>; SYNC_RULES.len().div_ceil(64)] =
        const { [const { Cell::new(0) }; SYNC_RULES.len().div_ceil(64)] };
}

/// The index of `name` in `SYNC_RULES`, at compile time (a name not there fails the build).
pub const fn rule_index(name: &str) -> usize {
    let mut i = 0;
    while i < SYNC_RULES.len() {
        let (a, b) = (SYNC_RULES[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut k = 0;
            while k < a.len() && a[k] == b[k] {
                k += 1;
            }
            if k == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a function of SYNC_RULES")
}

pub fn mark(index: usize) {
    REACHED.with(|words| {
        let word = &words[index / 64];
        word.set(word.get() | 1 << (index % 64));
    });
}

/// The functions marked since the last `take`, in `SYNC_RULES` order; the marks are cleared.
pub fn take() -> Vec<&'static str> {
    let words: Vec<u64> = REACHED.with(|words| words.iter().map(|w| w.take()).collect());
    SYNC_RULES.iter().enumerate().filter(|(i, _)| words[i / 64] & (1 << (i % 64)) != 0).map(|(_, r)| *r).collect()
}

/// Mark the enclosing function (named as in definitions.py) as reached.
macro_rules! reached {
    ($name:ident) => {{
        const INDEX: usize = $crate::reference::reached::rule_index(stringify!($name));
        $crate::reference::reached::mark(INDEX);
    }};
}
pub(crate) use reached;
