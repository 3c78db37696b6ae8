//! Codec benchmark (lands with the codec issue).

fn main() {}
