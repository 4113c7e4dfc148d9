//! The tables of the command output (`zone list`, `migrate list|show`,
//! `mail queue`, `token list`, `check`, `flush`…): one layout on a
//! terminal, in a pipe, in a log file and through `--server`.
//!
//! ```text
//!  Table::new(["ZONE", "SERIAL", …]) ──row(…)──▶ comfy-table (NOTHING preset) ──render(colour)──▶ lines
//!                                                 no borders, columns two spaces apart,
//!                                                 nothing left of the first, no trailing blanks
//! ```
//!
//! Plain on purpose, even on a terminal: no box drawing, so `grep` finds
//! a row with every column of it and `awk '{print $2}'` takes a column
//! (a column whose words hold spaces is the last one, or holds no spaces
//! in a row that counts). Colour is only ever added to whole lines after
//! the layout (bold header, red alarm rows), so widths never count escape
//! codes, and only when the caller says the output is a terminal with
//! `NO_COLOR` unset ([`crate::colour_on`]).

use comfy_table::{presets, CellAlignment, ContentArrangement};

/// The space between two columns.
const GAP: u16 = 2;

/// How a row reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// As it is.
    Plain,
    /// Something failed or needs the operator (red on a colour terminal).
    Alarm,
}

/// A table being filled in, printed by [`Table::render`].
pub struct Table {
    /// The layout engine.
    table: comfy_table::Table,
    /// True when the first line is a header.
    header: bool,
    /// How each row reads, in order.
    tones: Vec<Tone>,
    /// Spaces before every line.
    indent: usize,
    /// The columns aligned to the right.
    right: Vec<usize>,
}

impl Table {
    /// A table whose first line names the columns.
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        let mut table = Table::bare();
        table.table.set_header(header.to_vec());
        table.header = true;
        table
    }

    /// A table without a header line.
    pub fn bare() -> Table {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(presets::NOTHING)
            // Never wrapped or cut to a width: a pipe has none, and a
            // wrapped row is no longer one line for grep.
            .set_content_arrangement(ContentArrangement::Disabled);
        Table {
            table,
            header: false,
            tones: Vec::new(),
            indent: 0,
            right: Vec::new(),
        }
    }

    /// Every line starts with `spaces` spaces (a table under a heading).
    pub fn indent(mut self, spaces: usize) -> Table {
        self.indent = spaces;
        self
    }

    /// Aligns these columns (counted from 0) to the right: numbers.
    pub fn right(mut self, columns: &[usize]) -> Table {
        self.right.extend_from_slice(columns);
        self
    }

    /// Adds a row. A cell with line breaks spans as many lines, the other
    /// cells of its row blank below their first line.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.toned(Tone::Plain, cells);
    }

    /// Adds a row that reads as `tone`.
    pub fn toned<I, S>(&mut self, tone: Tone, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|cell| printable(cell.into()))
            .collect();
        self.table.add_row(cells);
        self.tones.push(tone);
    }

    /// Prints the table on standard output, in colour when that is a
    /// terminal and `NO_COLOR` is unset.
    pub fn print(&mut self) {
        print!(
            "{}",
            self.render(crate::commands::common::colour_on(&std::io::stdout()))
        );
    }

    /// True when no row was added.
    fn is_empty(&self) -> bool {
        self.tones.is_empty()
    }

    /// The table as text, one `\n` after every line; with `colour`, the
    /// header in bold and alarm rows in red.
    pub fn render(&mut self, colour: bool) -> String {
        if self.is_empty() && !self.header {
            return String::new();
        }
        let count = self.table.column_count();
        for (index, column) in self.table.column_iter_mut().enumerate() {
            let gap = if index + 1 == count { 0 } else { GAP };
            column.set_padding((0, gap));
            if self.right.contains(&index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        // Which printed line belongs to which row: a row is as many lines
        // as its tallest cell.
        let mut heights: Vec<(usize, Option<Tone>)> = Vec::new();
        if let Some(header) = self.table.header() {
            heights.push((height(header), None));
        }
        for (row, tone) in self.table.row_iter().zip(&self.tones) {
            heights.push((height(row), Some(*tone)));
        }
        let mut tones = heights
            .into_iter()
            .flat_map(|(lines, tone)| std::iter::repeat_n(tone, lines.max(1)));
        let indent = " ".repeat(self.indent);
        let mut out = String::new();
        for line in self.table.lines() {
            let line = line.trim_end();
            let tone = tones.next().flatten();
            out.push_str(&indent);
            match (colour, tone) {
                (true, None) => out.push_str(&format!("\x1b[1m{line}\x1b[0m")),
                (true, Some(Tone::Alarm)) => out.push_str(&format!("\x1b[31m{line}\x1b[0m")),
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }
}

/// A cell's text with nothing in it that a terminal would act on: a tab
/// becomes a space and any other control character (a carriage return, an
/// escape sequence from a remote server's reply) U+FFFD; line breaks stay,
/// they make the cell taller.
fn printable(text: String) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// How many lines a row takes: its tallest cell's.
fn height(row: &comfy_table::Row) -> usize {
    row.cell_iter()
        .map(|cell| cell.content().split('\n').count())
        .max()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_two_spaces_apart_without_borders_or_trailing_blanks() {
        let mut table = Table::new(["ZONE", "SERIAL", "WHAT"]).right(&[1]);
        table.row(["example.com.", "7", "a long last column"]);
        table.row(["a.test.", "2024010101", ""]);
        assert_eq!(
            table.render(false),
            "ZONE              SERIAL  WHAT\n\
             example.com.           7  a long last column\n\
             a.test.       2024010101\n"
        );
    }

    #[test]
    fn a_cell_of_many_lines_keeps_its_row_together_and_its_tone() {
        let mut table = Table::bare().indent(2);
        table.row(["done", "lower ttls"]);
        table.toned(Tone::Alarm, ["FAIL", "switch\nthe servers disagree"]);
        assert_eq!(
            table.render(false),
            "  done  lower ttls\n  FAIL  switch\n        the servers disagree\n"
        );
        let coloured = table.render(true);
        assert_eq!(
            coloured.lines().collect::<Vec<_>>(),
            [
                "  done  lower ttls",
                "  \x1b[31mFAIL  switch\x1b[0m",
                "  \x1b[31m      the servers disagree\x1b[0m",
            ]
        );
    }

    #[test]
    fn a_cell_cannot_move_the_cursor_or_colour_the_terminal() {
        let mut table = Table::bare();
        table.row(["421\tbusy\r\x1b[2Jgone"]);
        assert_eq!(table.render(false), "421 busy\u{FFFD}\u{FFFD}[2Jgone\n");
    }

    #[test]
    fn an_empty_table_without_a_header_is_no_text() {
        assert_eq!(Table::bare().indent(2).render(true), "");
    }

    #[test]
    fn colour_is_only_what_the_caller_asks_for() {
        let mut table = Table::new(["ID", "STATE"]);
        table.row(["1", "done"]);
        assert!(!table.render(false).contains('\x1b'));
        assert!(table.render(true).starts_with("\x1b[1mID  STATE\x1b[0m\n"));
    }
}
