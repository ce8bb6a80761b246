// The shell: picks the page from the path, keeps links inside the page
// (history.pushState), and shows the firing-alerts badge on every page.
import { clear, flash, h } from './dom.js';
import { get } from './api.js';
import overview from './overview.js';
import metrics from './metrics.js';
import dashboards from './dashboards.js';
import logs from './logs.js';
import alerts from './alerts.js';

const PAGES = { overview, metrics, dashboards, logs, alerts };

let cleanup = null;

function pageOf(path) {
  const m = /^\/ui\/([a-z]+)\/?$/.exec(path);
  return m && PAGES[m[1]] ? m[1] : path === '/' ? 'overview' : null;
}

/**
 * Draws the page for the current address, from scratch. Pages change their own
 * query string as their state changes (dom.setParams) without coming here.
 */
export async function route() {
  const name = pageOf(location.pathname);
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } }
  cleanup = null;
  const main = document.getElementById('main');
  if (!name) { clear(main, h('p', 'No such page.')); return; }
  clear(main);
  document.title = `instantops · ${name}`;
  try {
    cleanup = (await PAGES[name](main)) || null;
  } catch (e) {
    flash(e.message, 'error');
    console.warn(e);
  }
}

/** Goes to an address inside the dashboard without reloading. */
export function go(href, replace = false) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
  if (!pageOf(a.pathname)) return;
  e.preventDefault();
  history.pushState(null, '', a.pathname + a.search);
  route();
  document.getElementById('main').focus({ preventScroll: true });
});

window.addEventListener('popstate', route);

async function firing() {
  const badge = document.getElementById('firing');
  try {
    const r = await get('/api/checks?state=ERROR&state=WARN&state=EXCEPTION');
    const n = r.total ?? r.values.length;
    badge.hidden = n === 0;
    clear(badge, h('a', { href: '/ui/alerts?state=firing' }, `${n} firing`));
  } catch {
    badge.hidden = true;
  }
}

route();
firing();
setInterval(firing, 15000);
