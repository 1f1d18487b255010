// pay_invoice.mjs -- a client pays an invoice in Debian's Chromium: opens the
// signed link taken from a delivered mail, presses "Pay now", pays by card on
// the (fake) Stripe checkout page, and comes back to the invoice, which must
// say "Paid" (the webhook has been applied by then). Called by
// tests/browser.rs. INPUT: {"link", "out"}. Prints {"steps": [...], "status",
// "final_url", "violations": {"light": [...], "dark": [...]}, "screenshots": [...]}.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { launchOptions } from './browser.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const browser = await chromium.launch(launchOptions());
const out = { steps: [], screenshots: [], violations: {} };
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 800 }, bypassCSP: false });
  const tab = await context.newPage();
  const blocked = [];
  tab.on('console', m => { if (/Content Security Policy/i.test(m.text())) blocked.push(m.text()); });
  await tab.goto(input.link, { waitUntil: 'load' });
  out.steps.push({ at: new URL(tab.url()).pathname, heading: await tab.textContent('h1') });
  await tab.screenshot({ path: `${input.out}/pay-1-invoice-360.png`, fullPage: true });
  out.screenshots.push(`${input.out}/pay-1-invoice-360.png`);
  await Promise.all([tab.waitForNavigation({ waitUntil: 'load' }), tab.click('text=Pay now')]);
  out.steps.push({ at: new URL(tab.url()).pathname, heading: await tab.textContent('h1').catch(() => '') });
  await tab.check('#method-card');
  await Promise.all([tab.waitForNavigation({ waitUntil: 'load' }), tab.click('#submit')]);
  out.final_url = new URL(tab.url()).pathname + new URL(tab.url()).search;
  out.status = (await tab.textContent('.status')).trim();
  out.steps.push({ at: out.final_url, status: out.status });
  await tab.screenshot({ path: `${input.out}/pay-2-paid-360.png`, fullPage: true });
  out.screenshots.push(`${input.out}/pay-2-paid-360.png`);
  out.csp_blocked = blocked;
  for (const scheme of ['light', 'dark']) {
    await tab.emulateMedia({ colorScheme: scheme });
    // axe is injected through the DevTools protocol: the page's CSP allows
    // no script, and must not be loosened for the test.
    const session = await context.newCDPSession(tab);
    await session.send('Page.setBypassCSP', { enabled: true });
    await tab.evaluate(axeSource);
    const axe = await tab.evaluate(async () =>
      // eslint-disable-next-line no-undef
      await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
    out.violations[scheme] = axe.violations.map(v => ({ id: v.id, nodes: v.nodes.map(n => n.target.join(' ')) }));
  }
  await context.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out));
