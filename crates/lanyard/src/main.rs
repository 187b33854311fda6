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

/// Request handling runs as SCHED_BATCH (Linux; inherited by every thread started later), and
/// the password hashing threads switch back to the normal policy. A batch thread does not preempt
/// a running thread when it wakes: on a core busy hashing, request handling then waits for the
/// hash's time slice to end (a few milliseconds at most) instead of interrupting it at every
/// database reply, which on PostgreSQL (a network round trip per statement) cost about 9 % of
/// the sign-in throughput in cache misses and thread switches. An idle core runs it at once.
fn tune_scheduling() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on the calling thread with a valid parameter; changing between
    // SCHED_OTHER and SCHED_BATCH needs no privilege, and a refusal leaves the policy as it was.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
    }
}

/// Files the process creates are private to its user (umask 077): the SQLite database and
/// the -wal and -shm files SQLite creates beside it, whose modes Lanyard does not choose,
/// hold password hashes and sealed secrets. The data dir and files from an earlier start are
/// narrowed in `server::build`.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn main() -> std::process::ExitCode {
    private_files();
    tune_allocator();
    tune_scheduling();
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
