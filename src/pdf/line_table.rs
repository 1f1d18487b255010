//! The line-item table: description, quantity, unit price, tax rate and net
//! amount, every cell wrapped to its column. A row that does not fit moves
//! to the next page, whose table opens with the header row again; a row
//! taller than a whole page is split between lines. The cells arrive
//! formatted: which figures to show is `layout`'s business.

use super::canvas::Rgb;
use super::flow::{Flow, CONTENT_WIDTH, LEFT};
use super::fonts::Weight;

const SIZE: f32 = 9.0;
const LINE: f32 = 12.0;
const PAD_X: f32 = 4.0;
const PAD_Y: f32 = 4.0;
/// Baseline of a line below the top of its line box.
const BASELINE: f32 = 9.0;

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

struct Column {
    title: &'static str,
    width: f32,
    align: Align,
}

const QUANTITY_WIDTH: f32 = 52.0;
const UNIT_PRICE_WIDTH: f32 = 92.0;
const TAX_WIDTH: f32 = 48.0;
/// Width of the amount column, which the totals below the table line up with.
pub const AMOUNT_WIDTH: f32 = 96.0;
const DESCRIPTION_WIDTH: f32 =
    CONTENT_WIDTH - QUANTITY_WIDTH - UNIT_PRICE_WIDTH - TAX_WIDTH - AMOUNT_WIDTH;

const COLUMNS: [Column; 5] = [
    Column {
        title: "Description",
        width: DESCRIPTION_WIDTH,
        align: Align::Left,
    },
    Column {
        title: "Quantity",
        width: QUANTITY_WIDTH,
        align: Align::Right,
    },
    Column {
        title: "Unit price",
        width: UNIT_PRICE_WIDTH,
        align: Align::Right,
    },
    Column {
        title: "Tax",
        width: TAX_WIDTH,
        align: Align::Right,
    },
    Column {
        title: "Amount",
        width: AMOUNT_WIDTH,
        align: Align::Right,
    },
];

/// Padding inside a cell, for figures that line up with the table's.
pub const CELL_PADDING: f32 = PAD_X;

/// One line item's cells, formatted: description, quantity, unit price,
/// tax rate, net amount.
pub type Row = [String; 5];

/// Draws the table from the flow's current position; the flow ends below it.
pub fn draw(flow: &mut Flow<'_>, rows: &[Row], brand: Rgb) {
    let wrapped: Vec<Vec<Vec<String>>> = rows.iter().map(|row| wrap_cells(flow, row)).collect();
    // Lines of a row that fit on a page holding only the running head and
    // the table header: a row with more is split, one with fewer moves.
    let page_capacity = lines_fitting(flow.room_on_a_new_page() - header_height()).max(1);
    let first_row_lines = wrapped.first().map_or(1, |cells| line_count(cells));
    flow.keep(header_height() + row_height(first_row_lines.min(page_capacity)));
    draw_header(flow, brand);
    // True right after a page break: the page holds no row yet.
    let mut fresh_page = false;
    for cells in &wrapped {
        let lines = line_count(cells);
        let mut from = 0;
        while from < lines {
            let fitting = lines_fitting(flow.room());
            let remaining = lines - from;
            if remaining <= fitting {
                draw_lines(flow, cells, from, lines);
                fresh_page = false;
                break;
            }
            if fresh_page || remaining > page_capacity {
                // Taller than a page: split, at least one line per page.
                let take = if fresh_page { fitting.max(1) } else { fitting };
                if take > 0 {
                    draw_lines(flow, cells, from, from + take);
                    from += take;
                }
            }
            flow.page_break();
            draw_header(flow, brand);
            fresh_page = true;
        }
    }
}

fn line_count(cells: &[Vec<String>]) -> usize {
    cells.iter().map(Vec::len).max().unwrap_or(1).max(1)
}

fn row_height(lines: usize) -> f32 {
    LINE * lines as f32 + PAD_Y * 2.0
}

/// How many lines of a row fit in `room` points.
fn lines_fitting(room: f32) -> usize {
    ((room - PAD_Y * 2.0) / LINE).floor().max(0.0) as usize
}

fn header_height() -> f32 {
    LINE + PAD_Y * 2.0
}

fn draw_header(flow: &mut Flow<'_>, brand: Rgb) {
    let top = flow.y();
    let height = header_height();
    flow.fill(top, height, Rgb::SHADE);
    let mut x = LEFT;
    for column in &COLUMNS {
        let baseline = top + PAD_Y + BASELINE;
        let title = column.title.to_string();
        match column.align {
            Align::Left => flow.text(x + PAD_X, baseline, SIZE, Weight::Bold, Rgb::TEXT, title),
            Align::Right => flow.text_right(
                x + column.width - PAD_X,
                baseline,
                SIZE,
                Weight::Bold,
                Rgb::TEXT,
                title,
            ),
        }
        x += column.width;
    }
    flow.rule(top + height, 1.0, brand);
    flow.advance(height);
}

fn wrap_cells(flow: &Flow<'_>, row: &Row) -> Vec<Vec<String>> {
    COLUMNS
        .iter()
        .zip(row)
        .map(|(column, text)| flow.wrap(text, Weight::Regular, SIZE, column.width - PAD_X * 2.0))
        .collect()
}

/// Draws lines `from..to` of a row's cells as one table row.
fn draw_lines(flow: &mut Flow<'_>, cells: &[Vec<String>], from: usize, to: usize) {
    let top = flow.y();
    let mut x = LEFT;
    for (column, lines) in COLUMNS.iter().zip(cells) {
        let end = to.min(lines.len());
        for (i, line) in lines.iter().enumerate().take(end).skip(from) {
            let baseline = top + PAD_Y + BASELINE + LINE * (i - from) as f32;
            match column.align {
                Align::Left => flow.text(
                    x + PAD_X,
                    baseline,
                    SIZE,
                    Weight::Regular,
                    Rgb::TEXT,
                    line.clone(),
                ),
                Align::Right => flow.text_right(
                    x + column.width - PAD_X,
                    baseline,
                    SIZE,
                    Weight::Regular,
                    Rgb::TEXT,
                    line.clone(),
                ),
            }
        }
        x += column.width;
    }
    let height = row_height(to - from);
    flow.rule(top + height, 0.5, Rgb::HAIRLINE);
    flow.advance(height);
}
