//! A small server-sent-events parser with bounded buffers.
//!
//! Used for the LLM providers' streams and by the CLI for the node's own turns. Written
//! here rather than taken from a crate because the parser must refuse a line or event past
//! a size bound (the server is outside input), and the streams we read use only `event:`
//! and `data:` fields, which fit in a few dozen lines. Follows the WHATWG event-stream
//! rules: lines end in LF, CRLF or CR; `:` starts a comment; one optional space after the
//! field's colon is dropped; data lines join with LF; a blank line dispatches the event.
//! The stream may arrive in any pieces, a line or a UTF-8 character cut between two.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (empty when the server sent none).
    pub event: String,
    pub data: String,
}

/// Why a stream cannot be read as events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("event-stream event longer than {0} bytes")]
    TooLarge(usize),
    #[error("event-stream line is not UTF-8")]
    NotUtf8,
}

/// Turns bytes into events, holding at most `max_event` bytes of an unfinished event.
pub struct SseParser {
    max_event: usize,
    line: Vec<u8>,
    /// The previous byte was CR, so an LF right after it ends nothing.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new(max_event: usize) -> Self {
        Self {
            max_event,
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
        }
    }

    /// Parses `bytes`, appending complete events to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.end_line(out)?,
                _ => {
                    if self.line.len() + self.data.len() >= self.max_event {
                        return Err(SseError::TooLarge(self.max_event));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// The stream ended. An event whose last line was complete but which lacked the
    /// closing blank line is still dispatched (some servers end that way); a partial
    /// line is dropped, as the event-stream rules say.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        self.line.clear();
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter only to browsers reconnecting; others are ignored.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if std::mem::take(&mut self.has_data) {
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &str, piece: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 16);
        let mut out = Vec::new();
        for part in input.as_bytes().chunks(piece) {
            p.feed(part, &mut out).unwrap();
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn events_survive_any_split_and_any_line_ending() {
        let input = ": keep-alive\r\nevent: a\r\ndata: {\"x\":1}\r\n\r\ndata:two\rdata: lines\r\rdata: tail\n";
        for piece in 1..input.len() {
            let got = parse_in_pieces(input, piece);
            assert_eq!(got.len(), 3, "piece size {piece}: {got:?}");
            assert_eq!(got[0].event, "a");
            assert_eq!(got[0].data, "{\"x\":1}");
            assert_eq!(got[1].data, "two\nlines");
            assert_eq!(got[1].event, "");
            assert_eq!(got[2].data, "tail");
        }
    }

    #[test]
    fn partial_last_line_is_dropped() {
        assert!(parse_in_pieces("data: cut mid-li", 4).is_empty());
    }

    #[test]
    fn oversized_event_is_malformed_not_buffered() {
        let mut p = SseParser::new(16);
        let mut out = Vec::new();
        let err = p.feed(&[b'x'; 64], &mut out).unwrap_err();
        assert_eq!(err, SseError::TooLarge(16));
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut p = SseParser::new(16);
        let err = p.feed(b"data: \xff\n", &mut Vec::new()).unwrap_err();
        assert_eq!(err, SseError::NotUtf8);
    }

    #[test]
    fn a_character_cut_between_pieces_is_whole_again() {
        let input = "event: text_delta\ndata: {\"text\":\"héllo → ☃\"}\n\n";
        for piece in 1..input.len() {
            let got = parse_in_pieces(input, piece);
            assert_eq!(got.len(), 1, "piece size {piece}");
            assert_eq!(got[0].data, "{\"text\":\"héllo → ☃\"}");
        }
    }

    #[test]
    fn empty_data_lines_and_fields_without_colon_count() {
        let got = parse_in_pieces("data\ndata:\ndata: x\n\n", 3);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, "\n\nx");
    }
}
