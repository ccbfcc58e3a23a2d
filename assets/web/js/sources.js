// A source picker for convert inputs — three tabs: upload from this browser (chunked, resumable,
// with a progress bar), a file already on the server (browsed inside the models/imports folders),
// or a link (+ an API token, sent to the server in the request body only). value() gives the
// request's SRC object; an empty optional picker gives null — an empty box is never a path.
import { api, uploadFile, formatBytes, el } from './api.js';

let counter = 0;

export class SourcePicker {
  constructor(container, { optional = false, label = 'model', kinds = null } = {}) {
    this.id = `src${++counter}`;
    this.optional = optional;
    this.label = label;
    this.kinds = kinds;
    this.mode = 'file';
    this.upload = null;      // completed upload object
    this.uploading = false;
    this.selected = null;    // {root, path}
    this.root = 'models';
    this.dir = '';
    const tabs = el('div', { class: 'source-tabs', role: 'tablist' });
    this.bodies = {};
    for (const [mode, text] of [['file', 'Server file'], ['upload', 'Upload'], ['url', 'Link']]) {
      const b = el('button', { type: 'button', role: 'tab', 'data-mode': mode, text,
                               'aria-selected': String(mode === this.mode), onclick: () => this.show(mode) });
      tabs.append(b);
    }
    this.tabs = tabs;
    // Upload
    this.fileInput = el('input', { type: 'file', accept: '.safetensors,.ckpt,.pt,.pth,.bin,.gguf',
                                   'aria-label': `${label}: file to upload`, onchange: () => this.startUpload() });
    this.uploadBar = el('progress', { max: 1, value: 0 });
    this.uploadText = el('span', { text: '' });
    this.bodies.upload = el('div', { class: 'source-body' }, this.fileInput,
                            el('div', { class: 'progress' }, this.uploadBar, this.uploadText));
    // Server file
    this.rootSelect = el('select', { 'aria-label': `${label}: folder`, onchange: () => { this.root = this.rootSelect.value; this.dir = ''; this.refresh(); } });
    this.pathText = el('span', { text: '' });
    this.list = el('ul', { class: 'file-list', 'aria-label': `${label}: files` });
    this.bodies.file = el('div', { class: 'source-body' },
                          el('div', { class: 'row' }, this.rootSelect, this.pathText), this.list);
    // Link
    this.urlInput = el('input', { type: 'url', placeholder: 'https://…', 'aria-label': `${label}: link` });
    this.tokenInput = el('input', { type: 'password', placeholder: 'API token (optional)',
                                    autocomplete: 'off', 'aria-label': `${label}: token` });
    this.bodies.url = el('div', { class: 'source-body' }, this.urlInput, this.tokenInput);
    container.append(tabs, ...Object.values(this.bodies));
    this.show('file');
    this.refresh();
  }

  show(mode) {
    this.mode = mode;
    for (const b of this.tabs.children) b.setAttribute('aria-selected', String(b.dataset.mode === mode));
    for (const [m, body] of Object.entries(this.bodies)) body.hidden = m !== mode;
  }

  async refresh() {
    let listing;
    try {
      listing = await api('GET', `/v1/files?root=${encodeURIComponent(this.root)}&path=${encodeURIComponent(this.dir)}`);
    } catch (e) {
      this.list.replaceChildren(el('li', { class: 'error', text: e.message }));
      return;
    }
    if (!this.rootSelect.options.length)
      for (const r of listing.roots) this.rootSelect.append(el('option', { value: r, text: r }));
    this.pathText.textContent = `/${listing.path}`;
    const items = [];
    if (listing.path) {
      const up = listing.path.split('/').slice(0, -1).join('/');
      items.push(el('li', {}, el('button', { type: 'button', text: '../ (up)', onclick: () => { this.dir = up; this.refresh(); } })));
    }
    for (const e of listing.entries) {
      const folder = e.is_dir && !e.kind;
      if (!folder && this.kinds && !this.kinds.includes(e.kind)) continue;
      const text = folder ? `${e.name}/` : `${e.name} — ${e.kind}${e.size ? ', ' + formatBytes(e.size) : ''}${e.error ? ' (unreadable)' : ''}`;
      const pressed = this.selected && this.selected.path === e.path && this.selected.root === this.root;
      items.push(el('li', {}, el('button', {
        type: 'button', text, 'aria-pressed': String(!!pressed), title: e.error || e.path,
        onclick: () => {
          if (folder) { this.dir = e.path; this.refresh(); return; }
          this.selected = { root: this.root, path: e.path };
          this.refresh();
        },
      })));
    }
    if (!items.length) items.push(el('li', { text: '(no model files here)' }));
    this.list.replaceChildren(...items);
  }

  async startUpload() {
    const file = this.fileInput.files[0];
    if (!file) return;
    this.upload = null;
    this.uploading = true;
    this.uploadText.textContent = 'starting…';
    try {
      this.upload = await uploadFile(file, (sent, total) => {
        this.uploadBar.value = total ? sent / total : 0;
        this.uploadText.textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
      });
      this.uploadText.textContent = `${file.name}: uploaded (${formatBytes(file.size)})`;
    } catch (e) {
      this.uploadText.textContent = `${file.name}: ${e.message}`;
    } finally {
      this.uploading = false;
    }
  }

  // The SRC object, null when optional and left empty; throws an Error in words otherwise.
  value() {
    if (this.mode === 'upload') {
      if (this.uploading) throw new Error(`${this.label}: the upload is still running`);
      if (this.upload) return { upload: this.upload.id };
    } else if (this.mode === 'file') {
      if (this.selected) return { path: this.selected.path, root: this.selected.root };
    } else {
      const url = this.urlInput.value.trim();
      if (url) {
        const src = { url };
        if (this.tokenInput.value) src.token = this.tokenInput.value;
        return src;
      }
    }
    if (this.optional) return null;
    throw new Error(`${this.label}: choose a server file, upload one, or paste a link`);
  }

  // The file's base name, for a default model name.
  baseName() {
    if (this.mode === 'upload' && this.upload) return this.upload.name;
    if (this.mode === 'file' && this.selected) return this.selected.path.split('/').pop();
    if (this.mode === 'url') return this.urlInput.value.split('?')[0].split('/').pop();
    return '';
  }
}
