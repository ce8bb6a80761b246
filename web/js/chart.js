// Graphs: Graphite render JSON drawn with uPlot, a legend with min, max, avg
// and last per series (click to hide one), drag to zoom, and the link from a
// graph's window to the logs of the same hosts.
import { h, clear, num } from './dom.js';
import { get, url } from './api.js';
import { label } from './time.js';

export const PALETTE = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16',
  '#f97316', '#6366f1', '#14b8a6', '#e11d48', '#a855f7', '#0ea5e9', '#65a30d', '#d97706'];

/**
 * Graphite series ([{target, datapoints: [[v, t]...], tags}]) as uPlot's
 * columns: one shared x (epoch seconds) and a y column per series, with null
 * where a series has no point at that time.
 */
export function columns(list) {
  if (!list.length) return [[]];
  const first = list[0].datapoints;
  const aligned = list.every((s) => s.datapoints.length === first.length
    && s.datapoints.every((p, i) => p[1] === first[i][1]));
  if (aligned) return [first.map((p) => p[1]), ...list.map((s) => s.datapoints.map((p) => p[0]))];
  const xs = [...new Set(list.flatMap((s) => s.datapoints.map((p) => p[1])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  return [xs, ...list.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [v, t] of s.datapoints) col[at.get(t)] = v;
    return col;
  })];
}

/** min, max, avg and last non-null value of a column. */
export function summary(col) {
  let min = Infinity, max = -Infinity, sum = 0, n = 0, last = null;
  for (const v of col) {
    if (v == null) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v; n++; last = v;
  }
  return n ? { min, max, avg: sum / n, last, n } : { min: null, max: null, avg: null, last: null, n: 0 };
}

/**
 * Draws `list` into `el` over [from, until] (epoch seconds). Options:
 * `height`, `onZoom(from, until, {shift})` after a drag, `thresholds`
 * ([{value, color, label}]) drawn as flat lines, `bars` for a histogram.
 * Returns {destroy()}; `el.dataset.points` holds how many non-null points
 * were drawn.
 */
export function draw(el, list, from, until, opts = {}) {
  clear(el);
  const data = columns(list);
  const thresholds = opts.thresholds || [];
  for (const t of thresholds) data.push(data[0].map(() => t.value));
  const points = data.slice(1, 1 + list.length).reduce((n, col) => n + col.filter((v) => v != null).length, 0);
  el.dataset.points = String(points);
  el.dataset.series = String(list.length);
  const plot = h('div.plot');
  const legend = h('table.legend');
  el.append(plot);
  if (opts.legend !== false) el.append(legend);
  let shift = false;
  const series = [
    { value: (u, v) => (v == null ? '' : label(v)) },
    ...list.map((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      // A value with gaps on both sides has no line: it is drawn as a dot.
      const lone = isolated(data[i + 1]);
      const one = { label: s.target, stroke: color, width: 1.5, spanGaps: false, points: { show: lone.length > 0, size: 5, fill: color, filter: () => lone } };
      return opts.bars ? { ...one, fill: color + '99', paths: uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } } : one;
    }),
    ...thresholds.map((t) => ({ label: t.label, stroke: t.color, dash: [6, 4], width: 1, points: { show: false } })),
  ];
  const width = () => Math.max(200, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 600));
  const u = new uPlot({
    width: width(),
    height: opts.height || 240,
    series,
    legend: { show: false },
    scales: { x: { time: true, min: from, max: until }, y: { range: (u, lo, hi) => yRange(lo, hi, opts.bars) } },
    axes: [{ stroke: '#888', grid: { stroke: '#8882' } }, { stroke: '#888', grid: { stroke: '#8882' }, values: (u, vs) => vs.map(num), size: 56 }],
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 3 || !opts.onZoom) return;
        const a = u.posToVal(u.select.left, 'x');
        const b = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        opts.onZoom(Math.floor(a), Math.ceil(b), { shift });
      }],
    },
  }, data, plot);
  plot.addEventListener('mousedown', (e) => { shift = e.shiftKey; }, true);
  if (opts.legend !== false) fillLegend(legend, list, data, u);
  const resize = new ResizeObserver(() => u.setSize({ width: width(), height: opts.height || 240 }));
  resize.observe(el);
  return { plot: u, destroy() { resize.disconnect(); u.destroy(); } };
}

