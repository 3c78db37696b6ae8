//! MQTT 5.0 properties (section 2.2.2): a pointer-sized handle to one typed struct, and which
//! packet may carry which.

use super::error::{DecodeError, EncodeError};
use super::string::MqttString;
use super::topic::TopicName;
use super::types::ProtocolVersion;
use super::wire::{Reader, prefixed_len, put_binary, put_string, put_var_int, var_int_len};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The properties of one packet: a pointer-sized handle that is `None` (no heap allocation)
/// while no property is set. Most packets carry none, and keeping the ~400-byte
/// [`PropertyValues`] out of line keeps every [`Packet`](super::Packet) small.
///
/// Fields read through `Deref` (an empty static when unset); the first write through
/// `DerefMut` allocates. Equality compares the values, so an empty box equals no box.
#[derive(Clone, Default)]
pub struct Properties(Option<Box<PropertyValues>>);

/// What an unset [`Properties`] reads as.
static NO_VALUES: PropertyValues = PropertyValues::EMPTY;

impl Deref for Properties {
    type Target = PropertyValues;

    #[inline]
    fn deref(&self) -> &PropertyValues {
        self.0.as_deref().unwrap_or(&NO_VALUES)
    }
}

impl DerefMut for Properties {
    #[inline]
    fn deref_mut(&mut self) -> &mut PropertyValues {
        self.0
            .get_or_insert_with(|| Box::new(PropertyValues::EMPTY))
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            _ => **self == **other,
        }
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Properties(none)"),
            Some(values) => values.fmt(f),
        }
    }
}

impl From<PropertyValues> for Properties {
    fn from(values: PropertyValues) -> Self {
        if values.is_empty() {
            Self(None)
        } else {
            Self(Some(Box::new(values)))
        }
    }
}

impl Properties {
    /// Decodes a property length and list for `ctx`, refusing unknown, misplaced, duplicated
    /// and out-of-range properties. An empty list allocates nothing.
    #[inline]
    pub(crate) fn decode(r: &mut Reader, ctx: PropertyContext) -> Result<Self, DecodeError> {
        let len = r.var_int()? as usize;
        if len == 0 {
            return Ok(Self(None));
        }
        PropertyValues::decode_list(r, len, ctx).map(|values| Self(Some(values)))
    }

    /// Whether no property is set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(PropertyValues::is_empty)
    }

    /// A Reason String and nothing else; allocates only when there is one.
    pub fn reason_string(text: Option<MqttString>) -> Self {
        match text {
            None => Self(None),
            Some(text) => Self::from(PropertyValues {
                reason_string: Some(text),
                ..PropertyValues::EMPTY
            }),
        }
    }

    /// Whether a Reason String or a User Property is set: the properties a receiver's limits
    /// can rule out (MQTT 5.0 3.1.2.11.4, 3.1.2.11.7).
    #[inline]
    pub fn has_diagnostics(&self) -> bool {
        self.0
            .as_deref()
            .is_some_and(|v| v.reason_string.is_some() || !v.user_properties.is_empty())
    }

    /// Removes the Reason String and the User Properties (never allocates).
    pub fn remove_diagnostics(&mut self) {
        if let Some(values) = self.0.as_deref_mut() {
            values.reason_string = None;
            values.user_properties.clear();
        }
    }

    /// The length of the property list for `ctx`, without its own length prefix. Properties
    /// that `ctx` does not allow are left out, as `encode` leaves them out.
    #[inline]
    pub fn content_len(&self, ctx: PropertyContext) -> usize {
        self.0
            .as_deref()
            .map_or(0, |values| values.content_len(ctx))
    }

    /// The property length prefix and the list: what the packet's variable header holds.
    #[inline]
    pub fn encoded_len(&self, ctx: PropertyContext) -> usize {
        let len = self.content_len(ctx);
        var_int_len(len) + len
    }

    /// Writes the property length and the properties `ctx` allows, in identifier order.
    #[inline]
    pub(crate) fn encode(
        &self,
        ctx: PropertyContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self.0.as_deref() {
            None => {
                out.put_u8(0);
                Ok(())
            }
            Some(values) => values.encode(ctx, out),
        }
    }

    /// Writes the properties `ctx` allows, in identifier order, without the length prefix: for
    /// a caller that writes the prefix itself because it adds a property of its own.
    #[inline]
    pub(crate) fn encode_content(
        &self,
        ctx: PropertyContext,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match self.0.as_deref() {
            None => Ok(()),
            Some(values) => values.visit(ctx, &mut Writer(out)),
        }
    }
}

