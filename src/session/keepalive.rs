//! The keep alive rule of the session: how long a connection may stay silent before the
//! broker closes it [MQTT-3.1.2-24].

use std::time::Duration;

/// How long a connection with `keep_alive` seconds may stay silent: one and a half times
/// the keep alive [MQTT-3.1.2-24]; `None` when keep alive is off.
pub fn keepalive_timeout(keep_alive: u16) -> Option<Duration> {
    (keep_alive != 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_timeout_is_one_and_a_half_times_the_interval() {
        // [MQTT-3.1.2-24]
        assert_eq!(keepalive_timeout(0), None);
        assert_eq!(keepalive_timeout(10), Some(Duration::from_secs(15)));
        assert_eq!(keepalive_timeout(1), Some(Duration::from_millis(1500)));
    }
}
