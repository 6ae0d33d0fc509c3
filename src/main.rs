//! The `gated` command-line tool: a thin layer that parses arguments, calls the
//! library and prints. Errors become one line on stderr and a non-zero exit code.

mod cli;

use clap::Parser;

fn main() {
    gated::memory::request_huge_pages();
    gated::memory::retain_freed_memory();
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {}", one_line(&e.to_string()));
        let code = match e {
            gated::Error::Interrupted => 130,
            _ => 1,
        };
        std::process::exit(code);
    }
}

/// Errors print on one line of a readable length: a message that quotes a
/// crafted value (a 100,000-axis shape, a huge name) is cut in the middle.
fn one_line(message: &str) -> String {
    const KEEP: usize = 600;
    let flat: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let n = flat.chars().count();
    if n <= 2 * KEEP {
        return flat;
    }
    let head: String = flat.chars().take(KEEP).collect();
    let tail: String = flat.chars().skip(n - KEEP).collect();
    format!(
        "{head} ... ({} characters left out) ... {tail}",
        n - 2 * KEEP
    )
}
