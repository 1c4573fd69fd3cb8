//! `coreshard`: the server binary. Settings come from, in rising precedence,
//! built-in defaults, an optional config file in redis.conf syntax, the
//! environment (CORESHARD_*), and the command line (named flags, or any
//! `--directive value` pair as redis-server accepts).

use clap::Parser;
use coreshard_net::Config;
use coreshard_net::config::LogLevel;
use std::process::ExitCode;

/// mimalloc, with per-thread byte counts for INFO used_memory and maxmemory.
#[global_allocator]
static GLOBAL: coreshard_engine::memory::CountingAlloc<mimalloc::MiMalloc> =
    coreshard_engine::memory::CountingAlloc(mimalloc::MiMalloc);

/// A Redis-protocol, thread-per-core cache server.
///
/// Any redis.conf directive can also be given as `--directive value ...`,
/// e.g. `--maxmemory 1gb --requirepass secret`.
#[derive(Parser, Debug)]
#[command(name = "coreshard", version, about, long_about = None)]
struct Cli {
    /// Config file in redis.conf syntax.
    #[arg(value_name = "CONFIG_FILE", env = "CORESHARD_CONFIG")]
    config_file: Option<String>,
    /// TCP port to listen on (0: no TCP).
    #[arg(long, env = "CORESHARD_PORT")]
    port: Option<u16>,
    /// Addresses to bind, space-separated as in redis.conf (default 127.0.0.1).
    #[arg(long, env = "CORESHARD_BIND", num_args = 1.., value_delimiter = ' ')]
    bind: Option<Vec<String>>,
    /// Unix socket path to listen on as well.
    #[arg(long, env = "CORESHARD_UNIXSOCKET")]
    unixsocket: Option<String>,
    /// Number of shards (0: one per CPU in the process affinity mask).
    #[arg(long, env = "CORESHARD_THREADS")]
    threads: Option<usize>,
    /// Password clients must give with AUTH.
    #[arg(long, env = "CORESHARD_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// Number of databases.
    #[arg(long, env = "CORESHARD_DATABASES")]
    databases: Option<usize>,
    /// Log level: debug, verbose, notice, warning, nothing.
    #[arg(long, env = "CORESHARD_LOGLEVEL")]
    loglevel: Option<String>,
    /// Other redis.conf directives as `--name value ...` pairs (collected from the command line).
    #[arg(skip)]
    directives: Vec<(String, Vec<String>)>,
}

/// Flags clap knows; every other `--name` starts a generic directive.
const KNOWN_FLAGS: &[&str] =
    &["port", "bind", "unixsocket", "threads", "requirepass", "databases", "loglevel", "help", "version"];

/// Splits the command line into what clap parses and generic directives.
fn split_args(args: Vec<String>) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut known = Vec::new();
    let mut directives: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_directive = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 {
            known.push(a);
            continue;
        }
        if let Some(name) = a.strip_prefix("--") {
            let base = name.split('=').next().unwrap_or(name);
            if KNOWN_FLAGS.contains(&base) || name.is_empty() {
                in_directive = false;
                known.push(a);
            } else {
                in_directive = true;
                directives.push((name.to_string(), Vec::new()));
            }
        } else if in_directive {
            if let Some(last) = directives.last_mut() {
                last.1.push(a);
            }
        } else {
            known.push(a);
        }
    }
    (known, directives)
}

