//! `MqttString`: a UTF-8 encoded string as MQTT defines it (section 1.5.4), zero-copy over `Bytes`.

use bytes::Bytes;

/// Why a byte string is not a valid MQTT UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringError {
    /// [MQTT-1.5.4-1] ill-formed UTF-8 (this includes the surrogates U+D800..U+DFFF).
    InvalidUtf8,
    /// [MQTT-1.5.4-2] the string contains U+0000.
    NullCharacter,
    /// A string is prefixed by a two-byte length, so it holds at most 65,535 bytes.
    TooLong,
}

/// A validated MQTT UTF-8 string: well formed, no U+0000, at most 65,535 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttString(Bytes);

impl MqttString {
    /// Validates `bytes` and wraps it without copying.
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
        validate(&bytes)?;
        Ok(Self(bytes))
    }

    /// Validates `bytes` in one pass that also reports whether it holds a wildcard character
    /// (`+` or `#`), so topic names cost a single scan on the hot path.
    #[inline(always)]
    pub(crate) fn scan(bytes: Bytes) -> Result<Scanned, StringError> {
        let has_wildcard = scan_slice(&bytes)?;
        Ok(Scanned {
            string: Self(bytes),
            has_wildcard,
        })
    }

    /// Wraps a `&'static str` without copying or allocating, so constants and Reason Strings
    /// cost nothing to build. A `str` is well-formed UTF-8 already; a NUL or an over-long
    /// constant is a programming error (a compile error when used in a `const`).
    pub const fn from_static(s: &'static str) -> Self {
        let bytes = s.as_bytes();
        assert!(
            bytes.len() <= u16::MAX as usize,
            "MqttString::from_static: longer than 65,535 bytes"
        );
        let mut i = 0;
        while i < bytes.len() {
            assert!(bytes[i] != 0, "MqttString::from_static: U+0000 in a string");
            i += 1;
        }
        Self(Bytes::from_static(bytes))
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor runs `validate`, which checks the bytes are well-formed
        // UTF-8 with `std::str::from_utf8`, and `Bytes` is immutable afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A validated string and whether it contains a wildcard character.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub string: MqttString,
    pub has_wildcard: bool,
}

/// Checks the rules of section 1.5.4 on `bytes` and says whether they hold a wildcard
/// character (`+` or `#`), in one pass.
#[inline(always)]
pub(crate) fn scan_slice(bytes: &[u8]) -> Result<bool, StringError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(StringError::TooLong);
    }
    // One branch-free pass the compiler vectorises; UTF-8 needs checking only when a byte
    // is non-ASCII, and multi-byte sequences never contain NUL, `+` or `#` bytes.
    let (mut nul, mut wildcard, mut non_ascii) = (false, false, false);
    for &b in bytes {
        nul |= b == 0;
        wildcard |= (b == b'+') | (b == b'#');
        non_ascii |= b >= 0x80;
    }
    if non_ascii && std::str::from_utf8(bytes).is_err() {
        return Err(StringError::InvalidUtf8);
    }
    if nul {
        return Err(StringError::NullCharacter);
    }
    Ok(wildcard)
}

/// Checks the rules of section 1.5.4 on a candidate string's bytes.
#[inline]
pub fn validate(bytes: &[u8]) -> Result<(), StringError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(StringError::TooLong);
    }
    let s = std::str::from_utf8(bytes).map_err(|_| StringError::InvalidUtf8)?;
    if s.as_bytes().contains(&0) {
        return Err(StringError::NullCharacter);
    }
    Ok(())
}

impl std::fmt::Debug for MqttString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl TryFrom<&str> for MqttString {
    type Error = StringError;
    fn try_from(s: &str) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<String> for MqttString {
    type Error = StringError;
    fn try_from(s: String) -> Result<Self, StringError> {
        Self::from_bytes(Bytes::from(s))
    }
}

impl std::fmt::Display for MqttString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for StringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidUtf8 => "[MQTT-1.5.4-1] ill-formed UTF-8 in a string",
            Self::NullCharacter => "[MQTT-1.5.4-2] U+0000 in a string",
            Self::TooLong => "[MQTT-1.5.4] string longer than 65,535 bytes",
        })
    }
}

impl std::error::Error for StringError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_utf8_without_copying() {
        let bytes = Bytes::from_static("a/ü/€/𝄞".as_bytes());
        let s = MqttString::from_bytes(bytes.clone()).expect("valid");
        assert_eq!(s.as_str(), "a/ü/€/𝄞");
        assert_eq!(s.as_bytes().as_ptr(), bytes.as_ptr());
    }

    #[test]
    fn refuses_ill_formed_utf8_mqtt_1_5_4_1() {
        for bad in [
            &b"\xff"[..],
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
            b"ab\x80",
        ] {
            assert_eq!(
                MqttString::from_bytes(Bytes::copy_from_slice(bad)),
                Err(StringError::InvalidUtf8),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_null_character_mqtt_1_5_4_2() {
        assert_eq!(
            MqttString::try_from("a\0b"),
            Err(StringError::NullCharacter)
        );
    }

    #[test]
    fn accepts_65535_bytes_and_refuses_65536() {
        assert!(MqttString::try_from("x".repeat(65_535)).is_ok());
        assert_eq!(
            MqttString::try_from("x".repeat(65_536)),
            Err(StringError::TooLong)
        );
    }

    #[test]
    fn empty_string_is_valid() {
        assert!(MqttString::try_from("").expect("valid").is_empty());
    }

    #[test]
    fn from_static_wraps_constant() {
        assert_eq!(MqttString::from_static("MQTT").as_str(), "MQTT");
    }

    #[test]
    fn from_static_shares_the_static_bytes() {
        const TEXT: &str = "keep alive timeout";
        const S: MqttString = MqttString::from_static(TEXT);
        assert_eq!(S.as_bytes().as_ptr(), TEXT.as_ptr());
    }
}
