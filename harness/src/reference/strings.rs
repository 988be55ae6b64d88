//! Strings (CanonicalABI.md "Loading" / "Storing" for `string`): `load_string_from_range`
//! with its trap order, and `store_string_into_range` with the exact realloc sequence of each
//! of the 3×3 encoding pairs.

use super::context::LiftLowerContext;
use super::load::load_int;
use super::memory::exceeds;
use super::store::store_int;
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{PtrType, StringEncoding};
use super::value::HostString;
use crate::reference::reached::reached;

pub const REALLOC_I32_MAX: u64 = (1 << 32) - 1;
pub const MAX_STRING_BYTE_LENGTH: u64 = (1 << 28) - 1;
/// `utf16_tag('i32')`, for building strings by hand.
pub const UTF16_TAG_I32: u64 = 1 << 31;

/// `utf16_tag(ptr_type)`: the high bit of a pointer-sized integer.
pub fn utf16_tag(ptr_type: PtrType) -> u64 {
    1 << (ptr_type.ptr_size() * 8 - 1)
}

/// `load_string(cx, ptr)`: (begin, tagged_code_units) as two pointer-sized integers.
pub fn load_string(cx: &mut LiftLowerContext<'_>, ptr: u64) -> Result<HostString> {
    reached!(load_string);
    let ps = cx.memory().ptr_type().ptr_size();
    let begin = load_int(cx, ptr, ps)?;
    let tagged_code_units = load_int(cx, ptr + ps, ps)?;
    load_string_from_range(cx, begin, tagged_code_units)
}

#[derive(Clone, Copy)]
enum Decoding {
    Utf8,
    Utf16Le,
    Latin1,
}

/// `load_string_from_range(cx, ptr, tagged_code_units)`. Trap order: byte length over
/// `MAX_STRING_BYTE_LENGTH`, misaligned pointer, out of bounds, invalid encoding.
pub fn load_string_from_range(cx: &mut LiftLowerContext<'_>, ptr: u64, tagged_code_units: u64) -> Result<HostString> {
    reached!(load_string_from_range);
    let tag = utf16_tag(cx.memory().ptr_type());
    let (alignment, byte_length, encoding) = match cx.opts.string_encoding {
        StringEncoding::Utf8 => (1, tagged_code_units, Decoding::Utf8),
        StringEncoding::Utf16 => (2, tagged_code_units.saturating_mul(2), Decoding::Utf16Le),
        StringEncoding::Latin1Utf16 => {
            if tagged_code_units & tag != 0 {
                (2, (tagged_code_units ^ tag).saturating_mul(2), Decoding::Utf16Le)
            } else {
                (2, tagged_code_units, Decoding::Latin1)
            }
        }
    };
    // (The doubling saturates: only an i64 memory can pass a count that large, and the length
    // limit below traps on it either way.)
    trap_if(byte_length > MAX_STRING_BYTE_LENGTH, TrapKind::StringTooLong, || {
        format!("load_string_from_range: {byte_length} bytes > MAX_STRING_BYTE_LENGTH")
    })?;
    trap_if(!ptr.is_multiple_of(alignment), TrapKind::MisalignedPointer, || {
        format!("load_string_from_range: string pointer {ptr} is not {alignment}-aligned")
    })?;
    let mem_len = cx.memory().len();
    trap_if(exceeds(ptr, byte_length.into(), mem_len), TrapKind::OutOfBounds, || {
        format!("load_string_from_range: {ptr}+{byte_length} is past the end of memory ({mem_len})")
    })?;
    let mut bytes = vec![0; byte_length as usize];
    cx.memory().read(ptr, &mut bytes)?;
    let text = match encoding {
        Decoding::Utf8 => String::from_utf8(bytes)
            .map_err(|e| Trap::new(TrapKind::InvalidUtf8, format!("load_string_from_range: invalid utf-8: {e}")))?,
        Decoding::Utf16Le => {
            let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).map_err(|_| {
                Trap::new(TrapKind::InvalidUtf16, "load_string_from_range: unpaired surrogate in utf-16")
            })?
        }
        Decoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    Ok(HostString { text, encoding: cx.opts.string_encoding, tagged_code_units })
}

