// The eCarto map page: styles from /styles, tiles from /tiles, search from the features API.
// Everything the map shows is in the URL hash (style, indicator, level, filters, rasters, sheet,
// and `map=zoom/lat/lon` kept by MapLibre), so a view can be shared by copying the address.
import * as maplibregl from './vendor/maplibre-gl/maplibre-gl.mjs';

const body = document.body;
const ROOT = body.dataset.base;
const SCHOOLS = 'etablissements';
const LIST_KEYS = ['type', 'statut'];
const $ = (selector) => document.querySelector(selector);

const state = readState();
let current = null; // the style JSON shown, with its metadata (levels, indicators, legend)
let rasters = []; // raster layers offered by /raster

const map = new maplibregl.Map({
  container: 'map',
  style: { version: 8, sources: {}, layers: [] },
  center: [2.5, 46.6],
  zoom: 5,
  hash: 'map',
  maxZoom: 18,
  transformRequest: filterSchoolTiles,
  attributionControl: { customAttribution: 'Données : ministère de l’Éducation nationale, IGN, INSEE (Licence Ouverte)' },
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
map.addControl(new maplibregl.ScaleControl());
window.ecartoMap = map; // for the browser tests and for people poking around in the console

function readState() {
  const params = new URLSearchParams(location.hash.slice(1));
  const list = (key) => (params.get(key) || '').split(',').filter(Boolean);
  return {
    style: params.get('style') || body.dataset.defaultStyle,
    indicator: params.get('indicator') || '',
    level: params.get('level') || 'auto',
    type: list('type'),
    statut: list('statut'),
    raster: Object.fromEntries(list('raster').map((entry) => {
      const [id, opacity] = entry.split(':');
      return [id, opacity === undefined ? 0.7 : Number(opacity)];
    })),
    fiche: params.get('fiche') || '',
  };
}

function writeState() {
  const params = new URLSearchParams(location.hash.slice(1));
  const put = (key, value) => (value ? params.set(key, value) : params.delete(key));
  put('style', state.style);
  put('indicator', state.indicator);
  put('level', state.level === 'auto' ? '' : state.level);
  LIST_KEYS.forEach((key) => put(key, state[key].join(',')));
  put('raster', Object.entries(state.raster).map(([id, opacity]) => `${id}:${opacity}`).join(','));
  put('fiche', state.fiche);
  history.replaceState(history.state, '', `#${decodeURIComponent(params.toString())}`);
}

// School tiles carry the type and statut filters; everything else is requested as it is.
function filterSchoolTiles(url, resourceType) {
  if (resourceType !== 'Tile' || !url.includes(`/tiles/${SCHOOLS}/`)) return undefined;
  const query = LIST_KEYS.filter((key) => state[key].length).map((key) => `${key}=${state[key].join(',')}`);
  if (!query.length) return undefined;
  return { url: `${url}${url.includes('?') ? '&' : '?'}${query.join('&')}` };
}

function styleUrl() {
  const query = new URLSearchParams();
  if (state.indicator) query.set('indicator', state.indicator);
  if (state.level !== 'auto') query.set('level', state.level);
  const suffix = query.toString() ? `?${query}` : '';
  return `${ROOT}/styles/${state.style}${suffix}`;
}

async function showStyle() {
  const response = await fetch(styleUrl());
  if (!response.ok) {
    status(`Style indisponible (${response.status})`);
    return;
  }
  current = await response.json();
  map.setStyle(current, { diff: true, transformStyle: (previous, next) => withRasters(next) });
  writeState();
  drawControls();
  drawLegend();
}

// Raster layers go above the territories and below the schools, and survive a change of style.
function withRasters(style) {
  const layers = [...style.layers];
  const at = layers.findIndex((layer) => layer.id === `${SCHOOLS}-clusters`);
  const sources = { ...style.sources };
  const added = rasters.filter((raster) => raster.id in state.raster).map((raster) => {
    sources[`raster-${raster.id}`] = raster.source;
    return {
      id: `raster-${raster.id}`, type: 'raster', source: `raster-${raster.id}`,
      paint: { 'raster-opacity': state.raster[raster.id] },
    };
  });
  layers.splice(at < 0 ? layers.length : at, 0, ...added);
  return { ...style, sources, layers };
}

function drawControls() {
  if (body.classList.contains('embed')) return;
  const meta = current.metadata;
  $('#style').value = state.style;
  $('#level').value = state.level;
  const indicators = meta['ecarto:indicators'];
  $('#indicator-field').hidden = indicators.length === 0;
  $('#indicator').replaceChildren(...indicators.map((entry) => new Option(
    entry.unit ? `${entry.label} (${entry.unit})` : entry.label, entry.id, false, entry.id === meta['ecarto:indicator'],
  )));
  LIST_KEYS.forEach((key) => document.querySelectorAll(`#${key} input`).forEach((box) => {
    box.checked = state[key].length === 0 || state[key].includes(box.value);
  }));
}

function drawLegend() {
  const legend = current.metadata['ecarto:legend'];
  const blocks = [];
  const same = legend.territories && JSON.stringify(legend.territories) === JSON.stringify(legend.schools);
  if (same) blocks.push(legendBlock(legend.schools, 'Territoires, groupes et établissements'));
  else {
    if (legend.territories) blocks.push(legendBlock(legend.territories, 'Territoires et groupes'));
    if (legend.schools) blocks.push(legendBlock(legend.schools, 'Établissements'));
  }
  const size = document.createElement('p');
  size.className = 'note';
  size.textContent = 'Taille des cercles : nombre d’établissements regroupés';
  $('#legend').replaceChildren(...blocks, size);
}

function legendBlock(entry, caption) {
  const block = document.createElement('div');
  const title = document.createElement('h3');
  title.textContent = entry.unit ? `${entry.title} (${entry.unit})` : entry.title;
  const note = document.createElement('p');
  note.className = 'note';
  note.textContent = caption;
  const list = document.createElement('ul');
  const rows = entry.no_data ? [...entry.classes, entry.no_data] : entry.classes;
  list.append(...rows.map(({ colour, label }) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colour;
    item.append(swatch, label);
    return item;
  }));
  block.append(title, note, list);
  return block;
}

async function loadRasters() {
  const url = body.dataset.rasters;
  if (!url) return;
  try {
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) return; // no raster layers published: the map works without them
    rasters = rasterList(await response.json());
  } catch (error) {
    return;
  }
  if (!rasters.length || body.classList.contains('embed')) return;
  $('#rasters').hidden = false;
  $('#rasters ul').replaceChildren(...rasters.map(rasterControl));
}

