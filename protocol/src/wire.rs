//! Wire primitives (MQTT 5.0 section 1.5): a bounds-checked zero-copy reader over one frame,
//! and the writers for integers, variable byte integers, strings and binary data.

use super::error::{DecodeError, EncodeError};
use super::string::MqttString;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::ops::Range;

/// The largest value a variable byte integer can carry (4 bytes) [MQTT-1.5.5-1].
pub const MAX_VAR_INT: usize = 268_435_455;

/// Reads the fields of one frame. Every read checks against `end`, which `with_limit` narrows
/// to a nested length-prefixed block (a property list) so a field cannot run past its block.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    end: usize,
}

impl Reader {
    /// A reader over `buf` starting at `pos` (after the fixed header).
    #[inline]
    pub fn new(buf: Bytes, pos: usize) -> Self {
        let end = buf.len();
        Self { buf, pos, end }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    #[inline(always)]
    fn take_slice(&mut self, len: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::UnexpectedEnd);
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.buf[start..start + len])
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_slice(1)?[0])
    }

    #[inline(always)]
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.take_slice(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.take_slice(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Consumes the next byte if it is zero (an empty property list) and says whether it did.
    #[inline]
    pub fn skip_zero_byte(&mut self) -> bool {
        let zero = self.pos < self.end && self.buf[self.pos] == 0;
        self.pos += usize::from(zero);
        zero
    }

    /// A variable byte integer of at most 4 bytes [MQTT-1.5.5-1].
    #[inline]
    pub fn var_int(&mut self) -> Result<u32, DecodeError> {
        let rest = &self.buf[self.pos..self.end];
        match parse_var_int(rest)? {
            Some((value, len)) => {
                self.pos += len;
                Ok(value as u32)
            }
            None => Err(DecodeError::UnexpectedEnd),
        }
    }

    /// `len` bytes as a zero-copy slice of the frame.
    #[inline(always)]
    pub fn bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::UnexpectedEnd);
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.buf.slice(start..start + len))
    }

    /// Binary data: a two-byte length and that many bytes (section 1.5.6).
    #[inline(always)]
    pub fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.bytes(usize::from(len))
    }

    /// Binary data as the range of the frame it occupies, for a caller that copies a short
    /// field out of `frame()` instead of slicing it (a slice costs a reference-count update).
    #[inline(always)]
    pub fn binary_range(&mut self) -> Result<Range<usize>, DecodeError> {
        let len = usize::from(self.u16()?);
        if self.remaining() < len {
            return Err(DecodeError::UnexpectedEnd);
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..start + len)
    }

    /// The whole frame the reader walks, which `binary_range` indexes.
    #[inline(always)]
    pub fn frame(&self) -> &Bytes {
        &self.buf
    }

    /// A UTF-8 encoded string (section 1.5.4), validated.
    #[inline]
    pub fn string(&mut self) -> Result<MqttString, DecodeError> {
        Ok(MqttString::from_bytes(self.binary()?)?)
    }

    /// Runs `f` with reads confined to the next `len` bytes, which `f` must consume exactly.
    #[inline]
    pub fn with_limit<T>(
        &mut self,
        len: usize,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if self.remaining() < len {
            return Err(DecodeError::UnexpectedEnd);
        }
        let outer_end = self.end;
        self.end = self.pos + len;
        let value = f(self)?;
        if !self.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        self.end = outer_end;
        Ok(value)
    }

    /// The unread rest of the frame, without copying (the PUBLISH payload).
    #[inline(always)]
    pub fn rest(self) -> Bytes {
        let mut buf = self.buf;
        // At the top level `end` is the frame's end, and skipping the call keeps `buf` in
        // registers on the PUBLISH path.
        if self.end < buf.len() {
            buf.truncate(self.end);
        }
        buf.advance(self.pos);
        buf
    }

    /// Fails unless every byte of the frame was read.
    #[inline]
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Parses a variable byte integer at the front of `buf`: `Ok(None)` when `buf` ends before its
/// last byte, else the value and its length in bytes.
#[inline]
pub fn parse_var_int(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::MalformedVarInt)
    } else {
        Ok(None)
    }
}

