// check_pages.mjs -- opens each signed link of a Postdesk page in Debian's
// Chromium (headless, through playwright-core), then for 360 px and 1280 px
// widths, light and dark colour schemes: runs axe-core (WCAG 2.x A and AA
// rules), measures horizontal overflow, and saves a screenshot.
// Usage: node check_pages.mjs INPUT.json   (called by tests/browser.rs)
// INPUT: {"out": "<dir for screenshots>", "pages": [{"name", "link"}]}
// Prints one JSON object: {"pages": [{"name", "url", "status", "runs": [
//   {"width", "scheme", "violations": [{"id", "impact", "nodes"}], "overflow_px", "screenshot"}]}]}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { launchOptions } from './browser.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const browser = await chromium.launch(launchOptions());
const result = { pages: [] };
try {
  for (const page of input.pages) {
    const runs = [];
    let url = '';
    let status = 0;
    for (const width of [360, 1280]) {
      for (const scheme of ['light', 'dark']) {
        // A fresh context per run: the link sets its cookie on first open,
        // exactly as it would for a client clicking it in a mail.
        const context = await browser.newContext({
          viewport: { width, height: 800 },
          colorScheme: scheme,
          // The pages' CSP forbids every script, axe's too; the check is
          // injected by the test, not served by the page.
          bypassCSP: true,
        });
        const tab = await context.newPage();
        const response = await tab.goto(page.link, { waitUntil: 'load' });
        status = response ? response.status() : 0;
        url = new URL(tab.url()).pathname;
        await tab.evaluate(axeSource);
        const axe = await tab.evaluate(async () =>
          // eslint-disable-next-line no-undef
          await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
        const overflow = await tab.evaluate(() =>
          document.documentElement.scrollWidth - document.documentElement.clientWidth);
        const screenshot = `${input.out}/${page.name}-${width}-${scheme}.png`;
        await tab.screenshot({ path: screenshot, fullPage: true });
        runs.push({
          width,
          scheme,
          violations: axe.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')) })),
          overflow_px: overflow,
          screenshot,
        });
        await context.close();
      }
    }
    result.pages.push({ name: page.name, url, status, runs });
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