/** Indices of values whose neighbours are both missing. */
export function isolated(col) {
  const out = [];
  for (let i = 0; i < col.length; i++) {
    if (col[i] != null && (i === 0 || col[i - 1] == null) && (i === col.length - 1 || col[i + 1] == null)) out.push(i);
  }
  return out;
}

function yRange(lo, hi, bars) {
  if (lo == null || hi == null) return [0, 1];
  if (bars || lo >= 0) lo = 0;
  if (lo === hi) return lo === 0 ? [0, 1] : [lo - Math.abs(lo) / 2, hi + Math.abs(hi) / 2];
  const pad = (hi - lo) * 0.05;
  return [lo < 0 ? lo - pad : lo, hi + pad];
}

function fillLegend(table, list, data, u) {
  table.append(h('thead', h('tr', h('th', 'series'), h('th', 'min'), h('th', 'max'), h('th', 'avg'), h('th', 'last'))));
  const body = h('tbody');
  list.forEach((s, i) => {
    const st = summary(data[i + 1]);
    const row = h('tr', { tabindex: 0, title: 'click or Enter: show or hide this series' },
      h('td.name', h('span.swatch', { style: `background:${PALETTE[i % PALETTE.length]}` }), s.target),
      h('td', num(st.min)), h('td', num(st.max)), h('td', num(st.avg)), h('td', num(st.last)));
    const toggle = () => {
      const show = !u.series[i + 1].show;
      u.setSeries(i + 1, { show });
      row.classList.toggle('off', !show);
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
    body.append(row);
  });
  table.append(body);
}

/**
 * The log query for the hosts and tags a set of series names carries:
 * Graphite tags first (`host=web01` in `cpu;host=web01`), then any path node
 * that is a host the log store has seen in that window, then Diamond's
 * `servers.<host>.` convention. Empty when nothing names a host.
 */
export async function logQueryFor(list, from, until) {
  const terms = new Set();
  for (const s of list) {
    const tags = { ...(s.tags || {}), ...tagsOf(s.target) };
    for (const k of ['host', 'hostname', 'server', 'instance']) if (tags[k]) terms.add(`host:${quote(tags[k])}`);
    for (const k of ['service', 'app', 'job']) if (tags[k]) terms.add(`${k}:${quote(tags[k])}`);
  }
  if (!terms.size) {
    let known = [];
    try {
      const r = await get(url('/api/logs/fields', { field: 'host', from: String(Math.floor(from)), until: String(Math.ceil(until)), size: 1000 }));
      known = r.values.map((v) => String(v.value));
    } catch { /* the log store may be off */ }
    const hosts = new Set(known.map((k) => k.toLowerCase()));
    for (const s of list) {
      const nodes = pathOf(s.target).split('.');
      const hit = nodes.find((n) => hosts.has(n.toLowerCase()));
      if (hit) terms.add(`host:${quote(known.find((k) => k.toLowerCase() === hit.toLowerCase()))}`);
      else if (nodes[0] === 'servers' && nodes[1]) terms.add(`host:${quote(nodes[1].replace(/_/g, '.'))}`);
    }
  }
  const all = [...terms];
  return all.length > 1 ? '(' + all.join(' OR ') + ')' : all[0] || '';
}

function tagsOf(name) {
  const out = {};
  for (const part of name.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** The innermost metric path in a target or alias (`alias(a.b.c, "x")` -> "a.b.c"). */
function pathOf(target) {
  const m = target.match(/[A-Za-z0-9_\-*{}[\]]+(\.[A-Za-z0-9_\-*{}[\]]+)+/);
  return (m ? m[0] : target).split(';')[0];
}

function quote(v) {
  return /^[A-Za-z0-9_.\-]+$/.test(v) ? v : '"' + String(v).replace(/(["\\])/g, '\\$1') + '"';
}

/** The /ui/logs address for a window and the hosts of `list`. */
export async function logsHref(list, from, until) {
  const q = await logQueryFor(list, from, until);
  return url('/ui/logs', { q, from: String(Math.floor(from)), until: String(Math.ceil(until)) });
}
