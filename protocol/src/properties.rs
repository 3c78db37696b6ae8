//! MQTT 5.0 properties (section 2.2.2): a pointer-sized handle to one typed struct, and the
//! one table that declares every property (identifier, field, wire kind, which packets may
//! carry it, and carry it more than once), from which decode, encode, length and validation
//! are all generated.

mod kind;

use super::error::{DecodeError, EncodeError};
use super::string::MqttString;
use super::topic::TopicName;
use super::types::ProtocolVersion;
use super::wire::{Reader, put_var_int, var_int_len};
use bytes::{BufMut, Bytes, BytesMut};
use kind::{Kind, LenCounter, Sink, Slot, Writer};
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

    /// How many bytes of the list `encode` writes for `ctx` come before the property `id`
    /// (after the length prefix): where `id` starts, when it is set.
    pub(crate) fn len_before(&self, ctx: PropertyContext, id: u8) -> usize {
        let Some(values) = self.0.as_deref() else {
            return 0;
        };
        let mut counter = LenCounter(0);
        let counted = values.visit_below(ctx, id, &mut counter);
        debug_assert!(counted.is_ok(), "LenCounter never fails");
        counter.0
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

const EVERY_CONTEXT: u16 = mask(&[
    PropertyContext::Connect,
    PropertyContext::Will,
    PropertyContext::ConnAck,
    PropertyContext::Publish,
    PropertyContext::PubResp,
    PropertyContext::Subscribe,
    PropertyContext::SubAck,
    PropertyContext::Unsubscribe,
    PropertyContext::UnsubAck,
    PropertyContext::Disconnect,
    PropertyContext::Auth,
]);

/// Declares the properties, one row each, and generates from the rows: the fields of
/// [`PropertyValues`] and its `EMPTY` value, the identifier constants in [`id`], which
/// contexts allow each identifier, the decoding of one property, and the walk that sizes and
/// writes a list. A row reads
///
/// `id NAME field: Type as Kind, in [contexts] (, several in [contexts])?;`
///
/// where `every` stands for all contexts, `Kind` is one of the wire kinds of `kind.rs`, and
/// `several` lists the contexts in which the property may appear more than once (its field
/// must then be a `Vec`, which a compile-time check enforces). Nothing else in the codec
/// lists the properties.
macro_rules! property_table {
    (@mask) => { 0 };
    (@mask every) => { EVERY_CONTEXT };
    (@mask [$($ctx:ident),* $(,)?]) => { mask(&[$(PropertyContext::$ctx),*]) };
    ($(
        $(#[$doc:meta])*
        $id:literal $NAME:ident $field:ident: $ty:ty as $kind:ident,
        in $allowed:tt $(, several in $several:tt)?;
    )*) => {
        /// Every MQTT 5.0 property. A packet carries the subset the spec allows it; decode
        /// refuses a property that appears in the wrong packet or twice (except User Property
        /// and, in PUBLISH, Subscription Identifier). Packets hold it through [`Properties`].
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct PropertyValues {
            $(
                #[doc = concat!("`", stringify!($id), "` ([`id::", stringify!($NAME), "`]).")]
                #[doc = ""]
                $(#[$doc])*
                pub $field: $ty,
            )*
        }

        /// The property identifiers (section 2.2.2.2).
        pub mod id {
            $(pub const $NAME: u8 = $id;)*
        }

        /// Every identifier in table order: encoding writes properties in this order.
        const IDS: &[u8] = &[$($id),*];

        $(const _: () = assert!(
            property_table!(@mask $($several)?) == 0 || <$ty as Slot>::MANY,
            concat!(stringify!($NAME), " may appear several times, so it needs a Vec"),
        );)*

        impl PropertyValues {
            /// No property set; `const` so an unset [`Properties`] can read as a static.
            pub const EMPTY: Self = Self { $($field: <$ty as Slot>::EMPTY,)* };

            /// Whether any property is set, without branches: the common empty case stays
            /// cheap.
            #[inline]
            fn any_set(&self) -> bool {
                false $(| self.$field.is_set())*
            }

            fn decode_one(
                &mut self,
                r: &mut Reader,
                ctx: PropertyContext,
            ) -> Result<(), DecodeError> {
                let raw_id = r.var_int()?;
                let id = u8::try_from(raw_id)
                    .map_err(|_| DecodeError::UnknownProperty(u8::MAX))?;
                match id {
                    $($id => decode_into::<kind::$kind, _>(
                        &mut self.$field,
                        r,
                        ctx,
                        id,
                        const { property_table!(@mask $allowed) },
                        const { property_table!(@mask $($several)?) },
                    ),)*
                    _ => Err(DecodeError::UnknownProperty(id)),
                }
            }

            /// Feeds every property `ctx` allows to `sink`, in identifier order.
            #[inline]
            fn visit(
                &self,
                ctx: PropertyContext,
                sink: &mut impl Sink,
            ) -> Result<(), EncodeError> {
                self.visit_below(ctx, u8::MAX, sink)
            }

            /// Feeds `sink` the properties `ctx` allows whose identifier is below `below`, in
            /// identifier order: the properties written ahead of `below`.
            fn visit_below(
                &self,
                ctx: PropertyContext,
                below: u8,
                sink: &mut impl Sink,
            ) -> Result<(), EncodeError> {
                $(
                    if $id < below && const { property_table!(@mask $allowed) } & ctx.bit() != 0 {
                        for value in self.$field.values() {
                            <kind::$kind as Kind>::emit($id, value, sink)?;
                        }
                    }
                )*
                Ok(())
            }
        }

        /// For each identifier, the contexts that may carry it.
        fn allowed_mask(id: u8) -> Option<u16> {
            match id {
                $($id => Some(const { property_table!(@mask $allowed) }),)*
                _ => None,
            }
        }
    };
}

property_table! {
    /// 0 (unspecified bytes) or 1 (UTF-8).
    0x01 PAYLOAD_FORMAT_INDICATOR payload_format_indicator: Option<u8> as Flag,
        in [Publish, Will];
    /// Seconds.
    0x02 MESSAGE_EXPIRY_INTERVAL message_expiry_interval: Option<u32> as FourByte,
        in [Publish, Will];
    0x03 CONTENT_TYPE content_type: Option<MqttString> as Utf8, in [Publish, Will];
    0x08 RESPONSE_TOPIC response_topic: Option<TopicName> as Topic, in [Publish, Will];
    0x09 CORRELATION_DATA correlation_data: Option<Bytes> as Binary, in [Publish, Will];
    /// 1..=268,435,455 [MQTT-3.8.2.1.2]; several only in PUBLISH.
    0x0B SUBSCRIPTION_IDENTIFIER subscription_identifiers: Vec<u32> as VarIntNonZero,
        in [Publish, Subscribe], several in [Publish];
    /// Seconds.
    0x11 SESSION_EXPIRY_INTERVAL session_expiry_interval: Option<u32> as FourByte,
        in [Connect, ConnAck, Disconnect];
    0x12 ASSIGNED_CLIENT_IDENTIFIER assigned_client_identifier: Option<MqttString> as Utf8,
        in [ConnAck];
    /// Seconds.
    0x13 SERVER_KEEP_ALIVE server_keep_alive: Option<u16> as TwoByte, in [ConnAck];
    0x15 AUTHENTICATION_METHOD authentication_method: Option<MqttString> as Utf8,
        in [Connect, ConnAck, Auth];
    0x16 AUTHENTICATION_DATA authentication_data: Option<Bytes> as Binary,
        in [Connect, ConnAck, Auth];
    /// 0 or 1.
    0x17 REQUEST_PROBLEM_INFORMATION request_problem_information: Option<u8> as Flag,
        in [Connect];
    /// Seconds.
    0x18 WILL_DELAY_INTERVAL will_delay_interval: Option<u32> as FourByte, in [Will];
    /// 0 or 1.
    0x19 REQUEST_RESPONSE_INFORMATION request_response_information: Option<u8> as Flag,
        in [Connect];
    0x1A RESPONSE_INFORMATION response_information: Option<MqttString> as Utf8, in [ConnAck];
    0x1C SERVER_REFERENCE server_reference: Option<MqttString> as Utf8,
        in [ConnAck, Disconnect];
    0x1F REASON_STRING reason_string: Option<MqttString> as Utf8,
        in [ConnAck, PubResp, SubAck, UnsubAck, Disconnect, Auth];
    /// Never 0.
    0x21 RECEIVE_MAXIMUM receive_maximum: Option<u16> as TwoByteNonZero, in [Connect, ConnAck];
    0x22 TOPIC_ALIAS_MAXIMUM topic_alias_maximum: Option<u16> as TwoByte, in [Connect, ConnAck];
    /// Never 0.
    0x23 TOPIC_ALIAS topic_alias: Option<u16> as TwoByteNonZero, in [Publish];
    /// 0 or 1.
    0x24 MAXIMUM_QOS maximum_qos: Option<u8> as Flag, in [ConnAck];
    /// 0 or 1.
    0x25 RETAIN_AVAILABLE retain_available: Option<u8> as Flag, in [ConnAck];
    /// In order of arrival [MQTT-3.3.2-18].
    0x26 USER_PROPERTY user_properties: Vec<(MqttString, MqttString)> as Utf8Pair,
        in every, several in every;
    /// Never 0.
    0x27 MAXIMUM_PACKET_SIZE maximum_packet_size: Option<u32> as FourByteNonZero,
        in [Connect, ConnAck];
    /// 0 or 1.
    0x28 WILDCARD_SUBSCRIPTION_AVAILABLE wildcard_subscription_available: Option<u8> as Flag,
        in [ConnAck];
    /// 0 or 1.
    0x29 SUBSCRIPTION_IDENTIFIER_AVAILABLE subscription_identifier_available: Option<u8> as Flag,
        in [ConnAck];
    /// 0 or 1.
    0x2A SHARED_SUBSCRIPTION_AVAILABLE shared_subscription_available: Option<u8> as Flag,
        in [ConnAck];
}

// Encoding walks the table in row order and sizes an identifier as one byte; both hold only
// while the rows ascend and stay below 128 (a variable byte integer of one byte).
const _: () = {
    let mut i = 0;
    while i < IDS.len() {
        assert!(IDS[i] < 0x80, "a property identifier above one byte");
        assert!(
            i == 0 || IDS[i - 1] < IDS[i],
            "property rows out of identifier order"
        );
        i += 1;
    }
};

/// Reads one value of kind `K` into `slot`: refused where `ctx` is not in `allowed`, and as
/// a duplicate when the slot is already set and `ctx` is not in `several`.
#[inline]
fn decode_into<K: Kind, S: Slot<Value = K::Value>>(
    slot: &mut S,
    r: &mut Reader,
    ctx: PropertyContext,
    id: u8,
    allowed: u16,
    several: u16,
) -> Result<(), DecodeError> {
    if allowed & ctx.bit() == 0 {
        return Err(DecodeError::PropertyNotAllowed(id));
    }
    let value = K::read(r, id)?;
    if slot.is_set() && several & ctx.bit() == 0 {
        return Err(DecodeError::DuplicateProperty(id));
    }
    slot.push(value);
    Ok(())
}

impl PropertyValues {
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

// With the golden copy of the table they outweigh this file, so they have one of their own.
#[cfg(test)]
mod tests;
