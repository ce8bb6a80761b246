//! The command line: parse arguments, load the config, hand over to `app::run`.
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use instantops::config::{self, Config, Sources};
use instantops::{app, telemetry};

#[derive(Parser)]
#[command(name = "instantops", version, about = "statsd, carbon, graphite, logs, search and alerting in one process")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (embedded defaults unless --config is given).
    Serve {
        /// A TOML file that overrides the embedded defaults key by key.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where everything is stored; overrides `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config file and list every problem in it.
    CheckConfig { file: PathBuf },
    /// Print the version and build information.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, data_dir } => serve(config, data_dir),
        Command::CheckConfig { file } => check_config(&file),
        Command::Version => {
            println!("{}", version_line());
            ExitCode::SUCCESS
        }
    }
}

fn serve(file: Option<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    let mut config = match load(file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    let log = telemetry::logging::init(&config.log);
    tracing::info!(version = instantops::VERSION, data_dir = %config.data_dir.display(), "starting");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("instantops").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(app::run(config, log));
    // Tasks abandoned at their stop deadline must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match load(Some(file)) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Loads the config or prints every problem to stderr and returns exit code 2.
fn load(file: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let text = match file.map(std::fs::read_to_string).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read config file {}: {e}", file.map_or_else(String::new, |f| f.display().to_string()));
            return Err(ExitCode::from(2));
        }
    };
    let name = file.map(|f| f.display().to_string()).unwrap_or_default();
    let env = config::process_env();
    let sources = Sources { file: text.as_deref().map(|t| (name.as_str(), t)), env: &env };
    config::load(&sources).map_err(|problems| {
        for p in &problems {
            eprintln!("config error: {p}");
        }
        eprintln!(
            "{} problem{} in the config{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            if name.is_empty() { String::new() } else { format!(" {name}") }
        );
        ExitCode::from(2)
    })
}

fn version_line() -> String {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    format!("instantops {} ({}-{}, {profile})", instantops::VERSION, std::env::consts::ARCH, std::env::consts::OS)
}
