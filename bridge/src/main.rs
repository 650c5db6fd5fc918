//! `upstash-bridge`: a local server that speaks the Upstash Redis REST dialect and forwards to a
//! real redis-server, with fault injection for tests. See `bridge/README.md`.

mod api;
mod commands;
mod faults;
mod http;
mod redis;
mod resp;
mod server;
mod util;

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "\
usage: upstash-bridge --listen HOST:PORT --redis-url redis://HOST:PORT --token TOKEN
                      [--read-only-token TOKEN] [--max-body-bytes N] [--max-connections N]
                      [--redis-pool-size N] [--verbose]

  --listen            address to serve on (default 127.0.0.1:8079; port 0 picks a free port)
  --redis-url         redis://[[user]:password@]host[:port][/db] (default redis://127.0.0.1:6379)
  --token             the standard token (or env UPSTASH_BRIDGE_TOKEN, which keeps it out of ps)
  --read-only-token   a token for read-only commands (or env UPSTASH_BRIDGE_READ_ONLY_TOKEN)
  --max-body-bytes    largest request body (default 10485760; larger gets 413)
  --max-connections   most concurrent HTTP connections; more get 503 (default 1024)
  --redis-pool-size   most Redis connections (default 32)
  --verbose           one line per request on stderr

Once bound it prints `upstash-bridge listening on http://HOST:PORT` on stdout.
GET /__bridge/health answers 200 `ok` once Redis answers PING.
POST /__bridge/faults (standard token) sets a fault: {\"mode\":\"delay\",\"ms\":3000},
{\"mode\":\"status\",\"status\":503}, {\"mode\":\"reset\"}, {\"mode\":\"malformed\"},
{\"mode\":\"unauthorized\"}, optional \"count\": N; {\"mode\":\"none\"} clears it.";

struct Cli {
    listen: String,
    redis_url: String,
    token: String,
    read_only_token: Option<String>,
    max_body: usize,
    max_connections: usize,
    pool_size: usize,
    verbose: bool,
}

fn parse_args() -> Result<Cli, String> {
    let mut cli = Cli {
        listen: "127.0.0.1:8079".into(),
        redis_url: "redis://127.0.0.1:6379".into(),
        token: std::env::var("UPSTASH_BRIDGE_TOKEN").unwrap_or_default(),
        read_only_token: std::env::var("UPSTASH_BRIDGE_READ_ONLY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        max_body: 10 * 1024 * 1024,
        max_connections: 1024,
        pool_size: 32,
        verbose: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "--verbose" || flag == "-v" {
            cli.verbose = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            std::process::exit(0);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} needs a positive integer"))
        };
        match flag.as_str() {
            "--listen" => cli.listen = value()?,
            "--redis-url" => cli.redis_url = value()?,
            "--token" => cli.token = value()?,
            "--read-only-token" => cli.read_only_token = Some(value()?),
            "--max-body-bytes" => cli.max_body = number(value()?)?,
            "--max-connections" => cli.max_connections = number(value()?)?,
            "--redis-pool-size" => cli.pool_size = number(value()?)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if cli.token.is_empty() {
        return Err("--token (or UPSTASH_BRIDGE_TOKEN) is required".into());
    }
    if cli.read_only_token.as_deref() == Some("") {
        return Err("--read-only-token must not be empty".into());
    }
    if cli.read_only_token.as_deref() == Some(cli.token.as_str()) {
        return Err("--read-only-token must differ from --token".into());
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("upstash-bridge: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = match redis::Target::parse(&cli.redis_url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("upstash-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&cli.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("upstash-bridge: cannot listen on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("upstash-bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !local.ip().is_loopback() {
        eprintln!(
            "upstash-bridge: warning: listening on {local}, not a loopback address; this is a \
             test server (plain HTTP, no rate limits)"
        );
    }
    let app = Arc::new(api::App::new(
        api::Settings {
            token: cli.token,
            read_only_token: cli.read_only_token,
            max_body: cli.max_body,
        },
        redis::Pool::new(target, cli.pool_size),
    ));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "upstash-bridge listening on http://{local}");
    let _ = out.flush();
    drop(out);
    if !app.redis_ready() {
        eprintln!("upstash-bridge: warning: Redis does not answer PING yet; serving anyway");
    }
    server::serve(
        app,
        listener,
        server::Options {
            max_connections: cli.max_connections,
            verbose: cli.verbose,
        },
    );
    ExitCode::SUCCESS
}
