//! The promcore binary: parses the flags, picks the allocator and hands over to
//! `promcore::startup`, which runs the server until SIGTERM/SIGINT or `/-/quit`.

use std::process::ExitCode;

use promcore::flags::{Flags, LogLevel, USAGE};
use promcore::{log, startup};

/// mimalloc rather than glibc's malloc: creating series allocates many small, long-lived
/// objects next to short-lived batch buffers, and glibc spent more time consolidating its
/// free lists than the head spent creating series (measured with the head benchmark). With
/// a heap of its own for the new series' labels (`transient_heap`).
#[global_allocator]
static GLOBAL: promcore::transient_heap::ServerAllocator =
    promcore::transient_heap::ServerAllocator;

/// mimalloc asks for transparent huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), and a
/// huge page is resident as a whole once any byte of it is touched: at 1 M scraped series
/// that held ~108 MB (10 % of the process) in partly used 2 MiB pages, and zeroing them was
/// a third of a head rebuild's CPU. Turned off for the whole process before the first arena
/// fills; a kernel without the switch just keeps its default.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("promqltest") {
        return ExitCode::from(promcore::promqltest::main(&args[1..]) as u8);
    }
    // promtool's checks, under the server's own binary.
    let words: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    match words.as_slice() {
        ["check", "rules"] => {
            return ExitCode::from(promcore::rules::check::check_rules(
                &args[2..],
                &mut out,
                &mut err,
            ))
        }
        ["check", "config"] => {
            return ExitCode::from(promcore::rules::check::check_config(
                &args[2..],
                &mut out,
                &mut err,
            ))
        }
        ["tsdb", ..] => {
            return ExitCode::from(promcore::tsdb_tool::main(&args[1..], &mut out, &mut err))
        }
        ["test", "rules"] => {
            return ExitCode::from(promcore::rules::unit_test::test_rules(&args[2..], &mut out))
        }
        ["check", ..] => {
            eprintln!("usage: promcore check config|rules FILE...");
            return ExitCode::from(2);
        }
        _ => {}
    }
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("promcore: {e}");
            return ExitCode::from(2);
        }
    };
    if flags.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if flags.version {
        println!("promcore, version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    log::set_level(flags.log_level);
    match startup::run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::log(LogLevel::Error, "main", &e.to_string(), &[]);
            ExitCode::FAILURE
        }
    }
}
