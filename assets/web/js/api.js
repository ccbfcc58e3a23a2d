// Talking to sdc serve: JSON requests with errors turned into sentences, job event streams, and
// resumable chunked uploads.

// The message a failed response carries: 422 {"detail": [{loc, msg}]}, or {"error", "detail"}.
export function errorText(status, body) {
  if (body && Array.isArray(body.detail))
    return body.detail.map((d) => `${(d.loc || []).filter((l) => l !== 'body').join('.')}: ${d.msg}`).join('\n');
  if (body && (body.detail || body.errors || body.error))
    return String(body.detail || body.errors || body.error);
  return `HTTP ${status}`;
}

export async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new Error(`the server did not answer (${e.message})`);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new Error(errorText(res.status, json || text));
  return json;
}

// Follows a job's Server-Sent Events; onEvent(name, data) for each. Resolves with the final job
// (GET /v1/jobs/{id}) once "finished" arrives; the browser reconnects with Last-Event-ID itself.
export function watchJob(id, onEvent) {
  return new Promise((resolve, reject) => {
    const es = new EventSource(`/v1/jobs/${id}/events`);
    let closed = false;
    const finish = async () => {
      if (closed) return;
      closed = true;
      es.close();
      try { resolve(await api('GET', `/v1/jobs/${id}`)); } catch (e) { reject(e); }
    };
    for (const name of ['queued', 'started', 'step']) {
      es.addEventListener(name, (ev) => onEvent(name, JSON.parse(ev.data)));
    }
    es.addEventListener('finished', (ev) => { onEvent('finished', JSON.parse(ev.data)); finish(); });
    es.onerror = async () => {
      // A closed stream after the end, or a job that expired: ask once for its state.
      try {
        const j = await api('GET', `/v1/jobs/${id}`);
        if (!['queued', 'running'].includes(j.status)) finish();
      } catch (e) { if (!closed) { closed = true; es.close(); reject(e); } }
    };
  });
}

const CHUNK = 8 * 1024 * 1024;  // under the server's body cap; a dropped chunk costs little

// Uploads `file` in chunks (POST /v1/uploads, then PUT with Content-Range), resuming where the
// server says after a network error. onProgress(sent, total). Resolves with the upload object.
export async function uploadFile(file, onProgress, isCancelled = () => false) {
  let up = await api('POST', '/v1/uploads', { name: file.name, size: file.size });
  let failures = 0;
  while (!up.complete) {
    if (isCancelled()) {
      await api('DELETE', `/v1/uploads/${up.id}`).catch(() => {});
      throw new Error('upload cancelled');
    }
    const start = up.received;
    const end = Math.min(file.size, start + CHUNK);
    onProgress(start, file.size);
    try {
      const res = await fetch(`/v1/uploads/${up.id}`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream',
                   'Content-Range': `bytes ${start}-${end - 1}/${file.size}` },
        body: file.slice(start, end),
      });
      const json = await res.json().catch(() => null);
      if (res.status === 409 && json && json.upload) { up = json.upload; continue; }
      if (!res.ok) throw Object.assign(new Error(errorText(res.status, json)), { fatal: true });
      up = json;
      failures = 0;
    } catch (e) {
      if (e.fatal || ++failures > 5) throw e;
      await new Promise((r) => setTimeout(r, 500 * failures));
      up = await api('GET', `/v1/uploads/${up.id}`);  // resume where the server stands
    }
  }
  onProgress(file.size, file.size);
  return up;
}

export function formatBytes(n) {
  if (n == null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// A tiny publish/subscribe between the pages ("models-changed", "use-model").
const listeners = {};
export const bus = {
  on(name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
  emit(name, data) { (listeners[name] || []).forEach((fn) => fn(data)); },
};

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else if (v !== false && v != null) e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
