//! `demo-web` binary.

fn main() -> std::process::ExitCode {
    demo_web::main()
}
