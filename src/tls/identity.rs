//! The subject common name (CN) of an X.509 certificate in DER: what `identity_as_username`
//! makes the client's username. Just enough DER to walk to the subject; the certificate was
//! already verified by rustls, but nothing here trusts the bytes (no panics, no indexing).

/// The OID of commonName, 2.5.4.3, as DER content bytes.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` at the start of a TBSCertificate.
const VERSION: u8 = 0xA0;

/// The first commonName of the certificate's subject, if it has one in a string type this
/// understands (UTF8String, PrintableString, IA5String, TeletexString holding UTF-8,
/// BMPString). Mosquitto takes the first CN too.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    if let (VERSION, _, after) = tlv(rest)? {
        rest = after;
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, mut subject, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !subject.is_empty() {
        let (tag, mut rdn, after) = tlv(subject)?;
        subject = after;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, after) = tlv(rdn)?;
            rdn = after;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag == OID && oid == COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                return string(tag, text);
            }
        }
    }
    None
}

/// A directory string's text.
fn string(tag: u8, text: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, TeletexString (in practice UTF-8 or ASCII), IA5String
        0x0C | 0x13 | 0x14 | 0x16 => String::from_utf8(text.to_vec()).ok(),
        // BMPString: UTF-16, big endian
        0x1E => {
            let units = text
                .chunks(2)
                .map(|pair| match pair {
                    [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                    _ => None,
                })
                .collect::<Option<Vec<u16>>>()?;
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// One DER element at the front of `input`: its tag, its content and what follows it. Only
/// single-byte tags and definite lengths of up to 4 bytes (DER has no others in a
/// certificate).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    fn cert_with(subject: DistinguishedName) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        cert.der().to_vec()
    }

    #[test]
    fn the_first_common_name_of_the_subject_is_found_in_each_string_type() {
        for (value, want) in [
            (DnValue::Utf8String("alice".into()), "alice"),
            (
                DnValue::PrintableString("bob 1".try_into().unwrap_or_else(|e| panic!("{e:?}"))),
                "bob 1",
            ),
            (
                DnValue::BmpString("zoë".try_into().unwrap_or_else(|e| panic!("{e:?}"))),
                "zoë",
            ),
        ] {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "Example");
            dn.push(DnType::CommonName, value);
            assert_eq!(common_name(&cert_with(dn)).as_deref(), Some(want));
        }
    }

    #[test]
    fn a_subject_without_a_common_name_has_none() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Example");
        assert_eq!(common_name(&cert_with(dn)), None);
    }

    #[test]
    fn truncated_or_garbled_certificates_give_none_without_panicking() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "carol");
        let der = cert_with(dn);
        for len in 0..der.len() {
            assert_eq!(common_name(der.get(..len).unwrap_or_default()), None);
        }
        for at in 0..der.len() {
            let mut garbled = der.clone();
            if let Some(b) = garbled.get_mut(at) {
                *b = 0xFF;
            }
            let _ = common_name(&garbled);
        }
        assert_eq!(common_name(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(common_name(&[0x1F, 0x01, 0x00]), None);
        assert_eq!(common_name(b"not a certificate"), None);
    }
}
