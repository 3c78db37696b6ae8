//! The header at the front of every test message's payload: who sent it, its sequence number
//! and when it was (meant to be) sent. The rest of the payload is zero padding up to `--size`.

/// Publisher id (u32) + sequence number (u64) + send time (u64 ns on the shared clock).
pub const HEADER_LEN: usize = 4 + 8 + 8;

/// The decoded header of one test message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub publisher: u32,
    pub seq: u64,
    /// Nanoseconds on [`crate::clock::now_ns`]'s clock: the intended send time in open loop,
    /// the actual one in closed loop.
    pub sent_ns: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `payload`; returns false (and
    /// writes nothing) when the payload is too short to hold it.
    pub fn write_to(&self, payload: &mut [u8]) -> bool {
        let Some(dst) = payload.get_mut(..HEADER_LEN) else {
            return false;
        };
        dst[0..4].copy_from_slice(&self.publisher.to_le_bytes());
        dst[4..12].copy_from_slice(&self.seq.to_le_bytes());
        dst[12..20].copy_from_slice(&self.sent_ns.to_le_bytes());
        true
    }

    /// Reads a header from the front of a received payload; `None` if it is too short.
    pub fn read_from(payload: &[u8]) -> Option<Self> {
        let src = payload.get(..HEADER_LEN)?;
        Some(Self {
            publisher: u32::from_le_bytes(src[0..4].try_into().ok()?),
            seq: u64::from_le_bytes(src[4..12].try_into().ok()?),
            sent_ns: u64::from_le_bytes(src[12..20].try_into().ok()?),
        })
    }
}
