// cargo-scheduler-shim-v1: the native `cargo` the shim puts on PATH (compiled by `cargo-scheduler shim
// install` with the rustc that comes with every cargo; standard library only).
//
// Why native: Python's start alone (~12 ms with -IS) is a third of cargo's own no-op on a small
// workspace, and the shim must never make `cargo` slower. This client does the hot path only: for
// `check|clippy|build|test` (and the aliases c, b, t) at a daemon's workspace it sends the daemon the
// same `cli-check` line the Python client sends (cli/_client.py documents it; shell/_served.py
// answers it) and prints the framed answer. Everything else goes elsewhere at once:
// - no daemon serves the workspace (installed with --no-start: the real cargo), `--manifest-path`, a
//   non-UTF-8 argument, variable or directory, or a runtime directory that is not private: the
//   Python shim (it starts a daemon, then execs cargo);
// - the daemon says `unfit`, or anything fails on the way: the real cargo, same argv.
// The real cargo is the first `cargo` on PATH outside a directory holding the shim marker
// (cargo/_shimless.py has the rule), and the daemon is sent that shimless PATH.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const VERSION: &str = env!("CSHIM_VERSION");
const PYTHON_SHIM: &str = env!("CSHIM_PYTHON");
const START: &str = env!("CSHIM_START"); // "1": with no daemon, the Python shim starts one
const MARKER: &str = ".cargo-scheduler-shim";
const SIGNATURE: &str = "cargo-scheduler-shim-v1";

enum Outcome {
    Answered(i32),
    NoDaemon,
    Unfit,
}

fn main() {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    let path = env::var_os("PATH").unwrap_or_default();
    let Some(real) = real_cargo(&path) else {
        eprintln!("{SIGNATURE}: no cargo on PATH besides the shim's");
        exit(127);
    };
    if let Some(kind) = answered(&args) {
        match ask(kind, &args[1..], &path) {
            Some(Outcome::Answered(code)) => exit(code),
            Some(Outcome::Unfit) => {}
            Some(Outcome::NoDaemon) if START != "1" => {}
            Some(Outcome::NoDaemon) | None => exec(Path::new(PYTHON_SHIM), &args),
        }
    }
    exec(&real, &args);
}

fn exec(program: &Path, args: &[OsString]) -> ! {
    let err = Command::new(program).arg0("cargo").args(args).exec();
    eprintln!("{SIGNATURE}: cannot run {}: {err}", program.display());
    exit(127);
}

fn answered(args: &[OsString]) -> Option<&'static str> {
    let kind = match args.first()?.to_str()? {
        "check" | "c" => "check",
        "clippy" => "clippy",
        "build" | "b" => "build",
        "test" | "t" => "test",
        _ => return None,
    };
    if kind == "test" && !args.iter().any(|a| a == "--no-run") {
        return None; // running tests is the real cargo's: the engine only builds them
    }
    Some(kind)
}

fn shim_dir(dir: &Path) -> bool {
    !dir.as_os_str().is_empty() && dir.join(MARKER).is_file()
}

fn shimless(path: &OsString) -> Vec<PathBuf> {
    env::split_paths(path).filter(|p| !p.as_os_str().is_empty() && !shim_dir(p)).collect()
}