/// Every MQTT 5.0 property. A packet carries the subset the spec allows it; decode refuses a
/// property that appears in the wrong packet or twice (except User Property and, in PUBLISH,
/// Subscription Identifier). Packets hold it through [`Properties`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyValues {
    /// 0x01
    pub payload_format_indicator: Option<u8>,
    /// 0x02, seconds
    pub message_expiry_interval: Option<u32>,
    /// 0x03
    pub content_type: Option<MqttString>,
    /// 0x08
    pub response_topic: Option<TopicName>,
    /// 0x09
    pub correlation_data: Option<Bytes>,
    /// 0x0B, variable byte integers 1..=268,435,455; several only in PUBLISH.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, seconds
    pub session_expiry_interval: Option<u32>,
    /// 0x12
    pub assigned_client_identifier: Option<MqttString>,
    /// 0x13, seconds
    pub server_keep_alive: Option<u16>,
    /// 0x15
    pub authentication_method: Option<MqttString>,
    /// 0x16
    pub authentication_data: Option<Bytes>,
    /// 0x17
    pub request_problem_information: Option<u8>,
    /// 0x18, seconds
    pub will_delay_interval: Option<u32>,
    /// 0x19
    pub request_response_information: Option<u8>,
    /// 0x1A
    pub response_information: Option<MqttString>,
    /// 0x1C
    pub server_reference: Option<MqttString>,
    /// 0x1F
    pub reason_string: Option<MqttString>,
    /// 0x21, never 0
    pub receive_maximum: Option<u16>,
    /// 0x22
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, never 0
    pub topic_alias: Option<u16>,
    /// 0x24, 0 or 1
    pub maximum_qos: Option<u8>,
    /// 0x25, 0 or 1
    pub retain_available: Option<u8>,
    /// 0x26, in order
    pub user_properties: Vec<(MqttString, MqttString)>,
    /// 0x27, never 0
    pub maximum_packet_size: Option<u32>,
    /// 0x28, 0 or 1
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, 0 or 1
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A, 0 or 1
    pub shared_subscription_available: Option<u8>,
}

/// Which packet (or the will of a CONNECT) a property list belongs to; it decides which
/// properties are allowed (MQTT 5.0 section 2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PropertyContext {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }

    /// Whether a property with identifier `id` may appear in this context; `None` for an
    /// identifier the spec does not define.
    pub fn allows(self, id: u8) -> Option<bool> {
        allowed_mask(id).map(|mask| mask & self.bit() != 0)
    }
}

const fn mask(contexts: &[PropertyContext]) -> u16 {
    let mut m = 0;
    let mut i = 0;
    while i < contexts.len() {
        m |= contexts[i].bit();
        i += 1;
    }
    m
}

/// The table of section 2.2.2.2: for each property identifier, the contexts that may carry it.
fn allowed_mask(id: u8) -> Option<u16> {
    use PropertyContext::*;
    const MESSAGE: u16 = mask(&[Publish, Will]);
    const CONNECTION: u16 = mask(&[Connect, ConnAck]);
    const REASON_STRING: u16 = mask(&[ConnAck, PubResp, SubAck, UnsubAck, Disconnect, Auth]);
    const USER: u16 = mask(&[
        Connect,
        Will,
        ConnAck,
        Publish,
        PubResp,
        Subscribe,
        SubAck,
        Unsubscribe,
        UnsubAck,
        Disconnect,
        Auth,
    ]);
    Some(match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => MESSAGE,
        0x0B => mask(&[Publish, Subscribe]),
        0x11 => mask(&[Connect, ConnAck, Disconnect]),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => mask(&[ConnAck]),
        0x15 | 0x16 => mask(&[Connect, ConnAck, Auth]),
        0x17 | 0x19 => mask(&[Connect]),
        0x18 => mask(&[Will]),
        0x1C => mask(&[ConnAck, Disconnect]),
        0x1F => REASON_STRING,
        0x21 | 0x22 | 0x27 => CONNECTION,
        0x23 => mask(&[Publish]),
        0x26 => USER,
        _ => return None,
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

fn flag_byte(r: &mut Reader, id: u8) -> Result<u8, DecodeError> {
    match r.u8()? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::InvalidPropertyValue(id)),
    }
}