/// How many bytes the variable byte integer encoding of `value` takes.
#[inline]
pub fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `value` (at most `MAX_VAR_INT`) as a variable byte integer in the fewest bytes.
#[inline]
pub fn put_var_int(out: &mut BytesMut, value: usize) -> Result<(), EncodeError> {
    if value > MAX_VAR_INT {
        return Err(EncodeError::PacketTooLarge(value));
    }
    let mut rest = value;
    loop {
        let byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest == 0 {
            out.put_u8(byte);
            return Ok(());
        }
        out.put_u8(byte | 0x80);
    }
}

/// Writes binary data with its two-byte length (section 1.5.6).
#[inline]
pub fn put_binary(out: &mut BytesMut, data: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::BinaryTooLong(data.len()))?;
    out.put_u16(len);
    out.put_slice(data);
    Ok(())
}

/// Writes a string with its two-byte length; `MqttString` guarantees it fits.
#[inline]
pub fn put_string(out: &mut BytesMut, s: &MqttString) {
    out.put_u16(s.len() as u16);
    out.put_slice(s.as_bytes());
}

/// The encoded size of a string or binary field: the two-byte length and the bytes.
#[inline]
pub fn prefixed_len(len: usize) -> usize {
    2 + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_boundaries_round_trip_in_fewest_bytes_mqtt_1_5_5_1() {
        let cases: [(usize, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (value, bytes) in cases {
            let mut out = BytesMut::new();
            put_var_int(&mut out, value).expect("in range");
            assert_eq!(&out[..], bytes, "{value}");
            assert_eq!(var_int_len(value), bytes.len());
            assert_eq!(parse_var_int(bytes), Ok(Some((value, bytes.len()))));
        }
    }

    #[test]
    fn var_int_of_five_bytes_is_malformed_mqtt_1_5_5_1() {
        assert_eq!(
            parse_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::MalformedVarInt)
        );
        assert_eq!(
            parse_var_int(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::MalformedVarInt)
        );
    }

    #[test]
    fn var_int_cut_short_is_partial() {
        assert_eq!(parse_var_int(&[]), Ok(None));
        assert_eq!(parse_var_int(&[0x80, 0x80, 0x80]), Ok(None));
    }

    #[test]
    fn var_int_above_maximum_is_refused_on_encode() {
        let mut out = BytesMut::new();
        assert_eq!(
            put_var_int(&mut out, MAX_VAR_INT + 1),
            Err(EncodeError::PacketTooLarge(MAX_VAR_INT + 1))
        );
    }

    #[test]
    fn reader_confines_reads_to_limit() {
        let mut r = Reader::new(Bytes::from_static(&[2, 0xAA, 0xBB, 0xCC]), 0);
        let len = usize::from(r.u8().expect("len"));
        let inner = r.with_limit(len, |r| r.u16()).expect("fits");
        assert_eq!(inner, 0xAABB);
        assert_eq!(r.u8(), Ok(0xCC));
        let mut r = Reader::new(Bytes::from_static(&[1, 0xAA, 0xBB]), 0);
        assert_eq!(
            r.with_limit(1, |r| r.u16()),
            Err(DecodeError::UnexpectedEnd)
        );
    }

    #[test]
    fn reader_rest_is_zero_copy() {
        let buf = Bytes::from_static(b"abcdef");
        let mut r = Reader::new(buf.clone(), 1);
        assert_eq!(r.u8(), Ok(b'b'));
        let rest = r.rest();
        assert_eq!(&rest[..], b"cdef");
        assert_eq!(rest.as_ptr(), buf[2..].as_ptr());
    }

    #[test]
    fn binary_longer_than_u16_is_refused_on_encode() {
        let mut out = BytesMut::new();
        assert_eq!(
            put_binary(&mut out, &[0; 65_536]),
            Err(EncodeError::BinaryTooLong(65_536))
        );
    }
}
