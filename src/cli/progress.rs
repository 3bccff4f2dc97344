//! Progress on the terminal: a bar while training, and one line per row of metrics.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use lth_train::{MetricsRow, Progress};

/// A progress bar over training steps; rows of metrics are printed above it (or as plain lines
/// when standard error is not a terminal, as in CI logs).
#[derive(Debug)]
pub struct Bar {
    quiet: bool,
    bar: Option<ProgressBar>,
    resumed: Option<u64>,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        Bar {
            quiet,
            bar: None,
            resumed: None,
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(text),
            _ if !self.quiet => eprintln!("{text}"),
            _ => {}
        }
    }
}

impl Progress for Bar {
    fn unit(&mut self, label: &str) {
        self.line(format!("training {label}"));
    }

    fn resumed(&mut self, step: u64) {
        self.resumed = Some(step);
    }

    fn begin(&mut self, from: u64, to: u64) {
        let resumed = self.resumed.take();
        if self.quiet || !std::io::stderr().is_terminal() {
            // Said even when quiet: a resume is an event worth a line in any log.
            if let Some(step) = resumed {
                eprintln!("resuming an interrupted run at step {step} of {to}");
            }
            return;
        }
        let bar = ProgressBar::new(to).with_position(from);
        #[allow(
            clippy::expect_used,
            reason = "a constant template, checked by every test run"
        )]
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} {bar:30} {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
            )
            .expect("a valid template"),
        );
        if let Some(step) = resumed {
            bar.println(format!(
                "resuming an interrupted run at step {step} of {to}"
            ));
        }
        self.bar = Some(bar);
    }

    fn step(&mut self, step: u64) {
        if let Some(b) = &self.bar {
            b.set_position(step);
        }
    }

    fn row(&mut self, r: &MetricsRow) {
        let mut text = format!(
            "step {:>7} (epoch {:>6.2}): train loss {}, test loss {:.4}, test accuracy {:.2}%",
            r.step,
            r.epoch,
            r.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
            r.test_loss,
            100.0 * r.test_accuracy
        );
        if let (Some(l), Some(a)) = (r.val_loss, r.val_accuracy) {
            text.push_str(&format!(
                ", val loss {l:.4}, val accuracy {:.2}%",
                100.0 * a
            ));
        }
        self.line(text);
        if let Some(b) = &self.bar {
            b.set_message(format!("test {:.2}%", 100.0 * r.test_accuracy));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
