//! Bridges to other MQTT brokers, the sans-IO part: what a `[[bridges]]` topic rule means
//! (`rule`). The IO (the remote socket, TLS, the task on its shard) is `shard::bridge`.

mod rule;

pub use rule::{Direction, RuleError, TopicRule};
