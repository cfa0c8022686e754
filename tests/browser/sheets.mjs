// Opens territory and school sheets in headless Chromium (Debian's chromium through playwright-core)
// at a desktop and a phone width, screenshots them, and prints what it saw as JSON;
// tests/test_sheets_browser.py asserts on it. Usage: node tests/browser/sheets.mjs BASE_URL OUT_DIR PATH...
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, out, ...paths] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const report = { console: [], pages: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
try {
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    const page = await browser.newPage({ viewport: { width, height } });
    page.on('console', (m) => { if (m.type() === 'error') report.console.push(`error: ${m.text()}`); });
    page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
    for (const path of paths) {
      await page.goto(`${base}${path}`, { waitUntil: 'load' });
      const name = `sheet-${path.split('/').slice(2).join('-')}-${width}`;
      const seen = await page.evaluate(() => ({
        title: document.querySelector('h2')?.textContent,
        charts: document.querySelectorAll('svg[role="img"]').length,
        chartsWithText: [...document.querySelectorAll('svg[role="img"]')]
          .filter((s) => s.querySelector('title')?.textContent && s.querySelector('desc')?.textContent).length,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        // what sticks out on the right, when something does: to know what to fix
        wide: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
          && !e.closest('.scroll, .visually-hidden')).slice(0, 3).map((e) => `${e.tagName}.${e.className}`),
        text: document.body.innerText,
      }));
      const shot = `${out}/${name}.png`;
      await page.screenshot({ path: shot, fullPage: false });
      await page.screenshot({ path: `${out}/${name}-full.png`, fullPage: true });
      report.pages.push({ path, width, shot, ...seen });
    }
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
