//! The well-formedness and nesting check run on every body before and after serde.
//!
//! Written by hand because rmp-serde's own depth limit does not count enum variants, so a
//! recursive message type could still overflow the stack on hostile input.

use super::MAX_NESTING_DEPTH;

/// Checks, without recursion, that `body` is exactly one well-formed MessagePack value
/// whose arrays and maps nest at most [`MAX_NESTING_DEPTH`] deep. Runs in time linear in
/// `body.len()`: every value takes at least one byte.
pub(super) fn check_body(mut body: &[u8]) -> Result<(), String> {
    const CUT: &str = "body ends inside a MessagePack value";
    // Values still expected in each enclosing container, innermost last.
    let mut open: Vec<u64> = Vec::new();
    // Values still expected at the current level; the body is one value.
    let mut pending: u64 = 1;
    loop {
        while pending == 0 {
            match open.pop() {
                Some(outer) => pending = outer,
                None if body.is_empty() => return Ok(()),
                None => {
                    return Err(format!("{} bytes after the MessagePack value", body.len()));
                }
            }
        }
        pending -= 1;
        let (&marker, rest) = body.split_first().ok_or(CUT)?;
        body = rest;
        // (bytes of data to skip, child values to expect)
        let (skip, children): (usize, u64) = match marker {
            // positive/negative fixint, nil, false, true
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc1 => return Err("reserved MessagePack marker 0xc1".to_owned()),
            // bin 8/16/32, str 8/16/32
            0xc4 | 0xd9 => (read_len(&mut body, 1)?, 0),
            0xc5 | 0xda => (read_len(&mut body, 2)?, 0),
            0xc6 | 0xdb => (read_len(&mut body, 4)?, 0),
            // ext 8/16/32: length, then a type byte, then the data
            0xc7 => (read_len(&mut body, 1)?.saturating_add(1), 0),
            0xc8 => (read_len(&mut body, 2)?.saturating_add(1), 0),
            0xc9 => (read_len(&mut body, 4)?.saturating_add(1), 0),
            // u8/i8, u16/i16, u32/i32/f32, u64/i64/f64
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 | 0xca => (4, 0),
            0xcf | 0xd3 | 0xcb => (8, 0),
            // fixext 1/2/4/8/16: a type byte, then the data
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            // array 16/32, map 16/32
            0xdc => (0, len_u64(read_len(&mut body, 2)?)),
            0xdd => (0, len_u64(read_len(&mut body, 4)?)),
            0xde => (0, len_u64(read_len(&mut body, 2)?).saturating_mul(2)),
            0xdf => (0, len_u64(read_len(&mut body, 4)?).saturating_mul(2)),
        };
        body = body.get(skip..).ok_or(CUT)?;
        if children > 0 {
            if open.len() >= MAX_NESTING_DEPTH {
                return Err(format!(
                    "MessagePack value nests deeper than {MAX_NESTING_DEPTH} levels"
                ));
            }
            open.push(pending);
            pending = children;
        }
    }
}

/// Reads a `width`-byte big-endian length from the front of `body`.
fn read_len(body: &mut &[u8], width: usize) -> Result<usize, String> {
    let Some((bytes, rest)) = body.split_at_checked(width) else {
        return Err("body ends inside a MessagePack length".to_owned());
    };
    *body = rest;
    let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Ok(usize::try_from(len).unwrap_or(usize::MAX))
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}
