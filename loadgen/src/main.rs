//! The `loadgen` binary: parses the command line and runs `loadgen serve` or `loadgen bench`.
//!
//! Everything it runs lives in the library; this file only maps outcomes to exit codes
//! (2 for a bad command line, 1 for a failure to serve or to benchmark).

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
        Ok(Command::BenchHelp) => {
            print!("{}", loadgen::bench::options::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Bench(f)) => match loadgen::bench::run(&f) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                loadgen::log::error("bench failed", &[("err", &e)]);
                ExitCode::FAILURE
            }
        },
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
