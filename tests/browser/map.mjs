// Drives /map in headless Chromium (playwright-core, no browser download: Debian's chromium) and
// prints what it saw as JSON; tests/test_map_browser.py asserts on it. Screenshots go to OUT_DIR.
// The data is the ingest of sources/local.toml: the walk goes round Rennes and searches for it.
// Usage: node tests/browser/map.mjs BASE_URL OUT_DIR
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const report = { console: [], steps: {} }; // console: errors only

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (message) => {
    if (message.type() === 'error') report.console.push(`error: ${message.text()}`);
  });
  page.on('pageerror', (error) => report.console.push(`pageerror: ${error.message}`));
  page.on('requestfailed', (request) => {
    // MapLibre cancels the tiles it no longer needs when the view changes: not a failure.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') report.console.push(`requestfailed: ${request.url()}`);
  });
  await run(page);
  const embed = await browser.newPage({ viewport: { width: 640, height: 420 } });
  embed.on('pageerror', (error) => report.console.push(`pageerror (embed): ${error.message}`));
  await embedded(embed);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));

// Runs `action`, then resolves with the detail of the next `ecarto:NAME` event the page dispatches
// (map.js announces finished work so the walk waits for it, never for a fixed delay).
async function after(page, name, action) {
  await page.evaluate((type) => {
    window.ecartoNext = new Promise((resolve) => document.addEventListener(type, (e) => resolve(e.detail), { once: true }));
  }, `ecarto:${name}`);
  await action();
  return page.evaluate(() => window.ecartoNext);
}

// Resolves once `layer` is in the style and a repaint found every tile loaded and placed.
async function idle(page, layer) {
  await page.waitForFunction((id) => window.ecartoMap?.getLayer(id), layer, { timeout: 30000 });
  await page.evaluate(() => new Promise((resolve) => {
    const map = window.ecartoMap;
    map.once('idle', resolve);
    map.triggerRepaint();
  }));
}

// What is drawn: rendered feature counts per layer, and each fill's colour expression.
async function rendered(page) {
  return page.evaluate(() => {
    const map = window.ecartoMap;
    const counts = {};
    for (const feature of map.queryRenderedFeatures()) counts[feature.layer.id] = (counts[feature.layer.id] || 0) + 1;
    const fills = {};
    for (const layer of map.getStyle().layers.filter((l) => l.type === 'fill')) {
      fills[layer.id] = { colour: JSON.stringify(map.getPaintProperty(layer.id, 'fill-color')),
        visible: map.getLayoutProperty(layer.id, 'visibility') !== 'none' };
    }
    return { counts, fills, zoom: map.getZoom(), hash: location.hash };
  });
}

async function shot(page, name) {
  const path = `${out}/${name}.png`;
  await page.screenshot({ path });
  return path;
}

async function run(page) {
  await page.goto(`${base}/map#style=connectivite&map=6.5/48/-2.8`);
  await idle(page, 'regions-fill');
  report.steps.start = { ...(await rendered(page)), screenshot: await shot(page, '1-connectivite-auto') };

  const raster = await page.$('#rasters:not([hidden]) input[type=checkbox]');
  report.steps.raster = { offered: raster !== null };
  if (raster) {
    await raster.check();
    await page.waitForFunction(() => window.ecartoMap.getStyle().layers.some((l) => l.id.startsWith('raster-')));
    await idle(page, 'regions-fill');
    report.steps.raster.layers = await page.evaluate(() => window.ecartoMap.getStyle().layers
      .filter((l) => l.type === 'raster').map((l) => ({ id: l.id, loaded: window.ecartoMap.isSourceLoaded(l.source) })));
    report.steps.raster.screenshot = await shot(page, '1b-raster');
    await raster.uncheck();
  }

  await page.selectOption('#style', 'equipement');
  await page.waitForFunction(() => window.ecartoMap.getStyle().name.includes('Équipement'));
  await idle(page, 'regions-fill');
  report.steps.theme = { ...(await rendered(page)), screenshot: await shot(page, '2-equipement') };

  await page.selectOption('#level', 'communes');
  await page.waitForFunction(() => window.ecartoMap.getLayoutProperty('communes-fill', 'visibility') === 'visible'
    && window.ecartoMap.getLayoutProperty('regions-fill', 'visibility') === 'none');
  await idle(page, 'communes-fill');
  report.steps.level = { ...(await rendered(page)), screenshot: await shot(page, '3-equipement-communes') };

  await page.evaluate(() => window.ecartoMap.jumpTo({ center: [-1.68, 48.11], zoom: 13 }));
  await idle(page, 'etablissements-points');
  const target = await page.evaluate(() => {
    const map = window.ecartoMap;
    const [school] = map.queryRenderedFeatures({ layers: ['etablissements-points'] });
    if (!school) return null;
    const point = map.project(school.geometry.coordinates);
    const box = map.getCanvas().getBoundingClientRect();
    return { x: box.left + point.x, y: box.top + point.y, uai: school.properties.uai, nom: school.properties.nom };
  });
  report.steps.click = { target };
  if (target) {
    await after(page, 'sheet', () => page.mouse.click(target.x, target.y));
    report.steps.click.sheet = await page.textContent('#sheet');
    report.steps.click.hash = await page.evaluate(() => location.hash);
    report.steps.click.screenshot = await shot(page, '4-school-sheet');
  }

  await page.click('#type input[value="ecole"]'); // its handler marks the school tiles for reload at once
  await idle(page, 'etablissements-points');
  report.steps.filter = await page.evaluate(() => {
    const features = window.ecartoMap.queryRenderedFeatures({ layers: ['etablissements-points'] });
    return { types: [...new Set(features.map((f) => f.properties.type))], n: features.length, hash: location.hash };
  });
  report.steps.filter.screenshot = await shot(page, '5-filter-no-ecole');

  await after(page, 'search-results', () => page.fill('#q', 'Rennes'));
  report.steps.search = { results: await page.$$eval('#results li', (items) => items.map((i) => i.textContent)) };
  await after(page, 'sheet', () => page.click('#results li button'));
  await idle(page, 'communes-fill');
  report.steps.search.hash = await page.evaluate(() => location.hash);
  report.steps.search.sheet = await page.textContent('#sheet');
  report.steps.search.screenshot = await shot(page, '6-search-commune');

  const shared = await page.evaluate(() => location.href);
  await page.goto('about:blank');
  await page.goto(shared);
  await idle(page, 'communes-fill');
  report.steps.reload = {
    style: await page.evaluate(() => window.ecartoMap.getStyle().name),
    level: await page.inputValue('#level'),
    ecole: await page.isChecked('#type input[value="ecole"]'),
    sheet: await page.isVisible('#sheet .fiche'),
  };

  // Cesson-Sévigné, in neither its case nor its accents
  await after(page, 'search-results', () => page.fill('#q', 'cesson-SEVIGNE'));
  report.steps.folded = { results: await page.$$eval('#results li', (items) => items.map((i) => i.textContent)) };
  report.steps.folded.screenshot = await shot(page, '6b-search-folded');
}

async function embedded(page) {
  await page.goto(`${base}/map?embed=1#style=services&map=5/46.6/2.5`);
  await idle(page, 'departements-fill');
  report.steps.embed = {
    ...(await rendered(page)),
    panel: await page.$('#panel') !== null,
    screenshot: await shot(page, '7-embed-services'),
  };
}
