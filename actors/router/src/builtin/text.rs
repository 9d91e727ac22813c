//! Bytes from the outside (files, HTTP bodies, process output) as text for a model.

/// At most `cap` bytes of `bytes` as text: invalid UTF-8 replaced, and a multi-byte
/// character cut in half by the cap dropped rather than mangled. Returns the text and
/// whether anything was cut.
pub(crate) fn capped_text(bytes: &[u8], cap: usize) -> (String, bool) {
    let truncated = bytes.len() > cap;
    let mut kept = &bytes[..bytes.len().min(cap)];
    if truncated {
        // The last character starts at most 3 bytes back (UTF-8 is at most 4 bytes long).
        let tail_start = (kept.len().saturating_sub(3)..kept.len())
            .find(|&i| kept[i] & 0b1100_0000 != 0b1000_0000)
            .unwrap_or(kept.len());
        if let Err(e) = std::str::from_utf8(&kept[tail_start..])
            && e.error_len().is_none()
        {
            kept = &kept[..tail_start + e.valid_up_to()];
        }
    }
    (String::from_utf8_lossy(kept).into_owned(), truncated)
}

#[cfg(test)]
mod tests {
    use super::capped_text;

    #[test]
    fn caps_on_character_boundaries() {
        assert_eq!(capped_text(b"hello", 10), ("hello".into(), false));
        assert_eq!(capped_text(b"hello", 3), ("hel".into(), true));
        let euro = "a€b".as_bytes(); // '€' is 3 bytes
        assert_eq!(capped_text(euro, 2), ("a".into(), true));
        assert_eq!(capped_text(euro, 4), ("a€".into(), true));
        assert_eq!(
            capped_text(b"\xff\xfeok", 10),
            ("\u{fffd}\u{fffd}ok".into(), false)
        );
    }
}