// Each raster of /raster as a MapLibre source: its TileJSON (bounds and zooms included) when linked.
function rasterList(listing) {
  const entries = Array.isArray(listing) ? listing : listing.rasters || [];
  return entries.filter((entry) => entry.id).map((entry) => {
    const tilejson = (entry.links || []).find((link) => link.type === 'application/json' && link.href.endsWith('.json'));
    const source = tilejson || !entry.tiles
      ? { type: 'raster', url: tilejson ? tilejson.href : `${ROOT}/raster/${entry.id}.json`, tileSize: 256 }
      : { type: 'raster', tiles: entry.tiles, tileSize: 256, minzoom: entry.minzoom ?? 0, maxzoom: entry.maxzoom ?? 22 };
    return { id: entry.id, label: entry.label || entry.title || entry.id, legend: entry.legend, source };
  });
}

function rasterControl(raster) {
  const item = document.createElement('li');
  const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: raster.id in state.raster });
  const slider = Object.assign(document.createElement('input'), {
    type: 'range', min: 0, max: 1, step: 0.05, value: state.raster[raster.id] ?? 0.7, title: 'Opacité',
  });
  const name = document.createElement('label');
  name.append(box, ` ${raster.label}`);
  box.addEventListener('change', () => {
    if (box.checked) state.raster[raster.id] = Number(slider.value);
    else delete state.raster[raster.id];
    showStyle();
  });
  slider.addEventListener('input', () => {
    if (!(raster.id in state.raster)) return;
    state.raster[raster.id] = Number(slider.value);
    map.setPaintProperty(`raster-${raster.id}`, 'raster-opacity', Number(slider.value));
    writeState();
  });
  item.append(name, slider);
  if (raster.legend) item.append(Object.assign(document.createElement('img'), { src: raster.legend, alt: '' }));
  return item;
}

