//! Page flow: the page being filled, how much room is left on it, breaking
//! to a new page that opens with a running head, and the footer with
//! "n / m" that every page gets once the page count is known.
//!
//! What an invoice shows, and in what order, is `layout`; the line-item
//! table (which repeats its header after a break) is `line_table`.

use super::canvas::{Mark, Page, Rgb, PAGE_HEIGHT, PAGE_WIDTH};
use super::fonts::{Typefaces, Weight};
use super::wrap::wrap;

pub const MARGIN: f32 = 50.0;
pub const LEFT: f32 = MARGIN;
pub const RIGHT: f32 = PAGE_WIDTH - MARGIN;
pub const CONTENT_WIDTH: f32 = RIGHT - LEFT;

const FOOTER_SIZE: f32 = 7.5;
const FOOTER_LINE: f32 = 10.0;
/// A footer longer than this is cut (with "…") so it cannot eat the page.
const FOOTER_MAX_LINES: usize = 4;
/// Room kept right of the footer text for "n / m".
const PAGE_NUMBER_WIDTH: f32 = 60.0;
const FOOTER_BOTTOM: f32 = PAGE_HEIGHT - 36.0;

/// What opens every page after the first: who and which document.
pub struct RunningHead {
    pub company: String,
    pub title: String,
    pub brand: Rgb,
}

/// The pages laid out so far and the free space on the last one.
pub struct Flow<'a> {
    faces: &'a Typefaces,
    head: RunningHead,
    footer: Vec<String>,
    pages: Vec<Page>,
    /// Top of the free space on the current page, from the top edge.
    y: f32,
    /// Lowest point content may reach on any page.
    bottom: f32,
}

impl<'a> Flow<'a> {
    /// Starts the first page (which has no running head: the caller draws
    /// the document's own heading there). `footer` is the branding footer.
    pub fn new(faces: &'a Typefaces, head: RunningHead, footer: Option<&str>) -> Self {
        let mut footer_lines = footer
            .map(|f| {
                wrap(
                    f,
                    faces.get(Weight::Regular),
                    FOOTER_SIZE,
                    CONTENT_WIDTH - PAGE_NUMBER_WIDTH,
                )
            })
            .unwrap_or_default();
        footer_lines.retain(|l| !l.is_empty());
        if footer_lines.len() > FOOTER_MAX_LINES {
            footer_lines.truncate(FOOTER_MAX_LINES);
            if let Some(last) = footer_lines.last_mut() {
                last.push('…');
            }
        }
        let footer_height = FOOTER_LINE * footer_lines.len().max(1) as f32;
        Self {
            faces,
            head,
            bottom: FOOTER_BOTTOM - footer_height - 14.0,
            footer: footer_lines,
            pages: vec![Page::default()],
            y: MARGIN,
        }
    }

    /// Top of the free space on the current page.
    pub fn y(&self) -> f32 {
        self.y
    }

    /// Moves the top of the free space down by `height`.
    pub fn advance(&mut self, height: f32) {
        self.y += height;
    }

    /// Room left on the current page.
    pub fn room(&self) -> f32 {
        self.bottom - self.y
    }

    /// Room on a page that holds nothing but its running head.
    pub fn room_on_a_new_page(&self) -> f32 {
        self.bottom - self.running_head_bottom()
    }

    /// Starts a new page with the running head; free space begins below it.
    pub fn page_break(&mut self) {
        self.pages.push(Page::default());
        self.y = MARGIN;
        let company = self.one_line(&self.head.company, Weight::Bold, 10.0, CONTENT_WIDTH * 0.55);
        let title = self.head.title.clone();
        self.text(
            LEFT,
            self.y + 10.0,
            10.0,
            Weight::Bold,
            self.head.brand,
            company,
        );
        self.text_right(
            RIGHT,
            self.y + 10.0,
            9.0,
            Weight::Regular,
            Rgb::MUTED,
            title,
        );
        self.rule(self.y + 16.0, 0.75, self.head.brand);
        self.y = self.running_head_bottom();
    }

    fn running_head_bottom(&self) -> f32 {
        MARGIN + 30.0
    }

    /// Breaks to a new page unless `height` fits in the room left.
    pub fn keep(&mut self, height: f32) {
        if height > self.room() {
            self.page_break();
        }
    }

    pub fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        self.faces.get(weight).width(text, size)
    }

    pub fn wrap(&self, text: &str, weight: Weight, size: f32, width: f32) -> Vec<String> {
        wrap(text, self.faces.get(weight), size, width)
    }

    /// The first line of `text` that fits `width`, with "…" when cut.
    pub fn one_line(&self, text: &str, weight: Weight, size: f32, width: f32) -> String {
        let mut lines = self.wrap(text, weight, size, width).into_iter();
        let mut first = lines.next().unwrap_or_default();
        if lines.next().is_some() {
            first.push('…');
        }
        first
    }

    pub fn text(
        &mut self,
        x: f32,
        baseline: f32,
        size: f32,
        weight: Weight,
        color: Rgb,
        text: String,
    ) {
        if text.is_empty() {
            return;
        }
        self.mark(Mark::Text {
            x,
            baseline,
            size,
            weight,
            color,
            text,
        });
    }

    /// Text whose right end is at `right`.
    pub fn text_right(
        &mut self,
        right: f32,
        baseline: f32,
        size: f32,
        weight: Weight,
        color: Rgb,
        text: String,
    ) {
        let x = right - self.width(&text, weight, size);
        self.text(x, baseline, size, weight, color, text);
    }

    pub fn fill(&mut self, top: f32, height: f32, color: Rgb) {
        self.mark(Mark::Fill {
            x: LEFT,
            top,
            width: CONTENT_WIDTH,
            height,
            color,
        });
    }

    /// A rule across the content width at `y`.
    pub fn rule(&mut self, y: f32, thickness: f32, color: Rgb) {
        self.rule_from(LEFT, CONTENT_WIDTH, y, thickness, color);
    }

    pub fn rule_from(&mut self, x: f32, length: f32, y: f32, thickness: f32, color: Rgb) {
        self.mark(Mark::Rule {
            x,
            y,
            length,
            thickness,
            color,
        });
    }

    fn mark(&mut self, mark: Mark) {
        if let Some(page) = self.pages.last_mut() {
            page.marks.push(mark);
        }
    }

    /// The pages, each with the footer and its "n / m".
    pub fn finish(mut self) -> Vec<Page> {
        let count = self.pages.len();
        let top = FOOTER_BOTTOM - FOOTER_LINE * self.footer.len().max(1) as f32;
        for (index, page) in self.pages.iter_mut().enumerate() {
            page.marks.push(Mark::Rule {
                x: LEFT,
                y: top - 4.0,
                length: CONTENT_WIDTH,
                thickness: 0.5,
                color: Rgb::HAIRLINE,
            });
            for (i, line) in self.footer.iter().enumerate() {
                page.marks.push(Mark::Text {
                    x: LEFT,
                    baseline: top + FOOTER_LINE * (i as f32 + 1.0) - 2.0,
                    size: FOOTER_SIZE,
                    weight: Weight::Regular,
                    color: Rgb::MUTED,
                    text: line.clone(),
                });
            }
            let number = format!("{} / {count}", index + 1);
            let width = self.faces.get(Weight::Regular).width(&number, FOOTER_SIZE);
            page.marks.push(Mark::Text {
                x: RIGHT - width,
                baseline: top + FOOTER_LINE - 2.0,
                size: FOOTER_SIZE,
                weight: Weight::Regular,
                color: Rgb::MUTED,
                text: number,
            });
        }
        self.pages
    }
}
