//! The `postdesk` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    postdesk::cli::main()
}
