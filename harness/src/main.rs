fn main() -> std::process::ExitCode {
    witness::cli::main()
}
