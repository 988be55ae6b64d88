//! witness's side of the adapter protocol: a running adapter process. Replies are read and
//! requests written on threads of their own, so that a hung adapter costs a timeout, not the
//! run; the adapter runs in a process group of its own, killed whole when it hangs; its stderr
//! goes to a file whose tail is quoted when it fails.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value as Json;

use super::PROTOCOL_VERSION;

/// How long witness waits, by default, for an adapter to take one line or to write one (a
/// transpiling compile included); `--adapter-timeout` sets it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest line an adapter may write (a reply with a large list is a few MiB).
pub const MAX_LINE: u64 = 64 << 20;

/// The next line of `reader` without its newline (`None`: the end of input); a line over
/// `MAX_LINE` bytes is an error, read no further.
fn read_line(reader: &mut impl std::io::BufRead) -> std::io::Result<Option<String>> {
    let mut bytes = vec![];
    let n = std::io::Read::take(&mut *reader, MAX_LINE + 1).read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    } else if n as u64 > MAX_LINE {
        return Err(std::io::Error::other(format!("a line longer than {MAX_LINE} bytes")));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| std::io::Error::other("a line that is not UTF-8"))
}

/// `text`, or its start when it is long (what a message quotes of another process's output).
pub fn brief(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}... ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

/// What the adapter said about itself in its greeting.
#[derive(Clone, Debug)]
pub struct Greeting {
    pub adapter: String,
    pub version: String,
    /// What it supports beyond the base protocol (`resources`).
    pub features: Vec<String>,
}

pub struct AdapterProcess {
    command: String,
    child: Child,
    /// Lines to write, to the writer thread; it answers each with the outcome of the write.
    requests: Sender<String>,
    written: Receiver<std::io::Result<()>>,
    lines: Receiver<std::io::Result<String>>,
    stderr: PathBuf,
    timeout: Duration,
    /// The `id` of the last request written (requests are numbered from 1).
    last_id: u64,
    pub greeting: Greeting,
}

impl AdapterProcess {
    /// Start `command` (under `sh -c`, in a process group of its own) and read its greeting;
    /// every line to and from it may take `timeout`.
    pub fn spawn(command: &str, timeout: Duration) -> Result<AdapterProcess> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = std::env::temp_dir().join(format!("witness-adapter-{}-{n}.log", std::process::id()));
        let log = std::fs::File::create(&stderr).with_context(|| format!("cannot create {}", stderr.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start adapter `{command}`"))?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let (requests, to_write) = channel::<String>();
        let (done, written) = channel();
        std::thread::spawn(move || {
            for line in to_write {
                let r = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
                if done.send(r).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            // The end of input drops the sender: the adapter exited.
            while let Some(line) = read_line(&mut reader).transpose() {
                let failed = line.is_err();
                if tx.send(line).is_err() || failed {
                    break;
                }
            }
        });
        let mut p = AdapterProcess {
            command: command.to_string(),
            child,
            requests,
            written,
            lines,
            stderr,
            timeout,
            last_id: 0,
            greeting: Greeting { adapter: String::new(), version: String::new(), features: vec![] },
        };
        let hello = p.receive().context("reading the adapter's greeting")?;
        let version = hello.get("protocol").and_then(Json::as_u64);
        if version != Some(PROTOCOL_VERSION) {
            bail!("adapter `{command}` speaks protocol {version:?}, witness speaks {PROTOCOL_VERSION}: {hello}");
        }
        let text = |k: &str| hello.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        let features = hello
            .get("features")
            .and_then(Json::as_array)
            .map_or(vec![], |fs| fs.iter().filter_map(Json::as_str).map(str::to_string).collect());
        p.greeting = Greeting { adapter: text("adapter"), version: text("version"), features };
        let name = &p.greeting.adapter;
        let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if name.is_empty() || !name.chars().all(plain) || name.starts_with('.') || name.len() > 64 {
            // The name labels results and names repro folders: a path in it would escape them.
            bail!(
                "adapter `{command}` greets with the name {:?}: a name is 1 to 64 letters, digits, \
                 `.`, `_` or `-`, not starting with `.`",
                brief(name)
            );
        }
        Ok(p)
    }

    /// The last lines the adapter wrote to stderr.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    fn failed(&self, what: String) -> anyhow::Error {
        let tail = self.stderr_tail();
        if tail.is_empty() {
            anyhow!("adapter `{}`: {what}", self.command)
        } else {
            anyhow!("adapter `{}`: {what}; its stderr ends with:\n{tail}", self.command)
        }
    }

    /// Kill the adapter and everything it started (its process group).
    fn kill(&mut self) {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
    }

    /// Write one message; an adapter that does not take it in time is killed.
    pub fn send(&mut self, message: &Json) -> Result<()> {
        // Whenever witness writes, the adapter waits for it: a line already waiting is one no
        // request asked for (a second reply), which would be taken as the answer to this one.
        if let Ok(Ok(extra)) = self.lines.try_recv() {
            return Err(self.failed(format!("wrote a line no request asked for: {}", brief(&extra))));
        }
        let line = serde_json::to_string(message)?;
        self.requests.send(line).map_err(|_| self.failed("cannot write to it (its input is closed)".into()))?;
        match self.written.recv_timeout(self.timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failed(format!("cannot write to it ({e})"))),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(self.failed(format!("took no input for {} s (killed)", self.timeout.as_secs())))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.failed("cannot write to it".into())),
        }
    }

    /// Write `request` with the next `id`, which is returned: its final reply must name it.
    pub fn send_request(&mut self, request: &Json) -> Result<u64> {
        self.last_id += 1;
        let mut numbered = request.clone();
        numbered["id"] = self.last_id.into();
        self.send(&numbered)?;
        Ok(self.last_id)
    }

    /// Whether final reply `reply` answers request `id`: anything else is a protocol failure
    /// (a second reply to an earlier request would otherwise pass for this one's).
    pub fn check_id(&self, reply: &Json, id: u64) -> Result<()> {
        match reply.get("id").and_then(Json::as_u64) {
            Some(n) if n == id => Ok(()),
            Some(n) if n < id => Err(self.failed(format!(
                "answered request {n} a second time while witness waited for request {id}'s reply: {}",
                brief(&reply.to_string())
            ))),
            _ => Err(self.failed(format!(
                "wrote a final reply without the `id` of its request ({id}): {}",
                brief(&reply.to_string())
            ))),
        }
    }

    /// Read one message.
    pub fn receive(&mut self) -> Result<Json> {
        let line = match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(self.failed(format!("cannot read from it ({e})"))),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                return Err(self.failed(format!("no reply in {} s (killed)", self.timeout.as_secs())));
            }
            Err(RecvTimeoutError::Disconnected) => return Err(self.failed("it exited".into())),
        };
        serde_json::from_str(&line)
            .map_err(|e| self.failed(format!("wrote a line that is not JSON ({e}): {}", brief(&line))))
    }

    /// Send a request whose only reply is final: `ok`'s value, or an error for `error` (and
    /// for anything else).
    pub fn request(&mut self, message: &Json) -> Result<Json> {
        let id = self.send_request(message)?;
        let reply = self.receive()?;
        self.check_id(&reply, id)?;
        match (reply.get("ok"), reply.get("error")) {
            (Some(v), _) => Ok(v.clone()),
            (_, Some(e)) => Err(self.failed(format!("{} failed: {}", message["op"], e.as_str().unwrap_or_default()))),
            _ => Err(self.failed(format!("unexpected reply to {}: {}", message["op"], brief(&reply.to_string())))),
        }
    }
}

impl Drop for AdapterProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}
