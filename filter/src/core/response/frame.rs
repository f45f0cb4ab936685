//! gRPC length-prefixed message framing: each message travels as a 1-byte compressed flag,
//! a 4-byte big-endian length and the message bytes.
//!
//! Requests are encoded whole with [`encode_frame`]; response bodies arrive in chunks of any
//! size and are split back into messages by [`FrameDecoder`].
use std::collections::VecDeque;

use crate::core::error::{Error, Result};

/// Size of the prefix in front of every gRPC message.
pub const FRAME_HEADER_SIZE: usize = 5;

/// One decoded gRPC message (the frame's payload, without its 5-byte prefix).
pub type Frame = Vec<u8>;

/// A frame body is pre-allocated up to this size from its header; beyond it the buffer grows
/// as bytes really arrive, so a header that merely claims a large frame costs nothing.
const PREALLOCATE_LIMIT: usize = 64 * 1024;

/// Appends `message` to `out` as one uncompressed gRPC frame.
///
/// Fails (413) only when the message is longer than the 4-byte length prefix can say.
pub fn encode_frame(message: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let len = u32::try_from(message.len()).map_err(|_| {
        Error::payload_too_large(format!(
            "gRPC message of {} bytes exceeds the frame limit of {} bytes",
            message.len(),
            u32::MAX
        ))
    })?;
    out.reserve(message.len().saturating_add(FRAME_HEADER_SIZE));
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// Incremental decoder of a gRPC response body.
///
/// [`push`](Self::push) each body chunk as it arrives, then take the complete messages with
/// [`next_frame`](Self::next_frame); call [`finish`](Self::finish) at the end of the stream.
/// Every byte is copied once, straight into the buffer of the message it belongs to, which is
/// then handed out; nothing already returned is retained. Memory is thus bounded by the frames
/// completed but not yet taken plus the one in progress, never by the length of the stream.
///
/// Headers are checked as soon as their fifth byte arrives: a frame over `max_frame_size`, an
/// unknown flag or a compressed message fails before any of its body is buffered. After an
/// error the decoder drops all further input; the messages completed before the bad frame are
/// still returned first, then the error (every call, so it cannot be missed).
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_size: u32,
    /// The response's `grpc-encoding` when it names a real compression (not `identity`).
    encoding: Option<String>,
    header: [u8; FRAME_HEADER_SIZE],
    /// Bytes of `header` received for the frame in progress.
    header_len: usize,
    /// Body length announced by `header` (meaningful once the header is complete).
    expected: usize,
    /// Body of the frame in progress.
    body: Vec<u8>,
    /// Complete frames not yet returned by `next_frame`.
    ready: VecDeque<Frame>,
    error: Option<Error>,
    /// When the limit is a user's (e.g. `max_response_body_size`), its name and HTTP status.
    limit_name: Option<(&'static str, u16)>,
}

impl FrameDecoder {
    /// `grpc_encoding` is the response's `grpc-encoding` header, if any.
    pub fn new(max_frame_size: u32, grpc_encoding: Option<&str>) -> Self {
        let encoding = grpc_encoding
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
            .map(str::to_string);
        FrameDecoder {
            max_frame_size,
            encoding,
            header: [0; FRAME_HEADER_SIZE],
            header_len: 0,
            expected: 0,
            body: Vec::new(),
            ready: VecDeque::new(),
            error: None,
            limit_name: None,
        }
    }

    /// Reports an oversized frame as exceeding the named configured limit, with `http_status`,
    /// instead of as an invalid gRPC response.
    pub fn limit_named(mut self, name: &'static str, http_status: u16) -> Self {
        self.limit_name = Some((name, http_status));
        self
    }

    /// Appends the next chunk of the response body.
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            if self.header_len < FRAME_HEADER_SIZE {
                let want = FRAME_HEADER_SIZE.saturating_sub(self.header_len);
                let (head, rest) = data.split_at(want.min(data.len()));
                if let Some(slot) = self.header.get_mut(self.header_len..self.header_len.saturating_add(head.len())) {
                    slot.copy_from_slice(head);
                }
                self.header_len = self.header_len.saturating_add(head.len());
                data = rest;
                if self.header_len == FRAME_HEADER_SIZE {
                    if let Err(e) = self.start_body(data.len()) {
                        self.fail(e);
                    }
                }
            } else {
                let want = self.expected.saturating_sub(self.body.len());
                let (part, rest) = data.split_at(want.min(data.len()));
                self.body.extend_from_slice(part);
                data = rest;
                self.complete_if_full();
            }
        }
    }

    /// Validates the complete header and prepares the body buffer; `available` is how many
    /// body bytes the current chunk still holds (a hint for the allocation).
    fn start_body(&mut self, available: usize) -> Result<()> {
        let [flag, l0, l1, l2, l3] = self.header;
        match flag {
            0 => {}
            1 => {
                return Err(match &self.encoding {
                    None => invalid("compressed frame without grpc-encoding".to_string()),
                    Some(encoding) => {
                        invalid(format!("compressed responses (grpc-encoding: {encoding}) are not supported"))
                    }
                })
            }
            other => return Err(invalid(format!("unknown frame flag 0x{other:02x}"))),
        }
        let len = u32::from_be_bytes([l0, l1, l2, l3]);
        if len > self.max_frame_size {
            if let Some((name, http_status)) = self.limit_name {
                return Err(Error::internal(format!(
                    "upstream response message of {len} bytes exceeds {name} ({})",
                    self.max_frame_size
                ))
                .with_http_status(http_status));
            }
            return Err(invalid(format!("frame of {len} bytes exceeds the limit of {}", self.max_frame_size)));
        }
        self.expected =
            usize::try_from(len).map_err(|_| invalid(format!("frame of {len} bytes does not fit in memory")))?;
        let capacity = self.expected.min(available.max(PREALLOCATE_LIMIT));
        self.body = Vec::with_capacity(capacity);
        // A zero-length message is complete with its header.
        self.complete_if_full();
        Ok(())
    }

    fn complete_if_full(&mut self) {
        if self.body.len() >= self.expected {
            self.ready.push_back(std::mem::take(&mut self.body));
            self.header_len = 0;
            self.expected = 0;
        }
    }

    fn fail(&mut self, error: Error) {
        self.error = Some(error);
        self.body = Vec::new();
        self.header_len = 0;
        self.expected = 0;
    }

    /// The next complete message, `None` when more data is needed. Messages completed before
    /// a malformed frame are returned before its error; the error then repeats on every call.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(frame) = self.ready.pop_front() {
            return Ok(Some(frame));
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    /// At the end of the stream: fails when the body stopped inside a frame (or was invalid).
    /// Complete frames not yet taken are not an error; take them with `next_frame`.
    pub fn finish(&self) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.header_len == 0 {
            return Ok(());
        }
        let (got, of) = if self.header_len < FRAME_HEADER_SIZE {
            (self.header_len, FRAME_HEADER_SIZE)
        } else {
            let total = self.expected.saturating_add(FRAME_HEADER_SIZE);
            (self.body.len().saturating_add(FRAME_HEADER_SIZE), total)
        };
        Err(invalid(format!("truncated gRPC frame: {got} of {of} bytes")))
    }

    /// Bytes held: completed frames not yet taken plus the partial frame (its header included).
    /// The announced length of the frame being received (0 between frames).
    pub fn frame_in_progress(&self) -> usize {
        if self.header_len == FRAME_HEADER_SIZE {
            self.expected
        } else {
            0
        }
    }

    pub fn buffered(&self) -> usize {
        let partial = if self.header_len == 0 { 0 } else { self.header_len.saturating_add(self.body.len()) };
        self.ready.iter().fold(partial, |sum, frame| sum.saturating_add(frame.len()))
    }
}

