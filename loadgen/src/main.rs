//! The `loadgen` binary: parses the command line and runs `loadgen serve`.
//!
//! Everything it runs lives in the library; this file only maps outcomes to exit codes
//! (2 for a bad command line, 1 for a failure to serve).

use std::process::ExitCode;

use loadgen::flags::{self, Command, USAGE};

fn main() -> ExitCode {
    match flags::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("loadgen, version {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(f)) => match loadgen::serve::run(&f) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                loadgen::log::error("serve failed", &[("err", &e)]);
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
