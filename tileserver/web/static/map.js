// The eCarto map page: styles from /styles, tiles from /tiles, search from /search, indicator
// sources from /indicators, downloads from the features API. Everything the map shows is in the
// URL hash (style, indicator, level, filters, rasters, sheet, and `map=zoom/lat/lon` kept by
// MapLibre), so a view can be shared by copying the address.
//
// Events, dispatched on `document` (the browser tests wait on them, never on fixed delays):
//   ecarto:ready           the first style is applied and every tile of the view is drawn
//   ecarto:view            a change made with a control is drawn; detail: {reason} among
//                          "style", "filter", "raster"
//   ecarto:search-results  a search answered; detail: {count, query} (and {error} if it failed)
//   ecarto:sheet-open      a sheet is shown in the panel; detail: {collection, id}
import * as maplibregl from './vendor/maplibre-gl/maplibre-gl.mjs';
import { drawLegend, loadIndicators, withUnit } from './map-legend.js';
import { bindPanel, isPhone } from './map-panel.js';
import { bindSearch } from './map-search.js';

const body = document.body;
const ROOT = body.dataset.base;
const SCHOOLS = 'etablissements';
const LIST_KEYS = ['type', 'statut'];
const COUNTED_TYPES = ['ecole', 'college', 'lycee']; // "autre" in the type filter is every other type
// The school property holding the code of each territory level (to download a territory's schools).
const CODE_FIELDS = {
  communes: 'code_commune', epci: 'code_epci', departements: 'code_departement', academies: 'code_academie',
  regions: 'code_region',
};
// MapLibre's own words, in French (its canvas title is what a screen reader announces).
const LOCALE = {
  'Map.Title': 'Carte : flèches pour se déplacer, + et − pour zoomer',
  'NavigationControl.ZoomIn': 'Zoomer',
  'NavigationControl.ZoomOut': 'Dézoomer',
  'NavigationControl.ResetBearing': 'Faire glisser pour tourner la carte, cliquer pour revenir au nord',
  'AttributionControl.ToggleAttribution': 'Afficher ou masquer les sources',
  'AttributionControl.MapFeedback': 'Signaler une erreur de la carte',
};
const $ = (selector) => document.querySelector(selector);
const emit = (name, detail = {}) => document.dispatchEvent(new CustomEvent(`ecarto:${name}`, { detail }));

const state = readState();
let current = null; // the style JSON shown, with its metadata (levels, indicators, legend)
let rasters = []; // raster layers offered by /raster
let ready = false; // ecarto:ready sent
const indicators = loadIndicators(body.dataset.indicators); // catalogue entries by id, for the legend's sources
const basemap = loadBasemap(body.dataset.basemap); // the base map's style JSON, or null
const panel = body.classList.contains('embed') ? null : bindPanel($('#panel'), $('#panel-handle'));

const map = new maplibregl.Map({
  container: 'map',
  style: { version: 8, sources: {}, layers: [] },
  center: [2.5, 46.6],
  zoom: isPhone() ? 4.2 : 5, // metropolitan France across the screen
  hash: 'map',
  maxZoom: 18,
  transformRequest: filterSchoolTiles,
  locale: LOCALE,
  attributionControl: { compact: isPhone(), customAttribution: 'Données : ministère de l’Éducation nationale, IGN, INSEE (Licence Ouverte)' },
});
map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
map.addControl(new maplibregl.ScaleControl());
window.ecartoMap = map; // for the browser tests and for people poking around in the console
// A phone's attribution starts folded to its button (MapLibre opens it at first).
map.once('load', () => document.querySelector('.maplibregl-compact-show')?.classList.remove('maplibregl-compact-show'));

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

async function showStyle(reason = 'style') {
  const response = await fetch(styleUrl());
  if (!response.ok) {
    status(`Style indisponible (${response.status})`);
    return;
  }
  current = await response.json();
  const base = await basemap;
  map.setStyle(current, { diff: true, transformStyle: (previous, next) => withBasemap(withRasters(next), base) });
  writeState();
  drawControls();
  const folded = $('#legend-body')?.hidden ?? isPhone(); // as the reader left it
  drawLegend($('#legend'), current.metadata, await indicators, folded);
  updateDownloads();
  await drawn();
  if (ready) emit('view', { reason });
  else {
    ready = true;
    emit('ready');
  }
}

// Resolves once the map has drawn every tile of the view (MapLibre's `idle`).
function drawn() {
  return new Promise((resolve) => {
    map.once('idle', resolve);
    map.triggerRepaint();
  });
}

// ECARTO_BASEMAP_URL as a MapLibre style: its sources and layers go under ours (our land and
// background give way to it), our names take its fonts, and our choropleth lets it show through.
async function loadBasemap(url) {
  if (!url) return null;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } catch (error) {
    status('Fond de carte indisponible : la carte s’affiche sans lui.');
    return null;
  }
}

