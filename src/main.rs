//! `playback-gateway`: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = playback_gateway::cli::Cli::parse();
    match playback_gateway::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<playback_gateway::Exit>() => ExitCode::from(
            e.downcast_ref::<playback_gateway::Exit>()
                .map_or(1, |x| x.0),
        ),
        Err(e) => {
            eprintln!("playback-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
