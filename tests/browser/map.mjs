// Drives /map in headless Chromium (playwright-core, no browser download: Debian's chromium) and
// prints what it saw as JSON; tests/test_map_browser.py asserts on it. Screenshots go to OUT_DIR.
// The data is the ingest of sources/local.toml: the walk goes round Rennes and searches for it.
// Every wait is on an event of the page (ecarto:ready, ecarto:view, ecarto:search-results,
// ecarto:sheet-open, documented in map.js) or of MapLibre (idle); the timeouts are only a safety
// net for a loaded machine.
// Usage: node tests/browser/map.mjs BASE_URL OUT_DIR [BASE_URL_WITH_A_BASEMAP_STYLE]
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [base, out, basemapBase] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE = fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url));
const SAFETY_MS = 180000;
const EVENTS = ['ready', 'view', 'search-results', 'sheet-open'];
const report = { console: [], steps: {} }; // console: errors only

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
try {
  const page = await open({ viewport: { width: 1280, height: 800 } }, '');
  await run(page);
  await phone(await open({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
    ' (phone)'));
  await embedded(await open({ viewport: { width: 640, height: 420 } }, ' (embed)'));
  if (basemapBase) await basemapped(await open({ viewport: { width: 640, height: 420 } }, ' (basemap)'));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));

// A page whose ecarto:* events are recorded from the start, and whose errors land in the report.
async function open(options, label) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.setDefaultTimeout(SAFETY_MS);
  await page.addInitScript((names) => {
    window.ecartoEvents = [];
    for (const name of names) {
      document.addEventListener(`ecarto:${name}`, (event) => window.ecartoEvents.push({ name, detail: event.detail }));
    }
  }, EVENTS);
  page.on('console', (message) => {
    if (message.type() === 'error') report.console.push(`error${label}: ${message.text()}`);
  });
  page.on('pageerror', (error) => report.console.push(`pageerror${label}: ${error.message}`));
  page.on('requestfailed', (request) => {
    // MapLibre cancels the tiles it no longer needs, and the search aborts a request overtaken by typing.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') report.console.push(`requestfailed${label}: ${request.url()}`);
  });
  return page;
}

async function seen(page, name) {
  return page.evaluate((n) => (window.ecartoEvents || []).filter((event) => event.name === n).length, name);
}

// Does `action`, then waits for the next `name` event of the page and returns its detail.
async function after(page, name, action) {
  const before = await seen(page, name);
  await action();
  await page.waitForFunction(([n, count]) => window.ecartoEvents.filter((e) => e.name === n).length > count,
    [name, before], { timeout: SAFETY_MS });
  return page.evaluate((n) => window.ecartoEvents.filter((e) => e.name === n).at(-1).detail, name);
}

// Loads `url` and waits for the page's first `name` event (its events start anew with each page).
async function ready(page, url, name = 'ready') {
  await page.goto(url);
  await page.waitForFunction((n) => window.ecartoEvents?.some((e) => e.name === n), name, { timeout: SAFETY_MS });
}

// Resolves once a repaint found every tile loaded and placed (after a camera move).
async function idle(page) {
  await page.evaluate(() => new Promise((resolve) => {
    window.ecartoMap.once('idle', resolve);
    window.ecartoMap.triggerRepaint();
  }));
}

// What is drawn: rendered feature counts per layer, each fill's colour expression, and names shown.
async function rendered(page) {
  return page.evaluate(() => {
    const map = window.ecartoMap;
    const counts = {};
    const labels = {};
    for (const feature of map.queryRenderedFeatures()) {
      counts[feature.layer.id] = (counts[feature.layer.id] || 0) + 1;
      if (feature.layer.id.endsWith('-label') && feature.properties.nom) {
        (labels[feature.layer.id] ||= []).push(feature.properties.nom);
      }
    }
    const fills = {};
    for (const layer of map.getStyle().layers.filter((l) => l.id.endsWith('-fill'))) {
      fills[layer.id] = { colour: JSON.stringify(map.getPaintProperty(layer.id, 'fill-color')),
        visible: map.getLayoutProperty(layer.id, 'visibility') !== 'none' };
    }
    return { counts, fills, labels, zoom: map.getZoom(), hash: location.hash };
  });
}

