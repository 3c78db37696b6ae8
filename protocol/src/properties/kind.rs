//! How a property value sits on the wire: the kinds a row of the property table names (the
//! data types of section 1.5, narrowed by the range each property allows), the slot a value
//! is stored in, and the two sinks of the encode walk, one that counts and one that writes.

use super::super::error::{DecodeError, EncodeError};
use super::super::string::MqttString;
use super::super::topic::TopicName;
use super::super::wire::{Reader, prefixed_len, put_binary, put_string, put_var_int, var_int_len};
use bytes::{BufMut, Bytes, BytesMut};

/// One wire kind: how to read a value of it (refusing what the property's range excludes)
/// and which primitive writes it.
pub(super) trait Kind {
    type Value;
    fn read(r: &mut Reader, id: u8) -> Result<Self::Value, DecodeError>;
    fn emit(id: u8, value: &Self::Value, sink: &mut impl Sink) -> Result<(), EncodeError>;
}

/// A Byte that is 0 or 1.
pub(super) enum Flag {}
/// A Two Byte Integer.
pub(super) enum TwoByte {}
/// A Two Byte Integer other than 0.
pub(super) enum TwoByteNonZero {}
/// A Four Byte Integer.
pub(super) enum FourByte {}
/// A Four Byte Integer other than 0.
pub(super) enum FourByteNonZero {}
/// A Variable Byte Integer other than 0 (1..=268,435,455).
pub(super) enum VarIntNonZero {}
/// A UTF-8 Encoded String.
pub(super) enum Utf8 {}
/// A UTF-8 Encoded String that is a valid topic name (no wildcards, not empty).
pub(super) enum Topic {}
/// Binary Data.
pub(super) enum Binary {}
/// A UTF-8 String Pair.
pub(super) enum Utf8Pair {}

fn non_zero<T: Default + PartialEq>(value: T, id: u8) -> Result<T, DecodeError> {
    if value == T::default() {
        return Err(DecodeError::InvalidPropertyValue(id));
    }
    Ok(value)
}

