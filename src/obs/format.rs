//! One log record as one line: plain text (`TIME LEVEL target: message key=value ...`) or a
//! JSON object per line, with the record's key-value pairs as fields.

use log::Record;
use log::kv::{self, Key, Value, VisitSource, VisitValue};
use serde_json::{Map, Value as Json};
use std::fmt::{self, Write};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2025-01-31T12:00:00.000Z INFO  ringmq::shard: client connected client_id=c1 ...`
    #[default]
    Text,
    /// `{"ts":"2025-01-31T12:00:00.000Z","level":"info","target":...,"msg":...,...}`
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(()),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// The line for `record`, without the newline, stamped `now`.
pub fn line(record: &Record<'_>, format: LogFormat, now: SystemTime) -> String {
    let ts = Timestamp(now);
    match format {
        LogFormat::Text => text_line(record, ts),
        LogFormat::Json => json_line(record, ts),
    }
}

fn text_line(record: &Record<'_>, ts: Timestamp) -> String {
    let mut out = String::with_capacity(160);
    let _ = write!(
        out,
        "{ts} {:<5} {}: {}",
        record.level(),
        record.target(),
        record.args()
    );
    let _ = record.key_values().visit(&mut TextPairs(&mut out));
    out
}

/// Appends ` key=value` per pair; values with spaces, quotes or `=` are quoted. A `None`
/// value leaves its key out.
struct TextPairs<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextPairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let mut rendered = Rendered::default();
        value.visit(&mut rendered)?;
        let Some(text) = rendered.text() else {
            return Ok(());
        };
        let plain = !text.is_empty()
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
        if plain {
            let _ = write!(self.0, " {key}={text}");
        } else {
            let _ = write!(self.0, " {key}={text:?}");
        }
        Ok(())
    }
}

fn json_line(record: &Record<'_>, ts: Timestamp) -> String {
    let mut fields = Map::new();
    fields.insert("ts".into(), Json::String(ts.to_string()));
    let level = record.level().as_str().to_ascii_lowercase();
    fields.insert("level".into(), Json::String(level));
    fields.insert("target".into(), Json::String(record.target().to_owned()));
    fields.insert("msg".into(), Json::String(record.args().to_string()));
    let _ = record.key_values().visit(&mut JsonPairs(&mut fields));
    Json::Object(fields).to_string()
}

struct JsonPairs<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for JsonPairs<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let mut rendered = Rendered::default();
        value.visit(&mut rendered)?;
        let json = match rendered {
            Rendered::Null => return Ok(()),
            Rendered::Unsigned(n) => Json::from(n),
            Rendered::Signed(n) => Json::from(n),
            Rendered::Bool(b) => Json::Bool(b),
            Rendered::Text(s) => Json::String(s),
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

/// A key-value pair's value, by kind.
#[derive(Debug, Default)]
enum Rendered {
    #[default]
    Null,
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
    Text(String),
}

impl Rendered {
    fn text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Unsigned(n) => Some(n.to_string()),
            Self::Signed(n) => Some(n.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Text(s) => Some(s.clone()),
        }
    }
}

impl<'v> VisitValue<'v> for Rendered {
    fn visit_any(&mut self, value: Value<'_>) -> Result<(), kv::Error> {
        *self = Self::Text(value.to_string());
        Ok(())
    }

    fn visit_null(&mut self) -> Result<(), kv::Error> {
        *self = Self::Null;
        Ok(())
    }

    fn visit_u64(&mut self, value: u64) -> Result<(), kv::Error> {
        *self = Self::Unsigned(value);
        Ok(())
    }

    fn visit_i64(&mut self, value: i64) -> Result<(), kv::Error> {
        *self = Self::Signed(value);
        Ok(())
    }

    fn visit_bool(&mut self, value: bool) -> Result<(), kv::Error> {
        *self = Self::Bool(value);
        Ok(())
    }

    fn visit_str(&mut self, value: &str) -> Result<(), kv::Error> {
        *self = Self::Text(value.to_owned());
        Ok(())
    }
}

/// A wall-clock time as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy)]
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;
    use std::time::Duration;

    /// 2024-02-29T13:14:15.678Z
    fn leap_day() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_709_212_455_678)
    }

    fn with_record(f: impl FnOnce(&Record<'_>)) {
        let pairs: [(&str, Value<'_>); 3] = [
            ("client_id", Value::from("c 1")),
            ("keepalive", Value::from(60u16)),
            ("clean_start", Value::from(true)),
        ];
        let pairs = &pairs[..];
        let record = Record::builder()
            .level(Level::Info)
            .target("ringmq::shard")
            .args(format_args!("client connected"))
            .key_values(&pairs)
            .build();
        f(&record);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            Timestamp(leap_day()).to_string(),
            "2024-02-29T13:14:15.678Z"
        );
        assert_eq!(
            Timestamp(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_text_line_has_time_level_target_message_and_pairs() {
        with_record(|r| {
            assert_eq!(
                line(r, LogFormat::Text, leap_day()),
                "2024-02-29T13:14:15.678Z INFO  ringmq::shard: client connected \
                 client_id=\"c 1\" keepalive=60 clean_start=true"
            );
        });
    }

    #[test]
    fn a_json_line_is_one_object_with_typed_fields() {
        with_record(|r| {
            let text = line(r, LogFormat::Json, leap_day());
            let json: Json = serde_json::from_str(&text).unwrap_or_default();
            assert_eq!(json["level"], "info");
            assert_eq!(json["msg"], "client connected");
            assert_eq!(json["client_id"], "c 1");
            assert_eq!(json["keepalive"], 60);
            assert_eq!(json["clean_start"], true);
            assert_eq!(json["ts"], "2024-02-29T13:14:15.678Z");
        });
    }

    #[test]
    fn a_none_value_leaves_its_key_out() {
        let pairs: [(&str, Option<&str>); 2] = [("username", None), ("peer", Some("a"))];
        let pairs = &pairs[..];
        let record = Record::builder()
            .args(format_args!("x"))
            .key_values(&pairs)
            .build();
        let text = line(&record, LogFormat::Text, UNIX_EPOCH);
        assert!(text.ends_with(": x peer=a"), "{text}");
        let json = line(&record, LogFormat::Json, UNIX_EPOCH);
        assert!(!json.contains("username"), "{json}");
    }
}
