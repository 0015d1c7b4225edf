//! The `lichat-tcp-server` program: options, logging, exit codes.

mod offline_register;

use getopts::{Matches, Options};
use lichat_tcp_server::engine::{Config, Engine};
use lichat_tcp_server::net::{Server, Settings, TlsFiles, universal_now};
use lichat_tcp_server::protocol::payload::is_content_type;
use lichat_tcp_server::store::read_emote_dir;
use log::{LevelFilter, error, info, warn};
use simplelog::{ColorChoice, ConfigBuilder, TermLogger, TerminalMode};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

const PROGRAM: &str = "lichat-tcp-server";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Lichat protocol version this server speaks.
const PROTOCOL_VERSION: &str = "2.0";

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "",
        "name",
        "server name: its user and primary channel (default: the machine's hostname)",
        "NAME",
    );
    o.optopt(
        "",
        "hostname",
        "address to listen on (default: 0.0.0.0)",
        "ADDR",
    );
    o.optopt(
        "",
        "port",
        "TCP port, 0 for any free port (default: 1111)",
        "PORT",
    );
    o.optopt(
        "",
        "ws-port",
        "WebSocket port, 0 turns it off (default: 1113)",
        "PORT",
    );
    o.optopt(
        "",
        "tls-port",
        "Lichat over TLS port with --tls-cert, 0 turns it off (default: 1112)",
        "PORT",
    );
    o.optopt(
        "",
        "wss-port",
        "WebSocket over TLS port with --tls-cert, 0 turns it off (default: 1114)",
        "PORT",
    );
    o.optopt(
        "",
        "tls-cert",
        "PEM certificate chain; with --tls-key turns on the TLS ports (SIGHUP reloads it)",
        "FILE",
    );
    o.optopt("", "tls-key", "PEM private key for --tls-cert", "FILE");
    o.optopt(
        "",
        "max-tls-handshakes",
        "TLS handshakes in flight at most (default: 64)",
        "N",
    );
    o.optflag(
        "",
        "metrics",
        "answer GET /metrics (Prometheus text) on every port",
    );
    o.optopt(
        "",
        "ping-interval",
        "seconds of silence before a ping (default: 60)",
        "SECS",
    );
    o.optopt(
        "",
        "idle-timeout",
        "seconds of silence before dropping a connection (default: 120)",
        "SECS",
    );
    o.optopt(
        "",
        "connect-timeout",
        "seconds allowed to send connect (default: 10)",
        "SECS",
    );
    o.optopt(
        "",
        "salt",
        "salt mixed into password hashes (default: empty)",
        "SALT",
    );
    o.optopt(
        "",
        "flood-frame",
        "flood protection frame in seconds (default: 30)",
        "SECS",
    );
    o.optopt(
        "",
        "flood-limit",
        "updates allowed per flood frame (default: 40)",
        "N",
    );
    o.optopt(
        "",
        "connection-limit",
        "connections allowed in total (default: 100)",
        "N",
    );
    o.optopt(
        "",
        "data-dir",
        "directory for durable state (default: lichat-data)",
        "DIR",
    );
    o.optopt(
        "",
        "max-update-size",
        "largest update in bytes (default: 8388608)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-write-queue",
        "bytes waiting for a client, held replies included, before it is dropped (default: 4194304)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-connections-per-user",
        "connections per user (default: 20)",
        "N",
    );
    o.optopt(
        "",
        "max-channels",
        "channels the server keeps at most (default: 10000)",
        "N",
    );
    o.optopt(
        "",
        "max-profiles",
        "registered profiles the server keeps at most (default: 100000)",
        "N",
    );
    o.optopt(
        "",
        "max-channels-per-creator",
        "channels one user or address may have created and keep (default: 100)",
        "N",
    );
    o.optopt(
        "",
        "unregistered-channel-lifetime",
        "seconds an empty channel of a creator without profile lives (default: 3600)",
        "SECS",
    );
    o.optopt(
        "",
        "max-rule-names",
        "user names one permission rule may list (default: 1000)",
        "N",
    );
    o.optopt(
        "",
        "max-connections-per-ip",
        "connections one address may have open (default: 20; 0 is no limit)",
        "N",
    );
    o.optopt(
        "",
        "max-channels-per-user",
        "channels a user may be in (default: 50)",
        "N",
    );
    o.optopt(
        "",
        "backfill-count",
        "updates each channel keeps for backfill (default: 100; 0 keeps none)",
        "N",
    );
    o.optopt(
        "",
        "backfill-bytes",
        "bytes of updates each channel keeps for backfill (default: 1048576)",
        "BYTES",
    );
    o.optopt(
        "",
        "backfill-total-bytes",
        "bytes of updates all channels keep for backfill together; beyond it the oldest kept \
         anywhere go first (default: 67108864)",
        "BYTES",
    );
    o.optopt(
        "",
        "history-days",
        "days the searchable history keeps a message (default: 0, for ever)",
        "N",
    );
    o.optopt(
        "",
        "backfill-history",
        "stored messages a backfill adds at most from the history (default: 1000)",
        "N",
    );
    o.optopt(
        "",
        "max-channel-info-size",
        "bytes of text one channel info key may hold (default: 16384)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-user-info-size",
        "bytes of text one user info key may hold (default: 16384)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-icon-size",
        "bytes of a channel's or user's icon image (default: 1048576)",
        "BYTES",
    );
    o.optopt(
        "",
        "register",
        "register the profile NAME (or give it a new password) while no server runs: \
         reads the password from standard input, saves it under --data-dir and exits",
        "NAME",
    );
    o.optmulti(
        "",
        "admin",
        "make the registered profile NAME a server administrator (repeatable)",
        "NAME",
    );
    o.optopt(
        "",
        "data-types",
        "content types data updates may carry, comma-separated (default: image/png, image/gif, \
         image/jpeg, image/webp, audio/mpeg, audio/ogg, audio/wav, video/mp4, video/webm, \
         text/plain, application/pdf)",
        "TYPES",
    );
    o.optopt(
        "",
        "link-url-prefix",
        "what the URL of a shared file starts with, its name appended (default: \
         http://HOST:WS-PORT/link/, https and the WSS port with TLS); set it to the public \
         address when the server is behind a reverse proxy, which must pass /link/NAME on",
        "URL",
    );
    o.optopt(
        "",
        "max-link-bytes",
        "bytes all shared files may take on disk, each counted in 4 KiB blocks; 0 sends data \
         updates on as they came (default: 1073741824)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-emotes",
        "emotes one channel may hold (default: 200)",
        "N",
    );
    o.optopt(
        "",
        "max-emote-size",
        "largest emote image in bytes, decoded (default: 524288)",
        "BYTES",
    );
    o.optopt(
        "",
        "max-emotes-bytes",
        "bytes all emotes of one channel may take as sent (default: 3145728)",
        "BYTES",
    );
    o.optopt(
        "",
        "emotes-dir",
        "directory of image files (NAME.png, .gif, .jpg, .jpeg, .webp) loaded as the primary \
         channel's emotes at start",
        "DIR",
    );
    o.optopt(
        "",
        "log-level",
        "error, warn, info, debug or trace (default: info)",
        "LEVEL",
    );
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

