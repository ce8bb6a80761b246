// The overview: is the box healthy, what is coming in and being dropped per
// input, memory per subsystem against its share of the budget, disk and
// retention, listeners, and the alerts that are firing. Polls /api/status;
// rates are the difference between two polls.
import { h, clear, num, bytes, duration } from './dom.js';
import { get } from './api.js';

const POLL_MS = 5000;

/** `name{a="b",c="d"}` -> {name, labels: {a: "b", c: "d"}} */
export function parseKey(key) {
  const brace = key.indexOf('{');
  if (brace < 0) return { name: key, labels: {} };
  const labels = {};
  for (const m of key.slice(brace + 1, -1).matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
  return { name: key.slice(0, brace), labels };
}

/** Per input: received, dropped (all reasons, with the reasons) and bad lines, as totals. */
export function perInput(status) {
  const inputs = {};
  const row = (i) => (inputs[i] ??= { received: 0, dropped: 0, bad: 0, reasons: {} });
  for (const [key, v] of Object.entries(status.counters)) {
    const { name, labels } = parseKey(key);
    if (!labels.input) continue;
    if (name === 'instantops_received_total') row(labels.input).received += v;
    else if (name === 'instantops_dropped_total' || name === 'instantops_udp_drops_total') {
      row(labels.input).dropped += v;
      const reason = labels.reason || 'udp_buffer';
      if (v) row(labels.input).reasons[reason] = (row(labels.input).reasons[reason] || 0) + v;
    } else if (name === 'instantops_bad_lines_total') row(labels.input).bad += v;
  }
  return inputs;
}

export default async function overview(main) {
  const parts = {
    health: h('section.card#health', { 'aria-label': 'health' }),
    alerts: h('section.card#firing-alerts', { 'aria-label': 'firing alerts' }),
    ingest: h('section.card.wide#ingest', { 'aria-label': 'ingest' }),
    memory: h('section.card#memory', { 'aria-label': 'memory' }),
    disk: h('section.card#disk', { 'aria-label': 'disk and retention' }),
    listeners: h('section.card#listeners', { 'aria-label': 'listeners' }),
  };
  clear(main, h('h1', 'Overview'), h('div.grid', Object.values(parts)));
  let previous = null;
  let first = true;
  const poll = async () => {
    const [status, ready, firing] = await Promise.all([
      get('/api/status'),
      fetch('/healthz').then((r) => r.ok, () => false),
      get('/api/checks?state=ERROR&state=WARN&state=EXCEPTION').catch(() => null),
    ]);
    const now = performance.now();
    drawHealth(parts.health, status, ready);
    drawIngest(parts.ingest, status, previous && { status: previous.status, seconds: (now - previous.at) / 1000 });
    drawMemory(parts.memory, status.memory);
    drawDisk(parts.disk, status);
    drawListeners(parts.listeners, status.listeners);
    drawAlerts(parts.alerts, firing);
    previous = { status, at: now };
    if (first) {
      first = false;
      performance.mark('overview-drawn');
      main.dataset.drawn = 'true';
    }
  };
  await poll();
  const timer = setInterval(() => poll().catch(() => {}), POLL_MS);
  return () => clearInterval(timer);
}

function drawHealth(el, s, ready) {
  const m = s.memory;
  clear(el, h('h2', 'Health'),
    h('p.big', h('span', { class: ready ? 'ok' : 'bad' }, ready ? '● ready' : '● starting')),
    h('dl',
      h('dt', 'version'), h('dd', s.version),
      h('dt', 'uptime'), h('dd', duration(s.uptime_s)),
      h('dt', 'resident memory'), h('dd', `${bytes(m.rss)} of ${bytes(m.limit)}`, meter(m.rss, m.limit)),
      h('dt', 'bad lines seen'), h('dd', num(s.bad_lines_seen))));
}

function meter(value, max) {
  const pct = max ? Math.min(100, (100 * value) / max) : 0;
  return h('span.meter', { role: 'meter', 'aria-valuenow': Math.round(pct), 'aria-valuemin': 0, 'aria-valuemax': 100 },
    h('span', { style: `width:${pct.toFixed(1)}%`, class: pct > 85 ? 'hot' : '' }));
}

function drawIngest(el, status, before) {
  const now = perInput(status);
  const then = before ? perInput(before.status) : null;
  const rate = (input, field) => {
    if (!then || !then[input] || before.seconds <= 0) return '…';
    return num(Math.max(0, now[input][field] - then[input][field]) / before.seconds) + '/s';
  };
  const rows = Object.keys(now).sort().map((input) => {
    const r = now[input];
    const reasons = Object.entries(r.reasons).map(([k, v]) => `${k}: ${num(v)}`).join(', ');
    return h('tr', { class: r.dropped || r.bad ? 'warn' : '' },
      h('th', { scope: 'row' }, input),
      h('td', rate(input, 'received')), h('td', num(r.received)),
      h('td', rate(input, 'dropped')), h('td', { title: reasons || 'none' }, num(r.dropped)),
      h('td', num(r.bad)));
  });
  clear(el, h('h2', 'Ingest by input'),
    h('table.data', h('thead', h('tr', h('th', 'input'), h('th', 'rate'), h('th', 'received'), h('th', 'drop rate'), h('th', 'dropped'), h('th', 'bad lines'))),
      h('tbody', rows)));
}

function drawMemory(el, m) {
  const rows = Object.entries(m.subsystems).map(([name, share]) => {
    const used = m.used[name];
    return h('tr', h('th', { scope: 'row' }, name.replace(/_/g, ' ')),
      h('td', used == null ? 'not measured' : bytes(used)), h('td', bytes(share)),
      h('td', used == null ? '' : meter(used, share)));
  });
  const a = m.allocators || {};
  clear(el, h('h2', 'Memory'),
    h('p', `${bytes(m.rss)} resident of the ${bytes(m.limit)} budget`),
    h('table.data', h('thead', h('tr', h('th', 'subsystem'), h('th', 'used'), h('th', 'share'), h('th', ''))), h('tbody', rows)),
    h('p.muted', `allocators: mimalloc ${bytes(a.mimalloc_committed)} committed, glibc malloc ${bytes(a.malloc_in_use)} in use`));
}

function drawDisk(el, s) {
  const st = s.storage || {};
  const tsdb = st.tsdb || {};
  const logs = st.logs || {};
  clear(el, h('h2', 'Disk and retention'),
    h('dl',
      h('dt', 'metrics on disk'), h('dd', bytes(tsdb.disk_bytes)),
      h('dt', 'metric retention'), h('dd', (tsdb.retentions || []).map((r) => h('div', h('code', r.pattern), ' ', r.retentions))),
      h('dt', 'logs on disk'), h('dd', `${bytes(logs.disk_bytes)} of ${bytes(logs.max_disk)}`, meter(logs.disk_bytes || 0, logs.max_disk || 0)),
      h('dt', 'log retention'), h('dd', logs.retention_s ? duration(logs.retention_s) : 'log store off'),
      h('dt', 'data folder'), h('dd', h('code', st.data_dir || ''))));
}

function drawListeners(el, listeners) {
  clear(el, h('h2', 'Listeners'),
    h('table.data', h('tbody', Object.entries(listeners).map(([name, addr]) => h('tr', h('th', { scope: 'row' }, name), h('td', h('code', addr)))))));
}

function drawAlerts(el, firing) {
  const list = firing ? firing.values : [];
  clear(el, h('h2', 'Firing alerts'),
    firing == null ? h('p.muted', 'alerting is off')
      : list.length === 0 ? h('p.ok', 'Nothing is firing.')
        : h('ul.alerts', list.map((c) => h('li', h('span', { class: 'state ' + c.state }, c.state), ' ',
          h('a', { href: '/ui/alerts?id=' + encodeURIComponent(c.id) }, c.name)))));
}
