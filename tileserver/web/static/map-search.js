// The search box of the map: one request to /search per pause in typing (150 ms), the previous one
// aborted, a visible pending state, and the results as an ARIA listbox driven from the keyboard
// (Down/Up move, Enter opens, Escape closes the list, then clears the box).
const DEBOUNCE_MS = 150;
const LIMIT = 8;

export function bindSearch({ url, form, input, list, status, spinner, onPick, emit }) {
  let timer;
  let inflight = null;
  let results = [];
  let active = -1;

  function setPending(pending) {
    spinner.hidden = !pending;
    form.setAttribute('aria-busy', String(pending));
    if (pending) status.textContent = 'Recherche…';
  }

  function close() {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  }

  function show(query, found) {
    results = found;
    active = -1;
    list.replaceChildren(...found.map((result, i) => {
      const option = Object.assign(document.createElement('li'), { id: `result-${i}` });
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', 'false');
      const name = Object.assign(document.createElement('span'), { className: 'result-name', textContent: result.label || result.name });
      const kind = Object.assign(document.createElement('span'), { className: 'result-kind', textContent: KINDS[result.collection] || '' });
      option.append(name, kind);
      option.addEventListener('mousedown', (event) => event.preventDefault()); // keep the focus in the box
      option.addEventListener('click', () => pick(i));
      return option;
    }));
    list.hidden = found.length === 0;
    input.setAttribute('aria-expanded', String(found.length > 0));
    status.textContent = found.length ? `${found.length} résultat${found.length > 1 ? 's' : ''}, flèches pour choisir`
      : `Aucun résultat pour « ${query} »`;
    emit('search-results', { count: found.length, query });
  }

  async function run(query) {
    inflight?.abort();
    if (query.length < 2) {
      inflight = null;
      setPending(false);
      status.textContent = '';
      results = [];
      list.replaceChildren();
      close();
      return;
    }
    const controller = new AbortController();
    inflight = controller;
    setPending(true);
    try {
      const params = new URLSearchParams({ q: query, limit: LIMIT });
      const response = await fetch(`${url}?${params}`, { signal: controller.signal, headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      if (controller.signal.aborted) return;
      show(query, body.results || []);
    } catch (error) {
      if (error.name === 'AbortError') return;
      status.textContent = 'La recherche est indisponible pour le moment.';
      emit('search-results', { count: 0, query, error: String(error.message || error) });
    } finally {
      if (inflight === controller) {
        inflight = null;
        setPending(false);
      }
    }
  }

  function move(step) {
    if (!results.length) return;
    if (list.hidden) { list.hidden = false; input.setAttribute('aria-expanded', 'true'); }
    active = (active + step + results.length) % results.length;
    [...list.children].forEach((option, i) => option.setAttribute('aria-selected', String(i === active)));
    input.setAttribute('aria-activedescendant', `result-${active}`);
    list.children[active].scrollIntoView({ block: 'nearest' });
  }

  function pick(i) {
    const result = results[i];
    if (!result) return;
    input.value = result.label || result.name;
    close();
    status.textContent = '';
    onPick(result);
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    const query = input.value.trim();
    timer = setTimeout(() => run(query), DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown') move(1);
    else if (event.key === 'ArrowUp') move(-1);
    else if (event.key === 'Enter') pick(active >= 0 ? active : 0);
    else if (event.key === 'Escape') {
      if (!list.hidden) close();
      else { input.value = ''; run(''); }
    } else return;
    event.preventDefault();
  });
  input.addEventListener('blur', close);
  input.addEventListener('focus', () => {
    if (results.length) { list.hidden = false; input.setAttribute('aria-expanded', 'true'); }
  });
  form.addEventListener('submit', (event) => event.preventDefault());
}

const KINDS = {
  etablissements: 'Établissement', communes: 'Commune', epci: 'EPCI', departements: 'Département',
  academies: 'Académie', regions: 'Région',
};
