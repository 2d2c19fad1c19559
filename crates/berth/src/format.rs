//! Docker's ways of printing: sizes (`4.26MB`), ages (`2 weeks ago`), aligned tables, and lists
//! rendered with a `--format` template.

use std::time::SystemTime;

use crate::template::{Template, TemplateError};

/// go-units' HumanDuration, as in `docker images`' CREATED column.
pub use berth_engine::ps::human_duration;

/// go-units' HumanSizeWithPrecision(size, 3): decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    human_size_with(bytes, 3)
}

/// go-units' HumanSizeWithPrecision: decimal units, `precision` significant digits (`system
/// df` prints four, as HumanSize does).
pub fn human_size_with(bytes: u64, precision: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < units.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let whole_digits = if size >= 100.0 {
        3
    } else if size >= 10.0 {
        2
    } else {
        1
    };
    let digits = precision.saturating_sub(whole_digits);
    let text = format!("{size:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// go-units' BytesSize: binary units, four significant digits (`1.465MiB`), as MEM USAGE.
pub fn bytes_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < units.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    let int_digits = format!("{}", size.trunc() as u64).len();
    let decimals = 4usize.saturating_sub(int_digits);
    let text = format!("{size:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// `N units ago`, or `N/A` for an unknown time.
pub fn ago(time: Option<SystemTime>) -> String {
    match time.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(d) => format!("{} ago", human_duration(d)),
        None => "N/A".into(),
    }
}

/// Prints rows aligned as Docker's tables are (see [`tabwrite`]).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut text = header.join("\t");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    print_raw(&tabwrite(&text));
}

/// Writes `text` to stdout as is, stopping quietly when the reader has gone.
pub fn print_raw(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Go's `time.Time` string in UTC, as Docker's CreatedAt fields print it.
pub fn go_time(time: SystemTime) -> String {
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    format!(
        "{} +0000 UTC",
        rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// Renders `items` with a `--format` template, one per line; a `table` template gets its
/// header row (fields titled by `titles`) and aligned columns.
pub fn render_list(
    template: &Template,
    titles: &[(&str, &str)],
    items: &[serde_json::Value],
) -> Result<String, TemplateError> {
    let mut text = String::new();
    if template.is_table() {
        text.push_str(&template.header(titles)?);
        text.push('\n');
    }
    for item in items {
        text.push_str(&template.render(item)?);
        text.push('\n');
    }
    Ok(if template.is_table() {
        tabwrite(&text)
    } else {
        text
    })
}

/// Go's `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`, which Docker's tables use: each
/// tab-terminated cell is padded to its column block's widest cell plus 3, at least 10 wide;
/// the text after a line's last tab is not aligned.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_inclusive('\n')
        .map(|l| l.strip_suffix('\n').unwrap_or(l).split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(&lines, &mut widths, 0, lines.len(), &mut out);
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Go's tabwriter.format: a column's width is set per block of consecutive lines that have
/// a terminated cell in that column.
fn format_block(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = 10;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + 3);
            this += 1;
        }
        widths.push(width);
        format_block(lines, widths, line0, this, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize, out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                let pad = widths
                    .get(j)
                    .map_or(0, |w| w.saturating_sub(cell.chars().count()));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

/// Prints `data` through the `--format` template `format`, or as `text` makes it without one;
/// the template is parsed first, so a bad one fails before anything is printed. For the
/// commands that show one object (`version`, `info`).
pub fn print_formatted(
    format: Option<&str>,
    data: &serde_json::Value,
    text: impl FnOnce(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    match format {
        Some(f) => {
            let t = crate::template::parse(f).with_context(|| format!("--format {f:?}"))?;
            let line = t.render(data).with_context(|| format!("--format {f:?}"))?;
            print_raw(&(line + "\n"));
        }
        None => print_raw(&text(data)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(1_200_000_000), "1.2GB");
        assert_eq!(human_size(999), "999B");
    }

    #[test]
    fn tables_align_like_go_tabwriter() {
        let text = "REPOSITORY\tTAG\tSIZE\nbusybox\tlatest\t4.26MB\nx\ty\n";
        assert_eq!(
            tabwrite(text),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\nx            y\n"
        );
        // A line without the second column ends that column's block.
        let text = "a\tb\tc\nlonger-cell-here\n1\t22\t3\n";
        assert_eq!(
            tabwrite(text),
            "a         b         c\nlonger-cell-here\n1         22        3\n"
        );
    }
}
