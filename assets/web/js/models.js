// The Models page: every model the server can serve, with what `sdc inspect` says of it (kind,
// size, precision, baked LoRAs, recommended settings), load / unload, and "generate with this".
import { api, bus, formatBytes, el } from './api.js';

const $ = (id) => document.getElementById(id);

function showError(msg) { $('models-error').textContent = msg || ''; $('models-error').hidden = !msg; }

async function refresh() {
  showError('');
  let list;
  try { list = await api('GET', '/v1/models'); } catch (e) { showError(e.message); return; }
  let loaded = [];
  try { loaded = (await api('GET', '/v1/models/loaded')).loaded.map((m) => m.model); } catch { /* optional */ }
  const rows = await Promise.all(list.data.map(async (m) => {
    let info = null;
    try { info = await api('GET', `/v1/files/info?path=${encodeURIComponent(m.id)}`); } catch { /* outside the models folder */ }
    const d = (info && info.details) || {};
    const precision = d.precision ? Object.entries(d.precision).map(([k, v]) => `${k} ${v}`).join(', ') : '';
    const baked = (d.loras || []).map((l) => `${l.name} ×${l.scale}`).join(', ');
    const defaults = d.defaults && d.defaults.sampler ? `${d.defaults.sampler}, ${d.defaults.steps} steps, CFG ${d.defaults.cfg_scale}` : '';
    return el('tr', { 'data-model': m.id },
      el('td', { text: m.id + (loaded.includes(m.id) ? ' (loaded)' : '') }),
      el('td', { text: info ? info.kind : '' }),
      el('td', { text: info ? formatBytes(info.size) : '' }),
      el('td', { text: precision }),
      el('td', { text: baked }),
      el('td', { text: defaults }),
      el('td', {},
        el('button', { type: 'button', text: 'Load', onclick: async () => {
          try { await api('POST', '/v1/models/load', { model: m.id }); refresh(); } catch (e) { showError(e.message); } } }),
        ' ',
        el('button', { type: 'button', text: 'Generate with this', onclick: () => bus.emit('use-model', { id: m.id, defaults: d.defaults }) })));
  }));
  $('models-table').tBodies[0].replaceChildren(...rows);
}

export function initModels() {
  $('models-refresh').addEventListener('click', refresh);
  $('models-unload').addEventListener('click', async () => {
    try { await api('POST', '/v1/models/unload'); refresh(); } catch (e) { showError(e.message); }
  });
  bus.on('models-changed', refresh);
  refresh();
}
