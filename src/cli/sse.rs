//! A line-based server-sent-events parser for the turns `agent chat` streams.
//!
//! The node is a server the CLI does not control (it may be another version, or something
//! else behind the URL), so the parser holds at most a bounded amount of one event and
//! never fails on bytes: it takes the stream in whatever pieces the network delivers,
//! including pieces that split a line or a UTF-8 character. It follows the event-stream
//! rules the node's stream uses: lines end in LF, CRLF or CR; `:` starts a comment; one
//! space after a field's colon is dropped; `data` lines join with LF; a blank line
//! dispatches the event.

use thiserror::Error;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when the server sent none, as the rules say.
    pub name: String,
    pub data: String,
}

/// An event larger than the parser may hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an event of the stream is larger than {limit} bytes")]
pub struct EventTooLarge {
    pub limit: usize,
}

/// Turns bytes into events.
pub struct SseParser {
    max_event_bytes: usize,
    /// The unfinished line, as bytes: a UTF-8 character may still be cut in two.
    line: Vec<u8>,
    /// The previous byte was CR, so an LF right after it ends no second line.
    after_cr: bool,
    name: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser that refuses an event (its lines and fields together) over
    /// `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            name: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Parses `bytes`, appending the events they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.end_line(out),
                _ => {
                    let held = self.line.len() + self.data.len();
                    if held >= self.max_event_bytes {
                        return Err(EventTooLarge {
                            limit: self.max_event_bytes,
                        });
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    /// The stream ended. A partial line is dropped and an event without its closing
    /// blank line is not dispatched, as the rules say: both mean the stream was cut.
    pub fn finish(&mut self) {
        self.line.clear();
        self.name = None;
        self.data.clear();
        self.has_data = false;
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        if self.line.is_empty() {
            self.dispatch(out);
            return;
        }
        let bytes = std::mem::take(&mut self.line);
        // Lossy rather than an error: one garbled character in an answer is better than
        // losing the rest of the turn.
        let line = String::from_utf8_lossy(&bytes);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.name = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter only to a client that reconnects; a turn cannot be
            // resumed, so they are ignored with any unknown field.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let name = self.name.take();
        if std::mem::take(&mut self.has_data) {
            out.push(SseEvent {
                name: name.unwrap_or_else(|| "message".to_string()),
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1 << 16);
        let mut out = Vec::new();
        for part in input.chunks(piece) {
            parser.feed(part, &mut out).unwrap();
        }
        parser.finish();
        out
    }

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_survive_every_split_and_every_line_ending() {
        let input = ": keep-alive\r\nevent: turn\r\ndata: {\"conversation\":\"c1\"}\r\n\r\n\
                     event:text_delta\ndata: one\ndata:two\n\n\
                     data: bare\r\r";
        let want = vec![
            event("turn", "{\"conversation\":\"c1\"}"),
            event("text_delta", "one\ntwo"),
            event("message", "bare"),
        ];
        for piece in 1..=input.len() {
            assert_eq!(
                parse_in_pieces(input.as_bytes(), piece),
                want,
                "piece {piece}"
            );
        }
    }

    #[test]
    fn a_character_cut_between_pieces_is_whole_again() {
        let input = "event: text_delta\ndata: {\"text\":\"héllo → 世界 🦀\"}\n\n".as_bytes();
        for piece in 1..=input.len() {
            let got = parse_in_pieces(input, piece);
            assert_eq!(
                got,
                vec![event("text_delta", "{\"text\":\"héllo → 世界 🦀\"}")],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = parse_in_pieces(b"data: a\xffb\n\n", 3);
        assert_eq!(got, vec![event("message", "a\u{fffd}b")]);
    }

    #[test]
    fn empty_data_lines_and_fields_without_colon_count() {
        let got = parse_in_pieces(b"data\ndata:\n\nevent: x\n\n", 1);
        // `data` twice gives one empty line joined to another; an event with no data
        // is not dispatched.
        assert_eq!(got, vec![event("message", "\n")]);
    }

    #[test]
    fn a_cut_stream_dispatches_nothing_half_done() {
        assert!(parse_in_pieces(b"event: final\ndata: {\"text\":", 4).is_empty());
        assert!(parse_in_pieces(b"event: final\ndata: {}\n", 4).is_empty());
    }

    #[test]
    fn an_oversized_event_is_refused_not_buffered() {
        let mut parser = SseParser::new(32);
        let mut out = Vec::new();
        // One long line...
        let err = parser.feed(&[b'x'; 64], &mut out).unwrap_err();
        assert_eq!(err, EventTooLarge { limit: 32 });
        // ...or many short data lines of one event.
        let mut parser = SseParser::new(32);
        let many = b"data: 0123456789\n".repeat(4);
        assert!(parser.feed(&many, &mut out).is_err());
        assert!(out.is_empty());
        // The bound is per event: small events can go on forever.
        let mut parser = SseParser::new(32);
        let small = b"data: 0123456789\n\n".repeat(100);
        parser.feed(&small, &mut out).unwrap();
        assert_eq!(out.len(), 100);
    }
}
