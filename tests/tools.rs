//! Running the `collector` and `announcer` tools (examples of
//! corebgp-examples) as child processes, the way an operator does.
//!
//! `cargo test --workspace` builds every example before it runs a test, so
//! the binaries are in `target/<profile>/examples/`, next to the test
//! binary's own `deps/` directory. Output is read by threads into memory
//! (stdout line by line, stderr whole), so a test can wait on a line that
//! matches a condition, and every failure message carries stderr.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::wait::{poll, wait_for};

/// `target/<profile>/examples/NAME`, or a panic that says how to build it.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/test-binary → target/<profile>/examples/NAME
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("test binary in target/<profile>/deps");
    let p = profile_dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p corebgp-examples --examples` \
         (`cargo test --workspace` does)",
        p.display()
    );
    p
}

/// A running tool, killed (SIGKILL) when dropped.
pub struct Tool {
    name: String,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    /// The two reader threads: done once the pipes reach end of file.
    readers: Vec<std::thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Tool {
    /// Starts example `name` with `args`.
    pub fn spawn(name: &str, args: &[String]) -> Self {
        Self::spawn_env(name, args, &[])
    }

    /// Starts example `name` with `args` and extra environment variables.
    pub fn spawn_env(name: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        let bin = example_binary(name);
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Logs at debug unless the test says otherwise: failures show them.
        if !env.iter().any(|(k, _)| *k == "RUST_LOG") && std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "debug");
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped stdout");
        let lines = stdout.clone();
        let mut readers = Vec::new();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                lines.lock().expect("lock").push(l);
            }
        }));
        let mut err = child.stderr.take().expect("piped stderr");
        let text = stderr.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => text
                        .lock()
                        .expect("lock")
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        }));
        Self {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().expect("lock").clone()
    }

    /// Every stdout line so far, each parsed as JSON (a line that is not
    /// JSON fails the test: stdout is for JSON only).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("{} printed a line that is not JSON ({e}): {l}", self.name)
                })
            })
            .collect()
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// What to attach to a failure: the tool's stdout and stderr tails.
    pub fn diagnostics(&self) -> String {
        let lines = self.lines();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- {} stdout (last {} of {} lines):\n{}\n--- {} stderr:\n{}\n--- end of {}",
            self.name,
            lines.len() - from,
            lines.len(),
            lines[from..].join("\n"),
            self.name,
            crate::daemons::tail(&self.stderr(), 12_000),
            self.name
        )
    }

    /// Waits for a JSON line satisfying `pred` (searching every line so far)
    /// and returns it, or panics with `what` and the diagnostics plus
    /// `context()`.
    pub fn wait_json(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
        context: impl FnOnce() -> String,
    ) -> serde_json::Value {
        wait_for(
            &format!("{}: {what}", self.name),
            timeout,
            || self.json().into_iter().find(|v| pred(v)),
            || format!("{}\n{}", self.diagnostics(), context()),
        )
    }

    /// Waits for the `n`-th (1-based) JSON line satisfying `pred`.
    pub fn wait_json_nth(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
        context: impl FnOnce() -> String,
    ) -> serde_json::Value {
        wait_for(
            &format!("{}: {what} (occurrence {n})", self.name),
            timeout,
            || self.json().into_iter().filter(|v| pred(v)).nth(n - 1),
            || format!("{}\n{}", self.diagnostics(), context()),
        )
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Waits for the process to exit, or panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let child = self.child.as_mut().expect("child");
        let status = poll(timeout, || child.try_wait().ok().flatten());
        match status {
            Some(s) => {
                self.status = Some(s);
                // Both readers take what is left in the pipes: they end at
                // end of file, which comes once the process is gone (unless
                // something it started still holds a pipe: bounded).
                let deadline = Instant::now() + Duration::from_secs(30);
                while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                for r in self.readers.drain(..).filter(|r| r.is_finished()) {
                    let _ = r.join();
                }
                s
            }
            None => panic!(
                "{} did not exit within {timeout:?}\n{}",
                self.name,
                self.diagnostics()
            ),
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child
            && self.status.is_none()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a tool to completion (bad-input tests): exit status, stdout, stderr.
pub fn run_tool(name: &str, args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut t = Tool::spawn_env(name, &args, &[("RUST_LOG", "off")]);
    let status = t.wait_exit(timeout);
    (status, t.lines().join("\n"), t.stderr())
}
