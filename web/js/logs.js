// Log discovery: a query bar in the search API's Lucene syntax, a histogram
// (drag to zoom), newest-first results with expandable events, a field
// sidebar with top values (click to filter), and live tail over SSE.
// State: ?q=..&from=..&until=..
import { h, clear, flash, num, params, setParams } from './dom.js';
import { get, url } from './api.js';
import { draw } from './chart.js';
import { label, rangePicker, window as span } from './time.js';

const PAGE = 100;
const TAIL_MAX = 500;
const SHOWN = ['@timestamp', 'host', 'level', 'message'];

/** `field:"value"` (or `-field:"value"`) appended to a query. */
export function withFilter(q, field, value, negate = false) {
  const v = '"' + String(value).replace(/(["\\])/g, '\\$1') + '"';
  const term = `${negate ? '-' : ''}${field.replace(/([:\s\\])/g, '\\$1')}:${v}`;
  q = q.trim();
  return !q || q === '*' ? term : `${q} AND ${term}`;
}

export default async function logs(main) {
  const p = params();
  let q = p.get('q') || '';
  let from = p.get('from') || '-1h';
  let until = p.get('until') || 'now';
  let cursor = null;
  let hits = [];
  let tail = null;
  let chart = null;

  const input = h('input#log-query', { name: 'q', value: q, placeholder: 'level:error AND host:web* AND NOT "health check"', 'aria-label': 'log query', spellcheck: 'false' });
  const tailButton = h('button#tail', { type: 'button', 'aria-pressed': 'false', onclick: () => toggleTail() }, 'Live tail');
  const range = h('div');
  const histogram = h('div.graph#histogram', { 'aria-label': 'events over time' });
  const summary = h('p.muted#log-summary', { 'aria-live': 'polite' });
  const rows = h('tbody');
  const more = h('button', { type: 'button', hidden: true, onclick: () => search(true) }, 'Older events');
  const fields = h('ul.fields#fields', { 'aria-label': 'fields' });
  clear(main, h('h1', 'Logs'),
    h('form.query', { role: 'search', onsubmit: (e) => { e.preventDefault(); q = input.value.trim(); setParams({ q }, true); run(); } },
      input, h('button.primary', { type: 'submit' }, 'Search'), tailButton),
    range,
    h('div.split',
      h('aside.sidebar', h('h2', 'Fields'), fields),
      h('section.content', histogram, summary,
        h('table.data.events#events', h('thead', h('tr', h('th', 'time'), h('th', 'host'), h('th', 'level'), h('th', 'message'))), rows),
        more)));

  const filter = (field, value, negate) => {
    q = withFilter(q, field, value, negate);
    input.value = q;
    setParams({ q }, true);
    run();
  };

  const eventRow = (ev) => {
    const tr = h('tr.event', { tabindex: 0, 'aria-expanded': 'false' },
      h('td.time', { title: ev['@timestamp'] || '' }, when(ev['@timestamp'])),
      h('td', ev.host ?? ''), h('td', { class: 'level ' + String(ev.level || '').toLowerCase() }, ev.level ?? ''),
      h('td.message', String(ev.message ?? '')));
    const toggle = () => {
      const open = tr.getAttribute('aria-expanded') === 'true';
      tr.setAttribute('aria-expanded', String(!open));
      if (open) { tr.nextElementSibling?.classList.contains('detail') && tr.nextElementSibling.remove(); return; }
      tr.after(h('tr.detail', h('td', { colspan: 4 }, h('table.kv', Object.entries(ev).map(([k, v]) => h('tr',
        h('th', k),
        h('td', h('button.mini', { type: 'button', title: `only ${k} = this`, onclick: () => filter(k, flat(v)) }, '+'),
          h('button.mini', { type: 'button', title: `not ${k} = this`, onclick: () => filter(k, flat(v), true) }, '−')),
        h('td', h('pre', flat(v)))))))));
    };
    tr.addEventListener('click', toggle);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); toggle(); } });
    return tr;
  };

  const drawFields = () => {
    const seen = new Map();
    for (const ev of hits) for (const k of Object.keys(ev)) seen.set(k, (seen.get(k) || 0) + 1);
    const names = [...seen.keys()].filter((k) => k !== '@timestamp' && k !== 'message').sort((a, b) => seen.get(b) - seen.get(a) || a.localeCompare(b));
    clear(fields, names.map((name) => {
      const li = h('li');
      const values = h('ul.values');
      const open = async () => {
        if (values.childElementCount) { values.replaceChildren(); return; }
        try {
          const r = await get(url('/api/logs/fields', { field: name, q, from, until, size: 10 }));
          clear(values, r.values.map((v) => h('li', h('button.value', { type: 'button', title: `filter ${name}:${v.value}`, onclick: () => filter(name, v.value) },
            h('span', String(v.value)), h('small', num(v.count))))),
          r.values.length ? null : h('li.muted', 'no values (text field?)'));
        } catch (e) { clear(values, h('li.error', e.message)); }
      };
      li.append(h('button.field', { type: 'button', 'aria-label': `top values of ${name}`, onclick: open }, name, h('small', ` ${seen.get(name)}/${hits.length}`)), values);
      return li;
    }));
  };

  const search = async (older = false) => {
    try {
      const r = await get(url('/api/logs/search', { q, from, until, limit: PAGE, cursor: older ? cursor : null }));
      if (!older) { hits = []; rows.replaceChildren(); }
      hits.push(...r.hits);
      rows.append(...r.hits.map(eventRow));
      cursor = r.cursor;
      more.hidden = !cursor;
      summary.textContent = `${num(r.total)} events match${r.timed_out ? ' (search timed out: partial)' : ''} · ${r.took_ms} ms`;
      summary.dataset.total = String(r.total);
      drawFields();
    } catch (e) {
      summary.textContent = '';
      flash(e.message, 'error');
    }
  };

  const drawHistogram = async () => {
    chart?.destroy();
    chart = null;
    try {
      const r = await get(url('/api/logs/histogram', { q, from, until, buckets: 80 }));
      const [f, u] = span(from, until);
      chart = draw(histogram, [{ target: 'events', datapoints: r.buckets.map(([t, n]) => [n, t]) }], f, u, {
        height: 120, bars: true, legend: false,
        onZoom: (a, b) => { from = String(a); until = String(b); setParams({ from, until }, true); run(); },
      });
    } catch (e) { clear(histogram, h('p.error', e.message)); }
  };

  const run = () => {
    clear(range, rangePicker(from, until, (f, u) => { from = f; until = u; setParams({ from, until }, true); run(); }));
    if (tail) { stopTail(); startTail(); }
    return Promise.all([drawHistogram(), search()]);
  };

  const startTail = () => {
    tail = new EventSource(url('/api/logs/tail', { q }));
    tail.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      hits.unshift(ev);
      rows.prepend(eventRow(ev));
      while (rows.childElementCount > TAIL_MAX) rows.lastElementChild.remove();
    };
    tail.addEventListener('dropped', (m) => flash(`live tail fell behind: ${m.data} events skipped`));
    tail.onerror = () => summary.textContent = 'live tail: reconnecting…';
    tailButton.setAttribute('aria-pressed', 'true');
    tailButton.classList.add('primary');
  };
  const stopTail = () => {
    tail?.close();
    tail = null;
    tailButton.setAttribute('aria-pressed', 'false');
    tailButton.classList.remove('primary');
  };
  const toggleTail = () => (tail ? stopTail() : startTail());

  await run();
  input.focus();
  return () => { stopTail(); chart?.destroy(); };
}

/** An event's @timestamp in the browser's time zone, to the millisecond, as the axes show time. */
function when(ts) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return String(ts ?? '');
  return label(t / 1000) + '.' + String(t % 1000).padStart(3, '0');
}

function flat(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
