// hostile_mail.mjs -- opens a ticket page whose conversation holds a hostile
// HTML mail, in Debian's Chromium with the page's real CSP in force, opens
// every "Show the whole message", waits, and reports what the page tried:
// dialogs (alert/confirm/prompt), requests to any origin but Postdesk's,
// CSP violations (the console's "Content Security Policy" reports), and
// where the tab ended up (a meta refresh would move it). Then runs axe-core
// (injected through the DevTools protocol, the page's CSP stays as it is).
// Called by tests/browser.rs. INPUT: {"link", "out"}.
// Prints {"url", "status", "dialogs": [...], "outside_requests": [...],
//   "requests": n, "csp_violations": [...], "final_url", "violations": [...]}.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { launchOptions } from './browser.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const origin = new URL(input.link).origin;

const browser = await chromium.launch(launchOptions());
const out = { dialogs: [], outside_requests: [], requests: 0, csp_violations: [] };
// Only what the page does under its own CSP counts; the axe run afterwards
// bypasses the CSP and is not watched.
let watching = true;
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 800 }, bypassCSP: false });
  const tab = await context.newPage();
  tab.on('dialog', async d => { if (watching) out.dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss(); });
  tab.on('request', r => {
    if (!watching) return;
    out.requests += 1;
    const url = r.url();
    if (!url.startsWith(origin + '/') && !url.startsWith('data:')) out.outside_requests.push(url);
  });
  tab.on('console', m => { if (watching && /Content Security Policy/i.test(m.text())) out.csp_violations.push(m.text()); });
  const response = await tab.goto(input.link, { waitUntil: 'load' });
  out.status = response ? response.status() : 0;
  out.url = new URL(tab.url()).pathname;
  for (const summary of await tab.$$('summary')) await summary.click();
  // Long enough for a meta refresh, an image or a timer to fire.
  await tab.waitForTimeout(2500);
  out.final_url = new URL(tab.url()).pathname;
  await tab.screenshot({ path: `${input.out}/hostile-mail-360.png`, fullPage: true });
  watching = false;
  const session = await context.newCDPSession(tab);
  await session.send('Page.setBypassCSP', { enabled: true });
  await tab.reload({ waitUntil: 'load' });
  for (const summary of await tab.$$('summary')) await summary.click();
  await tab.evaluate(axeSource);
  const axe = await tab.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  out.violations = axe.violations.map(v => ({ id: v.id, nodes: v.nodes.map(n => n.target.join(' ')) }));
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
