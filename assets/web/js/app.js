// Entry point: tab switching (mouse and keyboard), the server's health, and the three pages.
import { api, bus } from './api.js';
import { initGenerate } from './generate.js';
import { initConvert } from './convert.js';
import { initModels } from './models.js';

const tabs = [...document.querySelectorAll('[role="tablist"] [role="tab"]')];

function select(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
  }
}

tabs.forEach((t, i) => {
  t.addEventListener('click', () => select(t));
  t.addEventListener('keydown', (e) => {
    const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!d) return;
    const next = tabs[(i + d + tabs.length) % tabs.length];
    select(next);
    next.focus();
  });
});

bus.on('use-model', () => select(document.getElementById('tab-generate')));

async function health() {
  try {
    await api('GET', '/health');
    document.getElementById('server-status').textContent = 'server: ok';
  } catch (e) {
    document.getElementById('server-status').textContent = `server: ${e.message}`;
  }
}

initGenerate();
initConvert();
initModels();
health();
