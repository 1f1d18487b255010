// browser.mjs -- how the browser tests launch Debian's Chromium: headless,
// no sandbox (the tests run as root in CI), and none of Chromium's own
// background traffic (the test machine has no outside network).
export function launchOptions() {
  return {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  };
}