function clickableLayers() {
  return map.getStyle().layers
    .filter((layer) => ['points', 'clusters', 'fill'].includes(layer.metadata?.['ecarto:role']))
    .filter((layer) => map.getLayoutProperty(layer.id, 'visibility') !== 'none')
    .map((layer) => layer.id);
}

map.on('click', (event) => {
  const [feature] = map.queryRenderedFeatures(event.point, { layers: clickableLayers() });
  if (!feature) return;
  const role = feature.layer.metadata['ecarto:role'];
  if (role === 'clusters') {
    const deeper = current.metadata['ecarto:cluster_maxzoom'];
    map.easeTo({ center: event.lngLat, zoom: Math.min(map.getZoom() + 2, deeper) });
    return;
  }
  const collection = feature.layer.metadata['ecarto:level'];
  openSheet(collection, collection === SCHOOLS ? feature.properties.uai : feature.properties.code);
});

map.on('mousemove', (event) => {
  const hits = map.queryRenderedFeatures(event.point, { layers: clickableLayers() });
  map.getCanvas().style.cursor = hits.length ? 'pointer' : '';
});

async function openSheet(collection, id) {
  if (!id) return;
  const response = await fetch(`${ROOT}/fiche/${collection}/${encodeURIComponent(id)}?partial=1`);
  if (!response.ok) {
    status(`Fiche introuvable : ${collection} ${id}`);
    announce('sheet', { collection, id, found: false });
    return;
  }
  $('#sheet-body').innerHTML = await response.text();
  $('#sheet').hidden = false;
  state.fiche = `${collection}/${id}`;
  writeState();
  announce('sheet', { collection, id, found: true });
}

// Tells scripts embedding or testing the page that something finished (they wait for it, not for a delay).
function announce(name, detail) {
  document.dispatchEvent(new CustomEvent(`ecarto:${name}`, { detail }));
}

function closeSheet() {
  $('#sheet').hidden = true;
  state.fiche = '';
  writeState();
}

// Search: a UAI goes straight to its school; any other text matches school, commune and town names.
async function search(text) {
  const query = text.trim();
  if (query.length < 2) return [];
  if (/^\d{7}[a-z]$/i.test(query)) {
    const response = await fetch(`${ROOT}/collections/${SCHOOLS}/items/${query.toUpperCase()}?f=json`);
    return response.ok ? [await response.json()].map((f) => ({ collection: SCHOOLS, feature: f })) : [];
  }
  const [schools, communes] = await Promise.all([
    findRanked(SCHOOLS, ['nom', 'nom_commune'], query, 8),
    findRanked('communes', ['nom'], query, 5),
  ]);
  return [...communes.map((f) => ({ collection: 'communes', feature: f })),
    ...schools.map((f) => ({ collection: SCHOOLS, feature: f }))];
}

// The server lists matches by code: ask for names as typed, then names starting so, then any other
// ("rennes": Rennes and its schools, then Rennes-le-Château..., then Varennes...), in that order.
async function findRanked(collection, properties, query, limit) {
  const text = likeText(query);
  const tiers = await Promise.all([text, `${text}%`, `%${text}%`]
    .map((pattern) => findByName(collection, properties, pattern, limit)));
  return [...new Map(tiers.flat().map((f) => [f.id, f])).values()].slice(0, limit);
}

// Typed text as a LIKE pattern's literal part: % and _ are text here.
function likeText(query) {
  return query.replace(/[\\%_]/g, '\\$&');
}

