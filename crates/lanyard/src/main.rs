use clap::Parser;
use lanyard::config::{Cli, Command, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