function withBasemap(style, base) {
  if (!base) return style;
  const fonts = base.layers.map((layer) => layer.layout?.['text-font']).find(Array.isArray);
  const ours = style.layers.filter((layer) => !['background', 'land'].includes(layer.id)).map((layer) => {
    if (layer.type === 'fill' && layer.metadata?.['ecarto:role'] === 'fill') {
      return { ...layer, paint: { ...layer.paint, 'fill-opacity': 0.55 } };
    }
    if (layer.type === 'symbol' && fonts) return { ...layer, layout: { ...layer.layout, 'text-font': fonts } };
    return layer;
  });
  const layers = [...base.layers.map((layer) => ({ ...layer, id: `basemap-${layer.id}` })), ...ours];
  const sources = { ...Object.fromEntries(Object.entries(base.sources).map(([id, s]) => [`basemap-${id}`, s])), ...style.sources };
  layers.filter((layer) => layer.id.startsWith('basemap-') && layer.source).forEach((layer) => {
    layer.source = `basemap-${layer.source}`;
  });
  const merged = { ...style, sources, layers };
  if (base.glyphs) merged.glyphs = base.glyphs;
  if (base.sprite) merged.sprite = base.sprite;
  return merged;
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
  const entries = meta['ecarto:indicators'];
  $('#indicator-field').hidden = entries.length === 0;
  $('#indicator').replaceChildren(...entries.map((entry) => new Option(
    withUnit(entry.label, entry.unit), entry.id, false, entry.id === meta['ecarto:indicator'],
  )));
  LIST_KEYS.forEach((key) => document.querySelectorAll(`#${key} input`).forEach((box) => {
    box.checked = state[key].length === 0 || state[key].includes(box.value);
  }));
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
  slider.setAttribute('aria-label', `Opacité : ${raster.label}`);
  const name = document.createElement('label');
  name.append(box, ` ${raster.label}`);
  box.addEventListener('change', () => {
    if (box.checked) state.raster[raster.id] = Number(slider.value);
    else delete state.raster[raster.id];
    showStyle('raster');
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
    return;
  }
  const sheet = $('#sheet-body');
  sheet.innerHTML = await response.text();
  if (collection in CODE_FIELDS) sheet.append(territoryDownloads(collection, id));
  $('#sheet').hidden = false;
  state.fiche = `${collection}/${id}`;
  writeState();
  const heading = sheet.querySelector('h2');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  emit('sheet-open', { collection, id });
}

function closeSheet() {
  $('#sheet').hidden = true;
  state.fiche = '';
  writeState();
  $('#q')?.focus();
}

// A search result: the map goes to it (a point gets a street-level zoom) and its sheet opens.
function goTo(result) {
  const [west, south, east, north] = result.bbox;
  // The sheet covers the right of the map (the lower half on a phone): the place is framed beside it.
  const padding = isPhone() ? { top: 40, left: 30, right: 30, bottom: window.innerHeight * 0.6 }
    : { top: 40, bottom: 40, left: 40, right: 420 };
  if (west === east && south === north) map.flyTo({ center: [west, south], zoom: 15, padding });
  else map.fitBounds([[west, south], [east, north]], { padding, maxZoom: 13 });
  panel?.collapse();
  openSheet(result.collection, result.id);
}

// The schools of the view with the filters shown, as the features API serves them.
function schoolsUrl(format, extra = {}) {
  const params = new URLSearchParams({ ...extra, limit: body.dataset.maxLimit || 10000, f: format });
  const filter = schoolFilter();
  if (filter) {
    params.set('filter-lang', 'cql2-text');
    params.set('filter', filter);
  }
  return `${ROOT}/collections/${SCHOOLS}/items?${params}`;
}

// The type and statut filters in CQL2: "autre" is every type that is not école, collège or lycée.
function schoolFilter() {
  const clauses = [];
  if (state.type.length) {
    const named = state.type.filter((type) => COUNTED_TYPES.includes(type));
    const list = (types) => types.map((type) => `'${type}'`).join(',');
    const parts = named.length ? [`type IN (${list(named)})`] : [];
    if (state.type.includes('autre')) parts.push(`type NOT IN (${list(COUNTED_TYPES)})`);
    clauses.push(parts.length > 1 ? `(${parts.join(' OR ')})` : parts[0]);
  }
  if (state.statut.length) clauses.push(`statut IN (${state.statut.map((s) => `'${s}'`).join(',')})`);
  return clauses.join(' AND ');
}

function viewBbox() {
  const bounds = map.getBounds();
  const clamp = (value, limit) => Math.max(-limit, Math.min(limit, value)).toFixed(5);
  return [clamp(bounds.getWest(), 180), clamp(bounds.getSouth(), 85), clamp(bounds.getEast(), 180),
    clamp(bounds.getNorth(), 85)].join(',');
}

function updateDownloads() {
  if (body.classList.contains('embed')) return;
  const bbox = viewBbox();
  $('#download-csv').href = schoolsUrl('csv', { bbox });
  $('#download-geojson').href = schoolsUrl('json', { bbox });
}

// In a territory's sheet: its schools (with the filters shown), whatever the view.
function territoryDownloads(collection, id) {
  const block = Object.assign(document.createElement('p'), { className: 'sheet-downloads' });
  const code = { [CODE_FIELDS[collection]]: id };
  const anchor = (format, text) => Object.assign(document.createElement('a'), { href: schoolsUrl(format, code), textContent: text, download: '' });
  block.append('Télécharger ses établissements : ', anchor('csv', 'CSV'), ' · ', anchor('json', 'GeoJSON'));
  return block;
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
  LIST_KEYS.forEach((key) => $(`#${key}`).addEventListener('change', async (event) => {
    const boxes = [...document.querySelectorAll(`#${key} input`)];
    const checked = boxes.filter((box) => box.checked).map((box) => box.value);
    if (!checked.length) { // an empty filter would mean "all": keep at least one box ticked
      event.target.checked = true;
      return;
    }
    state[key] = checked.length === boxes.length ? [] : checked;
    writeState();
    updateDownloads();
    map.refreshTiles(SCHOOLS);
    await drawn();
    emit('view', { reason: 'filter' });
  }));
  map.on('moveend', updateDownloads);
  if (body.dataset.search) bindSearch({
    url: body.dataset.search, form: $('#search'), input: $('#q'), list: $('#results'), status: $('#search-status'),
    spinner: $('#search .spinner'), onPick: goTo, emit,
  });
}

$('#sheet-close').addEventListener('click', closeSheet);
$('#sheet').addEventListener('keydown', (event) => {
  if (event.key === 'Escape') closeSheet();
});
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
