//! The live progress display: a status line that redraws itself on a terminal (indicatif),
//! plain periodic lines otherwise (CI logs, pipes).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::record::Live;

pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: std::sync::Mutex<Duration>,
}

/// Every this long a plain line, when not on a terminal.
const EVERY: Duration = Duration::from_secs(5);

fn line(live: &Live, elapsed: Duration) -> String {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let left = live.seats_left.load(Ordering::Relaxed);
    format!(
        "{:>5.0}s  waiting {}  shopping {}  holding {}  paid {}  done {}  seats left {}  errors {}",
        elapsed.as_secs_f64(),
        n(&live.waiting),
        n(&live.shopping),
        n(&live.holding),
        n(&live.paid),
        n(&live.done),
        if left < 0 {
            "?".to_owned()
        } else {
            left.to_string()
        },
        n(&live.errors),
    )
}

impl Progress {
    pub fn new(fans: u64, _seats: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(fans);
            bar.set_style(
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} fans done  {msg}")
                    .expect("a valid template"),
            );
            bar
        });
        Self {
            bar,
            last_line: std::sync::Mutex::new(Duration::ZERO),
        }
    }

    pub fn show(&self, live: &Live, elapsed: Duration) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(live.done.load(Ordering::Relaxed));
                bar.set_message(line(live, elapsed));
            }
            None => {
                let mut last = self.last_line.lock().expect("progress lock");
                if elapsed >= *last + EVERY {
                    *last = elapsed;
                    eprintln!("[opening-night] {}", line(live, elapsed));
                }
            }
        }
    }

    pub fn finish(&self, live: &Live, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("[opening-night] ended: {}", line(live, elapsed));
    }
}
