// Alerts: checks with their state, history and acknowledgement, and a form to
// create or edit a check with a live preview of its target (a graph with the
// warn and error lines) or its log query (matching events over time).
// State: ?state=firing, ?id=<check>, ?new=1
import { h, clear, flash, num, params, debounce } from './dom.js';
import { get, post, put, del, url, render } from './api.js';
import { draw } from './chart.js';
import { window as span } from './time.js';
import { go } from './app.js';

const FIRING = ['ERROR', 'WARN', 'EXCEPTION'];

export default async function alerts(main) {
  const p = params();
  if (p.get('new')) return form(main, null);
  if (p.get('id')) return detail(main, p.get('id'));
  return list(main, p.get('state'));
}

async function list(main, state) {
  const r = await get('/api/checks');
  const checks = r.values.filter((c) => state !== 'firing' || FIRING.includes(c.state))
    .sort((a, b) => rank(b.state) - rank(a.state) || a.name.localeCompare(b.name));
  clear(main, h('h1', 'Alerts'),
    h('div.toolbar',
      h('a.button.primary', { href: '/ui/alerts?new=1' }, 'New check'),
      state === 'firing' ? h('a', { href: '/ui/alerts' }, 'all checks') : h('a', { href: '/ui/alerts?state=firing' }, 'only firing')),
    checks.length === 0 ? h('p.muted', state === 'firing' ? 'Nothing is firing.' : 'No checks yet.')
      : h('table.data#checks', h('thead', h('tr', h('th', 'state'), h('th', 'check'), h('th', 'kind'), h('th', 'target'), h('th', 'warn / error'), h('th', 'last run'))),
        h('tbody', checks.map((c) => h('tr', { class: c.enabled ? '' : 'off' },
          h('td', badge(c.state)),
          h('td', h('a', { href: '/ui/alerts?id=' + encodeURIComponent(c.id) }, c.name), c.enabled ? '' : ' (disabled)'),
          h('td', c.kind || 'graphite'), h('td', h('code', c.target)),
          h('td', `${c.warn} / ${c.error}`),
          h('td', c.lastCheck ? new Date(c.lastCheck).toLocaleString() : 'not yet'))))));
}

function rank(state) {
  return ['UNKNOWN', 'OK', 'WARN', 'ERROR', 'EXCEPTION'].indexOf(state);
}

function badge(state) {
  return h('span', { class: 'state ' + state }, state);
}

async function detail(main, id) {
  const path = '/api/checks/' + encodeURIComponent(id);
  const [c, history] = await Promise.all([get(path), get(path + '/alerts?items=100')]);
  const preview = h('div.graph#check-preview');
  const rows = history.values.slice().reverse().map((a) => {
    const ack = a.acknowledged
      ? h('span.muted', `acknowledged by ${a.acknowledged.by}${a.acknowledged.note ? ': ' + a.acknowledged.note : ''}`)
      : FIRING.includes(a.toType)
        ? h('button', {
          type: 'button',
          onclick: async () => {
            const note = prompt('Note for the acknowledgement (optional):') ?? null;
            if (note === null) return;
            try {
              await post(`${path}/alerts/${encodeURIComponent(a.id)}/ack`, { by: 'dashboard', note });
              go(location.pathname + location.search, true);
            } catch (e) { flash(e.message, 'error'); }
          },
        }, 'Acknowledge')
        : '';
    return h('tr', h('td', new Date(a.timestamp).toLocaleString()), h('td', h('code', a.target)),
      h('td', badge(a.fromType), ' → ', badge(a.toType)), h('td', num(Number(a.value))), h('td', ack));
  });
  clear(main, h('h1', badge(c.state), ' ', c.name),
    c.description ? h('p', c.description) : null,
    h('div.toolbar',
      c.fromConfig ? h('span.muted', 'declared in the config file: change it there') : h('a.button', { href: `/ui/alerts?new=1&edit=${encodeURIComponent(id)}` }, 'Edit'),
      h('button', {
        type: 'button',
        onclick: async () => {
          try { await put(path, { ...c, enabled: !c.enabled }); go(location.pathname + location.search, true); } catch (e) { flash(e.message, 'error'); }
        },
        disabled: c.fromConfig,
      }, c.enabled ? 'Disable' : 'Enable'),
      c.fromConfig ? null : h('button.danger', {
        type: 'button',
        onclick: async () => {
          if (!confirm(`Delete the check “${c.name}”?`)) return;
          try { await del(path); go('/ui/alerts'); } catch (e) { flash(e.message, 'error'); }
        },
      }, 'Delete'),
      h('a', { href: '/ui/alerts' }, 'all checks')),
    h('dl.check',
      h('dt', 'kind'), h('dd', c.kind || 'graphite'),
      h('dt', 'target'), h('dd', h('code', c.target)),
      h('dt', 'window'), h('dd', `${c.from || 'default'} → ${c.until || 'now'}`),
      h('dt', 'warn / error'), h('dd', `${c.warn} / ${c.error}`),
      h('dt', 'last run'), h('dd', c.lastCheck ? new Date(c.lastCheck).toLocaleString() : 'not yet'),
      h('dt', 'notifications'), h('dd', `${(c.subscriptions || []).length} subscription(s)`),
      c.silencedUntil ? [h('dt', 'silenced until'), h('dd', new Date(c.silencedUntil).toLocaleString())] : null),
    preview,
    h('h2', 'History'),
    rows.length ? h('table.data#alert-history', h('thead', h('tr', h('th', 'time'), h('th', 'series'), h('th', 'change'), h('th', 'value'), h('th', ''))), h('tbody', rows))
      : h('p.muted', 'No alerts yet.'));
  const chart = await drawPreview(preview, c);
  return () => chart?.destroy();
}

