//! `ringmq-load`: the bundled MQTT load generator (scenarios land with the load-generator issue).

fn main() {
    eprintln!("ringmq-load: no scenarios yet");
}
