// The legend of the map: the classes of the indicator shown, each indicator with a source line and
// an info button that opens its definition, unit, producer, dataset, licence and vintage (from
// /indicators, else from the style's metadata). A missing key reads "source non renseignée".
const MISSING = 'source non renseignée';

// "Terminaux pour 100 élèves" with unit "terminaux" stays as it is; "Débit descendant" gets "(Mbit/s)".
export function withUnit(label, unit) {
  if (!unit || fold(label).includes(fold(unit))) return label;
  return `${label} (${unit})`;
}

function fold(text) {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

// The catalogue entries of /indicators by id (an empty map when the server has no such endpoint).
export async function loadIndicators(url) {
  if (!url) return new Map();
  try {
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) return new Map();
    const body = await response.json();
    const entries = Array.isArray(body) ? body : body.indicators || [];
    return new Map(entries.map((entry) => [entry.id, entry]));
  } catch (error) {
    return new Map();
  }
}

export function drawLegend(container, metadata, indicators, collapsed) {
  const legend = metadata['ecarto:legend'];
  const id = metadata['ecarto:indicator'];
  const described = id ? describe(id, metadata, indicators) : null;
  const blocks = [];
  const same = legend.territories && JSON.stringify(legend.territories) === JSON.stringify(legend.schools);
  if (same) blocks.push(legendBlock(legend.schools, 'Territoires, groupes et établissements', !described));
  else {
    if (legend.territories) blocks.push(legendBlock(legend.territories, 'Territoires et groupes', !described));
    if (legend.schools) blocks.push(legendBlock(legend.schools, 'Établissements', !described));
  }
  const size = Object.assign(document.createElement('p'), {
    className: 'note', textContent: 'Taille des cercles : nombre d’établissements regroupés',
  });
  const body = Object.assign(document.createElement('div'), { id: 'legend-body', hidden: collapsed });
  const heading = described ? sourceHeading(described) : [];
  body.append(...heading, ...blocks, size);
  const toggle = Object.assign(document.createElement('button'), {
    type: 'button', id: 'legend-toggle', className: 'legend-toggle', textContent: 'Légende',
  });
  toggle.setAttribute('aria-expanded', String(!collapsed));
  toggle.setAttribute('aria-controls', 'legend-body');
  toggle.addEventListener('click', () => {
    body.hidden = !body.hidden;
    toggle.setAttribute('aria-expanded', String(!body.hidden));
  });
  container.replaceChildren(toggle, body);
}

// What the page knows of an indicator: /indicators first, the style's own entry for label and unit.
function describe(id, metadata, indicators) {
  const own = metadata['ecarto:indicators'].find((entry) => entry.id === id) || {};
  const entry = indicators.get(id) || {};
  return {
    id,
    title: entry.title || own.label || id,
    unit: entry.unit ?? own.unit ?? '',
    description: entry.description || own.description || '',
    producer: entry.producer || own.producer || '',
    source_url: entry.source_url || own.source_url || '',
    licence: entry.licence || own.licence || '',
    vintage: entry.vintage || own.vintage || '',
  };
}

// The indicator's name with its info button, the source line, and the details the button opens.
function sourceHeading(entry) {
  const title = Object.assign(document.createElement('h3'), { className: 'legend-title' });
  const info = Object.assign(document.createElement('button'), {
    type: 'button', className: 'info', textContent: 'i', title: 'Définition et source',
  });
  info.setAttribute('aria-label', `Définition et source : ${entry.title}`);
  info.setAttribute('aria-expanded', 'false');
  info.setAttribute('aria-controls', `about-${entry.id}`);
  title.append(withUnit(entry.title, entry.unit), ' ', info);
  const line = Object.assign(document.createElement('p'), { className: 'source-line', textContent: sourceLine(entry) });
  const about = Object.assign(document.createElement('dl'), { id: `about-${entry.id}`, className: 'about', hidden: true });
  const rows = [
    ['Définition', entry.description || 'définition non renseignée'],
    ['Unité', entry.unit || 'sans unité'],
    ['Producteur', entry.producer || MISSING],
    ['Jeu de données', entry.source_url ? link(entry.source_url) : MISSING],
    ['Licence', entry.licence || MISSING],
    ['Millésime', entry.vintage || MISSING],
  ];
  for (const [term, value] of rows) {
    about.append(Object.assign(document.createElement('dt'), { textContent: term }));
    const definition = document.createElement('dd');
    definition.append(value);
    about.append(definition);
  }
  info.addEventListener('click', () => {
    about.hidden = !about.hidden;
    info.setAttribute('aria-expanded', String(!about.hidden));
  });
  return [title, line, about];
}

function sourceLine(entry) {
  if (!entry.producer) return 'Source non renseignée';
  const details = [entry.vintage, entry.licence].filter(Boolean).join(', ');
  return `Source : ${entry.producer}${details ? ` (${details})` : ''}`;
}

function link(url) {
  const anchor = Object.assign(document.createElement('a'), { href: url, textContent: new URL(url, location.href).hostname || url });
  anchor.target = '_blank';
  anchor.rel = 'noopener';
  return anchor;
}

// One set of classes; titled when no indicator heading is above it (the neutral style's types).
function legendBlock(entry, caption, titled) {
  const block = document.createElement('div');
  const note = Object.assign(document.createElement('p'), { className: 'note', textContent: caption });
  const list = document.createElement('ul');
  const rows = entry.no_data ? [...entry.classes, entry.no_data] : entry.classes;
  list.append(...rows.map(({ colour, label }) => {
    const item = document.createElement('li');
    const swatch = Object.assign(document.createElement('span'), { className: 'swatch' });
    swatch.style.background = colour;
    item.append(swatch, label);
    return item;
  }));
  if (titled) block.append(Object.assign(document.createElement('h3'), { textContent: withUnit(entry.title, entry.unit) }));
  block.append(note, list);
  return block;
}