fn non_zero_u16(r: &mut Reader, id: u8) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::InvalidPropertyValue(id)),
        v => Ok(v),
    }
}

impl PropertyValues {
    /// No property set; `const` so an unset [`Properties`] can read as a static.
    pub const EMPTY: Self = Self {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
    };

    /// Decodes the `len` bytes of a non-empty property list straight into its box.
    #[cold]
    fn decode_list(
        r: &mut Reader,
        len: usize,
        ctx: PropertyContext,
    ) -> Result<Box<Self>, DecodeError> {
        let mut values = Box::new(Self::EMPTY);
        r.with_limit(len, |r| {
            while !r.is_empty() {
                values.decode_one(r, ctx)?;
            }
            Ok(())
        })?;
        Ok(values)
    }

    fn decode_one(&mut self, r: &mut Reader, ctx: PropertyContext) -> Result<(), DecodeError> {
        let raw_id = r.var_int()?;
        let id = u8::try_from(raw_id).map_err(|_| DecodeError::UnknownProperty(u8::MAX))?;
        match ctx.allows(id) {
            None => return Err(DecodeError::UnknownProperty(id)),
            Some(false) => return Err(DecodeError::PropertyNotAllowed(id)),
            Some(true) => {}
        }
        match id {
            0x01 => set_once(&mut self.payload_format_indicator, flag_byte(r, id)?, id),
            0x02 => set_once(&mut self.message_expiry_interval, r.u32()?, id),
            0x03 => set_once(&mut self.content_type, r.string()?, id),
            0x08 => {
                let topic = TopicName::from_mqtt_string(r.string()?)
                    .map_err(|_| DecodeError::InvalidPropertyValue(id))?;
                set_once(&mut self.response_topic, topic, id)
            }
            0x09 => set_once(&mut self.correlation_data, r.binary()?, id),
            0x0B => self.decode_subscription_identifier(r, ctx, id),
            0x11 => set_once(&mut self.session_expiry_interval, r.u32()?, id),
            0x12 => set_once(&mut self.assigned_client_identifier, r.string()?, id),
            0x13 => set_once(&mut self.server_keep_alive, r.u16()?, id),
            0x15 => set_once(&mut self.authentication_method, r.string()?, id),
            0x16 => set_once(&mut self.authentication_data, r.binary()?, id),
            0x17 => set_once(&mut self.request_problem_information, flag_byte(r, id)?, id),
            0x18 => set_once(&mut self.will_delay_interval, r.u32()?, id),
            0x19 => set_once(
                &mut self.request_response_information,
                flag_byte(r, id)?,
                id,
            ),
            0x1A => set_once(&mut self.response_information, r.string()?, id),
            0x1C => set_once(&mut self.server_reference, r.string()?, id),
            0x1F => set_once(&mut self.reason_string, r.string()?, id),
            0x21 => set_once(&mut self.receive_maximum, non_zero_u16(r, id)?, id),
            0x22 => set_once(&mut self.topic_alias_maximum, r.u16()?, id),
            0x23 => set_once(&mut self.topic_alias, non_zero_u16(r, id)?, id),
            0x24 => set_once(&mut self.maximum_qos, flag_byte(r, id)?, id),
            0x25 => set_once(&mut self.retain_available, flag_byte(r, id)?, id),
            0x26 => {
                let pair = (r.string()?, r.string()?);
                self.user_properties.push(pair);
                Ok(())
            }
            0x27 => match r.u32()? {
                0 => Err(DecodeError::InvalidPropertyValue(id)),
                v => set_once(&mut self.maximum_packet_size, v, id),
            },
            0x28 => set_once(
                &mut self.wildcard_subscription_available,
                flag_byte(r, id)?,
                id,
            ),
            0x29 => set_once(
                &mut self.subscription_identifier_available,
                flag_byte(r, id)?,
                id,
            ),
            0x2A => set_once(
                &mut self.shared_subscription_available,
                flag_byte(r, id)?,
                id,
            ),
            _ => Err(DecodeError::UnknownProperty(id)),
        }
    }