fn invalid(message: String) -> Error {
    Error::bad_upstream(format!("invalid gRPC response: {message}"))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(message, &mut out).unwrap();
        out
    }

    fn raw_frame(flag: u8, len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn drain(decoder: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(f) = decoder.next_frame().unwrap() {
            frames.push(f);
        }
        frames
    }

    fn decode_all(stream: &[u8], max: u32, encoding: Option<&str>) -> Result<Vec<Vec<u8>>> {
        let mut decoder = FrameDecoder::new(max, encoding);
        decoder.push(stream);
        let mut frames = Vec::new();
        while let Some(f) = decoder.next_frame()? {
            frames.push(f);
        }
        decoder.finish()?;
        Ok(frames)
    }

    fn assert_invalid(result: Result<impl std::fmt::Debug>, expected_message: &str) {
        let e = result.unwrap_err();
        assert_eq!(e.http_status, 502, "{e}");
        assert_eq!(e.message, format!("invalid gRPC response: {expected_message}"));
    }

    #[test]
    fn encodes_flag_length_and_message() {
        assert_eq!(frame(b"abc"), vec![0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(frame(b""), vec![0, 0, 0, 0, 0]);
        let big = vec![7u8; 0x01_02_03];
        assert_eq!(frame(&big)[..5], [0, 0, 0x01, 0x02, 0x03]);
        assert_eq!(frame(&big).len(), big.len() + 5);
    }

    #[test]
    fn encode_appends_to_existing_output() {
        let mut out = b"xy".to_vec();
        encode_frame(b"a", &mut out).unwrap();
        encode_frame(b"", &mut out).unwrap();
        assert_eq!(out, b"xy\0\0\0\0\x01a\0\0\0\0\0");
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let messages: [&[u8]; 3] = [b"first message", b"", b"third"];
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        // two cut points: chunks of every size and position, including empty ones
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut decoder = FrameDecoder::new(1024, None);
                let mut frames = Vec::new();
                for chunk in [&stream[..a], &stream[a..b], &stream[b..]] {
                    decoder.push(chunk);
                    frames.extend(drain(&mut decoder));
                }
                decoder.finish().unwrap();
                assert_eq!(frames, messages, "cuts at {a} and {b}");
                assert_eq!(decoder.buffered(), 0);
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let messages: [&[u8]; 3] = [b"a", b"", &[0u8; 300]];
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut decoder = FrameDecoder::new(300, Some("identity"));
        let mut frames = Vec::new();
        for b in &stream {
            decoder.push(std::slice::from_ref(b));
            frames.extend(drain(&mut decoder));
        }
        decoder.finish().unwrap();
        assert_eq!(frames, messages);
    }

    #[test]
    fn many_frames_in_one_push() {
        let messages: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i)]).collect();
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        assert_eq!(decode_all(&stream, 1000, None).unwrap(), messages);
    }

    #[test]
    fn frames_wait_until_complete() {
        let mut decoder = FrameDecoder::new(100, None);
        decoder.push(&[0, 0, 0]);
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(decoder.buffered(), 3);
        decoder.push(&[0, 4, b'a']);
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(decoder.buffered(), 6);
        decoder.push(b"bcd");
        assert_eq!(decoder.buffered(), 4);
        assert_eq!(decoder.next_frame().unwrap(), Some(b"abcd".to_vec()));
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_eq!(decoder.buffered(), 0);
        decoder.finish().unwrap();
    }

    #[test]
    fn empty_stream_and_empty_pushes_are_fine() {
        let mut decoder = FrameDecoder::new(10, None);
        decoder.push(b"");
        assert_eq!(decoder.next_frame().unwrap(), None);
        decoder.finish().unwrap();
        assert_eq!(decode_all(b"", 10, None).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn unconsumed_frames_do_not_fail_finish() {
        let mut decoder = FrameDecoder::new(10, None);
        decoder.push(&frame(b"x"));
        decoder.finish().unwrap();
        assert_eq!(decoder.buffered(), 1);
        assert_eq!(decoder.next_frame().unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn size_limit_is_inclusive() {
        assert_eq!(decode_all(&frame(&[1; 8]), 8, None).unwrap(), vec![vec![1; 8]]);
        assert_invalid(decode_all(&frame(&[1; 9]), 8, None), "frame of 9 bytes exceeds the limit of 8");
        assert_eq!(decode_all(&frame(b""), 0, None).unwrap(), vec![Vec::<u8>::new()]);
        assert_invalid(decode_all(&frame(b"a"), 0, None), "frame of 1 bytes exceeds the limit of 0");
    }

    #[test]
    fn oversized_frame_is_rejected_from_its_header_alone() {
        let mut decoder = FrameDecoder::new(1024, None);
        decoder.push(&raw_frame(0, u32::MAX, b""));
        assert_invalid(decoder.next_frame(), "frame of 4294967295 bytes exceeds the limit of 1024");
        // later data is dropped, not buffered
        decoder.push(&[0; 4096]);
        assert_eq!(decoder.buffered(), 0);
        assert!(decoder.next_frame().is_err());
        assert!(decoder.finish().is_err());
    }

    #[test]
    fn unknown_flags_are_rejected() {
        for flag in [2u8, 0x80, 0xff] {
            assert_invalid(
                decode_all(&raw_frame(flag, 1, b"x"), 10, None),
                &format!("unknown frame flag 0x{flag:02x}"),
            );
        }
    }

    #[test]
    fn compressed_frame_without_encoding() {
        for encoding in [None, Some("identity"), Some(" Identity "), Some("")] {
            assert_invalid(decode_all(&raw_frame(1, 1, b"x"), 10, encoding), "compressed frame without grpc-encoding");
        }
    }

    #[test]
    fn compressed_frames_are_not_decompressed() {
        assert_invalid(
            decode_all(&raw_frame(1, 1, b"x"), 10, Some("gzip")),
            "compressed responses (grpc-encoding: gzip) are not supported",
        );
        // an announced encoding with uncompressed frames is fine
        assert_eq!(decode_all(&frame(b"x"), 10, Some("gzip")).unwrap(), vec![b"x".to_vec()]);
    }

    #[test]
    fn frames_before_an_error_are_still_returned() {
        let mut stream = frame(b"good");
        stream.extend(raw_frame(7, 1, b"x"));
        stream.extend(frame(b"after"));
        let mut decoder = FrameDecoder::new(10, None);
        decoder.push(&stream);
        assert_eq!(decoder.next_frame().unwrap(), Some(b"good".to_vec()));
        assert_invalid(decoder.next_frame(), "unknown frame flag 0x07");
        assert_invalid(decoder.next_frame(), "unknown frame flag 0x07");
        assert_invalid(decoder.finish(), "unknown frame flag 0x07");
    }

    #[test]
    fn error_detected_when_the_header_completes_across_pushes() {
        let mut decoder = FrameDecoder::new(10, None);
        decoder.push(&[0, 0, 0]);
        assert_eq!(decoder.next_frame().unwrap(), None);
        decoder.push(&[0, 11]);
        assert_invalid(decoder.next_frame(), "frame of 11 bytes exceeds the limit of 10");
    }

    #[test]
    fn truncated_header_at_end() {
        let mut decoder = FrameDecoder::new(10, None);
        decoder.push(&frame(b"ok"));
        decoder.push(&[0, 0]);
        assert_eq!(decoder.next_frame().unwrap(), Some(b"ok".to_vec()));
        assert_eq!(decoder.next_frame().unwrap(), None);
        assert_invalid(decoder.finish(), "truncated gRPC frame: 2 of 5 bytes");
    }

    #[test]
    fn truncated_body_at_end() {
        assert_invalid(decode_all(&raw_frame(0, 4, b"ab"), 10, None), "truncated gRPC frame: 7 of 9 bytes");
        assert_invalid(decode_all(&raw_frame(0, 4, b""), 10, None), "truncated gRPC frame: 5 of 9 bytes");
        assert_invalid(decode_all(&[0], 10, None), "truncated gRPC frame: 1 of 5 bytes");
    }
}