impl Kind for Flag {
    type Value = u8;
    fn read(r: &mut Reader, id: u8) -> Result<u8, DecodeError> {
        match r.u8()? {
            v @ (0 | 1) => Ok(v),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn emit(id: u8, value: &u8, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.u8(id, *value);
        Ok(())
    }
}

impl Kind for TwoByte {
    type Value = u16;
    fn read(r: &mut Reader, _: u8) -> Result<u16, DecodeError> {
        r.u16()
    }
    fn emit(id: u8, value: &u16, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.u16(id, *value);
        Ok(())
    }
}

impl Kind for TwoByteNonZero {
    type Value = u16;
    fn read(r: &mut Reader, id: u8) -> Result<u16, DecodeError> {
        non_zero(r.u16()?, id)
    }
    fn emit(id: u8, value: &u16, sink: &mut impl Sink) -> Result<(), EncodeError> {
        TwoByte::emit(id, value, sink)
    }
}

impl Kind for FourByte {
    type Value = u32;
    fn read(r: &mut Reader, _: u8) -> Result<u32, DecodeError> {
        r.u32()
    }
    fn emit(id: u8, value: &u32, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.u32(id, *value);
        Ok(())
    }
}

impl Kind for FourByteNonZero {
    type Value = u32;
    fn read(r: &mut Reader, id: u8) -> Result<u32, DecodeError> {
        non_zero(r.u32()?, id)
    }
    fn emit(id: u8, value: &u32, sink: &mut impl Sink) -> Result<(), EncodeError> {
        FourByte::emit(id, value, sink)
    }
}

impl Kind for VarIntNonZero {
    type Value = u32;
    fn read(r: &mut Reader, id: u8) -> Result<u32, DecodeError> {
        non_zero(r.var_int()?, id)
    }
    fn emit(id: u8, value: &u32, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.var_int(id, *value)
    }
}

impl Kind for Utf8 {
    type Value = MqttString;
    fn read(r: &mut Reader, _: u8) -> Result<MqttString, DecodeError> {
        r.string()
    }
    fn emit(id: u8, value: &MqttString, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.string(id, value);
        Ok(())
    }
}

impl Kind for Topic {
    type Value = TopicName;
    fn read(r: &mut Reader, id: u8) -> Result<TopicName, DecodeError> {
        TopicName::from_mqtt_string(r.string()?).map_err(|_| DecodeError::InvalidPropertyValue(id))
    }
    fn emit(id: u8, value: &TopicName, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.binary(id, value.as_bytes())
    }
}

impl Kind for Binary {
    type Value = Bytes;
    fn read(r: &mut Reader, _: u8) -> Result<Bytes, DecodeError> {
        r.binary()
    }
    fn emit(id: u8, value: &Bytes, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.binary(id, value)
    }
}

impl Kind for Utf8Pair {
    type Value = (MqttString, MqttString);
    fn read(r: &mut Reader, _: u8) -> Result<Self::Value, DecodeError> {
        Ok((r.string()?, r.string()?))
    }
    fn emit(id: u8, (key, value): &Self::Value, sink: &mut impl Sink) -> Result<(), EncodeError> {
        sink.string_pair(id, key, value);
        Ok(())
    }
}

/// Where a property's values live in `PropertyValues`: `Option` for a property that appears
/// at most once, `Vec` for one that may repeat. Whether a repeat is allowed is the table's
/// call, per context; the slot only stores.
pub(super) trait Slot {
    type Value;
    const EMPTY: Self;
    /// Whether the slot holds more than one value.
    const MANY: bool;
    fn is_set(&self) -> bool;
    fn push(&mut self, value: Self::Value);
    fn values(&self) -> &[Self::Value];
}

impl<T> Slot for Option<T> {
    type Value = T;
    const EMPTY: Self = None;
    const MANY: bool = false;
    #[inline]
    fn is_set(&self) -> bool {
        self.is_some()
    }
    fn push(&mut self, value: T) {
        *self = Some(value);
    }
    #[inline]
    fn values(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> Slot for Vec<T> {
    type Value = T;
    const EMPTY: Self = Vec::new();
    const MANY: bool = true;
    #[inline]
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
    fn push(&mut self, value: T) {
        Vec::push(self, value);
    }
    #[inline]
    fn values(&self) -> &[T] {
        self
    }
}

/// Receives the properties the encode walk visits: either counts their size or writes them,
/// so that length and bytes come from the same walk and cannot disagree.
pub(super) trait Sink {
    fn u8(&mut self, id: u8, v: u8);
    fn u16(&mut self, id: u8, v: u16);
    fn u32(&mut self, id: u8, v: u32);
    fn var_int(&mut self, id: u8, v: u32) -> Result<(), EncodeError>;
    fn string(&mut self, id: u8, v: &MqttString);
    fn string_pair(&mut self, id: u8, key: &MqttString, value: &MqttString);
    fn binary(&mut self, id: u8, v: &[u8]) -> Result<(), EncodeError>;
}

/// Every property identifier is below 128 (the table checks it), so it takes one byte.
const ID_LEN: usize = 1;

pub(super) struct LenCounter(pub usize);

impl Sink for LenCounter {
    fn u8(&mut self, _: u8, _: u8) {
        self.0 += ID_LEN + 1;
    }
    fn u16(&mut self, _: u8, _: u16) {
        self.0 += ID_LEN + 2;
    }
    fn u32(&mut self, _: u8, _: u32) {
        self.0 += ID_LEN + 4;
    }
    fn var_int(&mut self, _: u8, v: u32) -> Result<(), EncodeError> {
        self.0 += ID_LEN + var_int_len(v as usize);
        Ok(())
    }
    fn string(&mut self, _: u8, v: &MqttString) {
        self.0 += ID_LEN + prefixed_len(v.len());
    }
    fn string_pair(&mut self, _: u8, key: &MqttString, value: &MqttString) {
        self.0 += ID_LEN + prefixed_len(key.len()) + prefixed_len(value.len());
    }
    fn binary(&mut self, _: u8, v: &[u8]) -> Result<(), EncodeError> {
        self.0 += ID_LEN + prefixed_len(v.len());
        Ok(())
    }
}

pub(super) struct Writer<'a>(pub &'a mut BytesMut);

impl Sink for Writer<'_> {
    fn u8(&mut self, id: u8, v: u8) {
        self.0.put_u8(id);
        self.0.put_u8(v);
    }
    fn u16(&mut self, id: u8, v: u16) {
        self.0.put_u8(id);
        self.0.put_u16(v);
    }
    fn u32(&mut self, id: u8, v: u32) {
        self.0.put_u8(id);
        self.0.put_u32(v);
    }
    fn var_int(&mut self, id: u8, v: u32) -> Result<(), EncodeError> {
        self.0.put_u8(id);
        put_var_int(self.0, v as usize)
    }
    fn string(&mut self, id: u8, v: &MqttString) {
        self.0.put_u8(id);
        put_string(self.0, v);
    }
    fn string_pair(&mut self, id: u8, key: &MqttString, value: &MqttString) {
        self.0.put_u8(id);
        put_string(self.0, key);
        put_string(self.0, value);
    }
    fn binary(&mut self, id: u8, v: &[u8]) -> Result<(), EncodeError> {
        self.0.put_u8(id);
        put_binary(self.0, v)
    }
}
