//! Sequence tracking for one stream of messages (one publisher as seen by one subscriber, or by
//! a shared-subscription group): which sequence numbers arrived, how many arrived twice, and how
//! many are still missing. A bitmap indexed by sequence number: O(1) per message in or out of
//! order, one bit per message sent, and members of a shared subscription (each of which sees an
//! interleaved subset) merge with a word-wise OR.

/// The largest forward jump a stream may make: beyond it a sequence number is corrupt (a
/// corrupted payload must not make the bitmap allocate gigabytes).
pub const MAX_JUMP: u64 = 1 << 24;

/// The set of sequence numbers received on one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    bits: Vec<u64>,
    unique: u64,
    duplicates: u64,
    /// One past the highest sequence number received.
    end: u64,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `seq` is close enough to what arrived so far to be believed.
    pub fn plausible(&self, seq: u64) -> bool {
        seq < self.end.saturating_add(MAX_JUMP)
    }

    /// Records the arrival of `seq`; returns false when it had already arrived (a duplicate).
    pub fn record(&mut self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        if word >= self.bits.len() {
            self.bits.resize((word + 1).next_power_of_two(), 0);
        }
        let mask = 1u64 << (seq % 64);
        if self.bits[word] & mask != 0 {
            self.duplicates += 1;
            return false;
        }
        self.bits[word] |= mask;
        self.unique += 1;
        self.end = self.end.max(seq + 1);
        true
    }

    /// Distinct sequence numbers received.
    pub fn unique(&self) -> u64 {
        self.unique
    }

    /// Arrivals of a sequence number that had already arrived.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// One past the highest sequence number received (0 when nothing arrived).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Sequence numbers below the highest received that have not arrived (yet).
    pub fn gaps(&self) -> u64 {
        self.end - self.unique
    }

    /// How many of the sequence numbers `0..sent` never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        sent - self.received_below(sent)
    }

    /// Distinct sequence numbers received that are below `limit`.
    pub fn received_below(&self, limit: u64) -> u64 {
        let full_words = ((limit / 64) as usize).min(self.bits.len());
        let mut count: u64 = self.bits[..full_words]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let rest = limit % 64;
        if rest != 0
            && let Some(word) = self.bits.get(full_words)
        {
            count += u64::from((word & ((1u64 << rest) - 1)).count_ones());
        }
        count
    }

    /// Adds `other`'s arrivals to this one, as if they had arrived on this stream: a number
    /// that both saw counts as a duplicate. This merges the members of a shared subscription.
    pub fn merge(&mut self, other: &SeqTracker) {
        if other.bits.len() > self.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        let mut overlap = 0u64;
        for (mine, theirs) in self.bits.iter_mut().zip(&other.bits) {
            overlap += u64::from((*mine & theirs).count_ones());
            *mine |= theirs;
        }
        self.duplicates += other.duplicates + overlap;
        self.unique += other.unique - overlap;
        self.end = self.end.max(other.end);
    }
}