// Names match whatever their case and accents (CQL2 CASEI and ACCENTI, folded by the server).
async function findByName(collection, properties, pattern, limit) {
  const literal = pattern.replace(/'/g, "''");
  const filter = properties.map((name) => `ACCENTI(CASEI(${name})) LIKE ACCENTI(CASEI('${literal}'))`).join(' OR ');
  const params = new URLSearchParams({ f: 'json', limit, 'filter-lang': 'cql2-text', filter });
  const response = await fetch(`${ROOT}/collections/${collection}/items?${params}`);
  return response.ok ? (await response.json()).features : [];
}

function showResults(results) {
  const items = results.map(({ collection, feature }) => {
    const item = document.createElement('li');
    const button = Object.assign(document.createElement('button'), { type: 'button' });
    const p = feature.properties;
    button.textContent = collection === SCHOOLS ? `${p.nom} — ${p.nom_commune || ''} (${p.uai})` : `${p.nom} (commune ${p.code})`;
    button.addEventListener('click', () => goTo(collection, feature));
    item.append(button);
    return item;
  });
  if (!items.length) items.push(Object.assign(document.createElement('li'), { textContent: 'Aucun résultat' }));
  $('#results').replaceChildren(...items);
  announce('search-results', { count: results.length });
}

function goTo(collection, feature) {
  const [west, south, east, north] = feature.bbox || bounds(feature.geometry);
  if (west === east && south === north) map.flyTo({ center: [west, south], zoom: 15 });
  else map.fitBounds([[west, south], [east, north]], { padding: 40, maxZoom: 13 });
  openSheet(collection, collection === SCHOOLS ? feature.properties.uai : feature.properties.code);
}

function bounds(geometry) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (coords) => {
    if (typeof coords[0] === 'number') {
      box[0] = Math.min(box[0], coords[0]); box[1] = Math.min(box[1], coords[1]);
      box[2] = Math.max(box[2], coords[0]); box[3] = Math.max(box[3], coords[1]);
    } else coords.forEach(visit);
  };
  visit(geometry.coordinates);
  return box;
}

function status(message) {
  const line = $('#status');
  line.textContent = message;
  line.hidden = false;
  setTimeout(() => { line.hidden = true; }, 5000);
}

function bindControls() {
  if (body.classList.contains('embed')) return;
  $('#style').addEventListener('change', (event) => {
    state.style = event.target.value;
    state.indicator = '';
    showStyle();
  });
  $('#indicator').addEventListener('change', (event) => {
    state.indicator = event.target.value;
    showStyle();
  });
  $('#level').addEventListener('change', (event) => {
    state.level = event.target.value;
    const level = current.metadata['ecarto:levels'].find((entry) => entry.id === state.level);
    if (level && map.getZoom() < level.minzoom) map.easeTo({ zoom: level.minzoom });
    showStyle();
  });
  LIST_KEYS.forEach((key) => $(`#${key}`).addEventListener('change', (event) => {
    const boxes = [...document.querySelectorAll(`#${key} input`)];
    const checked = boxes.filter((box) => box.checked).map((box) => box.value);
    if (!checked.length) { // an empty filter would mean "all": keep at least one box ticked
      event.target.checked = true;
      return;
    }
    state[key] = checked.length === boxes.length ? [] : checked;
    writeState();
    map.refreshTiles(SCHOOLS);
  }));
  let pending;
  $('#q').addEventListener('input', (event) => {
    clearTimeout(pending);
    pending = setTimeout(async () => showResults(await search(event.target.value)), 250);
  });
  $('#search').addEventListener('submit', async (event) => {
    event.preventDefault();
    const results = await search($('#q').value);
    if (results.length === 1) goTo(results[0].collection, results[0].feature);
    else showResults(results);
  });
}

$('#sheet-close').addEventListener('click', closeSheet);
// A code in a sheet opens that territory's sheet in the panel (the "Fiche" link still opens the page).
$('#sheet-body').addEventListener('click', (event) => {
  const link = event.target.closest('a[href*="/fiche/"]:not([target])');
  const match = link && new URL(link.href).pathname.match(/\/fiche\/([^/]+)\/([^/]+)$/);
  if (!match) return;
  event.preventDefault();
  openSheet(match[1], decodeURIComponent(match[2]));
});
bindControls();
await loadRasters();
await showStyle();
if (state.fiche) {
  const [collection, id] = state.fiche.split('/');
  openSheet(collection, id);
}
