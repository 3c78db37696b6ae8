//! (lands with the broker issue)
