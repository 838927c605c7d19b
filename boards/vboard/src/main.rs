fn main() -> std::process::ExitCode {
    hilt_vboard::main_with_args(std::env::args_os().skip(1).collect())
}
