// Browser tests of the page at "/": Debian's chromium (driven by playwright-core) against
// `sdc serve` on 127.0.0.1 with the tiny fixture model, plus a local HTTP server for "convert from
// a link". Screenshots go to SDC_BROWSER_ARTIFACTS (CTest: BUILD/browser-artifacts).
//   node --test ui.test.mjs      (env: SDC_BINARY, SDC_FIXTURES, SDC_BROWSER_ARTIFACTS)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '..', '..');
const SDC = process.env.SDC_BINARY || path.join(repo, 'build', 'sdc');
const FIX = path.join(process.env.SDC_FIXTURES || path.join(repo, '..', 'shared', 'fixtures'), 'tiny-sd15');
const ART = process.env.SDC_BROWSER_ARTIFACTS || path.join(repo, 'build', 'browser-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let work, profile, server, base, fileServer, fileBase, browser, context;
const serverLog = [];

function startSdc() {
  return new Promise((resolve, reject) => {
    const p = spawn(SDC, ['serve', '--models-dir', path.join(work, 'models'),
      '-m', path.join(work, 'models', 'tiny.safetensors'),
      '--model-config', path.join(FIX, 'diffusers'), '--host', '127.0.0.1', '--port', '0',
      '--allow-http', '--allow-private-downloads', '--max-upload-size', '64M'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => reject(new Error(`sdc serve did not start:\n${serverLog.join('')}`)), 60000);
    p.stderr.on('data', (d) => serverLog.push(d.toString()));
    p.stdout.on('data', (d) => {
      serverLog.push(d.toString());
      const m = d.toString().match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve({ proc: p, url: m[1] }); }
    });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`sdc serve exited with ${code}:\n${serverLog.join('')}`)); });
  });
}

// Serves the tiny model at /files/tiny.safetensors (with a Content-Disposition name).
function startFileServer() {
  const bytes = fs.readFileSync(path.join(FIX, 'model.safetensors'));
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      if (req.url.startsWith('/files/tiny.safetensors')) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length,
                             'Content-Disposition': 'attachment; filename="linked-model.safetensors"' });
        res.end(bytes);
      } else { res.writeHead(404); res.end('no'); }
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, `${name}.png`), fullPage: true });
}

async function apiJob(body) {
  const r = await fetch(`${base}/v1/jobs?wait=true`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  assert.equal(j.status, 'succeeded', JSON.stringify(j));
  return j;
}

async function openPage() {
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw new Error(`page error: ${e.message}`); });
  await page.goto(base + '/');
  await page.waitForFunction(() => document.querySelectorAll('#gen-model option').length > 0);
  return page;
}

async function fillGenerate(page, { prompt, steps = 4, seed = 42, size = 64, sampler = 'euler_a', count = 1 }) {
  await page.fill('#gen-prompt', prompt);
  await page.fill('#gen-width', String(size));
  await page.fill('#gen-height', String(size));
  await page.fill('#gen-steps', String(steps));
  await page.fill('#gen-seed', String(seed));
  await page.fill('#gen-batch-count', String(count));
  await page.selectOption('#gen-sampler', sampler);
}

async function convertAndWait(page) {
  await page.click('#conv-submit');
  await page.waitForFunction(() => !document.getElementById('conv-result').hidden ||
                                   !document.getElementById('conv-error').hidden, null, { timeout: 240000 });
}

