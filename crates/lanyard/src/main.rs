use clap::Parser;
use lanyard::config::{Cli, Command, Settings};

/// Password hashing allocates `memory_kib` (19 MiB by default) per hash on changing blocking
/// threads. glibc's adaptive mmap threshold would move such blocks into per-thread arenas that
/// are never returned, so the resident size grows to arenas × 19 MiB; a fixed threshold keeps
/// them mmapped and returned on free.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt is called once, before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("lanyard: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::resolve(args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("lanyard: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            lanyard::server::init_logging(&settings);
            if let Err(e) = lanyard::server::serve(settings).await {
                tracing::error!(error = %format!("{e:#}"), "lanyard stopped");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
    }
}
