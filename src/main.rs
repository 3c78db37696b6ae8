//! The `ringmq` binary: parse the command line, validate the config, start the runtime.

fn main() {
    eprintln!("ringmq: the broker lands with the thread-per-core broker issue");
}