    /// Subscription Identifier: 1..=268,435,455 [MQTT-3.8.2.1.2]; several only in PUBLISH.
    fn decode_subscription_identifier(
        &mut self,
        r: &mut Reader,
        ctx: PropertyContext,
        id: u8,
    ) -> Result<(), DecodeError> {
        let value = r.var_int()?;
        if value == 0 {
            return Err(DecodeError::InvalidPropertyValue(id));
        }
        if ctx != PropertyContext::Publish && !self.subscription_identifiers.is_empty() {
            return Err(DecodeError::DuplicateProperty(id));
        }
        self.subscription_identifiers.push(value);
        Ok(())
    }

    /// Whether any property is set, without branches: the common empty case stays cheap.
    #[inline]
    fn any_set(&self) -> bool {
        self.payload_format_indicator.is_some()
            | self.message_expiry_interval.is_some()
            | self.content_type.is_some()
            | self.response_topic.is_some()
            | self.correlation_data.is_some()
            | !self.subscription_identifiers.is_empty()
            | self.session_expiry_interval.is_some()
            | self.assigned_client_identifier.is_some()
            | self.server_keep_alive.is_some()
            | self.authentication_method.is_some()
            | self.authentication_data.is_some()
            | self.request_problem_information.is_some()
            | self.will_delay_interval.is_some()
            | self.request_response_information.is_some()
            | self.response_information.is_some()
            | self.server_reference.is_some()
            | self.reason_string.is_some()
            | self.receive_maximum.is_some()
            | self.topic_alias_maximum.is_some()
            | self.topic_alias.is_some()
            | self.maximum_qos.is_some()
            | self.retain_available.is_some()
            | !self.user_properties.is_empty()
            | self.maximum_packet_size.is_some()
            | self.wildcard_subscription_available.is_some()
            | self.subscription_identifier_available.is_some()
            | self.shared_subscription_available.is_some()
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        !self.any_set()
    }

    /// The length of the property list for `ctx`, without its own length prefix. Properties
    /// that `ctx` does not allow are left out, as `encode` leaves them out.
    #[inline]
    pub fn content_len(&self, ctx: PropertyContext) -> usize {
        if !self.any_set() {
            return 0;
        }
        let mut counter = LenCounter(0);
        let written = self.visit(ctx, &mut counter);
        debug_assert!(written.is_ok(), "LenCounter never fails");
        counter.0
    }

    /// The property length prefix and the list: what the packet's variable header holds.
    #[inline]
    pub fn encoded_len(&self, ctx: PropertyContext) -> usize {
        let len = self.content_len(ctx);
        var_int_len(len) + len
    }

    /// Writes the property length and the properties `ctx` allows, in identifier order.
    fn encode(&self, ctx: PropertyContext, out: &mut BytesMut) -> Result<(), EncodeError> {
        let len = self.content_len(ctx);
        put_var_int(out, len)?;
        if len == 0 {
            return Ok(());
        }
        self.visit(ctx, &mut Writer(out))
    }

