//! Aligned text tables for the terminal, and the one-line form of text a server sent.

/// One column: its title, the widest a cell may be (longer ones end in `…`), and whether
/// its cells align right (numbers).
pub struct Column {
    pub title: &'static str,
    pub max_width: usize,
    pub right: bool,
}

/// The table as lines: titles, then one line per row, columns two spaces apart. Widths
/// count characters, so wide scripts may not line up, but nothing is ever cut mid-character.
pub fn render(columns: &[Column], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .zip(row)
                .map(|(column, text)| printable(text, column.max_width))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([column.title.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let titles: Vec<String> = columns.iter().map(|c| c.title.to_string()).collect();
    for row in std::iter::once(&titles).chain(&cells) {
        let mut line = String::new();
        for (i, (column, cell)) in columns.iter().zip(row).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if column.right {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` safe to print on one line of a terminal, at most `max_chars` characters long
/// (the last one `…` when it was cut): line breaks and tabs become spaces, and other
/// control characters (escape sequences could recolour or rewrite the terminal) become `?`.
pub fn printable(text: &str, max_chars: usize) -> String {
    let cut = text.chars().count() > max_chars;
    let keep = if cut {
        max_chars.saturating_sub(1)
    } else {
        max_chars
    };
    let mut out: String = text
        .chars()
        .take(keep)
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> [Column; 3] {
        [
            Column {
                title: "NAME",
                max_width: 8,
                right: false,
            },
            Column {
                title: "TOOLS",
                max_width: 20,
                right: false,
            },
            Column {
                title: "TOKENS",
                max_width: 12,
                right: true,
            },
        ]
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let table = render(
            &columns(),
            &[row(&["helper", "time.*", "1234"]), row(&["a", "", "7"])],
        );
        assert_eq!(
            table,
            "NAME    TOOLS   TOKENS\n\
             helper  time.*    1234\n\
             a                    7\n"
        );
    }

    #[test]
    fn long_cells_are_cut_with_an_ellipsis() {
        let table = render(&columns(), &[row(&["a-very-long-name", "x", "1"])]);
        assert_eq!(table.lines().nth(1), Some("a-very-…  x           1"));
        // Exactly the width is not cut.
        assert_eq!(printable("12345678", 8), "12345678");
        assert_eq!(printable("123456789", 8), "1234567…");
        assert_eq!(printable("日本語のテキスト", 4), "日本語…");
    }

    #[test]
    fn an_empty_table_is_its_titles() {
        assert_eq!(render(&columns(), &[]), "NAME  TOOLS  TOKENS\n");
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(printable("a\nb\tc\x1b[2Jd\x07", 100), "a b c?[2Jd?");
    }
}