fn build_config(cli: &Cli) -> Result<(Config, Vec<String>), String> {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    if let Some(path) = &cli.config_file {
        warnings.extend(config.load_file(std::path::Path::new(path)).map_err(|e| e.to_string())?);
    }
    let mut set = |name: &str, args: &[&str]| -> Result<(), String> {
        match config.set(name, args, false) {
            Ok(Some(w)) => {
                warnings.push(w);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(format!("--{name}: {e}")),
        }
    };
    if let Some(p) = cli.port {
        set("port", &[&p.to_string()])?;
    }
    if let Some(b) = &cli.bind {
        let refs: Vec<&str> = b.iter().map(String::as_str).collect();
        set("bind", &refs)?;
    }
    if let Some(u) = &cli.unixsocket {
        set("unixsocket", &[u])?;
    }
    if let Some(t) = cli.threads {
        set("threads", &[&t.to_string()])?;
    }
    if let Some(p) = &cli.requirepass {
        set("requirepass", &[p])?;
    }
    if let Some(d) = cli.databases {
        set("databases", &[&d.to_string()])?;
    }
    if let Some(l) = &cli.loglevel {
        set("loglevel", &[l])?;
    }
    for (name, values) in &cli.directives {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        set(name, &refs)?;
    }
    Ok((config, warnings))
}

fn init_logging(config: &Config) -> Result<(), String> {
    let level = match config.loglevel {
        LogLevel::Debug => "trace",
        LogLevel::Verbose => "debug",
        LogLevel::Notice => "info",
        LogLevel::Warning => "warn",
        LogLevel::Nothing => "off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORESHARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if config.logfile.is_empty() {
        builder.with_writer(std::io::stderr).init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .map_err(|e| format!("can't open the log file {}: {e}", config.logfile))?;
        builder.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
    }
    Ok(())
}

fn main() -> ExitCode {
    let (known, directives) = split_args(std::env::args().collect());
    let mut cli = Cli::parse_from(known);
    cli.directives = directives;
    let (config, warnings) = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coreshard: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = init_logging(&config) {
        eprintln!("coreshard: {e}");
        return ExitCode::from(1);
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    if !config.pidfile.is_empty()
        && let Err(e) = std::fs::write(&config.pidfile, format!("{}\n", std::process::id()))
    {
        tracing::warn!("could not write pidfile {}: {e}", config.pidfile);
    }
    let pidfile = config.pidfile.clone();
    // Handlers go in before any listener opens, so a SIGTERM that arrives as
    // soon as clients can connect still shuts down gracefully.
    let signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
    {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("could not install signal handlers: {e}");
            None
        }
    };
    // Cluster mode: the node's id and cluster configuration, from cluster-config-file.
    let hooks = match coreshard_repl::cluster::hooks(&config) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("coreshard failed to start: {e}");
            eprintln!("coreshard: {e}");
            return ExitCode::from(1);
        }
    };
    let handle = match coreshard_net::start_with(config.clone(), cli.config_file.clone(), hooks) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("coreshard failed to start: {e}");
            eprintln!("coreshard: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        port = handle.port(),
        shards = handle.shards(),
        bind = %config.bind.join(" "),
        "coreshard {} ready to accept connections",
        env!("CARGO_PKG_VERSION")
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    spawn_watchdog(handle.stopper());

    spawn_signal_thread(signals, handle.stopper());
    handle.join();
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    tracing::info!("coreshard is now ready to exit, bye bye");
    ExitCode::SUCCESS
}

/// Turns the first SIGINT/SIGTERM into a graceful shutdown; a second one exits at once.
fn spawn_signal_thread(signals: Option<signal_hook::iterator::Signals>, stopper: coreshard_net::Stopper) {
    let Some(mut signals) = signals else { return };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut seen = 0;
        for sig in signals.forever() {
            seen += 1;
            if seen > 1 {
                tracing::warn!("second signal {sig}: exiting now");
                std::process::exit(1);
            }
            tracing::info!("received signal {sig}: shutting down (finishing commands already read)");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            stopper.stop();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("could not start the signal thread: {e}");
    }
}

/// Pings the systemd watchdog at half its interval while the server runs.
fn spawn_watchdog(stopper: coreshard_net::Stopper) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    let _ = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        while !stopper.is_stopping() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            std::thread::sleep(period);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_directives_are_split_from_known_flags() {
        let argv = ["coreshard", "my.conf", "--port", "7000", "--maxmemory", "1gb", "--save", "", "--threads", "4"];
        let (known, directives) = split_args(argv.iter().map(|s| s.to_string()).collect());
        assert_eq!(known, ["coreshard", "my.conf", "--port", "7000", "--threads", "4"]);
        assert_eq!(directives, vec![("maxmemory".into(), vec!["1gb".into()]), ("save".into(), vec!["".into()])]);
    }

    unsafe extern "C" {
        /// mimalloc's own answer to "which block size serves this request"
        /// (part of the linked library, not of the Rust bindings' feature set).
        fn mi_good_size(size: usize) -> usize;
    }

    #[test]
    fn engine_size_classes_match_the_installed_allocator() {
        // Entries size themselves with the engine's copy of mimalloc's bins;
        // a mimalloc upgrade that changed them would waste memory silently.
        // Past 512 KiB mimalloc rounds to pages; the engine rounds coarser on purpose.
        for n in (1..=512 * 1024).step_by(7).chain([8, 16, 48, 56, 64, 65, 512 * 1024]) {
            // SAFETY: a pure function of its argument in the linked mimalloc.
            let good = unsafe { mi_good_size(n) };
            assert_eq!(coreshard_engine::memory::size_class(n), good, "request of {n} bytes");
        }
    }
}
