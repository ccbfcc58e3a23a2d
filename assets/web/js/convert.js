// The Convert page: model, LoRAs (each from any source, with a scale), ControlNet, VAE,
// precision per component, sizes, batch, name → POST /v1/jobs {"type": "convert"}; per-stage
// progress over SSE; errors in the server's words; the result offered for generation.
import { api, watchJob, bus, el } from './api.js';
import { SourcePicker } from './sources.js';

const $ = (id) => document.getElementById(id);
const STAGES = ['download', 'read', 'hash', 'write', 'publish'];
let model, controlnet, vae;
const loras = [];
let running = null;

function addLora() {
  const box = el('div', { class: 'panel lora-source' });
  const scale = el('input', { type: 'number', step: '0.05', value: '1', 'aria-label': 'LoRA scale' });
  const entry = { picker: null, scale, box };
  const remove = el('button', { type: 'button', text: 'Remove LoRA', onclick: () => {
    box.remove(); loras.splice(loras.indexOf(entry), 1); } });
  box.append(el('div', { class: 'lora-row' }, el('label', {}, 'Scale', scale), remove));
  entry.picker = new SourcePicker(box, { label: `LoRA ${loras.length + 1}`, kinds: ['lora'] });
  loras.push(entry);
  $('conv-loras').append(box);
}

function parseSizes(text) {
  const sizes = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(\d+)\s*[x×]\s*(\d+)$/i);
    if (!m) throw new Error(`sizes: "${part}" is not W×H (e.g. 512x512)`);
    sizes.push([Number(m[1]), Number(m[2])]);
  }
  return sizes;
}

let stages = STAGES;

function showStages(active, done) {
  $('conv-stages').replaceChildren(...stages.map((s) =>
    el('li', { class: done.includes(s) ? 'done' : s === active ? 'active' : '', text: s })));
}

function showError(msg) { $('conv-error').textContent = msg || ''; $('conv-error').hidden = !msg; }

async function convert() {
  if (running) return;
  showError('');
  $('conv-result').hidden = true;
  let body;
  try {
    body = { type: 'convert', source: model.value() };
    const l = loras.map((e, i) => {
      const src = e.picker.value();
      const scale = Number(e.scale.value);
      if (!Number.isFinite(scale)) throw new Error(`LoRA ${i + 1}: the scale must be a number`);
      return { ...src, scale };
    });
    if (l.length) body.loras = l;
    const c = controlnet.value(); if (c) body.controlnet = c;
    const v = vae.value(); if (v) body.vae = v;
    const precision = {};
    for (const comp of ['unet', 'text_encoder', 'vae', 'controlnet'])
      precision[comp] = $(`conv-p-${comp}`).value;
    body.precision = precision;
    body.sizes = parseSizes($('conv-sizes').value);
    body.batch = Number($('conv-batch').value);
    if ($('conv-name').value.trim()) body.name = $('conv-name').value.trim();
  } catch (e) { showError(e.message); return; }

  // "download" only when a source is a link.
  const srcs = [body.source, body.controlnet, body.vae, ...(body.loras || [])].filter(Boolean);
  stages = srcs.some((s) => s.url) ? STAGES : STAGES.filter((s) => s !== 'download');
  const done = [];
  let current = null;
  try {
    const job = await api('POST', '/v1/jobs', body);
    running = job.id;
    $('conv-submit').disabled = true;
    $('conv-cancel').disabled = false;
    $('conv-progress-text').textContent = 'queued';
    showStages(null, done);
    const final = await watchJob(job.id, (name, ev) => {
      if (name !== 'step' || !ev.progress) return;
      const p = ev.progress;
      if (p.stage !== current) { if (current && !done.includes(current)) done.push(current); current = p.stage; }
      showStages(current, done);
      $('conv-progress').value = p.fraction;
      const eta = p.eta_s != null ? ` — ETA ${p.eta_s.toFixed(0)} s` : '';
      $('conv-progress-text').textContent = `${p.textinfo}${eta}`;
    });
    if (final.status === 'succeeded') {
      showStages(null, stages);
      $('conv-progress').value = 1;
      const r = final.result;
      $('conv-progress-text').textContent = `done: ${r.file}`;
      const lines = [`Model ${r.model} is ready (${(r.bytes / 1048576).toFixed(1)} MiB, ${r.tensors} tensors, ${r.merged} merged).`];
      if (r.defaults && r.defaults.sampler) lines.push(`Recommended: ${r.defaults.sampler}, ${r.defaults.steps} steps, CFG ${r.defaults.cfg_scale}.`);
      $('conv-result').replaceChildren(lines.join(' '), ' ',
        el('button', { type: 'button', text: 'Generate with it', onclick: () => bus.emit('use-model', { id: r.model, defaults: r.defaults }) }));
      $('conv-result').hidden = false;
      bus.emit('models-changed');
    } else if (final.status === 'cancelled') {
      $('conv-progress-text').textContent = 'cancelled — nothing was written';
      $('conv-progress').value = 0;
    } else {
      $('conv-progress-text').textContent = 'failed';
      showError(final.error || 'the conversion failed');
    }
  } catch (e) {
    showError(e.message);
  } finally {
    running = null;
    $('conv-submit').disabled = false;
    $('conv-cancel').disabled = true;
  }
}

export function initConvert() {
  model = new SourcePicker($('conv-source'), { label: 'model', kinds: ['checkpoint', 'diffusers', 'compiled', 'unknown'] });
  controlnet = new SourcePicker($('conv-controlnet'), { label: 'ControlNet', optional: true, kinds: ['controlnet', 'diffusers'] });
  vae = new SourcePicker($('conv-vae'), { label: 'VAE', optional: true, kinds: ['vae', 'checkpoint'] });
  for (const sel of document.querySelectorAll('select.precision'))
    for (const p of ['f16', 'bf16', 'f32']) sel.append(el('option', { value: p, text: p }));
  // The UNet and the image decoders may also run W8A8: stored f16, marked int8 (opt-in; check the
  // model with `sdc compare` first).
  for (const id of ['conv-p-unet', 'conv-p-vae'])
    $(id).append(el('option', { value: 'int8', text: 'int8 (W8A8, opt-in)' }));
  $('conv-add-lora').addEventListener('click', addLora);
  $('conv-form').addEventListener('submit', (e) => { e.preventDefault(); convert(); });
  $('conv-cancel').addEventListener('click', () => {
    if (running) api('DELETE', `/v1/jobs/${running}`).catch((e) => showError(e.message));
  });
  showStages(null, []);
  bus.on('models-changed', () => { model.refresh(); controlnet.refresh(); vae.refresh(); loras.forEach((l) => l.picker.refresh()); });
}
