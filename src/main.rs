//! The `gated` command-line tool: a thin layer that parses arguments, calls the
//! library and prints. Errors become one line on stderr and a non-zero exit code.

mod cli;

use clap::Parser;

fn main() {
    gated::memory::request_huge_pages();
    gated::memory::retain_freed_memory();
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e}");
        let code = match e {
            gated::Error::Interrupted => 130,
            _ => 1,
        };
        std::process::exit(code);
    }
}
