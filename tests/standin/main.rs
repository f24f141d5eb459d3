//! Runs the stand-in LLM server and remote bot agents on their own, for
//! scripts/browser-tests.sh and manual poking:
//! `cargo run --example standin -- --port 0 --api-key KEY`.

#[path = "mod.rs"]
mod standin;

use std::io::Write;

fn main() {
    let (port, api_key) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("standin: {message}\nusage: standin [--port N] [--api-key KEY]");
            std::process::exit(2);
        }
    };
    let server = match standin::StandIn::start(port, api_key) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("standin: cannot listen on port {port}: {err}");
            std::process::exit(1);
        }
    };
    // Scripts wait for exactly this line to learn the port.
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "standin listening on {}", server.base_url).and_then(|()| stdout.flush()).is_err() {
        std::process::exit(1);
    }
    // The server runs on its own thread until the process is killed.
    loop {
        std::thread::park();
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(u16, Option<String>), String> {
    let (mut port, mut api_key) = (0, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = value.parse().map_err(|_| format!("--port: not a port number: {value}"))?;
            }
            "--api-key" => api_key = Some(args.next().ok_or("--api-key needs a value")?),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok((port, api_key))
}
