//! The `ca-replay` binary: parse arguments, call the library, map errors to exit codes
//! (0 ok, 1 gate crossed, 2 error). A closed stdout (`| head`) exits 0.

use clap::Parser;

fn main() {
    let cli = ca_replay::cli::Cli::parse();
    let code = match ca_replay::cli::main(cli) {
        Ok(code) => code as i32,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                0
            } else {
                eprintln!("error: {e:#}");
                2
            }
        }
    };
    std::process::exit(code);
}