/** A check's target (or log query) over the last hour, with its thresholds. */
async function drawPreview(el, c, signal) {
  const from = '-1h';
  const [f, u] = span(from, 'now');
  const thresholds = [];
  const warn = Number(c.warn), error = Number(c.error);
  if (Number.isFinite(warn) && c.kind !== 'heartbeat') thresholds.push({ value: warn, color: '#f59e0b', label: 'warn' });
  if (Number.isFinite(error) && c.kind !== 'heartbeat') thresholds.push({ value: error, color: '#ef4444', label: 'error' });
  try {
    let list;
    if (c.kind === 'logs') {
      const r = await get(url('/api/logs/histogram', { q: c.target, from, buckets: 60 }), signal);
      list = [{ target: `events matching ${c.target}`, datapoints: r.buckets.map(([t, n]) => [n, t]) }];
    } else {
      list = await render([c.target], from, 'now', 400, signal);
    }
    return draw(el, list, f, u, { height: 200, thresholds, bars: c.kind === 'logs' });
  } catch (e) {
    if (e.name !== 'AbortError') clear(el, h('p.error', e.message));
    return null;
  }
}

async function form(main, _) {
  const editing = params().get('edit');
  const c = editing ? await get('/api/checks/' + encodeURIComponent(editing))
    : { name: '', description: '', kind: 'graphite', target: '', from: '', warn: '', error: '', enabled: true, allowNoData: false };
  const field = (name, label, attrs = {}) => {
    const input = h('input', { name, value: c[name] ?? '', 'aria-label': label, ...attrs });
    return [h('label', { for: 'check-' + name }, label), Object.assign(input, { id: 'check-' + name })];
  };
  const kind = h('select#check-kind', { name: 'kind' },
    [['graphite', 'a Graphite target: latest value of each series'], ['logs', 'a log query: matching events in the window'], ['heartbeat', 'a Graphite target: seconds since the last value']]
      .map(([v, l]) => h('option', { value: v, selected: v === (c.kind || 'graphite') }, l)));
  const [tl, target] = field('target', 'target or query', { required: true, size: 60, spellcheck: 'false' });
  const [nl, name] = field('name', 'name', { required: true, size: 40 });
  const [dl, description] = field('description', 'description', { size: 60 });
  const [fl, from] = field('from', 'window', { placeholder: '-5min (logs) / -11min', size: 10 });
  const [wl, warn] = field('warn', 'warn', { required: true, inputmode: 'decimal', size: 8 });
  const [el, error] = field('error', 'error', { required: true, inputmode: 'decimal', size: 8 });
  const enabled = h('input#check-enabled', { type: 'checkbox', name: 'enabled', checked: c.enabled !== false });
  const noData = h('input#check-allow-no-data', { type: 'checkbox', name: 'allowNoData', checked: !!c.allowNoData });
  const preview = h('div.graph#check-preview', { 'aria-live': 'polite' });
  let chart = null;
  let controller = null;
  const update = debounce(async () => {
    controller?.abort();
    controller = new AbortController();
    chart?.destroy();
    if (!target.value.trim()) { clear(preview, h('p.muted', 'The preview shows the target over the last hour.')); return; }
    chart = await drawPreview(preview, { kind: kind.value, target: target.value.trim(), warn: warn.value, error: error.value }, controller.signal);
  }, 300);
  for (const i of [target, warn, error, kind]) i.addEventListener('input', update);
  const submit = async (e) => {
    e.preventDefault();
    const body = {
      ...(editing ? c : {}),
      name: name.value.trim(), description: description.value.trim(), kind: kind.value, target: target.value.trim(),
      from: from.value.trim() || null, warn: warn.value.trim(), error: error.value.trim(),
      enabled: enabled.checked, allowNoData: noData.checked,
    };
    try {
      const saved = editing ? await put('/api/checks/' + encodeURIComponent(editing), body) : await post('/api/checks', body);
      flash(editing ? 'Check saved.' : 'Check created.');
      go('/ui/alerts?id=' + encodeURIComponent((saved && saved.id) || editing));
    } catch (err) { flash(err.message, 'error'); }
  };
  clear(main, h('h1', editing ? 'Edit check' : 'New check'),
    h('form.check#check-form', { onsubmit: submit },
      h('div.fields', nl, name, dl, description, h('label', { for: 'check-kind' }, 'kind'), kind, tl, target, fl, from, wl, warn, el, error,
        h('span'), h('label', enabled, ' enabled'), h('span'), h('label', noData, ' no data is OK')),
      h('h2', 'Preview'), preview,
      h('div.toolbar', h('button.primary', { type: 'submit' }, editing ? 'Save' : 'Create'), h('a', { href: '/ui/alerts' }, 'Cancel'))));
  update();
  return () => { controller?.abort(); chart?.destroy(); };
}
