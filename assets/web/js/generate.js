// The Generate page: the form → POST /v1/jobs, live progress and preview over SSE, Cancel, and a
// gallery of this session's images with their parameters ("use these settings", download).
import { api, watchJob, bus, el } from './api.js';
import { imageInput, cannyHint, readAsDataURL } from './images.js';

const $ = (id) => document.getElementById(id);
let lastSeed = null;
let running = null;  // job id
let loraNames = [];
let initImage = null;     // data URL
let maskImage = null;     // data URL (inpainting, with an init image)
let controlSource = null; // data URL of the image the hint is made from
let controlHint = null;   // data URL of the hint sent (canny applied here, so preview = hint)

function setInit(dataURL) {
  initImage = dataURL;
  $('init-thumb').src = dataURL || '';
  $('init-thumb').hidden = !dataURL;
}

function setMask(dataURL) {
  maskImage = dataURL;
  $('mask-thumb').src = dataURL || '';
  $('mask-thumb').hidden = !dataURL;
  if (dataURL) $('inpaint').open = true;
}

async function updateHint() {
  if (!controlSource) { controlHint = null; $('cn-hint').hidden = true; return; }
  try {
    controlHint = $('cn-preprocess').value === 'canny'
      ? await cannyHint(controlSource, Number($('cn-low').value), Number($('cn-high').value))
      : controlSource;
    $('cn-hint').src = controlHint;
    $('cn-hint').hidden = false;
    showError('');
  } catch (e) { controlHint = null; showError(e.message); }
}

function addLoraRow(name = '', weight = 1) {
  const select = el('select', { 'aria-label': 'LoRA' },
    ...loraNames.map((n) => el('option', { value: n, text: n, selected: n === name })));
  const w = el('input', { type: 'number', step: '0.05', min: '-10', max: '10', value: weight, 'aria-label': 'LoRA weight' });
  const row = el('div', { class: 'lora-row' }, select, w,
    el('button', { type: 'button', text: 'Remove', onclick: () => row.remove() }));
  $('gen-loras').append(row);
}

function request() {
  const num = (id) => Number($(id).value);
  const r = {
    prompt: $('gen-prompt').value,
    negative_prompt: $('gen-negative').value,
    width: num('gen-width'), height: num('gen-height'), steps: num('gen-steps'),
    cfg_scale: num('gen-cfg'), sampler: $('gen-sampler').value, scheduler: $('gen-scheduler').value,
    seed: num('gen-seed'), clip_skip: num('gen-clip-skip'),
    batch_size: num('gen-batch-size'), batch_count: num('gen-batch-count'),
    preview_every: 1,
  };
  if ($('gen-model').value) r.model = $('gen-model').value;
  const loras = [...$('gen-loras').querySelectorAll('.lora-row')].map((row) => ({
    name: row.querySelector('select').value, weight: Number(row.querySelector('input').value) }));
  if (loras.length) r.loras = loras.filter((l) => l.name);
  if (initImage) {
    r.init_image = initImage;
    r.strength = num('gen-strength');
    r.resize_mode = $('gen-resize').value;
    if (maskImage) {
      r.mask = maskImage;
      r.mask_blur = num('mask-blur');
      r.masked_content = $('mask-content').value;
      r.mask_invert = $('mask-invert').checked;
      r.inpaint_full_res = $('mask-only').checked;
      r.inpaint_padding = num('mask-padding');
    }
  } else if (maskImage) {
    throw new Error('mask: inpainting needs an init image as well (img2img above)');
  }
  if ($('cn-model').value) {
    if (!controlHint) throw new Error('ControlNet: give it an image (drop, paste or choose one) — or choose "none"');
    r.controlnet = $('cn-model').value;
    r.control_image = controlHint;
    r.control_preprocess = 'none';  // the hint was made here (see updateHint)
    r.control_scale = num('cn-scale');
    r.control_start = num('cn-start');
    r.control_end = num('cn-end');
  }
  return r;
}

function applySettings(r) {
  const set = (id, v) => { if (v !== undefined && v !== null) $(id).value = v; };
  set('gen-prompt', r.prompt); set('gen-negative', r.negative_prompt);
  set('gen-width', r.width); set('gen-height', r.height); set('gen-steps', r.steps);
  set('gen-cfg', r.cfg_scale); set('gen-sampler', r.sampler); set('gen-scheduler', r.scheduler);
  set('gen-seed', r.seed); set('gen-clip-skip', r.clip_skip);
  set('gen-batch-size', r.batch_size); set('gen-batch-count', r.batch_count);
  if (r.model) set('gen-model', r.model);
  $('gen-loras').replaceChildren();
  for (const l of r.loras || []) addLoraRow(l.name, l.weight);
}

function showError(msg) {
  $('gen-error').textContent = msg || '';
  $('gen-error').hidden = !msg;
}

function setProgress(fraction, text) {
  $('gen-progress').value = fraction;
  $('gen-progress-text').textContent = text;
}

