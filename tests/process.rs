//! Child processes that never outlive their owner.
//!
//! A [`DaemonProcess`] starts a daemon in its own process group with its
//! standard output and error appended to a log file, and kills the whole
//! group (SIGKILL) when dropped — including while a test panics. As a second
//! line of defence the child gets `PR_SET_PDEATHSIG(SIGKILL)` so that it also
//! dies if the test process itself is killed (daemons that change their
//! credentials, like FRR's bgpd, lose that setting; the process-group kill
//! on drop still applies to them).

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How to (re)start a daemon: the program, its arguments and environment.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log: PathBuf,
}

/// The message of the panic raised when a daemon binary is missing.
pub const INSTALL_HINT: &str =
    "install with: apt-get install -y bird2 gobgpd frr exabgp nats-server";

/// Panics with [`INSTALL_HINT`] unless `program` exists and is executable
/// (an absolute path or a name found in `PATH`, including the sbin
/// directories, which a non-login root shell may lack).
pub fn require_binary(program: &str) -> PathBuf {
    if let Some(p) = find_binary(program) {
        return p;
    }
    panic!("required program `{program}` not found; {INSTALL_HINT}");
}

/// Looks `program` up like a shell would, also trying /usr/sbin and /sbin.
pub fn find_binary(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain([
            "/usr/local/sbin",
            "/usr/sbin",
            "/sbin",
            "/usr/local/bin",
            "/usr/bin",
            "/bin",
        ])
        .map(|d| Path::new(d).join(program))
        .find(|p| is_exec(p))
}

/// A running daemon (or none, between a kill and a restart).
#[derive(Debug)]
pub struct DaemonProcess {
    launch: Launch,
    child: Option<Child>,
}

impl DaemonProcess {
    /// Starts the daemon described by `launch`.
    pub fn spawn(launch: Launch) -> Self {
        let mut p = Self {
            launch,
            child: None,
        };
        p.start();
        p
    }

    /// Starts the process again after [`DaemonProcess::kill`].
    pub fn start(&mut self) {
        assert!(
            self.child.is_none(),
            "{} is already running",
            self.launch.program
        );
        let program = require_binary(&self.launch.program);
        let log = open_log(&self.launch.log);
        let log2 = log.try_clone().expect("clone log file handle");
        let mut cmd = Command::new(&program);
        cmd.args(&self.launch.args)
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.launch.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", program.display()));
        self.child = Some(child);
    }

    /// The process id (= process group id) of the running daemon.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `sig` to the daemon's whole process group.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain syscall; a negative pid addresses the group we created.
            unsafe {
                libc::kill(-(pid as libc::pid_t), sig);
            }
        }
    }

    /// SIGSTOP: the daemon freezes (its sockets stay open, nothing is read
    /// or sent). Returns once every thread of the daemon is stopped (signal
    /// delivery is asynchronous; without the wait a busy daemon may still act
    /// for a moment).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
        self.wait_task_states(true);
    }

    /// SIGCONT after [`DaemonProcess::pause`]; returns once no thread is stopped.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
        self.wait_task_states(false);
    }

    fn wait_task_states(&self, stopped: bool) {
        let Some(pid) = self.pid() else { return };
        let all = || -> Option<()> {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
            for t in tasks.flatten() {
                let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
                // The state follows the parenthesised command name.
                let state = stat.rsplit_once(") ")?.1.chars().next()?;
                if (state == 'T') != stopped {
                    return None;
                }
            }
            Some(())
        };
        crate::wait::wait_for(
            &format!(
                "{} (pid {pid}) to be {}",
                self.launch.program,
                if stopped { "stopped" } else { "running" }
            ),
            Duration::from_secs(5),
            all,
            || self.output(),
        );
    }

    /// SIGKILL to the process group, then reaps the child.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_pid(c.id(), libc::SIGKILL);
            let _ = c.kill();
            let _ = c.wait();
            // Give group members (e.g. ExaBGP's API helper) a moment to be reaped by init.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_pid(&self, pid: u32, sig: libc::c_int) {
        // SAFETY: see `signal`.
        unsafe {
            libc::kill(-(pid as libc::pid_t), sig);
        }
    }

    /// Kills the daemon and starts it again with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// The launch recipe (log path, arguments).
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// The daemon's standard output and error so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.launch.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open log {}: {e}", path.display()))
}

/// Runs a CLI command to completion (with a timeout) and returns its stdout,
/// or an error text with its stderr.
pub fn run_cli(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let bin = require_binary(program);
    let child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e| format!("{program}: {e}"))?,
        Err(_) => {
            // SAFETY: plain syscall on the pid of our own, not yet reaped, child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            return Err(format!(
                "{program} {args:?} did not finish within {timeout:?}"
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{program} {args:?} exited with {}: {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "install with: apt-get install -y bird2 gobgpd frr exabgp")]
    fn missing_daemon_fails_with_install_hint() {
        require_binary("corebgp-no-such-bgp-daemon");
    }

    #[test]
    fn finds_binaries_in_sbin() {
        assert!(find_binary("sh").is_some());
        assert!(find_binary("/bin/sh").is_some());
        assert!(find_binary("corebgp-no-such-bgp-daemon").is_none());
    }

    #[test]
    fn drop_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let launch = Launch {
            program: "sh".into(),
            // The shell starts a grandchild (sleep) in the same process group.
            args: vec![
                "-c".into(),
                format!("sleep 600 & echo $! > {}; wait", pidfile.display()),
            ],
            env: vec![],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("log"),
        };
        let p = DaemonProcess::spawn(launch);
        let grandchild: i32 = crate::wait::wait_for(
            "the pid file",
            Duration::from_secs(5),
            || std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok(),
            String::new,
        );
        drop(p);
        let gone = crate::wait::poll(Duration::from_secs(5), || {
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(grandchild, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
            (!alive || zombie).then_some(())
        });
        assert!(gone.is_some(), "grandchild {grandchild} survived the drop");
    }
}