/// `store_string(cx, v, ptr)`.
pub fn store_string(cx: &mut LiftLowerContext<'_>, v: &HostString, ptr: u64) -> Result<()> {
    reached!(store_string);
    let (begin, tagged_code_units) = store_string_into_range(cx, v)?;
    let ps = cx.memory().ptr_type().ptr_size();
    store_int(cx, begin, ptr, ps)?;
    store_int(cx, tagged_code_units, ptr + ps, ps)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Simple {
    Utf8,
    Utf16,
    Latin1,
}

/// `store_string_into_range(cx, v)`: split latin1+utf16 by its tag, then pick the algorithm
/// for the (destination, source) pair.
pub fn store_string_into_range(cx: &mut LiftLowerContext<'_>, v: &HostString) -> Result<(u64, u64)> {
    reached!(store_string_into_range);
    let tag = utf16_tag(cx.memory().ptr_type());
    let (src_simple_encoding, src_code_units) = match v.encoding {
        StringEncoding::Latin1Utf16 if v.tagged_code_units & tag != 0 => (Simple::Utf16, v.tagged_code_units ^ tag),
        StringEncoding::Latin1Utf16 => (Simple::Latin1, v.tagged_code_units),
        StringEncoding::Utf8 => (Simple::Utf8, v.tagged_code_units),
        StringEncoding::Utf16 => (Simple::Utf16, v.tagged_code_units),
    };
    let src = v.text.as_str();
    match cx.opts.string_encoding {
        StringEncoding::Utf8 => match src_simple_encoding {
            Simple::Utf8 => store_string_copy(cx, src, src_code_units, 1, 1, Encoding::Utf8),
            Simple::Utf16 => store_utf16_to_utf8(cx, src, src_code_units),
            Simple::Latin1 => store_latin1_to_utf8(cx, src, src_code_units),
        },
        StringEncoding::Utf16 => match src_simple_encoding {
            Simple::Utf8 => store_utf8_to_utf16(cx, src, src_code_units),
            Simple::Utf16 | Simple::Latin1 => store_string_copy(cx, src, src_code_units, 2, 2, Encoding::Utf16Le),
        },
        StringEncoding::Latin1Utf16 => match (v.encoding, src_simple_encoding) {
            (StringEncoding::Utf8 | StringEncoding::Utf16, _) => {
                store_string_to_latin1_or_utf16(cx, src, src_code_units)
            }
            (_, Simple::Latin1) => store_string_copy(cx, src, src_code_units, 1, 2, Encoding::Latin1),
            (_, _) => store_probably_utf16_to_latin1_or_utf16(cx, src, src_code_units),
        },
    }
}

/// A destination encoding of `store_string_copy` (Python's codec names).
#[derive(Clone, Copy, Debug)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Latin1,
}

fn encode(src: &str, encoding: Encoding) -> Result<Vec<u8>> {
    Ok(match encoding {
        Encoding::Utf8 => src.as_bytes().to_vec(),
        Encoding::Utf16Le => src.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Encoding::Latin1 => src
            .chars()
            .map(|c| u8::try_from(c as u32))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Trap::new(TrapKind::Assertion, "a latin1 source string holds a char >= 256"))?,
    })
}

