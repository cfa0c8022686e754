// The control panel: a side column on wide screens, a bottom sheet on phones (under 700 px), folded
// to its handle and the search box so the map keeps most of the screen. The handle opens and folds
// it on a tap, a key press, or a swipe up or down; its height is published as --panel-height so the
// legend, the sheet and MapLibre's bottom controls stay above it.
const PHONE = window.matchMedia('(max-width: 700px)');
const SWIPE_PX = 30;

export function bindPanel(panel, handle) {
  const label = handle.querySelector('.handle-text');
  const set = (expanded) => {
    panel.dataset.state = expanded ? 'expanded' : 'collapsed';
    handle.setAttribute('aria-expanded', String(expanded));
    label.textContent = expanded ? 'Masquer les options' : 'Afficher les options';
  };
  let start = null;
  let swiped = false;
  handle.addEventListener('pointerdown', (event) => {
    start = event.clientY;
    swiped = false;
    handle.setPointerCapture(event.pointerId);
  });
  handle.addEventListener('pointermove', (event) => {
    if (start === null || swiped) return;
    const moved = event.clientY - start;
    if (Math.abs(moved) < SWIPE_PX) return;
    swiped = true;
    set(moved < 0);
  });
  handle.addEventListener('pointerup', () => { start = null; });
  handle.addEventListener('click', () => {
    if (!swiped) set(panel.dataset.state !== 'expanded');
    swiped = false;
  });
  new ResizeObserver(() => publishHeight(panel)).observe(panel);
  PHONE.addEventListener('change', () => publishHeight(panel));
  publishHeight(panel);
  return { expand: () => set(true), collapse: () => set(false) };
}

// Whether the page has a phone's layout (the embedded map too).
export function isPhone() {
  return PHONE.matches;
}

function publishHeight(panel) {
  const height = PHONE.matches ? panel.getBoundingClientRect().height : 0;
  document.documentElement.style.setProperty('--panel-height', `${Math.round(height)}px`);
}