async function shot(page, name, element) {
  const path = `${out}/${name}.png`;
  await (element ? page.locator(element).screenshot({ path }) : page.screenshot({ path }));
  return path;
}

// axe-core's serious and critical violations on the page as it is now.
async function axe(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
}

async function run(page) {
  const searches = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.endsWith('/search')) searches.push(request.url());
  });
  await ready(page, `${base}/map#style=connectivite&map=6.5/48/-2.8`);
  report.steps.start = { ...(await rendered(page)), screenshot: await shot(page, '1-map-1280x800'), axe: await axe(page) };
  report.steps.keyboard = await keyboard(page);

  const raster = await page.$('#rasters:not([hidden]) input[type=checkbox]');
  report.steps.raster = { offered: raster !== null };
  if (raster) {
    await after(page, 'view', () => raster.check());
    report.steps.raster.layers = await page.evaluate(() => window.ecartoMap.getStyle().layers
      .filter((l) => l.type === 'raster').map((l) => ({ id: l.id, loaded: window.ecartoMap.isSourceLoaded(l.source) })));
    report.steps.raster.screenshot = await shot(page, '1b-raster');
    await after(page, 'view', () => raster.uncheck());
  }

  await after(page, 'view', () => page.selectOption('#style', 'equipement'));
  report.steps.theme = {
    ...(await rendered(page)), screenshot: await shot(page, '2-equipement'),
    options: await page.$$eval('#indicator option', (options) => options.map((o) => o.textContent)),
  };
  report.steps.legend = await legend(page);

  await after(page, 'view', () => page.selectOption('#level', 'communes'));
  report.steps.level = { ...(await rendered(page)), screenshot: await shot(page, '3-equipement-communes') };

  await page.evaluate(() => window.ecartoMap.jumpTo({ center: [-1.68, 48.11], zoom: 13 }));
  await idle(page);
  report.steps.zoom13 = { ...(await rendered(page)), screenshot: await shot(page, '3b-rennes-zoom13') };
  const target = await page.evaluate(() => {
    const map = window.ecartoMap;
    const canvas = map.getCanvas();
    const box = canvas.getBoundingClientRect();
    // The first school drawn where nothing (legend, panel, controls) covers the map.
    for (const school of map.queryRenderedFeatures({ layers: ['etablissements-points'] })) {
      const point = map.project(school.geometry.coordinates);
      const x = box.left + point.x;
      const y = box.top + point.y;
      if (document.elementFromPoint(x, y) === canvas) {
        return { x, y, uai: school.properties.uai, nom: school.properties.nom };
      }
    }
    return null;
  });
  report.steps.click = { target };
  if (target) {
    await after(page, 'sheet-open', () => page.mouse.click(target.x, target.y));
    report.steps.click.sheet = await page.textContent('#sheet');
    report.steps.click.hash = await page.evaluate(() => location.hash);
    report.steps.click.focused = await page.evaluate(() => document.activeElement?.closest('#sheet') !== null);
    report.steps.click.screenshot = await shot(page, '4-school-sheet');
    await page.keyboard.press('Escape');
    report.steps.click.closedByEscape = await page.isHidden('#sheet');
  }

  await after(page, 'view', () => page.click('#type input[value="ecole"]'));
  report.steps.filter = await page.evaluate(() => {
    const features = window.ecartoMap.queryRenderedFeatures({ layers: ['etablissements-points'] });
    return { types: [...new Set(features.map((f) => f.properties.type))], n: features.length, hash: location.hash };
  });
  report.steps.filter.screenshot = await shot(page, '5-filter-no-ecole');
  report.steps.download = await downloads(page);

  await page.click('#q');
  const found = await after(page, 'search-results', () => page.keyboard.type('Rennes'));
  report.steps.search = {
    detail: found, requests: searches.length, typed: 'Rennes'.length,
    results: await page.$$eval('#results [role=option]', (items) => items.map((i) => i.textContent)),
    expanded: await page.getAttribute('#q', 'aria-expanded'),
  };
  await page.keyboard.press('ArrowDown');
  report.steps.search.active = await page.getAttribute('#q', 'aria-activedescendant');
  const opened = await after(page, 'sheet-open', () => page.keyboard.press('Enter'));
  await idle(page);
  report.steps.search.opened = opened;
  report.steps.search.hash = await page.evaluate(() => location.hash);
  report.steps.search.sheet = await page.textContent('#sheet');
  report.steps.search.sheetDownloads = await page.$$eval('#sheet .sheet-downloads a', (links) => links.map((a) => a.href));
  report.steps.search.screenshot = await shot(page, '6-search-commune-sheet');
  report.steps.search.axe = await axe(page);

  const shared = await page.evaluate(() => location.href);
  await page.goto('about:blank');
  await ready(page, shared, 'sheet-open');
  report.steps.reload = {
    style: await page.evaluate(() => window.ecartoMap.getStyle().name),
    level: await page.inputValue('#level'),
    ecole: await page.isChecked('#type input[value="ecole"]'),
    sheet: await page.isVisible('#sheet .fiche'),
  };
}