fn utf16le(src: &str) -> Vec<u8> {
    src.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// `trap_if(ptr != align_to(ptr, alignment))` on a realloc result.
fn check_realloc_aligned(ptr: u64, alignment: u64, what: &str) -> Result<()> {
    trap_if(!ptr.is_multiple_of(alignment), TrapKind::ReallocMisaligned, || {
        format!("{what}: realloc returned {ptr}, not {alignment}-aligned")
    })
}

/// `trap_if(ptr + size > len(cx.opts.memory))` on a realloc result.
fn check_realloc_in_bounds(cx: &LiftLowerContext<'_>, ptr: u64, size: u64, what: &str) -> Result<()> {
    let mem_len = cx.memory().len();
    trap_if(exceeds(ptr, size.into(), mem_len), TrapKind::ReallocOutOfBounds, || {
        format!("{what}: realloc returned {ptr}, and {ptr}+{size} is past the end of memory ({mem_len})")
    })
}

/// `store_string_copy`: the destination size is known up front; one realloc.
pub fn store_string_copy(
    cx: &mut LiftLowerContext<'_>,
    src: &str,
    src_code_units: u64,
    dst_code_unit_size: u64,
    dst_alignment: u64,
    dst_encoding: Encoding,
) -> Result<(u64, u64)> {
    reached!(store_string_copy);
    const WHAT: &str = "store_string_copy";
    let dst_byte_length = dst_code_unit_size * src_code_units;
    assert_that(dst_byte_length <= REALLOC_I32_MAX, "dst_byte_length <= REALLOC_I32_MAX")?;
    let ptr = cx.allocate(dst_alignment, dst_byte_length)?;
    check_realloc_aligned(ptr, dst_alignment, WHAT)?;
    check_realloc_in_bounds(cx, ptr, dst_byte_length, WHAT)?;
    let encoded = encode(src, dst_encoding)?;
    assert_that(dst_byte_length == encoded.len() as u64, "dst_byte_length == len(encoded)")?;
    cx.memory_mut().write(ptr, &encoded)?;
    Ok((ptr, src_code_units))
}

/// `store_utf16_to_utf8`: a UTF-16 code unit is at most 3 UTF-8 bytes.
pub fn store_utf16_to_utf8(cx: &mut LiftLowerContext<'_>, src: &str, src_code_units: u64) -> Result<(u64, u64)> {
    reached!(store_utf16_to_utf8);
    let worst_case_size = src_code_units * 3;
    store_string_to_utf8(cx, src, src_code_units, worst_case_size)
}

/// `store_latin1_to_utf8`: a Latin-1 byte is at most 2 UTF-8 bytes.
pub fn store_latin1_to_utf8(cx: &mut LiftLowerContext<'_>, src: &str, src_code_units: u64) -> Result<(u64, u64)> {
    reached!(store_latin1_to_utf8);
    let worst_case_size = src_code_units * 2;
    store_string_to_utf8(cx, src, src_code_units, worst_case_size)
}

/// `store_string_to_utf8`: optimistically one byte per code unit; at the first non-ASCII
/// code point grow to the worst case, finish, and shrink to the encoded length.
pub fn store_string_to_utf8(
    cx: &mut LiftLowerContext<'_>,
    src: &str,
    src_code_units: u64,
    worst_case_size: u64,
) -> Result<(u64, u64)> {
    reached!(store_string_to_utf8);
    const WHAT: &str = "store_string_to_utf8";
    assert_that(src_code_units <= REALLOC_I32_MAX, "src_code_units <= REALLOC_I32_MAX")?;
    let mut ptr = cx.allocate(1, src_code_units)?;
    check_realloc_in_bounds(cx, ptr, src_code_units, WHAT)?;
    // The ASCII prefix is written one byte per code point, as the spec's loop does.
    let ascii_len = src.chars().take_while(|c| c.is_ascii()).count();
    assert_that(ascii_len as u64 <= src_code_units, "the source has at least as many code units as code points")?;
    cx.memory_mut().write(ptr, &src.as_bytes()[..ascii_len])?;
    if ascii_len == src.len() {
        return Ok((ptr, src_code_units));
    }
    assert_that(worst_case_size <= REALLOC_I32_MAX, "worst_case_size <= REALLOC_I32_MAX")?;
    ptr = cx.reallocate(ptr, src_code_units, 1, worst_case_size)?;
    check_realloc_in_bounds(cx, ptr, worst_case_size, WHAT)?;
    let encoded = src.as_bytes();
    assert_that(encoded.len() as u64 <= worst_case_size, "len(encoded) <= worst_case_size")?;
    cx.memory_mut().write(ptr + ascii_len as u64, &encoded[ascii_len..])?;
    let len = encoded.len() as u64;
    if worst_case_size > len {
        ptr = cx.reallocate(ptr, worst_case_size, 1, len)?;
        check_realloc_in_bounds(cx, ptr, len, WHAT)?;
    }
    Ok((ptr, len))
}

/// `store_utf8_to_utf16`: allocate 2 bytes per UTF-8 byte, shrink to the encoded length.
pub fn store_utf8_to_utf16(cx: &mut LiftLowerContext<'_>, src: &str, src_code_units: u64) -> Result<(u64, u64)> {
    reached!(store_utf8_to_utf16);
    const WHAT: &str = "store_utf8_to_utf16";
    let worst_case_size = 2 * src_code_units;
    assert_that(worst_case_size <= REALLOC_I32_MAX, "worst_case_size <= REALLOC_I32_MAX")?;
    let mut ptr = cx.allocate(2, worst_case_size)?;
    check_realloc_aligned(ptr, 2, WHAT)?;
    check_realloc_in_bounds(cx, ptr, worst_case_size, WHAT)?;
    let encoded = utf16le(src);
    assert_that(encoded.len() as u64 <= worst_case_size, "len(encoded) <= worst_case_size")?;
    cx.memory_mut().write(ptr, &encoded)?;
    let len = encoded.len() as u64;
    if len < worst_case_size {
        ptr = cx.reallocate(ptr, worst_case_size, 2, len)?;
        check_realloc_aligned(ptr, 2, WHAT)?;
        check_realloc_in_bounds(cx, ptr, len, WHAT)?;
    }
    Ok((ptr, len / 2))
}

/// `store_string_to_latin1_or_utf16`: speculate Latin-1; at the first code point >= 256 grow
/// to UTF-16, inflate the bytes written so far in place, finish in UTF-16 and shrink.
pub fn store_string_to_latin1_or_utf16(
    cx: &mut LiftLowerContext<'_>,
    src: &str,
    src_code_units: u64,
) -> Result<(u64, u64)> {
    reached!(store_string_to_latin1_or_utf16);
    const WHAT: &str = "store_string_to_latin1_or_utf16";
    assert_that(src_code_units <= REALLOC_I32_MAX, "src_code_units <= REALLOC_I32_MAX")?;
    let mut ptr = cx.allocate(2, src_code_units)?;
    check_realloc_aligned(ptr, 2, WHAT)?;
    check_realloc_in_bounds(cx, ptr, src_code_units, WHAT)?;
    let latin1: Vec<u8> = src.chars().map_while(|c| u8::try_from(c as u32).ok()).collect();
    let dst_byte_length = latin1.len() as u64;
    assert_that(dst_byte_length <= src_code_units, "the source has at least as many code units as code points")?;
    cx.memory_mut().write(ptr, &latin1)?;
    if latin1.len() == src.chars().count() {
        if dst_byte_length < src_code_units {
            ptr = cx.reallocate(ptr, src_code_units, 2, dst_byte_length)?;
            check_realloc_aligned(ptr, 2, WHAT)?;
            check_realloc_in_bounds(cx, ptr, dst_byte_length, WHAT)?;
        }
        return Ok((ptr, dst_byte_length));
    }
    let worst_case_size = 2 * src_code_units;
    assert_that(worst_case_size <= REALLOC_I32_MAX, "worst_case_size <= REALLOC_I32_MAX")?;
    ptr = cx.reallocate(ptr, src_code_units, 2, worst_case_size)?;
    check_realloc_aligned(ptr, 2, WHAT)?;
    check_realloc_in_bounds(cx, ptr, worst_case_size, WHAT)?;
    // Inflate in place, back to front: the spec reads each byte from the new block before any
    // write can reach it, so reading the prefix first and writing it inflated is the same.
    let mut prefix = vec![0; latin1.len()];
    cx.memory().read(ptr, &mut prefix)?;
    let inflated: Vec<u8> = prefix.iter().flat_map(|&b| [b, 0]).collect();
    cx.memory_mut().write(ptr, &inflated)?;
    let encoded = utf16le(src);
    assert_that(encoded.len() as u64 <= worst_case_size, "len(encoded) <= worst_case_size")?;
    cx.memory_mut().write(ptr + 2 * dst_byte_length, &encoded[2 * latin1.len()..])?;
    let len = encoded.len() as u64;
    if worst_case_size > len {
        ptr = cx.reallocate(ptr, worst_case_size, 2, len)?;
        check_realloc_aligned(ptr, 2, WHAT)?;
        check_realloc_in_bounds(cx, ptr, len, WHAT)?;
    }
    Ok((ptr, (len / 2) | utf16_tag(cx.memory().ptr_type())))
}

/// `store_probably_utf16_to_latin1_or_utf16`: the producer chose UTF-16, so allocate for it;
/// if every code point fits Latin-1 after all, compact in place and shrink (with alignment 1,
/// and only a bounds check, exactly as the spec does).
pub fn store_probably_utf16_to_latin1_or_utf16(
    cx: &mut LiftLowerContext<'_>,
    src: &str,
    src_code_units: u64,
) -> Result<(u64, u64)> {
    reached!(store_probably_utf16_to_latin1_or_utf16);
    const WHAT: &str = "store_probably_utf16_to_latin1_or_utf16";
    let src_byte_length = 2 * src_code_units;
    assert_that(src_byte_length <= REALLOC_I32_MAX, "src_byte_length <= REALLOC_I32_MAX")?;
    let mut ptr = cx.allocate(2, src_byte_length)?;
    check_realloc_aligned(ptr, 2, WHAT)?;
    check_realloc_in_bounds(cx, ptr, src_byte_length, WHAT)?;
    let encoded = utf16le(src);
    assert_that(encoded.len() as u64 <= src_byte_length, "len(encoded) <= src_byte_length")?;
    cx.memory_mut().write(ptr, &encoded)?;
    if src.chars().any(|c| c as u32 >= 1 << 8) {
        let tagged = (encoded.len() as u64 / 2) | utf16_tag(cx.memory().ptr_type());
        return Ok((ptr, tagged));
    }
    let latin1_size = encoded.len() as u64 / 2;
    let compact: Vec<u8> = encoded.iter().step_by(2).copied().collect();
    cx.memory_mut().write(ptr, &compact)?;
    ptr = cx.reallocate(ptr, src_byte_length, 1, latin1_size)?;
    check_realloc_in_bounds(cx, ptr, latin1_size, WHAT)?;
    Ok((ptr, latin1_size))
}
