//! Reads a file. Exists to be rejected: Sandfire grants no filesystem access.

fn main() {
    match std::fs::read_to_string("/etc/hostname") {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("{e}"),
    }
}