// Tab order from the top of the page: the skip link, then the search box, then the controls.
async function keyboard(page) {
  const order = [];
  for (let i = 0; i < 4; i += 1) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className));
  }
  return { order };
}

// The legend's source line, and what its info button opens.
async function legend(page) {
  const line = await page.textContent('#legend .source-line');
  await page.click('#legend button.info');
  return {
    title: await page.textContent('#legend .legend-title'),
    line,
    about: await page.textContent('#legend .about'),
    expanded: await page.getAttribute('#legend button.info', 'aria-expanded'),
    screenshot: await shot(page, '2b-legend-source', '#legend'),
  };
}

// The download links of the view, and what the features API answers to them.
async function downloads(page) {
  return page.evaluate(async () => {
    const csv = document.querySelector('#download-csv').href;
    const geojson = document.querySelector('#download-geojson').href;
    const body = await (await fetch(geojson)).json();
    const text = await (await fetch(csv)).text();
    return {
      csv, geojson, features: body.features.length,
      types: [...new Set(body.features.map((f) => f.properties.type))],
      csvRows: text.trim().split('\n').length - 1,
    };
  });
}

async function phone(page) {
  await ready(page, `${base}/map#style=connectivite&map=5/46.6/2.5`);
  const geometry = await page.evaluate(() => ({
    map: document.querySelector('#map canvas').getBoundingClientRect().height,
    panel: document.querySelector('#panel').getBoundingClientRect().height,
    viewport: window.innerHeight,
  }));
  report.steps.phone = { ...geometry, screenshot: await shot(page, '8-map-390x844'), axe: await axe(page) };
  await page.tap('#panel-handle');
  report.steps.phone.expanded = await page.getAttribute('#panel-handle', 'aria-expanded');
  report.steps.phone.levelVisible = await page.isVisible('#level');
  report.steps.phone.expandedScreenshot = await shot(page, '8b-phone-options');
  await page.tap('#panel-handle');
  await page.tap('#q');
  await after(page, 'search-results', () => page.keyboard.type('Rennes'));
  report.steps.phone.results = await page.$$eval('#results [role=option]', (items) => items.length);
  await after(page, 'sheet-open', () => page.tap('#results [role=option]'));
  await idle(page);
  report.steps.phone.sheetVisible = await page.isVisible('#sheet .fiche');
  report.steps.phone.sheetScreenshot = await shot(page, '8c-phone-sheet');
  report.steps.phone.sheetAxe = await axe(page);
}

async function embedded(page) {
  await ready(page, `${base}/map?embed=1#style=services&map=5/46.6/2.5`);
  report.steps.embed = {
    ...(await rendered(page)),
    panel: await page.$('#panel') !== null,
    screenshot: await shot(page, '7-embed-services'),
  };
}

async function basemapped(page) {
  await ready(page, `${basemapBase}/map?embed=1#style=connectivite&map=6/48/-2.8`);
  report.steps.basemap = {
    ...(await rendered(page)),
    layers: await page.evaluate(() => window.ecartoMap.getStyle().layers.map((layer) => layer.id)),
    screenshot: await shot(page, '9-basemap-style'),
  };
}
