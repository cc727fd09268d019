//! QEMU's human monitor over a Unix socket (`QemuOptions::monitor`): type
//! text on the guest's PS/2 keyboard (`sendkey`) and take screendumps of
//! its display (PPM), for the screen and keyboard tests.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected monitor.
pub struct Monitor {
    stream: UnixStream,
}

/// QEMU's prompt, which ends the answer to every command.
const PROMPT: &[u8] = b"(qemu) ";

impl Monitor {
    /// Connects to the socket at `path` (waiting up to `timeout` for QEMU
    /// to create it) and reads the greeting.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Monitor> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e).with_context(|| format!("connecting to the QEMU monitor at {}", path.display())),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut m = Monitor { stream };
        m.read_to_prompt()?;
        Ok(m)
    }

    fn read_to_prompt(&mut self) -> Result<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !out.ends_with(PROMPT) {
            let n = self.stream.read(&mut buf).context("reading the QEMU monitor")?;
            if n == 0 {
                bail!("the QEMU monitor closed (QEMU exited?)");
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs one monitor command; returns what QEMU printed (with the
    /// echo of the command and terminal control sequences).
    pub fn command(&mut self, cmd: &str) -> Result<String> {
        self.stream.write_all(format!("{cmd}\n").as_bytes())?;
        self.read_to_prompt()
    }

    /// Types `text` on the guest keyboard, one `sendkey` per character
    /// (`\n` is Enter, `\u{8}` Backspace); see [`key_name`] for the
    /// characters it knows.
    pub fn type_text(&mut self, text: &str) -> Result<()> {
        for c in text.chars() {
            let key = key_name(c).ok_or_else(|| anyhow!("no QEMU key for {c:?}"))?;
            self.command(&format!("sendkey {key}"))?;
            // Each press and release goes through the guest's polled i8042
            // buffer, which holds one byte: give the guest time to read it.
            std::thread::sleep(Duration::from_millis(60));
        }
        Ok(())
    }

    /// The guest's display now, as 0x00RRGGBB pixels (written to `path`).
    pub fn screendump(&mut self, path: &Path) -> Result<Image> {
        let _ = std::fs::remove_file(path);
        let out = self.command(&format!("screendump {}", path.display()))?;
        let bytes = std::fs::read(path).with_context(|| format!("screendump wrote no {} (monitor said: {out})", path.display()))?;
        Image::from_ppm(&bytes)
    }
}

/// The `sendkey` name of `c` on a US keyboard (`shift-` for shifted
/// characters), or `None`.
pub fn key_name(c: char) -> Option<String> {
    const PLAIN: &[(char, &str)] = &[
        (' ', "spc"), ('\n', "ret"), ('\u{8}', "backspace"), ('-', "minus"), ('=', "equal"), ('[', "bracket_left"), (']', "bracket_right"),
        (';', "semicolon"), ('\'', "apostrophe"), ('`', "grave_accent"), ('\\', "backslash"), (',', "comma"), ('.', "dot"), ('/', "slash"),
    ];
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"), ('@', "2"), ('#', "3"), ('$', "4"), ('%', "5"), ('^', "6"), ('&', "7"), ('*', "8"), ('(', "9"), (')', "0"),
        ('_', "minus"), ('+', "equal"), ('{', "bracket_left"), ('}', "bracket_right"), (':', "semicolon"), ('"', "apostrophe"),
        ('~', "grave_accent"), ('|', "backslash"), ('<', "comma"), ('>', "dot"), ('?', "slash"),
    ];
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return Some(c.to_string());
    }
    if c.is_ascii_uppercase() {
        return Some(format!("shift-{}", c.to_ascii_lowercase()));
    }
    if let Some((_, k)) = PLAIN.iter().find(|(p, _)| *p == c) {
        return Some(k.to_string());
    }
    SHIFTED.iter().find(|(p, _)| *p == c).map(|(_, k)| format!("shift-{k}"))
}

/// A screendump: `width` x `height` pixels, 0x00RRGGBB, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u32>,
}

impl Image {
    /// Parses a binary PPM (P6, maxval 255), what `screendump` writes.
    pub fn from_ppm(bytes: &[u8]) -> Result<Image> {
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'#' {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if start == i {
                bail!("PPM header ends early");
            }
            fields.push(std::str::from_utf8(&bytes[start..i])?.to_string());
        }
        i += 1; // the single whitespace byte before the pixels
        if fields[0] != "P6" || fields[3] != "255" {
            bail!("not a P6 PPM with maxval 255 (header {fields:?})");
        }
        let (width, height): (usize, usize) = (fields[1].parse()?, fields[2].parse()?);
        let data = bytes.get(i..).unwrap_or_default();
        if data.len() < width * height * 3 {
            bail!("PPM of {width}x{height} has {} pixel bytes, expected {}", data.len(), width * height * 3);
        }
        let pixels = data.chunks_exact(3).take(width * height).map(|p| (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32).collect();
        Ok(Image { width, height, pixels })
    }

    /// Pixel lines `[y, y + lines)`.
    pub fn lines(&self, y: usize, lines: usize) -> &[u32] {
        &self.pixels[y * self.width..(y + lines) * self.width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_for_a_prompt() {
        let keys: Vec<String> = "Hi, 2+2?\n/quit\u{8}".chars().map(|c| key_name(c).unwrap()).collect();
        assert_eq!(keys, ["shift-h", "i", "comma", "spc", "2", "shift-equal", "2", "shift-slash", "ret", "slash", "q", "u", "i", "t", "backspace"]);
        assert_eq!(key_name('é'), None);
    }

    #[test]
    fn parses_ppm() {
        let mut ppm = b"P6\n# a comment\n2 1\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 0xFF, 0, 0x80]);
        let img = Image::from_ppm(&ppm).unwrap();
        assert_eq!((img.width, img.height, img.pixels.clone()), (2, 1, vec![0x010203, 0xFF0080]));
        assert!(Image::from_ppm(b"P6\n2 2\n255\n\x00").is_err(), "short pixel data");
        assert!(Image::from_ppm(b"P5\n1 1\n255\n\x00").is_err(), "grey PPM");
    }
}