before(async () => {
  fs.mkdirSync(ART, { recursive: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-browser-'));
  fs.mkdirSync(path.join(work, 'models', 'lora'), { recursive: true });
  fs.copyFileSync(path.join(FIX, 'model.safetensors'), path.join(work, 'models', 'tiny.safetensors'));
  fs.copyFileSync(path.join(FIX, 'lora-kohya.safetensors'), path.join(work, 'models', 'lora', 'lcm-lora-sdv1-5.safetensors'));
  fs.writeFileSync(path.join(work, 'models', 'broken.ckpt'), 'PK\x03\x04 this is not a checkpoint');
  fs.mkdirSync(path.join(work, 'models', 'controlnet'));
  fs.copyFileSync(path.join(FIX, 'controlnet.safetensors'), path.join(work, 'models', 'controlnet', 'tiny-canny.safetensors'));
  server = await startSdc();
  base = server.url;
  fileServer = await startFileServer();
  fileBase = `http://127.0.0.1:${fileServer.address().port}`;
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-deps.sh`);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (context) await context.close();
  if (fileServer) fileServer.close();
  if (server) {
    server.proc.kill('SIGTERM');
    await new Promise((r) => server.proc.once('exit', r));
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
  // The fresh Chromium profile (~30 MB) goes too: every run used to leave one in the temp folder.
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

test('generate: the image appears with its parameters and equals the API result', async () => {
  const page = await openPage();
  await fillGenerate(page, { prompt: 'a lighthouse at dusk', steps: 4, seed: 42 });
  await page.press('#gen-prompt', 'Control+Enter');
  const item = page.locator('.gallery-item').first();
  await item.waitFor({ timeout: 120000 }).catch(async (e) => {
    throw new Error(`${e.message}\nprogress: ${await page.textContent('#gen-progress-text')}\nerror: ${await page.textContent('#gen-error')}\n${serverLog.join('')}`);
  });
  const info = await item.locator('.infotext').textContent();
  assert.match(info, /a lighthouse at dusk/);
  assert.match(info, /Steps: 4, Sampler: Euler a, .*Seed: 42, Size: 64x64/);
  const pageBytes = await item.locator('img').evaluate(async (img) => {
    const b = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    return Array.from(b);
  });
  const j = await apiJob({ prompt: 'a lighthouse at dusk', negative_prompt: '', width: 64, height: 64, steps: 4,
    cfg_scale: 7, sampler: 'euler_a', scheduler: 'default', seed: 42, clip_skip: 1, batch_size: 1, batch_count: 1,
    model: await page.inputValue('#gen-model') });
  const apiBytes = new Uint8Array(await (await fetch(base + j.result.images[0].url)).arrayBuffer());
  assert.deepEqual(Buffer.from(pageBytes), Buffer.from(apiBytes));
  await page.click('#gen-seed-reuse');
  assert.equal(await page.inputValue('#gen-seed'), '42');
  await shot(page, 'generate');
  await page.close();
});

// An <img>'s bytes: data URLs decoded here (the page's CSP keeps it from fetching them), others
// fetched by the page.
async function imageBytes(locator) {
  const src = await locator.getAttribute('src');
  if (src.startsWith('data:')) return Buffer.from(src.slice(src.indexOf(',') + 1), 'base64');
  return Buffer.from(await locator.evaluate(async (img) =>
    Array.from(new Uint8Array(await (await fetch(img.src)).arrayBuffer()))));
}

// The first gallery item, or a failure that says what the page showed.
async function galleryItem(page) {
  const item = page.locator('.gallery-item').first();
  await item.waitFor({ timeout: 120000 }).catch(async (e) => {
    throw new Error(`${e.message}\nprogress: ${await page.textContent('#gen-progress-text')}\nerror: ${await page.textContent('#gen-error')}`);
  });
  return item;
}

test('img2img from an uploaded image equals the API result', async () => {
  const page = await openPage();
  await fillGenerate(page, { prompt: 'an oil painting', steps: 5, seed: 3 });
  await page.setInputFiles('#init-file', path.join(FIX, 'images', 'init_64x64.png'));
  await page.locator('#init-thumb').waitFor();
  await page.fill('#gen-strength', '0.6');
  await page.selectOption('#gen-resize', 'resize');
  await page.click('#gen-submit');
  const item = await galleryItem(page);
  const init = 'data:image/png;base64,' + fs.readFileSync(path.join(FIX, 'images', 'init_64x64.png')).toString('base64');
  const j = await apiJob({ prompt: 'an oil painting', negative_prompt: '', width: 64, height: 64, steps: 5,
    cfg_scale: 7, sampler: 'euler_a', scheduler: 'default', seed: 3, clip_skip: 1, batch_size: 1, batch_count: 1,
    init_image: init, strength: 0.6, resize_mode: 'resize', model: await page.inputValue('#gen-model') });
  const apiBytes = Buffer.from(await (await fetch(base + j.result.images[0].url)).arrayBuffer());
  assert.deepEqual(await imageBytes(item.locator('img')), apiBytes);
  await page.close();
});

test('inpainting with an uploaded mask equals the API result; a mask alone is refused in words', async () => {
  const page = await openPage();
  await fillGenerate(page, { prompt: 'a red apple', steps: 4, seed: 7 });
  const maskFile = path.join(FIX, 'inpaint', 'images', 'mask_inpaint4_ddim.png');
  await page.click('#inpaint summary');
  await page.setInputFiles('#mask-file', maskFile);
  await page.locator('#mask-thumb').waitFor();
  await page.click('#gen-submit');
  assert.match(await page.textContent('#gen-error'), /mask: inpainting needs an init image/);
  await page.setInputFiles('#init-file', path.join(FIX, 'images', 'init_64x64.png'));
  await page.locator('#init-thumb').waitFor();
  await page.fill('#gen-strength', '0.8');
  await page.selectOption('#mask-content', 'fill');
  await page.check('#mask-only');
  await page.fill('#mask-padding', '8');
  await page.click('#gen-submit');
  const item = await galleryItem(page);
  assert.match(await item.locator('.infotext').textContent(), /Inpaint area: Only masked, Masked area padding: 8, Masked content: fill/);
  const dataURL = (f) => 'data:image/png;base64,' + fs.readFileSync(f).toString('base64');
  const j = await apiJob({ prompt: 'a red apple', negative_prompt: '', width: 64, height: 64, steps: 4,
    cfg_scale: 7, sampler: 'euler_a', scheduler: 'default', seed: 7, clip_skip: 1, batch_size: 1, batch_count: 1,
    init_image: dataURL(path.join(FIX, 'images', 'init_64x64.png')), strength: 0.8, resize_mode: 'crop',
    mask: dataURL(maskFile), mask_blur: 4, masked_content: 'fill', mask_invert: false, inpaint_full_res: true,
    inpaint_padding: 8, model: await page.inputValue('#gen-model') });
  const apiBytes = Buffer.from(await (await fetch(base + j.result.images[0].url)).arrayBuffer());
  assert.deepEqual(await imageBytes(item.locator('img')), apiBytes);
  await page.close();
});

test('ControlNet with the canny preview', async () => {
  const page = await openPage();
  await page.waitForFunction(() => [...document.querySelectorAll('#cn-model option')].some((o) => o.value === 'tiny-canny'));
  await fillGenerate(page, { prompt: 'a glowing ring', steps: 4, seed: 5 });
  // Without an image the ControlNet is refused in words, before any request.
  await page.selectOption('#cn-model', 'tiny-canny');
  await page.click('#gen-submit');
  assert.match(await page.textContent('#gen-error'), /ControlNet: give it an image/);
  await page.setInputFiles('#cn-file', path.join(FIX, 'images', 'init_64x64.png'));
  await page.locator('#cn-hint').waitFor();
  // The preview is the server's canny of the image: black and white only, and it follows the
  // thresholds.
  const hint1 = await imageBytes(page.locator('#cn-hint'));
  const before = await page.getAttribute('#cn-hint', 'src');
  await page.fill('#cn-low', '10');
  await page.fill('#cn-high', '20');
  await page.dispatchEvent('#cn-high', 'change');
  await page.waitForFunction((prev) => document.getElementById('cn-hint').src !== prev, before, { timeout: 30000 });
  const hint2 = await imageBytes(page.locator('#cn-hint'));
  assert.notDeepEqual(hint1, hint2);
  await page.fill('#gen-width', '64');
  await page.click('#gen-submit');
  await galleryItem(page);
  await shot(page, 'controlnet');
  await page.close();
});

test('generate: cancel mid-run', async () => {
  const page = await openPage();
  await fillGenerate(page, { prompt: 'a long job', steps: 150, seed: 7, count: 16 });
  await page.click('#gen-submit');
  await page.waitForFunction(() => /step \d+\/150/.test(document.getElementById('gen-progress-text').textContent), null, { timeout: 120000 });
  await page.click('#gen-cancel');
  await page.waitForFunction(() => document.getElementById('gen-progress-text').textContent === 'cancelled', null, { timeout: 120000 });
  assert.equal(await page.locator('.gallery-item').count(), 0);
  assert.equal(await page.isDisabled('#gen-cancel'), true);
  await page.close();
});

test('convert: a server file with a LoRA, then generate with the result', async () => {
  const page = await openPage();
  await page.click('#tab-convert');
  await page.locator('#conv-source .file-list button', { hasText: 'tiny.safetensors' }).click();
  await page.click('#conv-add-lora');
  const lora = page.locator('.lora-source').first();
  await lora.locator('.file-list button', { hasText: 'lora' }).click();
  await lora.locator('.file-list button', { hasText: 'lcm-lora-sdv1-5.safetensors' }).click();
  for (const c of ['unet', 'text_encoder', 'vae', 'controlnet']) await page.selectOption(`#conv-p-${c}`, 'f32');
  await page.fill('#conv-sizes', '64x64');
  await page.fill('#conv-name', 'tiny-lcm');
  await convertAndWait(page);
  assert.equal(await page.isHidden('#conv-error'), true, await page.textContent('#conv-error'));
  assert.match(await page.textContent('#conv-result'), /tiny-lcm\.gguf is ready.*Recommended: lcm, 4 steps, CFG 1/);
  assert.deepEqual(await page.locator('#conv-stages li.done').allTextContents(), ['read', 'hash', 'write', 'publish']);
  await shot(page, 'convert');
  await page.click('#conv-result button');
  assert.equal(await page.isVisible('#page-generate'), true);
  await page.waitForFunction(() => document.getElementById('gen-model').value === 'tiny-lcm.gguf');
  assert.equal(await page.inputValue('#gen-sampler'), 'lcm');
  await page.fill('#gen-prompt', 'a lighthouse, lcm');
  await page.fill('#gen-width', '64');
  await page.fill('#gen-height', '64');
  await page.click('#gen-submit');
  const item = page.locator('.gallery-item').first();
  await item.waitFor({ timeout: 120000 });
  assert.match(await item.locator('.infotext').textContent(), /Sampler: LCM.*Model: tiny-lcm/);
  await page.click('#tab-models');
  const row = page.locator('#models-table tr[data-model="tiny-lcm.gguf"]');
  await row.waitFor();
  assert.match(await row.textContent(), /compiled.*unet f32.*lcm-lora-sdv1-5\.safetensors ×1.*lcm, 4 steps/);
  await shot(page, 'models');
  await page.close();
});

test('convert: upload a small checkpoint', async () => {
  const page = await openPage();
  await page.click('#tab-convert');
  await page.locator('#conv-source .source-tabs button', { hasText: 'Upload' }).click();
  await page.setInputFiles('#conv-source input[type=file]', path.join(FIX, 'model.safetensors'));
  await page.waitForFunction(() => /uploaded/.test(document.querySelector('#conv-source .progress span').textContent), null, { timeout: 120000 });
  await page.fill('#conv-sizes', '64x64');
  await page.fill('#conv-name', 'uploaded');
  await convertAndWait(page);
  assert.equal(await page.isHidden('#conv-error'), true, await page.textContent('#conv-error'));
  assert.match(await page.textContent('#conv-result'), /uploaded\.gguf is ready/);
  await page.close();
});

test('convert: from a link served by a local server', async () => {
  const page = await openPage();
  await page.click('#tab-convert');
  await page.locator('#conv-source .source-tabs button', { hasText: 'Link' }).click();
  await page.fill('#conv-source input[type=url]', `${fileBase}/files/tiny.safetensors?token=not-logged`);
  await page.fill('#conv-source input[type=password]', 'secret-token');
  await page.fill('#conv-sizes', '64x64');
  await page.fill('#conv-name', 'from-link');
  await convertAndWait(page);
  assert.equal(await page.isHidden('#conv-error'), true, await page.textContent('#conv-error'));
  assert.match(await page.textContent('#conv-result'), /from-link\.gguf is ready/);
  assert.ok(!serverLog.join('').includes('secret-token'));
  assert.ok(!serverLog.join('').includes('not-logged'));
  await page.close();
});

test('convert: a bad file shows its error in words', async () => {
  const page = await openPage();
  await page.click('#tab-convert');
  await page.locator('#conv-source .file-list button', { hasText: 'broken.ckpt' }).click();
  await page.fill('#conv-name', 'broken');
  await convertAndWait(page);
  const err = await page.textContent('#conv-error');
  assert.match(err, /models\/broken\.ckpt/);
  assert.ok(!err.includes(work), err);
  // An empty link box is never taken for a path.
  await page.locator('#conv-source .source-tabs button', { hasText: 'Link' }).click();
  await page.click('#conv-submit');
  assert.match(await page.textContent('#conv-error'), /model: choose a server file, upload one, or paste a link/);
  await shot(page, 'convert-error');
  await page.close();
});

test('two browser tabs at once both complete', async () => {
  const [a, b] = await Promise.all([openPage(), openPage()]);
  await fillGenerate(a, { prompt: 'tab one', steps: 6, seed: 1 });
  await fillGenerate(b, { prompt: 'tab two', steps: 6, seed: 2 });
  await Promise.all([a.click('#gen-submit'), b.click('#gen-submit')]);
  await Promise.all([a.locator('.gallery-item').first().waitFor({ timeout: 180000 }),
                     b.locator('.gallery-item').first().waitFor({ timeout: 180000 })]);
  assert.match(await a.locator('.infotext').first().textContent(), /tab one/);
  assert.match(await b.locator('.infotext').first().textContent(), /tab two/);
  await a.setViewportSize({ width: 390, height: 844 });
  await shot(a, 'generate-phone');
  await Promise.all([a.close(), b.close()]);
});