/// A bad command line: one line naming the option, exit status 2.
struct Usage(String);

fn number<T>(m: &Matches, name: &str, default: T, min: T) -> Result<T, Usage>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match m.opt_str(name) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<T>() {
            Ok(v) if v >= min => Ok(v),
            _ => Err(Usage(format!(
                "--{name}: {text:?} is not a whole number of at least {min}"
            ))),
        },
    }
}

/// A port besides `--port`: its number, or `None` when turned off with 0
/// or when the server was built without what it serves.
fn extra_port(m: &Matches, name: &str, default: u16, built: bool) -> Result<Option<u16>, Usage> {
    match m.opt_str(name) {
        None if built => Ok(Some(default)),
        None => Ok(None),
        Some(_) if !built => Err(Usage(format!("--{name}: this server was built without it"))),
        Some(text) => match text.trim().parse::<u16>() {
            Ok(0) => Ok(None),
            Ok(p) => Ok(Some(p)),
            Err(_) => Err(Usage(format!(
                "--{name}: {text:?} is not a port number (0 to 65535)"
            ))),
        },
    }
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "Lichat".to_owned())
}

struct Cli {
    settings: Settings,
    /// `--link-url-prefix`, or the host name the default one is made with.
    link: LinkUrl,
    config: Config,
    data_dir: PathBuf,
    emotes_dir: Option<PathBuf>,
    level: LevelFilter,
}

