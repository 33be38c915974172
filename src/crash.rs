//! Crash reports, as Redis writes them: when a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
//! SIGABRT) or a panic ends the process, the log first gets a bug-report block (which signal,
//! who sent it or which address faulted, the stack), so a crash leaves more than an exit
//! status. `crash-log-enabled no` turns the signal reports off, as in Redis.
//!
//! And Redis's software watchdog (`watchdog-period`, a debugging aid): each cron tick arms a
//! one-shot SIGALRM that far ahead, so an event loop stuck longer than that logs
//! `--- WATCHDOG TIMER EXPIRED ---` and where it is stuck, and carries on.
//!
//! The signal handler runs in a process that may be broken anywhere, the allocator included:
//! it formats into a stack buffer, writes with write(2), and takes the stack with glibc's
//! backtrace()/backtrace_symbols_fd(), which neither allocate nor lock once warmed up (at
//! install time). The frames are printed as `ember-server(+0xOFFSET)`: `addr2line -Cfe
//! ember-server 0xOFFSET` names them (release builds keep line tables).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// Where reports go: the log file's descriptor, or standard output.
static LOG_FD: AtomicI32 = AtomicI32::new(1);
/// `crash-log-enabled`.
static ENABLED: AtomicBool = AtomicBool::new(true);
/// The watchdog's period in milliseconds; 0 when it is off.
static WATCHDOG_MS: AtomicU64 = AtomicU64::new(0);

const FATAL: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT];
/// Frames printed at most (Redis prints 100).
const FRAMES: usize = 100;

const START: &str = "=== EMBER BUG REPORT START: Cut & paste starting from here ===";
const END: &str = "=== EMBER BUG REPORT END. Make sure to include from START to END. ===";

/// Sends reports to `fd` (the log file, kept open for the process's life).
pub fn set_log_fd(fd: i32) {
    LOG_FD.store(fd, Ordering::Relaxed);
}