function addToGallery(job, sent) {
  for (const im of job.result.images) {
    const { init_image, control_image, mask, ...plain } = sent;  // settings without the images
    const settings = { ...plain, seed: im.seed, batch_size: 1, batch_count: 1 };
    const item = el('li', { class: 'gallery-item', 'data-seed': im.seed },
      el('img', { src: im.url, alt: `seed ${im.seed}`, width: im.width, height: im.height }),
      el('pre', { class: 'infotext', text: im.infotext }),
      el('div', { class: 'actions' },
        el('button', { type: 'button', text: 'Use these settings', onclick: () => applySettings(settings) }),
        el('button', { type: 'button', text: 'Send to img2img', onclick: async () => {
          setInit(await readAsDataURL(await (await fetch(im.url)).blob())); } }),
        el('a', { href: im.url, download: `sdc-${im.seed}.png`, text: 'Download' })));
    $('gallery').prepend(item);
  }
}

async function generate() {
  if (running) return;
  showError('');
  let sent;
  try {
    sent = request();
    if (!sent.prompt.trim()) throw new Error('prompt: write what the image should show');
    const job = await api('POST', '/v1/jobs', sent);
    running = job.id;
    $('gen-submit').disabled = true;
    $('gen-cancel').disabled = false;
    setProgress(0, 'queued');
    const t0 = performance.now();
    const final = await watchJob(job.id, (name, ev) => {
      if (name === 'queued') setProgress(0, `queued (${ev.queue_position} ahead)`);
      if (name === 'started') setProgress(0, 'started');
      if (name === 'step' && ev.progress) {
        const p = ev.progress;
        const eta = p.eta_s != null ? `, ETA ${p.eta_s.toFixed(1)} s` : '';
        const batch = p.batch_count > 1 ? ` (batch ${p.batch + 1}/${p.batch_count})` : '';
        setProgress(p.fraction, `${p.stage} step ${p.step}/${p.total_steps}${batch}${eta}`);
        if (ev.preview) { $('gen-preview').src = ev.preview; $('gen-preview').hidden = false; }
      }
    });
    if (final.status === 'succeeded') {
      lastSeed = final.result.seed;
      setProgress(1, `done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      addToGallery(final, sent);
      const first = final.result.images[0];
      if (first) { $('gen-preview').src = first.url; $('gen-preview').hidden = false; }
    } else if (final.status === 'cancelled') {
      setProgress(0, 'cancelled');
    } else {
      setProgress(0, 'failed');
      showError(final.error || 'the job failed');
    }
  } catch (e) {
    showError(e.message);
  } finally {
    running = null;
    $('gen-submit').disabled = false;
    $('gen-cancel').disabled = true;
  }
}

export async function refreshModels() {
  const select = $('gen-model');
  const keep = select.value;
  try {
    const list = await api('GET', '/v1/models');
    select.replaceChildren(...list.data.map((m) => el('option', { value: m.id, text: m.id })));
    if (keep && list.data.some((m) => m.id === keep)) {
      select.value = keep;
    } else {
      const { current } = await api('GET', '/v1/models/loaded');  // the server's current model
      if (current) select.value = current;
    }
  } catch (e) { showError(`models: ${e.message}`); }
  try {
    const files = await api('GET', '/v1/files?path=lora');
    loraNames = files.entries.filter((e) => e.kind === 'lora')
      .map((e) => e.path.replace(/^lora\//, '').replace(/\.[^.]+$/, ''));
  } catch { loraNames = []; }
  try {
    const cn = await api('GET', '/v1/files?path=controlnet');
    const keep2 = $('cn-model').value;
    $('cn-model').replaceChildren(el('option', { value: '', text: 'none' }),
      ...cn.entries.filter((e) => e.kind === 'controlnet' || e.kind === 'diffusers').map((e) => {
        const name = e.path.replace(/^controlnet\//, '').replace(/\.[^./]+$/, '');
        return el('option', { value: name, text: name });
      }));
    $('cn-model').value = keep2;
  } catch { /* no controlnet folder */ }
}

export function initGenerate() {
  $('gen-form').addEventListener('submit', (e) => { e.preventDefault(); generate(); });
  $('gen-form').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); generate(); }
  });
  $('gen-cancel').addEventListener('click', () => {
    if (running) api('DELETE', `/v1/jobs/${running}`).catch((e) => showError(e.message));
  });
  $('gen-seed-random').addEventListener('click', () => { $('gen-seed').value = -1; });
  $('gen-seed-reuse').addEventListener('click', () => { if (lastSeed != null) $('gen-seed').value = lastSeed; });
  $('gen-add-lora').addEventListener('click', () => addLoraRow(loraNames[0] || ''));
  imageInput($('init-drop'), $('init-file'), setInit);
  imageInput($('cn-drop'), $('cn-file'), (d) => {
    controlSource = d;
    $('cn-thumb').src = d;
    $('cn-thumb').hidden = false;
    updateHint();
  });
  for (const id of ['cn-preprocess', 'cn-low', 'cn-high']) $(id).addEventListener('change', updateHint);
  $('init-clear').addEventListener('click', () => setInit(null));
  imageInput($('mask-drop'), $('mask-file'), setMask);
  $('mask-clear').addEventListener('click', () => setMask(null));
  bus.on('models-changed', refreshModels);
  bus.on('use-model', (m) => {
    refreshModels().then(() => {
      $('gen-model').value = m.id;
      if (m.defaults) {
        if (m.defaults.sampler) $('gen-sampler').value = m.defaults.sampler;
        if (m.defaults.steps) $('gen-steps').value = m.defaults.steps;
        if (m.defaults.cfg_scale != null) $('gen-cfg').value = m.defaults.cfg_scale;
      }
    });
  });
  refreshModels();
}
