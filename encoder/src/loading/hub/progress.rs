//! Reporting a download's progress: a terminal bar, or nothing.

/// Told about each file of a download as its bytes arrive.
pub trait Progress {
    /// A file of `size` bytes starts, with `done` of them already on disk (a resumed download).
    fn start(&mut self, file: &str, size: u64, done: u64);
    /// `bytes` more arrived.
    fn advance(&mut self, bytes: u64);
    /// The file is complete (or failed).
    fn finish(&mut self);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _file: &str, _size: u64, _done: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

/// A bar per file on stderr; draws nothing when stderr is not a terminal (logs and services
/// see the `tracing` lines of each file instead).
#[derive(Default)]
pub struct TerminalProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress for TerminalProgress {
    fn start(&mut self, file: &str, size: u64, done: u64) {
        let bar = indicatif::ProgressBar::new(size).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg:30!} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("static progress template is valid: this is a bug"),
        );
        bar.set_message(file.to_string());
        bar.set_position(done);
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
