//! `oom-score-adj`: the Linux OOM killer's score for this process, from
//! `oom-score-adj-values` by role (master or replica), as Redis's setOOMScoreAdj sets it.
//!
//! `yes`/`relative` adds the value to the score the process had before Ember first changed
//! it, `absolute` writes the value itself; `no` puts that first score back. Ember has no
//! background child process: the third value (a child's) is accepted and checked, never
//! used (its snapshots run on a thread, and the score is the whole process's).

use std::io;

const PATH: &str = "/proc/self/oom_score_adj";

/// What Ember changed, so `no` can undo it.
#[derive(Default)]
pub struct OomScore {
    /// The score before Ember first set one, while Ember's is in force.
    base: Option<i32>,
}

impl OomScore {
    /// Applies `mode` ("no", "yes", "absolute") with `values` for this process's role.
    pub fn apply(&mut self, mode: &str, values: [i32; 3], replica: bool) -> io::Result<()> {
        let score = if mode == "no" {
            match self.base.take() {
                Some(base) => base,
                None => return Ok(()),
            }
        } else {
            let base = match self.base {
                Some(b) => b,
                None => {
                    let b = read()?;
                    self.base = Some(b);
                    b
                }
            };
            let v = values[usize::from(replica)];
            if mode == "absolute" { v } else { v.saturating_add(base) }.clamp(-1000, 1000)
        };
        std::fs::write(PATH, format!("{score}\n"))
    }
}

fn read() -> io::Result<i32> {
    let text = std::fs::read_to_string(PATH)?;
    text.trim().parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "oom_score_adj is not a number"))
}
