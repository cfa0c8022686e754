// Loads /map once in headless Chromium and prints, as JSON, what went wrong and what was drawn:
// console errors, failed or refused requests, rendered features per layer once the page says
// `ecarto:ready` (its first style applied and every tile of the view drawn: see map.js).
// Usage: node tests/browser/loads.mjs BASE_URL   (tests/test_wheel.py: the map of an installed wheel)
import { chromium } from 'playwright-core';

const [base] = process.argv.slice(2);
const report = { errors: [], counts: {} };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  page.on('console', (message) => { if (message.type() === 'error') report.errors.push(message.text()); });
  page.on('pageerror', (error) => report.errors.push(error.message));
  page.on('response', (response) => {
    if (response.status() >= 400) report.errors.push(`${response.status()} ${response.url()}`);
  });
  await page.addInitScript(() => {
    window.ecartoReady = new Promise((resolve) => document.addEventListener('ecarto:ready', resolve, { once: true }));
  });
  await page.goto(`${base}/map#map=8/48.1/-1.7`);
  report.counts = await page.evaluate(async () => {
    await window.ecartoReady;
    const counts = {};
    for (const f of window.ecartoMap.queryRenderedFeatures()) counts[f.layer.id] = (counts[f.layer.id] || 0) + 1;
    return counts;
  });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