/// Where the URLs of shared files (`shirakumo.mess` §12) point.
enum LinkUrl {
    /// Given with `--link-url-prefix`.
    Prefix(String),
    /// Made once the ports are bound, with this host.
    Default(String),
}

/// The default host of payload URLs: `--hostname` unless it is every
/// interface, else the machine's name.
fn link_host(m: &Matches, ip: IpAddr) -> String {
    match m.opt_str("hostname") {
        Some(text) if !ip.is_unspecified() => match text.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => text,
        },
        _ => hostname(),
    }
}

fn parse(m: &Matches) -> Result<Cli, Usage> {
    let ip = match m.opt_str("hostname") {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => ip,
            // A host name: its first address.
            Err(_) => (text.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip())
                .ok_or_else(|| {
                    Usage(format!(
                        "--hostname: {text:?} is neither an IP address nor a known host name"
                    ))
                })?,
        },
    };
    let port: u16 = match m.opt_str("port") {
        None => 1111,
        Some(text) => text.trim().parse().map_err(|_| {
            Usage(format!(
                "--port: {text:?} is not a port number (0 to 65535)"
            ))
        })?,
    };
    let defaults = Settings::default();
    let tls_files = match (m.opt_str("tls-cert"), m.opt_str("tls-key")) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }),
        (None, None) => None,
        (Some(_), None) => return Err(Usage("--tls-cert needs --tls-key".into())),
        (None, Some(_)) => return Err(Usage("--tls-key needs --tls-cert".into())),
    };
    let settings = Settings {
        addr: SocketAddr::new(ip, port),
        connection_limit: number(m, "connection-limit", defaults.connection_limit, 1)?,
        max_update_size: number(m, "max-update-size", defaults.max_update_size, 1024)?,
        max_write_queue: number(m, "max-write-queue", defaults.max_write_queue, 1024)?,
        ws_addr: extra_port(m, "ws-port", 1113, cfg!(feature = "websocket"))?
            .map(|p| SocketAddr::new(ip, p)),
        tls_addr: extra_port(m, "tls-port", 1112, cfg!(feature = "tls"))?
            .map(|p| SocketAddr::new(ip, p)),
        wss_addr: extra_port(
            m,
            "wss-port",
            1114,
            cfg!(all(feature = "tls", feature = "websocket")),
        )?
        .map(|p| SocketAddr::new(ip, p)),
        tls_files,
        max_tls_handshakes: number(m, "max-tls-handshakes", defaults.max_tls_handshakes, 1)?,
        metrics: m.opt_present("metrics"),
    };
    let name = match m.opt_str("name") {
        Some(n) if n.trim().is_empty() => {
            return Err(Usage(format!("--name: {n:?} is not a name")));
        }
        Some(n) => n,
        None => hostname(),
    };
    // Start from the engine's defaults so settings it adds keep theirs.
    let mut config = Config::default();
    config.name = name;
    config.connect_timeout = number(m, "connect-timeout", config.connect_timeout, 1)?;
    config.ping_interval = number(m, "ping-interval", config.ping_interval, 1)?;
    config.idle_timeout = number(m, "idle-timeout", config.idle_timeout, 1)?;
    config.flood_frame = number(m, "flood-frame", config.flood_frame, 1)?;
    config.flood_limit = number(m, "flood-limit", config.flood_limit, 1)?;
    config.max_connections_per_user = number(
        m,
        "max-connections-per-user",
        config.max_connections_per_user,
        1,
    )?;
    config.max_connections_per_ip = number(
        m,
        "max-connections-per-ip",
        config.max_connections_per_ip,
        0,
    )?;
    config.max_channels_per_user =
        number(m, "max-channels-per-user", config.max_channels_per_user, 1)?;
    config.max_channels = number(m, "max-channels", config.max_channels, 1)?;
    config.max_profiles = number(m, "max-profiles", config.max_profiles, 1)?;
    config.max_rule_names = number(m, "max-rule-names", config.max_rule_names, 1)?;
    config.max_channels_per_creator = number(
        m,
        "max-channels-per-creator",
        config.max_channels_per_creator,
        1,
    )?;
    config.unregistered_channel_lifetime = number(
        m,
        "unregistered-channel-lifetime",
        config.unregistered_channel_lifetime,
        1,
    )?;
    config.backfill_count = number(m, "backfill-count", config.backfill_count, 0)?;
    config.backfill_bytes = number(m, "backfill-bytes", config.backfill_bytes, 0)?;
    config.backfill_total_bytes =
        number(m, "backfill-total-bytes", config.backfill_total_bytes, 0)?;
    config.history_days = number(m, "history-days", config.history_days, 0)?;
    config.backfill_history = number(m, "backfill-history", config.backfill_history, 0)?;
    config.max_update_size = settings.max_update_size;
    config.max_emotes = number(m, "max-emotes", config.max_emotes, 0)?;
    config.max_emote_size = number(m, "max-emote-size", config.max_emote_size, 1)?;
    config.max_emotes_bytes = number(m, "max-emotes-bytes", config.max_emotes_bytes, 0)?;
    if let Some(text) = m.opt_str("data-types") {
        let types: Vec<String> = text
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(bad) = types.iter().find(|t| !is_content_type(t)) {
            return Err(Usage(format!(
                "--data-types: {bad:?} is not a content type like image/png"
            )));
        }
        if types.is_empty() {
            return Err(Usage(format!(
                "--data-types: {text:?} names no content type"
            )));
        }
        config.data_types = types;
    }
    config.max_channel_info_size =
        number(m, "max-channel-info-size", config.max_channel_info_size, 1)?;
    config.max_user_info_size = number(m, "max-user-info-size", config.max_user_info_size, 1)?;
    config.max_icon_size = number(m, "max-icon-size", config.max_icon_size, 1)?;
    config.max_link_bytes = number(m, "max-link-bytes", config.max_link_bytes, 0)?;
    let link = match m.opt_str("link-url-prefix") {
        Some(_) if !cfg!(feature = "websocket") => {
            return Err(Usage(
                "--link-url-prefix: this server was built without HTTP (feature websocket)".into(),
            ));
        }
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Usage(format!(
                    "--link-url-prefix: {url:?} has white space in it"
                )));
            }
            // A path is taken as a directory: the name goes below it.
            if url.ends_with('/') || url.ends_with('=') {
                LinkUrl::Prefix(url)
            } else {
                LinkUrl::Prefix(format!("{url}/"))
            }
        }
        Some(url) => {
            return Err(Usage(format!(
                "--link-url-prefix: {url:?} is not an http:// or https:// URL"
            )));
        }
        None => LinkUrl::Default(link_host(m, ip)),
    };
    config.salt = m.opt_str("salt").unwrap_or_default();
    for admin in m.opt_strs("admin") {
        if !lichat_tcp_server::protocol::is_valid_name(&admin) {
            return Err(Usage(format!(
                "--admin: {admin:?} is not a valid user name"
            )));
        }
        config.admins.push(admin);
    }
    let level = match m.opt_str("log-level").as_deref() {
        None | Some("info") => LevelFilter::Info,
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        Some(other) => {
            return Err(Usage(format!(
                "--log-level: {other:?} is not one of error, warn, info, debug, trace"
            )));
        }
    };
    let data_dir = PathBuf::from(
        m.opt_str("data-dir")
            .unwrap_or_else(|| "lichat-data".into()),
    );
    Ok(Cli {
        settings,
        link,
        config,
        data_dir,
        emotes_dir: m.opt_str("emotes-dir").map(PathBuf::from),
        level,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = options();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{PROGRAM}: {e}");
            return ExitCode::from(2);
        }
    };
    if m.opt_present("help") {
        let brief = format!(
            "Usage: {PROGRAM} [options]\nA Lichat {PROTOCOL_VERSION} chat server over TCP."
        );
        print!("{}", opts.usage(&brief));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("version") {
        println!("{PROGRAM} {VERSION} (Lichat protocol {PROTOCOL_VERSION})");
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = m.free.first() {
        eprintln!("{PROGRAM}: unexpected argument {extra:?}");
        return ExitCode::from(2);
    }
    let cli = match parse(&m) {
        Ok(c) => c,
        Err(Usage(line)) => {
            eprintln!("{PROGRAM}: {line}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = m.opt_str("register") {
        return match offline_register::register(&name, &cli.config, &cli.data_dir) {
            Ok(line) => {
                eprintln!("{PROGRAM}: {line}");
                ExitCode::SUCCESS
            }
            Err(line) => {
                eprintln!("{PROGRAM}: {line}");
                ExitCode::from(1)
            }
        };
    }
    let log_config = ConfigBuilder::new()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .build();
    // A logger is already installed only if main ran twice; ignore it then.
    let colour = if std::io::stderr().is_terminal() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let _ = TermLogger::init(cli.level, log_config, TerminalMode::Stderr, colour);

    if let Err(e) = std::fs::create_dir_all(&cli.data_dir) {
        error!(
            "cannot create the data directory {}: {e}",
            cli.data_dir.display()
        );
        return ExitCode::from(1);
    }
    let s = &cli.settings;
    info!(
        "{PROGRAM} {VERSION}, Lichat {PROTOCOL_VERSION}, name {:?}: ping-interval {} s, idle-timeout {} s, \
         connect-timeout {} s, flood {} updates per {} s, connection-limit {}, max-update-size {} B, \
         max-write-queue {} B, max-connections-per-user {}, max-channels-per-user {}, \
         max-channels {}, max-channels-per-creator {}, unregistered-channel-lifetime {} s, \
         max-profiles {}, max-rule-names {}, data-dir {}",
        cli.config.name,
        cli.config.ping_interval,
        cli.config.idle_timeout,
        cli.config.connect_timeout,
        cli.config.flood_limit,
        cli.config.flood_frame,
        s.connection_limit,
        s.max_update_size,
        s.max_write_queue,
        cli.config.max_connections_per_user,
        cli.config.max_channels_per_user,
        cli.config.max_channels,
        cli.config.max_channels_per_creator,
        cli.config.unregistered_channel_lifetime,
        cli.config.max_profiles,
        cli.config.max_rule_names,
        cli.data_dir.display(),
    );
    if cli.config.idle_timeout <= 100 {
        warn!(
            "--idle-timeout {} is not above the 100 s that §4.2 asks for",
            cli.config.idle_timeout
        );
    }
    if cli.config.max_emotes_bytes >= s.max_write_queue {
        warn!(
            "--max-emotes-bytes {} is not below --max-write-queue {}: a client asking for all \
             emotes of a full channel would be dropped",
            cli.config.max_emotes_bytes, s.max_write_queue
        );
    }
    let addr = s.addr;
    let name = cli.config.name.clone();
    let max_emote_size = cli.config.max_emote_size;
    let mut engine = Engine::new(cli.config, universal_now());
    if let Some(dir) = &cli.emotes_dir {
        let loaded =
            read_emote_dir(dir, &name, max_emote_size, universal_now()).and_then(|records| {
                let n = records.len();
                engine.add_primary_emotes(records).map(|()| n)
            });
        match loaded {
            Ok(n) => info!("loaded {n} emote(s) from {}", dir.display()),
            Err(e) => {
                error!("--emotes-dir {}: {e}", dir.display());
                return ExitCode::from(1);
            }
        }
    }
    let mut server = match Server::bind(cli.settings, engine) {
        Ok(server) => server,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            error!(
                "cannot listen on {addr}: the address is already in use (another server running?)"
            );
            return ExitCode::from(1);
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            error!("cannot start: {e}");
            return ExitCode::from(1);
        }
        Err(e) => {
            error!("cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    // shirakumo-link: payload URLs need the bound ports. Without HTTP
    // built in, there is nothing to serve them.
    let prefix = match &cli.link {
        LinkUrl::Prefix(p) => p.clone(),
        LinkUrl::Default(_) if !cfg!(feature = "websocket") => String::new(),
        LinkUrl::Default(host) => {
            let (scheme, addr) = match server.listener_addr("wss") {
                Some(a) => ("https", a),
                None => (
                    "http",
                    server.listener_addr("ws").unwrap_or(server.local_addr()),
                ),
            };
            format!("{scheme}://{host}:{}/link/", addr.port())
        }
    };
    server.set_link_url_prefix(prefix);
    if server.engine().links_enabled() {
        info!(
            "shared files (shirakumo-link) are served as {}NAME",
            server.engine().config().link_url_prefix
        );
    }
    if let Err(e) = server.open_store(&cli.data_dir) {
        error!("cannot start: {e}");
        return ExitCode::from(1);
    }
    info!("listening on {}", server.local_addr());
    for (port, what) in [
        ("ws", "WebSocket"),
        ("tls", "Lichat over TLS"),
        ("wss", "WebSocket over TLS"),
    ] {
        if let Some(addr) = server.listener_addr(port) {
            info!("listening for {what} on {addr}");
        }
    }
    match server.run() {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}
