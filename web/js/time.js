// Graphite time specs in the browser, as far as the page needs them: the
// absolute window a chart covers, and the range picker every page shares.
// The server parses the same specs itself; this is only for drawing.
import { h } from './dom.js';

const UNITS = [
  [/^(s|sec|secs|second|seconds)$/, 1],
  [/^(min|mins|minute|minutes)$/, 60],
  [/^(h|hour|hours)$/, 3600],
  [/^(d|day|days)$/, 86400],
  [/^(w|week|weeks)$/, 604800],
  [/^(mon|month|months)$/, 30 * 86400],
  [/^(y|year|years)$/, 365 * 86400],
];

/** A time spec to epoch seconds, or null when the browser can't tell. */
export function toEpoch(spec, now = Date.now() / 1000) {
  spec = String(spec ?? '').trim();
  if (spec === '' || spec === 'now') return now;
  let m = /^([+-])(\d+)\s*([a-z]+)$/i.exec(spec);
  if (m) {
    const unit = UNITS.find(([re]) => re.test(m[3].toLowerCase()));
    if (!unit) return null;
    return now + (m[1] === '-' ? -1 : 1) * Number(m[2]) * unit[1];
  }
  if (/^\d{9,11}$/.test(spec)) return Number(spec);
  m = /^(\d\d):(\d\d)_(\d{4})(\d\d)(\d\d)$/.exec(spec);
  if (m) return new Date(+m[3], +m[4] - 1, +m[5], +m[1], +m[2]).getTime() / 1000;
  const t = Date.parse(spec);
  return Number.isNaN(t) ? null : t / 1000;
}

/** [from, until] in epoch seconds; falls back to the last hour. */
export function window(from, until) {
  const now = Date.now() / 1000;
  const u = toEpoch(until || 'now', now) ?? now;
  const f = toEpoch(from || '-1h', now) ?? u - 3600;
  return [f, u];
}

export function label(epoch) {
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const PRESETS = ['-15min', '-1h', '-6h', '-24h', '-7d', '-30d'];

/**
 * The range picker: presets, free from/until fields (any Graphite spec), and
 * Apply. `onChange(from, until)` gets the specs as typed.
 */
export function rangePicker(from, until, onChange) {
  const f = h('input.spec', { 'aria-label': 'from', value: from, size: 14, name: 'from' });
  const u = h('input.spec', { 'aria-label': 'until', value: until, size: 14, name: 'until' });
  const apply = () => onChange(f.value.trim() || '-1h', u.value.trim() || 'now');
  const key = (e) => { if (e.key === 'Enter') apply(); };
  f.addEventListener('keydown', key);
  u.addEventListener('keydown', key);
  return h('div.range', { role: 'group', 'aria-label': 'time range' },
    PRESETS.map((p) => h('button.preset', {
      type: 'button',
      'aria-pressed': String(p === from && (until || 'now') === 'now'),
      onclick: () => onChange(p, 'now'),
    }, p.slice(1))),
    h('label', 'from ', f), h('label', 'until ', u),
    h('button', { type: 'button', onclick: apply }, 'Apply'));
}
