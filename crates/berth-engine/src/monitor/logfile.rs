//! The container's log in Docker's json-file format: one JSON object per line of output,
//! `{"log":"line\n","stream":"stdout","time":"2026-...Z"}`, rotated at `max-size` keeping
//! `max-file` files (`<id>-json.log`, `.1`, `.2`, ...). Partial lines wait for their end, up to
//! 16 KiB, as Docker's do.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const PARTIAL_MAX: usize = 16 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl Entry {
    /// The entry as Docker's `logs` gives it: with `details`, its attributes first and a space
    /// (berth's json-file records none, as Docker's records none without the `labels` and `env`
    /// log options, which berth refuses: a bare space); with `timestamps`, its time and a space
    /// before that.
    pub fn shown(&self, timestamps: bool, details: bool) -> String {
        let detailed = if details {
            format!(" {}", self.log)
        } else {
            self.log.clone()
        };
        if timestamps {
            format!("{} {detailed}", self.time)
        } else {
            detailed
        }
    }
}

pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl LogFile {
    /// `None` for `--log-driver none`.
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes output of stream 0 (stdout) or 1 (stderr); writes every complete line.
    pub fn write(&mut self, stream: usize, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            let mut whole = std::mem::take(&mut self.partial[stream]);
            whole.extend_from_slice(line);
            self.entry(stream, &whole)?;
            rest = tail;
        }
        self.partial[stream].extend_from_slice(rest);
        if self.partial[stream].len() >= PARTIAL_MAX {
            let whole = std::mem::take(&mut self.partial[stream]);
            self.entry(stream, &whole)?;
        }
        Ok(())
    }

    /// Writes what is left of unfinished lines (at the container's exit).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in 0..2 {
            let whole = std::mem::take(&mut self.partial[stream]);
            if !whole.is_empty() {
                self.entry(stream, &whole)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, stream: usize, line: &[u8]) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: crate::records::now(),
        };
        let mut text = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        text.push(b'\n');
        if self
            .max_size
            .is_some_and(|max| self.size + text.len() as u64 > max && self.size > 0)
        {
            self.rotate()?;
        }
        if let Some(file) = &mut self.file {
            file.write_all(&text)?;
        }
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.max_files <= 1 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
            fs::remove_file(numbered(self.max_files - 1)).or_else(ignore_missing)?;
            for n in (1..self.max_files - 1).rev() {
                fs::rename(numbered(n), numbered(n + 1)).or_else(ignore_missing)?;
            }
            fs::rename(&self.path, numbered(1)).or_else(ignore_missing)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Docker's size syntax for `max-size`: "10m", "1g", "500k", plain bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// All log files of a container, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            out.push(p);
        }
    }
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<Entry> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_are_entries_and_partials_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogFile::open(&path, None, 1).unwrap();
        log.write(0, b"one\ntw").unwrap();
        log.write(1, b"err\n").unwrap();
        log.write(0, b"o\nthree").unwrap();
        log.flush().unwrap();
        let got: Vec<_> = lines(&path)
            .into_iter()
            .map(|e| (e.stream, e.log))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "three")
            ]
            .map(|(s, l)| (s.to_string(), l.to_string()))
        );
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogFile::open(&path, Some(200), 3).unwrap();
        for i in 0..40 {
            log.write(0, format!("line {i}\n").as_bytes()).unwrap();
        }
        let all = files(&path);
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(fs::metadata(&path).unwrap().len() <= 200);
        let last = lines(&path);
        assert_eq!(last.last().unwrap().log, "line 39\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("300"), Some(300));
        assert_eq!(parse_size("x"), None);
    }
}
