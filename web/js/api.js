// Every call to the appliance's HTTP API goes through here: JSON in and out,
// errors as exceptions carrying the server's {"error": ...} message, and the
// write token (http.token) asked for once and kept in localStorage.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const TOKEN = 'instantops.token';

async function call(method, url, body, signal) {
  const headers = {};
  const token = localStorage.getItem(TOKEN);
  if (token && method !== 'GET') headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    signal,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  if (res.status === 401 && method !== 'GET') {
    const given = prompt('This appliance needs its write token (http.token):');
    if (given) {
      localStorage.setItem(TOKEN, given.trim());
      return call(method, url, body, signal);
    }
  }
  if (!res.ok) {
    let message = res.status + ' ' + res.statusText;
    try {
      const j = await res.json();
      if (j && j.error) message = typeof j.error === 'string' ? j.error : j.error.reason || JSON.stringify(j.error);
    } catch { /* not JSON */ }
    throw new ApiError(res.status, message);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (url, signal) => call('GET', url, undefined, signal);
export const post = (url, body) => call('POST', url, body);
export const put = (url, body) => call('PUT', url, body);
export const del = (url) => call('DELETE', url);

/** "/render?" + params, where array values repeat the key. */
export function url(path, values) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one != null && one !== '') p.append(k, one);
  }
  return path + '?' + p;
}

/** Graphite render JSON for several targets at once. */
export function render(targets, from, until, maxDataPoints, signal) {
  return get(url('/render', { target: targets, from, until, format: 'json', maxDataPoints }), signal);
}

/** `/functions`, fetched once. */
let functions;
export function graphiteFunctions() {
  functions ??= get('/functions').catch((e) => { functions = undefined; throw e; });
  return functions;
}