    /// Feeds every property `ctx` allows to `sink`: the single walk behind both length and
    /// encoding, so the two cannot disagree.
    fn visit(&self, ctx: PropertyContext, sink: &mut impl Sink) -> Result<(), EncodeError> {
        let on = |id| ctx.allows(id) == Some(true);
        if let Some(v) = self.payload_format_indicator
            && on(0x01)
        {
            sink.u8(0x01, v);
        }
        if let Some(v) = self.message_expiry_interval
            && on(0x02)
        {
            sink.u32(0x02, v);
        }
        if let Some(v) = &self.content_type
            && on(0x03)
        {
            sink.string(0x03, v);
        }
        if let Some(v) = &self.response_topic
            && on(0x08)
        {
            sink.binary(0x08, v.as_bytes())?;
        }
        if let Some(v) = &self.correlation_data
            && on(0x09)
        {
            sink.binary(0x09, v)?;
        }
        if on(0x0B) {
            for &v in &self.subscription_identifiers {
                sink.var_int(0x0B, v)?;
            }
        }
        if let Some(v) = self.session_expiry_interval
            && on(0x11)
        {
            sink.u32(0x11, v);
        }
        if let Some(v) = &self.assigned_client_identifier
            && on(0x12)
        {
            sink.string(0x12, v);
        }
        if let Some(v) = self.server_keep_alive
            && on(0x13)
        {
            sink.u16(0x13, v);
        }
        if let Some(v) = &self.authentication_method
            && on(0x15)
        {
            sink.string(0x15, v);
        }
        if let Some(v) = &self.authentication_data
            && on(0x16)
        {
            sink.binary(0x16, v)?;
        }
        if let Some(v) = self.request_problem_information
            && on(0x17)
        {
            sink.u8(0x17, v);
        }
        if let Some(v) = self.will_delay_interval
            && on(0x18)
        {
            sink.u32(0x18, v);
        }
        if let Some(v) = self.request_response_information
            && on(0x19)
        {
            sink.u8(0x19, v);
        }
        if let Some(v) = &self.response_information
            && on(0x1A)
        {
            sink.string(0x1A, v);
        }
        if let Some(v) = &self.server_reference
            && on(0x1C)
        {
            sink.string(0x1C, v);
        }
        if let Some(v) = &self.reason_string
            && on(0x1F)
        {
            sink.string(0x1F, v);
        }
        if let Some(v) = self.receive_maximum
            && on(0x21)
        {
            sink.u16(0x21, v);
        }
        if let Some(v) = self.topic_alias_maximum
            && on(0x22)
        {
            sink.u16(0x22, v);
        }
        if let Some(v) = self.topic_alias
            && on(0x23)
        {
            sink.u16(0x23, v);
        }
        if let Some(v) = self.maximum_qos
            && on(0x24)
        {
            sink.u8(0x24, v);
        }
        if let Some(v) = self.retain_available
            && on(0x25)
        {
            sink.u8(0x25, v);
        }
        if on(0x26) {
            for (key, value) in &self.user_properties {
                sink.string_pair(0x26, key, value);
            }
        }
        if let Some(v) = self.maximum_packet_size
            && on(0x27)
        {
            sink.u32(0x27, v);
        }
        if let Some(v) = self.wildcard_subscription_available
            && on(0x28)
        {
            sink.u8(0x28, v);
        }
        if let Some(v) = self.subscription_identifier_available
            && on(0x29)
        {
            sink.u8(0x29, v);
        }
        if let Some(v) = self.shared_subscription_available
            && on(0x2A)
        {
            sink.u8(0x2A, v);
        }
        Ok(())
    }
}

/// Receives the properties `visit` walks: either counts their size or writes them.
trait Sink {
    fn u8(&mut self, id: u8, v: u8);
    fn u16(&mut self, id: u8, v: u16);
    fn u32(&mut self, id: u8, v: u32);
    fn var_int(&mut self, id: u8, v: u32) -> Result<(), EncodeError>;
    fn string(&mut self, id: u8, v: &MqttString);
    fn string_pair(&mut self, id: u8, key: &MqttString, value: &MqttString);
    fn binary(&mut self, id: u8, v: &[u8]) -> Result<(), EncodeError>;
}

/// Every property identifier defined so far is below 128, so it takes one byte.
const ID_LEN: usize = 1;

struct LenCounter(usize);

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

struct Writer<'a>(&'a mut BytesMut);

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

/// Properties exist only in 5.0: earlier versions decode none, and encode and count none.
pub(crate) fn decode_properties(
    r: &mut Reader,
    version: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<Properties, DecodeError> {
    if version.has_properties() {
        Properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

pub(crate) fn properties_len(
    properties: &Properties,
    version: ProtocolVersion,
    ctx: PropertyContext,
) -> usize {
    if version.has_properties() {
        properties.encoded_len(ctx)
    } else {
        0
    }
}

pub(crate) fn encode_properties(
    properties: &Properties,
    version: ProtocolVersion,
    ctx: PropertyContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if version.has_properties() {
        properties.encode(ctx, out)
    } else {
        Ok(())
    }
}

// In a file of their own, like the other large test modules of the crate.
#[cfg(test)]
mod tests;