/// Follows `crash-log-enabled`.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Installs the fatal-signal handlers and the panic hook. Called once, at startup.
pub fn install() {
    install_signal_handlers();
    std::panic::set_hook(Box::new(|info| {
        // A panic unwinds normally (the process goes on only where one is caught), so this
        // may allocate: the stack is symbolized here.
        let stack = std::backtrace::Backtrace::force_capture();
        tracing::error!("{START}");
        tracing::error!("Guru Meditation: {info}");
        tracing::error!("------ STACK TRACE ------");
        for line in stack.to_string().lines() {
            tracing::error!("{line}");
        }
        tracing::error!("{END}");
    }));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn install_signal_handlers() {
    // The first backtrace() loads the unwinder (dlopen, malloc): done now, not in a handler.
    let mut frames = [std::ptr::null_mut::<libc::c_void>(); 4];
    // SAFETY: the buffer holds the 4 frames asked for.
    unsafe { libc::backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int) };
    for sig in FATAL {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler has the
        // SA_SIGINFO signature and only does what a signal handler may (see the module doc).
        // SA_RESETHAND puts the default action back on entry, so raising the signal again at
        // the end ends the process as it would have ended; SA_ONSTACK uses the alternate stack
        // std sets up, so a stack overflow still gets its report.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!("cannot install the crash report for signal {sig}");
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn install_signal_handlers() {}

/// Turns the watchdog on (period in milliseconds) or off (0), as `watchdog-period` changes.
/// Off, SIGALRM is ignored (Redis's watchdogDisable).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn set_watchdog(period_ms: u64) {
    let was = WATCHDOG_MS.swap(period_ms, Ordering::Relaxed);
    if was == period_ms {
        return;
    }
    if period_ms == 0 {
        arm_alarm(0);
    }
    if (was == 0) != (period_ms == 0) {
        // SAFETY: as in install_signal_handlers. SA_RESTART: a read or write the alarm
        // interrupts goes on; what returns EINTR anyway (epoll_wait, nanosleep) is retried
        // where it is called.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                if period_ms == 0 { libc::SIG_IGN } else { on_alarm as *const () as libc::sighandler_t };
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!("cannot install the watchdog's SIGALRM handler");
            }
        }
    }
    if period_ms != 0 {
        arm_alarm(period_ms);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn set_watchdog(_period_ms: u64) {}

/// From the cron: the alarm goes off only if the next tick is more than a period late.
pub fn watchdog_tick() {
    let period = WATCHDOG_MS.load(Ordering::Relaxed);
    if period != 0 {
        arm_alarm(period);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arm_alarm(ms: u64) {
    let when = libc::timeval { tv_sec: (ms / 1000) as libc::time_t, tv_usec: (ms % 1000 * 1000) as libc::suseconds_t };
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: when };
    // SAFETY: setitimer reads a valid itimerval; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn arm_alarm(_ms: u64) {}

/// SIGALRM: the watchdog's (sent by the timer, or passed on to the main thread below), or one
/// a user sent to get the stack (Redis logs "Received SIGALRM" then).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn on_alarm(_sig: libc::c_int, info: *mut libc::siginfo_t, _ucontext: *mut libc::c_void) {
    // SAFETY: getpid and gettid are async-signal-safe.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    if pid != tid {
        // The event loop runs on the main thread, whose stack is the one wanted: the kernel
        // gave the timer's signal to another thread, so pass it on.
        // SAFETY: tgkill to this process's own main thread.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGALRM) };
        return;
    }
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; si_pid is filled
    // for SIGALRM (0 from the timer).
    let sender = unsafe { info.as_ref().map_or(0, |i| i.si_pid()) };
    let fd = LOG_FD.load(Ordering::Relaxed);
    if sender == 0 || sender == pid {
        log_line(fd, format_args!("--- WATCHDOG TIMER EXPIRED ---"));
    } else {
        log_line(fd, format_args!("Received SIGALRM"));
    }
    write_stack(fd);
    raw_line(fd, format_args!("--------\n"));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ucontext: *mut libc::c_void) {
    if ENABLED.load(Ordering::Relaxed) {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
        report_signal(sig, unsafe { info.as_ref() });
    }
    // SAFETY: raise is async-signal-safe. The signal is blocked until this handler returns,
    // then acts by default (the handler was reset on entry).
    unsafe { libc::raise(sig) };
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn report_signal(sig: libc::c_int, info: Option<&libc::siginfo_t>) {
    let fd = LOG_FD.load(Ordering::Relaxed);
    raw_line(fd, format_args!("\n\n{START}"));
    let code = info.map_or(0, |i| i.si_code);
    log_line(
        fd,
        format_args!(
            "Ember {} (redis_version 7.0.15) crashed by signal: {sig}, si_code: {code}",
            env!("CARGO_PKG_VERSION")
        ),
    );
    if let Some(i) = info {
        // SAFETY: the union's fields read are the ones the kernel fills for this signal and
        // code (an address for faults, a sender for kill/tkill/sigqueue).
        unsafe {
            if code == libc::SI_USER || code == libc::SI_TKILL || code == libc::SI_QUEUE {
                log_line(fd, format_args!("Killed by PID: {}, UID: {}", i.si_pid(), i.si_uid()));
            } else if code > 0 && sig != libc::SIGABRT {
                log_line(fd, format_args!("Accessing address: {:p}", i.si_addr()));
            }
        }
    }
    raw_line(fd, format_args!("\n------ STACK TRACE ------\n"));
    write_stack(fd);
    raw_line(fd, format_args!("\n------ END OF STACK TRACE ------\n\n{END}\n"));
}

/// The calling thread's stack, a frame a line.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn write_stack(fd: i32) {
    raw_line(fd, format_args!("Backtrace:"));
    let mut frames = [std::ptr::null_mut::<libc::c_void>(); FRAMES];
    // SAFETY: the buffer holds FRAMES entries; backtrace_symbols_fd reads the n filled ones
    // and writes them to fd without allocating.
    unsafe {
        let n = libc::backtrace(frames.as_mut_ptr(), FRAMES as libc::c_int);
        libc::backtrace_symbols_fd(frames.as_ptr(), n, fd);
    }
}

/// A line in a fixed buffer: formatting in a signal handler must not allocate. What does
/// not fit is cut.
struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line with the log's prefix (`pid:role timestamp # `).
fn log_line(fd: i32, msg: fmt::Arguments<'_>) {
    let mut line = Line { buf: [0; 1024], len: 0 };
    let _ = crate::logging::write_prefix(&mut line, '#');
    let _ = line.write_fmt(msg);
    let _ = line.write_char('\n');
    write_fd(fd, &line.buf[..line.len]);
}

/// Writes text as it is (Redis writes the report's frame lines raw too).
fn raw_line(fd: i32, msg: fmt::Arguments<'_>) {
    let mut line = Line { buf: [0; 1024], len: 0 };
    let _ = line.write_fmt(msg);
    let _ = line.write_char('\n');
    write_fd(fd, &line.buf[..line.len]);
}

fn write_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) reads `bytes.len()` bytes from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[(n as usize).min(bytes.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_not_overflowed() {
        let mut line = Line { buf: [0; 1024], len: 0 };
        let long = "x".repeat(3000);
        let _ = write!(line, "{long}");
        assert_eq!(line.len, 1024);
    }
}
