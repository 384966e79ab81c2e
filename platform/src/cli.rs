//! The command line every Marquee binary shares: `--help`, `--print-config`, `--config-dir`
//! and `--env`.

use std::path::PathBuf;

use crate::Settings;
use crate::config::Source;

#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// Folder holding base.toml and {env}.toml [env: MARQUEE_CONFIG_DIR]
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
    /// Environment file layered over base.toml: local, test, production [env: MARQUEE_ENV]
    #[arg(long)]
    pub env: Option<String>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl Cli {
    /// Load settings, or print every problem and exit 2. With `--print-config`, print the
    /// settings and exit 0.
    pub fn settings(&self) -> Settings {
        let mut source = Source::from_env();
        if let Some(dir) = &self.config_dir {
            source.dir = dir.clone();
        }
        if let Some(env) = &self.env {
            source.environment = env.clone();
        }
        match Settings::load(&source) {
            Ok(settings) => {
                if self.print_config {
                    print!("{}", settings.redacted_toml());
                    std::process::exit(0);
                }
                settings
            }
            Err(errors) => {
                eprintln!("{errors}");
                std::process::exit(2);
            }
        }
    }
}