fn real_cargo(path: &OsString) -> Option<PathBuf> {
    shimless(path).into_iter().map(|d| d.join("cargo")).find(|c| {
        fs::metadata(c).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// `None`: this client cannot say (the Python shim decides).
fn ask(kind: &str, rest: &[OsString], path: &OsString) -> Option<Outcome> {
    let mut argv = Vec::new();
    for a in rest {
        let a = a.to_str()?;
        if a == "--manifest-path" || a.starts_with("--manifest-path=") {
            return None;
        }
        argv.push(a.to_string());
    }
    let cwd = env::current_dir().ok()?;
    let cwd = cwd.to_str()?.to_string();
    let runtime = runtime_dir()?;
    let Some(socket) = daemon_socket(&runtime, Path::new(&cwd)) else {
        return Some(Outcome::NoDaemon);
    };
    let mut line = String::with_capacity(16 * 1024);
    line.push_str("{\"control\":\"cli-check\",\"version\":");
    quote(&mut line, VERSION);
    line.push_str(",\"kind\":");
    quote(&mut line, kind);
    line.push_str(",\"argv\":[");
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        quote(&mut line, a);
    }
    line.push_str("],\"cwd\":");
    quote(&mut line, &cwd);
    line.push_str(",\"env\":{");
    let clean = env::join_paths(shimless(path)).ok()?;
    let mut first = true;
    for (k, v) in env::vars_os() {
        let k = k.into_string().ok()?;
        let v = if k == "PATH" { clean.clone().into_string().ok()? } else { v.into_string().ok()? };
        if !first {
            line.push(',');
        }
        first = false;
        quote(&mut line, &k);
        line.push(':');
        quote(&mut line, &v);
    }
    line.push_str("},\"tty\":");
    line.push_str(if std::io::stderr().is_terminal() { "true" } else { "false" });
    line.push_str(",\"elapsed_s\":0.0}\n");
    let Ok(mut stream) = UnixStream::connect(&socket) else {
        return Some(Outcome::NoDaemon); // a socket a killed daemon left behind
    };
    Some(talk(&mut stream, line.as_bytes()).unwrap_or(Outcome::Unfit))
}

fn talk(stream: &mut UnixStream, line: &[u8]) -> Option<Outcome> {
    stream.write_all(line).ok()?;
    let tty = std::io::stderr().is_terminal();
    let mut data = Vec::with_capacity(64 * 1024);
    let mut buf = [0u8; 64 * 1024];
    let mut shown = false;
    let head = loop {
        let newline = loop {
            if let Some(i) = data.iter().position(|&b| b == b'\n') {
                break i;
            }
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
        };
        let rest = data.split_off(newline + 1);
        let head = std::mem::replace(&mut data, rest);
        let head = String::from_utf8(head[..newline].to_vec()).ok()?;
        match head.strip_prefix("progress ") {
            Some(text) => {
                if tty {
                    eprint!("\r\x1b[2K{text}"); // cargo's progress line, each over the last
                    shown = true;
                }
            }
            None => break head,
        }
    };
    if shown {
        eprint!("\r\x1b[2K");
    }
    let words: Vec<&str> = head.split(' ').collect();
    if words.len() != 4 || words[0] != "answer" {
        return Some(Outcome::Unfit);
    }
    let code: i32 = words[1].parse().ok()?;
    let out_len: usize = words[2].parse().ok()?;
    let err_len: usize = words[3].parse().ok()?;
    let mut body = data;
    while body.len() < out_len + err_len {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let _ = std::io::stdout().write_all(&body[..out_len]);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&body[out_len..out_len + err_len]);
    Some(Outcome::Answered(code))
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// daemon/_socket.py's runtime_dir, read-only: None unless it exists and only we can enter it.
fn runtime_dir() -> Option<PathBuf> {
    let uid = fs::metadata("/proc/self").ok()?.uid();
    let private = |p: &Path| {
        fs::symlink_metadata(p)
            .map(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700)
            .unwrap_or(false)
    };
    let base = match env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(b) => Some(PathBuf::from(b)),
        None => Some(PathBuf::from(format!("/run/user/{uid}"))).filter(|p| private(p)),
    };
    let dir = match base {
        Some(b) => b.join("cargo-scheduler"),
        None => PathBuf::from(format!("/tmp/cargo-scheduler-{uid}")),
    };
    private(&dir).then_some(dir)
}

/// The socket of the daemon serving the nearest manifest directory at or above `start`.
fn daemon_socket(runtime: &Path, start: &Path) -> Option<PathBuf> {
    let mut dir = fs::canonicalize(start).ok()?;
    loop {
        if dir.join("Cargo.toml").is_file() {
            let key = sha256_hex(dir.as_os_str().to_str()?.as_bytes());
            let socket = runtime.join(format!("{}.sock", &key[..20]));
            if socket.exists() {
                return Some(socket);
            }
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}
